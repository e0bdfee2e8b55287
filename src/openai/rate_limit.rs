//! 限流（策略第 2 步）：tower_governor（GCRA），按鉴权层放进扩展的调用方身份（API 密钥，否则客户端 IP）计数。
//! 超限返回 429、`Retry-After` 与 OpenAI 形状的错误体。
//!
//! 几个实例共用 PostgreSQL 时，另在库里按同样的 GCRA 记一份（`shared_gcra`：一句原子的 upsert），
//! 每分钟 N 次是所有实例合起来的 N 次；本地的 tower_governor 照常在前面挡住单个实例上的突发。
//!
//! 热更新：限流配置（含计数状态）按当前的（每分钟次数, 突发）建立一次，之后每个请求都用同一份；
//! 设置页改了这两个数，下一个请求起换成新建的一份（计数从零开始）。每个请求把这一份包成 `GovernorLayer`
//! 套在后面的处理上——层本身只是个轻量的包装，计数状态在共享的配置里。

use super::auth::Caller;
use crate::config::{ConfigHandle, Rebuilt};
use crate::error::ApiError;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::middleware::NoOpMiddleware;
use std::sync::Arc;
use tower::{Layer, ServiceExt};
use tower_governor::governor::{GovernorConfig, GovernorConfigBuilder};
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};

/// 从请求扩展里取鉴权层放进去的调用方身份。
#[derive(Clone)]
pub struct CallerKey;

impl KeyExtractor for CallerKey {
    type Key = Caller;

    fn extract<T>(&self, request: &axum::http::Request<T>) -> Result<Caller, GovernorError> {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or(GovernorError::UnableToExtractKey)
    }
}

type Limits = GovernorConfig<CallerKey, NoOpMiddleware>;

/// 当前的限流配置及建立它时的参数。
#[derive(Clone, Default)]
pub struct RateLimiter {
    current: Arc<Rebuilt<(u32, u32), Limits>>,
    /// 元数据在 PostgreSQL 时，各实例合起来计数。
    shared: Option<crate::storage::Storage>,
}

impl RateLimiter {
    /// 各实例合起来计数（在这个存储的库里）。
    pub fn shared_through(mut self, storage: crate::storage::Storage) -> Self {
        self.shared = Some(storage);
        self
    }

    fn for_limits(&self, per_minute: u32, burst: u32) -> Arc<Limits> {
        self.current
            .get((per_minute, burst), |(per_minute, burst)| {
                GovernorConfigBuilder::default()
                    .key_extractor(CallerKey)
                    .per_millisecond((60_000 / per_minute.max(1) as u64).max(1))
                    .burst_size(burst.max(1))
                    .finish()
                    .expect("周期与突发都大于 0")
            })
    }
}

impl RateLimiter {
    /// 忘掉已经“回满”的调用方（与从没来过的没有区别），并收缩表：陌生的 IP 再多，计数表也不会一直长。
    /// 由服务器每分钟调用一次（`server::forget_idle_limits`）。
    pub fn forget_idle(&self) {
        if let Some(limits) = self.current.current() {
            limits.limiter().retain_recent();
            limits.limiter().shrink_to_fit();
        }
        // 库里已经回满的键（理论到达时刻已过）同样删掉。
        if let Some(storage) = self.shared.clone() {
            tokio::spawn(async move {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0);
                let removed = storage
                    .with_db(move |c| {
                        use crate::storage::sql::params;
                        Ok(c.execute("DELETE FROM rate_limits WHERE tat < ?1", params![now])?)
                    })
                    .await;
                if let Err(e) = removed {
                    tracing::warn!("清理共用的限流计数失败：{e}");
                }
            });
        }
    }

    /// 计数表里现在有几个调用方。
    pub fn tracked(&self) -> usize {
        self.current.current().map_or(0, |l| l.limiter().len())
    }
}

/// 超限时的响应：OpenAI 形状的 429 与 `Retry-After`（至少 1 秒）。
fn rejected(error: GovernorError) -> Response {
    match error {
        GovernorError::TooManyRequests { wait_time, .. } => ApiError::RateLimited {
            retry_after_secs: wait_time.max(1),
        }
        .into_response(),
        GovernorError::UnableToExtractKey => {
            ApiError::Internal("限流时找不到调用方身份（鉴权层应在限流之前）".into())
                .into_response()
        }
        GovernorError::Other { msg, .. } => {
            ApiError::Internal(msg.unwrap_or_else(|| "限流出错".into())).into_response()
        }
    }
}

/// 中间件：放在鉴权之后（鉴权把 `Caller` 放进请求扩展）。
pub async fn limit(
    axum::extract::State((config, limiter)): axum::extract::State<(ConfigHandle, RateLimiter)>,
    request: Request,
    next: Next,
) -> Response {
    let (per_minute, burst) = {
        let config = config.load();
        (config.limits.requests_per_minute, config.limits.burst)
    };
    if let (Some(storage), Some(caller)) = (&limiter.shared, request.extensions().get::<Caller>()) {
        let key = format!("v1|{}", caller.rate_limit_key());
        match shared_gcra(storage, key, per_minute, burst).await {
            Ok(None) => {}
            Ok(Some(retry_after_secs)) => {
                return ApiError::RateLimited { retry_after_secs }.into_response()
            }
            // 库不可用时不因限流拒绝（本地的限流照常生效），只记下来。
            Err(e) => tracing::warn!("共用的限流计数失败（只按本实例计）：{e}"),
        }
    }
    let layer = GovernorLayer::new(limiter.for_limits(per_minute, burst)).error_handler(rejected);
    match layer.layer(next).oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// 库里的 GCRA：每个键记一个“理论到达时刻”（Unix 毫秒）。放行时把它推后一个间隔；
/// 推后之后超出 `burst` 个间隔就不放行、不改动。一句 upsert 完成判断与更新，几个实例并发时也不会多放。
/// 放行返回 `None`，否则返回要等的秒数。
async fn shared_gcra(
    storage: &crate::storage::Storage,
    key: String,
    per_minute: u32,
    burst: u32,
) -> Result<Option<u64>, crate::storage::StorageError> {
    use crate::storage::sql::{params, Dialect};
    let interval = (60_000 / i64::from(per_minute.max(1))).max(1);
    let tolerance = interval * i64::from(burst.max(1));
    let greatest = match storage.dialect() {
        Dialect::Postgres => "GREATEST",
        Dialect::Sqlite => "MAX",
    };
    storage
        .with_db(move |c| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            let allowed = c.execute(
                &format!(
                    "INSERT INTO rate_limits (key, tat) VALUES (?1, CAST(?2 AS BIGINT) + CAST(?3 AS BIGINT))
                     ON CONFLICT (key) DO UPDATE
                     SET tat = {greatest}(rate_limits.tat, CAST(?2 AS BIGINT)) + CAST(?3 AS BIGINT)
                     WHERE {greatest}(rate_limits.tat, CAST(?2 AS BIGINT)) + CAST(?3 AS BIGINT) - CAST(?2 AS BIGINT)
                         <= CAST(?4 AS BIGINT)"
                ),
                params![key, now, interval, tolerance],
            )? == 1;
            if allowed {
                return Ok(None);
            }
            let tat: i64 = c.query_one(
                "SELECT tat FROM rate_limits WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )?;
            // 等到推后一个间隔后不超出容许的时刻。
            let wait_ms = (tat + interval - now - tolerance).max(0);
            Ok(Some((wait_ms as u64).div_ceil(1000).max(1)))
        })
        .await
}
