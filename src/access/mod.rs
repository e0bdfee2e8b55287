//! 访问控制：每个请求都先经过这里的一个守卫（`guard`），再到各自的处理函数。
//!
//! 按顺序：
//! 1. `Host` 必须在白名单里（`origin.rs`），否则 421——挡住 DNS 重绑定；
//! 2. 改变状态的请求（非 GET/HEAD）与 `/ws` 握手必须同源（`Origin`，没有时看 `Sec-Fetch-Site`），否则 403；
//!    两个头都没有的是脚本（curl、SDK），放行，由鉴权把关——管理员的接口除外，它们必须带 `Origin`；
//!    `/api/*` 只收 `Content-Type: application/json`，否则 415——别的网站的表单与 no-cors 请求都过不来；
//! 3. 按请求的去处把关（`Surface`）：
//!    - 开放：`/healthz`、登录页与登录/登出、页面的静态文件（`/pkg/*`、图标）、设置页的外壳（数据走下面的设置接口）；
//!    - `/v1/*`：由 `/v1` 自己的 API 密钥鉴权（`crate::openai::auth`）；
//!    - 设置接口 `/api/admin/*` 与 `/admin/logout`：管理员会话（管理员密码登录，或没设密码、端口只在本机可达时
//!      凭启动时打印的登录链接 `admin_link.rs`）；端口可能被别人访问到而没设管理员密码时一律 403（`exposure.rs`）；
//!    - `/metrics`：`server.metrics_public`，或管理员（同上），或带有效的 `/v1` 密钥；
//!    - 图片 `/files/{id}`、`/files/{id}/thumb`：工作台会话或有效的签名（`signed.rs`）；
//!    - 其余（工作台与图库页面、`/api/*`、`/ws`、`/uploads`、`/files/zip`）：设了工作台密码或有账号时要工作台会话，
//!      页面跳到中文登录页，其他 401。
//!
//! 守卫把会话所属的账号（`accounts::Viewer`）放进请求扩展：各处据此记下东西是谁的、判断能不能改别人的
//! （判断本身在 `accounts.rs`）。账号的管理员会话能进设置接口；成员进不去（403）。
//!
//! 守卫还把调用方（工作台会话或客户端 IP，`ClientId`）放进请求扩展，工作台的张数限流与排队上限按它计。
//! 所有响应都带 `X-Content-Type-Options: nosniff`、`X-Frame-Options: DENY`，页面另带内容安全策略（CSP）。

pub mod accounts;
pub mod admin_link;
pub mod api_keys;
pub mod budget;
pub mod exposure;
pub mod login;
pub mod login_throttle;
pub mod origin;
pub mod sessions;
pub mod signed;

use crate::config::Config;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::CookieJar;
use std::net::SocketAddr;

/// 调用方的身份（工作台会话或客户端 IP），工作台的张数限流与排队上限按它计。不含会话令牌本身。
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(pub String);

/// 请求的去处，决定由谁把关。
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Surface {
    Open,
    V1,
    Settings,
    Metrics,
    File,
    Studio,
}

fn surface(path: &str) -> Surface {
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    if matches!(
        path,
        "/healthz"
            | "/login"
            | "/logout"
            | "/admin/login"
            | admin_link::PATH
            | "/favicon.svg"
            | "/settings"
            | "/usage"
    ) || under("/pkg")
    {
        return Surface::Open;
    }
    if under("/v1") {
        return Surface::V1;
    }
    if under("/api/admin") || path == "/admin/logout" {
        return Surface::Settings;
    }
    if path == "/metrics" {
        return Surface::Metrics;
    }
    if let Some(rest) = path.strip_prefix("/files/") {
        if rest != "zip" {
            return Surface::File;
        }
    }
    Surface::Studio
}

/// 端口可能被别人访问到、却没设管理员密码时，设置页的回答。
pub const ADMIN_PASSWORD_REQUIRED: &str = "这个端口可能被别人访问到（监听的不是本机地址，或配置了 public_url、allowed_hosts、trusted_proxies），设置页必须先设管理员密码：运行 drafting-factory hash-password，把输出填到配置的 auth.admin_password_hash";

/// 管理员：有管理员会话（密码登录，或没设密码、端口只在本机可达时凭启动时打印的登录链接）。
fn admin_allowed(state: &AppState, config: &Config, jar: &CookieJar) -> Result<(), ApiError> {
    // 管理员账号登录的（它的会话跟着账号：停用、改密码即作废）。
    if state.sessions.is_admin_account(jar) {
        return Ok(());
    }
    if let Some(person) = state.sessions.person(jar) {
        return Err(ApiError::Forbidden(format!(
            "设置页只有管理员能打开：你登录的“{}”是成员账号",
            person.name
        )));
    }
    let no_password = config.auth.admin_password_hash.is_empty();
    if no_password && exposure::admin_password_required(config, state.listen_addr()) {
        return Err(ApiError::Forbidden(ADMIN_PASSWORD_REQUIRED.into()));
    }
    if state.sessions.is_admin(jar) {
        Ok(())
    } else if no_password {
        // 没有密码可登录：403（页面显示这段说明，而不是密码框）。
        Err(ApiError::Forbidden(
            "还没有设置管理员密码：请用服务启动时终端里打印的管理员登录链接（/admin/token?token=…）打开设置页；或设管理员密码（drafting-factory hash-password，填到 auth.admin_password_hash）".into(),
        ))
    } else {
        Err(ApiError::Unauthorized(
            "请先登录（会话不存在或已过期）".into(),
        ))
    }
}

/// 图片链接带着有效的签名（`?exp=…&sig=…`）。
fn signed_file_allowed(state: &AppState, path: &str, query: Option<&str>) -> bool {
    path.strip_prefix("/files/")
        .map(|rest| rest.split('/').next().unwrap_or(""))
        .is_some_and(|id| state.url_signer.verify_query(id, query))
}

/// 没有工作台会话时：页面跳到登录页（登录后回来），其他请求 401。
fn login_required(request: &Request) -> Response {
    let path = request.uri().path();
    let not_a_page = ["/api/", "/files/", "/uploads", "/ws"]
        .iter()
        .any(|prefix| path.starts_with(prefix));
    let wants_page = request.method() == axum::http::Method::GET
        && !not_a_page
        && request
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
    if wants_page {
        let target = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let next: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
        return Redirect::to(&format!("/login?next={next}")).into_response();
    }
    ApiError::Unauthorized("请先登录工作台（会话不存在或已过期）".into()).into_response_for(path)
}

/// 守卫本身：见模块说明。
pub async fn guard(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    mut request: Request,
    next: Next,
) -> Response {
    let config = state.config.load_full();
    let path = request.uri().path().to_string();
    let keeper = surface(&path);
    if let Some(rejected) = origin_rejection(&config, &request, &path, keeper) {
        return rejected;
    }
    state.sessions.refresh(&jar).await;
    if let Some(rejected) = keeper_rejection(&state, &config, &jar, keeper, &request, &path) {
        return rejected;
    }
    let client = client_id(&state, &config, &jar, request.headers(), peer);
    request.extensions_mut().insert(client);
    let viewer = accounts::Viewer(state.sessions.person(&jar));
    if let Some(person) = &viewer.0 {
        state.accounts.seen(&state.storage, &person.name);
    }
    request.extensions_mut().insert(viewer);
    with_security_headers(next.run(request).await)
}

/// 第 1、2 步：`Host` 在白名单里、改变状态的请求与 `/ws` 握手同源、`/api/*` 只收 JSON。
/// 不通过时记下原因，返回拒绝的响应（已带安全头）；通过时返回 `None`。
fn origin_rejection(
    config: &Config,
    request: &Request,
    path: &str,
    keeper: Surface,
) -> Option<Response> {
    let Some(host) = origin::request_host(request.headers(), request.uri()) else {
        return Some(with_security_headers(misdirected(path)));
    };
    if !origin::host_allowed(config, host) {
        tracing::warn!(%host, %path, "Host 不在白名单里，已拒绝（可能是 DNS 重绑定）");
        denied("misdirected");
        return Some(with_security_headers(misdirected(path)));
    }
    let upgrade = request.headers().contains_key(header::UPGRADE);
    // 管理员的接口（含登录）要明说来自本站：没有 Origin 也没有 Sec-Fetch-Site 的也拒绝。
    let strict = keeper == Surface::Settings || path == "/admin/login";
    if (origin::changes_state(request.method()) || upgrade)
        && !origin::same_origin(config, request.headers(), host, strict)
    {
        denied("cross_site");
        return Some(with_security_headers(
            ApiError::Forbidden("请求来源与本站不一致，已拒绝（防跨站请求伪造）".into())
                .into_response_for(path),
        ));
    }
    if path.starts_with("/api/")
        && origin::changes_state(request.method())
        && !is_json(request.headers())
    {
        denied("not_json");
        let e = ApiError::UnsupportedMediaType(
            "接口只接受 JSON：请带上 Content-Type: application/json".into(),
        );
        return Some(with_security_headers(e.into_response_for(path)));
    }
    None
}

/// 第 3 步：按请求的去处（`keeper`）把关。不通过时记下原因，返回拒绝的响应（已带安全头；
/// 工作台的页面跳到登录页）；通过时返回 `None`。
fn keeper_rejection(
    state: &AppState,
    config: &Config,
    jar: &CookieJar,
    keeper: Surface,
    request: &Request,
    path: &str,
) -> Option<Response> {
    let studio_open = !state.studio_locked(config);
    let verdict = match keeper {
        Surface::Open | Surface::V1 => Ok(()),
        Surface::Settings => admin_allowed(state, config, jar),
        Surface::Metrics => {
            if config.server.metrics_public
                || admin_allowed(state, config, jar).is_ok()
                || api_keys::has_valid_key(config, request.headers())
            {
                Ok(())
            } else {
                Err(ApiError::Unauthorized(
                    "/metrics 需要管理员会话或 /v1 的 API 密钥（或设置 server.metrics_public = true）".into(),
                ))
            }
        }
        Surface::File => {
            if studio_open
                || state.sessions.is_studio(jar)
                || signed_file_allowed(state, path, request.uri().query())
            {
                Ok(())
            } else {
                Err(ApiError::Unauthorized(
                    "图片链接无效或已过期，请重新获取（或先登录工作台）".into(),
                ))
            }
        }
        Surface::Studio => {
            if !studio_open && !state.sessions.is_studio(jar) {
                denied("login_required");
                return Some(with_security_headers(login_required(request)));
            }
            Ok(())
        }
    };
    if let Err(e) = verdict {
        denied(match keeper {
            Surface::Settings => "admin",
            Surface::Metrics => "metrics",
            _ => "file_link",
        });
        return Some(with_security_headers(e.into_response_for(path)));
    }
    None
}

/// 调用方的身份：登录了账号的按账号（同一个人的几个浏览器合起来算），有工作台会话的按会话
/// （令牌哈希的前 16 位，不含令牌本身），否则按客户端 IP。
fn client_id(
    state: &AppState,
    config: &Config,
    jar: &CookieJar,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> ClientId {
    if let Some(person) = state.sessions.person(jar) {
        return ClientId(format!("account:{}", person.name));
    }
    match state.sessions.studio_token(jar) {
        Some(token) => ClientId(format!("session:{}", &crate::web::sha256_hex(token)[..16])),
        None => ClientId(format!(
            "ip:{}",
            crate::web::client_ip(config, headers, peer)
        )),
    }
}

/// 守卫拒绝的请求按原因计数（`/metrics` 的 `access_denied_total{reason}`）。
fn denied(reason: &'static str) {
    metrics::counter!("access_denied_total", "reason" => reason).increment(1);
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<mime::Mime>().ok())
        .is_some_and(|m| m.essence_str() == "application/json")
}

fn misdirected(path: &str) -> Response {
    ApiError::MisdirectedRequest.into_response_for(path)
}

/// 内容安全策略：页面的脚本只来自本站（内联的只有带随机 nonce 的，见 `crate::app::shell`）、
/// WASM 可以编译、样式允许内联（组件用 style 属性排版）、不许被任何页面嵌入。
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:{images}; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_has_the_right_keeper() {
        for (path, want) in [
            ("/healthz", Surface::Open),
            ("/pkg/drafting-factory.wasm", Surface::Open),
            ("/login", Surface::Open),
            ("/admin/token", Surface::Open),
            ("/settings", Surface::Open),
            ("/v1/images/generations", Surface::V1),
            ("/api/admin/get_settings", Surface::Settings),
            ("/admin/logout", Surface::Settings),
            ("/metrics", Surface::Metrics),
            ("/files/0123/thumb", Surface::File),
            ("/files/zip", Surface::Studio),
            ("/", Surface::Studio),
            ("/gallery", Surface::Studio),
            ("/api/submit_jobs", Surface::Studio),
            ("/api/administer", Surface::Studio),
            ("/ws", Surface::Studio),
            ("/uploads", Surface::Studio),
            ("/v1x", Surface::Studio),
            ("/pkgs", Surface::Studio),
        ] {
            assert_eq!(surface(path), want, "{path}");
        }
    }
}
