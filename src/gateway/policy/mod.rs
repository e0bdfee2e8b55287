//! 策略流水线：网关对每个请求执行的全部规则，顺序只写在这里。
//!
//! 1. 鉴权（HTTP 层，`openai::auth`）：`/v1` 配置了密钥时要求 `Authorization: Bearer`；
//! 2. 限流（HTTP 层，`openai::rate_limit`）：按 API 密钥、否则按客户端 IP；
//! 3. 并发（`concurrency`）：上游自己的在途上限（`upstreams[].max_concurrent`）与全局在途上限，超出排队，队列满即 503；
//! 4. 选上游：按 `priority` 从小到大，跳过熔断中的（`circuit_breaker`）；
//! 5. 单次尝试：带单次超时（`timeouts.attempt_s`，且不超过总时限剩余时间）；
//! 6. 分类与重试（`retry`）：只重试可重试的失败，指数退避 + 完全抖动，遵守 `Retry-After`；
//! 7. 回退：当前上游用尽或不可用时换下一个；
//! 8. 熔断记账：每次尝试的结果记入该上游的熔断器；
//! 9. 总时限（`timeouts.total_s`）：任何等待都不会越过它。
//!
//! 1、2 作用于 HTTP 请求，3–9 在 `run` 中，对 `/v1` 与工作台一视同仁。

pub mod circuit_breaker;
pub mod concurrency;
pub mod retry;

use super::upstream::{self, Upstream};
use super::{Failed, GatewayError, GeneratedImage, ImageRequest, Inner};
use crate::config::Config;
use crate::types::AttemptInfo;
use concurrency::ConcurrencyLimit;
use retry::Decision;
use std::time::{Duration, Instant};

/// 对一个请求执行第 3–9 步。
pub(super) async fn run(inner: &Inner, req: &ImageRequest) -> Result<GeneratedImage, Failed> {
    let config = inner.config.load_full();
    let deadline = Instant::now() + Duration::from_secs(config.timeouts.total_s);
    let upstreams = inner.upstreams(&config);
    if upstreams.is_empty() {
        return Err(GatewayError::NoUpstream.into());
    }
    let mut trace: Vec<AttemptInfo> = Vec::new();
    let mut last_error: Option<GatewayError> = None;
    // 整个请求里，为“可能已计费”的失败最多再试一次（同一上游或下一个上游都算）。
    let mut billed_retry_used = false;

    let cooldown = Duration::from_secs(config.retry.breaker_cooldown_s);
    for (position, upstream_config) in upstreams.iter().enumerate() {
        let has_fallback = position + 1 < upstreams.len();
        if !trace.is_empty() {
            metrics::counter!("gateway_fallbacks_total").increment(1);
        }
        if let Err(wait) = inner.breakers.try_acquire(&upstream_config.name, cooldown) {
            last_error = Some(GatewayError::CircuitOpen {
                upstream: upstream_config.name.clone(),
                secs: wait.as_secs().max(1),
            });
            continue;
        }
        let upstream =
            upstream::build(upstream_config, inner.max_response_bytes()).map_err(|error| {
                Failed {
                    error,
                    attempts: trace.clone(),
                }
            })?;
        let own_limit = inner.upstream_limit(upstream_config, config.limits.queue_size);
        let attempt = try_upstream(
            inner,
            &config,
            upstream.as_ref(),
            own_limit.as_deref(),
            req,
            deadline,
            Ledger {
                trace: &mut trace,
                billed_retry_used: &mut billed_retry_used,
                has_fallback,
            },
        );
        match attempt.await {
            Ok(mut image) => {
                image.attempts = trace;
                return Ok(image);
            }
            Err(Exhausted::GiveUp(error)) => {
                return Err(Failed {
                    error,
                    attempts: trace,
                })
            }
            Err(Exhausted::NextUpstream(error)) => last_error = Some(error),
        }
    }

    let last = last_error.unwrap_or(GatewayError::NoUpstream);
    let error = if trace.is_empty() {
        // 一次都没试成（例如全部熔断中）：直接说原因。
        last
    } else {
        GatewayError::AllUpstreamsFailed {
            attempts: trace.len(),
            last: Box::new(last),
        }
    };
    tracing::warn!(attempts = ?trace, "请求失败：{error}");
    Err(Failed {
        error,
        attempts: trace,
    })
}

/// 在途请求计数：随作用域结束而减一。请求被取消（外层 future 被丢弃）时也一样。
struct InFlight;

impl InFlight {
    fn start() -> Self {
        metrics::gauge!("gateway_in_flight").increment(1.0);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("gateway_in_flight").decrement(1.0);
    }
}

/// 一个请求的账本：到目前为止的每次尝试、为“可能已计费”的失败再试一次的额度（整个请求只有一次）
/// 是否已用掉，以及后面还有没有别的上游可换。
struct Ledger<'a> {
    trace: &'a mut Vec<AttemptInfo>,
    billed_retry_used: &'a mut bool,
    has_fallback: bool,
}

/// 一个上游试完之后的结局。
enum Exhausted {
    /// 换谁都没用，交给调用方。
    GiveUp(GatewayError),
    /// 这个上游不行了，换下一个。
    NextUpstream(GatewayError),
}

/// 在一个上游上尝试（含重试），直到成功、该换上游或该放弃。
async fn try_upstream(
    inner: &Inner,
    config: &Config,
    upstream: &dyn Upstream,
    own_limit: Option<&ConcurrencyLimit>,
    req: &ImageRequest,
    deadline: Instant,
    ledger: Ledger<'_>,
) -> Result<GeneratedImage, Exhausted> {
    let Ledger {
        trace,
        billed_retry_used,
        has_fallback,
    } = ledger;
    let name = upstream.name().to_string();
    let threshold = config.retry.breaker_failures;
    let cooldown = Duration::from_secs(config.retry.breaker_cooldown_s);
    let mut delays = retry::backoff(&config.retry);

    for attempt in 1..=config.retry.max_attempts {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(Exhausted::GiveUp(GatewayError::DeadlineExceeded {
                secs: config.timeouts.total_s,
            }));
        }
        // 先取上游自己的名额，再取全局名额：等上游名额时不占着全局名额。
        let own_permit = match own_limit {
            Some(limit) => Some(limit.acquire().await.map_err(Exhausted::GiveUp)?),
            None => None,
        };
        let permit = inner
            .global_limit(config)
            .acquire()
            .await
            .map_err(Exhausted::GiveUp)?;
        let limit = Duration::from_secs(config.timeouts.attempt_s).min(remaining);
        req.progress.report(super::ProgressEvent::Attempt {
            upstream: name.clone(),
            number: trace.len() as u32 + 1,
        });
        let started = Instant::now();
        let in_flight = InFlight::start();
        let result = tokio::time::timeout(limit, upstream.generate(&inner.http, req))
            .await
            .unwrap_or_else(|_| {
                Err(GatewayError::Timeout {
                    upstream: name.clone(),
                    secs: (limit.as_secs_f64().ceil() as u64).max(1),
                })
            });
        drop((in_flight, permit, own_permit));
        let latency_ms = started.elapsed().as_millis() as u64;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.class().as_str(),
        };
        metrics::counter!("gateway_attempts_total", "upstream" => name.clone(), "outcome" => outcome)
            .increment(1);
        metrics::histogram!("gateway_attempt_duration_seconds", "upstream" => name.clone())
            .record(started.elapsed().as_secs_f64());

        let error = match result {
            Ok(image) => {
                inner.breakers.record_success(&name);
                metrics::gauge!("gateway_breaker_open", "upstream" => name.clone()).set(0.0);
                trace.push(AttemptInfo {
                    upstream: name.clone(),
                    status: Some(200),
                    latency_ms,
                    bytes: image.data.len() as u64,
                    outcome: "ok".into(),
                    error: None,
                    maybe_billed: true,
                });
                return Ok(image);
            }
            Err(e) => e,
        };
        inner
            .breakers
            .record_failure(&name, &error, threshold, cooldown);
        let open = inner.breakers.state(&name) == circuit_breaker::BreakerState::Open;
        metrics::gauge!("gateway_breaker_open", "upstream" => name.clone()).set(if open {
            1.0
        } else {
            0.0
        });
        let billed = retry::may_have_billed(&error);
        if billed {
            metrics::counter!("gateway_maybe_billed_failures_total", "upstream" => name.clone())
                .increment(1);
        }
        trace.push(AttemptInfo {
            upstream: name.clone(),
            status: error.upstream_status(),
            latency_ms,
            bytes: 0,
            outcome: error.class().as_str().into(),
            error: Some(error.to_string()),
            maybe_billed: billed,
        });

        let hint = match retry::decide(&error) {
            Decision::GiveUp => return Err(Exhausted::GiveUp(error)),
            Decision::NextUpstream => return Err(Exhausted::NextUpstream(error)),
            Decision::Retry { hint } => hint,
        };
        if billed {
            // 可能已计费：开关关着，或这个请求已经为此再试过一次——不再试，也不换上游（换上游也要再付一次钱）。
            if !config.retry.retry_maybe_billed || *billed_retry_used {
                return Err(Exhausted::GiveUp(error));
            }
            *billed_retry_used = true;
            // 这唯一的一次：有别的上游就用在别的上游上（超时、坏响应在同一上游上多半会重演）。
            if has_fallback {
                return Err(Exhausted::NextUpstream(error));
            }
        }
        if attempt >= config.retry.max_attempts {
            return Err(Exhausted::NextUpstream(error));
        }
        let delay = match hint {
            Some(hint) => retry::capped_hint(hint, &config.retry),
            None => delays.next().unwrap_or_default(),
        };
        if Instant::now() + delay >= deadline {
            return Err(Exhausted::NextUpstream(error));
        }
        tracing::info!(upstream = %name, attempt, delay_ms = delay.as_millis() as u64, "将重试：{error}");
        metrics::counter!("gateway_retries_total", "upstream" => name.clone()).increment(1);
        tokio::time::sleep(delay).await;
    }
    unreachable!("max_attempts ≥ 1，循环总会在上面返回")
}
