//! 登录会话：工作台会话与管理员会话（管理员会话也算工作台会话）。单机时会话令牌只在内存里（重启后需重新登录）；
//! 元数据在 PostgreSQL 时会话也记在库里（只存令牌的 SHA-256），共用这个库的各实例都认：
//! 每个请求先经 `refresh` 把 Cookie 里的令牌与库核对（本地记住 5 秒），在一个实例上退出，别的实例 5 秒内也不再认。
//!
//! 形状不对的令牌（不是 48 个字母数字）直接不认，不查库；库里查不到的令牌记在一个有上限的 LRU 里（5 秒内不再查）。
//! 工作台或管理员密码一改（设置页、配置文件、集群里别的实例），这个身份的会话全部作废（`revoke_role`）。
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
/// 令牌的长度（字母数字）。
const TOKEN_CHARS: usize = 48;
/// 库里查不到的令牌最多记住几个。
const MAX_MISSES: usize = 10_000;

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

/// 一个会话：身份、到期、上次与库核对的时刻、所属账号与建立时账号的 `epoch`（没有账号的会话为空）。
#[derive(Debug, Clone)]
struct Entry {
    role: Role,
    expiry: Instant,
    checked: Instant,
    account: Option<(String, i64)>,
}

/// 本地记住一个令牌（库里的核对结果）多久。
const RECHECK: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Mutex<HashMap<String, Entry>>>,
    /// 共用库时库里没有的令牌与查的时刻（5 秒内不再查：带着乱填 Cookie 的请求不会每次都查库）；
    /// 最多记 [`MAX_MISSES`] 个，满了丢掉最久没用的。
    misses: Arc<Mutex<hashlink::LruCache<String, Instant>>>,
    ttl: Duration,
    /// 元数据在 PostgreSQL 时，会话也记在库里。
    shared: Option<crate::storage::Storage>,
    /// 账号的快照：账号停用、改了密码的会话不再认（见 `super::accounts`）。
    directory: super::accounts::Directory,
}

/// 令牌的形状对不对（我们发的令牌都是 48 个字母数字）：不对的不认，也不拿去查库。
fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_CHARS && token.bytes().all(|b| b.is_ascii_alphanumeric())
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
            misses: Arc::new(Mutex::new(hashlink::LruCache::new(MAX_MISSES))),
            ttl,
            shared: None,
            directory: Default::default(),
        }
    }

    /// 按这份账号快照核对带账号的会话。
    pub fn with_directory(mut self, directory: super::accounts::Directory) -> Self {
        self.directory = directory;
        self
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
    /// `account` 是登录的账号与它此刻的 `epoch`（用共用密码、管理员密码或登录链接时为空）。
    pub async fn create(
        &self,
        role: Role,
        account: Option<(String, i64)>,
        secure: bool,
    ) -> Result<Cookie<'static>, crate::storage::StorageError> {
        use rand::distr::{Alphanumeric, SampleString};
        let token = Alphanumeric.sample_string(&mut rand::rng(), TOKEN_CHARS);
        if let Some(storage) = &self.shared {
            let (hash, now_ms) = (token_hash(&token), epoch_ms());
            let expires = now_ms + self.ttl.as_millis() as i64;
            let (name, epoch) = account.clone().unwrap_or_default();
            storage
                .with_db(move |c| {
                    use crate::storage::sql::params;
                    c.execute(
                        "DELETE FROM sessions WHERE expires_at < ?1",
                        params![now_ms],
                    )?;
                    c.execute(
                        "INSERT INTO sessions (token_hash, role, expires_at, account, epoch)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![hash, role.as_str(), expires, name, epoch],
                    )?;
                    Ok(())
                })
                .await?;
        }
        let now = Instant::now();
        let mut table = self.table();
        table.retain(|_, e| e.expiry > now);
        table.insert(
            token.clone(),
            Entry {
                role,
                expiry: now + self.ttl,
                checked: now,
                account,
            },
        );
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
            .filter(|t| well_formed(t))
            .filter(|t| {
                self.table()
                    .get(t)
                    .is_none_or(|e| now.duration_since(e.checked) > RECHECK)
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
                        "SELECT role, expires_at, account, epoch FROM sessions
                         WHERE token_hash = ?1 AND expires_at > ?2",
                        params![hash, now_ms],
                        |r| {
                            Ok((
                                r.get::<String>(0)?,
                                r.get::<i64>(1)?,
                                r.get::<String>(2)?,
                                r.get::<i64>(3)?,
                            ))
                        },
                    )?)
                })
                .await;
            let mut table = self.table();
            match found {
                Ok(Some((role, expires_ms, account, epoch))) => {
                    let role = if role == "admin" {
                        Role::Admin
                    } else {
                        Role::Studio
                    };
                    let left = Duration::from_millis((expires_ms - now_ms).max(0) as u64);
                    let account = (!account.is_empty()).then_some((account, epoch));
                    table.insert(
                        token,
                        Entry {
                            role,
                            expiry: now + left,
                            checked: now,
                            account,
                        },
                    );
                }
                Ok(None) => {
                    table.remove(&token);
                    self.misses.lock().expect("锁未被毒化").insert(token, now);
                }
                Err(e) => tracing::warn!("核对会话失败（照本地记着的）：{e}"),
            }
        }
    }

    /// 这个令牌是这个身份的有效会话时，它的账号（`Some(None)`：有效、没有账号）。
    fn lookup(&self, token: &str, role: Role) -> Option<Option<super::accounts::Person>> {
        if !well_formed(token) {
            return None;
        }
        let entry = self.table().get(token).cloned()?;
        if entry.role != role || entry.expiry <= Instant::now() {
            return None;
        }
        match entry.account {
            None => Some(None),
            Some((name, epoch)) => self.directory.active(&name, epoch).map(Some),
        }
    }

    fn valid(&self, token: &str, role: Role) -> bool {
        self.lookup(token, role).is_some()
    }

    /// 请求的会话所属的账号（没有会话、会话没有账号时为空）。
    pub fn person(&self, jar: &CookieJar) -> Option<super::accounts::Person> {
        [(ADMIN_COOKIE, Role::Admin), (STUDIO_COOKIE, Role::Studio)]
            .into_iter()
            .filter_map(|(name, role)| jar.get(name).map(|c| (c.value(), role)))
            .find_map(|(token, role)| self.lookup(token, role).flatten())
    }

    /// 请求带着管理员账号的管理员会话。
    pub fn is_admin_account(&self, jar: &CookieJar) -> bool {
        jar.get(ADMIN_COOKIE)
            .and_then(|c| self.lookup(c.value(), Role::Admin))
            .flatten()
            .is_some_and(|p| p.admin)
    }

    /// 作废这个身份的全部会话（它的密码改了）：本地立即，共用库时也从库里删掉（别的实例 5 秒内跟上）。
    pub fn revoke_role(&self, role: Role) {
        let before = self.table().len();
        // 带账号的会话不随共用密码作废（它们跟着自己账号的密码）。
        self.table()
            .retain(|_, e| e.role != role || e.account.is_some());
        let revoked = before - self.table().len();
        tracing::info!(?role, revoked, "密码改了，这个身份的会话全部作废");
        if let Some(storage) = self.shared.clone() {
            tokio::spawn(async move {
                let deleted = storage
                    .with_db(move |c| {
                        use crate::storage::sql::params;
                        Ok(c.execute(
                            "DELETE FROM sessions WHERE role = ?1 AND account = ''",
                            params![role.as_str()],
                        )?)
                    })
                    .await;
                if let Err(e) = deleted {
                    tracing::warn!("从库里删会话失败：{e}");
                }
            });
        }
    }

    /// 配置换入后调用：工作台或管理员密码的哈希变了，就作废那个身份的会话。`last` 记着上一次看到的两个哈希。
    pub fn follow_passwords(
        &self,
        last: &Mutex<(String, String)>,
        auth: &crate::config::AuthConfig,
    ) {
        let mut last = last.lock().expect("锁未被毒化");
        if last.0 != auth.studio_password_hash {
            self.revoke_role(Role::Studio);
        }
        if last.1 != auth.admin_password_hash {
            self.revoke_role(Role::Admin);
        }
        *last = (
            auth.studio_password_hash.clone(),
            auth.admin_password_hash.clone(),
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_change_ends_the_sessions_of_that_role_only() {
        let sessions = Sessions::from_env();
        let studio = sessions.create(Role::Studio, None, false).await.unwrap();
        let admin = sessions.create(Role::Admin, None, false).await.unwrap();
        let jar = CookieJar::new().add(studio).add(admin);
        assert!(sessions.is_studio(&jar) && sessions.is_admin(&jar));
        let mut auth = crate::config::AuthConfig::default();
        let last = Mutex::new((String::new(), String::new()));
        sessions.follow_passwords(&last, &auth);
        assert!(sessions.is_admin(&jar), "哈希没变，会话照常");
        auth.studio_password_hash = "$argon2id$新".into();
        sessions.follow_passwords(&last, &auth);
        assert!(jar
            .get(STUDIO_COOKIE)
            .is_some_and(|c| !sessions.valid(c.value(), Role::Studio)));
        assert!(sessions.is_admin(&jar), "管理员会话不受工作台密码影响");
        auth.admin_password_hash = "$argon2id$管理员".into();
        sessions.follow_passwords(&last, &auth);
        assert!(!sessions.is_admin(&jar) && !sessions.is_studio(&jar));
    }

    #[test]
    fn only_tokens_of_our_shape_are_considered() {
        assert!(well_formed(&"a".repeat(TOKEN_CHARS)));
        assert!(!well_formed(&"a".repeat(TOKEN_CHARS - 1)));
        assert!(!well_formed(&format!("{}é", "a".repeat(TOKEN_CHARS - 2))));
        assert!(!well_formed(&format!("{}-", "a".repeat(TOKEN_CHARS - 1))));
    }

    #[test]
    fn the_miss_cache_is_bounded() {
        let sessions = Sessions::from_env();
        let now = Instant::now();
        let mut misses = sessions.misses.lock().unwrap();
        for i in 0..MAX_MISSES + 500 {
            misses.insert(format!("{i:048}"), now);
        }
        assert_eq!(misses.len(), MAX_MISSES);
    }
}
