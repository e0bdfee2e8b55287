//! 服务器函数返回给浏览器（及任何 JSON 客户端）的错误。
//!
//! 服务端的各类错误在 `crate::error` 里统一映射为 HTTP 状态码与中文消息，
//! 再转换成这里的 `AppError` 经网络传给页面；页面只负责显示 `message`。

use super::codec::JsonText;
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

/// serde 的英文原因里最常见的几种，换成中文（其余照原样）：调用方拼错字段名时一眼看得出是哪个。
pub fn serde_reason(reason: &str) -> String {
    let quoted = |s: &str| s.split('`').nth(1).unwrap_or_default().to_string();
    let at = |needle: &str| reason.find(needle).map(|i| &reason[i..]);
    if let Some(rest) = at("unknown field `") {
        let allowed: Vec<&str> = rest.split('`').skip(3).step_by(2).collect();
        format!(
            "不认识的字段 {}（可用的字段：{}）",
            quoted(rest),
            allowed.join("、")
        )
    } else if let Some(rest) = at("missing field `") {
        format!("缺少字段 {}", quoted(rest))
    } else if let Some(rest) = at("invalid type: ") {
        format!("类型不对（{}）", &rest["invalid type: ".len()..])
    } else {
        reason.to_string()
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonText;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let (status, code, message) = match &value {
            ServerFnErrorErr::Request(e) => (0, "network_error", format!("无法连接服务器：{e}")),
            ServerFnErrorErr::Args(e) | ServerFnErrorErr::MissingArg(e) => {
                (400, "invalid_request_error", format!("请求参数有误：{e}"))
            }
            // 在服务端，解不开的是调用方发来的参数；在浏览器里，是服务器的响应。
            ServerFnErrorErr::Deserialization(e) if cfg!(feature = "ssr") => (
                400,
                "invalid_request_error",
                format!("请求参数有误：{}", serde_reason(e)),
            ),
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
