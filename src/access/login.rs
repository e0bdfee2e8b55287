//! 登录与登出：工作台（`POST /login`、`POST /logout`）与管理员（`POST /admin/login`、`POST /admin/logout`，
//! 以及没设管理员密码时的登录链接 `GET /admin/token?token=…`，令牌见 `admin_link.rs`）。
//! 密码以 argon2 哈希存在配置里（`drafting-factory hash-password` 生成）；登录失败每次至少等 0.5 秒，
//! 同一 IP 每分钟最多试 5 次（工作台与管理员共用这个限额），之后 429。
//!
//! 团队账号（#38）：`{"name","password"}` 按账号登录（账号在元数据库里，见 `super::accounts`）；
//! 只有 `{"password"}` 仍是共用的工作台密码（或 `/admin/login` 的管理员密码）。管理员账号登录时同时得到
//! 管理员会话（设置页）。账号不存在时照样做一次 argon2，回答的快慢不透露账号在不在。

use super::sessions::Role;
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::{client_ip, is_trusted_proxy, ApiJson};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Redirect;
use axum::routing::{get, post};
use axum::Router;
use axum_extra::extract::cookie::CookieJar;
use std::net::SocketAddr;
use std::time::Duration;

/// 每次登录失败至少等这么久再回答。
const FAILURE_DELAY: Duration = Duration::from_millis(500);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", post(studio_login))
        .route("/logout", post(studio_logout))
        .route("/admin/login", post(admin_login))
        .route("/admin/logout", post(admin_logout))
        .route(super::admin_link::PATH, get(login_with_token))
}

#[derive(serde::Deserialize)]
struct LoginForm {
    /// 账号名；空的表示用共用密码。
    #[serde(default)]
    name: String,
    password: String,
}

/// 这个 IP 这一分钟还能试登录：返回它（日志用），试太多了 429。
fn allowed_to_try(
    state: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<std::net::IpAddr, ApiError> {
    let ip = client_ip(&state.config.load(), headers, peer);
    if state.login_throttle.allows(ip) {
        Ok(ip)
    } else {
        Err(ApiError::RateLimited {
            retry_after_secs: 60,
        })
    }
}

/// 账号不存在时拿来校验的哈希（与真的一样慢）。
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password("not-an-account-password").unwrap_or_default());

/// 按账号登录：名字与密码对了、账号没停用时，建立带账号的工作台会话（管理员账号另加管理员会话）。
/// `admin_only`：设置页的登录，只收管理员账号。
async fn account_login(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    jar: CookieJar,
    form: LoginForm,
    admin_only: bool,
) -> Result<(CookieJar, StatusCode), ApiError> {
    use crate::types::account::AccountRole;
    let ip = allowed_to_try(state, headers, peer)?;
    let name = form.name.trim().to_string();
    let found = state
        .storage
        .with_db({
            let name = name.clone();
            move |c| Ok(crate::storage::accounts::get(c, &name)?)
        })
        .await?;
    let hash = found
        .as_ref()
        .map(|a| a.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.clone());
    let password = form.password;
    let ok = argon2_limited(move || verify_password(&password, &hash)).await?;
    let Some(account) = found.filter(|_| ok) else {
        tokio::time::sleep(FAILURE_DELAY).await;
        tracing::warn!(%ip, "账号登录失败");
        return Err(ApiError::Unauthorized("账号或密码不对".into()));
    };
    if account.disabled {
        return Err(ApiError::Forbidden(format!(
            "账号“{name}”已停用，请找管理员"
        )));
    }
    if admin_only && account.role != AccountRole::Admin {
        return Err(ApiError::Forbidden(format!(
            "设置页只有管理员能打开：“{name}”是成员账号"
        )));
    }
    // 命令行刚建的账号，快照里可能还没有：先重读，会话建好就认得。
    state.accounts.reload(&state.storage).await;
    let secure = is_https(state, headers, peer);
    let me = Some((account.name.clone(), account.epoch));
    let mut jar = jar.add(
        state
            .sessions
            .create(Role::Studio, me.clone(), secure)
            .await?,
    );
    if account.role == AccountRole::Admin {
        jar = jar.add(state.sessions.create(Role::Admin, me, secure).await?);
    }
    state.accounts.seen(&state.storage, &account.name);
    tracing::info!(%ip, account = %account.name, "账号已登录");
    Ok((jar, StatusCode::NO_CONTENT))
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// `GET /admin/token?token=…`：令牌对了建立管理员会话并转到设置页（303），错了 401。
async fn login_with_token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Query(query): Query<TokenQuery>,
) -> Result<(CookieJar, Redirect), ApiError> {
    let config = state.config.load_full();
    if !config.auth.admin_password_hash.is_empty() {
        return Err(ApiError::Forbidden(
            "已经设置了管理员密码：请在设置页用密码登录".into(),
        ));
    }
    if super::exposure::admin_password_required(&config, state.listen_addr()) {
        return Err(ApiError::Forbidden(super::ADMIN_PASSWORD_REQUIRED.into()));
    }
    let ip = allowed_to_try(&state, &headers, peer)?;
    if !state.admin_token.matches(&query.token) {
        tokio::time::sleep(FAILURE_DELAY).await;
        tracing::warn!(%ip, "管理员登录链接的令牌不对");
        return Err(ApiError::Unauthorized(
            "登录链接不对或已失效（每次启动都会换新的）：请用服务启动时终端里打印的那一个".into(),
        ));
    }
    tracing::info!(%ip, "已凭登录链接登录管理员");
    let cookie = state
        .sessions
        .create(Role::Admin, None, is_https(&state, &headers, peer))
        .await?;
    Ok((jar.add(cookie), Redirect::to("/settings")))
}

/// 是否经 https 访问：`server.public_url` 是 https，或可信代理说 `X-Forwarded-Proto: https`。
fn is_https(state: &AppState, headers: &HeaderMap, peer: SocketAddr) -> bool {
    let config = state.config.load();
    config.server.public_url.starts_with("https://")
        || (is_trusted_proxy(&config, &peer.ip())
            && headers
                .get("x-forwarded-proto")
                .is_some_and(|v| v.as_bytes() == b"https"))
}

/// 校验密码并建立会话。`hash` 为空时说明该怎么设密码。
async fn login(
    state: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    jar: CookieJar,
    role: Role,
    password: String,
) -> Result<(CookieJar, StatusCode), ApiError> {
    let config = state.config.load_full();
    let (hash, key) = match role {
        Role::Admin => (&config.auth.admin_password_hash, "admin_password_hash"),
        Role::Studio => (&config.auth.studio_password_hash, "studio_password_hash"),
    };
    if hash.is_empty() {
        return Err(ApiError::InvalidRequest(format!(
            "还没有设置这个密码：运行 drafting-factory hash-password，把输出填到配置的 auth.{key}"
        )));
    }
    let ip = allowed_to_try(state, headers, peer)?;
    let ok = argon2_limited({
        let hash = hash.clone();
        move || verify_password(&password, &hash)
    })
    .await?;
    if !ok {
        tokio::time::sleep(FAILURE_DELAY).await;
        tracing::warn!(%ip, ?role, "登录失败");
        return Err(ApiError::Unauthorized("密码不对".into()));
    }
    // 校验期间密码被改了：旧密码建立的会话不能留下（改密码时作废会话那一刻它还不存在）。
    let now = state.config.load();
    let current = match role {
        Role::Admin => &now.auth.admin_password_hash,
        Role::Studio => &now.auth.studio_password_hash,
    };
    if *current != *hash {
        return Err(ApiError::Unauthorized(
            "密码刚被修改，请用新密码登录".into(),
        ));
    }
    tracing::info!(%ip, ?role, "已登录");
    let cookie = state
        .sessions
        .create(role, None, is_https(state, headers, peer))
        .await?;
    Ok((jar.add(cookie), StatusCode::NO_CONTENT))
}

/// `POST /login`，JSON `{"name":"…","password":"…"}`（账号）或 `{"password":"…"}`（共用的工作台密码）：
/// 对了设置会话 Cookie（204），错了 401，账号停用 403。
async fn studio_login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    ApiJson(form): ApiJson<LoginForm>,
) -> Result<(CookieJar, StatusCode), ApiError> {
    if !form.name.trim().is_empty() {
        return account_login(&state, peer, &headers, jar, form, false).await;
    }
    login(&state, peer, &headers, jar, Role::Studio, form.password).await
}

/// `POST /admin/login`，JSON `{"password":"…"}`（管理员密码）或 `{"name","password"}`（管理员账号）：
/// 对了设置会话 Cookie（204），错了 401。
async fn admin_login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    ApiJson(form): ApiJson<LoginForm>,
) -> Result<(CookieJar, StatusCode), ApiError> {
    if !form.name.trim().is_empty() {
        return account_login(&state, peer, &headers, jar, form, true).await;
    }
    login(&state, peer, &headers, jar, Role::Admin, form.password).await
}

/// `POST /logout`：作废工作台与管理员会话，清掉 Cookie。页头的“退出”按钮（普通表单）得到跳往登录页的 303，
/// 脚本得到 204。
async fn studio_logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: CookieJar,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let jar = state.sessions.end(jar, &[Role::Studio, Role::Admin]).await;
    let from_form = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if from_form {
        (jar, axum::response::Redirect::to("/login")).into_response()
    } else {
        (jar, StatusCode::NO_CONTENT).into_response()
    }
}

/// `POST /admin/logout`：作废管理员会话。
async fn admin_logout(State(state): State<AppState>, jar: CookieJar) -> (CookieJar, StatusCode) {
    let jar = state.sessions.end(jar, &[Role::Admin]).await;
    (jar, StatusCode::NO_CONTENT)
}

/// 同时进行的 argon2 计算最多几个：每个要约 19 MiB 内存与几十毫秒 CPU，一阵登录请求不会占满阻塞线程与内存。
static ARGON2_SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
/// 等一个 argon2 名额最多等多久，之后 503。
const ARGON2_WAIT: Duration = Duration::from_secs(10);

/// 在阻塞线程里做一次 argon2 计算（校验或生成哈希），全服务器同时最多 [`ARGON2_SLOTS`] 个。
pub async fn argon2_limited<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let busy = || ApiError::QueueFull("登录的人太多了，请稍后再试".into());
    let _slot = tokio::time::timeout(ARGON2_WAIT, ARGON2_SLOTS.acquire())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("argon2 计算中断：{e}")))
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

/// 生成 argon2 哈希（`hash-password` 子命令与设置页设工作台密码时用）。
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("无法生成哈希：{e}"))
}
