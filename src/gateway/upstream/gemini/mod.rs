//! Gemini 原生协议适配器：`POST {base}/v1beta/models/{model}:generateContent`。

pub mod wire;

use super::http::{read_body, refuse_redirect, retry_after_secs, send_json, tidy, transport_error};
use super::{fetch_model_list, Target};
use crate::gateway::{GatewayError, GeneratedImage, ImageRequest};
use bytes::Bytes;
use wire::*;

pub struct GeminiUpstream {
    name: String,
    /// 形如 `https://host/v1beta`，不带结尾斜杠。
    api_base: String,
    api_key: String,
    model: String,
    max_response_bytes: usize,
}

impl GeminiUpstream {
    pub fn new(target: Target<'_>) -> Self {
        let config = target.config;
        Self {
            name: config.name.clone(),
            api_base: api_base(&config.base_url),
            api_key: config.api_key.clone(),
            model: config.model.clone(),
            max_response_bytes: target.max_response_bytes,
        }
    }

    fn endpoint(&self, model: &str) -> String {
        format!("{}/models/{model}:generateContent", self.api_base)
    }

    pub(super) async fn call(
        &self,
        http: &reqwest::Client,
        req: &ImageRequest,
    ) -> Result<GeneratedImage, GatewayError> {
        // 用哪个模型由策略流水线定好（按模型路由、备选模型），写在这个上游的配置里。
        let model = self.model.as_str();
        let mut call = http.post(self.endpoint(model));
        if !self.api_key.is_empty() {
            call = call.header("x-goog-api-key", &self.api_key);
        }
        let call = send_json(call, &build_request(req), &req.progress);
        let response = call
            .send()
            .await
            .map_err(|e| transport_error(&self.name, e))?;
        refuse_redirect(&self.name, &response)?;
        let status = response.status();
        let retry_after = retry_after_secs(&response);
        let body = read_body(&self.name, response, &req.progress, self.max_response_bytes).await?;

        if !status.is_success() {
            return Err(self.status_error(status.as_u16(), &body, retry_after));
        }
        let parsed: GenerateContentResponse =
            serde_json::from_slice(&body).map_err(|e| GatewayError::BadResponse {
                upstream: self.name.clone(),
                detail: format!("JSON 解析失败：{e}"),
            })?;
        // 原始响应体（大图时几十 MB）解析完就放掉，不陪着解码。
        drop(body);
        self.extract_image(parsed, model)
    }

    fn status_error(&self, status: u16, body: &[u8], retry_after: Option<f64>) -> GatewayError {
        let (google_status, message, retry_info, daily_quota) =
            match serde_json::from_slice::<ErrorBody>(body) {
                Ok(err) => {
                    let (delay, daily) = (err.retry_delay_secs(), err.daily_quota());
                    (err.error.status, tidy(&err.error.message), delay, daily)
                }
                Err(_) => (
                    String::new(),
                    tidy(&String::from_utf8_lossy(&body[..body.len().min(1000)])),
                    None,
                    None,
                ),
            };
        GatewayError::Status {
            upstream: self.name.clone(),
            status,
            google_status,
            message,
            retry_after_secs: retry_after.or(retry_info),
            daily_quota,
        }
    }

    /// HTTP 200 不等于成功：解出一张图才算。跳过 `thought: true` 的中间草图；有几张正式图时取像素最多的一张
    /// （一样大时取后面的），其余的放进 `extras`（已经付过钱，另存进图库）。
    fn extract_image(
        &self,
        response: GenerateContentResponse,
        model: &str,
    ) -> Result<GeneratedImage, GatewayError> {
        let upstream = self.name.clone();
        let feedback = response.prompt_feedback.unwrap_or_default();
        // 提示词阶段的拦截（还没有生成）：原因后面接上游的说明。
        if let Some(reason) = feedback.block_reason {
            return Err(GatewayError::Safety {
                upstream,
                reason: with_message(reason, feedback.block_reason_message),
                before_generation: true,
            });
        }
        let Some(candidate) = response.candidates.into_iter().next() else {
            return Err(GatewayError::Safety {
                upstream,
                reason: with_message(
                    "上游没有返回任何候选结果".into(),
                    feedback.block_reason_message,
                ),
                before_generation: true,
            });
        };
        let finish = candidate.finish_reason.unwrap_or_default();
        let finish_message = candidate.finish_message;
        let sources = web_sources(candidate.grounding_metadata);
        let (images, texts) = final_parts(candidate.content);
        let text = (!texts.is_empty()).then(|| texts.join("\n"));
        if images.is_empty() {
            return Err(no_image(upstream, finish, finish_message, text));
        }
        let mut decoded = Vec::with_capacity(images.len());
        for blob in images {
            let data = Bytes::from(decode_image(&upstream, &blob.data)?);
            let pixels = crate::decode::image_size(&data, None)
                .map(|(w, h)| u64::from(w) * u64::from(h))
                .unwrap_or(0);
            decoded.push((
                pixels,
                crate::gateway::InputImage {
                    mime: blob.mime_type,
                    data,
                },
            ));
        }
        let largest = decoded
            .iter()
            .enumerate()
            .max_by_key(|(i, (pixels, _))| (*pixels, *i))
            .map(|(i, _)| i)
            .unwrap_or(0);
        let (_, chosen) = decoded.remove(largest);
        let extras = decoded.into_iter().map(|(_, image)| image).collect();
        Ok(GeneratedImage {
            extras,
            mime: chosen.mime,
            data: chosen.data,
            text,
            upstream,
            model: model.to_string(),
            attempts: Vec::new(),
            sources,
            size_mismatch: None,
        })
    }
}

/// 拒绝的原因后面接上游的说明（说明为空时只有原因）。
fn with_message(reason: String, message: Option<String>) -> String {
    match message {
        Some(m) if !m.trim().is_empty() => format!("{reason}：{}", tidy(&m)),
        _ => reason,
    }
}

/// 联网搜索用到的网页（标题、地址），只留可以点开的 http(s) 链接。
fn web_sources(grounding: Option<GroundingMetadata>) -> Vec<(String, String)> {
    grounding
        .map(|g| g.grounding_chunks)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| c.web)
        .filter(|w| crate::types::is_web_link(&w.uri))
        .map(|w| (w.title, w.uri))
        .collect()
}

/// 候选结果里的正式内容（跳过 `thought: true` 的中间草图）：每张图，以及所有非空的文字段。
fn final_parts(content: Option<Content>) -> (Vec<Blob>, Vec<String>) {
    let mut images: Vec<Blob> = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    for part in content.map(|c| c.parts).unwrap_or_default() {
        if part.thought == Some(true) {
            continue;
        }
        if let Some(t) = part.text.filter(|t| !t.trim().is_empty()) {
            texts.push(t);
        }
        if let Some(blob) = part
            .inline_data
            .filter(|b| b.mime_type.starts_with("image/"))
        {
            images.push(blob);
        }
    }
    (images, texts)
}

/// 没有图时的错误：因安全原因结束的是 `Safety`（已经生成过），否则是 `NoImage`（附上游说的话）。
fn no_image(
    upstream: String,
    finish: String,
    finish_message: Option<String>,
    text: Option<String>,
) -> GatewayError {
    if SAFETY_FINISH_REASONS.contains(&finish.as_str()) {
        return GatewayError::Safety {
            upstream,
            reason: with_message(finish, finish_message),
            before_generation: false,
        };
    }
    let reason = if finish.is_empty() || finish == "STOP" {
        "只返回了文字".to_string()
    } else {
        finish
    };
    GatewayError::NoImage {
        upstream,
        reason: with_message(reason, finish_message),
        text,
    }
}

/// 解码图像的 base64。8 MB 的图是 11 MB 的 base64：用 SIMD 解码。先按规范的标准 base64（要求规范的填充）；
/// 不是的话（有的代理回 URL 安全字母表），按 protobuf 的规则再试其他写法。
fn decode_image(upstream: &str, data: &str) -> Result<Vec<u8>, GatewayError> {
    match base64_simd::STANDARD.decode_to_vec(data.as_bytes()) {
        Ok(data) => Ok(data),
        Err(e) => match decode_bytes(data) {
            Some(data) => Ok(data),
            None => Err(GatewayError::BadResponse {
                upstream: upstream.to_string(),
                detail: format!("图像的 base64 无法解码：{e}"),
            }),
        },
    }
}

impl GeminiUpstream {
    /// Gemini 的 models.list：`GET {api_base}/models`，只留支持 generateContent 的。
    pub async fn list_models(&self, http: &reqwest::Client) -> Result<Vec<String>, GatewayError> {
        let mut call = http.get(format!("{}/models", self.api_base));
        if !self.api_key.is_empty() {
            call = call.header("x-goog-api-key", &self.api_key);
        }
        let body = fetch_model_list(&self.name, call).await?;
        Ok(body["models"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| {
                m["supportedGenerationMethods"]
                    .as_array()
                    .is_none_or(|ms| ms.iter().any(|x| x == "generateContent"))
            })
            .filter_map(|m| m["name"].as_str())
            .map(|n| n.trim_start_matches("models/").to_string())
            .collect())
    }
}

/// 上游地址末尾已有 `/v1beta` 或 `/v1` 时照用，否则补上 `/v1beta`。
pub fn api_base(base_url: &str) -> String {
    let trimmed = base_url.trim_end_matches('/');
    if super::ends_with_version(trimmed) {
        trimmed.to_string()
    } else {
        format!(
            "{trimmed}{}",
            crate::config::UpstreamKind::Gemini.default_version_path()
        )
    }
}

/// 把统一请求翻译成 Gemini 的 `generateContent` 请求体。
pub fn build_request(req: &ImageRequest) -> GenerateContentRequest {
    let references = req
        .references
        .iter()
        .map(|img| Blob {
            mime_type: img.mime.clone(),
            data: base64_simd::STANDARD.encode_to_string(&img.data),
        })
        .collect();
    let request = GenerateContentRequest::image_request(
        &req.prompt,
        references,
        req.aspect_ratio.as_str(),
        req.image_size.as_str(),
        req.seed,
    );
    if req.google_search {
        request.with_google_search()
    } else {
        request
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamConfig;

    #[test]
    fn api_base_respects_explicit_versions() {
        assert_eq!(
            api_base("https://p.example.com"),
            "https://p.example.com/v1beta"
        );
        assert_eq!(
            api_base("https://p.example.com/"),
            "https://p.example.com/v1beta"
        );
        assert_eq!(
            api_base("https://p.example.com/v1"),
            "https://p.example.com/v1"
        );
        assert_eq!(
            api_base("https://p.example.com/g/v1beta/"),
            "https://p.example.com/g/v1beta"
        );
    }

    fn upstream() -> GeminiUpstream {
        GeminiUpstream::new(Target {
            config: &UpstreamConfig {
                name: "t".into(),
                base_url: "http://127.0.0.1:9".into(),
                ..Default::default()
            },
            max_response_bytes: 1 << 20,
        })
    }

    fn response(json: serde_json::Value) -> GenerateContentResponse {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn thought_images_are_skipped_and_final_image_taken() {
        let r = response(serde_json::json!({"candidates":[{"content":{"parts":[
            {"inlineData":{"mimeType":"image/png","data":"AAAA"},"thought":true},
            {"text":"好的"},
            {"inlineData":{"mimeType":"image/png","data":"AQID"}}
        ]},"finishReason":"STOP"}]}));
        let img = upstream().extract_image(r, "m").unwrap();
        assert_eq!(&img.data[..], &[1, 2, 3]);
        assert_eq!(img.text.as_deref(), Some("好的"));
    }

    #[test]
    fn safety_and_text_only_are_distinct_errors() {
        let safety = response(serde_json::json!({"candidates":[{"finishReason":"IMAGE_SAFETY"}]}));
        assert!(matches!(
            upstream().extract_image(safety, "m"),
            Err(GatewayError::Safety { .. })
        ));
        let blocked = response(serde_json::json!({"promptFeedback":{"blockReason":"SAFETY"}}));
        assert!(matches!(
            upstream().extract_image(blocked, "m"),
            Err(GatewayError::Safety { .. })
        ));
        let empty = response(serde_json::json!({"candidates":[]}));
        assert!(matches!(
            upstream().extract_image(empty, "m"),
            Err(GatewayError::Safety { .. })
        ));
        let text = response(
            serde_json::json!({"candidates":[{"content":{"parts":[{"text":"不画"}]},"finishReason":"STOP"}]}),
        );
        assert!(matches!(
            upstream().extract_image(text, "m"),
            Err(GatewayError::NoImage { .. })
        ));
        let no_image = response(serde_json::json!({"candidates":[{"finishReason":"NO_IMAGE"}]}));
        assert!(
            matches!(upstream().extract_image(no_image, "m"), Err(GatewayError::NoImage { reason, .. }) if reason == "NO_IMAGE")
        );
    }

    #[test]
    fn retry_delay_is_read_from_error_details() {
        let body: ErrorBody = serde_json::from_value(serde_json::json!({"error":{
            "code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED",
            "details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}))
        .unwrap();
        assert_eq!(body.retry_delay_secs(), Some(1.5));
    }
}
