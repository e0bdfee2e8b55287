//! 上游适配器：每种协议方言一个实现，都藏在 `Upstream` 这一个 trait 后面。
//! 网关之外的代码不直接访问上游。

pub mod gemini;
pub mod http;
mod openai_chat;
mod openai_images;

use super::{GatewayError, GeneratedImage, ImageRequest};
use crate::config::{UpstreamConfig, UpstreamKind};
use futures::future::BoxFuture;
use http::{read_body, retry_after_secs, transport_error};

/// 一个已配置好的上游。一次调用就是一次真实的 HTTP 尝试，不含重试。
pub trait Upstream: Send + Sync {
    fn name(&self) -> &str;

    fn generate<'a>(
        &'a self,
        http: &'a reqwest::Client,
        req: &'a ImageRequest,
    ) -> BoxFuture<'a, Result<GeneratedImage, GatewayError>>;

    /// 这个上游提供的模型（设置页的“获取模型列表”）。
    fn list_models<'a>(
        &'a self,
        http: &'a reqwest::Client,
    ) -> BoxFuture<'a, Result<Vec<String>, GatewayError>>;
}

/// 按配置里的 `kind` 构造对应方言的适配器。
pub fn build(config: &UpstreamConfig) -> Result<Box<dyn Upstream>, GatewayError> {
    match config.kind {
        UpstreamKind::Gemini => Ok(Box::new(gemini::GeminiUpstream::new(config))),
        UpstreamKind::OpenaiImages => {
            Ok(Box::new(openai_images::OpenAiImagesUpstream::new(config)))
        }
        UpstreamKind::OpenaiChat => Ok(Box::new(openai_chat::OpenAiChatUpstream::new(config))),
    }
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
            message: body["error"]["message"].as_str().unwrap_or("").to_string(),
            retry_after_secs: None,
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
}

impl OpenAiTarget {
    pub fn new(config: &UpstreamConfig) -> Self {
        let trimmed = config.base_url.trim_end_matches('/');
        // 末尾已有 `/v1` 时照用，否则补上。
        let api_base = if trimmed.ends_with("/v1") {
            trimmed.to_string()
        } else {
            format!("{trimmed}/v1")
        };
        Self {
            name: config.name.clone(),
            api_base,
            api_key: config.api_key.clone(),
            model: config.model.clone(),
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
        read_openai_response(&self.name, response, progress).await
    }
}

async fn read_openai_response(
    upstream: &str,
    response: reqwest::Response,
    progress: &super::Progress,
) -> Result<serde_json::Value, GatewayError> {
    let status = response.status().as_u16();
    let retry_after_secs = retry_after_secs(&response);
    let body = read_body(upstream, response, progress).await?;
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
    let message = error["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    if code == "content_policy_violation" {
        return Err(GatewayError::Safety {
            upstream: upstream.to_string(),
            reason: message,
        });
    }
    Err(GatewayError::Status {
        upstream: upstream.to_string(),
        status,
        google_status: code,
        message,
        retry_after_secs,
    })
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
