//! 上游适配器：每种协议方言一个实现，都藏在 `Upstream` 这一个 trait 后面。
//! 网关之外的代码不直接访问上游。

pub mod gemini;
mod openai_chat;
mod openai_images;

use super::{GatewayError, GeneratedImage, ImageRequest};
use crate::config::{UpstreamConfig, UpstreamKind};
use futures::future::BoxFuture;

/// 一个已配置好的上游。一次调用就是一次真实的 HTTP 尝试，不含重试。
pub trait Upstream: Send + Sync {
    fn name(&self) -> &str;

    fn generate<'a>(
        &'a self,
        http: &'a reqwest::Client,
        req: &'a ImageRequest,
    ) -> BoxFuture<'a, Result<GeneratedImage, GatewayError>>;
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

/// 列出一个上游提供的模型（设置页的“获取模型列表”）：Gemini 用 models.list，OpenAI 方言用 `GET /v1/models`。
pub async fn list_models(
    http: &reqwest::Client,
    config: &UpstreamConfig,
) -> Result<Vec<String>, GatewayError> {
    let name = config.name.as_str();
    let call = match config.kind {
        UpstreamKind::Gemini => {
            let call = http.get(format!("{}/models", gemini::api_base(&config.base_url)));
            if config.api_key.is_empty() {
                call
            } else {
                call.header("x-goog-api-key", &config.api_key)
            }
        }
        UpstreamKind::OpenaiImages | UpstreamKind::OpenaiChat => {
            OpenAiTarget::new(config).get(http, "/models")
        }
    };
    let response = call.send().await.map_err(|e| transport_error(name, e))?;
    let status = response.status().as_u16();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| GatewayError::BadResponse {
            upstream: name.to_string(),
            detail: format!("模型列表不是 JSON：{e}"),
        })?;
    if !(200..300).contains(&status) {
        return Err(GatewayError::Status {
            upstream: name.to_string(),
            status,
            google_status: String::new(),
            message: body["error"]["message"].as_str().unwrap_or("").to_string(),
            retry_after_secs: None,
        });
    }
    let models: Vec<String> = match config.kind {
        UpstreamKind::Gemini => body["models"]
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
            .collect(),
        _ => body["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["id"].as_str().map(str::to_string))
            .collect(),
    };
    Ok(models)
}

/// 传输层错误：连不上（请求没发出去）与连接中途断开（响应被截断）分开归类。
pub(crate) fn transport_error(upstream: &str, e: reqwest::Error) -> GatewayError {
    let upstream = upstream.to_string();
    if e.is_connect() {
        GatewayError::Connect {
            upstream,
            detail: root_cause(&e),
        }
    } else {
        GatewayError::BadResponse {
            upstream,
            detail: format!("连接中断：{}", root_cause(&e)),
        }
    }
}

/// reqwest 的错误信息嵌套很深，取最底层的原因给人看。
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// `Retry-After` 头（秒数形式）。
pub(crate) fn retry_after_secs(response: &reqwest::Response) -> Option<f64> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
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
    let body = super::progress::read_body(upstream, response, progress).await?;
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
