//! 这个端口是不是和别人共用：决定 `/v1` 没配密钥时开不开、没设管理员密码时设置页怎么进。
//!
//! - 只在本机可达（监听本机地址，也没配 `public_url`、`allowed_hosts`、`trusted_proxies`）：
//!   `/v1` 没有密钥时开放（单人在自己电脑上用）；没设管理员密码时，设置页凭启动时打印的一次性登录链接进入
//!   （像 Jupyter 那样），不再凭“对端是本机”——本机上的反向代理、`ssh -R`、socat 会让所有人看起来都像本机；
//! - 可能被别人访问到（监听非本机地址，或配了上面任何一项，说明前面有代理或域名）：设置页必须设管理员密码；
//!   `/v1` 没有密钥时 401（明写 `auth.open_v1 = true` 才开放，启动时警告）；
//! - 设了工作台密码，说明主人不想让别人随便用：`/v1` 没有密钥时同样 401。

use crate::config::Config;
use std::net::SocketAddr;

/// 可能被别人访问到：监听的不是本机地址，或配置里写了代理或域名。
pub fn reachable_by_others(config: &Config, listen: SocketAddr) -> bool {
    !listen.ip().is_loopback()
        || !config.server.public_url.trim().is_empty()
        || !config.server.allowed_hosts.is_empty()
        || !config.server.trusted_proxies.is_empty()
}

/// 工作台要登录：设了共用的工作台密码，或有账号（`accounts_exist`，见 `super::accounts::Directory::any`）。
pub fn studio_locked(config: &Config, accounts_exist: bool) -> bool {
    !config.auth.studio_password_hash.is_empty() || accounts_exist
}

/// `/v1` 没配任何密钥时是否照样开放（`locked`：工作台要登录，见 [`studio_locked`]）。
pub fn v1_open_without_keys(config: &Config, listen: SocketAddr, locked: bool) -> bool {
    config.auth.open_v1 || (!locked && !reachable_by_others(config, listen))
}

/// 没设管理员密码时，设置页是否必须先设密码（否则凭一次性登录链接进入）。
pub fn admin_password_required(config: &Config, listen: SocketAddr) -> bool {
    reachable_by_others(config, listen)
}

/// 能访问这个端口的陌生人能用掉主人的额度：监听非本机地址，而工作台或 `/v1` 没有把关。启动时大声警告。
pub fn is_exposed(config: &Config, listen: SocketAddr, locked: bool) -> bool {
    !listen.ip().is_loopback()
        && (!locked
            || (!config.auth.requires_key() && v1_open_without_keys(config, listen, locked)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_without_keys_is_open_only_on_a_private_loopback_studio() {
        let mut c = Config::default();
        let local = addr("127.0.0.1:3000");
        let lan = addr("0.0.0.0:3000");
        assert!(v1_open_without_keys(&c, local, studio_locked(&c, false)));
        assert!(!v1_open_without_keys(&c, lan, studio_locked(&c, false)));
        c.server.trusted_proxies = vec!["127.0.0.1".into()];
        assert!(
            !v1_open_without_keys(&c, local, studio_locked(&c, false)),
            "前面有代理"
        );
        c.server.trusted_proxies.clear();
        c.auth.studio_password_hash = "$argon2id$…".into();
        assert!(
            !v1_open_without_keys(&c, local, studio_locked(&c, false)),
            "设了工作台密码"
        );
        c.auth.studio_password_hash.clear();
        assert!(
            !v1_open_without_keys(&c, local, studio_locked(&c, true)),
            "有账号"
        );
        c.auth.open_v1 = true;
        assert!(
            v1_open_without_keys(&c, lan, studio_locked(&c, false)),
            "明写开放"
        );
    }

    #[test]
    fn the_admin_password_is_required_as_soon_as_others_can_reach_the_port() {
        let mut c = Config::default();
        assert!(!admin_password_required(&c, addr("127.0.0.1:3000")));
        assert!(!admin_password_required(&c, addr("[::1]:3000")));
        assert!(admin_password_required(&c, addr("192.168.1.5:3000")));
        c.server.public_url = "https://draw.example.com".into();
        assert!(admin_password_required(&c, addr("127.0.0.1:3000")));
        c.server.public_url.clear();
        c.server.allowed_hosts = vec!["draw.lan".into()];
        assert!(admin_password_required(&c, addr("127.0.0.1:3000")));
    }

    #[test]
    fn exposure_warns_when_strangers_could_spend_the_quota() {
        let mut c = Config::default();
        let lan = addr("0.0.0.0:3000");
        assert!(is_exposed(&c, lan, studio_locked(&c, false)), "什么都没设");
        assert!(!is_exposed(
            &c,
            addr("127.0.0.1:3000"),
            studio_locked(&c, false)
        ));
        c.auth.studio_password_hash = "$argon2id$…".into();
        assert!(
            !is_exposed(&c, lan, studio_locked(&c, false)),
            "工作台有密码、/v1 没密钥时关着"
        );
        c.auth.open_v1 = true;
        assert!(
            is_exposed(&c, lan, studio_locked(&c, false)),
            "明写开放的 /v1"
        );
        c.auth.api_keys = vec!["sk-1".into()];
        assert!(!is_exposed(&c, lan, studio_locked(&c, false)));
    }
}
