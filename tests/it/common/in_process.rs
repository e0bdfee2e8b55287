//! 进程内的测试程序：同样的状态与路由，不占端口、不起进程，请求经 `tower::ServiceExt::oneshot` 直接送进路由。
//! 校验、策略这类小检查用它，毫秒级；需要真实端口、进程或崩溃的测试仍用真正的二进制（`super::Workspace`）。

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use drafting_factory::state::AppState;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tower::ServiceExt;

pub struct App {
    pub state: AppState,
    router: axum::Router,
    dir: tempfile::TempDir,
    /// 凭管理员登录链接拿到的会话（第一次要用时才去拿；登录链接与密码登录共用每分钟 5 次的限速）。
    admin: tokio::sync::OnceCell<Option<String>>,
}

impl App {
    /// 以这份配置（写进临时目录的 `factory.toml`）建好状态与路由。没有上游时，内置演示上游在本进程里运行。
    pub async fn new(config: &str) -> App {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("factory.toml");
        std::fs::write(&path, config).unwrap();
        let loaded = drafting_factory::config::load(&path).unwrap();
        let state = drafting_factory::server::build_state(&loaded)
            .await
            .unwrap();
        let router = drafting_factory::server::router(state.clone());
        App {
            state,
            router,
            dir,
            admin: Default::default(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn storage(&self) -> PathBuf {
        PathBuf::from(self.state.storage.root())
    }

    /// 把请求送进路由；对端地址是本机（与真实服务器上 `ConnectInfo` 提供的一样）。
    pub async fn send(&self, request: Request<Body>) -> Response<Body> {
        self.send_from("127.0.0.1:40000".parse().unwrap(), request)
            .await
    }

    /// 同上，但请求来自 `peer`。
    pub async fn send_from(&self, peer: SocketAddr, mut request: Request<Body>) -> Response<Body> {
        request.extensions_mut().insert(ConnectInfo(peer));
        if !request.headers().contains_key("host") {
            request
                .headers_mut()
                .insert("host", "127.0.0.1:3000".parse().unwrap());
        }
        self.router.clone().oneshot(request).await.unwrap()
    }

    /// 管理员会话的 Cookie（`factory_admin=…`）：打开本进程的管理员登录链接拿到（和运维打开启动时打印的链接一样）；
    /// 设了管理员密码或端口可能被别人访问到时，链接不认，返回 None。
    pub async fn admin_cookie(&self) -> Option<String> {
        self.admin
            .get_or_init(|| async {
                let link = self.state.admin_token.link("");
                let response = self
                    .send(Request::get(link).body(Body::empty()).unwrap())
                    .await;
                if response.status() != 303 {
                    return None;
                }
                let cookie = response.headers()["set-cookie"].to_str().unwrap();
                Some(cookie.split(';').next().unwrap().to_string())
            })
            .await
            .clone()
    }

    /// 以本站的 Origin 与管理员会话调用设置页的服务器函数（`POST /api/admin/{name}`），返回状态码与 JSON。
    pub async fn admin(&self, name: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let mut request = Request::post(format!("/api/admin/{name}"))
            .header("content-type", "application/json")
            .header("origin", "http://127.0.0.1:3000");
        if let Some(cookie) = self.admin_cookie().await {
            request = request.header("cookie", cookie);
        }
        let request = request.body(Body::from(body.to_string())).unwrap();
        json_of(self.send(request).await).await
    }

    /// POST 一个 JSON 请求体，返回状态码与 JSON 响应（无法解析时为 null）。
    pub async fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        json_of(self.send(request).await).await
    }
}

/// 响应的状态码与 JSON 体。
pub async fn json_of(response: Response<Body>) -> (u16, serde_json::Value) {
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}
