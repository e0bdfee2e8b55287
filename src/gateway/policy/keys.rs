//! 密钥池：每个上游可以有几个密钥，请求在健康的密钥间轮换。每个密钥各有状态：
//!
//! - 401/403 → 失效，直到密钥被改掉（状态按密钥的摘要记，改了密钥就是新的、健康的）；
//! - 每日配额用尽的 429（`RESOURCE_EXHAUSTED` 且说的是每天的配额）→ 休息到配额重置（`quota_reset`）；
//! - 其余 429 → 短暂冷却，遵守上游给的等待时间（默认 10 秒）。
//!
//! 日志、尝试记录与指标里只出现密钥的序号与末 4 位（`#2 …abcd`），绝不出现密钥本身。

use crate::config::quota::next_reset;
use crate::config::UpstreamConfig;
use crate::gateway::GatewayError;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// 没有给出等待时间的限流 429 冷却多久。
const RATE_COOLDOWN: Duration = Duration::from_secs(10);

/// 一个密钥此刻的状态。
#[derive(Debug, Clone, PartialEq)]
pub enum KeyHealth {
    Healthy,
    /// 上游说密钥无效或无权（401/403）：改掉密钥之前不再用。
    Disabled,
    /// 每日配额用完：休息到这个时刻。
    Resting(SystemTime),
    /// 被限流：冷却到这个时刻。
    Cooling(Instant),
    /// 本月（UTC）的花费到了上游的 `key_max_spend_per_month`：下个月 1 日再用。
    OverBudget,
}

impl KeyHealth {
    fn usable(&self, now: Instant, wall: SystemTime) -> bool {
        match self {
            KeyHealth::Healthy => true,
            KeyHealth::Disabled => false,
            KeyHealth::Resting(until) => wall >= *until,
            KeyHealth::Cooling(until) => now >= *until,
            KeyHealth::OverBudget => false,
        }
    }
}

#[derive(Debug, Clone)]
struct KeyState {
    health: KeyHealth,
    last_error: Option<String>,
}

/// 选中的一个密钥：在池里的序号（从 0 起）、密钥本身与给人看的名字。
#[derive(Clone)]
pub struct PickedKey {
    pub index: usize,
    pub secret: String,
    pub label: String,
}

/// 给人看的密钥名：序号与末 4 位。
pub fn key_label(index: usize, secret: &str) -> String {
    if secret.is_empty() {
        return "无密钥".into();
    }
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("#{} …{tail}", index + 1)
}

/// 一个密钥在设置页与用量页上的样子。
#[derive(Debug, Clone, PartialEq)]
pub struct KeyReport {
    pub label: String,
    pub health: KeyHealth,
    pub last_error: Option<String>,
}

/// 全部上游的密钥状态与轮换位置。
#[derive(Default)]
pub struct KeyStates {
    /// 键：上游名 + 密钥的摘要。
    states: Mutex<HashMap<String, KeyState>>,
    /// 每个上游下一次从第几个密钥开始找。
    cursors: Mutex<HashMap<String, usize>>,
    /// 每个密钥本月（`YYYY-MM`，UTC）按目录价格花了多少（美元，百万分之一）；键同 `states`。
    spend: Mutex<HashMap<String, (String, i64)>>,
}

fn this_month() -> String {
    chrono::Utc::now().format("%Y-%m").to_string()
}

fn state_key(upstream: &str, secret: &str) -> String {
    format!("{upstream}\u{0}{}", crate::hash::sha256_hex(secret))
}

/// 这次失败对密钥意味着什么。
pub fn verdict(error: &GatewayError, reset_at: impl FnOnce() -> SystemTime) -> Option<KeyHealth> {
    let GatewayError::Status {
        status,
        message,
        retry_after_secs,
        daily_quota,
        ..
    } = error
    else {
        return None;
    };
    match status {
        401 | 403 => Some(KeyHealth::Disabled),
        400 if super::retry::is_bad_api_key(message) => Some(KeyHealth::Disabled),
        429 => {
            if super::retry::is_daily_quota_error(*daily_quota, message) {
                Some(KeyHealth::Resting(reset_at()))
            } else {
                let wait = retry_after_secs
                    .map(|s| Duration::from_secs_f64(s.clamp(0.0, 3600.0)))
                    .unwrap_or(RATE_COOLDOWN);
                Some(KeyHealth::Cooling(Instant::now() + wait))
            }
        }
        _ => None,
    }
}

impl KeyStates {
    /// 记下一个密钥这次花的钱（美元，百万分之一；已计费与可能已计费的尝试都记）。
    pub fn add_spend(&self, upstream: &str, secret: &str, usd: i64) {
        self.add_spend_in(upstream, secret, &this_month(), usd);
    }

    /// 同上，记在 `month`（`YYYY-MM`）名下；启动时从用量表接上本月已花的也用它。换了月份从 0 开始。
    pub fn add_spend_in(&self, upstream: &str, secret: &str, month: &str, usd: i64) {
        let mut spend = self.spend.lock().expect("密钥花费锁未被毒化");
        let slot = spend
            .entry(state_key(upstream, secret))
            .or_insert_with(|| (month.to_string(), 0));
        if slot.0 != month {
            *slot = (month.to_string(), 0);
        }
        slot.1 += usd;
    }

    /// 这个密钥本月的花费到了上限（`budget` 为美元的百万分之一，0 为不限）。
    fn over_budget(&self, upstream: &str, secret: &str, budget: i64) -> bool {
        if budget <= 0 {
            return false;
        }
        let spend = self.spend.lock().expect("密钥花费锁未被毒化");
        spend
            .get(&state_key(upstream, secret))
            .is_some_and(|(month, usd)| *month == this_month() && *usd >= budget)
    }

    /// 轮到的下一个可用密钥（本月的花费到了 `budget` 的不算可用）；全都不可用时返回 None。
    pub fn pick(&self, upstream: &UpstreamConfig, budget: i64) -> Option<PickedKey> {
        let pool = upstream.key_pool();
        let (now, wall) = (Instant::now(), SystemTime::now());
        let states = self.states.lock().expect("密钥状态锁未被毒化");
        let mut cursors = self.cursors.lock().expect("密钥轮换锁未被毒化");
        let cursor = cursors.entry(upstream.name.clone()).or_default();
        for step in 0..pool.len() {
            let index = (*cursor + step) % pool.len();
            let secret = &pool[index];
            let usable = states
                .get(&state_key(&upstream.name, secret))
                .is_none_or(|s| s.health.usable(now, wall))
                && !self.over_budget(&upstream.name, secret, budget);
            if usable {
                *cursor = index + 1;
                return Some(PickedKey {
                    index,
                    secret: secret.clone(),
                    label: key_label(index, secret),
                });
            }
        }
        None
    }

    /// 这个上游还有没有现在能用的密钥。
    pub fn any_usable(&self, upstream: &UpstreamConfig, budget: i64) -> bool {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let states = self.states.lock().expect("密钥状态锁未被毒化");
        upstream.key_pool().iter().any(|secret| {
            states
                .get(&state_key(&upstream.name, secret))
                .is_none_or(|s| s.health.usable(now, wall))
                && !self.over_budget(&upstream.name, secret, budget)
        })
    }

    /// 记下一次尝试的结果：成功清掉冷却与休息；失败按 `verdict` 改状态。返回新状态（若变了）。
    pub fn record(
        &self,
        upstream: &UpstreamConfig,
        key: &PickedKey,
        result: Result<(), &GatewayError>,
    ) -> Option<KeyHealth> {
        let mut states = self.states.lock().expect("密钥状态锁未被毒化");
        let slot = states
            .entry(state_key(&upstream.name, &key.secret))
            .or_insert(KeyState {
                health: KeyHealth::Healthy,
                last_error: None,
            });
        match result {
            Ok(()) => {
                slot.health = KeyHealth::Healthy;
                None
            }
            Err(error) => {
                slot.last_error = Some(error.to_string());
                let health = verdict(error, || next_reset(&upstream.quota_reset))?;
                // 只有一个密钥时，限流就按重试的等待处理（等一会儿再用它），不把唯一的密钥冷却掉。
                if matches!(health, KeyHealth::Cooling(_)) && upstream.key_pool().len() == 1 {
                    return None;
                }
                match &health {
                    KeyHealth::Disabled => {
                        tracing::warn!(upstream = %upstream.name, key = %key.label, "密钥被上游拒绝（401/403），改掉它之前不再使用")
                    }
                    KeyHealth::Resting(_) => {
                        tracing::warn!(upstream = %upstream.name, key = %key.label, reset = %upstream.quota_reset, "密钥的每日配额用完，休息到配额重置")
                    }
                    _ => {
                        tracing::info!(upstream = %upstream.name, key = %key.label, "密钥被限流，暂时冷却")
                    }
                }
                slot.health = health.clone();
                Some(health)
            }
        }
    }

    /// 一个上游每个密钥的状态（设置页与用量页）。
    pub fn report(&self, upstream: &UpstreamConfig, budget: i64) -> Vec<KeyReport> {
        let (now, wall) = (Instant::now(), SystemTime::now());
        let states = self.states.lock().expect("密钥状态锁未被毒化");
        upstream
            .key_pool()
            .iter()
            .enumerate()
            .map(|(index, secret)| {
                let state = states.get(&state_key(&upstream.name, secret));
                let health = state
                    .map(|s| s.health.clone())
                    .filter(|h| !h.usable(now, wall))
                    .unwrap_or_else(|| {
                        if self.over_budget(&upstream.name, secret, budget) {
                            KeyHealth::OverBudget
                        } else {
                            KeyHealth::Healthy
                        }
                    });
                KeyReport {
                    label: key_label(index, secret),
                    health,
                    last_error: state.and_then(|s| s.last_error.clone()),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(keys: &[&str]) -> UpstreamConfig {
        UpstreamConfig {
            name: "u".into(),
            api_keys: keys.iter().map(|k| k.to_string()).collect(),
            ..Default::default()
        }
    }

    fn status(code: u16, google: &str, message: &str) -> GatewayError {
        GatewayError::Status {
            upstream: "u".into(),
            status: code,
            google_status: google.into(),
            message: message.into(),
            retry_after_secs: None,
            daily_quota: None,
        }
    }

    #[test]
    fn rotates_and_skips_disabled_resting_and_cooling_keys() {
        let states = KeyStates::default();
        let up = upstream(&["key-aaaa", "key-bbbb", "key-cccc"]);
        let order: Vec<usize> = (0..4).map(|_| states.pick(&up, 0).unwrap().index).collect();
        assert_eq!(order, [0, 1, 2, 0]);
        let first = states.pick(&up, 0).unwrap();
        assert_eq!((first.index, first.label.as_str()), (1, "#2 …bbbb"));
        assert_eq!(
            states.record(&up, &first, Err(&status(401, "UNAUTHENTICATED", "bad key"))),
            Some(KeyHealth::Disabled)
        );
        let second = states.pick(&up, 0).unwrap();
        assert_eq!(second.index, 2);
        let daily = status(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded: GenerateRequestsPerDayPerProjectPerModel",
        );
        assert!(matches!(
            states.record(&up, &second, Err(&daily)),
            Some(KeyHealth::Resting(_))
        ));
        // 只剩第一个。
        assert_eq!(
            (0..3)
                .map(|_| states.pick(&up, 0).unwrap().index)
                .collect::<Vec<_>>(),
            [0, 0, 0]
        );
        let third = states.pick(&up, 0).unwrap();
        assert!(matches!(
            states.record(
                &up,
                &third,
                Err(&status(429, "RESOURCE_EXHAUSTED", "rate limit"))
            ),
            Some(KeyHealth::Cooling(_))
        ));
        assert!(states.pick(&up, 0).is_none(), "都不可用");
        let report = states.report(&up, 0);
        assert_eq!(report[1].health, KeyHealth::Disabled);
        assert!(
            report.iter().all(|r| !r.label.contains("key-")),
            "只显示末 4 位"
        );
        // 改掉失效的密钥：新密钥是健康的。
        let edited = upstream(&["key-aaaa", "key-dddd", "key-cccc"]);
        assert_eq!(states.pick(&edited, 0).unwrap().index, 1);
    }

    #[test]
    fn a_key_over_its_monthly_budget_is_skipped_until_next_month() {
        let states = KeyStates::default();
        let up = upstream(&["key-aaaa", "key-bbbb"]);
        let budget = 1_000_000; // $1
        states.add_spend("u", "key-aaaa", 999_999);
        assert_eq!(states.pick(&up, budget).unwrap().index, 0, "还差一点，照用");
        states.add_spend("u", "key-aaaa", 1);
        let picks: Vec<usize> = (0..3)
            .map(|_| states.pick(&up, budget).unwrap().index)
            .collect();
        assert_eq!(picks, [1, 1, 1], "到了上限的密钥跳过");
        assert_eq!(states.report(&up, budget)[0].health, KeyHealth::OverBudget);
        assert!(states.pick(&up, 0).is_some(), "不设上限时照用");
        states.add_spend("u", "key-bbbb", 2_000_000);
        assert!(states.pick(&up, budget).is_none());
        assert!(
            !states.any_usable(&up, budget),
            "全都到了上限：跳过这个上游"
        );
        // 上个月的花费不算这个月的（接上用量表时按月份记）。
        let other = KeyStates::default();
        other.add_spend_in("u", "key-aaaa", "2000-01", 5_000_000);
        assert_eq!(other.pick(&up, budget).unwrap().index, 0);
    }
}
