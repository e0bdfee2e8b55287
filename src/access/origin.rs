//! `Host` 白名单（防 DNS 重绑定）与同源检查（防跨站请求伪造）。
//!
//! DNS 重绑定的网页用的总是攻击者自己的域名，所以 `Host` 是 IP 字面量、`localhost`、`server.public_url`
//! 的主机或 `server.allowed_hosts` 里的名字时放行，其他一律 421。
//! 改变状态的请求与 `/ws` 握手：带 `Origin` 时它必须就是本站（与 `Host` 或 `public_url` 同源）；
//! 没有 `Origin` 时看 `Sec-Fetch-Site`（浏览器总会带上其一）；两者都没有的是脚本（curl、SDK），放行，由鉴权把关。

use crate::config::Config;
use axum::http::{header, HeaderMap, Method};

/// `Host` 头里的主机名（小写，去掉端口与 IPv6 的方括号）。
fn host_name(authority: &str) -> String {
    let authority = authority.trim().to_ascii_lowercase();
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_string();
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host.to_string(),
        _ => authority,
    }
}

/// 这个 `Host` 是否允许。
pub fn host_allowed(config: &Config, host: &str) -> bool {
    let name = host_name(host);
    if name.is_empty() {
        return false;
    }
    if name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<std::net::IpAddr>().is_ok()
    {
        return true;
    }
    let public = url::Url::parse(&config.server.public_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    public.as_deref() == Some(name.as_str())
        || config
            .server
            .allowed_hosts
            .iter()
            .any(|h| host_name(h) == name)
}

/// 请求的 `Host`（HTTP/1.1 的头；HTTP/2 时取 URI 里的 authority）。
pub fn request_host<'a>(headers: &'a HeaderMap, uri: &'a axum::http::Uri) -> Option<&'a str> {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()))
}

/// 会改变状态的请求：除 GET、HEAD、OPTIONS 之外的方法。
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// 这个请求是否来自本站的页面（或不是浏览器发的）。`host` 已经过白名单检查。
/// `strict` 时（管理员的接口）必须明说来自本站：两个头都没有也不行。
pub fn same_origin(config: &Config, headers: &HeaderMap, host: &str, strict: bool) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let Some(origin) = origin.to_str().ok().and_then(|o| url::Url::parse(o).ok()) else {
            return false;
        };
        let authority = match origin.port() {
            Some(port) => format!("{}:{port}", origin.host_str().unwrap_or("")),
            None => origin.host_str().unwrap_or("").to_string(),
        };
        let public = url::Url::parse(&config.server.public_url).ok();
        return authority.eq_ignore_ascii_case(host)
            || public.is_some_and(|p| p.origin() == origin.origin());
    }
    match headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        // same-origin：本站页面发的；none：用户在地址栏直接打开。
        Some(site) => site == "same-origin" || site == "none",
        // 既没有 Origin 也没有 Sec-Fetch-Site：不是浏览器（curl、SDK、脚本）。
        None => !strict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn hosts_are_allowed_only_by_name_or_ip_literal() {
        let mut config = Config::default();
        for ok in [
            "127.0.0.1:3000",
            "localhost:3000",
            "[::1]:3000",
            "192.168.1.5",
            "LOCALHOST",
        ] {
            assert!(host_allowed(&config, ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:3000",
            "127.0.0.1.evil.example",
            "",
        ] {
            assert!(!host_allowed(&config, bad), "{bad}");
        }
        config.server.public_url = "https://draw.example.com".into();
        config.server.allowed_hosts = vec!["lan-box".into()];
        assert!(host_allowed(&config, "draw.example.com"));
        assert!(host_allowed(&config, "lan-box:3000"));
    }

    #[test]
    fn origin_must_be_this_site_and_browsers_always_say_where_they_come_from() {
        let config = Config::default();
        let host = "127.0.0.1:3000";
        let check =
            |pairs: &[(&'static str, &str)]| same_origin(&config, &headers(pairs), host, false);
        assert!(check(&[("origin", "http://127.0.0.1:3000")]));
        assert!(!check(&[("origin", "http://evil.example")]));
        assert!(!check(&[("origin", "http://localhost:3000")]));
        assert!(!check(&[("origin", "null")]));
        assert!(check(&[("sec-fetch-site", "same-origin")]));
        assert!(!check(&[("sec-fetch-site", "cross-site")]));
        assert!(check(&[]), "脚本没有这两个头");
        assert!(
            !same_origin(&config, &headers(&[]), host, true),
            "管理员接口要明说来自本站"
        );
    }
}
