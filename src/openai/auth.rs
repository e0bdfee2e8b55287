//! 鉴权与调用方身份（策略第 1 步）。
//!
//! 配置了任何 API 密钥时，`/v1` 要求 `Authorization: Bearer <密钥>`；否则放行。
//! 之后把调用方身份（密钥指纹或客户端 IP）放进请求扩展，供限流按身份计数。

use crate::config::{Config, ConfigHandle};
use crate::error::ApiError;
use crate::web::{client_ip, sha256_hex};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use std::net::{IpAddr, SocketAddr};

/// 调用方身份：限流与日志用。不含密钥本身，只含其指纹。
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    /// API 密钥的 SHA-256 前 12 位十六进制。
    Key(String),
    Ip(IpAddr),
}

impl Caller {
    pub fn rate_limit_key(&self) -> String {
        match self {
            Caller::Key(k) => format!("key:{k}"),
            Caller::Ip(ip) => format!("ip:{ip}"),
        }
    }

    /// 用量与额度里的名字：设置页建的密钥用它的用途说明，配置里的明文密钥用摘要的开头，没有密钥的调用为“匿名”。
    pub fn client_label(&self, config: &Config) -> String {
        match self {
            Caller::Key(k) => config
                .auth
                .keys
                .iter()
                .find(|e| e.sha256.starts_with(k.as_str()))
                .map(|e| e.label.clone())
                .unwrap_or_else(|| format!("密钥 {}", &k[..6.min(k.len())])),
            Caller::Ip(_) => "匿名".into(),
        }
    }

    /// 这个调用方的额度（设置页建的密钥可以设；其余不限）。
    pub fn budget(&self, config: &Config) -> crate::access::budget::Budget {
        match self {
            Caller::Key(k) => config
                .auth
                .keys
                .iter()
                .find(|e| e.sha256.starts_with(k.as_str()))
                .map(|e| crate::access::budget::Budget {
                    images_per_day: e.images_per_day,
                    max_concurrent: e.max_concurrent,
                })
                .unwrap_or_default(),
            Caller::Ip(_) => Default::default(),
        }
    }
}

/// 设置页创建的各密钥最近一次使用的时间（按 SHA-256，只在内存里）。
#[derive(Clone, Default)]
pub struct KeyUsage(std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, String>>>);

impl KeyUsage {
    fn touch(&self, sha256: String) {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.0.lock().expect("锁未被毒化").insert(sha256, now);
    }

    pub fn last_used(&self, sha256: &str) -> Option<String> {
        self.0.lock().expect("锁未被毒化").get(sha256).cloned()
    }
}

pub async fn require_api_key(
    State((config, usage)): State<(ConfigHandle, KeyUsage)>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let config = config.load();
    let caller = identify(&config, request.headers(), peer)?;
    if let Caller::Key(_) = &caller {
        if let Some(token) = bearer(request.headers()) {
            let sha = sha256_hex(token);
            if config.auth.keys.iter().any(|k| k.sha256 == sha) {
                usage.touch(sha);
            }
        }
    }
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// 请求带着一个有效的 `/v1` 密钥（`/metrics` 也接受它）。
pub fn has_valid_key(config: &Config, headers: &HeaderMap) -> bool {
    config.auth.requires_key()
        && bearer(headers).is_some_and(|token| {
            // 比较摘要而不是原文：耗时与密钥内容无关。
            let given = sha256_hex(token);
            config.auth.api_keys.iter().any(|k| sha256_hex(k) == given)
                || config.auth.keys.iter().any(|k| k.sha256 == given)
        })
}

fn identify(config: &Config, headers: &HeaderMap, peer: SocketAddr) -> Result<Caller, ApiError> {
    if !config.auth.requires_key() {
        return Ok(Caller::Ip(client_ip(config, headers, peer)));
    }
    let token = bearer(headers).ok_or_else(|| {
        ApiError::Unauthorized(
            "缺少 API 密钥：请在请求头中加上 Authorization: Bearer <密钥>".into(),
        )
    })?;
    if has_valid_key(config, headers) {
        // 身份只用密钥摘要的前 12 位：日志与限流里不出现密钥本身。
        Ok(Caller::Key(sha256_hex(token)[..12].to_string()))
    } else {
        Err(ApiError::Unauthorized("API 密钥无效，请检查后重试".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(keys: &[&str]) -> Config {
        let mut c = Config::default();
        c.auth.api_keys = keys.iter().map(|s| s.to_string()).collect();
        c
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    const PEER: &str = "203.0.113.9:5000";

    #[test]
    fn keys_are_required_only_when_configured() {
        let open = config(&[]);
        assert!(identify(&open, &headers(&[]), PEER.parse().unwrap()).is_ok());
        let locked = config(&["sk-1"]);
        assert!(identify(&locked, &headers(&[]), PEER.parse().unwrap()).is_err());
        assert!(identify(
            &locked,
            &headers(&[("authorization", "Bearer nope")]),
            PEER.parse().unwrap()
        )
        .is_err());
        let ok = identify(
            &locked,
            &headers(&[("authorization", "Bearer sk-1")]),
            PEER.parse().unwrap(),
        )
        .unwrap();
        assert!(matches!(ok, Caller::Key(k) if !k.contains("sk-1")));
    }
}
