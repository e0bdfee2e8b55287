//! 登录会话：工作台会话与管理员会话（管理员会话也算工作台会话），会话令牌只在内存里（重启后需重新登录）。
//!
//! Cookie 都是 HttpOnly；工作台的是 SameSite=Lax（从聊天软件里点开的图片链接也能带上），
//! 管理员的是 SameSite=Strict（别的网站发起的任何请求都不带它）；经 https 访问时加 Secure。

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// 工作台会话的 Cookie 名。
pub const STUDIO_COOKIE: &str = "factory_session";
/// 管理员会话的 Cookie 名。
pub const ADMIN_COOKIE: &str = "factory_admin";
/// 会话有效期。
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// 会话的身份。
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Studio,
    Admin,
}

impl Role {
    fn cookie(self) -> &'static str {
        match self {
            Role::Studio => STUDIO_COOKIE,
            Role::Admin => ADMIN_COOKIE,
        }
    }
}

#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, (Role, Instant)>>>,
    ttl: Duration,
}

impl Sessions {
    /// `FACTORY_SESSION_TTL_SECS` 可缩短会话有效期（测试“会话过期”用）。
    pub fn from_env() -> Self {
        let ttl = std::env::var("FACTORY_SESSION_TTL_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(SESSION_TTL);
        Self {
            inner: Arc::default(),
            ttl,
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Role, Instant)>> {
        self.inner.lock().expect("会话表锁未被毒化")
    }

    /// 新建一个会话，返回设置它的 Cookie。
    pub fn create(&self, role: Role, secure: bool) -> Cookie<'static> {
        use rand::distr::{Alphanumeric, SampleString};
        let token = Alphanumeric.sample_string(&mut rand::rng(), 48);
        let now = Instant::now();
        let mut table = self.table();
        table.retain(|_, (_, expiry)| *expiry > now);
        table.insert(token.clone(), (role, now + self.ttl));
        Cookie::build((role.cookie(), token))
            .http_only(true)
            .same_site(match role {
                Role::Studio => SameSite::Lax,
                Role::Admin => SameSite::Strict,
            })
            .secure(secure)
            .path("/")
            .max_age(cookie::time::Duration::seconds(self.ttl.as_secs() as i64))
            .build()
    }

    fn valid(&self, token: &str, role: Role) -> bool {
        self.table()
            .get(token)
            .is_some_and(|(r, expiry)| *r == role && *expiry > Instant::now())
    }

    /// 请求带着有效的管理员会话。
    pub fn is_admin(&self, jar: &CookieJar) -> bool {
        jar.get(ADMIN_COOKIE)
            .is_some_and(|c| self.valid(c.value(), Role::Admin))
    }

    /// 请求带着有效的工作台会话（管理员会话也算）。
    pub fn is_studio(&self, jar: &CookieJar) -> bool {
        self.is_admin(jar)
            || jar
                .get(STUDIO_COOKIE)
                .is_some_and(|c| self.valid(c.value(), Role::Studio))
    }

    /// 工作台会话的令牌（限流与排队上限按会话计；没有会话时为空）。
    pub fn studio_token<'a>(&self, jar: &'a CookieJar) -> Option<&'a str> {
        [STUDIO_COOKIE, ADMIN_COOKIE]
            .into_iter()
            .filter_map(|name| jar.get(name))
            .map(|c| c.value())
            .find(|token| self.valid(token, Role::Studio) || self.valid(token, Role::Admin))
    }

    /// 作废这些身份的会话，返回清掉它们的 Cookie。
    pub fn end(&self, jar: CookieJar, roles: &[Role]) -> CookieJar {
        let mut jar = jar;
        for role in roles {
            if let Some(c) = jar.get(role.cookie()) {
                self.table().remove(c.value());
            }
            jar = jar.remove(Cookie::build(role.cookie()).path("/"));
        }
        jar
    }
}
