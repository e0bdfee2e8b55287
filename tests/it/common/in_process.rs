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
        App { state, router, dir }
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
