//! 上游适配器：每种协议方言一个实现，都藏在 `Upstream` 这一个 trait 后面。
//! 网关之外的代码不直接访问上游。

mod doubao;
pub mod gemini;
pub mod http;
mod openai_chat;
mod openai_images;

use super::{GatewayError, GeneratedImage, ImageRequest};
use crate::config::{UpstreamConfig, UpstreamKind};
use http::{read_body, refuse_redirect, retry_after_secs, tidy, transport_error};

/// 一个已配置好的上游（按 `kind` 选的方言）。一次调用就是一次真实的 HTTP 尝试，不含重试。
/// 分派只写在这里：每种方言只需有 `call`（生成一张）与 `list_models`（设置页的“获取模型列表”）。
pub enum Adapter {
    Gemini(gemini::GeminiUpstream),
    OpenaiImages(openai_images::OpenAiImagesUpstream),
    OpenaiChat(openai_chat::OpenAiChatUpstream),
    Doubao(doubao::DoubaoUpstream),
}

impl Adapter {
    /// 生成一张图（一次 HTTP 尝试）。
    pub async fn generate(
        &self,
        http: &reqwest::Client,
        req: &ImageRequest,
    ) -> Result<GeneratedImage, GatewayError> {
        match self {
            Adapter::Gemini(a) => a.call(http, req).await,
            Adapter::OpenaiImages(a) => a.call(http, req).await,
            Adapter::OpenaiChat(a) => a.call(http, req).await,
            Adapter::Doubao(a) => a.call(http, req).await,
        }
    }

    /// 这个上游提供的模型。
    pub async fn list_models(&self, http: &reqwest::Client) -> Result<Vec<String>, GatewayError> {
        match self {
            Adapter::Gemini(a) => a.list_models(http).await,
            Adapter::OpenaiImages(a) => a.target.list_models(http).await,
            Adapter::OpenaiChat(a) => a.target.list_models(http).await,
            Adapter::Doubao(_) => Ok(doubao::models()),
        }
    }
}

/// 按配置里的 `kind` 构造对应方言的适配器。`max_response_bytes` 是上游响应体的上限。
pub fn build(config: &UpstreamConfig, max_response_bytes: usize) -> Result<Adapter, GatewayError> {
    let target = Target {
        config,
        max_response_bytes,
    };
    Ok(match config.kind {
        UpstreamKind::Gemini => Adapter::Gemini(gemini::GeminiUpstream::new(target)),
        UpstreamKind::OpenaiImages => {
            Adapter::OpenaiImages(openai_images::OpenAiImagesUpstream::new(target))
        }
        UpstreamKind::OpenaiChat => {
            Adapter::OpenaiChat(openai_chat::OpenAiChatUpstream::new(target))
        }
        UpstreamKind::Doubao => Adapter::Doubao(doubao::DoubaoUpstream::new(target)),
    })
}

/// 地址末尾已经是版本路径（`/v1`、`/v1beta`、`/api/v3`）：每种方言都照用，不再补。
pub(crate) fn ends_with_version(trimmed: &str) -> bool {
    UpstreamKind::ALL
        .iter()
        .any(|k| trimmed.ends_with(k.default_version_path()))
}

/// 构造适配器所需的：上游的配置与响应体上限。
#[derive(Clone, Copy)]
pub struct Target<'a> {
    pub config: &'a UpstreamConfig,
    pub max_response_bytes: usize,
}

/// 取一个模型列表接口的 JSON；非 2xx 时按上游错误返回。
pub(crate) async fn fetch_model_list(
    upstream: &str,
    call: reqwest::RequestBuilder,
) -> Result<serde_json::Value, GatewayError> {
    let response = call
        .send()
        .await
        .map_err(|e| transport_error(upstream, e))?;
    refuse_redirect(upstream, &response)?;
    let status = response.status().as_u16();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| GatewayError::BadResponse {
            upstream: upstream.to_string(),
            detail: format!("模型列表不是 JSON：{e}"),
        })?;
    if !(200..300).contains(&status) {
        return Err(GatewayError::Status {
            upstream: upstream.to_string(),
            status,
            google_status: String::new(),
            message: tidy(body["error"]["message"].as_str().unwrap_or("")),
            retry_after_secs: None,
            daily_quota: None,
        });
    }
    Ok(body)
}

/// 两种 OpenAI 方言共用的连接信息：名称、`…/v1` 前缀、Bearer 密钥、默认模型。
pub(crate) struct OpenAiTarget {
    pub name: String,
    api_base: String,
    api_key: String,
    pub model: String,
    max_response_bytes: usize,
}

impl OpenAiTarget {
    pub fn new(target: Target<'_>) -> Self {
        let config = target.config;
        let trimmed = config.base_url.trim_end_matches('/');
        // 末尾已有版本路径时照用，否则补上 `/v1`。
        let api_base = if ends_with_version(trimmed) {
            trimmed.to_string()
        } else {
            format!(
                "{trimmed}{}",
                crate::config::UpstreamKind::OpenaiImages.default_version_path()
            )
        };
        Self {
            name: config.name.clone(),
            api_base,
            api_key: config.api_key.clone(),
            model: config.model.clone(),
            max_response_bytes: target.max_response_bytes,
        }
    }

    /// `GET {api_base}{path}`，带上 Bearer 密钥（若有）。
    pub fn get(&self, http: &reqwest::Client, path: &str) -> reqwest::RequestBuilder {
        let call = http.get(format!("{}{path}", self.api_base));
        if self.api_key.is_empty() {
            call
        } else {
            call.bearer_auth(&self.api_key)
        }
    }

    /// `POST {api_base}{path}`，带上 Bearer 密钥（若有）。
    pub fn post(&self, http: &reqwest::Client, path: &str) -> reqwest::RequestBuilder {
        let call = http.post(format!("{}{path}", self.api_base));
        if self.api_key.is_empty() {
            call
        } else {
            call.bearer_auth(&self.api_key)
        }
    }

    /// OpenAI 方言的模型列表：`GET {api_base}/models` 的 `data[].id`。
    pub async fn list_models(&self, http: &reqwest::Client) -> Result<Vec<String>, GatewayError> {
        let body = fetch_model_list(&self.name, self.get(http, "/models")).await?;
        Ok(body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect())
    }

    /// 发送并读完响应：非 2xx 时解析 OpenAI 错误体（内容审核拦截单独归为安全拦截）。
    pub async fn send(
        &self,
        call: reqwest::RequestBuilder,
        progress: &super::Progress,
    ) -> Result<serde_json::Value, GatewayError> {
        let response = call
            .send()
            .await
            .map_err(|e| transport_error(&self.name, e))?;
        refuse_redirect(&self.name, &response)?;
        read_openai_response(&self.name, response, progress, self.max_response_bytes).await
    }
}

pub(crate) async fn read_openai_response(
    upstream: &str,
    response: reqwest::Response,
    progress: &super::Progress,
    max_bytes: usize,
) -> Result<serde_json::Value, GatewayError> {
    let status = response.status().as_u16();
    let retry_after_secs = retry_after_secs(&response);
    let body = read_body(upstream, response, progress, max_bytes).await?;
    let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&body);
    if (200..300).contains(&status) {
        return parsed.map_err(|e| GatewayError::BadResponse {
            upstream: upstream.to_string(),
            detail: format!("JSON 解析失败：{e}"),
        });
    }
    let error = parsed
        .ok()
        .and_then(|v| v.get("error").cloned())
        .unwrap_or_default();
    let code = error["code"]
        .as_str()
        .or(error["type"].as_str())
        .unwrap_or("")
        .to_string();
    let message = tidy(
        &error["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(1000)]).into_owned()),
    );
    // OpenAI 的内容审核（DALL·E 的 content_policy_violation、gpt-image 的 moderation_blocked）与方舟的敏感内容
    // 错误码都是安全拦截。拦在输入上的（方舟的 InputText…/InputImage…、OpenAI 的 moderation_stage = "input"）
    // 还没有生成，不算可能已计费。
    if code == "content_policy_violation"
        || code == "moderation_blocked"
        || code.contains("SensitiveContentDetected")
        || code.contains("RiskDetection")
    {
        let before_generation = code.starts_with("InputText")
            || code.starts_with("InputImage")
            || error["moderation_details"]["moderation_stage"].as_str() == Some("input");
        return Err(GatewayError::Safety {
            upstream: upstream.to_string(),
            reason: message,
            before_generation,
        });
    }
    Err(GatewayError::Status {
        upstream: upstream.to_string(),
        status,
        google_status: code,
        message,
        retry_after_secs,
        daily_quota: None,
    })
}

/// 解码响应里的 `b64_json`，按内容认出图像格式：（MIME, 字节）。
pub(crate) fn decode_b64_image(
    upstream: &str,
    b64: &str,
) -> Result<(String, bytes::Bytes), GatewayError> {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| GatewayError::BadResponse {
            upstream: upstream.to_string(),
            detail: format!("图像的 base64 无法解码：{e}"),
        })?;
    let mime = image::guess_format(&data)
        .map(|f| f.to_mime_type().to_string())
        .unwrap_or_else(|_| "image/png".into());
    Ok((mime, data.into()))
}

/// 解码 `data:<mime>;base64,<数据>`。
pub(crate) fn decode_data_url(
    upstream: &str,
    url: &str,
) -> Result<(String, bytes::Bytes), GatewayError> {
    use base64::Engine;
    let bad = |detail: &str| GatewayError::BadResponse {
        upstream: upstream.to_string(),
        detail: detail.to_string(),
    };
    let rest = url
        .strip_prefix("data:")
        .ok_or_else(|| bad("图像不是 data URL"))?;
    let (mime, data) = rest
        .split_once(";base64,")
        .ok_or_else(|| bad("data URL 不是 base64 编码"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| bad(&format!("图像的 base64 无法解码：{e}")))?;
    Ok((mime.to_string(), bytes.into()))
}
