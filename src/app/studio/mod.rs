//! 工作台：上方是任务卡片网格（新的在前），下方是固定的提示词栏。
//!
//! 提交经服务器函数 `submit_jobs` 变成一批任务；每张卡片的状态与进度由 `/ws` 推送（见 `crate::jobs`）。
//! `generate_image` 是同步的单张接口，供脚本调用（README）。
//!
//! - `mod.rs`（本文件）：服务器函数、页面与它的 island（按批次分组的卡片网格 + 推送）；
//! - `batch_header.rs`：一个批次的标题行（进度、暂停/继续、置顶、全部取消、重试失败的、下载本批、移除）；
//! - `card.rs`：一张任务卡片；`lightbox.rs`：大图（原图与结果并排，←/→ 在同批的卡片间移动）；
//!   `region_edit.rs` + `brush.rs`：大图里的局部修改（画笔与蒙版）；`compare.rs`：局部修改结果的前后对比滑块；
//! - `prompt_bar.rs`：底部的提示词栏，由 `batch_panel.rs`（单条/多条/批量改图、变量、预览）、
//!   `upload_widget.rs`（参考图）、`count_selector.rs`（张数）与 `shape.rs`（模型、宽高比、分辨率、联网搜索）组成；
//!   `prefs.rs`：记在浏览器里的选择。

mod batch_header;
mod batch_panel;
mod brush;
mod card;
mod compare;
mod cost;
mod count_selector;
mod draft;
mod lightbox;
mod prefs;
mod prompt_bar;
mod region_edit;
mod shape;
mod suggestions;
mod upload_widget;

use super::browser;
use super::prompts::SavePromptDialog;
use crate::types::batch::{BatchPage, BatchView, ExpandPreview};
use crate::types::codec::JsonStr;
use crate::types::prompt::PromptDraft;
use crate::types::{AppError, GenerateRequest, JobMessage, JobView, SavedImage, SubmitRequest};
use batch_header::BatchHeader;
use card::JobCard;
use leptos::prelude::*;
use lightbox::Lightbox;
use prompt_bar::PromptBar;
use std::collections::HashMap;

/// 生成一张图像并保存到服务器。可由任何 HTTP 客户端以 JSON 调用：
/// `POST /api/generate_image`，请求体 `{"request":{"prompt":"…","aspect_ratio":"16:9","image_size":"1K"}}`。
#[server(prefix = "/api", endpoint = "generate_image", input = JsonStr, output = JsonStr)]
pub async fn generate_image(request: GenerateRequest) -> Result<SavedImage, AppError> {
    ssr::generate(request)
        .await
        .map_err(crate::error::server_fn_error)
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::*;
    use crate::admit::{admit, Admitted, Order, Requester};
    use crate::error::ApiError;
    use crate::produce::References;
    use crate::state::AppState;

    pub async fn generate(request: GenerateRequest) -> Result<SavedImage, ApiError> {
        let state = AppState::from_context()?;
        // 与提交批次一样计入工作台的每日张数与每分钟张数（见 `crate::admit`）。
        let client = client().await?;
        let Admitted {
            request: order,
            ticket,
        } = admit(
            &state,
            Order {
                requester: Requester::Studio {
                    client: &client,
                    account: viewer().await.owner(),
                },
                prompt: &request.prompt,
                count: 1,
                references: request.references.len(),
                aspect_ratio: request.aspect_ratio,
                image_size: request.image_size,
                model: Some(request.model.trim().to_string()).filter(|m| !m.is_empty()),
                google_search: request.google_search,
            },
        )
        .await?;
        let prompt = order.prompt.clone();
        let references = References::load(&state.storage, &request.references).await?;
        let produced = state.producer().produce(order, references).await;
        ticket.settle(produced.is_ok() as u64, crate::produce::spent(&produced));
        let produced = produced.map_err(|f| f.error)?;
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
            model: image.model,
            size_note: image.size_mismatch,
            sources: image.sources,
        })
    }

    /// 这个请求的提交者（访问控制的守卫放进请求扩展的工作台会话或 IP）。
    pub async fn client() -> Result<crate::access::ClientId, ApiError> {
        leptos_axum::extract::<axum::Extension<crate::access::ClientId>>()
            .await
            .map(|axum::Extension(client)| client)
            .map_err(|_| ApiError::Internal("请求里没有调用方身份".into()))
    }

    /// 当前请求的人（守卫放进请求扩展的；没有账号时为空）。
    pub async fn viewer() -> crate::access::accounts::Viewer {
        crate::access::accounts::current().await
    }

    /// 改动这个批次要是它的主人或管理员（见 `Viewer::check_touch`）。
    pub async fn touch_batch(state: &AppState, batch_id: &str) -> Result<(), ApiError> {
        let owner = state.jobs.batch_owner(batch_id).await?;
        viewer().await.check_touch(&owner, "个批次")
    }

    /// 改动这个任务要是它的主人或管理员。
    pub async fn touch_job(state: &AppState, job_id: &str) -> Result<(), ApiError> {
        let owner = state.jobs.job_owner(job_id).await?;
        viewer().await.check_touch(&owner, "张卡片")
    }

    pub use crate::state::with_state;
}

/// `POST /api/submit_jobs`，请求体 `{"request":{"prompt":"…","count":4,"aspect_ratio":"1:1","image_size":"1K","model":"","references":[]}}`：
/// 提交一批（1–16 张），立即返回各任务；之后的进度经 `/ws` 推送。参数有误时 400，什么都不排队。
#[server(prefix = "/api", endpoint = "submit_jobs", input = JsonStr, output = JsonStr)]
pub async fn submit_jobs(request: SubmitRequest) -> Result<Vec<JobView>, AppError> {
    ssr::with_state(|s| async move {
        let client = ssr::client().await?;
        let account = ssr::viewer().await.owner();
        let requester = crate::admit::Requester::Studio {
            client: &client,
            account: account.clone(),
        };
        crate::admit::batch(&s, request, &client.0, &account, Some(requester)).await
    })
    .await
}

/// `POST /api/expand_prompt`，请求体与 `submit_jobs` 相同：只展开、不排队，返回
/// `{"prompts":[…],"total":N}`（展开后的提示词与一共会生成几张）。页面用它做“将生成 N 张”的预览。
#[server(prefix = "/api", endpoint = "expand_prompt", input = JsonStr, output = JsonStr)]
pub async fn expand_prompt(request: SubmitRequest) -> Result<ExpandPreview, AppError> {
    ssr::with_state(|s| async move {
        let mut request = request;
        crate::prompts::resolve_ids(&s.storage, &mut request, false).await?;
        let max = s.config.load().limits.max_batch_jobs;
        let plan = crate::types::batch::plan(&request, max)?;
        Ok(ExpandPreview {
            total: plan.jobs.len() as u32,
            prompts: plan.prompts,
        })
    })
    .await
}

/// `POST /api/list_batches`，请求体 `{"cursor":null,"limit":20}`（都可省略）：批次列表，新的在前，
/// 每个批次带各状态的任务数；`next_cursor` 不为空时用它取下一页。
#[server(prefix = "/api", endpoint = "list_batches", input = JsonStr, output = JsonStr)]
pub async fn list_batches(
    #[server(default)] cursor: Option<String>,
    #[server(default)] limit: Option<u32>,
) -> Result<BatchPage, AppError> {
    ssr::with_state(|s| async move {
        // 登录了账号的人只看自己的批次。
        let mine = ssr::viewer().await.0.map(|p| p.name);
        s.jobs.list_batches(cursor, limit, mine).await
    })
    .await
}

/// `POST /api/cancel_batch`，请求体 `{"batch_id":"…"}`：取消这个批次里排队中与生成中的任务。
#[server(prefix = "/api", endpoint = "cancel_batch", input = JsonStr, output = JsonStr)]
pub async fn cancel_batch(batch_id: String) -> Result<BatchView, AppError> {
    ssr::with_state(|s| async move {
        ssr::touch_batch(&s, &batch_id).await?;
        s.jobs.cancel_batch(&batch_id).await
    })
    .await
}

/// `POST /api/retry_failed`，请求体 `{"batch_id":"…"}`：重新排队这个批次里失败与中断的任务。
#[server(prefix = "/api", endpoint = "retry_failed", input = JsonStr, output = JsonStr)]
pub async fn retry_failed(batch_id: String) -> Result<BatchView, AppError> {
    ssr::with_state(|s| async move {
        ssr::touch_batch(&s, &batch_id).await?;
        s.jobs.retry_failed(&batch_id).await
    })
    .await
}

/// `POST /api/pause_batch`，请求体 `{"batch_id":"…"}`：暂停（排队中的不开始，生成中的照常完成）。
#[server(prefix = "/api", endpoint = "pause_batch", input = JsonStr, output = JsonStr)]
pub async fn pause_batch(batch_id: String) -> Result<BatchView, AppError> {
    ssr::with_state(|s| async move {
        ssr::touch_batch(&s, &batch_id).await?;
        s.jobs.pause_batch(&batch_id, true).await
    })
    .await
}

/// `POST /api/resume_batch`，请求体 `{"batch_id":"…"}`：继续暂停的批次。
#[server(prefix = "/api", endpoint = "resume_batch", input = JsonStr, output = JsonStr)]
pub async fn resume_batch(batch_id: String) -> Result<BatchView, AppError> {
    ssr::with_state(|s| async move {
        ssr::touch_batch(&s, &batch_id).await?;
        s.jobs.pause_batch(&batch_id, false).await
    })
    .await
}

/// `POST /api/prioritize_batch`，请求体 `{"batch_id":"…"}`：置顶（它排队中的任务移到队首）。
#[server(prefix = "/api", endpoint = "prioritize_batch", input = JsonStr, output = JsonStr)]
pub async fn prioritize_batch(batch_id: String) -> Result<BatchView, AppError> {
    ssr::with_state(|s| async move {
        ssr::touch_batch(&s, &batch_id).await?;
        s.jobs.prioritize_batch(&batch_id).await
    })
    .await
}

/// `POST /api/remove_batch`，请求体 `{"batch_id":"…"}`：把整个批次从工作台移除（图片移入回收站）。
#[server(prefix = "/api", endpoint = "remove_batch", input = JsonStr, output = JsonStr)]
pub async fn remove_batch(batch_id: String) -> Result<(), AppError> {
    ssr::with_state(|s| async move {
        ssr::touch_batch(&s, &batch_id).await?;
        s.jobs.remove_batch(&batch_id).await
    })
    .await
}

/// `POST /api/cancel_job`，请求体 `{"job_id":"…"}`：取消排队中或生成中的任务。
#[server(prefix = "/api", endpoint = "cancel_job", input = JsonStr, output = JsonStr)]
pub async fn cancel_job(job_id: String) -> Result<JobView, AppError> {
    ssr::with_state(|s| async move {
        ssr::touch_job(&s, &job_id).await?;
        s.jobs.cancel(&job_id)
    })
    .await
}

/// `POST /api/retry_job`，请求体 `{"job_id":"…"}`：重试失败、已取消或中断的任务。
#[server(prefix = "/api", endpoint = "retry_job", input = JsonStr, output = JsonStr)]
pub async fn retry_job(job_id: String) -> Result<JobView, AppError> {
    ssr::with_state(|s| async move {
        ssr::touch_job(&s, &job_id).await?;
        s.jobs.retry(&job_id)
    })
    .await
}

/// `POST /api/resave_job`，请求体 `{"job_id":"…"}`：把“保存失败”的任务的图（在暂存区里）重新存进图库。
#[server(prefix = "/api", endpoint = "resave_job", input = JsonStr, output = JsonStr)]
pub async fn resave_job(job_id: String) -> Result<JobView, AppError> {
    ssr::with_state(|s| async move {
        ssr::touch_job(&s, &job_id).await?;
        s.jobs.resave(&job_id).await
    })
    .await
}

/// `POST /api/remove_job`，请求体 `{"job_id":"…"}`：从工作台移除卡片（进行中的先取消，图片移入回收站）。
#[server(prefix = "/api", endpoint = "remove_job", input = JsonStr, output = JsonStr)]
pub async fn remove_job(job_id: String) -> Result<(), AppError> {
    ssr::with_state(|s| async move {
        ssr::touch_job(&s, &job_id).await?;
        s.jobs.remove(&job_id).await
    })
    .await
}

/// 一张参考图：id、缩略图地址与（上传时的）文件名。
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reference {
    pub id: String,
    pub thumb_url: String,
    #[serde(default)]
    pub filename: Option<String>,
}

impl Reference {
    /// 图库里的图片（32 位 id）用缩略图；上传的参考图（64 位内容哈希）用原图。
    fn from_id(id: String) -> Self {
        let thumb_url = if id.len() == 64 {
            format!("/uploads/{id}")
        } else {
            format!("/files/{id}/thumb")
        };
        Self {
            id,
            thumb_url,
            filename: None,
        }
    }

    /// 原图的地址（大图里“原图”一栏用）。
    fn full_url(id: &str) -> String {
        if id.len() == 64 {
            format!("/uploads/{id}")
        } else {
            format!("/files/{id}")
        }
    }
}

/// 工作台打开时服务器交给页面的东西。
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct StudioInit {
    pub jobs: Vec<JobView>,
    /// 可选的模型（各上游模型的并集，第一个是默认）与它们在模型目录里的能力与价格。
    pub models: Vec<crate::types::catalogue::ModelInfo>,
    /// 花费的显示币种与汇率（`[usage]`）。
    #[serde(default)]
    pub pricing: crate::types::money::Pricing,
}

#[cfg(feature = "ssr")]
fn studio_init() -> StudioInit {
    let Ok(state) = crate::state::AppState::from_context() else {
        return StudioInit::default();
    };
    let config = state.config.load();
    let models = state
        .gateway
        .models(&config)
        .into_iter()
        // 能力按目录（旧 id 按现在的模型算），id 保持上游列出的写法。
        .map(|m| crate::types::catalogue::ModelInfo {
            id: m.clone(),
            ..crate::catalogue::lookup(&config, &m)
        })
        .collect();
    StudioInit {
        jobs: state.jobs.snapshot(),
        models,
        pricing: config.usage.pricing(),
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

/// 把一条推送合并进卡片列表；带排队顺序的消息（快照、排队变化）返回新的顺序。
fn apply(jobs: &mut Vec<JobView>, message: JobMessage) -> Option<Vec<String>> {
    let queue = match message {
        JobMessage::Snapshot { jobs: all, queue } => {
            *jobs = all;
            Some(queue)
        }
        JobMessage::Job(view) => {
            match jobs.iter_mut().find(|j| j.job_id == view.job_id) {
                // 提交的响应可能比推送晚到：旧的视图不覆盖新的。
                Some(existing) if view.is_not_older_than(existing) => *existing = *view,
                Some(_) => {}
                None => jobs.push(*view),
            }
            None
        }
        JobMessage::Removed { job_id } => {
            jobs.retain(|j| j.job_id != job_id);
            None
        }
        JobMessage::Queue { job_ids } => return Some(job_ids),
    };
    sort_jobs(jobs);
    queue
}

/// 提交得到的任务并进卡片列表（之后的变化经推送）。
fn add_submitted(jobs: RwSignal<Vec<JobView>>, views: Vec<JobView>) {
    jobs.update(|list| {
        for v in views {
            apply(list, JobMessage::Job(Box::new(v)));
        }
    });
}

/// 推送延迟（服务器上状态变化 → 浏览器收到并更新）：最近几次的样本。
const LAG_SAMPLES: usize = 200;

/// 连上 `/ws`，把每条推送合并进卡片列表与排队顺序，并记下推送延迟与连接状态。
fn follow_jobs(
    jobs: RwSignal<Vec<JobView>>,
    queue: RwSignal<Vec<String>>,
    connected: RwSignal<bool>,
    lags: RwSignal<Vec<u64>>,
) {
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
            if let JobMessage::Queue { job_ids } = message {
                queue.set(job_ids);
                return;
            }
            let mut new_queue = None;
            jobs.update(|list| new_queue = apply(list, message));
            if let Some(q) = new_queue {
                queue.set(q);
            }
        },
        move |up| connected.set(up),
    );
}

/// 页面上的批次（新的在前）。卡片已按（批次创建时间、批次、序号）排好，相邻的同批卡片归为一组。
fn batch_ids(jobs: &[JobView]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for j in jobs {
        if ids.last() != Some(&j.batch_id) && !ids.contains(&j.batch_id) {
            ids.push(j.batch_id.clone());
        }
    }
    ids
}

/// 大图打开时的按键：Esc 关上（局部修改时先退出局部修改），←/→ 换到同批的上一张、下一张
///（局部修改时、或焦点在输入框与滑块里时不换）。
fn lightbox_key(
    lightbox: RwSignal<Option<String>>,
    editing: RwSignal<bool>,
    jobs: RwSignal<Vec<JobView>>,
    ev: &web_sys::KeyboardEvent,
) {
    let Some(open) = lightbox.get_untracked() else {
        return;
    };
    let in_field = ev
        .target()
        .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
        .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
    let delta = match ev.key().as_str() {
        "Escape" if editing.get_untracked() => {
            editing.set(false);
            return;
        }
        "Escape" => {
            lightbox.set(None);
            return;
        }
        _ if in_field || editing.get_untracked() => return,
        "ArrowLeft" => -1,
        "ArrowRight" => 1,
        _ => return,
    };
    if let Some(next) = jobs.with_untracked(|list| lightbox::step(list, &open, delta)) {
        lightbox.set(Some(next));
    }
}

/// 工作台的交互部分。
#[island(lazy)]
fn Studio(references: Vec<Reference>, init: StudioInit) -> impl IntoView {
    cost::Prices::provide(init.models.clone(), init.pricing);
    let hydrated = RwSignal::new(false);
    let connected = RwSignal::new(false);
    let mut initial = init.jobs;
    sort_jobs(&mut initial);
    let jobs = RwSignal::new(initial);
    let queue = RwSignal::new(Vec::<String>::new());
    let references = RwSignal::new(references);
    let lightbox = RwSignal::new(None::<String>);
    let editing = RwSignal::new(false);
    let lags = RwSignal::new(Vec::<u64>::new());
    Effect::new(move |_| {
        hydrated.set(true);
        follow_jobs(jobs, queue, connected, lags);
    });
    let _keys = window_event_listener(leptos::ev::keydown, move |ev| {
        lightbox_key(lightbox, editing, jobs, &ev)
    });
    let positions = Memo::new(move |_| {
        queue.with(|q| {
            q.iter()
                .enumerate()
                .map(|(i, id)| (id.clone(), i))
                .collect::<HashMap<_, _>>()
        })
    });
    let batches = Memo::new(move |_| jobs.with(|l| batch_ids(l)));
    let save_prompt = RwSignal::new(None::<PromptDraft>);

    view! {
        <section class="studio" data-hydrated=move || hydrated.get().to_string()
            data-connected=move || connected.get().to_string()>
            <LiveIndicator connected lags/>
            <div class="batches" data-testid="cards" aria-busy=move || (!hydrated.get()).then_some("true")>
                <Show when=move || batches.with(Vec::is_empty)>
                    <StudioHint/>
                </Show>
                <For each=move || batches.get() key=|id| id.clone() let:batch_id>
                    <BatchSection batch_id jobs lightbox references positions save_prompt hydrated/>
                </For>
            </div>
            <PromptBar references jobs models=init.models save_prompt hydrated/>
            <Lightbox open=lightbox editing jobs/>
            <SavePromptDialog draft=save_prompt/>
        </section>
    }
}

/// 还没有卡片时的说明：怎么写提示词，选项与批量在哪里。
#[component]
fn StudioHint() -> impl IntoView {
    view! {
        <div class="empty studio-hint" data-testid="studio-hint">
            <p class="empty-title">"写下你想要的画面，按 Enter 或点“生成”"</p>
            <ul>
                <li>"描述越具体越好：主体、场景、光线、风格，例如“清晨薄雾中的木屋，水彩风格”。"</li>
                <li>"“选项”里可以选张数（1–16）、模型、宽高比与分辨率；几张图会同时生成，每张一个卡片、各有进度。"</li>
                <li>"想改一张已有的图？把它拖进下面的提示词栏、粘贴，或在“选项”里点“＋ 参考图”。"</li>
                <li>"批量：在提示词里写 {风格} 这样的变量并填几个值，或切到“多条”“批量改图”。"</li>
            </ul>
        </div>
    }
}

/// 一个批次：标题行与它的卡片（按序号）。
#[component]
fn BatchSection(
    batch_id: String,
    jobs: RwSignal<Vec<JobView>>,
    lightbox: RwSignal<Option<String>>,
    references: RwSignal<Vec<Reference>>,
    /// 排队任务的位置（任务 id → 第几个开始，从 0 起）。
    positions: Memo<HashMap<String, usize>>,
    save_prompt: RwSignal<Option<PromptDraft>>,
    hydrated: RwSignal<bool>,
) -> impl IntoView {
    let id = batch_id.clone();
    let shared_id = batch_id.clone();
    let shared = Memo::new(move |_| jobs.with(|l| batch_header::shared(l, &shared_id)));
    let ids = Memo::new(move |_| {
        jobs.with(|l| {
            l.iter()
                .filter(|j| j.batch_id == id)
                .map(|j| j.job_id.clone())
                .collect::<Vec<_>>()
        })
    });
    view! {
        <section class="batch" data-testid="batch" data-batch-id=batch_id.clone()>
            <BatchHeader batch_id=batch_id.clone() jobs shared hydrated/>
            <div class="grid">
                <For each=move || ids.get() key=|id| id.clone() let:id>
                    {
                        let job = Memo::new(move |_| {
                            jobs.with(|l| l.iter().find(|j| j.job_id == id).cloned())
                        });
                        view! { <JobCard job lightbox references positions save_prompt shared hydrated/> }
                    }
                </For>
            </div>
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
