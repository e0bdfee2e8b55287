//! 登录会话：工作台会话与管理员会话（管理员会话也算工作台会话）。单机时会话令牌只在内存里（重启后需重新登录）；
//! 元数据在 PostgreSQL 时会话也记在库里（只存令牌的 SHA-256），共用这个库的各实例都认：
//! 每个请求先经 `refresh` 把 Cookie 里的令牌与库核对（本地记住 5 秒），在一个实例上退出，别的实例 5 秒内也不再认。
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

/// 令牌 → (身份, 到期, 上次与库核对的时刻)。
type Entry = (Role, Instant, Instant);

/// 本地记住一个令牌（库里的核对结果）多久。
const RECHECK: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, Entry>>>,
    /// 共用库时库里没有的令牌与查的时刻（5 秒内不再查：带着乱填 Cookie 的请求不会每次都查库）。
    misses: Arc<Mutex<HashMap<String, Instant>>>,
    ttl: Duration,
    /// 元数据在 PostgreSQL 时，会话也记在库里。
    shared: Option<crate::storage::Storage>,
}

fn token_hash(token: &str) -> String {
    crate::web::sha256_hex(token)
}

fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Studio => "studio",
            Role::Admin => "admin",
        }
    }
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
            misses: Arc::default(),
            ttl,
            shared: None,
        }
    }

    /// 会话记在这个存储的库里（元数据在 PostgreSQL、几个实例共用时）。
    pub fn shared_through(mut self, storage: crate::storage::Storage) -> Self {
        self.shared = Some(storage);
        self
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.lock().expect("会话表锁未被毒化")
    }

    /// 新建一个会话，返回设置它的 Cookie（共用库时先写进库，别的实例立即认得）。
    pub async fn create(
        &self,
        role: Role,
        secure: bool,
    ) -> Result<Cookie<'static>, crate::storage::StorageError> {
        use rand::distr::{Alphanumeric, SampleString};
        let token = Alphanumeric.sample_string(&mut rand::rng(), 48);
        if let Some(storage) = &self.shared {
            let (hash, now_ms) = (token_hash(&token), epoch_ms());
            let expires = now_ms + self.ttl.as_millis() as i64;
            storage
                .with_db(move |c| {
                    use crate::storage::sql::params;
                    c.execute(
                        "DELETE FROM sessions WHERE expires_at < ?1",
                        params![now_ms],
                    )?;
                    c.execute(
                        "INSERT INTO sessions (token_hash, role, expires_at) VALUES (?1, ?2, ?3)",
                        params![hash, role.as_str(), expires],
                    )?;
                    Ok(())
                })
                .await?;
        }
        let now = Instant::now();
        let mut table = self.table();
        table.retain(|_, (_, expiry, _)| *expiry > now);
        table.insert(token.clone(), (role, now + self.ttl, now));
        drop(table);
        Ok(Cookie::build((role.cookie(), token))
            .http_only(true)
            .same_site(match role {
                Role::Studio => SameSite::Lax,
                Role::Admin => SameSite::Strict,
            })
            .secure(secure)
            .path("/")
            .max_age(cookie::time::Duration::seconds(self.ttl.as_secs() as i64))
            .build())
    }

    /// 共用库时：把 Cookie 里的令牌与库核对（本地记着、且 5 秒内核对过的不再查）。库不可用时照本地记着的。
    pub async fn refresh(&self, jar: &CookieJar) {
        let Some(storage) = &self.shared else {
            return;
        };
        let now = Instant::now();
        let stale: Vec<String> = [STUDIO_COOKIE, ADMIN_COOKIE]
            .into_iter()
            .filter_map(|name| jar.get(name))
            .map(|c| c.value().to_string())
            .filter(|t| t.len() <= 128)
            .filter(|t| {
                self.table()
                    .get(t)
                    .is_none_or(|(_, _, checked)| now.duration_since(*checked) > RECHECK)
            })
            .filter(|t| {
                self.misses
                    .lock()
                    .expect("锁未被毒化")
                    .get(t)
                    .is_none_or(|at| now.duration_since(*at) > RECHECK)
            })
            .collect();
        for token in stale {
            let (hash, now_ms) = (token_hash(&token), epoch_ms());
            let found = storage
                .with_db(move |c| {
                    use crate::storage::sql::params;
                    Ok(c.query_opt(
                        "SELECT role, expires_at FROM sessions WHERE token_hash = ?1 AND expires_at > ?2",
                        params![hash, now_ms],
                        |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?)),
                    )?)
                })
                .await;
            let mut table = self.table();
            match found {
                Ok(Some((role, expires_ms))) => {
                    let role = if role == "admin" {
                        Role::Admin
                    } else {
                        Role::Studio
                    };
                    let left = Duration::from_millis((expires_ms - now_ms).max(0) as u64);
                    table.insert(token, (role, now + left, now));
                }
                Ok(None) => {
                    table.remove(&token);
                    let mut misses = self.misses.lock().expect("锁未被毒化");
                    if misses.len() >= 10_000 {
                        misses.retain(|_, at| now.duration_since(*at) <= RECHECK);
                    }
                    misses.insert(token, now);
                }
                Err(e) => tracing::warn!("核对会话失败（照本地记着的）：{e}"),
            }
        }
    }

    fn valid(&self, token: &str, role: Role) -> bool {
        self.table()
            .get(token)
            .is_some_and(|(r, expiry, _)| *r == role && *expiry > Instant::now())
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

    /// 作废这些身份的会话（共用库时也从库里删掉），返回清掉它们的 Cookie。
    pub async fn end(&self, jar: CookieJar, roles: &[Role]) -> CookieJar {
        let mut jar = jar;
        for role in roles {
            if let Some(c) = jar.get(role.cookie()) {
                let token = c.value().to_string();
                self.table().remove(&token);
                if let Some(storage) = &self.shared {
                    let hash = token_hash(&token);
                    let removed = storage
                        .with_db(move |c| {
                            use crate::storage::sql::params;
                            Ok(c.execute(
                                "DELETE FROM sessions WHERE token_hash = ?1",
                                params![hash],
                            )?)
                        })
                        .await;
                    if let Err(e) = removed {
                        tracing::warn!("从库里删会话失败：{e}");
                    }
                }
            }
            jar = jar.remove(Cookie::build(role.cookie()).path("/"));
        }
        jar
    }
}
