//! 鉴权与调用方身份（策略第 1 步）。
//!
//! 配置了任何 API 密钥时，`/v1` 要求 `Authorization: Bearer <密钥>`。一个密钥都没有时，只在端口不与别人共用时放行
//! （没有工作台密码、只在本机可达，或明写了 `auth.open_v1 = true`，见 `crate::access::exposure`），否则 401。
//! 之后把调用方身份（密钥指纹或客户端 IP）放进请求扩展，供限流按身份计数。

use crate::access::api_keys::{bearer, has_valid_key};
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

    /// 设置页建的密钥的那一条配置（配置里的明文密钥与没有密钥的调用没有）。
    fn entry<'c>(&self, config: &'c Config) -> Option<&'c crate::config::ApiKeyEntry> {
        match self {
            Caller::Key(k) => config
                .auth
                .keys
                .iter()
                .find(|e| e.sha256.starts_with(k.as_str())),
            Caller::Ip(_) => None,
        }
    }

    /// 用量与额度里的名字：设置页建的密钥用它的用途说明，配置里的明文密钥用摘要的开头，没有密钥的调用为“匿名”。
    pub fn client_label(&self, config: &Config) -> String {
        match (self, self.entry(config)) {
            (_, Some(e)) => e.label.clone(),
            (Caller::Key(k), None) => format!("密钥 {}", &k[..6.min(k.len())]),
            (Caller::Ip(_), None) => "匿名".into(),
        }
    }

    /// 密钥所属的账号（成员自己建的密钥；没有主人时为空）。
    pub fn owner(&self, config: &Config) -> String {
        self.entry(config)
            .map(|e| e.owner.clone())
            .unwrap_or_default()
    }

    /// 这个调用方的额度（设置页建的密钥可以设；其余不限）。
    pub fn budget(&self, config: &Config) -> crate::access::budget::Budget {
        self.entry(config)
            .map(|e| crate::access::budget::Budget {
                images_per_day: e.images_per_day,
                max_concurrent: e.max_concurrent,
                spend_per_day: config.usage.to_usd(e.max_spend_per_day),
                spend_per_month: config.usage.to_usd(e.max_spend_per_month),
                pricing: config.usage.pricing(),
            })
            .unwrap_or_default()
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

/// 正在服务的监听地址（`/v1` 没有密钥时开不开看它）。
pub type ListenAddr = std::sync::Arc<crate::listeners::Listeners>;

/// `/v1` 鉴权用到的状态：配置、密钥的使用时间、监听地址、账号的快照（密钥的主人停用了，密钥跟着失效）。
pub type AuthState = (
    ConfigHandle,
    KeyUsage,
    ListenAddr,
    crate::access::accounts::Directory,
);

pub async fn require_api_key(
    State((config, usage, listeners, accounts)): State<AuthState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let config = config.load();
    let listen = listeners
        .current_addr()
        .unwrap_or_else(|| config.listen_addr());
    let locked = crate::access::exposure::studio_locked(&config, accounts.any());
    let caller = identify(&config, request.headers(), peer, listen, locked)?;
    if let Caller::Key(_) = &caller {
        if let Some(token) = bearer(request.headers()) {
            let sha = sha256_hex(token);
            if let Some(key) = config.auth.keys.iter().find(|k| k.sha256 == sha) {
                if !key.owner.is_empty() && !accounts.enabled(&key.owner) {
                    return Err(ApiError::Unauthorized(format!(
                        "这个 API 密钥所属的账号“{}”已停用或已不存在，密钥随之失效",
                        key.owner
                    )));
                }
                usage.touch(sha);
            }
        }
    }
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

fn identify(
    config: &Config,
    headers: &HeaderMap,
    peer: SocketAddr,
    listen: SocketAddr,
    locked: bool,
) -> Result<Caller, ApiError> {
    if !config.auth.requires_key() {
        if crate::access::exposure::v1_open_without_keys(config, listen, locked) {
            return Ok(Caller::Ip(client_ip(config, headers, peer)));
        }
        return Err(ApiError::Unauthorized(
            "/v1 还没有 API 密钥：这个端口与别人共用（设了工作台密码、监听的不是本机地址或在代理之后），请管理员在设置页创建密钥后带 Authorization: Bearer <密钥> 调用（或在配置里写 auth.open_v1 = true 明确开放）".into(),
        ));
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

    fn check(config: &Config, h: &HeaderMap, listen: &str) -> Result<Caller, ApiError> {
        let locked = crate::access::exposure::studio_locked(config, false);
        identify(
            config,
            h,
            PEER.parse().unwrap(),
            listen.parse().unwrap(),
            locked,
        )
    }

    #[test]
    fn keys_are_required_when_configured_or_when_the_port_is_shared() {
        let local = "127.0.0.1:3000";
        let open = config(&[]);
        assert!(check(&open, &headers(&[]), local).is_ok());
        let lan = check(&open, &headers(&[]), "0.0.0.0:3000").unwrap_err();
        assert!(lan.to_string().contains("还没有 API 密钥"), "{lan}");
        let mut studio_locked = config(&[]);
        studio_locked.auth.studio_password_hash = "$argon2id$…".into();
        assert!(check(&studio_locked, &headers(&[]), local).is_err());
        studio_locked.auth.open_v1 = true;
        assert!(check(&studio_locked, &headers(&[]), local).is_ok());
        let locked = config(&["sk-1"]);
        assert!(check(&locked, &headers(&[]), local).is_err());
        assert!(check(
            &locked,
            &headers(&[("authorization", "Bearer nope")]),
            local
        )
        .is_err());
        let ok = check(
            &locked,
            &headers(&[("authorization", "Bearer sk-1")]),
            local,
        )
        .unwrap();
        assert!(matches!(ok, Caller::Key(k) if !k.contains("sk-1")));
    }
}
