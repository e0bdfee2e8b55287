//! OpenAI 对话接口方言（OpenRouter 等）：`/v1/chat/completions`，`modalities: ["image","text"]`。
//! 图从 `message.images[].image_url.url` 的 data URL 读取，没有时从 `content` 里 Markdown 的 data URL 读取。

use super::http::send_json;
use super::{decode_data_url, OpenAiTarget, Target};
use crate::gateway::{GatewayError, GeneratedImage, ImageRequest};
use base64::Engine;
use serde_json::json;

pub struct OpenAiChatUpstream {
    pub(super) target: OpenAiTarget,
}

impl OpenAiChatUpstream {
    pub fn new(target: Target<'_>) -> Self {
        Self {
            target: OpenAiTarget::new(target),
        }
    }

    pub(super) async fn call(
        &self,
        http: &reqwest::Client,
        req: &ImageRequest,
    ) -> Result<GeneratedImage, GatewayError> {
        // 用哪个模型由策略流水线定好，写在这个上游的配置里。
        let model = self.target.model.clone();
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut content = vec![json!({"type": "text", "text": req.prompt})];
        content.extend(req.references.iter().map(|image| {
            json!({"type": "image_url", "image_url": {"url": format!("data:{};base64,{}", image.mime, b64.encode(&image.data))}})
        }));
        let body = json!({
            "model": model,
            "modalities": ["image", "text"],
            "messages": [{"role": "user", "content": content}],
            "image_config": {"aspect_ratio": req.aspect_ratio.as_str(), "image_size": req.image_size.as_str()},
            "aspect_ratio": req.aspect_ratio.as_str(),
            "image_size": req.image_size.as_str(),
        });
        let call = send_json(
            self.target.post(http, "/chat/completions"),
            &body,
            &req.progress,
        );
        let answer = self.target.send(call, &req.progress).await?;
        let message = &answer["choices"][0]["message"];
        let text = message["content"].as_str().unwrap_or("");
        let image_url = message["images"]
            .as_array()
            .and_then(|images| images.iter().find_map(|i| i["image_url"]["url"].as_str()))
            .map(str::to_string)
            .or_else(|| markdown_data_url(text));
        let Some(url) = image_url else {
            let finish = answer["choices"][0]["finish_reason"].as_str().unwrap_or("");
            if finish == "content_filter" {
                return Err(GatewayError::Safety {
                    upstream: self.target.name.clone(),
                    reason: "content_filter".into(),
                    before_generation: false,
                });
            }
            return Err(GatewayError::NoImage {
                upstream: self.target.name.clone(),
                reason: "只返回了文字".into(),
                text: (!text.trim().is_empty()).then(|| text.to_string()),
            });
        };
        let (mime, data) = decode_data_url(&self.target.name, &url)?;
        let note = strip_images(text);
        Ok(GeneratedImage {
            mime,
            data,
            text: (!note.is_empty()).then_some(note),
            upstream: self.target.name.clone(),
            model,
            attempts: Vec::new(),
            sources: Vec::new(),
            size_mismatch: None,
            extras: Vec::new(),
        })
    }
}

/// 从 Markdown `![…](data:…)` 里取出第一个 data URL。
fn markdown_data_url(text: &str) -> Option<String> {
    let start = text.find("](data:")? + 2;
    let end = text[start..].find(')')? + start;
    Some(text[start..end].to_string())
}

/// 去掉 Markdown 图片，只留文字说明。
fn strip_images(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("![") {
        out.push_str(&rest[..start]);
        match rest[start..].find(')') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_images_are_found_and_stripped() {
        let text = "好的，这是图：\n\n![image](data:image/png;base64,AAAA)";
        assert_eq!(
            markdown_data_url(text).as_deref(),
            Some("data:image/png;base64,AAAA")
        );
        assert_eq!(strip_images(text), "好的，这是图：");
        assert_eq!(markdown_data_url("没有图"), None);
    }
}
