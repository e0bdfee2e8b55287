//! 限流（策略第 2 步）：governor 的 GCRA 算法，按鉴权层放进扩展的调用方身份计数。
//! 超限返回 429、`Retry-After` 与 OpenAI 形状的错误体。
//!
//! 限流器按当前配置的（每分钟次数, 突发）建立；设置页改了这两个数，下一个请求起用新的限流器（计数从零开始）。

use super::auth::Caller;
use crate::config::ConfigHandle;
use crate::config::Rebuilt;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// 当前的限流器及建立它时的参数。
#[derive(Clone, Default)]
pub struct RateLimiter {
    current: Arc<Rebuilt<(u32, u32), DefaultKeyedRateLimiter<String>>>,
}

impl RateLimiter {
    fn for_limits(&self, per_minute: u32, burst: u32) -> Arc<DefaultKeyedRateLimiter<String>> {
        self.current
            .get((per_minute, burst), |(per_minute, burst)| {
                let period = Duration::from_millis((60_000 / per_minute.max(1) as u64).max(1));
                let quota = Quota::with_period(period)
                    .expect("周期大于 0")
                    .allow_burst(NonZeroU32::new(burst.max(1)).expect("大于 0"));
                DefaultKeyedRateLimiter::keyed(quota)
            })
    }
}

/// 中间件：放在鉴权之后（鉴权把 `Caller` 放进请求扩展）。
pub async fn limit(
    State((config, limiter)): State<(ConfigHandle, RateLimiter)>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let limits = config.load().limits.clone();
    let key = request
        .extensions()
        .get::<Caller>()
        .map(Caller::rate_limit_key)
        .ok_or_else(|| ApiError::InvalidRequest("无法识别调用方".into()))?;
    let limiter = limiter.for_limits(limits.requests_per_minute, limits.burst);
    if let Err(not_until) = limiter.check_key(&key) {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        return Err(ApiError::RateLimited {
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    Ok(next.run(request).await)
}
