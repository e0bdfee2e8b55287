//! 浏览器与服务器共用的数据类型：宽高比、分辨率、生成请求与结果。
//!
//! 这里的类型同时编译进服务端与 WASM，所以只能依赖 serde 等两端都有的 crate。

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Gemini 图像模型支持的宽高比。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum AspectRatio {
    #[default]
    #[serde(rename = "1:1")]
    Square,
    #[serde(rename = "2:3")]
    P2x3,
    #[serde(rename = "3:2")]
    L3x2,
    #[serde(rename = "3:4")]
    P3x4,
    #[serde(rename = "4:3")]
    L4x3,
    #[serde(rename = "4:5")]
    P4x5,
    #[serde(rename = "5:4")]
    L5x4,
    #[serde(rename = "9:16")]
    P9x16,
    #[serde(rename = "16:9")]
    L16x9,
    #[serde(rename = "21:9")]
    L21x9,
}

impl AspectRatio {
    pub const ALL: [AspectRatio; 10] = [
        Self::Square,
        Self::P2x3,
        Self::L3x2,
        Self::P3x4,
        Self::L4x3,
        Self::P4x5,
        Self::L5x4,
        Self::P9x16,
        Self::L16x9,
        Self::L21x9,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Square => "1:1",
            Self::P2x3 => "2:3",
            Self::L3x2 => "3:2",
            Self::P3x4 => "3:4",
            Self::L4x3 => "4:3",
            Self::P4x5 => "4:5",
            Self::L5x4 => "5:4",
            Self::P9x16 => "9:16",
            Self::L16x9 => "16:9",
            Self::L21x9 => "21:9",
        }
    }

    /// 1K 档的像素尺寸（宽, 高），取自 Gemini 3 Pro Image 的官方尺寸表；2K、4K 分别乘 2、4。
    fn base_pixels(self) -> (u32, u32) {
        match self {
            Self::Square => (1024, 1024),
            Self::P2x3 => (848, 1264),
            Self::L3x2 => (1264, 848),
            Self::P3x4 => (896, 1200),
            Self::L4x3 => (1200, 896),
            Self::P4x5 => (928, 1152),
            Self::L5x4 => (1152, 928),
            Self::P9x16 => (768, 1376),
            Self::L16x9 => (1376, 768),
            Self::L21x9 => (1584, 672),
        }
    }
}

impl fmt::Display for AspectRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AspectRatio {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s.trim())
            .ok_or_else(|| {
                format!(
                    "不支持的宽高比“{s}”，可选：{}",
                    Self::ALL.map(|a| a.as_str()).join("、")
                )
            })
    }
}

/// 输出分辨率档位。Gemini 要求大写的 K。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ImageSize {
    #[default]
    #[serde(rename = "1K")]
    K1,
    #[serde(rename = "2K")]
    K2,
    #[serde(rename = "4K")]
    K4,
}

impl ImageSize {
    pub const ALL: [ImageSize; 3] = [Self::K1, Self::K2, Self::K4];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::K1 => "1K",
            Self::K2 => "2K",
            Self::K4 => "4K",
        }
    }

    fn scale(self) -> u32 {
        match self {
            Self::K1 => 1,
            Self::K2 => 2,
            Self::K4 => 4,
        }
    }
}

impl fmt::Display for ImageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ImageSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s.trim())
            .ok_or_else(|| format!("不支持的分辨率“{s}”，可选：1K、2K、4K"))
    }
}

impl AspectRatio {
    /// 与 `w`×`h` 最接近的宽高比（按对数比例的距离）。
    pub fn nearest(w: u32, h: u32) -> AspectRatio {
        let target = (w.max(1) as f64 / h.max(1) as f64).ln();
        let distance = |a: &AspectRatio| {
            let (aw, ah) = a.base_pixels();
            ((aw as f64 / ah as f64).ln() - target).abs()
        };
        Self::ALL
            .into_iter()
            .min_by(|a, b| distance(a).total_cmp(&distance(b)))
            .expect("宽高比列表非空")
    }
}

impl ImageSize {
    /// 按最长边选档：≤1600 为 1K，≤3200 为 2K，更大为 4K。
    pub fn for_longest_side(longest: u32) -> ImageSize {
        match longest {
            0..=1600 => Self::K1,
            1601..=3200 => Self::K2,
            _ => Self::K4,
        }
    }
}

/// 解析“宽x高”（如 `1024x1536`）为最接近的宽高比与分辨率档；`auto` 或空为 1:1、1K。
pub fn shape_from_size(size: Option<&str>) -> Result<(AspectRatio, ImageSize), String> {
    let size = match size.map(str::trim) {
        None | Some("") | Some("auto") => return Ok((AspectRatio::Square, ImageSize::K1)),
        Some(s) => s,
    };
    let bad = || format!("size 应为“宽x高”（例如 1024x1024）或 auto，收到“{size}”");
    let (w, h) = size.split_once(['x', 'X', '×']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 || w > 16_384 || h > 16_384 {
        return Err(bad());
    }
    Ok((
        AspectRatio::nearest(w, h),
        ImageSize::for_longest_side(w.max(h)),
    ))
}

/// 给定宽高比与分辨率档位时，生成图像的像素尺寸（宽, 高）。
pub fn pixel_size(aspect: AspectRatio, size: ImageSize) -> (u32, u32) {
    let (w, h) = aspect.base_pixels();
    (w * size.scale(), h * size.scale())
}

/// 工作台一次“生成”的输入。字段都可由任意 HTTP 客户端以 JSON 提交。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    pub prompt: String,
    #[serde(default)]
    pub aspect_ratio: AspectRatio,
    #[serde(default)]
    pub image_size: ImageSize,
    /// 参考图的 id（图库里的图片 id 或上传的 id）；非空即为图生图。
    #[serde(default)]
    pub references: Vec<String>,
}

/// 已保存到服务器的一张图像。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedImage {
    pub id: String,
    pub url: String,
    pub width: u32,
    pub height: u32,
    pub prompt: String,
    /// 模型随图返回的文字（若有）。
    pub note: Option<String>,
    /// 实际提供这张图的上游名称。
    pub upstream: String,
    /// 每次上游尝试的记录。
    pub attempts: Vec<AttemptInfo>,
}

/// 一次上游尝试的记录：哪个上游、状态码、耗时、字节数、结果分类。卡片与日志都展示它。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptInfo {
    pub upstream: String,
    /// 上游的 HTTP 状态码；没有收到响应（连不上、超时）时为空。
    pub status: Option<u16>,
    pub latency_ms: u64,
    /// 收到的图像字节数（成功时）。
    pub bytes: u64,
    /// `ok` 或错误分类（`timeout`、`status`、`bad_response` ……）。
    pub outcome: String,
    /// 失败原因（中文）。
    pub error: Option<String>,
}

/// 一次尝试的一句话中文说明，例如“上游 主上游：超时（耗时 300.0 秒）”。
pub fn describe_attempt(a: &AttemptInfo) -> String {
    let outcome = match a.outcome.as_str() {
        "ok" => "成功",
        "timeout" => "超时",
        "connect" => "连接失败",
        "status" => "返回错误状态",
        "bad_response" => "响应无法解析",
        "safety" => "被安全策略拦截",
        "no_image" => "没有返回图片",
        "invalid_request" => "请求被拒绝",
        "no_upstream" => "没有可用上游",
        "queue_full" => "排队已满",
        "circuit_open" => "已熔断，跳过",
        other => other,
    };
    let mut s = format!("上游 {}：{outcome}", a.upstream);
    if let Some(status) = a.status {
        s.push_str(&format!("（HTTP {status}）"));
    }
    s.push_str(&format!("，耗时 {:.1} 秒", a.latency_ms as f64 / 1000.0));
    if let Some(e) = &a.error {
        s.push_str(&format!("：{e}"));
    }
    s
}

/// 生成中的阶段。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// 正在把请求（含参考图）发给上游。
    Sending,
    /// 请求已发出，等上游生成。
    Waiting,
    /// 正在接收上游的响应。
    Receiving,
    /// 正在写入磁盘。
    Saving,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Self::Sending => "发送",
            Self::Waiting => "等待上游",
            Self::Receiving => "接收",
            Self::Saving => "保存",
        }
    }
}

/// 工作台一次提交：同一组参数生成 `count` 张，每张是一个独立的任务（卡片）。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubmitRequest {
    pub prompt: String,
    /// 1–16。
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub aspect_ratio: AspectRatio,
    #[serde(default)]
    pub image_size: ImageSize,
    /// 模型；空为上游配置的默认模型。
    #[serde(default)]
    pub model: String,
    /// 参考图 id（图库图片 id 或上传 id）。
    #[serde(default)]
    pub references: Vec<String>,
}

fn one() -> u32 {
    1
}

/// 一次提交最多几张。
pub const MAX_BATCH: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
    /// 服务器在它运行时停止了（重启后显示，可重试）。
    Interrupted,
}

impl JobState {
    /// 同一次运行里状态只会往前走：排队中 → 生成中 → 终态。
    fn step(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Running => 1,
            _ => 2,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Queued => "排队中",
            Self::Running => "生成中",
            Self::Done => "已完成",
            Self::Failed => "失败",
            Self::Cancelled => "已取消",
            Self::Interrupted => "中断",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Done,
            Self::Failed,
            Self::Cancelled,
            Self::Interrupted,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// 还在排队或运行（可取消）。
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }

    /// 可以重试。
    pub fn can_retry(self) -> bool {
        matches!(self, Self::Failed | Self::Cancelled | Self::Interrupted)
    }
}

/// 任务产出的图片。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobImage {
    pub id: String,
    pub url: String,
    pub thumb_url: String,
    pub width: u32,
    pub height: u32,
}

/// 一张卡片（一个任务）此刻的样子。`/ws` 推送的就是它。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub job_id: String,
    pub batch_id: String,
    /// 在本批中的序号（从 1 起）与本批张数。
    pub index: u32,
    pub count: u32,
    pub prompt: String,
    pub aspect_ratio: AspectRatio,
    pub image_size: ImageSize,
    pub model: String,
    pub reference_ids: Vec<String>,
    pub state: JobState,
    pub phase: Option<Phase>,
    /// 0–100，只增不减；保存完成才到 100。
    pub percent: u8,
    /// 第几次运行（重试一次加一）。
    pub run: u32,
    /// 本次运行里第几次上游尝试。
    pub attempt: u32,
    pub upstream: Option<String>,
    /// 本次运行已用时间。
    pub elapsed_ms: u64,
    /// 预计还需多久；没有依据或已超出平常用时时为空。
    pub eta_ms: Option<u64>,
    /// 当前阶段（发送/接收）已传输与总字节数。
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    /// 失败原因（中文）。
    pub error: Option<String>,
    /// 本次运行的上游尝试记录。
    pub attempts: Vec<AttemptInfo>,
    pub image: Option<JobImage>,
    pub created_at: String,
    /// 服务器上最近一次变化的时刻（Unix 毫秒）；浏览器用它算推送延迟。
    pub changed_at_ms: u64,
}

impl JobView {
    /// 这份视图是否不比 `other` 旧。同一任务的视图可能从两条路到达（提交的 HTTP 响应与 `/ws` 推送），
    /// 先后不定：按（第几次运行、状态的先后、服务器上的变化时刻）比较，旧的不能覆盖新的。
    pub fn is_not_older_than(&self, other: &JobView) -> bool {
        (self.run, self.state.step(), self.changed_at_ms)
            >= (other.run, other.state.step(), other.changed_at_ms)
    }
}

/// `/ws` 上的消息。连接后先发一次 `snapshot`，之后是单个任务的更新与移除。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobMessage {
    Snapshot { jobs: Vec<JobView> },
    Job(Box<JobView>),
    Removed { job_id: String },
}

/// 每次页面渲染时由服务器提供给页面的信息（只在服务端读取）。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageInfo {
    /// 未配置任何上游，正在使用内置演示上游。
    pub demo_mode: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(run: u32, state: JobState, changed_at_ms: u64) -> JobView {
        JobView {
            job_id: "j".into(),
            batch_id: "b".into(),
            index: 1,
            count: 1,
            prompt: "p".into(),
            aspect_ratio: AspectRatio::Square,
            image_size: ImageSize::K1,
            model: String::new(),
            reference_ids: Vec::new(),
            state,
            phase: None,
            percent: 0,
            run,
            attempt: 0,
            upstream: None,
            elapsed_ms: 0,
            eta_ms: None,
            bytes_done: 0,
            bytes_total: None,
            error: None,
            attempts: Vec::new(),
            image: None,
            created_at: String::new(),
            changed_at_ms,
        }
    }

    #[test]
    fn a_late_submit_response_does_not_undo_pushed_progress() {
        let queued = view(1, JobState::Queued, 100);
        // 同一毫秒里就失败了：推送先到，提交的响应（排队中）后到。
        let failed = view(1, JobState::Failed, 100);
        assert!(failed.is_not_older_than(&queued));
        assert!(!queued.is_not_older_than(&failed));
        // 进度更新按时刻前进；重试后的新一轮排队覆盖上一轮的终态。
        assert!(view(1, JobState::Running, 120).is_not_older_than(&view(
            1,
            JobState::Running,
            110
        )));
        assert!(!view(1, JobState::Running, 110).is_not_older_than(&view(
            1,
            JobState::Running,
            120
        )));
        assert!(view(2, JobState::Queued, 130).is_not_older_than(&failed));
    }

    #[test]
    fn every_aspect_ratio_round_trips_and_matches_its_ratio() {
        for a in AspectRatio::ALL {
            assert_eq!(a.as_str().parse::<AspectRatio>().unwrap(), a);
            let (w, h) = pixel_size(a, ImageSize::K1);
            let (rw, rh) = a.as_str().split_once(':').unwrap();
            let want = rw.parse::<f64>().unwrap() / rh.parse::<f64>().unwrap();
            let got = w as f64 / h as f64;
            assert!((got - want).abs() / want < 0.03, "{a}: {w}x{h}");
        }
    }

    #[test]
    fn sizes_scale_with_resolution() {
        assert_eq!(
            pixel_size(AspectRatio::L16x9, ImageSize::K4),
            (1376 * 4, 768 * 4)
        );
        assert!("2k".parse::<ImageSize>().is_err());
        assert!("7:3".parse::<AspectRatio>().is_err());
    }
}
