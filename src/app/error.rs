//! 服务器函数返回给浏览器（及任何 JSON 客户端）的错误。
//!
//! 服务端的各类错误在 `crate::error` 里统一映射为 HTTP 状态码与中文消息，
//! 再转换成这里的 `AppError` 经网络传给页面；页面只负责显示 `message`。

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[error("{message}")]
pub struct AppError {
    /// HTTP 状态码，与响应的状态码一致。
    pub status: u16,
    /// 机器可读的错误代码（英文），例如 `invalid_request_error`。
    pub code: String,
    /// 给人看的中文说明。
    pub message: String,
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let (status, code, message) = match &value {
            ServerFnErrorErr::Request(e) => (0, "network_error", format!("无法连接服务器：{e}")),
            ServerFnErrorErr::Args(e) | ServerFnErrorErr::MissingArg(e) => {
                (400, "invalid_request_error", format!("请求参数有误：{e}"))
            }
            ServerFnErrorErr::Deserialization(e) | ServerFnErrorErr::Response(e) => {
                (502, "bad_response", format!("无法解析服务器的响应：{e}"))
            }
            other => (500, "server_error", format!("服务器内部错误：{other}")),
        };
        AppError {
            status,
            code: code.to_string(),
            message,
        }
    }
}

/// 服务器函数的服务端公共部分：取共享状态、把服务端错误变成给页面的错误并设置响应状态码。
#[cfg(feature = "ssr")]
pub mod ssr {
    use super::AppError;
    use crate::error::ApiError;
    use crate::state::AppState;
    use leptos::prelude::use_context;

    /// 当前请求的共享状态（由 `leptos_routes_with_context` 与服务器函数处理器提供）。
    pub fn state() -> Result<AppState, ApiError> {
        use_context::<AppState>().ok_or_else(|| ApiError::InvalidRequest("服务器状态缺失".into()))
    }

    /// 把服务端错误转换为 `AppError`，并让 HTTP 响应带上同样的状态码（JSON 调用方可以只看状态码）。
    pub fn into_app_error(error: ApiError) -> AppError {
        let app_error = AppError::from(error);
        if let Some(res) = use_context::<leptos_axum::ResponseOptions>() {
            res.set_status(
                axum::http::StatusCode::from_u16(app_error.status)
                    .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
            );
        }
        app_error
    }
}
