//! 底部固定的提示词栏。平时只有一行：提示词（Enter 发送，Shift+Enter 换行；输入时有提示词库的候选，见
//! `suggestions.rs`）、“选项”与“生成”；点进提示词或点“选项”时展开上面的选项（#33）：模式（单条 / 多条 /
//! 批量改图）、变量与预览（`batch_panel.rs`）、参考图、提示词库与“保存为提示词”、张数、模型、宽高比、分辨率。
//! 点到栏外（或用 Tab 离开）时收起。已选的参考图收起时也显示。
//!
//! 水合之前（#42）：输入框与下拉框都是原生的，用户可以先写先选；水合时取它们此刻的值（`EarlyDraft`），
//! 记下的偏好只用于没动过的控件。“生成”看起来能点，但标着 `aria-busy` 与“加载中…”；水合前的提交
//! （点“生成”或在提示词里按 Enter）由页头的脚本记下（见 `app/early.rs`），水合后用当时的值提交一次。

use super::batch_panel::BatchPanel;
use super::count_selector::CountSelector;
use super::draft::{Draft, EarlyDraft, Mode};
use super::suggestions::{Key, SuggestionList, Suggestions};
use super::upload_widget::{files_of, UploadWidget, Uploader};
use super::{add_submitted, prefs, submit_jobs, Reference};
use crate::app::icon::{self, Icon};
use crate::app::prompts::{use_prompt, PromptPicker};
use crate::app::{browser, early};
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

/// 收起时“选项”旁的一行摘要：张数、宽高比、分辨率与参考图。
fn summary(draft: Draft) -> String {
    let mut s = format!(
        "{} 张 · {} · {}",
        draft.count.get(),
        draft.aspect.get().as_str(),
        draft.size.get().as_str()
    );
    let references = draft.references.with(Vec::len);
    if references > 0 {
        s.push_str(&format!(" · {references} 张参考图"));
    }
    s
}

#[component]
pub fn PromptBar(
    references: RwSignal<Vec<Reference>>,
    jobs: RwSignal<Vec<JobView>>,
    models: Vec<ModelInfo>,
    /// “保存为提示词”对话框要预填的内容（设了就打开）。
    save_prompt: RwSignal<Option<PromptDraft>>,
    /// 页面已水合。
    hydrated: RwSignal<bool>,
) -> impl IntoView {
    // 水合之前用户已经填好的值：必须在下面的视图水合之前读（水合会按信号的初值重设这些控件）。
    let mut early_draft = Some(EarlyDraft::read());
    let draft = Draft::new(references);
    let suggestions = Suggestions::new();
    let picker_open = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let dragging = RwSignal::new(false);
    // 选项展开着（点进提示词、点“选项”时展开，点到栏外时收起）。
    let open = RwSignal::new(false);
    let form = NodeRef::<leptos::html::Form>::new();
    let uploader = Uploader::new(references, error);

    let can_send = move || {
        !draft.prompt.with(|p| p.trim().is_empty()) && !busy.get() && !uploader.uploading.get()
    };
    let send = move || {
        if can_send() {
            submit(draft, jobs, error, busy);
        }
    };
    {
        let models = models.clone();
        // 水合之后（只一次）：记下的偏好与水合前的值放进信号；水合前提交过就提交一次。
        Effect::new(move |_| {
            let Some(values) = early_draft.take() else {
                return;
            };
            untrack(|| {
                draft.apply(values, prefs::load(), &models);
                if early::focused_within("form.prompt-bar") {
                    open.set(true);
                }
                if early::take_submit("studio") {
                    // 等上面这些值引起的调整（例如换了模型后的宽高比）先做完。
                    spawn_local(async move {
                        browser::sleep_ms(0).await;
                        send();
                    });
                }
            });
        });
    }
    // 点在栏外：收起选项。
    let inside = move |target: Option<web_sys::EventTarget>| {
        use wasm_bindgen::JsCast;
        let node = target.and_then(|t| t.dyn_into::<web_sys::Node>().ok());
        match (form.get_untracked(), node) {
            (Some(form), Some(node)) => form.contains(Some(&node)),
            _ => false,
        }
    };
    let _outside = window_event_listener(leptos::ev::pointerdown, move |ev| {
        if !inside(ev.target()) {
            open.set(false);
        }
    });

    let placeholder = move || match draft.mode.get() {
        Mode::Multi => "描述你想要的画面——每行一条，每条分别生成（Enter 发送，Shift+Enter 换行）",
        Mode::Each => "描述你想要的画面：对每张参考图做什么（Enter 发送，Shift+Enter 换行）",
        Mode::Single => {
            "描述你想要的画面……（Enter 发送，Shift+Enter 换行，可粘贴图片作参考，{变量} 批量生成）"
        }
    };

    view! {
        // novalidate：张数等由服务器校验，原因以中文显示在提示词栏旁（浏览器自带的提示随系统语言）。
        // autocomplete="off"：刷新时浏览器不把上次的输入填回来（水合时会当成用户刚填的）。
        // data-early：水合前的提交由页头的脚本记下（app/early.rs）。
        <form class="prompt-bar" novalidate autocomplete="off" data-early="studio" aria-label="提示词栏" node_ref=form
            class:expanded=move || open.get()
            class:dragging=move || dragging.get()
            on:submit=move |ev| {
                ev.prevent_default();
                send();
            }
            on:focusout=move |ev| {
                // 用 Tab 离开提示词栏：收起（点在栏外由上面的 pointerdown 处理）。
                if let Some(next) = ev.related_target() {
                    if !inside(Some(next)) {
                        open.set(false);
                    }
                }
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
            <div class="bar-options" id="bar-options">
                <BatchPanel draft/>
                <div class="controls">
                    <button type="button" data-testid="open-picker" title="从提示词库选一条"
                        on:click=move |_| picker_open.set(true)>"提示词库"</button>
                    <button type="button" data-testid="bar-save-prompt" title="把现在的提示词存进提示词库"
                        disabled=move || draft.prompt.with(|p| p.trim().is_empty())
                        on:click=move |_| save_prompt.set(Some(draft.as_prompt_draft()))>"保存为提示词"</button>
                    <CountSelector count=draft.count/>
                    <ShapeSelectors draft models/>
                </div>
            </div>
            <UploadWidget uploader hydrated/>
            <SuggestionList s=suggestions on_pick=move |p: SavedPrompt| draft.fill(&p)/>
            <div class="bar-main">
                <textarea
                    name="prompt"
                    aria-label="提示词"
                    placeholder=placeholder
                    rows="1"
                    data-early-enter=""
                    prop:value=move || draft.prompt.get()
                    on:focus=move |_| open.set(true)
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
                <button type="button" class="options-toggle" aria-controls="bar-options"
                    aria-expanded=move || open.get().to_string()
                    title="张数、模型、宽高比、分辨率、参考图与批量"
                    on:click=move |_| open.update(|o| *o = !*o)>
                    <Icon d=icon::OPTIONS/>
                    <span class="label">"选项"</span>
                    <span class="bar-summary">{move || summary(draft)}</span>
                </button>
                // 水合之前“生成”不禁用（点了由页头的脚本记下，水合后提交），只标着“加载中…”。
                <button type="submit" class="generate"
                    disabled=move || hydrated.get() && !can_send()
                    aria-busy=move || (!hydrated.get() || busy.get()).then_some("true")>
                    "生成"
                </button>
            </div>
            <Show when=move || !hydrated.get()>
                <p class="early-hint" role="status" data-testid="early-hint"
                    data-early-hint="加载中…，稍后自动提交">"加载中…"</p>
            </Show>
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
    // 每个 <option> 既有 `selected` 属性（服务端渲染出当前的选择，水合之前显示的就是它），
    // 又有 `prop:selected`（之后跟着信号走）。
    view! {
        <label class="field model">
            <span>"模型"</span>
            <select name="model" on:change=move |ev| draft.model.set(event_target_value(&ev))>
                <option value="" selected=draft.model.with_untracked(String::is_empty)
                    prop:selected=move || draft.model.with(String::is_empty)>
                    {models.first().map(|m| format!("默认（{}）", m.label())).unwrap_or_else(|| "默认".into())}
                </option>
                {models.into_iter().map(|m| {
                    let current = m.id.clone();
                    view! {
                        <option value=m.id.clone() selected=draft.model.with_untracked(|x| *x == m.id)
                            prop:selected=move || draft.model.with(|x| *x == current)>{m.label()}</option>
                    }
                }).collect_view()}
            </select>
        </label>
        <label class="field">
            <span>"宽高比"</span>
            <select name="aspect_ratio"
                on:change=move |ev| {
                    draft.aspect.set(event_target_value(&ev).parse().unwrap_or_default())
                }>
                {move || caps.get().aspect_ratios
                    .into_iter()
                    .map(|a| view! {
                        <option value=a.as_str() selected={draft.aspect.get_untracked() == a}
                            prop:selected=move || draft.aspect.get() == a>{a.as_str()}</option>
                    })
                    .collect_view()}
            </select>
        </label>
        <label class="field">
            <span>"分辨率"</span>
            <select name="image_size"
                on:change=move |ev| {
                    draft.size.set(event_target_value(&ev).parse().unwrap_or_default())
                }>
                {move || caps.get().sizes
                    .into_iter()
                    .map(|s| view! {
                        <option value=s.as_str() selected={draft.size.get_untracked() == s}
                            prop:selected=move || draft.size.get() == s>{s.as_str()}</option>
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
