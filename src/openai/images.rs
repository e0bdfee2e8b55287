//! `POST /v1/images/generations` 与 `POST /v1/images/edits`：`n` 张并行生成，部分成功时返回成功的那些。

use super::auth::Caller;
use super::idempotency::{Key, Produced};
use super::images_response::{images_response, response_format};
use crate::admit::{admit_valid, Admitted, Order, Requester};
use crate::error::ApiError;
use crate::gateway::{ImageRequest, InputImage};
use crate::produce::References;
use crate::state::AppState;
use crate::types::limits::MAX_REFERENCES;
use crate::types::money::Micros;
use crate::types::{AspectRatio, ImageSize};
use crate::web::{accept_image, sha256_hex, ApiJson};
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use axum::Extension;
use serde::Deserialize;
use std::sync::atomic::{AtomicI64, Ordering};

/// 生成与编辑共有的参数（OpenAI 的字段名，外加扩展字段 `aspect_ratio`、`image_size`）。
#[derive(Debug, Default, Deserialize)]
pub struct ImageParams {
    #[serde(default)]
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
    /// 扩展：直接指定 512 / 1K / 2K / 4K（优先于 size）。
    #[serde(default)]
    pub image_size: Option<String>,
    /// 扩展：联网搜索（Google 搜索接地，只有支持它的模型可以开）。
    #[serde(default)]
    pub google_search: Option<bool>,
}

/// `POST /v1/images/generations`
pub async fn generations(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiJson(params): ApiJson<ImageParams>,
) -> Result<Response, ApiError> {
    respond(
        &state,
        &headers,
        &caller,
        "generations",
        params,
        Vec::new(),
        None,
    )
    .await
}

/// `POST /v1/images/edits`：multipart，参考图放在 `image` 或 `image[]`（可多张）。
pub async fn edits(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Response, ApiError> {
    let max_bytes = state.config.load().storage.max_upload_mb as usize * 1024 * 1024;
    let EditForm {
        params,
        references,
        mask,
    } = read_edit_form(multipart, max_bytes).await?;
    let Some(first) = references.first() else {
        return Err(ApiError::InvalidRequest(
            "缺少参考图：请在 image（或 image[]）字段上传至少一张图片".into(),
        ));
    };
    // 局部修改：蒙版在收下请求之前就校验（不对就 400，什么都不发、不占额度）。
    let region = match mask {
        Some(mask) => {
            if prefers_async(&headers) {
                return Err(ApiError::InvalidRequest(
                    "带 mask 的局部修改暂不支持异步任务（Prefer: respond-async）：请去掉这个头同步调用".into(),
                ));
            }
            Some(std::sync::Arc::new(
                crate::region::RegionEdit::prepare(mask, first).await?,
            ))
        }
        None => None,
    };
    let route = if region.is_some() {
        "edits+mask"
    } else {
        "edits"
    };
    respond(&state, &headers, &caller, route, params, references, region).await
}

/// `/v1/images/edits` 的表单：参数、参考图与（局部修改时的）蒙版。
struct EditForm {
    params: ImageParams,
    references: Vec<InputImage>,
    mask: Option<bytes::Bytes>,
}

/// 幂等键按调用方与接口区分（别人用同一个键拿不到你的结果），并带着这个请求内容的哈希
/// （参数与每张参考图的内容）：同一个键配不同的请求是 409。
fn idempotency_key(
    headers: &HeaderMap,
    caller: &Caller,
    route: &str,
    params: &ImageParams,
    references: &[InputImage],
) -> Result<Option<Key>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().map(str::trim).unwrap_or("");
    if key.is_empty() || key.len() > 255 {
        return Err(ApiError::InvalidRequest(
            "Idempotency-Key 必须是 1–255 个可见 ASCII 字符".into(),
        ));
    }
    let content = serde_json::json!({
        "prompt": params.prompt.trim(), "model": params.model, "n": params.n.unwrap_or(1),
        "size": params.size, "response_format": params.response_format, "quality": params.quality,
        "aspect_ratio": params.aspect_ratio, "image_size": params.image_size,
        "references": references.iter().map(|r| sha256_hex(&r.data)).collect::<Vec<_>>(),
    });
    Ok(Some(Key {
        scoped: format!("{}|{route}|{key}", caller.rate_limit_key()),
        request_hash: sha256_hex(content.to_string()),
    }))
}

/// 调用方要求异步（`Prefer: respond-async`）：先回 202 与任务 id，之后用 `GET /v1/images/tasks/{id}` 取结果。
fn prefers_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
}

async fn read_edit_form(mut multipart: Multipart, max_bytes: usize) -> Result<EditForm, ApiError> {
    let mut params = ImageParams::default();
    let mut references = Vec::new();
    let mut mask = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(crate::web::multipart_error)?
    {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "image" | "image[]" => {
                if references.len() == MAX_REFERENCES {
                    return Err(ApiError::InvalidRequest(format!(
                        "参考图最多 {MAX_REFERENCES} 张"
                    )));
                }
                let index = references.len() + 1;
                let what = format!("第 {index} 张参考图");
                let data = crate::web::read_field_capped(&mut field, max_bytes, &what).await?;
                references.push(accept_image(data, max_bytes, index).await?);
            }
            "mask" => {
                mask = Some(crate::web::read_field_capped(&mut field, max_bytes, "mask").await?);
            }
            _ => {
                let text = crate::web::read_text_field(&mut field, &name).await?;
                set_text_param(&mut params, &name, text)?;
            }
        }
    }
    Ok(EditForm {
        params,
        references,
        mask,
    })
}

fn set_text_param(params: &mut ImageParams, name: &str, value: String) -> Result<(), ApiError> {
    if name == "prompt" {
        params.prompt = value;
        return Ok(());
    }
    let value = Some(value);
    match name {
        "model" => params.model = value,
        "n" => {
            let n = value
                .as_deref()
                .unwrap_or("")
                .trim()
                .parse()
                .map_err(|_| ApiError::InvalidRequest("n 必须是 1 到 16 之间的整数".into()))?;
            params.n = Some(n);
        }
        "size" => params.size = value,
        "response_format" => params.response_format = value,
        "quality" => params.quality = value,
        "user" => params.user = value,
        "aspect_ratio" => params.aspect_ratio = value,
        "image_size" => params.image_size = value,
        "google_search" => params.google_search = value.map(|v| v == "true" || v == "1"),
        // 其他字段（background、output_format、input_fidelity……）与 Gemini 无关，忽略。
        _ => {}
    }
    Ok(())
}

/// 生成与编辑的共同流程：校验参数 → n 张并行经网关生成 → 保存 → 按 response_format 返回。
/// 带 `Prefer: respond-async` 时改为排进任务队列，立即回 202（见 `tasks.rs`）。
async fn respond(
    state: &AppState,
    headers: &HeaderMap,
    caller: &Caller,
    route: &str,
    params: ImageParams,
    references: Vec<InputImage>,
    region: Option<std::sync::Arc<crate::region::RegionEdit>>,
) -> Result<Response, ApiError> {
    // 带蒙版的编辑按接口名 `edits+mask` 另算幂等键，蒙版的内容也进了标记副本（哈希见下）。
    let mut hashed = references.clone();
    if let Some(edit) = &region {
        hashed.push(edit.marked.clone());
    }
    let idempotency_key = idempotency_key(headers, caller, route, &params, &hashed)?;
    let n = params.n.unwrap_or(1);
    let format = response_format(params.response_format.as_deref())?;
    let (aspect_ratio, image_size) = resolve_shape(&params)?;
    let config = state.config.load_full();
    let valid = Order {
        requester: Requester::Api {
            label: caller.client_label(&config),
            budget: caller.budget(&config),
            account: caller.owner(&config),
        },
        prompt: &params.prompt,
        count: n,
        references: references.len(),
        aspect_ratio,
        image_size,
        model: known_model(state, params.model.as_deref()),
        google_search: params.google_search.unwrap_or(false),
    }
    .validate()?;
    tracing::info!(
        user = params.user.as_deref().unwrap_or(""),
        n,
        references = references.len(),
        %aspect_ratio,
        %image_size,
        "图像请求"
    );
    // 已经完成过的同一请求：直接回放，不占额度（额度用完了也取得回来）。异步任务的键另有作用域，见下。
    if !prefers_async(headers) {
        if let Some(produced) = state.idempotency.replay(idempotency_key.as_ref()).await? {
            return images_response(state, headers, format, produced).await;
        }
    }
    let Admitted { request, ticket } = admit_valid(state, valid).await?;
    if prefers_async(headers) {
        let task = super::tasks::Order {
            request,
            references,
            count: n,
            caller: caller.rate_limit_key(),
            key: idempotency_key.map(|k| Key {
                scoped: format!("{}|task", k.scoped),
                ..k
            }),
        };
        return super::tasks::submit(state, task, ticket).await;
    }
    let spent = AtomicI64::new(0);
    let ran = state
        .idempotency
        .run(idempotency_key, || async {
            // 参考图只存一次（按内容哈希去重），n 张共用。
            let references = References::store(&state.storage, references)
                .await?
                .with_region(region);
            generate_n(state, request, references, n, &spent).await
        })
        .await;
    // 只有这一次真的生成的才计入额度（等来的别人的结果不算）；花费含失败而可能已计费的尝试。
    let spent = Micros(spent.into_inner());
    match &ran {
        Ok(ran) if ran.fresh => ticket.settle(ran.produced.len() as u64, spent),
        _ => ticket.settle(0, spent),
    }
    let mut response = images_response(state, headers, format, ran?.produced).await?;
    insert_cost(&mut response, &config, spent);
    Ok(response)
}

/// 响应头 `X-Factory-Cost`：这次请求按目录价格花了多少（显示币种的十进制数，含可能已计费的尝试）。
pub fn insert_cost(response: &mut Response, config: &crate::config::Config, spent: Micros) {
    let pricing = config.usage.pricing();
    if let Ok(value) = HeaderValue::from_str(&pricing.to_display(spent).decimal()) {
        response.headers_mut().insert(COST_HEADER, value);
    }
}

/// 这次请求的花费的响应头名。
pub const COST_HEADER: &str = "x-factory-cost";

/// n 张并行生成并保存；部分成功时返回成功的那些，全部失败时返回第一个错误。
async fn generate_n(
    state: &AppState,
    request: ImageRequest,
    references: References,
    n: u32,
    spent: &AtomicI64,
) -> Result<Vec<Produced>, ApiError> {
    let producer = state.producer();
    // 每张一个随机种子：n 张各不相同（真的 Gemini 本来就各不相同，演示上游靠它画出不同的图）。
    // 每张一存好就只留 id：图像字节随即放掉，不等同一请求里最慢的那张（16 张 20 MB 的图就是 320 MB）。
    let jobs = (0..n).map(|_| {
        let mut request = request.clone();
        request.seed = Some(rand::random::<i32>() & i32::MAX);
        let job = producer.produce(request, references.clone());
        async move {
            let result = job.await;
            spent.fetch_add(crate::produce::spent(&result).0, Ordering::Relaxed);
            match result {
                Ok(p) => Ok(Produced {
                    id: Some(p.record.id),
                    base64: None,
                    revised_prompt: p.image.text,
                    model: Some(p.image.model),
                }),
                // 生成了却没存下：图照样交给调用方（见 `images_response`），这时只能留在内存里。
                Err(crate::produce::ProduceFailed {
                    unsaved: Some(unsaved),
                    ..
                }) => Ok(Produced {
                    id: None,
                    base64: Some(unsaved.image.base64()),
                    revised_prompt: unsaved.image.text.clone(),
                    model: Some(unsaved.image.model.clone()),
                }),
                Err(failed) => Err(failed.error),
            }
        }
    });
    let mut produced = Vec::new();
    let mut first_error = None;
    for result in futures::future::join_all(jobs).await {
        match result {
            Ok(p) => produced.push(p),
            Err(error) => {
                tracing::warn!("有一张生成失败：{error}");
                first_error.get_or_insert(error);
            }
        }
    }
    match first_error {
        Some(e) if produced.is_empty() => Err(e),
        _ => Ok(produced),
    }
}

/// 宽高比与分辨率：扩展字段优先，其次由 size 推算；没指定分辨率但要求高质量时给 2K。
pub fn resolve_shape(params: &ImageParams) -> Result<(AspectRatio, ImageSize), ApiError> {
    let (mut aspect_ratio, mut image_size) = parse_size(params.size.as_deref())?;
    if let Some(a) = &params.aspect_ratio {
        aspect_ratio = a.parse().map_err(ApiError::InvalidRequest)?;
    }
    if let Some(s) = &params.image_size {
        image_size = s.parse().map_err(ApiError::InvalidRequest)?;
    } else if matches!(params.quality.as_deref(), Some("hd" | "high"))
        && image_size == ImageSize::K1
    {
        image_size = ImageSize::K2;
    }
    Ok((aspect_ratio, image_size))
}

/// 请求里的模型：OpenAI 自己的名字（`dall-e-3`、`gpt-image-1` 等，SDK 的默认值）按“没指定”处理，
/// 用上游自己的默认模型；其余的按模型路由——没有上游提供它时，网关回 400 并列出可用的模型。
pub fn known_model(_state: &AppState, requested: Option<&str>) -> Option<String> {
    let requested = requested?.trim();
    let openai_name = requested.is_empty()
        || requested.starts_with("dall-e")
        || requested.starts_with("gpt-image")
        || requested == "image";
    (!openai_name).then(|| requested.to_string())
}

/// OpenAI 的 `size`（"1024x1024"、"1536x1024"、"auto"……）映射到最接近的 Gemini 宽高比与分辨率档。
pub fn parse_size(size: Option<&str>) -> Result<(AspectRatio, ImageSize), ApiError> {
    crate::types::shape_from_size(size).map_err(ApiError::InvalidRequest)
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
