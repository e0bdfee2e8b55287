//! Gemini `generateContent` 的线上格式（请求与响应），网关适配器与演示上游共用。
//!
//! 发出的字段名与 Google 官方 REST 文档一致（camelCase）；未用到的字段省略，未知字段忽略。
//! 读入时两种写法都认：Google 的服务器按 protobuf 的 JSON 规则解析，每个字段的 lowerCamelCase 与原始的
//! snake_case 名字都接受（官方 Python SDK 的编辑请求就发 `mime_type`），有的反向代理也以 snake_case 回答。
//! 所以每个多词字段都带着 `alias = "snake_case 名"`。

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest {
    pub contents: Vec<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(alias = "generation_config")]
    pub generation_config: Option<GenerationConfig>,
    /// 工具：联网搜索时是 `[{"google_search": {}}]`。
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<serde_json::Value>,
}

impl GenerateContentRequest {
    /// 加上 Google 搜索接地（联网搜索）。
    pub fn with_google_search(mut self) -> Self {
        self.tools.push(serde_json::json!({"google_search": {}}));
        self
    }

    /// 请求里有没有要联网搜索（演示上游据此回答接地信息）。
    pub fn wants_google_search(&self) -> bool {
        self.tools
            .iter()
            .any(|t| t.get("google_search").is_some() || t.get("googleSearch").is_some())
    }

    /// 一条用户消息：提示词 + 参考图，要求同时返回文字与图像，并指定宽高比与分辨率。
    pub fn image_request(
        prompt: &str,
        references: Vec<Blob>,
        aspect_ratio: &str,
        image_size: &str,
        seed: Option<i32>,
    ) -> Self {
        let mut parts = vec![Part {
            text: Some(prompt.to_string()),
            ..Default::default()
        }];
        parts.extend(references.into_iter().map(|blob| Part {
            inline_data: Some(blob),
            ..Default::default()
        }));
        Self {
            contents: vec![Content {
                role: Some("user".into()),
                parts,
            }],
            generation_config: Some(GenerationConfig {
                response_modalities: vec!["TEXT".into(), "IMAGE".into()],
                image_config: Some(ImageConfig {
                    aspect_ratio: Some(aspect_ratio.into()),
                    image_size: Some(image_size.into()),
                }),
                seed,
            }),
            tools: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default)]
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(alias = "inline_data")]
    pub inline_data: Option<Blob>,
    /// 为 true 时是模型的“思考”中间产物（包括中间草图），不是最终答案。
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    #[serde(alias = "mime_type")]
    pub mime_type: String,
    /// base64 编码的字节。
    pub data: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[serde(alias = "response_modalities")]
    pub response_modalities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(alias = "image_config")]
    pub image_config: Option<ImageConfig>,
    /// 随机种子（int32）。
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(alias = "aspect_ratio")]
    pub aspect_ratio: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(alias = "image_size")]
    pub image_size: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(alias = "prompt_feedback")]
    pub prompt_feedback: Option<PromptFeedback>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(alias = "model_version")]
    pub model_version: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(alias = "finish_reason")]
    pub finish_reason: Option<String>,
    /// 上游对 `finishReason` 的说明（例如 “Model failed to generate content due to internal error.”）。
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(alias = "finish_message")]
    pub finish_message: Option<String>,
    #[serde(default)]
    pub index: u32,
    /// 联网搜索时模型引用的来源。
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(alias = "grounding_metadata")]
    pub grounding_metadata: Option<GroundingMetadata>,
}

/// 接地信息：`groundingChunks[].web.{uri,title}`（其余字段不用）。
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroundingMetadata {
    #[serde(default)]
    #[serde(alias = "grounding_chunks")]
    pub grounding_chunks: Vec<GroundingChunk>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[serde(alias = "web_search_queries")]
    pub web_search_queries: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GroundingChunk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web: Option<WebSource>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WebSource {
    #[serde(default)]
    pub uri: String,
    #[serde(default)]
    pub title: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(alias = "block_reason")]
    pub block_reason: Option<String>,
    /// 上游对拦截的说明。
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(alias = "block_reason_message")]
    pub block_reason_message: Option<String>,
}

/// Google API 的错误体：`{"error":{"code","message","status","details"}}`。
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorStatus,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ErrorStatus {
    pub code: u16,
    pub message: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<serde_json::Value>,
}

impl ErrorBody {
    pub fn new(code: u16, status: &str, message: &str) -> Self {
        Self {
            error: ErrorStatus {
                code,
                message: message.into(),
                status: status.into(),
                details: Vec::new(),
            },
        }
    }

    /// 429 的额度种类：`QuotaFailure` 的 `violations[].quotaId` 里有 `PerDay`/`Daily` 是每日配额（`Some(true)`），
    /// 有别的（`PerMinute` 等）是短时间的限流（`Some(false)`），没有这项说明为 `None`。
    /// （Google 自己的 gemini-cli 也这样分：说明文字里的“billing”两种都有，不能凭它判断。）
    pub fn daily_quota(&self) -> Option<bool> {
        let ids: Vec<String> = self
            .error
            .details
            .iter()
            .filter(|d| {
                d.get("@type")
                    .and_then(|t| t.as_str())
                    .is_some_and(|t| t.ends_with("google.rpc.QuotaFailure"))
            })
            .filter_map(|d| d.get("violations")?.as_array().cloned())
            .flatten()
            .filter_map(|v| {
                v.get("quotaId")
                    .or_else(|| v.get("quota_id"))?
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        if ids.is_empty() {
            return None;
        }
        Some(
            ids.iter()
                .any(|id| id.contains("PerDay") || id.contains("Daily")),
        )
    }

    /// `RetryInfo.retryDelay`（例如 "1s"、"0.5s"）换算成秒。
    pub fn retry_delay_secs(&self) -> Option<f64> {
        self.error.details.iter().find_map(|d| {
            let is_retry_info = d
                .get("@type")
                .and_then(|t| t.as_str())
                .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"));
            if !is_retry_info {
                return None;
            }
            d.get("retryDelay")
                .or_else(|| d.get("retry_delay"))?
                .as_str()?
                .strip_suffix('s')?
                .parse::<f64>()
                .ok()
        })
    }
}

/// protobuf 的 JSON 规则里，bytes 字段（`inlineData.data`）可以是标准或 URL 安全字母表的 base64，有无填充都行
/// （官方 Python SDK 发的就是 URL 安全的）。依次试这几种。
pub fn decode_bytes(data: &str) -> Option<Vec<u8>> {
    let data = data.trim().as_bytes();
    [
        base64_simd::STANDARD,
        base64_simd::URL_SAFE,
        base64_simd::STANDARD_NO_PAD,
        base64_simd::URL_SAFE_NO_PAD,
    ]
    .iter()
    .find_map(|engine| engine.decode_to_vec(data).ok())
}

/// 判定为安全拦截的 `finishReason`：不重试（同一个提示词再试多半还是被拦，每次都可能计费）。
/// `RECITATION`（生成的内容与受版权保护的材料太像）也在其中。
pub const SAFETY_FINISH_REASONS: [&str; 8] = [
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "PROHIBITED_CONTENT",
    "SAFETY",
    "BLOCKLIST",
    "SPII",
    "RECITATION",
    "IMAGE_RECITATION",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_of_every_field_are_read() {
        let camel: GenerateContentResponse = serde_json::from_value(serde_json::json!({
            "candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "AQID"}}]},
                "finishReason": "STOP",
                "groundingMetadata": {"groundingChunks": [{"web": {"uri": "https://a", "title": "A"}}], "webSearchQueries": ["q"]}}],
            "promptFeedback": {"blockReason": "SAFETY"}, "modelVersion": "m"}))
        .unwrap();
        let snake: GenerateContentResponse = serde_json::from_value(serde_json::json!({
            "candidates": [{"content": {"parts": [{"inline_data": {"mime_type": "image/png", "data": "AQID"}}]},
                "finish_reason": "STOP",
                "grounding_metadata": {"grounding_chunks": [{"web": {"uri": "https://a", "title": "A"}}], "web_search_queries": ["q"]}}],
            "prompt_feedback": {"block_reason": "SAFETY"}, "model_version": "m"}))
        .unwrap();
        for r in [camel, snake] {
            let part = &r.candidates[0].content.as_ref().unwrap().parts[0];
            assert_eq!(part.inline_data.as_ref().unwrap().mime_type, "image/png");
            assert_eq!(r.candidates[0].finish_reason.as_deref(), Some("STOP"));
            assert_eq!(
                r.prompt_feedback.unwrap().block_reason.as_deref(),
                Some("SAFETY")
            );
            assert_eq!(r.model_version.as_deref(), Some("m"));
            let grounding = r.candidates[0].grounding_metadata.as_ref().unwrap();
            assert_eq!(
                grounding.grounding_chunks[0].web.as_ref().unwrap().uri,
                "https://a"
            );
            assert_eq!(grounding.web_search_queries, ["q"]);
        }
        let request: GenerateContentRequest = serde_json::from_value(serde_json::json!({
            "contents": [{"parts": [{"inlineData": {"data": "AQID", "mime_type": "image/png"}}]}],
            "generation_config": {"response_modalities": ["IMAGE"],
                "image_config": {"aspect_ratio": "16:9", "image_size": "2K"}}}))
        .unwrap();
        let config = request.generation_config.unwrap().image_config.unwrap();
        assert_eq!(config.aspect_ratio.as_deref(), Some("16:9"));
        assert_eq!(config.image_size.as_deref(), Some("2K"));
        // 发出去的仍是 camelCase。
        let sent = serde_json::to_string(&GenerateContentRequest::image_request(
            "p",
            vec![],
            "1:1",
            "1K",
            Some(7),
        ))
        .unwrap();
        assert!(
            sent.contains("generationConfig")
                && sent.contains("imageSize")
                && !sent.contains("image_size"),
            "{sent}"
        );
    }

    #[test]
    fn bytes_are_read_in_either_base64_alphabet() {
        let raw = [0xfbu8, 0xff, 0xfe, 0x01];
        for text in ["+//+AQ==", "-__-AQ==", "+//+AQ", "-__-AQ"] {
            assert_eq!(decode_bytes(text).as_deref(), Some(&raw[..]), "{text}");
        }
        assert_eq!(decode_bytes("不是 base64"), None);
    }
}
