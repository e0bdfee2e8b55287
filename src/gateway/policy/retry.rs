//! 重试规则：哪些失败可以重试、重试几次、等多久——按“这次尝试可能已经被收费了吗”分类。
//!
//! 图像调用很慢、按张计费、并且不幂等，所以重试要小心（DESIGN §5）：
//! - **未计费**（请求没送到模型那里）：连不上（DNS、拒绝连接）、429 限流（遵守 `Retry-After`/`RetryInfo`，有上限）、
//!   代理在模型运行前回的 502/503——放心重试（每个上游最多 `max_attempts` 次），用完换下一个上游；
//! - **可能已计费**（请求送到了，回答丢了或坏了）：发出后连接中断、200 但响应被截断或无法解析、单次超时、
//!   500、504、200 但没有图——只有 `retry.retry_maybe_billed = true` 时才再试，而且整个请求最多再试一次
//!   （在同一上游或下一个上游都算）；开关关着时，这类失败既不重试也不换上游，直接告诉调用方；
//! - **不重试、换下一个上游**（未计费）：401、403、404、API 密钥无效、每日配额耗尽（429 `RESOURCE_EXHAUSTED`）、要求重定向；
//! - **不重试、直接告诉调用方**：其他 400、413（未计费），安全拦截、响应超过上限（可能已计费）。

use crate::config::RetryConfig;
use crate::gateway::GatewayError;
use std::time::Duration;
use tokio_retry::strategy::{jitter, ExponentialBackoff};

/// 一次失败之后怎么办。
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// 值得再试（同一上游还有次数就在同一上游，否则换下一个）。
    Retry {
        /// 上游建议的等待时间。
        hint: Option<Duration>,
    },
    /// 不在这个上游重试了，换下一个。
    NextUpstream,
    /// 换谁都没用，直接把错误交给调用方。
    GiveUp,
}

/// 这次失败的尝试可能已经被上游收费了吗：请求送到了模型那里、模型可能已经生成，只是回答丢了或坏了。
pub fn may_have_billed(err: &GatewayError) -> bool {
    match err {
        GatewayError::Timeout { .. }
        | GatewayError::BadResponse { .. }
        | GatewayError::NoImage { .. }
        | GatewayError::ResponseTooLarge { .. } => true,
        // 拦在生成之前的（提示词或参考图被拒）没有生成；生成之后才拦的可能已经计费。
        GatewayError::Safety {
            before_generation, ..
        } => !before_generation,
        GatewayError::Status { status, .. } => *status >= 500 && !matches!(status, 502 | 503),
        _ => false,
    }
}

pub fn decide(err: &GatewayError) -> Decision {
    use Decision::*;
    let retry = Retry { hint: None };
    match err {
        GatewayError::Connect { .. }
        | GatewayError::BadResponse { .. }
        | GatewayError::NoImage { .. }
        | GatewayError::Timeout { .. } => retry,
        GatewayError::Status {
            status,
            message,
            retry_after_secs,
            daily_quota,
            ..
        } => match status {
            429 if is_daily_quota_error(*daily_quota, message) => NextUpstream,
            429 => Retry {
                hint: retry_after_secs.map(Duration::from_secs_f64),
            },
            s if *s >= 500 => retry,
            401 | 403 | 404 => NextUpstream,
            400 if is_bad_api_key(message) => NextUpstream,
            _ => GiveUp,
        },
        GatewayError::Safety { .. } | GatewayError::InvalidRequest(_) => GiveUp,
        // 重定向：这个上游的地址配错了（或被劫持），换下一个；太大的响应已经计费，不再试。
        GatewayError::Redirect { .. } => NextUpstream,
        GatewayError::ResponseTooLarge { .. } => GiveUp,
        GatewayError::QueueFull | GatewayError::NoUpstream => GiveUp,
        GatewayError::DeadlineExceeded { .. } => GiveUp,
        GatewayError::CircuitOpen { .. }
        | GatewayError::KeysUnavailable { .. }
        | GatewayError::AllUpstreamsFailed { .. } => NextUpstream,
        GatewayError::UnknownModel { .. } => GiveUp,
    }
}

/// 每日配额耗尽（等也没用）与临时限流（等一会儿就好）的区别在错误说明里。
/// 429 是不是每日配额用完了：上游的结构化错误说了的（`daily_quota`）照它，没说的看说明里的词。
pub fn is_daily_quota_error(daily_quota: Option<bool>, message: &str) -> bool {
    daily_quota.unwrap_or_else(|| is_daily_quota(message))
}

/// 说明里有每日配额的词（没有结构化说明的上游用它判断）。
pub fn is_daily_quota(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("perday") || m.contains("per day") || m.contains("daily") || m.contains("billing")
}

pub fn is_bad_api_key(message: &str) -> bool {
    message.to_ascii_lowercase().contains("api key")
}

/// 一个上游上一次失败之后的下一步（把 `decide` 的分类、次数、“可能已计费只再试一次”、退避与总时限合在一起）。
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// 等这么久，在同一上游再试。
    RetryAfter(Duration),
    /// 这个上游不行了，换下一个。
    NextUpstream,
    /// 换谁都没用，交给调用方。
    GiveUp,
}

/// 一个请求在一个上游上的重试账：第几次尝试、这个请求是否已用掉“可能已计费”的那一次、后面还有没有上游。
pub struct Attempts<'a> {
    pub number: u32,
    /// 整个请求（跨上游）只许为“可能已计费”的失败再试一次。
    pub billed_retry_used: &'a mut bool,
    pub has_fallback: bool,
    /// 这个上游的退避序列。
    pub delays: &'a mut dyn Iterator<Item = Duration>,
}

/// 一次失败的尝试之后怎么办（尝试本身与记账在 `policy::try_upstream`）。
pub fn after_failure(
    error: &GatewayError,
    attempts: Attempts<'_>,
    config: &RetryConfig,
    deadline: std::time::Instant,
) -> Step {
    let hint = match decide(error) {
        Decision::GiveUp => return Step::GiveUp,
        Decision::NextUpstream => return Step::NextUpstream,
        Decision::Retry { hint } => hint,
    };
    if may_have_billed(error) {
        // 可能已计费：开关关着，或这个请求已经为此再试过一次——不再试，也不换上游（换上游也要再付一次钱）。
        if !config.retry_maybe_billed || *attempts.billed_retry_used {
            return Step::GiveUp;
        }
        *attempts.billed_retry_used = true;
        // 这唯一的一次：有别的上游就用在别的上游上（超时、坏响应在同一上游上多半会重演）。
        if attempts.has_fallback {
            return Step::NextUpstream;
        }
    }
    if attempts.number >= config.max_attempts {
        return Step::NextUpstream;
    }
    let delay = match hint {
        Some(hint) => capped_hint(hint, config),
        None => attempts.delays.next().unwrap_or_default(),
    };
    if std::time::Instant::now() + delay >= deadline {
        return Step::NextUpstream;
    }
    Step::RetryAfter(delay)
}

/// 回来的图尺寸与请求的不符时怎么办（`upstreams[].on_size_mismatch`）。
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SizeStep {
    /// 就用它。
    Keep,
    /// 留着它，在同一上游再试一次。
    RetrySame,
    /// 留着它，换下一个上游。
    NextUpstream,
}

pub fn after_size_mismatch(
    policy: crate::config::SizeMismatch,
    attempt: u32,
    config: &RetryConfig,
) -> SizeStep {
    use crate::config::SizeMismatch;
    match policy {
        SizeMismatch::Keep => SizeStep::Keep,
        SizeMismatch::Retry if attempt < config.max_attempts => SizeStep::RetrySame,
        SizeMismatch::Retry => SizeStep::Keep,
        SizeMismatch::Next => SizeStep::NextUpstream,
    }
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
            daily_quota: None,
        }
    }

    #[test]
    fn classes_follow_the_design() {
        assert_eq!(decide(&status(503, "")), Decision::Retry { hint: None });
        assert!(
            !may_have_billed(&status(503, "")),
            "代理在模型运行前回的 503"
        );
        assert_eq!(
            decide(&status(429, "Resource has been exhausted")),
            Decision::Retry {
                hint: Some(Duration::from_secs(1))
            }
        );
        assert!(!may_have_billed(&status(429, "")));
        assert_eq!(
            decide(&status(
                429,
                "quota GenerateRequestsPerDayPerProjectPerModel"
            )),
            Decision::NextUpstream
        );
        assert_eq!(decide(&status(500, "")), Decision::Retry { hint: None });
        assert!(may_have_billed(&status(500, "")) && may_have_billed(&status(504, "")));
        let broken = GatewayError::BadResponse {
            upstream: "u".into(),
            detail: "截断".into(),
        };
        assert!(may_have_billed(&broken), "发出后回答坏了：可能已计费");
        let refused = GatewayError::Connect {
            upstream: "u".into(),
            detail: "拒绝连接".into(),
        };
        assert_eq!(decide(&refused), Decision::Retry { hint: None });
        assert!(!may_have_billed(&refused), "连不上：请求没发出去");
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
            before_generation: false,
        };
        assert_eq!(decide(&safety), Decision::GiveUp);
        assert!(may_have_billed(&safety), "生成之后才拦：可能已计费");
        let prompt_blocked = GatewayError::Safety {
            upstream: "u".into(),
            reason: "SAFETY".into(),
            before_generation: true,
        };
        assert!(!may_have_billed(&prompt_blocked), "拦在生成之前：没有计费");
        // 说明里有 billing 的每分钟限流：结构化的额度种类说了算。
        let per_minute = GatewayError::Status {
            upstream: "u".into(),
            status: 429,
            google_status: "RESOURCE_EXHAUSTED".into(),
            message: "please check your plan and billing details".into(),
            retry_after_secs: Some(26.0),
            daily_quota: Some(false),
        };
        assert_eq!(
            decide(&per_minute),
            Decision::Retry {
                hint: Some(Duration::from_secs(26))
            }
        );
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
