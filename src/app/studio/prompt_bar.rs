//! 底部固定的提示词栏：模式（单条 / 多条 / 批量改图）、变量与预览（`batch_panel.rs`）、参考图、
//! 提示词（Enter 发送，Shift+Enter 换行；输入时有提示词库的候选，见 `suggestions.rs`）、
//! 提示词库与“保存为提示词”、张数、宽高比、分辨率、模型、生成。

use super::batch_panel::BatchPanel;
use super::count_selector::CountSelector;
use super::draft::{Draft, Mode};
use super::suggestions::{Key, SuggestionList, Suggestions};
use super::upload_widget::{files_of, UploadWidget, Uploader};
use super::{add_submitted, prefs, submit_jobs, Reference};
use crate::app::prompts::{use_prompt, PromptPicker};
use crate::types::catalogue::ModelInfo;
use crate::types::prompt::{PromptDraft, SavedPrompt};
use crate::types::{AspectRatio, ImageSize, JobView};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// 提交：成功的任务立即出现在网格里（之后的进度经推送），并记下这次的选择；失败时原因显示在提示词栏旁。
fn submit(
    draft: Draft,
    jobs: RwSignal<Vec<JobView>>,
    error: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
) {
    let request = draft.request();
    // 原样提交了库里的一条：记一次使用。
    let used = draft
        .picked
        .get_untracked()
        .filter(|(_, content)| draft.prompt.with_untracked(|p| p == content))
        .map(|(id, _)| id);
    error.set(None);
    busy.set(true);
    spawn_local(async move {
        match submit_jobs(request).await {
            Ok(views) => {
                add_submitted(jobs, views);
                prefs::save(&draft.prefs());
                if let Some(id) = used {
                    if let Err(e) = use_prompt(id).await {
                        leptos::logging::warn!("记录提示词的使用失败：{}", e.message);
                    }
                }
            }
            Err(e) => error.set(Some(e.message)),
        }
        busy.set(false);
    });
}

#[component]
pub fn PromptBar(
    references: RwSignal<Vec<Reference>>,
    jobs: RwSignal<Vec<JobView>>,
    models: Vec<ModelInfo>,
    /// “保存为提示词”对话框要预填的内容（设了就打开）。
    save_prompt: RwSignal<Option<PromptDraft>>,
) -> impl IntoView {
    let draft = Draft::new(references);
    let suggestions = Suggestions::new();
    let picker_open = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let dragging = RwSignal::new(false);
    let uploader = Uploader::new(references, error);
    {
        let models = models.clone();
        // 水合后恢复上次的选择（服务端渲染时没有 localStorage）。
        Effect::new(move |_| {
            if let Some(p) = prefs::load() {
                draft.restore(p, &models);
            }
        });
    }

    let can_send = move || {
        !draft.prompt.with(|p| p.trim().is_empty()) && !busy.get() && !uploader.uploading.get()
    };
    let send = move || {
        if can_send() {
            submit(draft, jobs, error, busy);
        }
    };
    let placeholder = move || match draft.mode.get() {
        Mode::Multi => "描述你想要的画面——每行一条，每条分别生成（Enter 发送，Shift+Enter 换行）",
        Mode::Each => "描述你想要的画面：对每张参考图做什么（Enter 发送，Shift+Enter 换行）",
        Mode::Single => {
            "描述你想要的画面……（Enter 发送，Shift+Enter 换行，可粘贴图片作参考，{变量} 批量生成）"
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
            <BatchPanel draft/>
            <UploadWidget uploader/>
            <SuggestionList s=suggestions on_pick=move |p: SavedPrompt| draft.fill(&p)/>
            <textarea
                name="prompt"
                placeholder=placeholder
                rows="2"
                prop:value=move || draft.prompt.get()
                on:input=move |ev| {
                    let text = event_target_value(&ev);
                    draft.prompt.set(text.clone());
                    suggestions.input(text);
                }
                on:blur=move |_| suggestions.close()
                on:paste=move |ev| {
                    let files = files_of(ev.clipboard_data().and_then(|d| d.files()));
                    if !files.is_empty() {
                        ev.prevent_default();
                        uploader.add(files);
                    }
                }
                on:keydown=move |ev| {
                    if ev.is_composing() {
                        return;
                    }
                    match suggestions.key(&ev.key()) {
                        Key::Accept(p) => {
                            ev.prevent_default();
                            draft.fill(&p);
                            return;
                        }
                        Key::Handled => {
                            ev.prevent_default();
                            return;
                        }
                        Key::Ignored => {}
                    }
                    if ev.key() == "Enter" && !ev.shift_key() {
                        ev.prevent_default();
                        send();
                    }
                }
            ></textarea>
            <div class="controls">
                <button type="button" data-testid="open-picker" title="从提示词库选一条"
                    on:click=move |_| picker_open.set(true)>"提示词库"</button>
                <button type="button" data-testid="bar-save-prompt" title="把现在的提示词存进提示词库"
                    disabled=move || draft.prompt.with(|p| p.trim().is_empty())
                    on:click=move |_| save_prompt.set(Some(draft.as_prompt_draft()))>"保存为提示词"</button>
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
        // 在表单外：选择框里的搜索框按 Enter 不会提交提示词栏。
        <PromptPicker open=picker_open on_pick=move |p: SavedPrompt| draft.fill(&p)/>
    }
}

/// 所选模型（空为默认，即列表里的第一个）的能力。
fn chosen(models: &[ModelInfo], model: &str) -> ModelInfo {
    models
        .iter()
        .find(|m| m.id == model)
        .or_else(|| models.first())
        .cloned()
        .unwrap_or_else(|| ModelInfo::permissive(model))
}

/// 模型、宽高比、分辨率的下拉框与“联网搜索”：只列所选模型做得到的；换模型时原来的选择还行就保留，不行就换成它能做的。
#[component]
fn ShapeSelectors(draft: Draft, models: Vec<ModelInfo>) -> impl IntoView {
    let caps = {
        let models = models.clone();
        Memo::new(move |_| draft.model.with(|m| chosen(&models, m)))
    };
    Effect::new(move |_| {
        let c = caps.get();
        if !c.aspect_ratios.contains(&draft.aspect.get_untracked()) {
            draft
                .aspect
                .set(if c.aspect_ratios.contains(&AspectRatio::Square) {
                    AspectRatio::Square
                } else {
                    c.aspect_ratios.first().copied().unwrap_or_default()
                });
        }
        if !c.sizes.contains(&draft.size.get_untracked()) {
            draft.size.set(if c.sizes.contains(&ImageSize::K1) {
                ImageSize::K1
            } else {
                c.sizes.first().copied().unwrap_or_default()
            });
        }
        if !c.grounding {
            draft.google_search.set(false);
        }
    });
    view! {
        <label>
            "模型"
            <select name="model" on:change=move |ev| draft.model.set(event_target_value(&ev))>
                <option value="" prop:selected=move || draft.model.with(String::is_empty)>
                    {models.first().map(|m| format!("默认（{}）", m.label())).unwrap_or_else(|| "默认".into())}
                </option>
                {models.into_iter().map(|m| {
                    let current = m.id.clone();
                    view! {
                        <option value=m.id.clone() prop:selected=move || draft.model.with(|x| *x == current)>{m.label()}</option>
                    }
                }).collect_view()}
            </select>
        </label>
        <label>
            "宽高比"
            <select name="aspect_ratio"
                on:change=move |ev| {
                    draft.aspect.set(event_target_value(&ev).parse().unwrap_or_default())
                }>
                {move || caps.get().aspect_ratios
                    .into_iter()
                    .map(|a| view! {
                        <option value=a.as_str() prop:selected=move || draft.aspect.get() == a>{a.as_str()}</option>
                    })
                    .collect_view()}
            </select>
        </label>
        <label>
            "分辨率"
            <select name="image_size"
                on:change=move |ev| {
                    draft.size.set(event_target_value(&ev).parse().unwrap_or_default())
                }>
                {move || caps.get().sizes
                    .into_iter()
                    .map(|s| view! {
                        <option value=s.as_str() prop:selected=move || draft.size.get() == s>{s.as_str()}</option>
                    })
                    .collect_view()}
            </select>
        </label>
        <Show when=move || caps.with(|c| c.grounding)>
            <label class="check" title="让模型先用 Google 搜索，再按搜到的资料作画（来源显示在卡片上）">
                <input type="checkbox" name="google_search" prop:checked=move || draft.google_search.get()
                    on:change=move |ev| draft.google_search.set(event_target_checked(&ev))/>
                "联网搜索"
            </label>
        </Show>
    }
}
