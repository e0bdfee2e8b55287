//! 豆包（火山方舟 Seedream）方言：`POST {base}/images/generations`（base 默认补 `/api/v3`），Bearer 密钥，JSON：
//! `model`、`prompt`、`size`（这里给“宽x高”，带上宽高比）、`image`（参考图的 data URL，一张时是字符串，几张时是数组）、
//! `response_format: b64_json`、`watermark: false`、`sequential_image_generation: disabled`、`seed`。
//! 错误体 `{"error":{"code","message"}}`：敏感内容的错误码（`…SensitiveContentDetected`、`…RiskDetection`）归为安全拦截，
//! 429 与其他状态码照常分类（见 `read_openai_response`）。
//! 成功的回答里只有图片链接（`data[0].url`，方舟的默认，或代理忽略了 `response_format`）时，去那个链接取图：
//! 不带密钥、不跟随重定向、大小受同一个上限约束——图已经付过钱，不能当作“没有图”再生成一次。

use super::http::send_json;
use super::{read_openai_response, Target};
use crate::gateway::upstream::http::{refuse_redirect, transport_error};
use crate::gateway::{GatewayError, GeneratedImage, ImageRequest};
use crate::types::shape::pixel_size;
use base64::Engine;
use serde_json::json;

pub struct DoubaoUpstream {
    name: String,
    api_base: String,
    api_key: String,
    model: String,
    max_response_bytes: usize,
}

/// 上游地址末尾已有版本路径（`/api/v3`、`/v1`、`/v1beta`）时照用，否则补 `/api/v3`。
fn api_base(base_url: &str) -> String {
    let trimmed = base_url.trim_end_matches('/');
    if super::ends_with_version(trimmed) {
        trimmed.to_string()
    } else {
        format!(
            "{trimmed}{}",
            crate::config::UpstreamKind::Doubao.default_version_path()
        )
    }
}

impl DoubaoUpstream {
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

    pub(super) async fn call(
        &self,
        http: &reqwest::Client,
        req: &ImageRequest,
    ) -> Result<GeneratedImage, GatewayError> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let (w, h) = pixel_size(req.aspect_ratio, req.image_size);
        let mut body = json!({
            "model": self.model,
            "prompt": req.prompt,
            "size": format!("{w}x{h}"),
            "response_format": "b64_json",
            "watermark": false,
            "sequential_image_generation": "disabled",
        });
        if let Some(seed) = req.seed {
            body["seed"] = json!(seed);
        }
        let images: Vec<String> = req
            .references
            .iter()
            .map(|r| format!("data:{};base64,{}", r.mime, b64.encode(&r.data)))
            .collect();
        match images.len() {
            0 => {}
            1 => body["image"] = json!(images[0]),
            _ => body["image"] = json!(images),
        }
        let mut call = http.post(format!("{}/images/generations", self.api_base));
        if !self.api_key.is_empty() {
            call = call.bearer_auth(&self.api_key);
        }
        let response = send_json(call, &body, &req.progress)
            .send()
            .await
            .map_err(|e| transport_error(&self.name, e))?;
        refuse_redirect(&self.name, &response)?;
        let body =
            read_openai_response(&self.name, response, &req.progress, self.max_response_bytes)
                .await?;
        let (mime, data) = match (
            body["data"][0]["b64_json"].as_str(),
            body["data"][0]["url"].as_str(),
        ) {
            (Some(b64), _) => super::decode_b64_image(&self.name, b64)?,
            (None, Some(url)) if crate::types::is_web_link(url) => {
                self.download(http, url, req).await?
            }
            _ => {
                return Err(GatewayError::NoImage {
                    upstream: self.name.clone(),
                    reason: "响应里没有 b64_json 也没有图片链接".into(),
                    text: None,
                })
            }
        };
        Ok(GeneratedImage {
            mime,
            data,
            text: None,
            upstream: self.name.clone(),
            model: self.model.clone(),
            attempts: Vec::new(),
            sources: Vec::new(),
            size_mismatch: None,
            extras: Vec::new(),
        })
    }
}

impl DoubaoUpstream {
    /// 取回答里链接指向的图（不带密钥：链接本身就是临时授权的；不跟随重定向；大小有上限）。
    async fn download(
        &self,
        http: &reqwest::Client,
        url: &str,
        req: &ImageRequest,
    ) -> Result<(String, bytes::Bytes), GatewayError> {
        let response = http
            .get(url)
            .send()
            .await
            .map_err(|e| transport_error(&self.name, e))?;
        refuse_redirect(&self.name, &response)?;
        if !response.status().is_success() {
            return Err(GatewayError::BadResponse {
                upstream: self.name.clone(),
                detail: format!("取图片链接失败：HTTP {}", response.status().as_u16()),
            });
        }
        let data =
            super::http::read_body(&self.name, response, &req.progress, self.max_response_bytes)
                .await?;
        let mime = image::guess_format(&data)
            .map(|f| f.to_mime_type().to_string())
            .map_err(|_| GatewayError::BadResponse {
                upstream: self.name.clone(),
                detail: "图片链接取回的不是图片".into(),
            })?;
        Ok((mime, data))
    }
}

/// 方舟没有公开的模型列表接口：列出模型目录里的豆包模型。
pub fn models() -> Vec<String> {
    crate::catalogue::models(&crate::config::Config::default())
        .into_iter()
        .filter(|m| m.family == "doubao")
        .map(|m| m.id)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn base_urls_with_a_version_path_are_used_as_is() {
        assert_eq!(
            super::api_base("https://ark.cn-beijing.volces.com"),
            "https://ark.cn-beijing.volces.com/api/v3"
        );
        assert_eq!(
            super::api_base("https://ark.example.com/api/v3/"),
            "https://ark.example.com/api/v3"
        );
        assert_eq!(
            super::api_base("https://gw.example.com/v1"),
            "https://gw.example.com/v1"
        );
    }
}
