//! 管理员：登录（argon2 密码）、会话 Cookie、设置接口的守卫，以及设置的读取、校验、保存与热更新。
//!
//! 设置页经服务器函数 `/api/admin/*`（见 `crate::app::settings`）读写设置；
//! 守卫（`guard`）对 `/api/admin/*` 与登出一视同仁：
//! 1. 配置了 `auth.admin_password_hash` 时要求有效的会话 Cookie（HttpOnly、SameSite=Strict，https 时加 Secure）；
//!    没有配置密码时，只允许来自本机（回环地址）的请求；
//! 2. 改变状态的请求（非 GET）必须带与 Host 一致的 `Origin`（防跨站请求伪造）。
//!
//! 登录失败会被放慢（每次失败至少 0.5 秒），并按 IP 限制为每分钟 5 次。

pub mod settings;

use crate::error::ApiError;
use crate::state::AppState;
use crate::web::ApiJson;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// 会话 Cookie 的名字。
const COOKIE: &str = "factory_admin";
/// 会话有效期。
const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// 每次登录失败至少等这么久再回答。
const FAILURE_DELAY: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Admin {
    inner: Arc<Inner>,
}

struct Inner {
    /// 会话令牌 → 到期时刻。只在内存里：重启后需要重新登录。
    sessions: Mutex<HashMap<String, Instant>>,
    login_limiter: DefaultKeyedRateLimiter<IpAddr>,
    ttl: Duration,
}

impl Default for Admin {
    fn default() -> Self {
        Self::with_ttl(SESSION_TTL)
    }
}

impl Admin {
    /// `FACTORY_SESSION_TTL_SECS` 可缩短会话有效期（测试“会话过期”用）。
    pub fn from_env() -> Self {
        let ttl = std::env::var("FACTORY_SESSION_TTL_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(SESSION_TTL);
        Self::with_ttl(ttl)
    }

    fn with_ttl(ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                sessions: Mutex::default(),
                login_limiter: DefaultKeyedRateLimiter::keyed(Quota::per_minute(
                    NonZeroU32::new(5).expect("非零"),
                )),
                ttl,
            }),
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.inner.sessions.lock().expect("会话表锁未被毒化")
    }

    fn create_session(&self) -> String {
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let mut sessions = self.sessions();
        let now = Instant::now();
        sessions.retain(|_, expiry| *expiry > now);
        sessions.insert(token.clone(), now + self.inner.ttl);
        token
    }

    fn session_valid(&self, token: &str) -> bool {
        self.sessions()
            .get(token)
            .is_some_and(|expiry| *expiry > Instant::now())
    }
}

/// 设置页的服务器函数的路径前缀；守卫保护它下面的一切。
pub const SETTINGS_API_PREFIX: &str = "/api/admin";

/// 登录与登出的路由（设置的读写是服务器函数，路径在 `SETTINGS_API_PREFIX` 下）。
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/login", post(login))
        .route("/admin/logout", post(logout))
}

/// 这个路径是否归管理员守卫管。
fn guarded(path: &str) -> bool {
    path == "/admin/logout"
        || path
            .strip_prefix(SETTINGS_API_PREFIX)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[derive(serde::Deserialize)]
struct LoginForm {
    password: String,
}

/// 是否经 https 访问（直接或经反向代理）。
fn is_https(state: &AppState, headers: &HeaderMap) -> bool {
    state
        .config
        .load()
        .server
        .public_url
        .starts_with("https://")
        || headers
            .get("x-forwarded-proto")
            .is_some_and(|v| v.as_bytes() == b"https")
}

fn session_cookie(token: String, secure: bool, ttl: Duration) -> Cookie<'static> {
    Cookie::build((COOKIE, token))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(time_duration(ttl))
        .build()
}

fn time_duration(d: Duration) -> cookie::time::Duration {
    cookie::time::Duration::seconds(d.as_secs() as i64)
}

/// `POST /admin/login`，JSON `{"password":"…"}`：对了设置会话 Cookie（204），错了 401。
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    ApiJson(form): ApiJson<LoginForm>,
) -> Result<(CookieJar, StatusCode), ApiError> {
    check_origin(&Method::POST, &headers)?;
    let config = state.config.load_full();
    let hash = config.auth.admin_password_hash.clone();
    if hash.is_empty() {
        return Err(ApiError::InvalidRequest(
            "还没有设置管理员密码：运行 drafting-factory hash-password，把输出填到配置的 auth.admin_password_hash".into(),
        ));
    }
    let ip = crate::web::client_ip(&config, &headers, peer);
    if state.admin.inner.login_limiter.check_key(&ip).is_err() {
        return Err(ApiError::RateLimited {
            retry_after_secs: 60,
        });
    }
    let ok = tokio::task::spawn_blocking(move || verify_password(&form.password, &hash))
        .await
        .unwrap_or(false);
    if !ok {
        tokio::time::sleep(FAILURE_DELAY).await;
        tracing::warn!(%ip, "管理员登录失败");
        return Err(ApiError::Unauthorized("密码不对".into()));
    }
    tracing::info!(%ip, "管理员已登录");
    let token = state.admin.create_session();
    let cookie = session_cookie(token, is_https(&state, &headers), state.admin.inner.ttl);
    Ok((jar.add(cookie), StatusCode::NO_CONTENT))
}

/// `POST /admin/logout`：作废会话并清掉 Cookie。
async fn logout(State(state): State<AppState>, jar: CookieJar) -> (CookieJar, StatusCode) {
    if let Some(c) = jar.get(COOKIE) {
        state.admin.sessions().remove(c.value());
    }
    (
        jar.remove(Cookie::build(COOKIE).path("/")),
        StatusCode::NO_CONTENT,
    )
}

/// 用 argon2 校验密码（慢是刻意的）。
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash)
        .map(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// 生成 argon2 哈希（`hash-password` 子命令用）。
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("无法生成哈希：{e}"))
}

/// 非 GET 请求必须带 Origin，且与 Host 一致（浏览器对跨站请求一定会带上别的 Origin）。
fn check_origin(method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
    if *method == Method::GET || *method == Method::HEAD {
        return Ok(());
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin_host = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .and_then(|o| url::Url::parse(o).ok())
        .map(|u| match u.port() {
            Some(port) => format!("{}:{port}", u.host_str().unwrap_or("")),
            None => u.host_str().unwrap_or("").to_string(),
        });
    match (host, origin_host) {
        (Some(host), Some(origin)) if host == origin => Ok(()),
        _ => Err(ApiError::Forbidden(
            "请求来源与本站不一致，已拒绝（防跨站请求伪造）".into(),
        )),
    }
}

/// 设置接口的守卫：会话（或无密码时仅限本机）+ Origin。整个路由都经过它，只管 `guarded` 的路径。
pub async fn guard(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    request: Request,
    next: Next,
) -> Response {
    if !guarded(request.uri().path()) {
        return next.run(request).await;
    }
    let config = state.config.load_full();
    let allowed = if config.auth.admin_password_hash.is_empty() {
        if peer.ip().is_loopback() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "还没有设置管理员密码，设置页只能从本机访问。运行 drafting-factory hash-password 生成哈希并填到 auth.admin_password_hash".into(),
            ))
        }
    } else if jar
        .get(COOKIE)
        .is_some_and(|c| state.admin.session_valid(c.value()))
    {
        Ok(())
    } else {
        Err(ApiError::Unauthorized(
            "请先登录（会话不存在或已过期）".into(),
        ))
    };
    match allowed.and_then(|()| check_origin(request.method(), request.headers())) {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response_for(request.uri().path()),
    }
}
