//! 策略流水线：网关对每个请求执行的全部规则，顺序只写在这里。
//!
//! 1. 鉴权（HTTP 层，`openai::auth`）：`/v1` 配置了密钥时要求 `Authorization: Bearer`；
//! 2. 限流与额度（HTTP 层，`openai::rate_limit`、`access::budget`）：按 API 密钥、否则按客户端 IP；调用方的每日张数与同时请求数；
//! 3. 选上游（`route`）：请求的模型只发给列出了它的上游，按 `priority` 从小到大，同一优先级按 `weight` 轮流；跳过熔断中的（`circuit_breaker`）；
//! 4. 选密钥（`keys`）：在这个上游的健康密钥间轮换；失效、配额用完、被限流的密钥先不用；
//! 5. 并发（`concurrency`）：上游自己的在途上限（`upstreams[].max_concurrent`）与全局在途上限，超出排队，队列满即 503；
//! 6. 单次尝试：带单次超时（`timeouts.attempt_s`，且不超过总时限剩余时间）；
//! 7. 分类与重试（`retry`）：只重试可重试的失败，指数退避 + 完全抖动，遵守 `Retry-After`；密钥的问题先换密钥；
//! 8. 回退：当前上游用尽或不可用时换下一个；这个模型的上游都不行时，改用 `routing.model_fallbacks` 里的备选模型；
//! 9. 记账：每次尝试的结果记入该上游的熔断器、密钥状态与用量（`crate::usage`，后台成批写库）；
//! 10. 总时限（`timeouts.total_s`）：任何等待都不会越过它。
//!
//! 1、2 作用于 HTTP 请求，3–10 在 `run` 中，对 `/v1` 与工作台一视同仁。

pub mod circuit_breaker;
pub mod concurrency;
pub mod keys;
pub mod retry;
pub mod route;

use super::upstream;
use super::{Failed, GatewayError, GeneratedImage, ImageRequest, Inner};
use crate::config::{Config, UpstreamConfig};
use crate::types::attempt::Billing;
use crate::types::money::Micros;
use crate::types::AttemptInfo;
use crate::usage::AttemptEvent;
use concurrency::ConcurrencyLimit;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

/// 对一个请求执行第 3–10 步。
pub(super) async fn run(inner: &Inner, req: &ImageRequest) -> Result<GeneratedImage, Failed> {
    let config = inner.config.load_full();
    let deadline = Instant::now() + Duration::from_secs(config.timeouts.total_s);
    let all = inner.upstreams(&config);
    if all.is_empty() {
        return Err(GatewayError::NoUpstream.into());
    }
    let models = models_to_try(&config, &all, req)?;
    let mut trace: Vec<AttemptInfo> = Vec::new();
    let mut kept: Option<GeneratedImage> = None;
    let mut last_error: Option<GatewayError> = None;
    // 整个请求里，为“可能已计费”的失败最多再试一次（同一上游或下一个上游都算）。
    let mut billed_retry_used = false;

    let cooldown = Duration::from_secs(config.retry.breaker_cooldown_s);
    for (model_index, model) in models.iter().enumerate() {
        let upstreams = inner.balancer.order(&all, model.as_deref());
        if model_index > 0 && !upstreams.is_empty() {
            note_model_fallback(req, model.as_deref());
        }
        for (position, upstream_config) in upstreams.iter().enumerate() {
            let has_fallback = position + 1 < upstreams.len() || model_index + 1 < models.len();
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
            let routed = with_model(upstream_config, model.as_deref());
            let own_limit = inner.upstream_limit(&routed, config.limits.queue_size);
            let attempt = try_upstream(
                inner,
                &config,
                &routed,
                own_limit.as_deref(),
                req,
                deadline,
                Ledger {
                    trace: &mut trace,
                    billed_retry_used: &mut billed_retry_used,
                    has_fallback,
                    kept: &mut kept,
                },
            );
            match attempt.await {
                Ok(mut image) => {
                    image.attempts = trace;
                    image.model = routed.model;
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
    }
    all_tried(kept, trace, last_error)
}

/// 要试的模型：请求的模型，再是它的备选；没指定模型时只有一个 `None`（各上游用自己的默认模型）。
/// 请求的模型没有任何上游提供时报 `UnknownModel`。
fn models_to_try(
    config: &Config,
    all: &[UpstreamConfig],
    req: &ImageRequest,
) -> Result<Vec<Option<String>>, GatewayError> {
    let requested = req.model.as_deref().map(|m| routed_model(config, all, m));
    Ok(match &requested {
        None => vec![None],
        Some(m) => {
            if !all.iter().any(|u| u.serves(m)) {
                return Err(GatewayError::UnknownModel {
                    model: m.clone(),
                    available: available_models(all).join("、"),
                });
            }
            std::iter::once(m.clone())
                .chain(
                    config
                        .routing
                        .model_fallbacks
                        .get(m)
                        .into_iter()
                        .flatten()
                        .cloned(),
                )
                .map(Some)
                .collect()
        }
    })
}

/// 这个模型的上游都不可用、改用备选模型：记一行警告和一次指标。
fn note_model_fallback(req: &ImageRequest, fallback: Option<&str>) {
    tracing::warn!(
        requested = req.model.as_deref().unwrap_or_default(),
        fallback = fallback.unwrap_or_default(),
        "这个模型的上游都不可用，改用备选模型"
    );
    metrics::counter!("gateway_model_fallbacks_total").increment(1);
}

/// 这个上游这次用的配置：模型是请求的（或备选的），否则它自己的默认模型。
fn with_model(upstream: &UpstreamConfig, model: Option<&str>) -> UpstreamConfig {
    UpstreamConfig {
        model: model.map_or_else(|| upstream.model.clone(), str::to_string),
        ..upstream.clone()
    }
}

/// 所有上游与备选模型都试过了还不行：之前留着一张尺寸不符的图就交回它（已经付过钱，标着“尺寸不符”）；
/// 否则报错——一次都没试成（例如全部熔断中）时直接说原因，试过的说一共试了几次与最后的错误。
fn all_tried(
    kept: Option<GeneratedImage>,
    trace: Vec<AttemptInfo>,
    last_error: Option<GatewayError>,
) -> Result<GeneratedImage, Failed> {
    if let Some(mut image) = kept {
        image.attempts = trace;
        return Ok(image);
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

/// 请求的模型实际要用的 id：有上游原样提供它就用它（私有部署可能还在用旧名字）；否则停用了的旧 id
/// 换成模型目录里现在的模型（`aliases`）。
pub fn routed_model(config: &Config, upstreams: &[UpstreamConfig], model: &str) -> String {
    if upstreams.iter().any(|u| u.serves(model)) {
        return model.to_string();
    }
    let current = crate::catalogue::resolve(config, model);
    if current != model {
        tracing::info!(requested = model, current = %current, "请求的是停用了的旧模型 id，改用现在的模型");
    }
    current
}

/// 各上游提供的模型（去重，按上游的先后）。
pub fn available_models(upstreams: &[UpstreamConfig]) -> Vec<String> {
    let mut models: Vec<String> = Vec::new();
    for m in upstreams.iter().flat_map(UpstreamConfig::served_models) {
        if !models.contains(&m) {
            models.push(m);
        }
    }
    models
}

/// 在途请求计数（全局指标与各上游的计数）：随作用域结束而减一。请求被取消（外层 future 被丢弃）时也一样。
struct InFlight<'a> {
    inner: &'a Inner,
    upstream: String,
}

impl<'a> InFlight<'a> {
    fn start(inner: &'a Inner, upstream: &str) -> Self {
        metrics::gauge!("gateway_in_flight").increment(1.0);
        *inner
            .in_flight
            .lock()
            .expect("在途计数锁未被毒化")
            .entry(upstream.to_string())
            .or_default() += 1;
        Self {
            inner,
            upstream: upstream.to_string(),
        }
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        metrics::gauge!("gateway_in_flight").decrement(1.0);
        if let Some(n) = self
            .inner
            .in_flight
            .lock()
            .expect("在途计数锁未被毒化")
            .get_mut(&self.upstream)
        {
            *n = n.saturating_sub(1);
        }
    }
}

/// 一个请求的账本：到目前为止的每次尝试、为“可能已计费”的失败再试一次的额度（整个请求只有一次）
/// 是否已用掉，以及后面还有没有别的上游可换。
struct Ledger<'a> {
    trace: &'a mut Vec<AttemptInfo>,
    billed_retry_used: &'a mut bool,
    has_fallback: bool,
    /// 尺寸不符、按设置再试或换上游时先留着的图：都不行时交回它（它已经付过钱）。
    kept: &'a mut Option<GeneratedImage>,
}

/// 一个上游试完之后的结局。
enum Exhausted {
    /// 换谁都没用，交给调用方。
    GiveUp(GatewayError),
    /// 这个上游不行了，换下一个。
    NextUpstream(GatewayError),
}

/// 回来的图与请求的尺寸比一比：比例差 2% 以内、最长边至少是这一档标称最长边（1K 为 1024）的 90% 才算对。
/// 不符时返回说明（“要 2048×2048，收到 1024×1024”）；读不出尺寸的不算不符（解码时另有检查）。
fn size_mismatch(data: &[u8], req: &ImageRequest) -> Option<String> {
    let (w, h) = image::ImageReader::new(std::io::Cursor::new(data))
        .with_guessed_format()
        .ok()?
        .into_dimensions()
        .ok()?;
    let (want_w, want_h) = crate::types::pixel_size(req.aspect_ratio, req.image_size);
    let want_ratio = want_w as f64 / want_h as f64;
    let got_ratio = w as f64 / h.max(1) as f64;
    let ratio_ok = (got_ratio / want_ratio - 1.0).abs() <= 0.02;
    let size_ok = w.max(h) as f64 >= req.image_size.nominal_long_side() as f64 * 0.9;
    (!ratio_ok || !size_ok).then(|| {
        format!(
            "要 {want_w}×{want_h}（{} {}），收到 {w}×{h}",
            req.aspect_ratio, req.image_size
        )
    })
}

/// 请求发出去的大约字节数（提示词与参考图），记进用量。
fn request_bytes(req: &ImageRequest) -> u64 {
    req.prompt.len() as u64
        + req
            .references
            .iter()
            .map(|r| r.data.len() as u64)
            .sum::<u64>()
}

/// 在一个上游上尝试（含重试），直到成功、该换上游或该放弃。`upstream.model` 已是这次要用的模型。
async fn try_upstream(
    inner: &Inner,
    config: &Config,
    upstream: &UpstreamConfig,
    own_limit: Option<&ConcurrencyLimit>,
    req: &ImageRequest,
    deadline: Instant,
    ledger: Ledger<'_>,
) -> Result<GeneratedImage, Exhausted> {
    let Ledger {
        trace,
        billed_retry_used,
        has_fallback,
        kept,
    } = ledger;
    let name = upstream.name.clone();
    let mut delays = retry::backoff(&config.retry);
    // 换到这个上游之前已经有过尝试：这是回退。
    let fallback = !trace.is_empty();
    // 这个上游的模型在这个分辨率下每张的价格：每次尝试都记它（用量表、卡片的尝试记录、密钥的花费），只查一次目录。
    let price = crate::catalogue::lookup(config, &upstream.model).price(req.image_size);
    let mut attempt = 0;

    loop {
        attempt += 1;
        let (remaining, key) = time_and_key(inner, config, upstream, deadline)?;
        let shot = Shot {
            upstream,
            key: &key,
            number: trace.len() as u32 + 1,
            retry: attempt > 1,
            fallback,
            price,
        };
        let (result, latency_ms) =
            attempt_once(inner, config, shot, own_limit, req, remaining).await?;
        let key_label = (!key.secret.is_empty()).then(|| key.label.clone());
        let error = match result {
            Ok(image) => {
                record_success(inner, upstream, &key);
                let tried = Tried {
                    latency_ms,
                    key: key_label,
                    price,
                };
                let (image, step) = on_image(config, upstream, req, image, attempt, tried, trace);
                match after_image(step, image, kept, &name) {
                    ControlFlow::Break(done) => return done,
                    ControlFlow::Continue(()) => continue,
                }
            }
            Err(e) => e,
        };
        let key_changed = inner.keys.record(upstream, &key, Err(&error)).is_some();
        let tried = Tried {
            latency_ms,
            key: key_label,
            price,
        };
        trace.push(failed_attempt(upstream, &error, tried));
        // 密钥的问题（失效、配额用完、限流）不算上游坏了：有别的密钥就马上换一个再试，不计入重试次数。
        if key_changed
            && inner
                .keys
                .any_usable(upstream, key_budget(config, upstream))
        {
            attempt -= 1;
            continue;
        }
        let attempts = retry::Attempts {
            number: attempt,
            billed_retry_used,
            has_fallback,
            delays: &mut delays,
        };
        let delay = next_step_after_failure(inner, config, &name, error, attempts, deadline)?;
        tokio::time::sleep(delay).await;
    }
}

/// 一次尝试之前：看总时限还剩多少（用完了就放弃），再取一个可用的密钥（没有就换上游）。
fn time_and_key(
    inner: &Inner,
    config: &Config,
    upstream: &UpstreamConfig,
    deadline: Instant,
) -> Result<(Duration, keys::PickedKey), Exhausted> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(Exhausted::GiveUp(GatewayError::DeadlineExceeded {
            secs: config.timeouts.total_s,
        }));
    }
    let Some(key) = inner.keys.pick(upstream, key_budget(config, upstream)) else {
        return Err(Exhausted::NextUpstream(GatewayError::KeysUnavailable {
            upstream: upstream.name.clone(),
        }));
    };
    Ok((remaining, key))
}

/// 成功的一次尝试记进熔断器与密钥状态，熔断的指标归零。
fn record_success(inner: &Inner, upstream: &UpstreamConfig, key: &keys::PickedKey) {
    inner.breakers.record_success(&upstream.name);
    inner.keys.record(upstream, key, Ok(()));
    metrics::gauge!("gateway_breaker_open", "upstream" => upstream.name.clone()).set(0.0);
}

/// 按尺寸检查的结论处理成功回来的图：就用它（`Break(Ok)`）；留着它在同一上游再试（`Continue`）；
/// 留着它换下一个上游（`Break(Err)`，原因是尺寸不符）。
fn after_image(
    step: retry::SizeStep,
    image: GeneratedImage,
    kept: &mut Option<GeneratedImage>,
    name: &str,
) -> ControlFlow<Result<GeneratedImage, Exhausted>> {
    match step {
        retry::SizeStep::Keep => ControlFlow::Break(Ok(image)),
        retry::SizeStep::RetrySame => {
            *kept = Some(image);
            ControlFlow::Continue(())
        }
        retry::SizeStep::NextUpstream => {
            let detail = image.size_mismatch.clone().unwrap_or_default();
            *kept = Some(image);
            ControlFlow::Break(Err(Exhausted::NextUpstream(GatewayError::BadResponse {
                upstream: name.to_string(),
                detail: format!("图的尺寸不符（{detail}）"),
            })))
        }
    }
}

/// 一次失败之后：记进熔断器，再按 `retry::after_failure` 决定放弃、换上游，还是在同一上游再试；
/// 再试时记日志与指标，返回要等多久（由调用方去等）。
fn next_step_after_failure(
    inner: &Inner,
    config: &Config,
    name: &str,
    error: GatewayError,
    attempts: retry::Attempts<'_>,
    deadline: Instant,
) -> Result<Duration, Exhausted> {
    record_health(inner, config, name, &error);
    let attempt = attempts.number;
    match retry::after_failure(&error, attempts, &config.retry, deadline) {
        retry::Step::GiveUp => Err(Exhausted::GiveUp(error)),
        retry::Step::NextUpstream => Err(Exhausted::NextUpstream(error)),
        retry::Step::RetryAfter(delay) => {
            tracing::info!(upstream = %name, attempt, delay_ms = delay.as_millis() as u64, "将重试：{error}");
            metrics::counter!("gateway_retries_total", "upstream" => name.to_string()).increment(1);
            Ok(delay)
        }
    }
}

/// 一次尝试用的上游与密钥，以及它在用量里怎样记（是不是重试、回退）。
struct Shot<'a> {
    upstream: &'a UpstreamConfig,
    key: &'a keys::PickedKey,
    /// 这个请求的第几次尝试（跨上游，卡片上显示）。
    number: u32,
    retry: bool,
    fallback: bool,
    /// 每张的价格（目录里的；不知道时为空）。
    price: Option<Micros>,
}

/// 跑一次尝试：取上游自己的名额与全局名额，带单次超时（不超过总时限剩余的时间）调用适配器，记指标与用量。
/// 返回结果与耗时（毫秒）；名额等不到（队列满）时是 `Exhausted::GiveUp`。
async fn attempt_once(
    inner: &Inner,
    config: &Config,
    shot: Shot<'_>,
    own_limit: Option<&ConcurrencyLimit>,
    req: &ImageRequest,
    remaining: Duration,
) -> Result<(Result<GeneratedImage, GatewayError>, u64), Exhausted> {
    let name = shot.upstream.name.clone();
    let adapter = upstream::build(
        &UpstreamConfig {
            api_key: shot.key.secret.clone(),
            api_keys: Vec::new(),
            ..shot.upstream.clone()
        },
        inner.max_response_bytes(),
    )
    .map_err(Exhausted::GiveUp)?;
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
        number: shot.number,
    });
    let started = Instant::now();
    let in_flight = InFlight::start(inner, &name);
    let result = tokio::time::timeout(limit, adapter.generate(&inner.http, req))
        .await
        .unwrap_or_else(|_| {
            Err(GatewayError::Timeout {
                upstream: name.clone(),
                secs: (limit.as_secs_f64().ceil() as u64).max(1),
            })
        });
    drop((in_flight, permit, own_permit));
    let latency_ms = started.elapsed().as_millis() as u64;
    account(inner, &shot, req, &result, latency_ms);
    Ok((result, latency_ms))
}

/// 记下一次尝试：指标、这个密钥本月的花费（已计费与可能已计费的按目录价格）、用量表的一条。
fn account(
    inner: &Inner,
    shot: &Shot<'_>,
    req: &ImageRequest,
    result: &Result<GeneratedImage, GatewayError>,
    latency_ms: u64,
) {
    let name = shot.upstream.name.clone();
    let outcome = match result {
        Ok(_) => "ok",
        Err(e) => e.class().as_str(),
    };
    metrics::counter!("gateway_attempts_total", "upstream" => name.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!("gateway_attempt_duration_seconds", "upstream" => name.clone())
        .record(latency_ms as f64 / 1000.0);
    let billing = match result {
        Ok(_) => Billing::Billed,
        Err(e) if retry::may_have_billed(e) => Billing::MaybeBilled,
        Err(_) => Billing::Unbilled,
    };
    let price = shot.price;
    if billing != Billing::Unbilled {
        let spent = price.map_or(0, |p| p.0);
        inner.keys.add_spend(&name, &shot.key.secret, spent);
    }
    inner.usage.record(AttemptEvent {
        hour: AttemptEvent::current_hour(),
        client: req.client.clone(),
        account: req.account.clone(),
        upstream: name,
        model: shot.upstream.model.clone(),
        key_index: if shot.key.secret.is_empty() {
            0
        } else {
            shot.key.index as u32 + 1
        },
        failure: result
            .as_ref()
            .err()
            .map(|e| e.class().as_str().to_string()),
        retry: shot.retry,
        fallback: shot.fallback,
        latency_ms,
        bytes_in: result.as_ref().map_or(0, |i| i.data.len() as u64),
        bytes_out: request_bytes(req),
        billing,
        price,
    });
}

/// 一次尝试的几样记录：耗时、用的密钥（序号与末 4 位）、每张的价格。
struct Tried {
    latency_ms: u64,
    key: Option<String>,
    price: Option<Micros>,
}

/// 成功的一次尝试：记进尝试记录；尺寸不符时按 `on_size_mismatch` 决定用它（`Keep`），还是留着它再试或换上游。
fn on_image(
    config: &Config,
    upstream: &UpstreamConfig,
    req: &ImageRequest,
    mut image: GeneratedImage,
    attempt: u32,
    tried: Tried,
    trace: &mut Vec<AttemptInfo>,
) -> (GeneratedImage, retry::SizeStep) {
    let mismatch = size_mismatch(&image.data, req);
    trace.push(AttemptInfo {
        upstream: upstream.name.clone(),
        status: Some(200),
        latency_ms: tried.latency_ms,
        bytes: image.data.len() as u64,
        outcome: "ok".into(),
        error: None,
        maybe_billed: true,
        model: Some(upstream.model.clone()),
        key: tried.key,
        size_mismatch: mismatch.clone(),
        price: tried.price,
        raw_output: None,
    });
    let Some(detail) = mismatch else {
        return (image, retry::SizeStep::Keep);
    };
    metrics::counter!("gateway_size_mismatch_total", "upstream" => upstream.name.clone())
        .increment(1);
    tracing::warn!(upstream = %upstream.name, "回来的图尺寸不符：{detail}");
    image.size_mismatch = Some(detail);
    let step = retry::after_size_mismatch(upstream.on_size_mismatch, attempt, &config.retry);
    (image, step)
}

/// 失败的一次尝试在尝试记录里的样子（可能已计费的另记指标）。
fn failed_attempt(upstream: &UpstreamConfig, error: &GatewayError, tried: Tried) -> AttemptInfo {
    let billed = retry::may_have_billed(error);
    if billed {
        metrics::counter!("gateway_maybe_billed_failures_total", "upstream" => upstream.name.clone())
            .increment(1);
    }
    AttemptInfo {
        upstream: upstream.name.clone(),
        status: error.upstream_status(),
        latency_ms: tried.latency_ms,
        bytes: 0,
        outcome: error.class().as_str().into(),
        error: Some(error.to_string()),
        maybe_billed: billed,
        model: Some(upstream.model.clone()),
        key: tried.key,
        size_mismatch: None,
        price: tried.price,
        raw_output: None,
    }
}

/// 这个上游每个密钥每月的花费上限（美元，百万分之一；0 为不限）。
pub fn key_budget(config: &Config, upstream: &UpstreamConfig) -> i64 {
    config.usage.to_usd(upstream.key_max_spend_per_month).0
}

/// 上游的一次失败记进熔断器（打开了就告诉别的实例），更新熔断的指标。
fn record_health(inner: &Inner, config: &Config, name: &str, error: &GatewayError) {
    let threshold = config.retry.breaker_failures;
    let cooldown = Duration::from_secs(config.retry.breaker_cooldown_s);
    if inner
        .breakers
        .record_failure(name, error, threshold, cooldown)
    {
        inner.note_opened(name, cooldown);
    }
    let open = inner.breakers.state(name) == circuit_breaker::BreakerState::Open;
    metrics::gauge!("gateway_breaker_open", "upstream" => name.to_string()).set(if open {
        1.0
    } else {
        0.0
    });
}
