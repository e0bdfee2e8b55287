//! OpenAI 兼容接口 `/v1`：任何 OpenAI 客户端（官方 SDK、Cherry Studio、LobeChat、curl……）都能直接使用。
//! 请求与响应、错误的形状都与 OpenAI 一致；错误消息是中文。

pub mod auth;
mod chat;
pub mod idempotency;
pub(crate) mod images;
mod images_response;
mod models;
pub mod rate_limit;
mod sse;
mod tasks;

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{middleware, Router};

/// `/v1` 的路由。每个 `.layer()` 包住它之前的所有路由与中间件，所以请求先经过鉴权（外层），
/// 鉴权把调用方身份放进请求扩展，再到限流（内层）按身份计数。
pub fn router(state: &AppState) -> Router<AppState> {
    // multipart 带参考图的接口：请求体上限按运行中的配置（见 `web::live_upload_limit`），不用 axum 的固定上限。
    let uploads = || {
        (
            DefaultBodyLimit::disable(),
            middleware::from_fn_with_state(state.config.clone(), crate::web::live_upload_limit),
        )
    };
    // JSON 请求体（生成、对话；对话的 data URL 参考图也在里面）：自己的上限，先于解析与 base64 解码。
    let json = || DefaultBodyLimit::max(crate::types::limits::MAX_JSON_BODY_BYTES);
    // 方法不对（例如 GET /v1/images/generations）：405，带 Allow 与 OpenAI 形状的中文错误。
    let only =
        |allowed: &'static str| move || async move { ApiError::MethodNotAllowed { allowed } };
    let v1 = Router::new()
        .route("/models", get(models::list).fallback(only("GET")))
        .route(
            "/images/generations",
            post(images::generations)
                .fallback(only("POST"))
                .layer(json()),
        )
        .route(
            "/images/edits",
            post(images::edits).fallback(only("POST")).layer(uploads()),
        )
        .route(
            "/images/tasks/{id}",
            get(tasks::get)
                .delete(tasks::cancel)
                .fallback(only("GET, DELETE")),
        )
        .route(
            "/chat/completions",
            post(chat::completions).fallback(only("POST")).layer(json()),
        )
        .fallback(|| async { ApiError::NotFound })
        .layer(middleware::from_fn_with_state(
            (state.config.clone(), state.v1_limits.clone()),
            rate_limit::limit,
        ))
        .layer(middleware::from_fn_with_state(
            (
                state.config.clone(),
                state.key_usage.clone(),
                state.listeners.clone(),
                state.accounts.clone(),
            ),
            auth::require_api_key,
        ));
    Router::new().nest("/v1", v1)
}
