//! 进度估计：等上游时没有真实进度可读，只能按同一（模型, 分辨率）最近的用时估计；
//! 收发时按真实字节数；保存完成才到 100%。百分比只增不减。

use crate::types::{ImageSize, Phase};
use std::collections::HashMap;

/// 移动平均的权重：新样本占 30%。
const ALPHA: f64 = 0.3;

/// 各（模型, 分辨率）最近用时的指数移动平均（毫秒）。
#[derive(Debug, Default)]
pub struct Durations {
    by_key: HashMap<(String, ImageSize), f64>,
}

impl Durations {
    /// 记一次成功的用时。
    pub fn record(&mut self, model: &str, size: ImageSize, ms: f64) {
        let entry = self.by_key.entry((model.to_string(), size)).or_insert(ms);
        *entry = ALPHA * ms + (1.0 - ALPHA) * *entry;
    }

    /// 启动时用数据库里的平均值做起点：（模型, 分辨率, 平均毫秒）；认不出的分辨率跳过。
    pub fn from_recent(recent: Vec<(String, String, f64)>) -> Self {
        let mut durations = Self::default();
        for (model, size, ms) in recent {
            if let Ok(size) = size.parse::<ImageSize>() {
                durations.by_key.insert((model, size), ms);
            }
        }
        durations
    }

    /// 预计用时；没有历史时为空。
    pub fn expected(&self, model: &str, size: ImageSize) -> Option<f64> {
        self.by_key.get(&(model.to_string(), size)).copied()
    }
}

/// 没有历史时的假设用时（毫秒）：只用来让进度条动起来，界面上不显示预计剩余时间。
pub fn fallback_ms(size: ImageSize) -> f64 {
    match size {
        ImageSize::Half => 12_000.0,
        ImageSize::K1 => 20_000.0,
        ImageSize::K2 => 30_000.0,
        ImageSize::K4 => 45_000.0,
    }
}

/// 运行中任务的当前读数。
pub struct Reading {
    pub phase: Option<Phase>,
    pub elapsed_ms: f64,
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
}

/// 按阶段算出百分比（0–99）：
/// - 尚未发出（等网关名额）：0–2；
/// - 发送：2–5，按已发字节；
/// - 等待上游：5–85，按已用时间 / 预计用时，最多到 85 × 0.95，超时不会“到头”；
/// - 接收：85–95，按已收字节（不知道总数时缓慢增长）；
/// - 保存：97。
pub fn percent(r: &Reading, expected_ms: f64) -> f64 {
    let frac = |done: u64, total: Option<u64>| match total {
        Some(t) if t > 0 => (done as f64 / t as f64).clamp(0.0, 1.0),
        // 总数未知：每 1 MB 走完剩余的一半左右。
        _ => 1.0 - (-(done as f64) / 1_500_000.0).exp(),
    };
    match r.phase {
        None => 1.0,
        Some(Phase::Sending) => 2.0 + 3.0 * frac(r.bytes_done, r.bytes_total),
        Some(Phase::Waiting) => 5.0 + 80.0 * (r.elapsed_ms / expected_ms.max(1.0)).min(0.95),
        Some(Phase::Receiving) => 85.0 + 10.0 * frac(r.bytes_done, r.bytes_total),
        Some(Phase::Saving) => 97.0,
    }
}

/// 预计剩余毫秒；已超出平常用时则为空（界面显示“比平时慢”）。
pub fn eta_ms(elapsed_ms: f64, expected_ms: f64) -> Option<u64> {
    (elapsed_ms < expected_ms).then_some((expected_ms - elapsed_ms) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(phase: Option<Phase>, elapsed_ms: f64, done: u64, total: Option<u64>) -> f64 {
        percent(
            &Reading {
                phase,
                elapsed_ms,
                bytes_done: done,
                bytes_total: total,
            },
            10_000.0,
        )
    }

    #[test]
    fn phases_are_ordered_and_waiting_never_reaches_the_end() {
        let seq = [
            at(None, 0.0, 0, None),
            at(Some(Phase::Sending), 10.0, 0, Some(100)),
            at(Some(Phase::Sending), 20.0, 100, Some(100)),
            at(Some(Phase::Waiting), 5_000.0, 0, None),
            at(Some(Phase::Waiting), 60_000.0, 0, None),
            at(Some(Phase::Receiving), 60_000.0, 50, Some(100)),
            at(Some(Phase::Receiving), 60_000.0, 100, Some(100)),
            at(Some(Phase::Saving), 60_000.0, 0, None),
        ];
        for w in seq.windows(2) {
            assert!(w[0] <= w[1], "{seq:?}");
        }
        assert!(seq[4] < 85.0, "等待超出预计也不会到接收阶段的起点");
        assert!(seq[7] < 100.0, "保存完成前不到 100");
        assert!((seq[3] - 45.0).abs() < 0.01, "等了一半时间：5 + 80 × 0.5");
    }

    #[test]
    fn moving_average_follows_recent_durations() {
        let mut d = Durations::default();
        assert_eq!(d.expected("m", ImageSize::K1), None);
        d.record("m", ImageSize::K1, 10_000.0);
        assert_eq!(d.expected("m", ImageSize::K1), Some(10_000.0));
        d.record("m", ImageSize::K1, 20_000.0);
        assert_eq!(d.expected("m", ImageSize::K1), Some(13_000.0));
        assert_eq!(d.expected("m", ImageSize::K2), None, "分辨率分开统计");
        assert_eq!(eta_ms(4_000.0, 13_000.0), Some(9_000));
        assert_eq!(eta_ms(14_000.0, 13_000.0), None);
    }
}
