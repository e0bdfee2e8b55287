//! `POST /v1/chat/completions`（图像模型）：最后一条用户消息的文字与图片成为请求，
//! 回答的助手消息把图放在 `message.images[]`（OpenRouter 风格）并以 Markdown 放在 `content`，两类客户端都能显示。
//!
//! `stream: true` 时发送合法的 `chat.completion.chunk` SSE，等待期间发注释行保活，以 `data: [DONE]` 结束；
//! 流里的 Markdown 只用本服务器的 `/files/{id}` 链接，绝不把几 MB 的 data URL 塞进一行 SSE。

use super::images::{known_model, ImageParams};
use super::images_response::public_base_url;
use crate::access::budget::BudgetTicket;
use crate::admit::{admit, Admitted, Order, Requester};
use crate::error::ApiError;
use crate::gateway::{ImageRequest, InputImage};
use crate::produce::{ProduceFailed, Produced, Producer, References};
use crate::state::AppState;
use crate::types::limits::MAX_REFERENCES;
use crate::web::{accept_image, ApiJson};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use std::convert::Infallible;

#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    pub model: Option<String>,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub stream: bool,
    /// 扩展：宽高比与分辨率（也接受 OpenAI 的 size）。
    #[serde(default)]
    pub size: Option<String>,
    #[serde(default)]
    pub aspect_ratio: Option<String>,
    #[serde(default)]
    pub image_size: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: Content,
}

#[derive(Debug, Deserialize, Default)]
#[serde(untagged)]
pub enum Content {
    #[default]
    Empty,
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    Text {
        text: String,
    },
    ImageUrl {
        image_url: ImageUrl,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
pub struct ImageUrl {
    pub url: String,
}

pub async fn completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::Extension(caller): axum::Extension<super::auth::Caller>,
    ApiJson(body): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    let config = state.config.load_full();
    let message = read_last_user(&state, &body).await?;
    // 每次对话生成一张：校验、查模型目录、先占调用方的额度（结束时按实际张数改正），见 `crate::admit`。
    let Admitted { request, ticket } = admit(
        &state,
        Order {
            requester: Requester::Api {
                label: caller.client_label(&config),
                budget: caller.budget(&config),
                account: caller.owner(&config),
            },
            prompt: &message.prompt,
            count: 1,
            references: message.inline.len() + message.linked.len(),
            aspect_ratio: message.aspect_ratio,
            image_size: message.image_size,
            model: known_model(&state, body.model.as_deref()),
            google_search: false,
        },
    )
    .await?;
    // 收下之后才存参考图：不合格的请求什么都不留下。
    let mut references = References::load(&state.storage, &message.linked).await?;
    let stored = References::store(&state.storage, message.inline).await?;
    references.ids.extend(stored.ids);
    references.images.extend(stored.images);
    let model = request
        .model
        .clone()
        .or_else(|| body.model.clone())
        .unwrap_or_else(|| "image".into());
    let base_url = public_base_url(&state, &headers);
    let id = format!("chatcmpl-{}", uuid::Uuid::new_v4().simple());
    let created = chrono::Utc::now().timestamp();

    let job = Job {
        producer: state.producer(),
        request,
        references,
        ticket,
    };
    if !body.stream {
        return whole_answer(&state, job, id, created).await;
    }
    Ok(stream_answer(state, job, base_url, id, created, model))
}

/// 收下的一次生成：生产线、交给它的请求与参考图，以及结束时按实际张数结算的额度票据。
struct Job {
    producer: Producer,
    request: ImageRequest,
    references: References,
    ticket: BudgetTicket,
}

impl Job {
    /// 生成并保存这张图，按成败结算额度（成功记 1 张，失败记 0 张）。
    async fn run(self) -> Result<Produced, ProduceFailed> {
        let produced = self.producer.produce(self.request, self.references).await;
        self.ticket
            .settle(produced.is_ok() as u64, crate::produce::spent(&produced));
        produced
    }
}

/// 不流式的回答：等图生成好，整条助手消息一次给出（图以 data URL 放在 `images` 与 Markdown 里）。
async fn whole_answer(
    state: &AppState,
    job: Job,
    id: String,
    created: i64,
) -> Result<Response, ApiError> {
    let result = job.run().await;
    let spent = crate::produce::spent(&result);
    let mut produced = result.map_err(|f| f.error)?;
    let model = produced.image.model.clone();
    let (image, record) = (&mut produced.image, &produced.record);
    let data_url = format!("data:{};base64,{}", record.mime, image.base64());
    let content = markdown(image.text.as_deref(), &data_url);
    let mut response = Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": content,
                "images": [{"type": "image_url", "image_url": {"url": data_url}}],
            },
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }))
    .into_response();
    super::images::insert_cost(&mut response, &state.config.load(), spent);
    Ok(response)
}

/// 流式的回答（SSE）：先发助手角色的空块；图好了发带本服务器签名链接的内容块和结束块
/// （失败时发一个 error 事件），最后 `data: [DONE]`。等待期间按间隔发保活注释。
fn stream_answer(
    state: AppState,
    job: Job,
    base_url: String,
    id: String,
    created: i64,
    model: String,
) -> Response {
    let chunk = move |delta: Value, finish: Option<&str>| {
        Event::default().data(
            json!({
                "id": id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            })
            .to_string(),
        )
    };
    let first = chunk(json!({"role": "assistant", "content": ""}), None);
    let rest = futures::stream::once(async move {
        let events = match job.run().await {
            Ok(produced) => {
                let ttl = state.config.load().server.file_url_ttl_s;
                let url = format!(
                    "{base_url}{}",
                    state.url_signer.sign(&produced.record.id, ttl)
                );
                vec![
                    chunk(
                        json!({
                            "content": markdown(produced.image.text.as_deref(), &url),
                            "images": [{"type": "image_url", "image_url": {"url": url}}],
                        }),
                        None,
                    ),
                    chunk(json!({}), Some("stop")),
                ]
            }
            // 流已经开始，状态码发不出去了：按 OpenAI 的做法在流里发一个 error 事件。
            Err(failed) => vec![Event::default().data(
                json!({"error": {"message": failed.error.public_message(), "type": failed.error.error_type(), "param": null, "code": failed.error.code()}})
                    .to_string(),
            )],
        };
        futures::stream::iter(events)
    })
    .flatten();
    let stream = futures::stream::once(async move { first })
        .chain(rest)
        .chain(futures::stream::once(async {
            Event::default().data("[DONE]")
        }))
        .map(Ok::<_, Infallible>);
    Sse::new(stream)
        .keep_alive(super::sse::keep_alive())
        .into_response()
}

fn markdown(text: Option<&str>, url: &str) -> String {
    match text {
        Some(t) if !t.trim().is_empty() => format!("{}\n\n![image]({url})", t.trim()),
        _ => format!("![image]({url})"),
    }
}

/// 最后一条用户消息：文字拼成的提示词，图片（data URL 的已解码并认过格式；本服务器的 /files 签名链接只取 id），
/// 与请求的宽高比、分辨率。参考图在请求收下之后才存（见 `completions`）。
struct UserMessage {
    prompt: String,
    inline: Vec<InputImage>,
    linked: Vec<String>,
    aspect_ratio: crate::types::AspectRatio,
    image_size: crate::types::ImageSize,
}

async fn read_last_user(state: &AppState, body: &ChatRequest) -> Result<UserMessage, ApiError> {
    let last_user = body
        .messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .ok_or_else(|| ApiError::InvalidRequest("messages 里没有 role 为 user 的消息".into()))?;
    let max_bytes = state.config.load().storage.max_upload_mb as usize * 1024 * 1024;
    let mut texts = Vec::new();
    let mut inline: Vec<InputImage> = Vec::new();
    let mut linked: Vec<String> = Vec::new();
    let parts: &[Part] = match &last_user.content {
        Content::Empty => &[],
        Content::Text(t) => {
            texts.push(t.clone());
            &[]
        }
        Content::Parts(parts) => parts,
    };
    for part in parts {
        match part {
            Part::Text { text } => texts.push(text.clone()),
            Part::ImageUrl { image_url } => {
                if inline.len() + linked.len() == MAX_REFERENCES {
                    return Err(ApiError::InvalidRequest(format!(
                        "参考图最多 {MAX_REFERENCES} 张"
                    )));
                }
                match reference_of(&image_url.url, max_bytes, &state.url_signer)? {
                    Reference::Inline(data) => {
                        let index = inline.len() + linked.len() + 1;
                        inline.push(accept_image(data, max_bytes, index).await?);
                    }
                    Reference::Linked(id) => linked.push(id),
                }
            }
            Part::Other => {}
        }
    }
    let params = ImageParams {
        size: body.size.clone(),
        aspect_ratio: body.aspect_ratio.clone(),
        image_size: body.image_size.clone(),
        ..Default::default()
    };
    let (aspect_ratio, image_size) = super::images::resolve_shape(&params)?;
    let prompt = texts.join("\n");
    if prompt.trim().is_empty() {
        return Err(ApiError::InvalidRequest(
            "最后一条用户消息里没有文字提示词".into(),
        ));
    }
    Ok(UserMessage {
        prompt,
        inline,
        linked,
        aspect_ratio,
        image_size,
    })
}

/// 消息里的一张图。
enum Reference {
    /// data URL 里的图。
    Inline(bytes::Bytes),
    /// 本服务器 `/files/{id}` 链接指向的图（图库里的图片 id）。
    Linked(String),
}

/// 参考图只接受 data URL，或指向本服务器 `/files/{id}` 的签名链接（本服务器交给 `/v1` 调用方的那种，
/// 按 id 从存储读取，不发起任何外部请求）。data URL 在解码 base64 之前先按长度估算大小，超了就不解码。
fn reference_of(
    url: &str,
    max_bytes: usize,
    signer: &crate::access::signed::UrlSigner,
) -> Result<Reference, ApiError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (_, b64) = rest
            .split_once(";base64,")
            .ok_or_else(|| ApiError::InvalidRequest("图片 data URL 必须是 base64 编码".into()))?;
        let b64 = b64.trim();
        if b64.len() / 4 * 3 > max_bytes + 2 {
            return Err(ApiError::PayloadTooLarge(format!(
                "参考图太大（约 {:.1} MB），上限是 {} MB",
                (b64.len() / 4 * 3) as f64 / 1048576.0,
                max_bytes >> 20
            )));
        }
        let data = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| ApiError::InvalidRequest("图片 data URL 的 base64 无法解码".into()))?;
        return Ok(Reference::Inline(data.into()));
    }
    let parsed = url::Url::parse(url).ok();
    let id = parsed
        .as_ref()
        .and_then(|u| u.path().strip_prefix("/files/").map(str::to_string))
        .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            ApiError::InvalidRequest("图片只支持 data URL 或本服务器的 /files/{id} 链接".into())
        })?;
    if !signer.verify_query(&id, parsed.as_ref().and_then(|u| u.query())) {
        return Err(ApiError::InvalidRequest(
            "本服务器的图片链接没有有效的签名或已过期：请用 /v1 返回的链接（带 exp 与 sig），或改用 data URL".into(),
        ));
    }
    Ok(Reference::Linked(id))
}
