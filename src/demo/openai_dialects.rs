//! 演示上游的两种 OpenAI 方言：`/v1/images/generations`、`/v1/images/edits` 与 `/v1/chat/completions`，
//! 供 `openai-images`、`openai-chat` 两种上游适配器做往返测试。画图与 Gemini 方言共用同一条路径。
//! 故障开关只作用于 Gemini 方言；这里只遵守 `--delay-ms`。

use super::render;
use crate::gateway::upstream::gemini::wire::*;
use crate::types::shape_from_size;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use serde_json::{json, Value};

pub fn router() -> Router<super::SharedOptions> {
    Router::new()
        .route("/v1/images/generations", post(generations))
        .route("/v1/images/edits", post(edits))
        .route("/v1/chat/completions", post(chat))
}

fn openai_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}})))
        .into_response()
}

/// 画一张图：返回（base64 PNG，模型的文字）。
async fn draw(
    prompt: String,
    references: Vec<Blob>,
    aspect_ratio: Option<String>,
    image_size: Option<String>,
    size: Option<String>,
) -> Result<(String, Option<String>), String> {
    let (mut aspect, mut resolution) = shape_from_size(size.as_deref())?;
    if let Some(a) = aspect_ratio {
        aspect = a.parse()?;
    }
    if let Some(s) = image_size {
        resolution = s.parse()?;
    }
    let request = GenerateContentRequest::image_request(
        &prompt,
        references,
        aspect.as_str(),
        resolution.as_str(),
        None,
    );
    let parts = tokio::task::spawn_blocking(move || render(request, None))
        .await
        .map_err(|e| e.to_string())??;
    let text = parts
        .iter()
        .filter(|p| p.thought.is_none())
        .find_map(|p| p.text.clone());
    let image = parts
        .into_iter()
        .rev()
        .find_map(|p| p.inline_data)
        .map(|b| b.data)
        .ok_or("没有画出图")?;
    Ok((image, text))
}

fn images_response(results: Vec<(String, Option<String>)>) -> Response {
    let data: Vec<Value> = results
        .into_iter()
        .map(|(b64, text)| json!({"b64_json": b64, "revised_prompt": text}))
        .collect();
    Json(json!({"created": chrono::Utc::now().timestamp(), "data": data})).into_response()
}

async fn generations(
    State(shared): State<super::SharedOptions>,
    Json(body): Json<Value>,
) -> Response {
    let options = shared.load_full();
    options.delay().await;
    let prompt = body["prompt"].as_str().unwrap_or("").to_string();
    if prompt.trim().is_empty() {
        return openai_error(StatusCode::BAD_REQUEST, "prompt is required");
    }
    let n = body["n"].as_u64().unwrap_or(1).clamp(1, 16);
    let field = |k: &str| body[k].as_str().map(str::to_string);
    let mut results = Vec::new();
    for _ in 0..n {
        match draw(
            prompt.clone(),
            Vec::new(),
            field("aspect_ratio"),
            field("image_size"),
            field("size"),
        )
        .await
        {
            Ok(r) => results.push(r),
            Err(e) => return openai_error(StatusCode::BAD_REQUEST, &e),
        }
    }
    images_response(results)
}

async fn edits(State(shared): State<super::SharedOptions>, mut form: Multipart) -> Response {
    let options = shared.load_full();
    options.delay().await;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (mut prompt, mut aspect, mut resolution, mut size) = (String::new(), None, None, None);
    let mut references = Vec::new();
    while let Ok(Some(field)) = form.next_field().await {
        let name = field.name().unwrap_or_default().to_string();
        if name == "image" || name == "image[]" {
            let mime = field.content_type().unwrap_or("image/png").to_string();
            match field.bytes().await {
                Ok(bytes) => references.push(Blob {
                    mime_type: mime,
                    data: b64.encode(&bytes),
                }),
                Err(e) => return openai_error(StatusCode::BAD_REQUEST, &e.to_string()),
            }
            continue;
        }
        let value = field.text().await.unwrap_or_default();
        match name.as_str() {
            "prompt" => prompt = value,
            "aspect_ratio" => aspect = Some(value),
            "image_size" => resolution = Some(value),
            "size" => size = Some(value),
            _ => {}
        }
    }
    if references.is_empty() {
        return openai_error(StatusCode::BAD_REQUEST, "image is required");
    }
    match draw(prompt, references, aspect, resolution, size).await {
        Ok(r) => images_response(vec![r]),
        Err(e) => openai_error(StatusCode::BAD_REQUEST, &e),
    }
}

async fn chat(State(shared): State<super::SharedOptions>, Json(body): Json<Value>) -> Response {
    let options = shared.load_full();
    options.delay().await;
    let Some(message) = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
    else {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "messages must contain a user message",
        );
    };
    let mut prompt = String::new();
    let mut references = Vec::new();
    match &message["content"] {
        Value::String(s) => prompt = s.clone(),
        Value::Array(parts) => {
            for part in parts {
                if let Some(t) = part["text"].as_str() {
                    prompt.push_str(t);
                }
                if let Some(url) = part["image_url"]["url"].as_str() {
                    if let Some((mime, data)) = url
                        .strip_prefix("data:")
                        .and_then(|r| r.split_once(";base64,"))
                    {
                        references.push(Blob {
                            mime_type: mime.into(),
                            data: data.into(),
                        });
                    }
                }
            }
        }
        _ => {}
    }
    let field = |k: &str| {
        body["image_config"][k]
            .as_str()
            .or(body[k].as_str())
            .map(str::to_string)
    };
    match draw(
        prompt,
        references,
        field("aspect_ratio"),
        field("image_size"),
        None,
    )
    .await
    {
        Ok((b64, text)) => {
            let url = format!("data:image/png;base64,{b64}");
            Json(json!({
                "id": "chatcmpl-demo",
                "object": "chat.completion",
                "created": chrono::Utc::now().timestamp(),
                "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": {
                    "role": "assistant",
                    "content": text.unwrap_or_default(),
                    "images": [{"type": "image_url", "image_url": {"url": url}}],
                }}],
            }))
            .into_response()
        }
        Err(e) => openai_error(StatusCode::BAD_REQUEST, &e),
    }
}
