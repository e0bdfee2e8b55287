//! 管理员登录链接：没设管理员密码、端口只在本机可达时（见 `super::exposure`），启动时在终端（标准错误）
//! 打印一个带随机令牌的链接 `http://127.0.0.1:3000/admin/token?token=…`，像 Jupyter 那样；打开它得到管理员会话。
//!
//! 令牌在进程退出前一直有效（换个浏览器也能再打开），进程里只留它的 SHA-256；比较摘要，耗时与令牌内容无关；
//! 与密码登录共用每个 IP 每分钟 5 次的限速。环境变量 `FACTORY_ADMIN_TOKEN`（至少 32 个字符）可以指定令牌，
//! 给脚本与测试用。设了管理员密码、或端口可能被别人访问到时，链接不打印、也不认。

//! 这里只有令牌本身（放在共享状态里）；打开链接的处理函数在 `login.rs`，与密码登录放在一起。

use std::sync::Arc;

/// 链接的路径。
pub const PATH: &str = "/admin/token";
/// `FACTORY_ADMIN_TOKEN` 至少几个字符。
const MIN_TOKEN_CHARS: usize = 32;

/// 这个进程的管理员登录令牌。
#[derive(Clone)]
pub struct AdminToken {
    /// 令牌原文：只用来在启动时打印一次链接。
    plain: Arc<str>,
    digest: Arc<str>,
}

impl AdminToken {
    /// 随机生成，或取 `FACTORY_ADMIN_TOKEN`（太短的不用，并警告）。
    pub fn from_env() -> Self {
        use rand::distr::{Alphanumeric, SampleString};
        let plain = match std::env::var("FACTORY_ADMIN_TOKEN") {
            Ok(t) if t.chars().count() >= MIN_TOKEN_CHARS => t,
            Ok(_) => {
                tracing::warn!(
                    "FACTORY_ADMIN_TOKEN 少于 {MIN_TOKEN_CHARS} 个字符，不用它，改用随机令牌"
                );
                Alphanumeric.sample_string(&mut rand::rng(), 40)
            }
            Err(_) => Alphanumeric.sample_string(&mut rand::rng(), 40),
        };
        Self {
            digest: crate::web::sha256_hex(&plain).into(),
            plain: plain.into(),
        }
    }

    pub fn matches(&self, given: &str) -> bool {
        crate::web::sha256_hex(given) == *self.digest
    }

    /// 启动时打印的登录链接。
    pub fn link(&self, base: &str) -> String {
        let token: String = url::form_urlencoded::byte_serialize(self.plain.as_bytes()).collect();
        format!("{base}{PATH}?token={token}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_carries_the_token_and_only_it_matches() {
        let token = AdminToken::from_env();
        let link = token.link("http://127.0.0.1:3000");
        let given = link.split("token=").nth(1).unwrap();
        assert!(link.starts_with("http://127.0.0.1:3000/admin/token?token="));
        assert!(token.matches(given));
        assert!(!token.matches(""));
        assert!(!token.matches(&given[1..]));
    }
}
