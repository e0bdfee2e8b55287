//! HTTP 层共用的小件：`/v1`、设置、存储的路由都用它们，谁也不必向别的接口模块借。
//!
//! - `ApiJson`：JSON 请求体提取器，解析失败时给出 OpenAI 形状的中文错误；
//! - `client_ip`：客户端 IP（只在对端是可信代理时才采信 `X-Forwarded-For`）；
//! - `sha256_hex`：密钥、内容哈希（在 `crate::hash`，这里转出）；
//! - `accept_image`（`reference_image.rs`）：确认上传的字节确实是图片、没有超过大小上限，GIF 与 HEIC 转成 PNG；
//! - `upload_body_limit`：带参考图的请求体上限，按运行中的配置（设置页改了 `max_upload_mb`，下一个请求就按新的）；
//! - `preload`：每个页面的 island 的 WASM 块的预加载（读拆分清单，外壳放进 `<head>`）。

use crate::config::{Config, ConfigHandle};
use crate::error::ApiError;
use axum::extract::rejection::JsonRejection;
use axum::extract::FromRequest;
use axum::http::HeaderMap;
use std::net::{IpAddr, SocketAddr};

pub mod preload;
mod reference_image;
pub use crate::hash::sha256_hex;
pub use reference_image::accept_image;

/// JSON 请求体提取器：解析失败时返回 OpenAI 形状的中文错误，而不是 axum 的纯文本。
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::PayloadTooLarge(format!(
                "请求体太大：JSON 最多 {} MB（参考图多时请用 multipart 的 /v1/images/edits）",
                crate::types::limits::MAX_JSON_BODY_BYTES >> 20
            ));
        }
        ApiError::InvalidRequest(format!("请求体不是有效的 JSON：{}", rejection.body_text()))
    }
}

/// multipart 表单读不下去：请求体超了上限是 413，其余是 400。
pub fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge(format!("表单太大：{}", e.body_text()))
    } else {
        ApiError::InvalidRequest(format!("multipart 表单无法解析：{}", e.body_text()))
    }
}

/// 一块一块地读 multipart 的一个字段，超过 `cap` 字节就停下（413），不把整个字段先读进内存。
pub async fn read_field_capped(
    field: &mut axum::extract::multipart::Field<'_>,
    cap: usize,
    what: &str,
) -> Result<bytes::Bytes, ApiError> {
    let mut data = bytes::BytesMut::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if data.len() + chunk.len() > cap {
            return Err(ApiError::PayloadTooLarge(format!(
                "{what}太大，上限是 {}",
                human_bytes(cap)
            )));
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data.freeze())
}

/// 读一个文字字段（UTF-8），最多 `MAX_FORM_TEXT_BYTES` 字节。
pub async fn read_text_field(
    field: &mut axum::extract::multipart::Field<'_>,
    name: &str,
) -> Result<String, ApiError> {
    let data = read_field_capped(
        field,
        crate::types::limits::MAX_FORM_TEXT_BYTES,
        &format!("字段 {name} "),
    )
    .await?;
    String::from_utf8(data.into())
        .map_err(|_| ApiError::InvalidRequest(format!("字段 {name} 不是有效的 UTF-8 文字")))
}

fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 {
        format!("{} MB", n >> 20)
    } else {
        format!("{} KB", n.div_ceil(1024))
    }
}

/// 客户端 IP：默认是连接的对端地址；只有对端在 `server.trusted_proxies` 中时，
/// 才从 `X-Forwarded-For` 自右向左取第一个不受信任的地址。
pub fn client_ip(config: &Config, headers: &HeaderMap, peer: SocketAddr) -> IpAddr {
    let peer_ip = peer.ip();
    if !is_trusted_proxy(config, &peer_ip) {
        return peer_ip;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted_proxy(config, ip))
        .unwrap_or(peer_ip)
}

/// 这个地址是否在 `server.trusted_proxies` 里。
pub fn is_trusted_proxy(config: &Config, ip: &IpAddr) -> bool {
    config.server.trusted_proxies.iter().any(|p| {
        p.parse::<ipnet::IpNet>()
            .map(|net| net.contains(ip))
            .unwrap_or_else(|_| p.parse::<IpAddr>().is_ok_and(|a| a == *ip))
    })
}

/// 以 multipart 带参考图的请求（`/uploads`、`/v1/images/edits`）的请求体上限：
/// 最多 `MAX_REFERENCES` 张、每张 `storage.max_upload_mb`，base64 再大三分之一，另留 1 MB。
pub fn upload_body_limit(config: &Config) -> usize {
    let per_image = config.storage.max_upload_mb as usize * 1024 * 1024;
    per_image * crate::types::limits::MAX_REFERENCES / 3 * 4 + 1024 * 1024
}

/// 中间件：按运行中的配置限制请求体。声明的长度超了直接 413；没声明长度的边读边数，超了读取就出错。
/// 用它的路由要同时 `DefaultBodyLimit::disable()`，否则 axum 的固定上限先起作用。
pub async fn live_upload_limit(
    axum::extract::State(config): axum::extract::State<ConfigHandle>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let limit = upload_body_limit(&config.load());
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        let path = request.uri().path().to_string();
        return ApiError::PayloadTooLarge(format!(
            "请求体太大（上限 {} MB：最多 {} 张参考图，每张不超过 storage.max_upload_mb = {} MB）",
            limit >> 20,
            crate::types::limits::MAX_REFERENCES,
            config.load().storage.max_upload_mb
        ))
        .into_response_for(&path);
    }
    let request =
        request.map(|body| axum::body::Body::new(http_body_util::Limited::new(body, limit)));
    next.run(request).await
}

/// `/api/*`（服务器函数，只收 JSON）的请求体上限：最大的是提示词库的导入文件。
pub const API_BODY_LIMIT: usize = 8 * 1024 * 1024;

/// 中间件：`/api/*` 的请求体不超过 `API_BODY_LIMIT`（服务器函数自己读请求体，不经 axum 的提取器上限）。
/// 声明的长度超了直接 413；没声明长度的边读边数，超了读取就出错。
pub async fn api_body_limit(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = request.uri().path().to_string();
    if !path.starts_with("/api/") {
        return next.run(request).await;
    }
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > API_BODY_LIMIT) {
        return ApiError::PayloadTooLarge(format!(
            "请求体太大（/api 的上限 {} MB）",
            API_BODY_LIMIT >> 20
        ))
        .into_response_for(&path);
    }
    let request = request
        .map(|body| axum::body::Body::new(http_body_util::Limited::new(body, API_BODY_LIMIT)));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(proxies: &[&str]) -> Config {
        let mut c = Config::default();
        c.server.trusted_proxies = proxies.iter().map(|s| s.to_string()).collect();
        c
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "198.51.100.7, 10.0.0.2".parse().unwrap());
        let peer = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(
            client_ip(&config(&[]), &h, peer("10.0.0.1:80")).to_string(),
            "10.0.0.1"
        );
        let trusted = config(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(&trusted, &h, peer("10.0.0.1:80")).to_string(),
            "198.51.100.7"
        );
        // 不受信任的对端伪造的头不起作用。
        assert_eq!(
            client_ip(&trusted, &h, peer("203.0.113.9:5000")).to_string(),
            "203.0.113.9"
        );
    }
}
