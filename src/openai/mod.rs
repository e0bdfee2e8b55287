//! OpenAI 兼容接口 `/v1`：任何 OpenAI 客户端（官方 SDK、Cherry Studio、LobeChat、curl……）都能直接使用。
//! 请求与响应、错误的形状都与 OpenAI 一致；错误消息是中文。

pub mod auth;
mod chat;
pub mod idempotency;
pub(crate) mod images;
mod models;
pub mod rate_limit;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest};
use axum::routing::{get, post};
use axum::{middleware, Router};

/// `/v1` 的路由。每个 `.layer()` 包住它之前的所有路由与中间件，所以请求先经过鉴权（外层），
/// 鉴权把调用方身份放进请求扩展，再到限流（内层）按身份计数。
pub fn router(state: &AppState) -> Router<AppState> {
    let config = state.config.load();
    // 编辑接口一次可以上传多张参考图：整个表单最多 8 张上限大小的图。
    let edit_body_limit = (config.storage.max_upload_mb as usize * 8 + 1) * 1024 * 1024;
    let v1 = Router::new()
        .route("/models", get(models::list))
        .route("/images/generations", post(images::generations))
        .route(
            "/images/edits",
            post(images::edits).layer(DefaultBodyLimit::max(edit_body_limit)),
        )
        .route(
            "/chat/completions",
            post(chat::completions).layer(DefaultBodyLimit::max(edit_body_limit)),
        )
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::from_fn_with_state(
            (state.config.clone(), rate_limit::RateLimiter::default()),
            rate_limit::limit,
        ))
        .layer(middleware::from_fn_with_state(
            (state.config.clone(), state.key_usage.clone()),
            auth::require_api_key,
        ));
    Router::new().nest("/v1", v1)
}

/// JSON 请求体提取器：解析失败时返回 OpenAI 形状的中文错误，而不是 axum 的纯文本。
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct OpenAiJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::InvalidRequest(format!("请求体不是有效的 JSON：{}", rejection.body_text()))
    }
}
