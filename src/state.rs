//! 所有请求共享的状态：交给 SSR、服务器函数与每个 axum 处理函数。

use crate::config::ConfigHandle;
use crate::gateway::Gateway;
use crate::openai::idempotency::IdempotencyCache;
use crate::storage::Storage;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: ConfigHandle,
    pub gateway: Gateway,
    pub storage: Storage,
    pub idempotency: IdempotencyCache,
}
