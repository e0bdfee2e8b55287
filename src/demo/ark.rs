//! 演示上游的豆包（火山方舟 Seedream）方言：`POST /api/v3/images/generations`，JSON 请求
//! （`model`、`prompt`、`size` 为 `1K`/`2K`/`4K` 或 `宽x高`、`image` 为一个或几个 data URL、`response_format`、
//! `watermark`、`sequential_image_generation`），应答 `{model, created, data:[{b64_json, size}], usage}`，
//! 错误 `{"error":{"code","message"}}`。故障开关里的 429 限流与安全拦截也作用于这里（说法按方舟的错误码）。

use super::{render, Fault};
use crate::gateway::upstream::gemini::wire::*;
use crate::types::{shape_from_size, AspectRatio, ImageSize};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

pub fn router() -> Router<super::SharedOptions> {
    Router::new().route("/api/v3/images/generations", post(generations))
}

fn ark_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message, "param": "", "type": ""}})),
    )
        .into_response()
}

async fn generations(
    State(shared): State<super::SharedOptions>,
    Json(body): Json<Value>,
) -> Response {
    let options = shared.load_full();
    options.delay().await;
    if let Some(refused) = fault_response(options.pick_fault()) {
        return refused;
    }
    let prompt = body["prompt"].as_str().unwrap_or("").to_string();
    let model = body["model"].as_str().unwrap_or("").to_string();
    if prompt.trim().is_empty() || model.is_empty() {
        return ark_error(
            StatusCode::BAD_REQUEST,
            "MissingParameter",
            "The request failed because it is missing one or multiple required parameters: model, prompt.",
        );
    }
    let shape_and_references =
        requested_shape(&body).and_then(|shape| Ok((shape, reference_blobs(&body)?)));
    let ((aspect, tier), references) = match shape_and_references {
        Ok(found) => found,
        Err(why) => return ark_error(StatusCode::BAD_REQUEST, "InvalidParameter", &why),
    };
    let request = GenerateContentRequest::image_request(
        &prompt,
        references,
        aspect.as_str(),
        tier.as_str(),
        None,
    );
    let image = match draw_image(request).await {
        Ok(image) => image,
        Err(refused) => return refused,
    };
    let (w, h) = crate::types::pixel_size(aspect, tier);
    Json(json!({
        "model": model,
        "created": chrono::Utc::now().timestamp(),
        "data": [{"b64_json": image.data, "size": format!("{w}x{h}")}],
        "usage": {"generated_images": 1, "output_tokens": 0, "total_tokens": 0},
    }))
    .into_response()
}

/// 抽到 429（限流或配额）或安全拦截时，按方舟的错误码给出的应答；其余故障这里不管。
fn fault_response(fault: Option<Fault>) -> Option<Response> {
    match fault {
        Some(Fault::RateLimited | Fault::QuotaExhausted) => Some(ark_error(
            StatusCode::TOO_MANY_REQUESTS,
            "RateLimitExceeded.EndpointRPMExceeded",
            "Request was rejected as the endpoint RPM limit has been exceeded. Please try again later.",
        )),
        Some(Fault::Safety) => Some(ark_error(
            StatusCode::BAD_REQUEST,
            "OutputImageSensitiveContentDetected",
            "The request failed because the output image may contain sensitive information.",
        )),
        _ => None,
    }
}

/// 请求的 `size`：1K/2K/4K（正方形）或 宽x高（缺省 2K）；不认得时返回原因。
fn requested_shape(body: &Value) -> Result<(AspectRatio, ImageSize), String> {
    let size = body["size"].as_str().unwrap_or("2K");
    match size.parse::<ImageSize>() {
        Ok(tier) => Ok((crate::types::AspectRatio::Square, tier)),
        Err(_) => shape_from_size(Some(size)),
    }
}

/// 请求的 `image`（一个或几个 data URL）解成参考图；演示里只收 data URL，别的返回原因。
fn reference_blobs(body: &Value) -> Result<Vec<Blob>, String> {
    let urls: Vec<String> = match &body["image"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let mut references = Vec::new();
    for url in urls {
        let Some((mime, data)) = url
            .strip_prefix("data:")
            .and_then(|rest| rest.split_once(";base64,"))
        else {
            return Err("image must be a data URL in the demo".into());
        };
        references.push(Blob {
            mime_type: mime.to_string(),
            data: data.to_string(),
        });
    }
    Ok(references)
}

/// 在阻塞线程里画图，取最后一张图；画不出来时返回错误应答。
async fn draw_image(request: GenerateContentRequest) -> Result<Blob, Response> {
    let drawn = tokio::task::spawn_blocking(move || render(request, None)).await;
    let image = match drawn {
        Ok(Ok(parts)) => parts.into_iter().rev().find_map(|p| p.inline_data),
        Ok(Err(e)) => return Err(ark_error(StatusCode::BAD_REQUEST, "InvalidParameter", &e)),
        Err(e) => {
            return Err(ark_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServiceError",
                &e.to_string(),
            ))
        }
    };
    image.ok_or_else(|| {
        ark_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServiceError",
            "no image",
        )
    })
}
