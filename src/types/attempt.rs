//! 上游尝试的记录：卡片、图库详情、日志与 `/v1` 的错误都用它说明发生了什么。

use super::money::{Micros, Spend};
use serde::{Deserialize, Serialize};

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
    /// 这次尝试可能已被上游计费（请求送到了模型那里：成功的、超时的、回答坏了的……）。
    #[serde(default)]
    pub maybe_billed: bool,
    /// 用的模型（按模型路由或改用备选模型时能看出是哪个）。
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// 用的密钥：序号与末 4 位（`#2 …abcd`），绝不是密钥本身。
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// 回来的图与要求的尺寸不符时的说明（例如“要 2048×2048，收到 1024×1024”）。
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_mismatch: Option<String>,
    /// 这次尝试的模型与分辨率在目录里的每张价格（美元，百万分之一），尝试时记下；目录里没有价格时为空（价格未知）。
    /// 只有已计费与可能已计费的尝试才花钱，见 [`Billing`]。
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Micros>,
    /// 局部修改时模型原样画回来的图（贴回原图之前的那张）存在上传区里的 id（`/uploads/{id}` 取得到），供查看。
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_output: Option<String>,
}

/// 一次尝试的计费类别。
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Billing {
    /// 成功：上游出了图（尺寸不符被丢掉的也算）。
    Billed,
    /// 失败，但请求可能已经到了模型那里（超时、回答坏了……）。
    MaybeBilled,
    /// 没有到模型那里（连不上、被拒、熔断跳过……）。
    Unbilled,
}

impl AttemptInfo {
    pub fn billing(&self) -> Billing {
        match (self.outcome == "ok", self.maybe_billed) {
            (true, _) => Billing::Billed,
            (false, true) => Billing::MaybeBilled,
            (false, false) => Billing::Unbilled,
        }
    }
}

/// 一组尝试（一张图或一次请求）的花费：已计费的与可能已计费的分开算；价格未知的记次数。
pub fn spend_of(attempts: &[AttemptInfo]) -> (Spend, Spend) {
    let mut billed = Spend::default();
    let mut maybe = Spend::default();
    for a in attempts {
        match a.billing() {
            Billing::Billed => billed.add(a.price),
            Billing::MaybeBilled => maybe.add(a.price),
            Billing::Unbilled => {}
        }
    }
    (billed, maybe)
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
        "too_large" => "响应太大",
        "redirect" => "要求重定向（未跟随）",
        other => other,
    };
    let billing = match a.billing() {
        Billing::Billed => "已计费",
        Billing::MaybeBilled => "可能已计费",
        Billing::Unbilled => "未计费",
    };
    let mut s = format!("上游 {}", a.upstream);
    if let Some(model) = &a.model {
        s.push_str(&format!("（模型 {model}）"));
    }
    if let Some(key) = &a.key {
        s.push_str(&format!("（密钥 {key}）"));
    }
    s.push_str(&format!("：{outcome}（{billing}）"));
    if let Some(status) = a.status {
        s.push_str(&format!("（HTTP {status}）"));
    }
    s.push_str(&format!("，耗时 {:.1} 秒", a.latency_ms as f64 / 1000.0));
    if let Some(e) = &a.error {
        s.push_str(&format!("：{e}"));
    }
    if let Some(m) = &a.size_mismatch {
        s.push_str(&format!("；尺寸不符：{m}"));
    }
    s
}
