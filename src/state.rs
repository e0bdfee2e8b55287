//! 所有请求共享的状态：交给 SSR、服务器函数与每个 axum 处理函数。这里只持有，不干活：
//! 生产图片在 `produce.rs`，换配置在 `config::ConfigStore`，任务在 `jobs`。

use crate::config::{ConfigHandle, ConfigStore};
use crate::error::ApiError;
use crate::gateway::Gateway;
use crate::jobs::JobManager;
use crate::openai::idempotency::Idempotency;
use crate::produce::Producer;
use crate::storage::Storage;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::Arc;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    /// 每个页面的 island 的 WASM 块的预加载（启动时读拆分清单算好，见 `crate::web::preload`）。
    pub preloads: Arc<crate::web::preload::Preloads>,
    /// 运行中的配置（只读快照；要改经 `config_store`）。
    pub config: ConfigHandle,
    /// 换配置的唯一入口（设置页、密钥、配置文件的改动）。
    pub config_store: Arc<ConfigStore>,
    pub gateway: Gateway,
    pub storage: Storage,
    /// 幂等键的记录（在数据库里，重启后也记得）。
    pub idempotency: Idempotency,
    pub jobs: JobManager,
    /// 工作台与管理员的登录会话。
    pub sessions: crate::access::sessions::Sessions,
    /// 团队账号的快照（每 2 秒从库里重读，见 `crate::access::accounts`）。
    pub accounts: crate::access::accounts::Directory,
    /// 各账号自己的每分钟张数。
    pub account_minutes: crate::access::budget::AccountMinutes,
    /// 登录尝试的限速（工作台与管理员共用）。
    pub login_throttle: crate::access::login_throttle::LoginThrottle,
    /// 给 `/v1` 调用方的签名图片链接。
    pub url_signer: crate::access::signed::UrlSigner,
    /// `/v1` 的按请求数限流（tower_governor 的计数表）。
    pub v1_limits: crate::openai::rate_limit::RateLimiter,
    /// 工作台每分钟的张数限流。
    pub image_budget: crate::access::budget::ImageBudget,
    /// 调用方的每日张数与同时请求数（设置页建的密钥、工作台）。
    pub client_budgets: crate::access::budget::ClientBudgets,
    /// 每个 IP 的 `/ws` 连接数。
    pub sockets: crate::access::budget::SocketCounts,
    /// 设置页创建的密钥最近一次使用的时间。
    pub key_usage: crate::openai::auth::KeyUsage,
    /// 正在服务的监听地址（设置页可切换）。
    pub listeners: Arc<crate::listeners::Listeners>,
    /// 没设管理员密码时，启动时打印的管理员登录链接的令牌。
    pub admin_token: crate::access::admin_link::AdminToken,
}

impl AppState {
    /// 生产线（网关 + 存储）。
    pub fn producer(&self) -> Producer {
        Producer {
            gateway: self.gateway.clone(),
            storage: self.storage.clone(),
        }
    }

    /// 工作台要登录：设了共用的工作台密码，或有账号。
    pub fn studio_locked(&self, config: &crate::config::Config) -> bool {
        crate::access::exposure::studio_locked(config, self.accounts.any())
    }

    /// 正在服务的监听地址；还没开始监听时（进程内的测试）是配置里的。
    pub fn listen_addr(&self) -> std::net::SocketAddr {
        self.listeners
            .current_addr()
            .unwrap_or_else(|| self.config.load().listen_addr())
    }

    /// 服务器函数里取当前请求的共享状态（由 `leptos_routes_with_context` 与服务器函数处理器提供）。
    pub fn from_context() -> Result<AppState, ApiError> {
        leptos::prelude::use_context::<AppState>()
            .ok_or_else(|| ApiError::Internal("服务器状态缺失".into()))
    }
}

/// 服务器函数的外壳：取状态、做事、把错误变成给页面的错误（`AppError`，中文原因与 HTTP 状态）。
pub async fn with_state<T, F>(f: impl FnOnce(AppState) -> F) -> Result<T, crate::types::AppError>
where
    F: std::future::Future<Output = Result<T, ApiError>>,
{
    let state = AppState::from_context().map_err(crate::error::server_fn_error)?;
    f(state).await.map_err(crate::error::server_fn_error)
}
