//! 限流（策略第 2 步）：tower_governor 的 GCRA 算法，按鉴权层放进扩展的调用方身份计数。
//! 超限返回 429、`Retry-After` 与 OpenAI 形状的错误体。

use super::auth::Caller;
use crate::config::LimitsConfig;
use crate::error::ApiError;
use axum::body::Body;
use axum::http::Request;
use axum::response::IntoResponse;
use governor::middleware::NoOpMiddleware;
use tower_governor::governor::GovernorConfigBuilder;
use tower_governor::key_extractor::KeyExtractor;
use tower_governor::{GovernorError, GovernorLayer};

#[derive(Clone)]
pub struct CallerKey;

impl KeyExtractor for CallerKey {
    type Key = String;

    fn extract<T>(&self, req: &Request<T>) -> Result<Self::Key, GovernorError> {
        req.extensions()
            .get::<Caller>()
            .map(Caller::rate_limit_key)
            .ok_or(GovernorError::UnableToExtractKey)
    }
}

pub type RateLimitLayer =
    GovernorLayer<CallerKey, NoOpMiddleware<governor::clock::QuantaInstant>, Body>;

/// 按配置构造限流层：每分钟 `requests_per_minute` 次，允许突发 `burst` 次。
pub fn layer(limits: &LimitsConfig) -> RateLimitLayer {
    let period_ms = (60_000 / limits.requests_per_minute.max(1) as u64).max(1);
    let config = GovernorConfigBuilder::default()
        .per_millisecond(period_ms)
        .burst_size(limits.burst.max(1))
        .key_extractor(CallerKey)
        .finish()
        .expect("周期与突发量在配置校验时已保证大于 0");
    GovernorLayer::new(config).error_handler(|e| match e {
        GovernorError::TooManyRequests { wait_time, .. } => ApiError::RateLimited {
            retry_after_secs: wait_time.max(1),
        }
        .into_response(),
        other => {
            tracing::error!("限流层出错：{other}");
            ApiError::InvalidRequest("无法识别调用方".into()).into_response()
        }
    })
}
