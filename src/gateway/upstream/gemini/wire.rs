//! Gemini `generateContent` 的线上格式（请求与响应），网关适配器与演示上游共用。
//!
//! 字段名与 Google 官方 REST 文档一致（camelCase）；未用到的字段省略，未知字段忽略。

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest {
    pub contents: Vec<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<GenerationConfig>,
}

impl GenerateContentRequest {
    /// 一条用户消息：提示词 + 参考图，要求同时返回文字与图像，并指定宽高比与分辨率。
    pub fn image_request(
        prompt: &str,
        references: Vec<Blob>,
        aspect_ratio: &str,
        image_size: &str,
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
            }),
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
    pub inline_data: Option<Blob>,
    /// 为 true 时是模型的“思考”中间产物（包括中间草图），不是最终答案。
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    pub mime_type: String,
    /// base64 编码的字节。
    pub data: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_modalities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_config: Option<ImageConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspect_ratio: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_feedback: Option<PromptFeedback>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    #[serde(default)]
    pub index: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_reason: Option<String>,
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
            d.get("retryDelay")?
                .as_str()?
                .strip_suffix('s')?
                .parse::<f64>()
                .ok()
        })
    }
}

/// 判定为安全拦截的 `finishReason`。
pub const SAFETY_FINISH_REASONS: [&str; 6] = [
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "PROHIBITED_CONTENT",
    "SAFETY",
    "BLOCKLIST",
    "SPII",
];
