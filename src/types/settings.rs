//! 设置页与服务器之间交换的数据（两端共用）。密钥只进不出：服务器只告诉页面“已设置”与否。

use serde::{Deserialize, Serialize};

/// 上游的协议方言，只在这里声明一次：配置文件里的写法、设置页的下拉框、默认补上的版本路径都从它来。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamKind {
    /// Gemini 原生的 `…:generateContent`。
    #[default]
    Gemini,
    /// OpenAI 的 `/v1/images/generations` 与 `/edits`。
    OpenaiImages,
    /// OpenAI 的 `/v1/chat/completions`（图在 `message.images` 或 Markdown 里）。
    OpenaiChat,
    /// 豆包（火山方舟 Seedream）的 `/api/v3/images/generations`。
    Doubao,
}

impl UpstreamKind {
    pub const ALL: [UpstreamKind; 4] = [
        UpstreamKind::Gemini,
        UpstreamKind::OpenaiImages,
        UpstreamKind::OpenaiChat,
        UpstreamKind::Doubao,
    ];

    /// 配置文件与设置页里的写法。
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamKind::Gemini => "gemini",
            UpstreamKind::OpenaiImages => "openai-images",
            UpstreamKind::OpenaiChat => "openai-chat",
            UpstreamKind::Doubao => "doubao",
        }
    }

    /// 地址末尾没有版本路径时补上的（`base_url` 以 `/v1`、`/v1beta`、`/api/v3` 结尾时照用）。
    pub fn default_version_path(self) -> &'static str {
        match self {
            UpstreamKind::Gemini => "/v1beta",
            UpstreamKind::OpenaiImages | UpstreamKind::OpenaiChat => "/v1",
            UpstreamKind::Doubao => "/api/v3",
        }
    }
}

impl std::str::FromStr for UpstreamKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        UpstreamKind::ALL
            .into_iter()
            .find(|k| k.as_str() == text.trim())
            .ok_or_else(|| {
                let all: Vec<&str> = UpstreamKind::ALL.iter().map(|k| k.as_str()).collect();
                format!("类型“{}”未知，可选：{}", text.trim(), all.join("、"))
            })
    }
}

/// 页面看到的一个上游。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct UpstreamForm {
    pub name: String,
    /// `gemini`、`openai-images` 或 `openai-chat`。
    pub kind: String,
    pub base_url: String,
    /// 提供的模型，逗号或空格分隔，第一个是默认模型。
    pub model: String,
    pub max_concurrent: u32,
    /// 同一优先级的上游按它分担（1–1000）。
    #[serde(default = "one")]
    pub weight: u32,
    /// 与上一个上游同一优先级（按权重分担，而不是等上一个失败才用）。
    #[serde(default)]
    pub share_with_previous: bool,
    /// 读取时：是否已设置密钥。
    #[serde(default)]
    pub api_key_set: bool,
    /// 读取时：密钥池里有几个密钥。
    #[serde(default)]
    pub api_key_count: usize,
    /// 读取时：每个密钥的状态（序号与末 4 位、正常/失效/休息/冷却、最近的错误）。
    #[serde(default)]
    pub key_states: Vec<KeyState>,
    /// 保存时：新密钥，一行一个（整个池换成这些）。空表示不改（沿用 `previous_name` 那个上游原来的密钥）。
    #[serde(default)]
    pub api_key: String,
    /// 保存时：清除密钥。
    #[serde(default)]
    pub clear_api_key: bool,
    /// 这个上游修改前的名字（新建的为空），用来找回它原来的密钥。
    #[serde(default)]
    pub previous_name: String,
}

fn one() -> u32 {
    1
}

/// 密钥池里一个密钥此刻的状态（只有序号与末 4 位，没有密钥本身）。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct KeyState {
    /// `#2 …abcd`。
    pub label: String,
    /// `ok`（正常）、`disabled`（失效）、`resting`（配额用完，休息中）、`cooling`（被限流，冷却中）。
    pub state: String,
    /// 给人看的状态，例如“失效（401/403），改掉密钥后恢复”“休息到 2026-12-01 16:00 北京时间”。
    pub label_zh: String,
    pub last_error: Option<String>,
}

/// 设置页上的一个数字项。这张表是这些数字唯一的清单：设置页的行、保存时的映射与配置校验的范围都由它产生；
/// 加一个数字设置 = 在配置结构里加字段（默认值）+ 在这里加一行。
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberSetting {
    /// 配置文件里的键（`节.名字`）。
    pub key: &'static str,
    pub label: &'static str,
    /// 单位（显示在标签里），没有单位为空。
    pub unit: &'static str,
    pub min: u64,
    pub max: u64,
    /// 与配置结构的默认值一致（有测试检查）。
    pub default: u64,
}

/// 设置页上的一个开关项。
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagSetting {
    pub key: &'static str,
    pub label: &'static str,
    /// 开关旁的说明。
    pub note: &'static str,
    pub default: bool,
}

const fn number(
    key: &'static str,
    label: &'static str,
    unit: &'static str,
    (min, max): (u64, u64),
    default: u64,
) -> NumberSetting {
    NumberSetting {
        key,
        label,
        unit,
        min,
        max,
        default,
    }
}

/// 限流、并发、重试、熔断、超时与上传的数字设置。
pub const NUMBER_SETTINGS: &[NumberSetting] = &[
    number(
        "limits.requests_per_minute",
        "每分钟请求数",
        "",
        (1, 1_000_000),
        60,
    ),
    number("limits.burst", "突发", "", (1, 100_000), 20),
    number(
        "limits.images_per_minute",
        "工作台每分钟张数",
        "",
        (1, 100_000),
        256,
    ),
    number("limits.max_concurrent", "全局并发上限", "", (1, 1024), 16),
    number("limits.queue_size", "排队上限", "", (0, 100_000), 256),
    number(
        "limits.max_queued_jobs",
        "工作台排队任务上限",
        "",
        (4, 100_000),
        1024,
    ),
    number(
        "limits.max_batch_jobs",
        "每批最多任务数",
        "",
        (1, 10_000),
        256,
    ),
    number(
        "limits.max_upstream_response_mb",
        "上游响应上限",
        "MB",
        (1, 1024),
        64,
    ),
    number(
        "limits.studio_images_per_day",
        "工作台每天张数（0 不限）",
        "",
        (0, 10_000_000),
        0,
    ),
    number(
        "limits.studio_max_concurrent",
        "工作台同时生成（0 不限）",
        "",
        (0, 1024),
        0,
    ),
    number(
        "limits.usage_keep_days",
        "用量按小时保留",
        "天",
        (1, 3650),
        90,
    ),
    number("retry.max_attempts", "每个上游最多尝试次数", "", (1, 10), 3),
    number(
        "retry.base_delay_ms",
        "重试基础间隔",
        "毫秒",
        (0, 600_000),
        500,
    ),
    number(
        "retry.max_delay_ms",
        "重试最大间隔",
        "毫秒",
        (0, 600_000),
        8000,
    ),
    number(
        "retry.breaker_failures",
        "熔断：连续失败次数",
        "",
        (1, 1000),
        5,
    ),
    number(
        "retry.breaker_cooldown_s",
        "熔断：暂停",
        "秒",
        (1, 86_400),
        30,
    ),
    number(
        "timeouts.connect_ms",
        "连接超时",
        "毫秒",
        (100, 600_000),
        5000,
    ),
    number("timeouts.attempt_s", "单次尝试超时", "秒", (1, 3600), 300),
    number("timeouts.total_s", "总时限", "秒", (1, 86_400), 900),
    number(
        "storage.max_upload_mb",
        "参考图大小上限",
        "MB",
        (1, 500),
        20,
    ),
];

/// 开关设置。
pub const FLAG_SETTINGS: &[FlagSetting] = &[
    FlagSetting {
        key: "retry.retry_maybe_billed",
        label: "可能重复计费的失败也重试",
        note: "500、504 与单次超时时上游可能已经生成并计费；打开则最多再试一次，可能被收两次费",
        default: true,
    },
    FlagSetting {
        key: "server.metrics_public",
        label: "/metrics 对所有人开放",
        note: "关闭时 /metrics 要管理员会话或 /v1 密钥",
        default: false,
    },
];

/// 数字设置的值，键为配置里的键（如 `limits.burst`）。
pub type Numbers = std::collections::BTreeMap<String, u64>;
/// 开关设置的值，键为配置里的键。
pub type Flags = std::collections::BTreeMap<String, bool>;

/// 一个在用的存储根。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootInfo {
    pub path: String,
    pub images: u64,
    /// 所在磁盘的可用空间（字节）；读不到时为空。
    pub free_bytes: Option<u64>,
}

/// 对象存储（S3 兼容）的连接：存储根写成 `s3://桶/前缀` 时用。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct S3Form {
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    /// 只写：设置页读到的总是空；保存时空表示沿用原来的。
    pub secret_access_key: String,
    /// 是否已经设了密钥（配置文件里的；环境变量里的不算）。
    pub secret_set: bool,
}

/// `get_settings` 的结果。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SettingsView {
    /// 上游，按优先级排好（排在前面的先用）。
    pub upstreams: Vec<UpstreamForm>,
    pub storage_root: String,
    pub s3: S3Form,
    pub database: String,
    pub roots: Vec<RootInfo>,
    pub listen: String,
    pub numbers: Numbers,
    pub flags: Flags,
    pub config_path: String,
    /// 集群模式（元数据在 PostgreSQL）：设置存在库里，这是本实例运行着的版本；单机模式为 `None`。
    #[serde(default)]
    pub shared_version: Option<i64>,
    pub admin_password_set: bool,
    /// 是否设了工作台密码（设了之后工作台要登录）。
    pub studio_password_set: bool,
    /// 花费的显示币种、汇率与工作台的花费上限。
    #[serde(default)]
    pub money: MoneyForm,
    /// 设置页创建的 API 密钥（只有前缀）。
    pub keys: Vec<KeyInfo>,
    /// 配置文件或环境变量里明文写的密钥个数（不在页面上显示内容）。
    pub plain_keys: usize,
}

/// 列表里的一个 API 密钥。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub label: String,
    pub prefix: String,
    pub created_at: String,
    pub last_used: Option<String>,
    /// 每天最多几张、同时几个请求（0 为不限）。
    #[serde(default)]
    pub images_per_day: u32,
    #[serde(default)]
    pub max_concurrent: u32,
    /// 每天与每月最多花多少（显示币种；0 为不限）。
    #[serde(default)]
    pub max_spend_per_day: f64,
    #[serde(default)]
    pub max_spend_per_month: f64,
    /// 所属的账号（空为不属于任何人）。
    #[serde(default)]
    pub owner: String,
}

/// 设置页的“花费”一节（`[usage]` 与 `limits.studio_max_spend_*`）：金额都按所选币种，0 为不限。
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MoneyForm {
    pub currency: super::money::Currency,
    pub cny_per_usd: f64,
    pub studio_max_spend_per_day: f64,
    pub studio_max_spend_per_month: f64,
}

impl Default for MoneyForm {
    fn default() -> Self {
        Self {
            currency: super::money::Currency::Usd,
            cny_per_usd: 7.2,
            studio_max_spend_per_day: 0.0,
            studio_max_spend_per_month: 0.0,
        }
    }
}

/// 创建密钥时的额度（0 为不限）：张数、同时请求数、每天与每月的花费（显示币种）。
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct KeyLimits {
    pub images_per_day: u32,
    pub max_concurrent: u32,
    pub max_spend_per_day: f64,
    pub max_spend_per_month: f64,
}

/// 刚创建的密钥：原文只在这一次返回。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedKey {
    pub key: String,
    pub prefix: String,
    pub label: String,
}

/// `save_settings` 的请求：整份可编辑的设置。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingsUpdate {
    pub upstreams: Vec<UpstreamForm>,
    pub storage_root: String,
    /// 对象存储的连接；不给表示不改（密钥留空也表示沿用原来的）。
    #[serde(default)]
    pub s3: Option<S3Form>,
    pub numbers: Numbers,
    #[serde(default)]
    pub flags: Flags,
    /// 花费的币种、汇率与工作台的花费上限；不给表示不改。
    #[serde(default)]
    pub money: Option<MoneyForm>,
    /// 监听地址“IP:端口”；与当前不同则切换（先绑新地址，成功才保存）。
    pub listen: String,
    /// 新的工作台密码（明文，服务器存它的 argon2 哈希）；空表示不改。
    #[serde(default)]
    pub studio_password: String,
    /// 清除工作台密码（工作台对能访问端口的所有人开放）。
    #[serde(default)]
    pub clear_studio_password: bool,
    /// 集群模式：这份表单是在第几版设置上改的（`SettingsView::shared_version`）。
    /// 之后别的实例又保存过，就拒绝，不用旧表单盖掉别人的改动。
    #[serde(default)]
    pub shared_version: Option<i64>,
}

/// “测试连接”的结果。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub ok: bool,
    pub latency_ms: u64,
    pub message: String,
}
