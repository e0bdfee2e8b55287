//! 所有请求共享的状态：交给 SSR、服务器函数与每个 axum 处理函数；以及“生成并保存”这条唯一的生产路径。

use crate::app::types::{AttemptInfo, Phase};
use crate::config::ConfigHandle;
use crate::error::ApiError;
use crate::gateway::{Gateway, GeneratedImage, ImageRequest, InputImage, ProgressEvent};
use crate::jobs::JobManager;
use crate::openai::idempotency::IdempotencyCache;
use crate::storage::{ImageRecord, Storage};
use axum::extract::FromRef;
use leptos::config::LeptosOptions;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub config: ConfigHandle,
    pub gateway: Gateway,
    pub storage: Storage,
    pub idempotency: IdempotencyCache,
    pub jobs: JobManager,
    pub admin: crate::admin::Admin,
    /// 设置页创建的密钥最近一次使用的时间。
    pub key_usage: crate::openai::auth::KeyUsage,
    /// 正在服务的监听地址（设置页可切换）。
    pub listeners: std::sync::Arc<crate::listeners::Listeners>,
    /// 运行中的配置来自哪个文件（设置页保存到这里）。
    pub config_file: std::sync::Arc<crate::config::ConfigFile>,
}

impl AppState {
    /// 经网关生成一张图并原子地保存；`/v1` 各接口与工作台的同步接口用它。
    pub async fn generate_and_save(
        &self,
        request: ImageRequest,
    ) -> Result<(GeneratedImage, ImageRecord), ApiError> {
        produce(&self.gateway, &self.storage, request)
            .await
            .map_err(|f| f.error)
    }
}

/// 生产失败：原因与到失败为止的每次上游尝试（卡片上要显示）。
#[derive(Debug)]
pub struct ProduceFailed {
    pub error: ApiError,
    pub attempts: Vec<AttemptInfo>,
}

impl From<ApiError> for ProduceFailed {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            attempts: Vec::new(),
        }
    }
}

/// 生成并保存：参考图按内容哈希存下 → 网关生成 → 原子写盘并写记录。`/v1`、工作台与任务管理器都走这里。
pub async fn produce(
    gateway: &Gateway,
    storage: &Storage,
    request: ImageRequest,
) -> Result<(GeneratedImage, ImageRecord), ProduceFailed> {
    let started = std::time::Instant::now();
    let mut reference_ids = Vec::with_capacity(request.references.len());
    for reference in &request.references {
        let upload = storage
            .save_upload(reference.data.clone(), reference.mime.clone())
            .await
            .map_err(ApiError::from)?;
        reference_ids.push(upload.id);
    }
    let image = gateway
        .generate(request.clone())
        .await
        .map_err(|f| ProduceFailed {
            attempts: f.attempts.clone(),
            error: ApiError::from(f),
        })?;
    request.progress.report(ProgressEvent::Phase(Phase::Saving));
    let record = storage
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
        .await
        .map_err(|e| ProduceFailed {
            error: e.into(),
            attempts: image.attempts.clone(),
        })?;
    Ok((image, record))
}

/// 按 id 读出参考图：先找图库里的图片，再找上传的参考图。
pub async fn load_reference(storage: &Storage, id: &str) -> Result<InputImage, ApiError> {
    let not_found = || ApiError::InvalidRequest(format!("参考图“{id}”不存在或已被永久删除"));
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let (path, mime) = if let Some(r) = storage.get(id.to_string()).await? {
        (r.path(), r.mime)
    } else if let Some(u) = storage.get_upload(id.to_string()).await? {
        (u.path(), u.mime)
    } else {
        return Err(not_found());
    };
    let data = tokio::fs::read(&path).await.map_err(|e| {
        tracing::warn!(path = %path.display(), "读取参考图失败：{e}");
        not_found()
    })?;
    Ok(InputImage {
        mime,
        data: data.into(),
    })
}
