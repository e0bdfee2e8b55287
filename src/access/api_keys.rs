//! `/v1` 的 API 密钥：从请求头取出 `Authorization: Bearer <密钥>`，核对它是配置里的一个（明文写的或设置页建的，比摘要）。
//! `/v1` 的鉴权（`crate::openai::auth`）与守卫里 `/metrics` 的放行都用它。

use crate::config::Config;
use crate::web::sha256_hex;
use axum::http::HeaderMap;

/// `Authorization: Bearer <密钥>` 里的密钥（没有或为空时是 None）。
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
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
