//! 网关的错误类型。每个变体的中文说明就是最终给人看的原因；
//! HTTP 状态码的映射统一在 `crate::error` 里做。

/// 调用上游失败的分类，供重试策略与指标使用（低基数，英文标签）。
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// 请求本身有问题，换上游也没用。
    InvalidRequest,
    /// 连不上（DNS、拒绝连接等）：请求没有发出去。
    Connect,
    /// 单次尝试超时。
    Timeout,
    /// 上游返回的 HTTP 错误状态。
    Status,
    /// 响应被截断或无法解析。
    BadResponse,
    /// 安全策略拦截。
    Safety,
    /// 返回 200 但没有图像（非安全原因）。
    NoImage,
    /// 没有可用上游。
    NoUpstream,
    /// 排队已满。
    QueueFull,
    /// 上游在熔断中。
    CircuitOpen,
    /// 上游的响应体超过了上限。
    TooLarge,
    /// 上游要求重定向（不跟随）。
    Redirect,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Status => "status",
            Self::BadResponse => "bad_response",
            Self::Safety => "safety",
            Self::NoImage => "no_image",
            Self::NoUpstream => "no_upstream",
            Self::QueueFull => "queue_full",
            Self::CircuitOpen => "circuit_open",
            Self::TooLarge => "too_large",
            Self::Redirect => "redirect",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("请求有误：{0}")]
    InvalidRequest(String),

    #[error("无法连接上游“{upstream}”：{detail}")]
    Connect { upstream: String, detail: String },

    #[error("上游“{upstream}”在 {secs} 秒内没有响应")]
    Timeout { upstream: String, secs: u64 },

    #[error("上游“{upstream}”返回错误 {status}：{message}")]
    Status {
        upstream: String,
        status: u16,
        /// Google 错误体里的 `status`，例如 `RESOURCE_EXHAUSTED`。
        google_status: String,
        message: String,
        /// 上游建议的等待秒数（`Retry-After` 头或 `RetryInfo.retryDelay`）。
        retry_after_secs: Option<f64>,
        /// 429 时上游的结构化错误说的额度种类：每日配额（`Some(true)`）、按分钟等短时间的限流（`Some(false)`），
        /// 没说（`None`，按说明里的词判断，见 `retry::is_daily_quota`）。Gemini 看 `QuotaFailure` 的 `quotaId`。
        daily_quota: Option<bool>,
    },

    #[error("上游“{upstream}”的响应不完整或无法解析：{detail}")]
    BadResponse { upstream: String, detail: String },

    #[error("内容被上游的安全策略拦截（{reason}），请修改提示词或参考图后再试")]
    Safety {
        upstream: String,
        reason: String,
        /// 拦在生成之前（提示词或参考图被拒，例如 Gemini 的 `promptFeedback.blockReason`、方舟的 `InputText…`）：
        /// 模型没有生成，不算“可能已计费”。
        before_generation: bool,
    },

    #[error("上游“{upstream}”没有返回图像（{reason}）{}", text.as_deref().map(|t| format!("，模型说：{t}")).unwrap_or_default())]
    NoImage {
        upstream: String,
        reason: String,
        text: Option<String>,
    },

    #[error("上游“{upstream}”的响应超过了 {limit_mb} MB 的上限（limits.max_upstream_response_mb），已丢弃")]
    ResponseTooLarge { upstream: String, limit_mb: u64 },

    #[error("上游“{upstream}”要求重定向（HTTP {status}）到 {location}；为了不把密钥带到别的主机，不跟随。请把上游地址改成最终的地址")]
    Redirect {
        upstream: String,
        status: u16,
        location: String,
    },

    #[error("没有可用的上游，请在设置中添加上游")]
    NoUpstream,

    #[error("服务器繁忙：排队等待的请求已满，请稍后再试")]
    QueueFull,

    #[error("上游“{upstream}”连续失败，已暂停使用，约 {secs} 秒后再试探")]
    CircuitOpen { upstream: String, secs: u64 },

    #[error(
        "上游“{upstream}”的密钥都暂时不能用（失效、每日配额用完、被限流或本月花费到了上限），请在设置页查看密钥状态"
    )]
    KeysUnavailable { upstream: String },

    #[error("没有上游提供模型“{model}”；可用的模型：{available}")]
    UnknownModel { model: String, available: String },

    #[error("请求超过了 {secs} 秒的总时限，已停止重试")]
    DeadlineExceeded { secs: u64 },

    #[error("所有上游都失败了（共尝试 {attempts} 次），最后一次的原因：{last}")]
    AllUpstreamsFailed {
        attempts: usize,
        last: Box<GatewayError>,
    },
}

impl GatewayError {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::InvalidRequest(_) => ErrorClass::InvalidRequest,
            Self::Connect { .. } => ErrorClass::Connect,
            Self::Timeout { .. } => ErrorClass::Timeout,
            Self::Status { .. } => ErrorClass::Status,
            Self::BadResponse { .. } => ErrorClass::BadResponse,
            Self::Safety { .. } => ErrorClass::Safety,
            Self::NoImage { .. } => ErrorClass::NoImage,
            Self::NoUpstream => ErrorClass::NoUpstream,
            Self::QueueFull => ErrorClass::QueueFull,
            Self::CircuitOpen { .. } | Self::KeysUnavailable { .. } => ErrorClass::CircuitOpen,
            Self::UnknownModel { .. } => ErrorClass::InvalidRequest,
            Self::ResponseTooLarge { .. } => ErrorClass::TooLarge,
            Self::Redirect { .. } => ErrorClass::Redirect,
            Self::DeadlineExceeded { .. } => ErrorClass::Timeout,
            Self::AllUpstreamsFailed { last, .. } => last.class(),
        }
    }

    /// 上游返回的 HTTP 状态码（若有）。
    pub fn upstream_status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } | Self::Redirect { status, .. } => Some(*status),
            Self::BadResponse { .. } | Self::Safety { .. } | Self::NoImage { .. } => Some(200),
            _ => None,
        }
    }
}

/// 网关调用失败：错误本身，加上到失败为止的每一次尝试。
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Failed {
    pub error: GatewayError,
    pub attempts: Vec<crate::types::AttemptInfo>,
}

impl From<GatewayError> for Failed {
    fn from(error: GatewayError) -> Self {
        Self {
            error,
            attempts: Vec::new(),
        }
    }
}
