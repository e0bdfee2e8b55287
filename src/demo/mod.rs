//! 内置演示上游：说真正的 Gemini `generateContent` 协议，返回按提示词绘制的真实 PNG。
//!
//! 两种用法：
//! - 没有配置任何上游时，服务器在本机回环的随机端口上启动一个，网关经真实 HTTP 调它；
//! - `drafting-factory demo-upstream` 单独运行，带故障开关，供测试与基准测试充当 Gemini。
//!
//! 各个房间：本文件是路由、故障开关与 Gemini 方言（`generate_content`：核对密钥 `check_api_key`、
//! 注入故障 `fault_response`、画图并组成应答 `draw_answer`、截断 `truncated`）；`draw`：按提示词画 PNG；
//! `openai_dialects`：两种 OpenAI 方言；`ark`：豆包（火山方舟）方言。

mod ark;
mod draw;
mod openai_dialects;

pub use draw::{draw, encode_png};

use crate::gateway::upstream::gemini::wire::*;
use crate::types::{pixel_size, AspectRatio, ImageSize};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use rand::Rng;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// 演示上游的行为开关。故障比例是“每次请求触发该故障的概率”，按字段顺序依次判定。
#[derive(Debug, Clone, clap::Args)]
pub struct DemoOptions {
    /// 每次响应前的延迟（毫秒），`MIN` 或 `MIN-MAX`（在区间内均匀随机）。
    #[arg(long = "delay-ms", value_name = "MIN[-MAX]", default_value = "0", value_parser = parse_delay)]
    pub delay_ms: (u64, u64),
    /// 卡住不响应（直到客户端断开）的比例。
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub hang_rate: f64,
    /// 返回 5xx 错误的比例（状态码见 --error-status）。
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub error_rate: f64,
    /// --error-rate 使用的 5xx 状态码。
    #[arg(long, default_value_t = 503)]
    pub error_status: u16,
    /// 返回 429 限流（带 Retry-After 与 RetryInfo）的比例。
    #[arg(long = "rate-429", default_value_t = 0.0, value_parser = parse_rate)]
    pub rate_429: f64,
    /// 返回 429 每日配额耗尽（RESOURCE_EXHAUSTED，不应重试）的比例。
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub quota_rate: f64,
    /// 响应体在 JSON 中途被截断（连接中断）的比例。
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub truncate_rate: f64,
    /// 返回 200 但 JSON 非法的比例。
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub malformed_rate: f64,
    /// 安全拦截（finishReason IMAGE_SAFETY，无图）的比例。
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub safety_rate: f64,
    /// 返回 200 但只有文字的比例。
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub text_only_rate: f64,
    /// 要求的 API 密钥（`x-goog-api-key` 头或 `?key=`）；不设则不检查。
    #[arg(long)]
    pub api_key: Option<String>,
    /// 把图按比例缩到最长边不超过这么多像素（基准测试用来得到“小图”应答）；不设则按分辨率档的真实尺寸。
    #[arg(long, value_name = "PX")]
    pub max_side: Option<u32>,
    /// 正式图一律换成同一张约这么多字节的噪点 PNG（基准测试的“大图”应答；第一次用到时生成并缓存）。
    #[arg(long, value_name = "BYTES")]
    pub png_bytes: Option<usize>,
    /// 偷偷缩小的比例：这么多的应答给的图只有要求尺寸的一半（有的反向代理照收全价却给小图），网关的尺寸核对应当发现。
    #[arg(long, default_value_t = 0.0, value_parser = parse_rate)]
    pub downsize_rate: f64,
}

impl DemoOptions {
    /// 嵌入服务器内时使用：没有故障，带一点真实感的延迟。
    pub fn embedded() -> Self {
        Self {
            delay_ms: (800, 2500),
            ..Self::no_faults()
        }
    }

    pub fn no_faults() -> Self {
        Self {
            delay_ms: (0, 0),
            hang_rate: 0.0,
            error_rate: 0.0,
            error_status: 503,
            rate_429: 0.0,
            quota_rate: 0.0,
            truncate_rate: 0.0,
            malformed_rate: 0.0,
            safety_rate: 0.0,
            text_only_rate: 0.0,
            api_key: None,
            max_side: None,
            png_bytes: None,
            downsize_rate: 0.0,
        }
    }

    /// 按 `--delay-ms` 等待。
    async fn delay(&self) {
        let (min, max) = self.delay_ms;
        if max > 0 {
            let ms = rand::rng().random_range(min..=max);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }

    /// 掷一次骰子，决定这次请求注入哪种故障。
    fn pick_fault(&self) -> Option<Fault> {
        let mut roll: f64 = rand::rng().random();
        for (rate, fault) in [
            (self.hang_rate, Fault::Hang),
            (self.error_rate, Fault::ServerError),
            (self.rate_429, Fault::RateLimited),
            (self.quota_rate, Fault::QuotaExhausted),
            (self.truncate_rate, Fault::Truncate),
            (self.malformed_rate, Fault::Malformed),
            (self.safety_rate, Fault::Safety),
            (self.text_only_rate, Fault::TextOnly),
        ] {
            if roll < rate {
                return Some(fault);
            }
            roll -= rate;
        }
        None
    }
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Hang,
    ServerError,
    RateLimited,
    QuotaExhausted,
    Truncate,
    Malformed,
    Safety,
    TextOnly,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("“{s}”不是数字"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("比例必须在 0 到 1 之间，收到 {v}"))
    }
}

fn parse_delay(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("“{s}”不是有效的延迟，应为 MIN 或 MIN-MAX（毫秒）");
    let (min, max) = match s.split_once('-') {
        Some((a, b)) => (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        ),
        None => {
            let v = s.trim().parse().map_err(|_| bad())?;
            (v, v)
        }
    };
    if min > max {
        return Err(format!("延迟下限 {min} 大于上限 {max}"));
    }
    Ok((min, max))
}

/// 演示上游的路由：Google 的 SDK 按版本使用 `/v1beta` 或 `/v1`，两者都应答。
pub fn router(options: DemoOptions) -> Router {
    Router::new()
        .route("/v1beta/models/{target}", post(generate_content))
        .route("/v1/models/{target}", post(generate_content))
        .route("/_demo/options", post(set_options))
        .route("/v1beta/models", axum::routing::get(gemini_models))
        .route("/v1/models", axum::routing::get(openai_models))
        .merge(openai_dialects::router())
        .merge(ark::router())
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(Arc::new(arc_swap::ArcSwap::from_pointee(options)))
}

/// 演示上游“提供”的模型。
const DEMO_MODELS: [&str; 2] = ["gemini-3-pro-image", "gemini-nano-banana-2.1"];

/// `GET /v1beta/models`：Gemini 的 models.list 形状。
async fn gemini_models() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "models": DEMO_MODELS.iter().map(|m| serde_json::json!({
            "name": format!("models/{m}"),
            "displayName": format!("{m}（演示）"),
            "supportedGenerationMethods": ["generateContent"],
        })).collect::<Vec<_>>()
    }))
}

/// `GET /v1/models`：OpenAI 的形状（给 openai-images / openai-chat 方言）。
async fn openai_models() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "object": "list",
        "data": DEMO_MODELS.iter().map(|m| serde_json::json!({"id": m, "object": "model", "owned_by": "demo"})).collect::<Vec<_>>()
    }))
}

/// 运行中可调的选项（测试用来在不重启的情况下改变故障率与延迟）。
pub type SharedOptions = Arc<arc_swap::ArcSwap<DemoOptions>>;

/// `POST /_demo/options`，JSON 里给出要改的项（与命令行同名，下划线形式），例如
/// `{"error_rate":1.0,"delay_ms":"3000"}`。任何一项无效则什么都不改，返回 400。
async fn set_options(
    State(shared): State<SharedOptions>,
    Json(changes): Json<HashMap<String, serde_json::Value>>,
) -> Response {
    let mut next = (**shared.load()).clone();
    for (key, value) in &changes {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let result = match key.as_str() {
            "delay_ms" => parse_delay(&text).map(|v| next.delay_ms = v),
            "error_status" => text
                .parse()
                .map(|v| next.error_status = v)
                .map_err(|_| format!("“{text}”不是状态码")),
            rate => {
                let slot = match rate {
                    "hang_rate" => &mut next.hang_rate,
                    "error_rate" => &mut next.error_rate,
                    "rate_429" => &mut next.rate_429,
                    "quota_rate" => &mut next.quota_rate,
                    "truncate_rate" => &mut next.truncate_rate,
                    "malformed_rate" => &mut next.malformed_rate,
                    "safety_rate" => &mut next.safety_rate,
                    "text_only_rate" => &mut next.text_only_rate,
                    _ => {
                        return (StatusCode::BAD_REQUEST, format!("未知选项“{key}”"))
                            .into_response()
                    }
                };
                parse_rate(&text).map(|v| *slot = v)
            }
        };
        if let Err(message) = result {
            return (StatusCode::BAD_REQUEST, format!("{key}：{message}")).into_response();
        }
    }
    tracing::info!(?changes, "演示上游选项已更新");
    shared.store(Arc::new(next));
    StatusCode::NO_CONTENT.into_response()
}

/// 在 `addr` 上启动演示上游，返回实际监听的地址。
pub async fn spawn(options: DemoOptions, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(options)).await {
            tracing::error!("演示上游停止：{e}");
        }
    });
    Ok(local)
}

fn google_error(status: StatusCode, google_status: &str, message: &str) -> Response {
    let body = ErrorBody::new(status.as_u16(), google_status, message);
    (status, axum::Json(body)).into_response()
}

fn json_response(value: &GenerateContentResponse) -> Response {
    let body = serde_json::to_vec(value).expect("响应结构总能序列化");
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn generate_content(
    State(shared): State<SharedOptions>,
    Path(target): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let options = shared.load_full();
    let Some((model, "generateContent")) = target.split_once(':') else {
        return google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Only generateContent is supported by the demo upstream.",
        );
    };
    if let Some(refused) = check_api_key(&options, &headers, &query) {
        return refused;
    }

    let fault = options.pick_fault();
    if matches!(fault, Some(Fault::Hang)) {
        // 真的卡住：直到客户端放弃并断开连接，这个 future 才被丢弃。
        std::future::pending::<()>().await;
    }
    options.delay().await;
    if let Some(response) = fault_response(fault, &options, model) {
        return response;
    }

    let request: GenerateContentRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return google_error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                &format!("Invalid JSON payload received. {e}"),
            );
        }
    };
    let response = match draw_answer(model, request, &options).await {
        Ok(response) => response,
        Err(refused) => return refused,
    };
    if matches!(fault, Some(Fault::Truncate)) {
        return truncated(&response);
    }
    json_response(&response)
}

/// 设了 `--api-key` 时核对调用方给的密钥（`x-goog-api-key` 头或 `?key=`）：没给或不对时返回 Gemini 那样的错误应答。
fn check_api_key(
    options: &DemoOptions,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Option<Response> {
    let required = options.api_key.as_ref()?;
    let given = headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .or(query.get("key").map(String::as_str));
    match given {
        None => Some(google_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers. Please use API Key or other form of API consumer identity to call this API.",
        )),
        Some(k) if k != required => Some(google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
        )),
        Some(_) => None,
    }
}

/// 抽到的故障若是直接给一个应答的那几种（5xx、429、非法 JSON、安全拦截、只有文字），返回这个应答。
/// 卡住与截断不在这里：卡住发生在延迟之前，截断要先把图画好。
fn fault_response(fault: Option<Fault>, options: &DemoOptions, model: &str) -> Option<Response> {
    match fault {
        Some(Fault::ServerError) => {
            let status = StatusCode::from_u16(options.error_status)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            Some(google_error(
                status,
                "UNAVAILABLE",
                "The model is overloaded. Please try again later.",
            ))
        }
        Some(Fault::RateLimited) => Some(rate_limited(false)),
        Some(Fault::QuotaExhausted) => Some(rate_limited(true)),
        Some(Fault::Malformed) => Some(
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                "{\"candidates\": [{\"content\": {\"parts\": [<html>Bad Gateway</html>",
            )
                .into_response(),
        ),
        Some(Fault::Safety) => Some(json_response(&GenerateContentResponse {
            candidates: vec![Candidate {
                content: None,
                finish_reason: Some("IMAGE_SAFETY".into()),
                ..Default::default()
            }],
            ..Default::default()
        })),
        Some(Fault::TextOnly) => Some(json_response(&answer(
            model,
            vec![text_part(
                "I can't draw that right now, but here is a description instead.",
            )],
        ))),
        _ => None,
    }
}

/// 按请求画图（在阻塞线程里）并组成应答，联网搜索时附上引用的来源；请求不合要求时返回错误应答。
/// `--downsize-rate` 抽中时偷偷把图缩小，`--png-bytes` 时正式图换成那张噪点图。
async fn draw_answer(
    model: &str,
    request: GenerateContentRequest,
    options: &DemoOptions,
) -> Result<GenerateContentResponse, Response> {
    let (mut max_side, png_bytes) = (options.max_side, options.png_bytes);
    if options.downsize_rate > 0.0 && rand::rng().random::<f64>() < options.downsize_rate {
        // 最长边只给要求的一半。
        let size: ImageSize = request
            .generation_config
            .as_ref()
            .and_then(|g| g.image_config.as_ref())
            .and_then(|c| c.image_size.as_deref())
            .and_then(|s| s.parse().ok())
            .unwrap_or_default();
        let half = size.nominal_long_side() * 2 / 3;
        max_side = Some(max_side.map_or(half, |m| m.min(half)));
    }
    let grounding = request.wants_google_search();
    let drawn = match tokio::task::spawn_blocking(move || {
        let mut parts = render(request, max_side)?;
        if let (Some(bytes), Some(last)) = (png_bytes, parts.last_mut()) {
            *last = draw::noise_png_part(bytes);
        }
        Ok::<_, String>(parts)
    })
    .await
    {
        Ok(Ok(parts)) => parts,
        Ok(Err(message)) => {
            return Err(google_error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                &message,
            ))
        }
        Err(e) => {
            return Err(google_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                &e.to_string(),
            ))
        }
    };
    let mut response = answer(model, drawn);
    if grounding {
        // 联网搜索：与 Gemini 一样在候选结果里给出引用的网页。
        response.candidates[0].grounding_metadata = Some(GroundingMetadata {
            web_search_queries: vec!["演示搜索".into()],
            grounding_chunks: (1..=2)
                .map(|i| GroundingChunk {
                    web: Some(WebSource {
                        uri: format!("https://example.com/demo-source-{i}"),
                        title: format!("演示来源 {i}"),
                    }),
                })
                .collect(),
        });
    }
    Ok(response)
}

/// 截断故障：先发出一半 JSON，再让连接出错中断，客户端收到的是真正被截断的响应体。
fn truncated(response: &GenerateContentResponse) -> Response {
    let full = serde_json::to_vec(response).expect("响应结构总能序列化");
    let half = Bytes::copy_from_slice(&full[..full.len() / 2]);
    // 中间稍停一下，确保响应头和前一半真的发出去了，再中断。
    use futures::StreamExt;
    let cut = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "演示上游：故意截断",
        ))
    };
    let stream = futures::stream::once(async { Ok(half) }).chain(futures::stream::once(cut));
    let mut res = Response::new(Body::from_stream(stream));
    res.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

fn rate_limited(quota: bool) -> Response {
    let (message, quota_id) = if quota {
        (
            "You exceeded your current quota, please check your plan and billing details.",
            "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        )
    } else {
        (
            "Resource has been exhausted (e.g. check quota).",
            "GenerateRequestsPerMinutePerProjectPerModel",
        )
    };
    let mut body = ErrorBody::new(429, "RESOURCE_EXHAUSTED", message);
    body.error.details.push(serde_json::json!({
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_requests", "quotaId": quota_id}]
    }));
    if quota {
        // 每日配额耗尽：不给重试时间，等也没用。
        return (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    }
    body.error.details.push(serde_json::json!({
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": "1s"
    }));
    (
        StatusCode::TOO_MANY_REQUESTS,
        [("retry-after", "1")],
        axum::Json(body),
    )
        .into_response()
}

fn text_part(text: &str) -> Part {
    Part {
        text: Some(text.into()),
        ..Default::default()
    }
}

fn image_part(png: &[u8], thought: bool) -> Part {
    Part {
        inline_data: Some(Blob {
            mime_type: "image/png".into(),
            data: base64::engine::general_purpose::STANDARD.encode(png),
        }),
        thought: thought.then_some(true),
        ..Default::default()
    }
}

fn answer(model: &str, parts: Vec<Part>) -> GenerateContentResponse {
    GenerateContentResponse {
        candidates: vec![Candidate {
            content: Some(Content {
                role: Some("model".into()),
                parts,
            }),
            finish_reason: Some("STOP".into()),
            ..Default::default()
        }],
        prompt_feedback: None,
        model_version: Some(model.to_string()),
    }
}

/// 按请求画图，返回响应的各个 part：一张“思考中”的小草图（thought），一段文字，一张正式图。
pub(super) fn render(
    request: GenerateContentRequest,
    max_side: Option<u32>,
) -> Result<Vec<Part>, String> {
    let parts = request
        .contents
        .last()
        .map(|c| c.parts.clone())
        .unwrap_or_default();
    let prompt: String = parts
        .iter()
        .filter_map(|p| p.text.as_deref())
        .collect::<Vec<_>>()
        .join("\n");
    let reference = parts.iter().find_map(|p| p.inline_data.as_ref());
    if prompt.trim().is_empty() && reference.is_none() {
        return Err("* GenerateContentRequest.contents: contents is not specified".into());
    }
    let seed = request.generation_config.as_ref().and_then(|g| g.seed);
    let image_config = request
        .generation_config
        .and_then(|g| g.image_config)
        .unwrap_or_default();
    let aspect: AspectRatio = match image_config.aspect_ratio {
        Some(a) => a
            .parse()
            .map_err(|_| format!("Unsupported aspect ratio: {a}"))?,
        None => AspectRatio::Square,
    };
    let size: ImageSize = match image_config.image_size {
        Some(s) => s
            .parse()
            .map_err(|_| format!("Unsupported image size: {s}. Use 1K, 2K or 4K."))?,
        None => ImageSize::K1,
    };
    let reference = match reference {
        Some(blob) => {
            let bytes = decode_bytes(&blob.data)
                .ok_or_else(|| "Unable to process input image: invalid base64.".to_string())?;
            Some(
                image::load_from_memory(&bytes)
                    .map_err(|e| format!("Unable to process input image: {e}"))?,
            )
        }
        None => None,
    };
    let (w, h) = pixel_size(aspect, size);
    let (w, h) = match max_side {
        Some(max) if w.max(h) > max.max(1) => {
            let scale = max.max(1) as f64 / w.max(h) as f64;
            (
                ((w as f64 * scale) as u32).max(1),
                ((h as f64 * scale) as u32).max(1),
            )
        }
        _ => (w, h),
    };
    let sketch = encode_png(&draw(&prompt, seed, 64, 64 * h / w, None));
    let final_png = encode_png(&draw(&prompt, seed, w, h, reference.as_ref()));
    let summary: String = prompt.chars().take(40).collect();
    Ok(vec![
        Part {
            text: Some("Sketching a first draft.".into()),
            thought: Some(true),
            ..Default::default()
        },
        image_part(&sketch, true),
        text_part(&format!(
            "这是演示上游按提示词“{summary}”绘制的 {w}×{h} 图像。"
        )),
        image_part(&final_png, false),
    ])
}
