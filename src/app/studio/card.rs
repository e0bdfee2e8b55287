//! 一张任务卡片，图在最上面（#33）：图（或占位）与进度条，紧接着一排图标按钮（收藏、下载、以此图继续编辑、
//! 重试 / 重新保存 / 取消，以及“更多”：复制提示词、保存为提示词、删除），然后是状态行（状态、阶段、用时）、
//! 与这一批不同时的提示词、错误与提醒、参考图；变量值、模型说明、来源与尝试记录收在“详情”里。
//! 一批共同的提示词与模型说明只在批次标题里显示一次（见 `batch_header.rs` 的 `Shared`）；
//! 与它相同的提示词在卡片上只留给读屏软件。水合之前按钮是禁用的（`hydrated`）。

use super::batch_header::Shared;
use super::{browser, cancel_job, remove_job, resave_job, retry_job, Reference};
use crate::app::gallery::set_image_favourite;
use crate::app::icon::{self, Icon};
use crate::app::star::Star;
use crate::types::prompt::PromptDraft;
use crate::types::{describe_attempt, pixel_size, JobState, JobView, Phase};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::HashMap;

fn seconds(ms: u64) -> String {
    format!("{:.1} 秒", ms as f64 / 1000.0)
}

/// 卡片状态行：阶段、百分比、用时与预计剩余时间；排队中的是第几位。
fn status_line(j: &JobView, position: Option<usize>) -> String {
    match j.state {
        JobState::Running => {
            let phase = j.phase.map(|p| p.label()).unwrap_or("准备");
            let mut s = format!("{phase} · {}% · 已用 {}", j.percent, seconds(j.elapsed_ms));
            match j.eta_ms {
                Some(eta) => s.push_str(&format!(" · 预计还需 {}", seconds(eta))),
                None if j.phase == Some(Phase::Waiting) => s.push_str(" · 比平时慢"),
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
        JobState::Queued if j.batch_paused => "本批已暂停".into(),
        JobState::Queued => match position {
            Some(p) => format!("排队第 {} 位", p + 1),
            None => "等待空闲的生成名额".into(),
        },
        _ => String::new(),
    }
}

/// 卡片上的操作。
#[derive(Clone, Copy)]
enum Action {
    Cancel,
    Retry,
    Resave,
    Remove,
}

/// 对一个任务执行操作；结果经 `/ws` 推送回来，这里只记下失败。
fn perform(action: Action, job_id: String) {
    spawn_local(async move {
        let result = match action {
            Action::Cancel => cancel_job(job_id).await.map(|_| ()),
            Action::Retry => retry_job(job_id).await.map(|_| ()),
            Action::Resave => resave_job(job_id).await.map(|_| ()),
            Action::Remove => remove_job(job_id).await,
        };
        if let Err(e) = result {
            leptos::logging::warn!("操作失败：{}", e.message);
        }
    });
}

#[component]
pub fn JobCard(
    job: Memo<Option<JobView>>,
    lightbox: RwSignal<Option<String>>,
    references: RwSignal<Vec<Reference>>,
    /// 排队任务的位置（任务 id → 第几个开始，从 0 起）。
    positions: Memo<HashMap<String, usize>>,
    /// “保存为提示词”对话框要预填的内容（设了就打开）。
    save_prompt: RwSignal<Option<PromptDraft>>,
    /// 这一批共同的提示词与模型说明。
    shared: Memo<Shared>,
    /// 页面已水合（之前按钮禁用）。
    hydrated: RwSignal<bool>,
) -> impl IntoView {
    let state = move || job.with(|j| j.as_ref().map(|j| j.state));
    let percent = move || job.with(|j| j.as_ref().map(|j| j.percent).unwrap_or(0));
    let status = move || {
        job.with(|j| {
            j.as_ref()
                .map(|j| status_line(j, positions.with(|p| p.get(&j.job_id).copied())))
                .unwrap_or_default()
        })
    };
    let prompt = move || job.with(|j| j.as_ref().map(|j| j.prompt.clone()).unwrap_or_default());
    let prices = super::cost::Prices::get();
    // 与这一批共同的提示词一样：批次标题里已经有了，卡片上只留给读屏软件。
    let same_prompt = move || {
        shared.with(|s| {
            job.with(|j| {
                j.as_ref()
                    .is_some_and(|j| s.prompt.as_deref() == Some(j.prompt.as_str()))
            })
        })
    };
    view! {
        <article class="card job" data-testid="job-card"
            data-state=move || state().map(|s| s.as_str()).unwrap_or("")>
            <CardMedia job lightbox/>
            <div class="progress" role="progressbar" aria-label="生成进度" aria-valuemin="0" aria-valuemax="100"
                aria-valuenow=percent>
                <div class="bar" style=move || format!("width: {}%", percent())></div>
            </div>
            <CardActions job references save_prompt hydrated/>
            <div class="body">
                <p class="state">
                    <span class="badge" data-testid="job-state">{move || state().map(|s| s.label()).unwrap_or("")}</span>
                    <span class="status" data-testid="job-status">{status}</span>
                    {move || job.with(|j| j.as_ref().and_then(|j| prices.card(j))).map(|c| view! {
                        <span class="cost" data-testid="job-cost">{c}</span>
                    })}
                </p>
                <p class="prompt" class:sr-only=same_prompt title=prompt>{prompt}</p>
                {move || job.get().and_then(|j| j.error).map(|e| view! { <p class="error" data-testid="job-error">{e}</p> })}
                {move || job.with(|j| j.as_ref().and_then(|j| {
                    let image = j.image.as_ref()?;
                    (!j.model.is_empty() && !image.model.is_empty() && image.model != j.model)
                        .then(|| (image.model.clone(), j.model.clone()))
                })).map(|(served, asked)| view! {
                    <p class="note" data-testid="served-model">{format!("已自动改用 {served}（请求的“{asked}”已停用或暂时不可用）")}</p>
                })}
                {move || job.with(|j| j.as_ref().and_then(|j| j.image.as_ref()).and_then(|i| i.size_note.clone())).map(|n| view! {
                    <p class="size-note" data-testid="size-note"><span class="badge warn">"尺寸不符"</span>" "{n}</p>
                })}
                <CardReferences job/>
                <CardDetails job shared/>
            </div>
        </article>
    }
}

/// “详情”：变量值、与这一批不同的模型说明、联网搜索的来源与尝试记录；都没有时不显示。
/// `<details>` 本身不随推送重画（进行中的卡片每 100 ms 一条推送），打开了就一直开着。
#[component]
fn CardDetails(job: Memo<Option<JobView>>, shared: Memo<Shared>) -> impl IntoView {
    let image = move |f: fn(&crate::types::JobImage) -> Option<String>| {
        job.with(|j| j.as_ref().and_then(|j| j.image.as_ref()).and_then(f))
    };
    let model_text = Memo::new(move |_| {
        image(|i| i.model_text.clone())
            .filter(|t| shared.with(|s| s.model_text.as_ref() != Some(t)))
    });
    let variables = Memo::new(move |_| {
        job.with(|j| j.as_ref().map(|j| j.variables.clone()).unwrap_or_default())
    });
    let sources = Memo::new(move |_| {
        job.with(|j| {
            j.as_ref()
                .and_then(|j| j.image.as_ref())
                .map(|i| i.sources.clone())
                .unwrap_or_default()
        })
    });
    let attempts = Memo::new(move |_| {
        job.with(|j| j.as_ref().map(|j| j.attempts.clone()).unwrap_or_default())
    });
    let empty = move || {
        model_text.with(Option::is_none)
            && variables.with(|v| v.is_empty())
            && sources.with(Vec::is_empty)
            && attempts.with(Vec::is_empty)
    };
    let summary = move || match attempts.with(Vec::len) {
        0 => "详情".to_string(),
        n => format!("详情 · 尝试记录（{n} 次）"),
    };
    view! {
        <details class="more" hidden=empty>
            <summary>{summary}</summary>
            {move || variables.with(|v| (!v.is_empty()).then(|| view! {
                <p class="variables">
                    {v.iter().map(|(k, v)| view! { <span class="chip">{format!("{k}：{v}")}</span> }).collect_view()}
                </p>
            }))}
            {move || model_text.get().map(|t| view! {
                <p class="model-text" data-testid="model-text"><strong>"模型说明："</strong>{t}</p>
            })}
            {move || {
                let sources = sources.get();
                (!sources.is_empty()).then(|| view! { <crate::app::gallery::detail::Sources sources/> })
            }}
            {move || attempts.with(|a| (!a.is_empty()).then(|| view! {
                <ol class="trace">{a.iter().map(|a| view! { <li>{describe_attempt(a)}</li> }).collect_view()}</ol>
            }))}
        </details>
    }
}

/// 卡片上的参考图（原图）小缩略图；点开大图时与结果并排。
#[component]
fn CardReferences(job: Memo<Option<JobView>>) -> impl IntoView {
    move || {
        let ids = job.with(|j| {
            j.as_ref()
                .map(|j| j.reference_ids.clone())
                .unwrap_or_default()
        });
        (!ids.is_empty()).then(|| {
            view! {
                <ul class="card-references" aria-label="参考图" data-testid="card-references">
                    {ids.into_iter().map(|id| {
                        let r = Reference::from_id(id);
                        view! { <li><img src=r.thumb_url alt="参考图" loading="lazy"/></li> }
                    }).collect_view()}
                </ul>
            }
        })
    }
}

/// 卡片的图：完成后是缩略图（点开看大图），之前是按宽高比占位的灰块。
#[component]
fn CardMedia(job: Memo<Option<JobView>>, lightbox: RwSignal<Option<String>>) -> impl IntoView {
    let shape = move || {
        job.with(|j| {
            j.as_ref()
                .map(|j| {
                    let (w, h) = pixel_size(j.aspect_ratio, j.image_size);
                    format!("aspect-ratio: {w} / {h}")
                })
                .unwrap_or_default()
        })
    };
    // 只在图变了时重画（进行中的卡片每 100 ms 一条推送，占位块的动画不因此从头开始）。
    let image = Memo::new(move |_| {
        job.with(|j| {
            j.as_ref().and_then(|j| {
                j.image
                    .as_ref()
                    .map(|i| (j.job_id.clone(), i.thumb_url.clone(), i.width, i.height))
            })
        })
    });
    view! {
        <div class="media" style=shape>
            {move || image.get().map(|(job_id, thumb_url, width, height)| view! {
                <button type="button" class="open" title="查看大图" on:click=move |_| lightbox.set(Some(job_id.clone()))>
                    <img src=thumb_url alt="生成的图片" width=width height=height/>
                </button>
            })}
            {move || image.with(Option::is_none).then(|| view! { <div class="placeholder"></div> })}
        </div>
    }
}

/// 这张卡片的提示词，作为“保存为提示词”的初稿：用了变量的存模板，变量的默认值是这张卡片用的值。
fn prompt_draft(j: &JobView) -> PromptDraft {
    match &j.template {
        Some(template) => PromptDraft {
            content: template.clone(),
            variables: j
                .variables
                .iter()
                .map(|(k, v)| (k.clone(), vec![v.clone()]))
                .collect(),
            ..Default::default()
        },
        None => PromptDraft {
            content: j.prompt.clone(),
            ..Default::default()
        },
    }
}

/// 收藏或取消收藏卡片上的图（新状态经 `/ws` 推送回来）。
fn star_image(image_id: String, on: bool) {
    spawn_local(async move {
        if let Err(e) = set_image_favourite(image_id, on).await {
            leptos::logging::warn!("收藏失败：{}", e.message);
        }
    });
}

/// 卡片上的“更多”菜单。
type Menu = NodeRef<leptos::html::Details>;

/// 收起“更多”菜单（点了里面的一项之后）。
fn close_menu(menu: Menu) {
    if let Some(details) = menu.get_untracked() {
        let _ = details.remove_attribute("open");
    }
}

/// 卡片上的操作：先收起“更多”，再对这张卡片的任务执行。
fn act(job: Memo<Option<JobView>>, menu: Menu, action: Action) {
    close_menu(menu);
    if let Some(id) = job.with_untracked(|j| j.as_ref().map(|j| j.job_id.clone())) {
        perform(action, id);
    }
}

/// 复制这张卡片的提示词。
fn copy_prompt(job: Memo<Option<JobView>>, menu: Menu) {
    close_menu(menu);
    if let Some(prompt) = job.with_untracked(|j| j.as_ref().map(|j| j.prompt.clone())) {
        browser::copy_text(&prompt);
    }
}

/// 打开“保存为提示词”，预填这张卡片的提示词。
fn save_as_prompt(
    job: Memo<Option<JobView>>,
    menu: Menu,
    save_prompt: RwSignal<Option<PromptDraft>>,
) {
    close_menu(menu);
    save_prompt.set(job.with_untracked(|j| j.as_ref().map(prompt_draft)));
}

/// 以此图继续编辑：加为提示词栏的参考图（已经有了就不再加）。
fn add_reference(image_id: String, references: RwSignal<Vec<Reference>>) {
    let r = Reference::from_id(image_id);
    references.update(|list| {
        if !list.contains(&r) {
            list.push(r)
        }
    });
}

/// 卡片的按钮，紧贴在图下面：收藏、下载、以此图继续编辑、重试 / 重新保存 / 取消，
/// “更多”里是复制提示词、保存为提示词与删除。都是图标按钮，名字在 `aria-label` 上。
#[component]
fn CardActions(
    job: Memo<Option<JobView>>,
    references: RwSignal<Vec<Reference>>,
    save_prompt: RwSignal<Option<PromptDraft>>,
    hydrated: RwSignal<bool>,
) -> impl IntoView {
    let menu = Menu::new();
    view! {
        <div class="actions" role="group" aria-label="操作">
            <ImageActions job references hydrated/>
            <StateActions job menu hydrated/>
            <MoreMenu job menu save_prompt hydrated/>
        </div>
    }
}

/// 有图时：收藏、下载、以此图继续编辑。
#[component]
fn ImageActions(
    job: Memo<Option<JobView>>,
    references: RwSignal<Vec<Reference>>,
    hydrated: RwSignal<bool>,
) -> impl IntoView {
    let not_ready = move || !hydrated.get();
    let image = Memo::new(move |_| {
        job.with(|j| {
            j.as_ref()
                .and_then(|j| j.image.as_ref())
                .map(|i| (i.id.clone(), i.url.clone()))
        })
    });
    move || {
        image.get().map(|(id, url)| {
            let star_id = id.clone();
            let starred = Signal::derive(move || {
                job.with(|j| j.as_ref().and_then(|j| j.image.as_ref()).is_some_and(|i| i.favourite))
            });
            view! {
                <Star on=starred on_toggle=move |on| star_image(star_id.clone(), on)/>
                <a class="icon-button" href=format!("{url}?download=1") download aria-label="下载" title="下载">
                    <Icon d=icon::DOWNLOAD/>
                </a>
                <button type="button" class="icon-button" aria-label="以此图继续编辑" title="以此图继续编辑（加为参考图）"
                    disabled=not_ready
                    on:click=move |_| add_reference(id.clone(), references)>
                    <Icon d=icon::EDIT/>
                </button>
            }
        })
    }
}

/// 随任务状态出现的：重试、重新保存、取消。
#[component]
fn StateActions(job: Memo<Option<JobView>>, menu: Menu, hydrated: RwSignal<bool>) -> impl IntoView {
    let state = move || job.with(|j| j.as_ref().map(|j| j.state));
    let not_ready = move || !hydrated.get();
    let busy = move || not_ready().then_some("true");
    view! {
        <Show when=move || state().is_some_and(JobState::can_retry)>
            <button type="button" class="icon-button" aria-label="重试" title="重试"
                disabled=not_ready aria-busy=busy on:click=move |_| act(job, menu, Action::Retry)>
                <Icon d=icon::RETRY/>
            </button>
        </Show>
        <Show when=move || state().is_some_and(JobState::can_resave)>
            <button type="button" class="icon-button" aria-label="重新保存" title="重新保存"
                disabled=not_ready aria-busy=busy on:click=move |_| act(job, menu, Action::Resave)>
                <Icon d=icon::SAVE/>
            </button>
        </Show>
        <Show when=move || state().is_some_and(JobState::is_active)>
            <button type="button" class="icon-button" aria-label="取消" title=move || if hydrated.get() { "取消" } else { "加载中…" }
                disabled=not_ready aria-busy=busy on:click=move |_| act(job, menu, Action::Cancel)>
                <Icon d=icon::STOP/>
            </button>
        </Show>
    }
}

/// “更多”：复制提示词、保存为提示词、删除。
#[component]
fn MoreMenu(
    job: Memo<Option<JobView>>,
    menu: Menu,
    save_prompt: RwSignal<Option<PromptDraft>>,
    hydrated: RwSignal<bool>,
) -> impl IntoView {
    let not_ready = move || !hydrated.get();
    view! {
        <details class="menu" node_ref=menu>
            <summary class="icon-button" aria-label="更多操作" title="更多操作" data-testid="card-more">
                <Icon d=icon::MORE/>
            </summary>
            <div class="menu-items">
                <button type="button" disabled=not_ready on:click=move |_| copy_prompt(job, menu)>
                    <Icon d=icon::COPY/>"复制提示词"
                </button>
                <button type="button" data-testid="card-save-prompt" disabled=not_ready
                    on:click=move |_| save_as_prompt(job, menu, save_prompt)>
                    <Icon d=icon::BOOKMARK/>"保存为提示词"
                </button>
                <button type="button" class="danger" title="移除卡片；已生成的图片移入图库的回收站"
                    disabled=not_ready on:click=move |_| act(job, menu, Action::Remove)>
                    <Icon d=icon::TRASH/>"删除"
                </button>
            </div>
        </details>
    }
}
