//! 工作台：上方是任务卡片网格（新的在前），下方是固定的提示词栏。
//!
//! 提交经服务器函数 `submit_jobs` 变成一批任务；每张卡片的状态与进度由 `/ws` 推送（见 `crate::jobs`）。
//! `generate_image` 是同步的单张接口，供脚本调用（README）。
//!
//! - `mod.rs`（本文件）：服务器函数、页面与它的 island（卡片网格 + 推送）；
//! - `card.rs`：一张任务卡片；
//! - `prompt_bar.rs`：底部的提示词栏，由 `upload_widget.rs`（参考图）与 `count_selector.rs`（张数）组成。

mod card;
mod count_selector;
mod prompt_bar;
mod upload_widget;

use super::browser;
use crate::types::{
    AppError, GenerateRequest, JobImage, JobMessage, JobView, SavedImage, SubmitRequest,
};
use card::JobCard;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use prompt_bar::PromptBar;

/// 生成一张图像并保存到服务器。可由任何 HTTP 客户端以 JSON 调用：
/// `POST /api/generate_image`，请求体 `{"request":{"prompt":"…","aspect_ratio":"16:9","image_size":"1K"}}`。
#[server(prefix = "/api", endpoint = "generate_image", input = Json)]
pub async fn generate_image(request: GenerateRequest) -> Result<SavedImage, AppError> {
    ssr::generate(request)
        .await
        .map_err(crate::error::server_fn_error)
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::*;
    use crate::error::ApiError;
    use crate::gateway::ImageRequest;
    use crate::produce::References;
    use crate::state::AppState;
    use crate::types::limits::{validate_request, Surface};

    pub async fn generate(request: GenerateRequest) -> Result<SavedImage, ApiError> {
        let state = AppState::from_context()?;
        let prompt = validate_request(
            Surface::Studio,
            &request.prompt,
            1,
            request.references.len(),
        )?;
        let references = References::load(&state.storage, &request.references).await?;
        let order = ImageRequest {
            prompt: prompt.clone(),
            references: Vec::new(),
            aspect_ratio: request.aspect_ratio,
            image_size: request.image_size,
            model: None,
            progress: Default::default(),
            seed: None,
        };
        let produced = state
            .producer()
            .produce(order, references)
            .await
            .map_err(|f| f.error)?;
        let (image, record) = (produced.image, produced.record);
        Ok(SavedImage {
            url: format!("/files/{}", record.id),
            id: record.id,
            width: record.width,
            height: record.height,
            prompt,
            note: image.text,
            upstream: image.upstream,
            attempts: image.attempts,
        })
    }

    /// 这个请求的提交者（访问控制的守卫放进请求扩展的工作台会话或 IP）。
    pub async fn client() -> Result<crate::access::ClientId, ApiError> {
        leptos_axum::extract::<axum::Extension<crate::access::ClientId>>()
            .await
            .map(|axum::Extension(client)| client)
            .map_err(|_| ApiError::Internal("请求里没有调用方身份".into()))
    }

    /// 工作台的服务器函数：取状态、做事、把错误变成给页面的错误。
    pub async fn with_state<T, F>(f: impl FnOnce(AppState) -> F) -> Result<T, AppError>
    where
        F: std::future::Future<Output = Result<T, ApiError>>,
    {
        let state = AppState::from_context().map_err(crate::error::server_fn_error)?;
        f(state).await.map_err(crate::error::server_fn_error)
    }
}

/// `POST /api/submit_jobs`，请求体 `{"request":{"prompt":"…","count":4,"aspect_ratio":"1:1","image_size":"1K","model":"","references":[]}}`：
/// 提交一批（1–16 张），立即返回各任务；之后的进度经 `/ws` 推送。参数有误时 400，什么都不排队。
#[server(prefix = "/api", endpoint = "submit_jobs", input = Json)]
pub async fn submit_jobs(request: SubmitRequest) -> Result<Vec<JobView>, AppError> {
    ssr::with_state(|s| async move {
        let client = ssr::client().await?;
        let config = s.config.load_full();
        // 校验与排队上限都通过之后，按张数扣工作台的每分钟额度（16 张就扣 16）。
        let admit = |images| s.image_budget.spend(&config, &client, images);
        s.jobs.submit(request, &client.0, admit).await
    })
    .await
}

/// `POST /api/cancel_job`，请求体 `{"job_id":"…"}`：取消排队中或生成中的任务。
#[server(prefix = "/api", endpoint = "cancel_job", input = Json)]
pub async fn cancel_job(job_id: String) -> Result<JobView, AppError> {
    ssr::with_state(|s| async move { s.jobs.cancel(&job_id) }).await
}

/// `POST /api/retry_job`，请求体 `{"job_id":"…"}`：重试失败、已取消或中断的任务。
#[server(prefix = "/api", endpoint = "retry_job", input = Json)]
pub async fn retry_job(job_id: String) -> Result<JobView, AppError> {
    ssr::with_state(|s| async move { s.jobs.retry(&job_id) }).await
}

/// `POST /api/resave_job`，请求体 `{"job_id":"…"}`：把“保存失败”的任务的图（在暂存区里）重新存进图库。
#[server(prefix = "/api", endpoint = "resave_job", input = Json)]
pub async fn resave_job(job_id: String) -> Result<JobView, AppError> {
    ssr::with_state(|s| async move { s.jobs.resave(&job_id).await }).await
}

/// `POST /api/remove_job`，请求体 `{"job_id":"…"}`：从工作台移除卡片（进行中的先取消，图片移入回收站）。
#[server(prefix = "/api", endpoint = "remove_job", input = Json)]
pub async fn remove_job(job_id: String) -> Result<(), AppError> {
    ssr::with_state(|s| async move { s.jobs.remove(&job_id).await }).await
}

/// 一张参考图：id 与缩略图地址。
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reference {
    pub id: String,
    pub thumb_url: String,
}

impl Reference {
    /// 图库里的图片（32 位 id）用缩略图；上传的参考图（64 位内容哈希）用原图。
    fn from_id(id: String) -> Self {
        let thumb_url = if id.len() == 64 {
            format!("/uploads/{id}")
        } else {
            format!("/files/{id}/thumb")
        };
        Self { id, thumb_url }
    }
}

/// 工作台打开时服务器交给页面的东西。
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct StudioInit {
    pub jobs: Vec<JobView>,
    /// 可选的模型（去重后的各上游模型）。
    pub models: Vec<String>,
}

#[cfg(feature = "ssr")]
fn studio_init() -> StudioInit {
    let Ok(state) = crate::state::AppState::from_context() else {
        return StudioInit::default();
    };
    let config = state.config.load();
    let mut models: Vec<String> = state
        .gateway
        .upstreams(&config)
        .into_iter()
        .map(|u| u.model)
        .collect();
    models.dedup();
    StudioInit {
        jobs: state.jobs.snapshot(),
        models,
    }
}

#[cfg(not(feature = "ssr"))]
fn studio_init() -> StudioInit {
    StudioInit::default()
}

/// 工作台页面。`/?ref=<图片 id>`（图库的“以此图继续编辑”）会把那张图作为参考图带入。
#[component]
pub fn StudioPage() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let references: Vec<Reference> = query
        .with_untracked(|q| q.get("ref"))
        .into_iter()
        .flat_map(|r| r.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(Reference::from_id)
        .collect();
    view! { <Studio references init=studio_init()/> }
}

/// 卡片排序：新的批次在前，同一批内按序号。
fn sort_jobs(jobs: &mut [JobView]) {
    jobs.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then(b.batch_id.cmp(&a.batch_id))
            .then(a.index.cmp(&b.index))
    });
}

/// 把一条推送合并进卡片列表。
fn apply(jobs: &mut Vec<JobView>, message: JobMessage) {
    match message {
        JobMessage::Snapshot { jobs: all } => *jobs = all,
        JobMessage::Job(view) => match jobs.iter_mut().find(|j| j.job_id == view.job_id) {
            // 提交的响应可能比推送晚到：旧的视图不覆盖新的。
            Some(existing) if view.is_not_older_than(existing) => *existing = *view,
            Some(_) => {}
            None => jobs.push(*view),
        },
        JobMessage::Removed { job_id } => jobs.retain(|j| j.job_id != job_id),
    }
    sort_jobs(jobs);
}

/// 推送延迟（服务器上状态变化 → 浏览器收到并更新）：最近几次的样本。
const LAG_SAMPLES: usize = 200;

/// 连上 `/ws`，把每条推送合并进卡片列表，并记下推送延迟与连接状态。
fn follow_jobs(jobs: RwSignal<Vec<JobView>>, connected: RwSignal<bool>, lags: RwSignal<Vec<u64>>) {
    browser::connect_jobs(
        move |message| {
            if let JobMessage::Job(view) = &message {
                let lag = browser::now_ms().saturating_sub(view.changed_at_ms);
                lags.update(|l| {
                    l.push(lag);
                    if l.len() > LAG_SAMPLES {
                        l.remove(0);
                    }
                });
            }
            jobs.update(|list| apply(list, message));
        },
        move |up| connected.set(up),
    );
}

/// 工作台的交互部分。
#[island]
fn Studio(references: Vec<Reference>, init: StudioInit) -> impl IntoView {
    let hydrated = RwSignal::new(false);
    let connected = RwSignal::new(false);
    let mut initial = init.jobs;
    sort_jobs(&mut initial);
    let jobs = RwSignal::new(initial);
    let references = RwSignal::new(references);
    let lightbox = RwSignal::new(None::<JobImage>);
    let lags = RwSignal::new(Vec::<u64>::new());
    Effect::new(move |_| {
        hydrated.set(true);
        follow_jobs(jobs, connected, lags);
    });
    let _esc = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() == "Escape" {
            lightbox.set(None);
        }
    });
    let ids =
        Memo::new(move |_| jobs.with(|l| l.iter().map(|j| j.job_id.clone()).collect::<Vec<_>>()));

    view! {
        <section class="studio" data-hydrated=move || hydrated.get().to_string()
            data-connected=move || connected.get().to_string()>
            <LiveIndicator connected lags/>
            <div class="grid" data-testid="cards">
                <Show when=move || ids.with(Vec::is_empty)>
                    <div class="empty studio-hint" data-testid="studio-hint">
                        <p class="empty-title">"写下你想要的画面，按 Enter 或点“生成”"</p>
                        <ul>
                            <li>"描述越具体越好：主体、场景、光线、风格，例如“清晨薄雾中的木屋，水彩风格”。"</li>
                            <li>"张数选 4 或 16，几张图会同时生成，每张一个卡片、各有进度。"</li>
                            <li>"想改一张已有的图？把它拖进下面的提示词栏、粘贴，或点“＋ 参考图”。"</li>
                        </ul>
                    </div>
                </Show>
                <For each=move || ids.get() key=|id| id.clone() let:id>
                    {
                        let job = Memo::new(move |_| {
                            jobs.with(|l| l.iter().find(|j| j.job_id == id).cloned())
                        });
                        view! { <JobCard job lightbox references/> }
                    }
                </For>
            </div>
            <PromptBar references jobs models=init.models/>
            {move || lightbox.get().map(|img| view! {
                <div class="dialog-backdrop lightbox" data-testid="lightbox" on:click=move |_| lightbox.set(None)>
                    <img src=img.url.clone() alt="大图" width=img.width height=img.height/>
                    <button type="button" class="close" aria-label="关闭">"×"</button>
                </div>
            })}
        </section>
    }
}

/// 右上角的“● 实时 / ○ 重连中”，悬停看推送延迟；测试从 `data-lag-*` 读延迟。
#[component]
fn LiveIndicator(connected: RwSignal<bool>, lags: RwSignal<Vec<u64>>) -> impl IntoView {
    let stats = Memo::new(move |_| {
        lags.with(|l| {
            let mut sorted = l.clone();
            sorted.sort_unstable();
            (
                sorted.get(sorted.len() / 2).copied(),
                sorted.last().copied(),
                sorted.len(),
            )
        })
    });
    view! {
        <p class="live"
            data-lag-p50=move || stats.get().0.map(|v| v.to_string())
            data-lag-max=move || stats.get().1.map(|v| v.to_string())
            title=move || match stats.get() {
                (Some(p50), Some(max), n) => format!("推送延迟：中位 {p50} ms，最大 {max} ms（最近 {n} 次）"),
                _ => "实时更新".to_string(),
            }>
            {move || if connected.get() { "● 实时" } else { "○ 重连中……" }}
        </p>
    }
}
