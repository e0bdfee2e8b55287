//! 底部固定的提示词栏：参考图、提示词（Enter 发送，Shift+Enter 换行）、张数、宽高比、分辨率、模型、生成。

use super::count_selector::CountSelector;
use super::upload_widget::{files_of, UploadWidget, Uploader};
use super::{apply, submit_jobs, Reference};
use crate::types::{AspectRatio, ImageSize, JobMessage, JobView, SubmitRequest};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// 正在编辑的这一次提交。
#[derive(Clone, Copy)]
struct Draft {
    prompt: RwSignal<String>,
    count: RwSignal<u32>,
    aspect: RwSignal<AspectRatio>,
    size: RwSignal<ImageSize>,
    model: RwSignal<String>,
    references: RwSignal<Vec<Reference>>,
}

impl Draft {
    fn new(references: RwSignal<Vec<Reference>>) -> Self {
        Self {
            prompt: RwSignal::new(String::new()),
            count: RwSignal::new(1),
            aspect: RwSignal::new(AspectRatio::default()),
            size: RwSignal::new(ImageSize::default()),
            model: RwSignal::new(String::new()),
            references,
        }
    }

    fn request(&self) -> SubmitRequest {
        SubmitRequest {
            prompt: self.prompt.get_untracked(),
            count: self.count.get_untracked(),
            aspect_ratio: self.aspect.get_untracked(),
            image_size: self.size.get_untracked(),
            model: self.model.get_untracked(),
            references: self
                .references
                .with_untracked(|r| r.iter().map(|r| r.id.clone()).collect()),
        }
    }
}

/// 提交：成功的任务立即出现在网格里（之后的进度经推送）；失败时原因显示在提示词栏旁。
fn submit(
    draft: Draft,
    jobs: RwSignal<Vec<JobView>>,
    error: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
) {
    let request = draft.request();
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
}

#[component]
pub fn PromptBar(
    references: RwSignal<Vec<Reference>>,
    jobs: RwSignal<Vec<JobView>>,
    models: Vec<String>,
) -> impl IntoView {
    let draft = Draft::new(references);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let dragging = RwSignal::new(false);
    let uploader = Uploader::new(references, error);

    let can_send = move || {
        !draft.prompt.with(|p| p.trim().is_empty()) && !busy.get() && !uploader.uploading.get()
    };
    let send = move || {
        if can_send() {
            submit(draft, jobs, error, busy);
        }
    };

    view! {
        // novalidate：张数等由服务器校验，原因以中文显示在提示词栏旁（浏览器自带的提示随系统语言）。
        <form class="prompt-bar" novalidate class:dragging=move || dragging.get()
            on:submit=move |ev| {
                ev.prevent_default();
                send();
            }
            on:dragover=move |ev| {
                ev.prevent_default();
                dragging.set(true);
            }
            on:dragleave=move |_| dragging.set(false)
            on:drop=move |ev| {
                ev.prevent_default();
                dragging.set(false);
                uploader.add(files_of(ev.data_transfer().and_then(|d| d.files())));
            }
        >
            <UploadWidget uploader/>
            <textarea
                name="prompt"
                placeholder="描述你想要的画面……（Enter 发送，Shift+Enter 换行，可粘贴图片作参考）"
                rows="2"
                prop:value=move || draft.prompt.get()
                on:input=move |ev| draft.prompt.set(event_target_value(&ev))
                on:paste=move |ev| {
                    let files = files_of(ev.clipboard_data().and_then(|d| d.files()));
                    if !files.is_empty() {
                        ev.prevent_default();
                        uploader.add(files);
                    }
                }
                on:keydown=move |ev| {
                    if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                        ev.prevent_default();
                        send();
                    }
                }
            ></textarea>
            <div class="controls">
                <CountSelector count=draft.count/>
                <ShapeSelectors draft models/>
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

/// 宽高比、分辨率与模型的下拉框。
#[component]
fn ShapeSelectors(draft: Draft, models: Vec<String>) -> impl IntoView {
    view! {
        <label>
            "宽高比"
            <select name="aspect_ratio" on:change=move |ev| {
                draft.aspect.set(event_target_value(&ev).parse().unwrap_or_default())
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
                draft.size.set(event_target_value(&ev).parse().unwrap_or_default())
            }>
                {ImageSize::ALL
                    .into_iter()
                    .map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> })
                    .collect_view()}
            </select>
        </label>
        <label>
            "模型"
            <select name="model" on:change=move |ev| draft.model.set(event_target_value(&ev))>
                <option value="">"默认"</option>
                {models.into_iter().map(|m| view! { <option value=m.clone()>{m.clone()}</option> }).collect_view()}
            </select>
        </label>
    }
}
