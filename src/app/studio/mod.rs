//! 工作台：上方是任务卡片网格（新的在前），下方是固定的提示词栏。
//!
//! 提交经服务器函数 `submit_jobs` 变成一批任务；每张卡片的状态与进度由 `/ws` 推送（见 `crate::jobs`）。
//! `generate_image` 是同步的单张接口，供脚本调用（README）。

use super::browser;
use super::error::AppError;
use super::types::{
    describe_attempt, AspectRatio, GenerateRequest, ImageSize, JobImage, JobMessage, JobState,
    JobView, SavedImage, SubmitRequest, MAX_BATCH,
};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use leptos::task::spawn_local;

/// 生成一张图像并保存到服务器。可由任何 HTTP 客户端以 JSON 调用：
/// `POST /api/generate_image`，请求体 `{"request":{"prompt":"…","aspect_ratio":"16:9","image_size":"1K"}}`。
#[server(prefix = "/api", endpoint = "generate_image", input = Json)]
pub async fn generate_image(request: GenerateRequest) -> Result<SavedImage, AppError> {
    ssr::generate(request)
        .await
        .map_err(super::error::ssr::into_app_error)
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::*;
    use crate::error::ApiError;
    use crate::gateway::ImageRequest;

    use crate::jobs::{MAX_PROMPT_CHARS, MAX_REFERENCES};

    pub async fn generate(request: GenerateRequest) -> Result<SavedImage, ApiError> {
        let state = crate::app::error::ssr::state()?;
        let prompt = request.prompt.trim().to_string();
        if prompt.is_empty() {
            return Err(ApiError::InvalidRequest("提示词不能为空".into()));
        }
        if prompt.chars().count() > MAX_PROMPT_CHARS {
            return Err(ApiError::InvalidRequest(format!(
                "提示词太长了，最多 {MAX_PROMPT_CHARS} 个字符"
            )));
        }
        if request.references.len() > MAX_REFERENCES {
            return Err(ApiError::InvalidRequest(format!(
                "参考图最多 {MAX_REFERENCES} 张"
            )));
        }
        let mut references = Vec::with_capacity(request.references.len());
        for id in &request.references {
            references.push(crate::state::load_reference(&state.storage, id).await?);
        }
        let (image, record) = state
            .generate_and_save(ImageRequest {
                prompt: prompt.clone(),
                references,
                aspect_ratio: request.aspect_ratio,
                image_size: request.image_size,
                model: None,
                progress: Default::default(),
            })
            .await?;
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
}

/// `POST /api/submit_jobs`，请求体 `{"request":{"prompt":"…","count":4,"aspect_ratio":"1:1","image_size":"1K","model":"","references":[]}}`：
/// 提交一批（1–16 张），立即返回各任务；之后的进度经 `/ws` 推送。参数有误时 400，什么都不排队。
#[server(prefix = "/api", endpoint = "submit_jobs", input = Json)]
pub async fn submit_jobs(request: SubmitRequest) -> Result<Vec<JobView>, AppError> {
    use super::error::ssr::{into_app_error, state};
    let state = state().map_err(into_app_error)?;
    state.jobs.submit(request).await.map_err(into_app_error)
}

/// `POST /api/cancel_job`，请求体 `{"job_id":"…"}`：取消排队中或生成中的任务。
#[server(prefix = "/api", endpoint = "cancel_job", input = Json)]
pub async fn cancel_job(job_id: String) -> Result<JobView, AppError> {
    use super::error::ssr::{into_app_error, state};
    state()
        .and_then(|s| s.jobs.cancel(&job_id))
        .map_err(into_app_error)
}

/// `POST /api/retry_job`，请求体 `{"job_id":"…"}`：重试失败、已取消或中断的任务。
#[server(prefix = "/api", endpoint = "retry_job", input = Json)]
pub async fn retry_job(job_id: String) -> Result<JobView, AppError> {
    use super::error::ssr::{into_app_error, state};
    state()
        .and_then(|s| s.jobs.retry(&job_id))
        .map_err(into_app_error)
}

/// `POST /api/remove_job`，请求体 `{"job_id":"…"}`：从工作台移除卡片（进行中的先取消，图片移入回收站）。
#[server(prefix = "/api", endpoint = "remove_job", input = Json)]
pub async fn remove_job(job_id: String) -> Result<(), AppError> {
    use super::error::ssr::{into_app_error, state};
    let state = state().map_err(into_app_error)?;
    state.jobs.remove(&job_id).await.map_err(into_app_error)
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
    let Ok(state) = super::error::ssr::state() else {
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
    // 推送延迟（服务器上状态变化 → 浏览器收到并更新），最近 200 次。
    let lags = RwSignal::new(Vec::<u64>::new());
    Effect::new(move |_| {
        hydrated.set(true);
        browser::connect_jobs(
            move |message| {
                if let JobMessage::Job(view) = &message {
                    let lag = browser::now_ms().saturating_sub(view.changed_at_ms);
                    lags.update(|l| {
                        l.push(lag);
                        if l.len() > 200 {
                            l.remove(0);
                        }
                    });
                }
                jobs.update(|list| apply(list, message));
            },
            move |up| connected.set(up),
        );
    });
    let lag_stats = Memo::new(move |_| {
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
    let _esc = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() == "Escape" {
            lightbox.set(None);
        }
    });
    let ids =
        Memo::new(move |_| jobs.with(|l| l.iter().map(|j| j.job_id.clone()).collect::<Vec<_>>()));

    view! {
        <section class="studio" data-hydrated=move || hydrated.get().to_string()
            data-connected=move || connected.get().to_string()
            data-lag-p50=move || lag_stats.get().0.map(|v| v.to_string())
            data-lag-max=move || lag_stats.get().1.map(|v| v.to_string())>
            <p class="live" title=move || match lag_stats.get() {
                (Some(p50), Some(max), n) => format!("推送延迟：中位 {p50} ms，最大 {max} ms（最近 {n} 次）"),
                _ => "实时更新".to_string(),
            }>
                {move || if connected.get() { "● 实时" } else { "○ 重连中……" }}
            </p>
            <div class="grid" data-testid="cards">
                <Show when=move || ids.with(Vec::is_empty)>
                    <p class="empty">"在下方输入提示词，选择张数，按 Enter 或点“生成”开始。"</p>
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

fn seconds(ms: u64) -> String {
    format!("{:.1} 秒", ms as f64 / 1000.0)
}

/// 卡片状态行：阶段、百分比、用时与预计剩余时间。
fn status_line(j: &JobView) -> String {
    match j.state {
        JobState::Running => {
            let phase = j.phase.map(|p| p.label()).unwrap_or("准备");
            let mut s = format!("{phase} · {}% · 已用 {}", j.percent, seconds(j.elapsed_ms));
            match j.eta_ms {
                Some(eta) => s.push_str(&format!(" · 预计还需 {}", seconds(eta))),
                None if j.phase == Some(super::types::Phase::Waiting) => s.push_str(" · 比平时慢"),
                None => {}
            }
            if let Some(up) = &j.upstream {
                s.push_str(&format!(" · {up}"));
                if j.attempt > 1 {
                    s.push_str(&format!("（第 {} 次尝试）", j.attempt));
                }
            }
            s
        }
        JobState::Done => format!(
            "用时 {} · {}",
            seconds(j.elapsed_ms),
            j.upstream.clone().unwrap_or_default()
        ),
        JobState::Queued => "等待空闲的生成名额".into(),
        _ => String::new(),
    }
}

#[component]
fn JobCard(
    job: Memo<Option<JobView>>,
    lightbox: RwSignal<Option<JobImage>>,
    references: RwSignal<Vec<Reference>>,
) -> impl IntoView {
    let get = move || job.get();
    let field = move |f: fn(&JobView) -> String| {
        move || job.with(|j| j.as_ref().map(f).unwrap_or_default())
    };
    let state = move || job.with(|j| j.as_ref().map(|j| j.state));
    let act = move |what: &'static str| {
        let Some(id) = job.with_untracked(|j| j.as_ref().map(|j| j.job_id.clone())) else {
            return;
        };
        spawn_local(async move {
            let result = match what {
                "cancel" => cancel_job(id).await.map(|_| ()),
                "retry" => retry_job(id).await.map(|_| ()),
                _ => remove_job(id).await,
            };
            if let Err(e) = result {
                leptos::logging::warn!("操作失败：{}", e.message);
            }
        });
    };
    view! {
        <article class="card job" data-testid="job-card"
            data-state=move || state().map(|s| s.as_str()).unwrap_or("")>
            <div class="media" style=move || job.with(|j| j.as_ref().map(|j| {
                let (w, h) = super::types::pixel_size(j.aspect_ratio, j.image_size);
                format!("aspect-ratio: {w} / {h}")
            }).unwrap_or_default())>
                {move || match get().and_then(|j| j.image) {
                    Some(img) => {
                        let open = img.clone();
                        view! {
                            <button type="button" class="open" title="查看大图" on:click=move |_| lightbox.set(Some(open.clone()))>
                                <img src=img.thumb_url.clone() alt="生成的图片" width=img.width height=img.height/>
                            </button>
                        }.into_any()
                    }
                    None => view! { <div class="placeholder"></div> }.into_any(),
                }}
            </div>
            <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100"
                aria-valuenow=move || job.with(|j| j.as_ref().map(|j| j.percent).unwrap_or(0))>
                <div class="bar" style=move || format!("width: {}%", job.with(|j| j.as_ref().map(|j| j.percent).unwrap_or(0)))></div>
            </div>
            <div class="body">
                <p class="state">
                    <span class="badge" data-testid="job-state">{move || state().map(|s| s.label()).unwrap_or("")}</span>
                    <span class="status">{field(status_line)}</span>
                </p>
                <p class="prompt" title=field(|j| j.prompt.clone())>{field(|j| j.prompt.clone())}</p>
                {move || get().and_then(|j| j.error).map(|e| view! { <p class="error" data-testid="job-error">{e}</p> })}
                {move || get().filter(|j| !j.attempts.is_empty()).map(|j| view! {
                    <details class="trace">
                        <summary>{format!("尝试记录（{} 次）", j.attempts.len())}</summary>
                        <ol>{j.attempts.iter().map(|a| view! { <li>{describe_attempt(a)}</li> }).collect_view()}</ol>
                    </details>
                })}
                <div class="actions">
                    {move || get().and_then(|j| j.image).map(|img| {
                        let id = img.id.clone();
                        view! {
                            <a class="button" href=format!("{}?download=1", img.url) download>"下载"</a>
                            <button type="button" on:click=move |_| {
                                let r = Reference::from_id(id.clone());
                                references.update(|list| if !list.contains(&r) { list.push(r) });
                            }>"以此图继续编辑"</button>
                        }
                    })}
                    <button type="button" on:click=move |_| browser::copy_text(&field(|j| j.prompt.clone())())>"复制提示词"</button>
                    <Show when=move || state().is_some_and(JobState::can_retry)>
                        <button type="button" on:click=move |_| act("retry")>"重试"</button>
                    </Show>
                    <Show when=move || state().is_some_and(JobState::is_active)>
                        <button type="button" on:click=move |_| act("cancel")>"取消"</button>
                    </Show>
                    <button type="button" class="danger" title="移除卡片；已生成的图片移入图库的回收站"
                        on:click=move |_| act("remove")>"删除"</button>
                </div>
            </div>
        </article>
    }
}

/// 底部固定的提示词栏。
#[component]
fn PromptBar(
    references: RwSignal<Vec<Reference>>,
    jobs: RwSignal<Vec<JobView>>,
    models: Vec<String>,
) -> impl IntoView {
    let prompt = RwSignal::new(String::new());
    let count = RwSignal::new(1u32);
    let aspect = RwSignal::new(AspectRatio::default());
    let size = RwSignal::new(ImageSize::default());
    let model = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let uploading = RwSignal::new(false);
    let dragging = RwSignal::new(false);

    let can_send = move || !prompt.with(|p| p.trim().is_empty()) && !busy.get() && !uploading.get();
    let submit = move || {
        if !can_send() {
            return;
        }
        let request = SubmitRequest {
            prompt: prompt.get_untracked(),
            count: count.get_untracked(),
            aspect_ratio: aspect.get_untracked(),
            image_size: size.get_untracked(),
            model: model.get_untracked(),
            references: references.with_untracked(|r| r.iter().map(|r| r.id.clone()).collect()),
        };
        error.set(None);
        busy.set(true);
        spawn_local(async move {
            match submit_jobs(request).await {
                Ok(views) => jobs.update(|list| {
                    for v in views {
                        apply(list, JobMessage::Job(Box::new(v)));
                    }
                }),
                Err(e) => error.set(Some(e.message)),
            }
            busy.set(false);
        });
    };
    let add_files = move |files: Vec<web_sys::File>| {
        if files.is_empty() {
            return;
        }
        error.set(None);
        uploading.set(true);
        spawn_local(async move {
            #[cfg(feature = "hydrate")]
            match browser::upload(files).await {
                Ok(saved) => references.update(|list| {
                    for u in saved {
                        let r = Reference {
                            id: u.id,
                            thumb_url: u.url,
                        };
                        if !list.contains(&r) {
                            list.push(r);
                        }
                    }
                }),
                Err(message) => error.set(Some(message)),
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = files;
            uploading.set(false);
        });
    };
    let file_input = NodeRef::<leptos::html::Input>::new();

    view! {
        // novalidate：张数等由服务器校验，原因以中文显示在提示词栏旁（浏览器自带的提示随系统语言）。
        <form class="prompt-bar" novalidate class:dragging=move || dragging.get()
            on:submit=move |ev| {
                ev.prevent_default();
                submit();
            }
            on:dragover=move |ev| {
                ev.prevent_default();
                dragging.set(true);
            }
            on:dragleave=move |_| dragging.set(false)
            on:drop=move |ev| {
                ev.prevent_default();
                dragging.set(false);
                add_files(files_of(ev.data_transfer().and_then(|d| d.files())));
            }
        >
            <div class="references-row">
                <ul class="references" aria-label="参考图">
                    <For each=move || references.get() key=|r| r.id.clone() let:r>
                        {
                            let remove = r.id.clone();
                            view! {
                                <li data-testid="reference">
                                    <img src=r.thumb_url.clone() alt="参考图"/>
                                    <button type="button" aria-label="移除参考图" on:click=move |_| {
                                        references.update(|list| list.retain(|x| x.id != remove));
                                    }>"×"</button>
                                </li>
                            }
                        }
                    </For>
                </ul>
                <button type="button" class="add-reference" title="添加参考图（也可以拖进来或粘贴）"
                    on:click=move |_| { if let Some(input) = file_input.get() { input.click(); } }>
                    {move || if uploading.get() { "上传中……" } else { "＋ 参考图" }}
                </button>
                <input type="file" accept="image/png,image/jpeg,image/webp" multiple hidden
                    node_ref=file_input data-testid="file-input"
                    on:change=move |ev| {
                        let input: web_sys::HtmlInputElement = event_target(&ev);
                        add_files(files_of(input.files()));
                        input.set_value("");
                    }/>
            </div>
            <textarea
                name="prompt"
                placeholder="描述你想要的画面……（Enter 发送，Shift+Enter 换行，可粘贴图片作参考）"
                rows="2"
                prop:value=move || prompt.get()
                on:input=move |ev| prompt.set(event_target_value(&ev))
                on:paste=move |ev| {
                    let files = files_of(ev.clipboard_data().and_then(|d| d.files()));
                    if !files.is_empty() {
                        ev.prevent_default();
                        add_files(files);
                    }
                }
                on:keydown=move |ev| {
                    if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                        ev.prevent_default();
                        submit();
                    }
                }
            ></textarea>
            <div class="controls">
                <div class="counts" role="group" aria-label="张数">
                    {[1u32, 2, 4, 8, 16].into_iter().map(|n| view! {
                        <button type="button" aria-pressed=move || (count.get() == n).to_string()
                            on:click=move |_| count.set(n)>{n}</button>
                    }).collect_view()}
                    <input type="number" name="count" min="1" max=MAX_BATCH aria-label="张数（1–16）"
                        prop:value=move || count.get().to_string()
                        on:input=move |ev| {
                            if let Ok(n) = event_target_value(&ev).parse::<u32>() {
                                count.set(n);
                            }
                        }/>
                </div>
                <label>
                    "宽高比"
                    <select name="aspect_ratio" on:change=move |ev| {
                        aspect.set(event_target_value(&ev).parse().unwrap_or_default())
                    }>
                        {AspectRatio::ALL
                            .into_iter()
                            .map(|a| view! { <option value=a.as_str()>{a.as_str()}</option> })
                            .collect_view()}
                    </select>
                </label>
                <label>
                    "分辨率"
                    <select name="image_size" on:change=move |ev| {
                        size.set(event_target_value(&ev).parse().unwrap_or_default())
                    }>
                        {ImageSize::ALL
                            .into_iter()
                            .map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> })
                            .collect_view()}
                    </select>
                </label>
                <label>
                    "模型"
                    <select name="model" on:change=move |ev| model.set(event_target_value(&ev))>
                        <option value="">"默认"</option>
                        {models.into_iter().map(|m| view! { <option value=m.clone()>{m.clone()}</option> }).collect_view()}
                    </select>
                </label>
                <button type="submit" class="generate" disabled=move || !can_send()>
                    "生成"
                </button>
            </div>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
            </Show>
        </form>
    }
}

/// 文件列表 → Vec。
fn files_of(list: Option<web_sys::FileList>) -> Vec<web_sys::File> {
    let Some(list) = list else {
        return Vec::new();
    };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}
