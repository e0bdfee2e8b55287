//! 重试规则：哪些失败可以重试、重试几次、等多久。
//!
//! 图像调用很慢、按次计费、并且不幂等，所以重试要小心（DESIGN §5）：
//! - 总是可以重试：连不上（请求没发出去）、限流 429（遵守 `Retry-After`/`RetryInfo`，有上限）、
//!   502、503、响应被截断或无法解析；
//! - 只重试一次：200 但没有图（非安全原因）；
//! - 可能被收两次费，受 `retry.retry_maybe_billed` 控制、最多一次：500、504、单次超时；
//! - 不重试、换下一个上游：401、403、404、API 密钥无效、每日配额耗尽；
//! - 不重试、直接告诉调用方：其他 400、413、安全拦截。

use crate::config::RetryConfig;
use crate::gateway::GatewayError;
use std::time::Duration;
use tokio_retry::strategy::{jitter, ExponentialBackoff};

/// 一次失败之后怎么办。
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// 在同一上游重试。
    Retry {
        kind: RetryKind,
        /// 上游建议的等待时间。
        hint: Option<Duration>,
    },
    /// 不在这个上游重试了，换下一个。
    NextUpstream,
    /// 换谁都没用，直接把错误交给调用方。
    GiveUp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryKind {
    /// 不限（受每个上游的 `max_attempts` 约束）。
    Always,
    /// 每个请求最多重试一次。
    Once,
    /// 可能被重复计费：受配置开关控制，每个请求最多重试一次。
    MaybeBilled,
}

pub fn decide(err: &GatewayError) -> Decision {
    use Decision::*;
    let retry = |kind| Retry { kind, hint: None };
    match err {
        GatewayError::Connect { .. } | GatewayError::BadResponse { .. } => retry(RetryKind::Always),
        GatewayError::NoImage { .. } => retry(RetryKind::Once),
        GatewayError::Timeout { .. } => retry(RetryKind::MaybeBilled),
        GatewayError::Status {
            status,
            message,
            retry_after_secs,
            ..
        } => match status {
            429 if is_daily_quota(message) => NextUpstream,
            429 => Retry {
                kind: RetryKind::Always,
                hint: retry_after_secs.map(Duration::from_secs_f64),
            },
            502 | 503 => retry(RetryKind::Always),
            500 | 504 => retry(RetryKind::MaybeBilled),
            401 | 403 | 404 => NextUpstream,
            400 if is_bad_api_key(message) => NextUpstream,
            s if *s >= 500 => retry(RetryKind::MaybeBilled),
            _ => GiveUp,
        },
        GatewayError::Safety { .. } | GatewayError::InvalidRequest(_) => GiveUp,
        // 重定向：这个上游的地址配错了（或被劫持），换下一个；太大的响应已经计费，不再试。
        GatewayError::Redirect { .. } => NextUpstream,
        GatewayError::ResponseTooLarge { .. } => GiveUp,
        GatewayError::QueueFull | GatewayError::NoUpstream => GiveUp,
        GatewayError::DeadlineExceeded { .. } => GiveUp,
        GatewayError::CircuitOpen { .. } | GatewayError::AllUpstreamsFailed { .. } => NextUpstream,
    }
}

/// 每日配额耗尽（等也没用）与临时限流（等一会儿就好）的区别在错误说明里。
fn is_daily_quota(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("perday") || m.contains("per day") || m.contains("daily") || m.contains("billing")
}

fn is_bad_api_key(message: &str) -> bool {
    message.to_ascii_lowercase().contains("api key")
}

/// 指数退避 + 完全抖动：第 n 次等待在 [0, min(base·2ⁿ, max)) 里均匀随机。
pub fn backoff(config: &RetryConfig) -> impl Iterator<Item = Duration> {
    // tokio-retry 的 from_millis(b) 按 bⁿ 增长：取 b=2，再用 factor 乘上基础延迟的一半。
    ExponentialBackoff::from_millis(2)
        .factor(config.base_delay_ms.max(1) / 2 + 1)
        .max_delay(Duration::from_millis(config.max_delay_ms))
        .map(jitter)
}

/// 上游建议的等待时间不能无限长：封顶为 `max_delay_ms`。
pub fn capped_hint(hint: Duration, config: &RetryConfig) -> Duration {
    hint.min(Duration::from_millis(config.max_delay_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, message: &str) -> GatewayError {
        GatewayError::Status {
            upstream: "u".into(),
            status: code,
            google_status: String::new(),
            message: message.into(),
            retry_after_secs: Some(1.0),
        }
    }

    #[test]
    fn classes_follow_the_design() {
        assert_eq!(
            decide(&status(503, "")),
            Decision::Retry {
                kind: RetryKind::Always,
                hint: None
            }
        );
        assert_eq!(
            decide(&status(429, "Resource has been exhausted")),
            Decision::Retry {
                kind: RetryKind::Always,
                hint: Some(Duration::from_secs(1))
            }
        );
        assert_eq!(
            decide(&status(
                429,
                "quota GenerateRequestsPerDayPerProjectPerModel"
            )),
            Decision::NextUpstream
        );
        assert_eq!(
            decide(&status(500, "")),
            Decision::Retry {
                kind: RetryKind::MaybeBilled,
                hint: None
            }
        );
        assert_eq!(decide(&status(400, "bad aspect ratio")), Decision::GiveUp);
        assert_eq!(
            decide(&status(400, "API key not valid.")),
            Decision::NextUpstream
        );
        assert_eq!(decide(&status(401, "")), Decision::NextUpstream);
        assert_eq!(decide(&status(413, "")), Decision::GiveUp);
        let safety = GatewayError::Safety {
            upstream: "u".into(),
            reason: "IMAGE_SAFETY".into(),
        };
        assert_eq!(decide(&safety), Decision::GiveUp);
    }

    #[test]
    fn backoff_grows_but_never_past_the_cap() {
        let config = RetryConfig {
            base_delay_ms: 500,
            max_delay_ms: 2000,
            ..Default::default()
        };
        let delays: Vec<Duration> = backoff(&config).take(20).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(2000)));
        // 完全抖动：不会每次都一样。
        assert!(delays.windows(2).any(|w| w[0] != w[1]));
        assert_eq!(
            capped_hint(Duration::from_secs(60), &config),
            Duration::from_millis(2000)
        );
    }
}
