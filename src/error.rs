//! 服务端错误到 HTTP 的唯一映射处。
//!
//! 用法：各模块有自己的错误枚举（`GatewayError`、`StorageError`……），
//! 处理函数统一返回 `ApiError`（`?` 会自动转换）。这里决定状态码、OpenAI 错误类型与给人看的中文消息：
//! - `/v1` 与其他 axum 路由：`IntoResponse` 输出 OpenAI 形状的错误体 `{"error":{message,type,param,code}}`；
//! - 服务器函数：`server_fn_error` 把它变成两端共用的 `AppError`，并让 HTTP 响应带上同样的状态码。
//!
//! 内部细节（文件路径、数据库错误）只写日志，不返回给调用方。

use crate::gateway::GatewayError;
use crate::storage::StorageError;
use crate::types::limits::RequestError;
use crate::types::AppError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// 网关失败，且其中有的尝试可能已被上游计费：说明里写明几次。
    #[error("{error}（这次请求有 {maybe_billed} 次尝试可能已被上游计费）")]
    GatewayBilled {
        error: GatewayError,
        maybe_billed: usize,
    },
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// 用量报告读不了用量表或写不出 CSV。
    #[error(transparent)]
    Report(#[from] crate::usage::report::ReportError),
    #[error("{0}")]
    InvalidRequest(String),
    /// 服务器自身的问题（不该发生）；说明只进日志。
    #[error("服务器内部错误：{0}")]
    Internal(String),
    #[error("找不到请求的资源")]
    NotFound,
    #[error("这个接口只接受 {allowed} 请求")]
    MethodNotAllowed { allowed: &'static str },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// 设置页提交的配置无效，或配置文件写不进去。
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("请求太频繁，请 {retry_after_secs} 秒后再试")]
    RateLimited { retry_after_secs: u64 },
    #[error(
        "工作台每分钟最多生成 {per_minute} 张，这一批超出了，请 {retry_after_secs} 秒后再提交"
    )]
    ImageBudget {
        per_minute: u32,
        retry_after_secs: u64,
    },
    /// 调用方的每日张数或同时请求数用完了（OpenAI 的 `insufficient_quota`）。
    #[error("{message}")]
    InsufficientQuota {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    QueueFull(String),
    #[error("{0}")]
    Conflict(String),
    /// 与现有的东西冲突（同名的账号、最后一个管理员）：409，`code` 为 `conflict`。
    #[error("{0}")]
    Clash(String),
    #[error(
        "这个地址（Host）不在允许的名单里；要用这个域名访问，请把它加到配置的 server.allowed_hosts"
    )]
    MisdirectedRequest,
    /// 多个等待者共享的同一个错误（幂等键的并发重复请求）。
    #[error(transparent)]
    Shared(std::sync::Arc<ApiError>),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Config(
                crate::config::ConfigError::Write { .. } | crate::config::ConfigError::Shared(_),
            ) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Config(crate::config::ConfigError::Stale { .. }) => StatusCode::CONFLICT,
            Self::Config(_) => StatusCode::BAD_REQUEST,
            Self::RateLimited { .. }
            | Self::ImageBudget { .. }
            | Self::InsufficientQuota { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::QueueFull(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Conflict(_) | Self::Clash(_) => StatusCode::CONFLICT,
            Self::MisdirectedRequest => StatusCode::MISDIRECTED_REQUEST,
            Self::Storage(StorageError::NotAnImage(_)) => StatusCode::BAD_GATEWAY,
            Self::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Report(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Gateway(e) | Self::GatewayBilled { error: e, .. } => gateway_status(e),
            Self::Shared(e) => e.status(),
        }
    }

    /// OpenAI 错误体的 `type` 字段。
    pub fn error_type(&self) -> &'static str {
        match self.status() {
            StatusCode::BAD_REQUEST
            | StatusCode::NOT_FOUND
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::MISDIRECTED_REQUEST
            | StatusCode::CONFLICT
            | StatusCode::UNAUTHORIZED
            | StatusCode::FORBIDDEN => "invalid_request_error",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            _ => "server_error",
        }
    }

    /// OpenAI 错误体的 `code` 字段。
    pub fn code(&self) -> &'static str {
        match self {
            Self::Gateway(e) | Self::GatewayBilled { error: e, .. } => gateway_code(e),
            Self::InvalidRequest(_) => "invalid_request",
            Self::Internal(_) => "server_error",
            Self::Storage(_) => "storage_error",
            Self::Report(_) => "server_error",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
            Self::Unauthorized(_) => "invalid_api_key",
            Self::Forbidden(_) => "forbidden",
            Self::Config(crate::config::ConfigError::Stale { .. }) => "config_conflict",
            Self::Config(_) => "invalid_config",
            Self::RateLimited { .. } | Self::ImageBudget { .. } => "rate_limit_exceeded",
            Self::InsufficientQuota { .. } => "insufficient_quota",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::QueueFull(_) => "server_busy",
            Self::Conflict(_) => "idempotency_conflict",
            Self::Clash(_) => "conflict",
            Self::MisdirectedRequest => "misdirected_request",
            Self::Shared(e) => e.code(),
        }
    }

    /// 给人看的中文消息；不含内部细节。
    pub fn public_message(&self) -> String {
        match self {
            Self::Storage(StorageError::NotAnImage(_))
            | Self::Gateway(_)
            | Self::GatewayBilled { .. } => self.to_string(),
            Self::Storage(_) => "服务器保存图像失败，请检查存储目录是否可写、磁盘是否已满".into(),
            Self::Internal(_) | Self::Report(_) => {
                "服务器内部错误，请稍后再试（详情见服务器日志）".into()
            }
            Self::InvalidRequest(_)
            | Self::NotFound
            | Self::MethodNotAllowed { .. }
            | Self::Unauthorized(_)
            | Self::Forbidden(_)
            | Self::Config(_)
            | Self::RateLimited { .. }
            | Self::ImageBudget { .. }
            | Self::InsufficientQuota { .. }
            | Self::UnsupportedMediaType(_)
            | Self::PayloadTooLarge(_)
            | Self::QueueFull(_)
            | Self::Conflict(_)
            | Self::Clash(_)
            | Self::MisdirectedRequest => self.to_string(),
            Self::Shared(e) => e.public_message(),
        }
    }

    /// 给 `Retry-After` 头的秒数（限流、排队满时）。
    fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after_secs }
            | Self::ImageBudget {
                retry_after_secs, ..
            }
            | Self::InsufficientQuota {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            Self::Gateway(GatewayError::QueueFull) | Self::QueueFull(_) => Some(1),
            _ => None,
        }
    }

    fn log(&self) {
        if self.status().is_server_error() {
            tracing::error!(code = self.code(), "{self}");
        }
    }
}

fn gateway_status(e: &GatewayError) -> StatusCode {
    match e {
        GatewayError::InvalidRequest(_)
        | GatewayError::Safety { .. }
        | GatewayError::UnknownModel { .. } => StatusCode::BAD_REQUEST,
        GatewayError::Status {
            status: 400 | 413, ..
        } => StatusCode::BAD_REQUEST,
        GatewayError::Status { status: 429, .. } => StatusCode::TOO_MANY_REQUESTS,
        GatewayError::Timeout { .. } | GatewayError::DeadlineExceeded { .. } => {
            StatusCode::GATEWAY_TIMEOUT
        }
        GatewayError::NoUpstream
        | GatewayError::QueueFull
        | GatewayError::CircuitOpen { .. }
        | GatewayError::KeysUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        GatewayError::AllUpstreamsFailed { last, .. } => match gateway_status(last) {
            StatusCode::GATEWAY_TIMEOUT => StatusCode::GATEWAY_TIMEOUT,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            _ => StatusCode::BAD_GATEWAY,
        },
        GatewayError::Status { status: 503, .. } => StatusCode::SERVICE_UNAVAILABLE,
        GatewayError::Connect { .. }
        | GatewayError::Status { .. }
        | GatewayError::BadResponse { .. }
        | GatewayError::ResponseTooLarge { .. }
        | GatewayError::Redirect { .. }
        | GatewayError::NoImage { .. } => StatusCode::BAD_GATEWAY,
    }
}

fn gateway_code(e: &GatewayError) -> &'static str {
    match e {
        GatewayError::Safety { .. } => "content_policy_violation",
        GatewayError::InvalidRequest(_)
        | GatewayError::UnknownModel { .. }
        | GatewayError::Status {
            status: 400 | 413, ..
        } => "invalid_request",
        GatewayError::Timeout { .. } | GatewayError::DeadlineExceeded { .. } => "upstream_timeout",
        GatewayError::Status { status: 429, .. } => "rate_limit_exceeded",
        GatewayError::QueueFull => "server_busy",
        GatewayError::NoUpstream
        | GatewayError::CircuitOpen { .. }
        | GatewayError::KeysUnavailable { .. } => "upstream_unavailable",
        GatewayError::AllUpstreamsFailed { last, .. } => match gateway_code(last) {
            "upstream_timeout" => "upstream_timeout",
            _ => "upstream_error",
        },
        _ => "upstream_error",
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        Self::InvalidRequest(e.to_string())
    }
}

impl From<crate::types::batch::BatchError> for ApiError {
    fn from(e: crate::types::batch::BatchError) -> Self {
        Self::InvalidRequest(e.to_string())
    }
}

impl From<crate::gateway::Failed> for ApiError {
    fn from(f: crate::gateway::Failed) -> Self {
        let maybe_billed = f.attempts.iter().filter(|a| a.maybe_billed).count();
        if maybe_billed == 0 {
            Self::Gateway(f.error)
        } else {
            Self::GatewayBilled {
                error: f.error,
                maybe_billed,
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let body = serde_json::json!({
            "error": {
                "message": self.public_message(),
                "type": self.error_type(),
                "param": null,
                "code": self.code(),
            }
        });
        let mut response = (self.status(), axum::Json(body)).into_response();
        let retry_after = self.retry_after_secs();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        if let Self::MethodNotAllowed { allowed } = &self {
            response.headers_mut().insert(
                axum::http::header::ALLOW,
                axum::http::HeaderValue::from_static(allowed),
            );
        }
        response
    }
}

impl From<ApiError> for AppError {
    fn from(e: ApiError) -> Self {
        e.log();
        AppError {
            status: e.status().as_u16(),
            code: e.code().to_string(),
            message: e.public_message(),
        }
    }
}

impl ApiError {
    /// 中间件（守卫）拒绝请求时的响应：服务器函数（`/api/*`）的调用方读的是 `AppError` 的形状
    /// `{"status","code","message"}`，其余（`/v1`、文件……）是 OpenAI 的错误形状。
    pub fn into_response_for(self, path: &str) -> Response {
        if !path.starts_with("/api/") {
            return self.into_response();
        }
        let status = self.status();
        let retry_after = self.retry_after_secs();
        let mut response = (status, axum::Json(AppError::from(self))).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// 服务器函数的错误出口：变成给页面的 `AppError`，并让 HTTP 响应带上同样的状态码
/// （JSON 调用方可以只看状态码）。
pub fn server_fn_error(error: ApiError) -> AppError {
    let retry_after = error.retry_after_secs();
    let app_error = AppError::from(error);
    if let Some(res) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(
            StatusCode::from_u16(app_error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        );
        if let Some(secs) = retry_after {
            res.insert_header(axum::http::header::RETRY_AFTER, secs.into());
        }
    }
    app_error
}

/// 服务器函数在进到我们的代码之前就失败时（例如请求体解不开），leptos 一律回 500；
/// 错误体里的 `status` 才是对的（`AppError::from_server_fn_error` 定的）。这个中间件让 HTTP 状态码与之一致，
/// 这样 JSON 调用方只看状态码就够了。只看 `/api/` 下的 500，错误体很小（上限 64 KB）。
pub async fn server_fn_status(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let is_api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    if !is_api || response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "服务器内部错误").into_response();
    };
    if let Ok(error) = serde_json::from_slice::<AppError>(&bytes) {
        if let Ok(status) = StatusCode::from_u16(error.status) {
            if status.is_client_error() || status.is_server_error() {
                parts.status = status;
            }
        }
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}
