//! 用量页（`/usage`）的数据：最近 30 天每天的张数（按上游叠起来）、最近 24 小时各上游的成功率与耗时、
//! 今天各调用方的张数与额度、各上游与密钥此刻的状态，以及页头的健康圆点。

use super::money::{Pricing, Spend};
use serde::{Deserialize, Serialize};

/// 工作台在用量与额度里的名字（所有会话合起来算一个调用方；`/v1` 的调用方按密钥的用途说明或“匿名”）。
pub const STUDIO_CLIENT: &str = "工作台";

/// 页头圆点：绿（都正常）、黄（有上游或密钥不正常）、红（没有能用的上游）。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    #[default]
    Green,
    Yellow,
    Red,
}

impl Health {
    pub fn label(self) -> &'static str {
        match self {
            Health::Green => "上游都正常",
            Health::Yellow => "有上游或密钥不正常",
            Health::Red => "没有能用的上游",
        }
    }
}

/// 一个上游此刻的样子。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct UpstreamLive {
    pub name: String,
    pub models: Vec<String>,
    /// `closed`（正常）、`open`（熔断中）、`half_open`（试探中）。
    pub circuit: String,
    pub in_flight: u32,
    pub keys: Vec<super::settings::KeyState>,
    pub last_error: Option<String>,
}

/// 最近 24 小时里一个上游的情况（来自用量表）。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct UpstreamStats {
    pub name: String,
    /// 上游尝试次数、成功的张数、失败次数（按分类）、重试与回退次数。
    pub requests: u64,
    pub images: u64,
    pub failures: std::collections::BTreeMap<String, u64>,
    pub retries: u64,
    pub fallbacks: u64,
    /// 成功率（0–1）；没有尝试时为空。
    pub success_rate: Option<f64>,
    /// 耗时的中位与 95 分位（毫秒，按直方图的桶上界估计）。
    pub p50_ms: Option<u64>,
    pub p95_ms: Option<u64>,
}

/// 今天一个调用方的张数与每日额度（0 为不限）。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClientToday {
    pub client: String,
    pub images: u64,
    pub budget: u32,
}

/// 用量页的全部数据。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct UsageReport {
    /// 最近几天（UTC 日期，旧的在前）。
    pub days: Vec<String>,
    /// 每个上游在每一天生成的张数：`images_per_day[i][d]` 是 `upstreams[i]` 在 `days[d]` 的张数。
    pub upstreams: Vec<String>,
    pub images_per_day: Vec<Vec<u64>>,
    pub last_24h: Vec<UpstreamStats>,
    pub clients_today: Vec<ClientToday>,
    pub live: Vec<UpstreamLive>,
    pub health: Health,
    /// 花费（按目录价格）：每天、按模型、按上游与密钥、按调用方。
    #[serde(default)]
    pub spend: SpendReport,
    /// 最近有用量的账号（筛选用），与这份报告只看的账号（空为全部）。
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub account: String,
}

/// 一格花费：已计费的与可能已计费的（美元，百万分之一；价格未知的记次数）。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SpendCell {
    pub billed: Spend,
    pub maybe: Spend,
}

impl SpendCell {
    pub fn merge(&mut self, other: SpendCell) {
        self.billed.merge(other.billed);
        self.maybe.merge(other.maybe);
    }
}

/// 花费表的一行：名字（模型、“上游 · 密钥 #n”或调用方）、成功的张数与花费。
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SpendLine {
    pub name: String,
    pub images: u64,
    pub spend: SpendCell,
}

/// 最近几天的花费（与 `UsageReport::days` 同一范围），金额都是美元的百万分之一，显示时按 `pricing` 换算。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SpendReport {
    pub pricing: Pricing,
    /// 与 `UsageReport::days` 一一对应。
    pub per_day: Vec<SpendCell>,
    pub by_model: Vec<SpendLine>,
    pub by_upstream_key: Vec<SpendLine>,
    pub by_client: Vec<SpendLine>,
    pub total: SpendCell,
}
