//! HTTP 层共用的小件：`/v1`、设置、存储的路由都用它们，谁也不必向别的接口模块借。
//!
//! - `ApiJson`：JSON 请求体提取器，解析失败时给出 OpenAI 形状的中文错误；
//! - `client_ip`：客户端 IP（只在对端是可信代理时才采信 `X-Forwarded-For`）；
//! - `sha256_hex`：密钥、内容哈希；
//! - `sniff_image`：确认上传的字节确实是图片、没有超过大小上限。

use crate::config::Config;
use crate::error::ApiError;
use crate::gateway::InputImage;
use axum::extract::rejection::JsonRejection;
use axum::extract::FromRequest;
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};

/// JSON 请求体提取器：解析失败时返回 OpenAI 形状的中文错误，而不是 axum 的纯文本。
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::InvalidRequest(format!("请求体不是有效的 JSON：{}", rejection.body_text()))
    }
}

/// 内容的 SHA-256（小写十六进制）。
pub fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    Sha256::digest(data.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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

/// 校验一张上传的参考图：不超过大小上限，且确实是图片（按内容识别类型，不信文件名）。
pub fn sniff_image(
    data: bytes::Bytes,
    max_bytes: usize,
    index: usize,
) -> Result<InputImage, ApiError> {
    if data.len() > max_bytes {
        return Err(ApiError::InvalidRequest(format!(
            "第 {index} 张参考图太大（{:.1} MB），上限是 {} MB",
            data.len() as f64 / 1048576.0,
            max_bytes / 1048576
        )));
    }
    let format = image::guess_format(&data).map_err(|_| {
        ApiError::InvalidRequest(format!(
            "第 {index} 张参考图不是可识别的图片（支持 PNG、JPEG、WebP）"
        ))
    })?;
    Ok(InputImage {
        mime: format.to_mime_type().to_string(),
        data,
    })
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

    #[test]
    fn sha256_is_lowercase_hex() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
