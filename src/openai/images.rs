//! `POST /v1/images/generations`：OpenAI 图像生成接口，`n` 张并行生成，部分成功时返回成功的那些。

use super::OpenAiJson;
use crate::app::types::{AspectRatio, ImageSize};
use crate::error::ApiError;
use crate::gateway::ImageRequest;
use crate::state::AppState;
use crate::storage::NewImage;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// 单次请求最多生成的张数。
pub const MAX_N: u32 = 16;

#[derive(Debug, Deserialize)]
pub struct GenerationsRequest {
    pub prompt: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub n: Option<u32>,
    #[serde(default)]
    pub size: Option<String>,
    #[serde(default)]
    pub response_format: Option<String>,
    #[serde(default)]
    pub quality: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    /// 扩展：直接指定 Gemini 的宽高比（优先于 size）。
    #[serde(default)]
    pub aspect_ratio: Option<String>,
    /// 扩展：直接指定 1K / 2K / 4K（优先于 size）。
    #[serde(default)]
    pub image_size: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ImagesResponse {
    pub created: i64,
    pub data: Vec<ImageData>,
}

#[derive(Debug, Serialize)]
pub struct ImageData {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b64_json: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revised_prompt: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum ResponseFormat {
    B64Json,
    Url,
}

pub async fn generations(
    State(state): State<AppState>,
    headers: HeaderMap,
    OpenAiJson(body): OpenAiJson<GenerationsRequest>,
) -> Result<Json<ImagesResponse>, ApiError> {
    let prompt = body.prompt.trim().to_string();
    if prompt.is_empty() {
        return Err(ApiError::InvalidRequest("prompt 不能为空".into()));
    }
    let n = body.n.unwrap_or(1);
    if !(1..=MAX_N).contains(&n) {
        return Err(ApiError::InvalidRequest(format!(
            "n 必须在 1 到 {MAX_N} 之间，收到 {n}"
        )));
    }
    let format = match body.response_format.as_deref() {
        None | Some("b64_json") => ResponseFormat::B64Json,
        Some("url") => ResponseFormat::Url,
        Some(other) => {
            return Err(ApiError::InvalidRequest(format!(
                "response_format 只能是 b64_json 或 url，收到“{other}”"
            )))
        }
    };
    let (mut aspect_ratio, mut image_size) = parse_size(body.size.as_deref())?;
    if let Some(a) = &body.aspect_ratio {
        aspect_ratio = a.parse().map_err(ApiError::InvalidRequest)?;
    }
    if let Some(s) = &body.image_size {
        image_size = s.parse().map_err(ApiError::InvalidRequest)?;
    } else if matches!(body.quality.as_deref(), Some("hd" | "high")) && image_size == ImageSize::K1
    {
        // 没指定分辨率但要求高质量：给 2K。
        image_size = ImageSize::K2;
    }
    tracing::info!(user = body.user.as_deref().unwrap_or(""), n, %aspect_ratio, %image_size, "图像生成请求");
    let model = known_model(&state, body.model.as_deref());
    let request = ImageRequest {
        prompt: prompt.clone(),
        references: Vec::new(),
        aspect_ratio,
        image_size,
        model,
    };

    let base_url = public_base_url(&state, &headers);
    let jobs = (0..n).map(|_| generate_one(&state, request.clone(), format, &base_url));
    let results = futures::future::join_all(jobs).await;
    let mut data = Vec::new();
    let mut first_error = None;
    for result in results {
        match result {
            Ok(item) => data.push(item),
            Err(e) => {
                tracing::warn!("第 {} 张生成失败：{e}", data.len() + 1);
                first_error.get_or_insert(e);
            }
        }
    }
    if data.is_empty() {
        return Err(first_error.expect("n ≥ 1，没有成功就一定有错误"));
    }
    Ok(Json(ImagesResponse {
        created: chrono::Utc::now().timestamp(),
        data,
    }))
}

async fn generate_one(
    state: &AppState,
    request: ImageRequest,
    format: ResponseFormat,
    base_url: &str,
) -> Result<ImageData, ApiError> {
    let image = state.gateway.generate(request.clone()).await?;
    let revised_prompt = image.text.clone();
    let b64_json = (format == ResponseFormat::B64Json)
        .then(|| base64::engine::general_purpose::STANDARD.encode(&image.data));
    let record = state
        .storage
        .save_image(NewImage {
            data: image.data,
            prompt: request.prompt,
            mode: if request.references.is_empty() {
                "text2img"
            } else {
                "img2img"
            },
            model: image.model,
            aspect_ratio: request.aspect_ratio.to_string(),
            image_size: request.image_size.to_string(),
            upstream: image.upstream,
        })
        .await?;
    Ok(ImageData {
        url: (format == ResponseFormat::Url).then(|| format!("{base_url}/files/{}", record.id)),
        b64_json,
        revised_prompt,
    })
}

/// 请求里的模型是已配置的某个上游模型时才采用，否则用上游自己的模型（`dall-e-3`、`gpt-image-1` 等名字照常可用）。
fn known_model(state: &AppState, requested: Option<&str>) -> Option<String> {
    let requested = requested?;
    let config = state.config.load();
    state
        .gateway
        .upstreams(&config)
        .iter()
        .any(|u| u.model == requested)
        .then(|| requested.to_string())
}

/// 图片链接的绝对前缀：优先 `server.public_url`，否则按请求的 Host 拼。
fn public_base_url(state: &AppState, headers: &HeaderMap) -> String {
    let public_url = state.config.load().server.public_url.clone();
    if !public_url.is_empty() {
        return public_url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// OpenAI 的 `size`（"1024x1024"、"1536x1024"、"auto"……）映射到最接近的 Gemini 宽高比与分辨率档。
pub fn parse_size(size: Option<&str>) -> Result<(AspectRatio, ImageSize), ApiError> {
    let size = match size.map(str::trim) {
        None | Some("") | Some("auto") => return Ok((AspectRatio::Square, ImageSize::K1)),
        Some(s) => s,
    };
    let bad = || {
        ApiError::InvalidRequest(format!(
            "size 应为“宽x高”（例如 1024x1024）或 auto，收到“{size}”"
        ))
    };
    let (w, h) = size.split_once(['x', 'X', '×']).ok_or_else(bad)?;
    let (w, h): (u32, u32) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    if w == 0 || h == 0 || w > 16_384 || h > 16_384 {
        return Err(bad());
    }
    let ratio = (w as f64 / h as f64).ln();
    let aspect = AspectRatio::ALL
        .into_iter()
        .min_by(|a, b| {
            let d = |x: &AspectRatio| {
                let (aw, ah) = crate::app::types::pixel_size(*x, ImageSize::K1);
                ((aw as f64 / ah as f64).ln() - ratio).abs()
            };
            d(a).total_cmp(&d(b))
        })
        .expect("宽高比列表非空");
    let longest = w.max(h);
    let image_size = if longest <= 1600 {
        ImageSize::K1
    } else if longest <= 3200 {
        ImageSize::K2
    } else {
        ImageSize::K4
    };
    Ok((aspect, image_size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_sizes_map_to_gemini_ratios() {
        let cases = [
            (None, AspectRatio::Square, ImageSize::K1),
            (Some("auto"), AspectRatio::Square, ImageSize::K1),
            (Some("1024x1024"), AspectRatio::Square, ImageSize::K1),
            (Some("1536x1024"), AspectRatio::L3x2, ImageSize::K1),
            (Some("1024x1536"), AspectRatio::P2x3, ImageSize::K1),
            (Some("1792x1024"), AspectRatio::L16x9, ImageSize::K2),
            (Some("2560x1080"), AspectRatio::L21x9, ImageSize::K2),
            (Some("4096x4096"), AspectRatio::Square, ImageSize::K4),
        ];
        for (size, aspect, image_size) in cases {
            assert_eq!(parse_size(size).unwrap(), (aspect, image_size), "{size:?}");
        }
        for bad in ["big", "1024", "0x100", "1024x"] {
            assert!(parse_size(Some(bad)).is_err(), "{bad}");
        }
    }
}
