//! 唯一的生产路径：参考图（已存下的，按 id）→ 网关生成 → 原子写盘并写记录。
//! `/v1` 各接口、工作台的同步接口与任务管理器都经 `Producer::produce`。
//!
//! 参考图先有 id 再生产：工作台的参考图本来就按 id 存在（上传或图库里的图），每次运行从盘上读一次；
//! `/v1` 随请求上传的参考图在请求开始时存一次（按内容哈希去重），之后 n 张共用，不再重复哈希与写盘。

use crate::error::ApiError;
use crate::gateway::{Gateway, GeneratedImage, ImageRequest, InputImage, ProgressEvent};
use crate::storage::{ImageRecord, NewImage, Storage};
use crate::types::money::Micros;
use crate::types::{AttemptInfo, Phase};

/// 一次请求用到的参考图：存储里的 id 与内容（两者一一对应）；局部修改时另有要改的区域（对第一张图而言）。
#[derive(Clone, Debug, Default)]
pub struct References {
    pub ids: Vec<String>,
    pub images: Vec<InputImage>,
    pub region: Option<std::sync::Arc<crate::region::RegionEdit>>,
}

impl References {
    /// 按 id 读出已存的参考图：先找图库里的图片，再找上传的参考图。
    pub async fn load(storage: &Storage, ids: &[String]) -> Result<Self, ApiError> {
        let mut images = Vec::with_capacity(ids.len());
        for id in ids {
            images.push(load_one(storage, id).await?);
        }
        Ok(Self {
            ids: ids.to_vec(),
            images,
            region: None,
        })
    }

    /// 确认这些 id 都指向存在的参考图（提交时用：免得排了队才失败），不读内容。
    pub async fn check_exist(storage: &Storage, ids: &[String]) -> Result<(), ApiError> {
        for id in ids {
            locate(storage, id).await?;
        }
        Ok(())
    }

    /// 存下调用方随请求给的参考图（按内容哈希去重），得到它们的 id。
    pub async fn store(storage: &Storage, images: Vec<InputImage>) -> Result<Self, ApiError> {
        let mut ids = Vec::with_capacity(images.len());
        for image in &images {
            let upload = storage
                .save_upload(image.data.clone(), image.mime.clone(), None)
                .await?;
            ids.push(upload.id);
        }
        Ok(Self {
            ids,
            images,
            region: None,
        })
    }

    /// 只改第一张图的这个区域（见 `crate::region`）。
    pub fn with_region(
        mut self,
        region: Option<std::sync::Arc<crate::region::RegionEdit>>,
    ) -> Self {
        self.region = region;
        self
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::InvalidRequest(format!("参考图“{id}”不存在或已被永久删除"))
}

/// 参考图在哪里（根、相对路径）与类型。
async fn locate(storage: &Storage, id: &str) -> Result<(String, String, String), ApiError> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found(id));
    }
    if let Some(r) = storage.get(id.to_string()).await? {
        return Ok((r.root, r.rel_path, r.mime));
    }
    if let Some(u) = storage.get_upload(id.to_string()).await? {
        return Ok((u.root, u.rel_path, u.mime));
    }
    Err(not_found(id))
}

async fn load_one(storage: &Storage, id: &str) -> Result<InputImage, ApiError> {
    let (root, rel, mime) = locate(storage, id).await?;
    let data = storage.blobs().read_async(&root, &rel).await.map_err(|e| {
        tracing::warn!("读取参考图失败：{e}");
        not_found(id)
    })?;
    Ok(InputImage { mime, data })
}

/// 生产出的一张图：网关的结果（含尝试记录与模型的文字）与存储里的记录。
#[derive(Debug)]
pub struct Produced {
    pub image: GeneratedImage,
    pub record: ImageRecord,
}

/// 生产失败：原因与到失败为止的每次上游尝试（卡片上要显示）。
#[derive(Debug)]
pub struct ProduceFailed {
    pub error: ApiError,
    pub attempts: Vec<AttemptInfo>,
    /// 上游已经生成（已经付了钱）、只是没能存进图库的图：调用方仍应把它交给用户。
    pub unsaved: Option<Unsaved>,
}

/// 没能存进图库的一张图。
#[derive(Debug)]
pub struct Unsaved {
    pub image: GeneratedImage,
    /// 它在暂存区里的 id（暂存也失败时为空，这时只有调用方手里这一份）。
    pub spill: Option<String>,
}

/// 一次生产花了多少（按目录价格：已计费的加可能已计费的；价格未知的不计）。
pub fn spent(result: &Result<Produced, ProduceFailed>) -> Micros {
    let attempts = match result {
        Ok(p) => &p.image.attempts,
        Err(f) => &f.attempts,
    };
    let (billed, maybe) = crate::types::attempt::spend_of(attempts);
    billed.usd.plus(maybe.usd)
}

impl From<ApiError> for ProduceFailed {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            attempts: Vec::new(),
            unsaved: None,
        }
    }
}

/// 生产线：网关与存储。状态里持有一份，任务管理器也持有一份（克隆很便宜）。
#[derive(Clone)]
pub struct Producer {
    pub gateway: Gateway,
    pub storage: Storage,
}

/// 另存进图库的候选图的说明。
const EXTRA_NOTE: &str = "同一次生成的另一张候选图（上游一次给了几张，结果取了像素最多的那张；这张也付过钱，留在图库里）";

impl Producer {
    /// 存下生成的图（上游一次给了几张时，另几张也存进图库）；存不进图库时放进暂存区，连同原因交给调用方。
    async fn keep(&self, image: GeneratedImage, new: NewImage) -> Result<Produced, ProduceFailed> {
        let extras: Vec<NewImage> = image
            .extras
            .iter()
            .map(|extra| NewImage {
                data: extra.data.clone(),
                attempts: Vec::new(),
                model_text: Some(EXTRA_NOTE.into()),
                size_note: None,
                ..new.clone()
            })
            .collect();
        let saved = self.storage.save_image(new).await;
        match saved {
            Ok(record) => {
                self.save_extras(extras).await;
                Ok(Produced { image, record })
            }
            Err(e) => {
                // 图已经付过钱：存不进图库也不能丢。先放进暂存区，再把它连同原因交给调用方。
                tracing::error!("生成的图没能保存，已放进暂存区：{e}");
                let spill = self.storage.spill(image.data.clone()).await;
                if let Err(spill_error) = &spill {
                    tracing::error!("暂存也失败了，这张图只在这次响应里：{spill_error}");
                }
                Err(ProduceFailed {
                    error: e.into(),
                    attempts: image.attempts.clone(),
                    unsaved: Some(Unsaved {
                        image,
                        spill: spill.ok(),
                    }),
                })
            }
        }
    }

    /// 上游一次给了几张正式图时，没当作结果的那几张也存进图库；存不下的放进暂存区（付过钱的不丢）。
    async fn save_extras(&self, extras: Vec<NewImage>) {
        for extra in extras {
            let data = extra.data.clone();
            if let Err(e) = self.storage.save_image(extra).await {
                tracing::error!("候选图没能存进图库，放进暂存区：{e}");
                if let Err(e) = self.storage.spill(data).await {
                    tracing::error!("候选图暂存也失败了：{e}");
                }
            }
        }
    }

    /// 局部修改：模型画回来的图原样存一份（上传区，尝试记录里写上它的 id），再按区域贴回原图，换成贴好的 PNG。
    /// 贴不回去（模型的图解不开）时交出模型的原图：它已经付过钱。
    async fn put_back(
        &self,
        edit: std::sync::Arc<crate::region::RegionEdit>,
        source: InputImage,
        mut image: GeneratedImage,
    ) -> Result<GeneratedImage, ProduceFailed> {
        let raw = self
            .storage
            .save_upload(image.data.clone(), image.mime.clone(), None)
            .await;
        match edit.put_back(source.data, image.data.clone()).await {
            Ok(png) => {
                image.data = png.into();
                image.mime = "image/png".into();
                match (raw, image.attempts.last_mut()) {
                    (Ok(upload), Some(last)) => last.raw_output = Some(upload.id),
                    (Err(e), _) => tracing::warn!("模型原样的图没能存下（贴好的照常保存）：{e}"),
                    _ => {}
                }
                Ok(image)
            }
            Err(e) => Err(ProduceFailed {
                error: ApiError::InvalidRequest(format!("模型画回来的图{e}，没能贴回原图")),
                attempts: image.attempts.clone(),
                unsaved: Some(Unsaved { image, spill: None }),
            }),
        }
    }

    /// 生成并保存一张图；参考图取自 `references`（`request.references` 被它替换）。
    pub async fn produce(
        &self,
        mut request: ImageRequest,
        references: References,
    ) -> Result<Produced, ProduceFailed> {
        request.references = references.images;
        let reference_ids = references.ids;
        let region = references.region;
        let started = std::time::Instant::now();
        let progress = request.progress.clone();
        let mode = if request.references.is_empty() {
            "text2img"
        } else {
            "img2img"
        };
        let (prompt, aspect_ratio, image_size, account) = (
            request.prompt.clone(),
            request.aspect_ratio,
            request.image_size,
            request.account.clone(),
        );
        // 局部修改：原图之后加上标出区域的副本，提示词后面加上说明（存进图库的仍是用户的提示词）。
        let source = region.as_ref().and(request.references.first().cloned());
        if let Some(edit) = &region {
            request.references.insert(1, edit.marked.clone());
            request.prompt.push_str(crate::region::INSTRUCTION);
        }
        let image = self
            .gateway
            .generate(request)
            .await
            .map_err(|f| ProduceFailed {
                attempts: f.attempts.clone(),
                error: ApiError::from(f),
                unsaved: None,
            })?;
        progress.report(ProgressEvent::Phase(Phase::Saving));
        let image = match (region, source) {
            (Some(edit), Some(source)) => self.put_back(edit, source, image).await?,
            _ => image,
        };
        let new = NewImage {
            data: image.data.clone(),
            prompt,
            mode,
            model: image.model.clone(),
            aspect_ratio: aspect_ratio.to_string(),
            image_size: image_size.to_string(),
            upstream: image.upstream.clone(),
            duration_ms: started.elapsed().as_millis() as u64,
            attempts: image.attempts.clone(),
            reference_ids,
            model_text: image.text.clone(),
            sources: image.sources.clone(),
            size_note: image.size_mismatch.clone(),
            account,
        };
        self.keep(image, new).await
    }
}
