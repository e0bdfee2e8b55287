//! 所有请求共享的状态：交给 SSR、服务器函数与每个 axum 处理函数。

use crate::config::ConfigHandle;
use crate::gateway::Gateway;
use crate::openai::idempotency::IdempotencyCache;
use crate::storage::Storage;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: ConfigHandle,
    pub gateway: Gateway,
    pub storage: Storage,
    pub idempotency: IdempotencyCache,
}

impl AppState {
    /// 经网关生成一张图并原子地保存到存储；`/v1` 各接口与工作台共用这一条路径。
    pub async fn generate_and_save(
        &self,
        request: crate::gateway::ImageRequest,
    ) -> Result<(crate::gateway::GeneratedImage, crate::storage::ImageRecord), crate::error::ApiError>
    {
        let started = std::time::Instant::now();
        // 参考图先按内容哈希存下（同样的图只存一份），记录里留下它们的 id。
        let mut reference_ids = Vec::with_capacity(request.references.len());
        for reference in &request.references {
            let upload = self
                .storage
                .save_upload(reference.data.clone(), reference.mime.clone())
                .await?;
            reference_ids.push(upload.id);
        }
        let image = self.gateway.generate(request.clone()).await?;
        let record = self
            .storage
            .save_image(crate::storage::NewImage {
                data: image.data.clone(),
                prompt: request.prompt,
                mode: if request.references.is_empty() {
                    "text2img"
                } else {
                    "img2img"
                },
                model: image.model.clone(),
                aspect_ratio: request.aspect_ratio.to_string(),
                image_size: request.image_size.to_string(),
                upstream: image.upstream.clone(),
                duration_ms: started.elapsed().as_millis() as u64,
                attempts: image.attempts.clone(),
                reference_ids,
            })
            .await?;
        Ok((image, record))
    }
}
