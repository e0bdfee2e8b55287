//! OpenAI 图像接口方言：`/v1/images/generations`（文生图）与 `/v1/images/edits`（图生图，multipart）。
//! 宽高比与分辨率换算成 `size`，同时附上扩展字段 `aspect_ratio`、`image_size` 供懂它们的网关使用。

use super::http::send_json;
use super::{OpenAiTarget, Target};
use crate::gateway::{GatewayError, GeneratedImage, ImageRequest, ProgressEvent};
use crate::types::job::Phase;
use crate::types::shape::pixel_size;
use reqwest::multipart::{Form, Part};
use serde_json::json;

pub struct OpenAiImagesUpstream {
    pub(super) target: OpenAiTarget,
}

impl OpenAiImagesUpstream {
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
        let (w, h) = pixel_size(req.aspect_ratio, req.image_size);
        let size = format!("{w}x{h}");
        let call = if req.references.is_empty() {
            let call = self.target.post(http, "/images/generations");
            send_json(
                call,
                &json!({
                    "model": model,
                    "prompt": req.prompt,
                    "n": 1,
                    "size": size,
                    "response_format": "b64_json",
                    "aspect_ratio": req.aspect_ratio.as_str(),
                    "image_size": req.image_size.as_str(),
                }),
                &req.progress,
            )
        } else {
            // multipart 请求体由 reqwest 组装，拿不到“发完”的时刻：整段记为“发送”，收到响应头即转入“接收”。
            req.progress.report(ProgressEvent::Phase(Phase::Sending));
            let mut form = Form::new()
                .text("model", model.clone())
                .text("prompt", req.prompt.clone())
                .text("n", "1")
                .text("size", size)
                .text("response_format", "b64_json")
                .text("aspect_ratio", req.aspect_ratio.as_str())
                .text("image_size", req.image_size.as_str());
            for (i, image) in req.references.iter().enumerate() {
                let ext = image.mime.rsplit('/').next().unwrap_or("png");
                let part = Part::stream(reqwest::Body::from(image.data.clone()))
                    .file_name(format!("reference-{}.{ext}", i + 1))
                    .mime_str(&image.mime)
                    .map_err(|e| GatewayError::InvalidRequest(format!("参考图类型无效：{e}")))?;
                form = form.part("image[]", part);
            }
            self.target.post(http, "/images/edits").multipart(form)
        };
        let body = self.target.send(call, &req.progress).await?;
        let item = &body["data"][0];
        let Some(b64) = item["b64_json"].as_str() else {
            return Err(GatewayError::NoImage {
                upstream: self.target.name.clone(),
                reason: "响应里没有 b64_json".into(),
                text: None,
            });
        };
        let (mime, data) = super::decode_b64_image(&self.target.name, b64)?;
        Ok(GeneratedImage {
            mime,
            data,
            text: item["revised_prompt"].as_str().map(str::to_string),
            upstream: self.target.name.clone(),
            model,
            attempts: Vec::new(),
            sources: Vec::new(),
            size_mismatch: None,
            extras: Vec::new(),
        })
    }
}
