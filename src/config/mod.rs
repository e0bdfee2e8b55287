//! 配置：一个 TOML 文件，每一项都可省略（取默认值）。
//!
//! - `mod.rs`（本文件）：配置的结构与默认值，和 DESIGN §9 的示例一一对应。
//! - `load.rs`：读取、解析、校验，错误用中文指出是哪一项、为什么。

mod apply;
mod error;
mod load;
mod money;
pub mod quota;
mod save;
pub mod shared;
pub mod table;

pub use apply::{ConfigStore, Edit, OnApplied};
pub use error::ConfigError;
pub use load::{check_s3_location, load, parse, validate_listen, LoadedConfig};
pub use save::ConfigFile;

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// 运行中的配置。之后的设置页会整体替换它；读取方每次 `load()` 得到当时的快照。
pub type ConfigHandle = Arc<arc_swap::ArcSwap<Config>>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub limits: LimitsConfig,
    pub retry: RetryConfig,
    pub timeouts: TimeoutsConfig,
    pub routing: RoutingConfig,
    pub cluster: ClusterConfig,
    pub usage: UsageConfig,
    #[serde(skip_serializing_if = "AccountsConfig::is_default")]
    pub accounts: AccountsConfig,
    pub upstreams: Vec<UpstreamConfig>,
    /// 模型目录的改写与补充（同 id 的改写编进程序的，新的追加），见 `crate::catalogue`。
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<crate::types::catalogue::ModelInfo>,
}

/// 团队账号（账号本身在元数据库里，见 `crate::access::accounts`）。
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct AccountsConfig {
    /// 成员在图库里只看得到自己的图（管理员照样看全部）；默认 false：大家互相看得到，“我的”只是筛选。
    pub private_galleries: bool,
}

impl AccountsConfig {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// 花费的显示：币种与汇率（价格在目录里都是美元，见 `crate::types::money`）。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UsageConfig {
    /// `USD`（默认）或 `CNY`。预算（`max_spend_per_*`）也按这个币种写。
    pub currency: crate::types::money::Currency,
    /// 1 美元折合多少人民币（`currency = "CNY"` 时用）。
    pub cny_per_usd: f64,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            currency: crate::types::money::Currency::Usd,
            cny_per_usd: 7.2,
        }
    }
}

impl UsageConfig {
    /// 显示与预算用的币种和汇率。
    pub fn pricing(&self) -> crate::types::money::Pricing {
        use crate::types::money::{Currency, Micros, Pricing};
        match self.currency {
            Currency::Usd => Pricing::default(),
            Currency::Cny => Pricing {
                currency: Currency::Cny,
                rate: Micros::from_decimal(self.cny_per_usd),
            },
        }
    }

    /// 配置里写的金额（显示币种的小数）→ 美元（百万分之一）。
    pub fn to_usd(&self, amount: f64) -> crate::types::money::Micros {
        self.pricing()
            .to_usd(crate::types::money::Micros::from_decimal(amount))
    }
}

/// 几个实例共用一个 PostgreSQL 时的约定。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterConfig {
    /// 租约（秒）：实例每隔它的三分之一在库里报一次平安；一个实例超过这么久没报，
    /// 它正在生成的任务由别的实例标为“中断”（可重试）。
    pub lease_s: u32,
    /// 几个实例共用设置：设置页保存进数据库（不写本机文件），各实例 2 秒内生效；
    /// 本机文件只提供监听地址与元数据库。要求元数据在 PostgreSQL。
    pub shared_settings: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            lease_s: 30,
            shared_settings: false,
        }
    }
}

/// 按模型路由的补充规则。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct RoutingConfig {
    /// 模型 → 备选模型：这个模型的上游都不可用（熔断、密钥用尽、都失败）时，依次改用这些模型。
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub model_fallbacks: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// 监听地址，例如 `127.0.0.1:3000`。
    pub listen: String,
    /// 对外的绝对地址（位于反向代理之后时用于拼接图片 URL），空表示按请求的 Host 拼接。
    pub public_url: String,
    /// 可信代理：只有来自这些地址（IP 或网段）的 `X-Forwarded-For` 才会被采信。
    pub trusted_proxies: Vec<String>,
    /// 除本机名字与地址、监听地址、`public_url` 的主机之外，还允许的 `Host`（防 DNS 重绑定）。
    pub allowed_hosts: Vec<String>,
    /// `/metrics` 是否对所有人开放（否则要管理员会话或 `/v1` 密钥）。
    pub metrics_public: bool,
    /// 交给 `/v1` 调用方的签名图片链接的有效期（秒）。
    pub file_url_ttl_s: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:3000".into(),
            public_url: String::new(),
            trusted_proxies: Vec::new(),
            allowed_hosts: Vec::new(),
            metrics_public: false,
            file_url_ttl_s: 7 * 24 * 3600,
        }
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    /// 新图片写到的根目录；相对路径以配置文件所在目录为基准（没有配置文件时以当前目录为基准）。
    pub root: PathBuf,
    /// 元数据库：SQLite 文件的路径（留空表示 `{root}/factory.db`），或 PostgreSQL 的连接串
    /// `postgres://用户:密码@主机:端口/库名`（几个实例共用元数据时；密码不在页面与日志里出现）。
    /// 改 `root` 时把它固定在原来的位置，旧图片就仍在图库里、仍可下载（设置页改根目录时会自动这样做）。
    pub database: PathBuf,
    pub max_upload_mb: u32,
    /// `root` 是 `s3://桶/前缀` 时用的对象存储连接。
    pub s3: S3Config,
}

/// S3 兼容对象存储的连接（AWS S3、MinIO、Ceph 等）。留空的项取 `AWS_*` 环境变量
/// （`AWS_ENDPOINT`、`AWS_REGION`、`AWS_ACCESS_KEY_ID`、`AWS_SECRET_ACCESS_KEY`）。
#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct S3Config {
    /// 服务地址，例如 `http://127.0.0.1:9000`；AWS 本身留空。
    pub endpoint: String,
    /// 区域，例如 `us-east-1`。
    pub region: String,
    pub access_key_id: String,
    /// 只写：设置页与日志都不显示。
    pub secret_access_key: String,
    /// 浏览器取图时不经过本服务：`/files/…` 回一个 15 分钟有效的预签名链接（307），由浏览器直接向对象存储取。
    /// 这时对象存储要能被浏览器访问到（页面的 CSP 会放行它的地址）。
    pub presign: bool,
}

/// 调试输出里的数据库连接串不带密码。
impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageConfig")
            .field("root", &self.root)
            .field("database", &self.database_display())
            .field("max_upload_mb", &self.max_upload_mb)
            .field("s3", &self.s3)
            .finish()
    }
}

/// 调试输出里不出现密钥（连这一项的名字也不出现）。
impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("presign", &self.presign)
            .finish_non_exhaustive()
    }
}

/// 默认的数据库文件名（位于存储根下）。
pub const DB_FILE: &str = "factory.db";

/// `storage.database` 写的是 PostgreSQL 的连接串（而不是 SQLite 文件的路径）。
pub fn is_postgres_url(database: &str) -> bool {
    database.starts_with("postgres://") || database.starts_with("postgresql://")
}

impl StorageConfig {
    /// 元数据在 PostgreSQL 里。
    pub fn database_is_postgres(&self) -> bool {
        is_postgres_url(&self.database.to_string_lossy())
    }

    /// 给人看的数据库位置：文件路径，或去掉了密码的连接串。
    pub fn database_display(&self) -> String {
        let text = self.database_path().to_string_lossy().into_owned();
        if !is_postgres_url(&text) {
            return text;
        }
        match url::Url::parse(&text) {
            Ok(mut u) => {
                if u.password().is_some() {
                    let _ = u.set_password(Some("***"));
                }
                // 密码也可以写在参数里（?password=…）。
                let pairs: Vec<(String, String)> = u
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if k == "password" {
                            "***".into()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                if !pairs.is_empty() {
                    u.query_pairs_mut().clear().extend_pairs(pairs);
                }
                u.to_string()
            }
            Err(_) => "postgres://（连接串无法解析）".into(),
        }
    }

    /// 数据库文件的实际位置。
    pub fn database_path(&self) -> PathBuf {
        if self.database.as_os_str().is_empty() {
            self.root.join(DB_FILE)
        } else {
            self.database.clone()
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            root: PathBuf::from("storage"),
            database: PathBuf::new(),
            max_upload_mb: 20,
            s3: S3Config::default(),
        }
    }
}

#[derive(Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct AuthConfig {
    /// 明文写在配置里的 `/v1` 密钥（手工管理；也可用环境变量 `FACTORY_API_KEYS`）。
    pub api_keys: Vec<String>,
    /// 设置页创建的密钥：只存 SHA-256，原文只在创建时显示一次。
    pub keys: Vec<ApiKeyEntry>,
    pub admin_password_hash: String,
    pub studio_password_hash: String,
    /// 没有任何 `/v1` 密钥、而端口与别人共用（设了工作台密码、监听非本机地址或在代理之后）时，
    /// `/v1` 默认 401；写 `true` 照旧开放（启动时警告）。见 `crate::access::exposure`。
    pub open_v1: bool,
}

/// 设置页创建的一个 API 密钥。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ApiKeyEntry {
    /// 用途说明，例如“设计组脚本”。
    pub label: String,
    /// 密钥开头的几个字符，用来在列表里认出它。
    pub prefix: String,
    /// 整个密钥的 SHA-256（十六进制）。
    pub sha256: String,
    pub created_at: String,
    /// 每天最多生成几张图（按张数，不按请求）；0 为不限。
    #[serde(skip_serializing_if = "is_zero")]
    pub images_per_day: u32,
    /// 同时最多几个请求在生成；0 为不限。
    #[serde(skip_serializing_if = "is_zero")]
    pub max_concurrent: u32,
    /// 每天（UTC）与每个自然月最多花多少（`[usage] currency` 的币种，按目录价格）；0 为不限。
    #[serde(skip_serializing_if = "is_zero_amount")]
    pub max_spend_per_day: f64,
    #[serde(skip_serializing_if = "is_zero_amount")]
    pub max_spend_per_month: f64,
    /// 所属的账号（成员自己建的密钥，或管理员建时指定）：用量与额度也记在这个账号下，账号停用时密钥随之失效。
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_amount(n: &f64) -> bool {
    *n == 0.0
}

impl AuthConfig {
    /// 是否要求 `/v1` 带密钥。
    pub fn requires_key(&self) -> bool {
        !self.api_keys.is_empty() || !self.keys.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    /// `/v1` 每分钟请求数与突发（按 API 密钥，否则按客户端 IP）。
    pub requests_per_minute: u32,
    pub burst: u32,
    /// 工作台每分钟可提交的图片张数（按会话，否则按 IP）；突发等于它本身（一分钟的量可以一次用完）。
    pub images_per_minute: u32,
    /// 同时在途的上游调用上限（全服务器）与排队上限。
    pub max_concurrent: u32,
    pub queue_size: u32,
    /// 工作台排队等待的任务上限（全服务器）；每个客户端最多占四分之一。
    pub max_queued_jobs: u32,
    /// 工作台一次提交（一个批次）最多展开成几个任务。
    pub max_batch_jobs: u32,
    /// 上游响应体的大小上限（MB）。
    pub max_upstream_response_mb: u32,
    /// 工作台（所有会话合起来算一个客户端“工作台”）每天最多生成几张；0 为不限。
    pub studio_images_per_day: u32,
    /// 工作台同时最多几张在生成；0 为只受 `max_concurrent` 约束。
    pub studio_max_concurrent: u32,
    /// 工作台每天（UTC）与每个自然月最多花多少（`[usage] currency` 的币种，按目录价格）；0 为不限。
    #[serde(skip_serializing_if = "is_zero_amount")]
    pub studio_max_spend_per_day: f64,
    #[serde(skip_serializing_if = "is_zero_amount")]
    pub studio_max_spend_per_month: f64,
    /// 用量记录按小时保留几天；更早的按天合并。
    pub usage_keep_days: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            requests_per_minute: 60,
            burst: 20,
            images_per_minute: 256,
            max_concurrent: 16,
            queue_size: 256,
            max_queued_jobs: 1024,
            max_batch_jobs: 256,
            max_upstream_response_mb: 64,
            studio_images_per_day: 0,
            studio_max_concurrent: 0,
            studio_max_spend_per_day: 0.0,
            studio_max_spend_per_month: 0.0,
            usage_keep_days: 90,
        }
    }
}

impl LimitsConfig {
    /// 一个客户端（会话或 IP）最多排队的任务数。
    pub fn queued_jobs_per_client(&self) -> usize {
        (self.max_queued_jobs as usize / 4).max(1)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetryConfig {
    /// 每个上游最多尝试几次（含第一次）。
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    /// 500、504 与单次超时是否重试（最多一次）。这类失败上游可能已经生成并计费，重试可能被收两次费。
    pub retry_maybe_billed: bool,
    /// 连续失败多少次后熔断该上游（跳过它一段时间）。
    pub breaker_failures: u32,
    /// 熔断持续多少秒，之后放一个探测请求过去。
    pub breaker_cooldown_s: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay_ms: 500,
            max_delay_ms: 8000,
            retry_maybe_billed: true,
            breaker_failures: 5,
            breaker_cooldown_s: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimeoutsConfig {
    pub connect_ms: u64,
    pub attempt_s: u64,
    pub total_s: u64,
}

impl Default for TimeoutsConfig {
    fn default() -> Self {
        Self {
            connect_ms: 5000,
            attempt_s: 300,
            total_s: 900,
        }
    }
}

/// 上游的协议方言（声明在两端共用的 `types::settings` 里）。
pub use crate::types::settings::UpstreamKind;

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct UpstreamConfig {
    pub name: String,
    pub kind: UpstreamKind,
    pub base_url: String,
    /// 一个密钥（旧写法）；有 `api_keys` 时以它为准。
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_key: String,
    /// 密钥池：请求在健康的密钥间轮换。
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub api_keys: Vec<String>,
    /// 默认模型（旧写法，等于 `models` 的第一个）。
    pub model: String,
    /// 这个上游提供的模型，第一个是它的默认模型；请求某个模型时只发给列出了它的上游。
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    pub priority: i32,
    /// 同一优先级的上游按权重分担（1–1000）。
    pub weight: u32,
    /// 这个上游同时在途的调用上限；0 表示只受全局上限约束。
    pub max_concurrent: u32,
    /// 每日配额的重置时刻，例如 `00:00 America/Los_Angeles`（Gemini 的每日配额在太平洋时间午夜重置）。
    pub quota_reset: String,
    /// 回来的图比要求的小（或比例不对）时：`keep` 留下并标“尺寸不符”、`retry` 同一上游再试、`next` 换下一个上游。
    pub on_size_mismatch: SizeMismatch,
    /// 这个上游的每个密钥每个自然月（UTC）最多花多少（`[usage]` 的币种，按模型目录的价格）；0 为不限。
    /// 到了上限的密钥本月不再用（像每日配额用完一样换下一个），全都到了就跳过这个上游。
    #[serde(skip_serializing_if = "is_zero_amount")]
    pub key_max_spend_per_month: f64,
}

/// 回来的图尺寸不符时怎么办。不管哪种，最后都不会丢掉已经付过钱的图：再试也不行时交回那张不符的。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SizeMismatch {
    #[default]
    Keep,
    Retry,
    Next,
}

/// Gemini 每日配额的重置时刻（太平洋时间午夜）。
pub const DEFAULT_QUOTA_RESET: &str = "00:00 America/Los_Angeles";

impl UpstreamConfig {
    /// 密钥池（没有密钥时是一个空字符串：不带鉴权头）。
    pub fn key_pool(&self) -> Vec<String> {
        if !self.api_keys.is_empty() {
            self.api_keys.clone()
        } else {
            vec![self.api_key.clone()]
        }
    }

    /// 提供的模型（至少一个；第一个是默认）。
    pub fn served_models(&self) -> Vec<String> {
        if self.models.is_empty() {
            vec![self.model.clone()]
        } else {
            self.models.clone()
        }
    }

    /// 是否提供这个模型。
    pub fn serves(&self, model: &str) -> bool {
        self.model == model || self.models.iter().any(|m| m == model)
    }
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            kind: UpstreamKind::Gemini,
            base_url: String::new(),
            api_key: String::new(),
            api_keys: Vec::new(),
            model: DEFAULT_MODEL.into(),
            models: Vec::new(),
            priority: 0,
            weight: 1,
            max_concurrent: 0,
            quota_reset: DEFAULT_QUOTA_RESET.into(),
            on_size_mismatch: SizeMismatch::Keep,
            key_max_spend_per_month: 0.0,
        }
    }
}

/// 未指定模型时使用的 Gemini 图像模型。
pub const DEFAULT_MODEL: &str = "gemini-3-pro-image";

impl Config {
    /// 从 TOML 表得到配置（未校验；校验见 `load::parse`）。
    pub fn deserialize_table(table: toml::Table) -> Result<Config, ConfigError> {
        toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Type {
                key: "（设置）".into(),
                reason: e.message().to_string(),
            })
    }

    /// 监听地址（已校验，解析不会失败）。
    pub fn listen_addr(&self) -> SocketAddr {
        self.server
            .listen
            .parse()
            .expect("监听地址在加载配置时已校验")
    }

    /// 是否处于演示模式：没有配置任何上游。
    pub fn demo_mode(&self) -> bool {
        self.upstreams.is_empty()
    }
}

// 含密钥的结构手写 Debug：日志里只出现“已设置/未设置”，绝不出现密钥本身。
fn redact(secret: &str) -> &'static str {
    if secret.is_empty() {
        "<未设置>"
    } else {
        "<已隐藏>"
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("api_keys", &format!("<{} 个>", self.api_keys.len()))
            .field("keys", &format!("<{} 个>", self.keys.len()))
            .field("admin_password_hash", &redact(&self.admin_password_hash))
            .field("studio_password_hash", &redact(&self.studio_password_hash))
            .field("open_v1", &self.open_v1)
            .finish()
    }
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &redact(&self.api_key))
            .field("model", &self.model)
            .field("priority", &self.priority)
            .field("max_concurrent", &self.max_concurrent)
            .finish()
    }
}

/// 按配置里的几个参数建立、参数变了才重建的对象（限流器、并发名额池）。
/// 设置页改了这些数字，下一个使用者就拿到新的；还拿着旧对象的在途请求照常用完旧的。
pub struct Rebuilt<K, V> {
    slot: std::sync::Mutex<Option<(K, Arc<V>)>>,
}

impl<K, V> Default for Rebuilt<K, V> {
    fn default() -> Self {
        Self {
            slot: std::sync::Mutex::new(None),
        }
    }
}

impl<K: PartialEq + Copy, V> Rebuilt<K, V> {
    /// 现在的那一份（还没建过时为 None），不重建。
    pub fn current(&self) -> Option<Arc<V>> {
        let slot = self.slot.lock().expect("锁未被毒化");
        slot.as_ref().map(|(_, value)| value.clone())
    }

    pub fn get(&self, key: K, build: impl FnOnce(K) -> V) -> Arc<V> {
        let mut slot = self.slot.lock().expect("锁未被毒化");
        match &*slot {
            Some((k, value)) if *k == key => value.clone(),
            _ => {
                let value = Arc::new(build(key));
                *slot = Some((key, value.clone()));
                value
            }
        }
    }
}
