//! 一张任务卡片：图（或占位）、进度条、状态行、参考图、提示词与变量值、模型说明、错误、尝试记录与操作按钮。

use super::{browser, cancel_job, remove_job, resave_job, retry_job, Reference};
use crate::app::gallery::set_image_favourite;
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
) -> impl IntoView {
    let field = move |f: fn(&JobView) -> String| {
        move || job.with(|j| j.as_ref().map(f).unwrap_or_default())
    };
    let state = move || job.with(|j| j.as_ref().map(|j| j.state));
    let percent = move || job.with(|j| j.as_ref().map(|j| j.percent).unwrap_or(0));
    let status = move || {
        job.with(|j| {
            j.as_ref()
                .map(|j| status_line(j, positions.with(|p| p.get(&j.job_id).copied())))
                .unwrap_or_default()
        })
    };
    view! {
        <article class="card job" data-testid="job-card"
            data-state=move || state().map(|s| s.as_str()).unwrap_or("")>
            <CardMedia job lightbox/>
            <div class="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100"
                aria-valuenow=percent>
                <div class="bar" style=move || format!("width: {}%", percent())></div>
            </div>
            <div class="body">
                <p class="state">
                    <span class="badge" data-testid="job-state">{move || state().map(|s| s.label()).unwrap_or("")}</span>
                    <span class="status" data-testid="job-status">{status}</span>
                </p>
                <CardReferences job/>
                <p class="prompt" title=field(|j| j.prompt.clone())>{field(|j| j.prompt.clone())}</p>
                {move || job.with(|j| j.as_ref().filter(|j| !j.variables.is_empty()).map(|j| view! {
                    <p class="variables">
                        {j.variables.iter().map(|(k, v)| view! { <span class="chip">{format!("{k}：{v}")}</span> }).collect_view()}
                    </p>
                }))}
                {move || job.with(|j| j.as_ref().and_then(|j| {
                    let image = j.image.as_ref()?;
                    (!j.model.is_empty() && !image.model.is_empty() && image.model != j.model).then(|| image.model.clone())
                })).map(|m| view! {
                    <p class="note" data-testid="served-model">{format!("已自动改用 {m}（请求的“{}”已停用或暂时不可用）", job.with_untracked(|j| j.as_ref().map(|j| j.model.clone()).unwrap_or_default()))}</p>
                })}
                {move || job.with(|j| j.as_ref().and_then(|j| j.image.as_ref()).and_then(|i| i.size_note.clone())).map(|n| view! {
                    <p class="size-note" data-testid="size-note"><span class="badge warn">"尺寸不符"</span>" "{n}</p>
                })}
                {move || job.with(|j| j.as_ref().and_then(|j| j.image.as_ref()).map(|i| i.sources.clone())).map(|sources| view! {
                    <crate::app::gallery::detail::Sources sources/>
                })}
                {move || job.with(|j| j.as_ref().and_then(|j| j.image.as_ref()).and_then(|i| i.model_text.clone())).map(|t| view! {
                    <p class="model-text" data-testid="model-text"><strong>"模型说明："</strong>{t}</p>
                })}
                {move || job.get().and_then(|j| j.error).map(|e| view! { <p class="error" data-testid="job-error">{e}</p> })}
                {move || job.get().filter(|j| !j.attempts.is_empty()).map(|j| view! {
                    <details class="trace">
                        <summary>{format!("尝试记录（{} 次）", j.attempts.len())}</summary>
                        <ol>{j.attempts.iter().map(|a| view! { <li>{describe_attempt(a)}</li> }).collect_view()}</ol>
                    </details>
                })}
                <CardActions job references save_prompt/>
            </div>
        </article>
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
    view! {
        <div class="media" style=shape>
            {move || match job.get().and_then(|j| j.image.map(|img| (j.job_id, img))) {
                Some((job_id, img)) => {
                    view! {
                        <button type="button" class="open" title="查看大图" on:click=move |_| lightbox.set(Some(job_id.clone()))>
                            <img src=img.thumb_url.clone() alt="生成的图片" width=img.width height=img.height/>
                        </button>
                    }.into_any()
                }
                None => view! { <div class="placeholder"></div> }.into_any(),
            }}
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

/// 卡片的按钮：收藏、下载、以此图继续编辑、复制提示词、保存为提示词、重试、取消、删除。
#[component]
fn CardActions(
    job: Memo<Option<JobView>>,
    references: RwSignal<Vec<Reference>>,
    save_prompt: RwSignal<Option<PromptDraft>>,
) -> impl IntoView {
    let state = move || job.with(|j| j.as_ref().map(|j| j.state));
    let act = move |action: Action| {
        if let Some(id) = job.with_untracked(|j| j.as_ref().map(|j| j.job_id.clone())) {
            perform(action, id);
        }
    };
    let copy_prompt = move || {
        if let Some(prompt) = job.with_untracked(|j| j.as_ref().map(|j| j.prompt.clone())) {
            browser::copy_text(&prompt);
        }
    };
    view! {
        <div class="actions">
            {move || job.get().and_then(|j| j.image).map(|img| {
                let id = img.id.clone();
                let star_id = img.id.clone();
                let starred = Signal::derive(move || {
                    job.with(|j| j.as_ref().and_then(|j| j.image.as_ref()).is_some_and(|i| i.favourite))
                });
                view! {
                    <Star on=starred on_toggle=move |on| star_image(star_id.clone(), on)/>
                    <a class="button" href=format!("{}?download=1", img.url) download>"下载"</a>
                    <button type="button" on:click=move |_| {
                        let r = Reference::from_id(id.clone());
                        references.update(|list| if !list.contains(&r) { list.push(r) });
                    }>"以此图继续编辑"</button>
                }
            })}
            <button type="button" on:click=move |_| copy_prompt()>"复制提示词"</button>
            <button type="button" data-testid="card-save-prompt" on:click=move |_| {
                save_prompt.set(job.with_untracked(|j| j.as_ref().map(prompt_draft)));
            }>"保存为提示词"</button>
            <Show when=move || state().is_some_and(JobState::can_retry)>
                <button type="button" on:click=move |_| act(Action::Retry)>"重试"</button>
            </Show>
            <Show when=move || state().is_some_and(JobState::can_resave)>
                <button type="button" on:click=move |_| act(Action::Resave)>"重新保存"</button>
            </Show>
            <Show when=move || state().is_some_and(JobState::is_active)>
                <button type="button" on:click=move |_| act(Action::Cancel)>"取消"</button>
            </Show>
            <button type="button" class="danger" title="移除卡片；已生成的图片移入图库的回收站"
                on:click=move |_| act(Action::Remove)>"删除"</button>
        </div>
    }
}
