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
use super::shape::ShapeSelectors;
use super::suggestions::{Key, SuggestionList, Suggestions};
use super::upload_widget::{files_of, UploadWidget, Uploader};
use super::{add_submitted, prefs, submit_jobs, Reference};
use crate::app::icon::{self, Icon};
use crate::app::prompts::{use_prompt, PromptPicker};
use crate::app::{browser, early};
use crate::types::catalogue::ModelInfo;
use crate::types::prompt::{PromptDraft, SavedPrompt};
use crate::types::JobView;
use leptos::ev::{ClipboardEvent, DragEvent, FocusEvent, KeyboardEvent};
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

/// 提示词框的占位文字（随模式）。
fn placeholder_for(mode: Mode) -> &'static str {
    match mode {
        Mode::Multi => "描述你想要的画面——每行一条，每条分别生成（Enter 发送，Shift+Enter 换行）",
        Mode::Each => "描述你想要的画面：对每张参考图做什么（Enter 发送，Shift+Enter 换行）",
        Mode::Single => {
            "描述你想要的画面……（Enter 发送，Shift+Enter 换行，可粘贴图片作参考，{变量} 批量生成）"
        }
    }
}

/// 提示词栏的状态（都是信号，可复制），以及栏上各处的动作。
#[derive(Clone, Copy)]
struct Bar {
    draft: Draft,
    jobs: RwSignal<Vec<JobView>>,
    suggestions: Suggestions,
    uploader: Uploader,
    /// 提交或上传失败的原因（显示在提示词栏旁）。
    error: RwSignal<Option<String>>,
    /// 正在提交。
    busy: RwSignal<bool>,
    /// 选项展开着（点进提示词、点“选项”时展开，点到栏外时收起）。
    open: RwSignal<bool>,
    /// 有文件拖在栏上。
    dragging: RwSignal<bool>,
    form: NodeRef<leptos::html::Form>,
}

impl Bar {
    fn new(references: RwSignal<Vec<Reference>>, jobs: RwSignal<Vec<JobView>>) -> Self {
        let error = RwSignal::new(None::<String>);
        Self {
            draft: Draft::new(references),
            jobs,
            suggestions: Suggestions::new(),
            uploader: Uploader::new(references, error),
            error,
            busy: RwSignal::new(false),
            open: RwSignal::new(false),
            dragging: RwSignal::new(false),
            form: NodeRef::new(),
        }
    }

    /// 能提交：有提示词，没有正在提交的，参考图也没在上传。
    fn can_send(self) -> bool {
        !self.draft.prompt.with(|p| p.trim().is_empty())
            && !self.busy.get()
            && !self.uploader.uploading.get()
    }

    /// 点“生成”或按 Enter：能提交就提交。
    fn send(self) {
        if self.can_send() {
            submit(self.draft, self.jobs, self.error, self.busy);
        }
    }

    /// 水合之后（只一次）：记下的偏好与水合前的值放进信号；水合前提交过就提交一次。
    fn restore_early(self, values: EarlyDraft, models: &[ModelInfo]) {
        self.draft.apply(values, prefs::load(), models);
        if early::focused_within("form.prompt-bar") {
            self.open.set(true);
        }
        if early::take_submit("studio") {
            // 等上面这些值引起的调整（例如换了模型后的宽高比）先做完。
            spawn_local(async move {
                browser::sleep_ms(0).await;
                self.send();
            });
        }
    }

    /// 这个事件目标在提示词栏里面。
    fn contains(self, target: Option<web_sys::EventTarget>) -> bool {
        use wasm_bindgen::JsCast;
        let node = target.and_then(|t| t.dyn_into::<web_sys::Node>().ok());
        match (self.form.get_untracked(), node) {
            (Some(form), Some(node)) => form.contains(Some(&node)),
            _ => false,
        }
    }

    /// 点在栏外：收起选项（监听跟页面一样久，句柄不留）。
    fn close_on_outside_click(self) {
        let _outside = window_event_listener(leptos::ev::pointerdown, move |ev| {
            if !self.contains(ev.target()) {
                self.open.set(false);
            }
        });
    }

    /// 用 Tab 离开提示词栏：收起（点在栏外由 `close_on_outside_click` 处理）。
    fn on_focus_out(self, ev: FocusEvent) {
        if let Some(next) = ev.related_target() {
            if !self.contains(Some(next)) {
                self.open.set(false);
            }
        }
    }

    /// 文件拖进栏里放下：作为参考图上传。
    fn on_drop(self, ev: DragEvent) {
        ev.prevent_default();
        self.dragging.set(false);
        self.uploader
            .add(files_of(ev.data_transfer().and_then(|d| d.files())));
    }

    /// 提示词变了：记下，并给提示词库的候选。
    fn on_input(self, text: String) {
        self.draft.prompt.set(text.clone());
        self.suggestions.input(text);
    }

    /// 粘贴图片：作为参考图上传（粘贴文字照常）。
    fn on_paste(self, ev: ClipboardEvent) {
        let files = files_of(ev.clipboard_data().and_then(|d| d.files()));
        if !files.is_empty() {
            ev.prevent_default();
            self.uploader.add(files);
        }
    }

    /// 提示词框里的按键：先给候选列表（上下移动、采用、关上），再是 Enter 发送（Shift+Enter 换行）。
    fn on_key(self, ev: KeyboardEvent) {
        if ev.is_composing() {
            return;
        }
        match self.suggestions.key(&ev.key()) {
            Key::Accept(p) => {
                ev.prevent_default();
                self.draft.fill(&p);
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
            self.send();
        }
    }
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
    let bar = Bar::new(references, jobs);
    let draft = bar.draft;
    let picker_open = RwSignal::new(false);
    {
        let models = models.clone();
        Effect::new(move |_| {
            if let Some(values) = early_draft.take() {
                untrack(|| bar.restore_early(values, &models));
            }
        });
    }
    bar.close_on_outside_click();

    view! {
        // novalidate：张数等由服务器校验，原因以中文显示在提示词栏旁（浏览器自带的提示随系统语言）。
        // autocomplete="off"：刷新时浏览器不把上次的输入填回来（水合时会当成用户刚填的）。
        // data-early：水合前的提交由页头的脚本记下（app/early.rs）。
        <form class="prompt-bar" novalidate autocomplete="off" data-early="studio" aria-label="提示词栏" node_ref=bar.form
            class:expanded=move || bar.open.get()
            class:dragging=move || bar.dragging.get()
            on:submit=move |ev| {
                ev.prevent_default();
                bar.send();
            }
            on:focusout=move |ev| bar.on_focus_out(ev)
            on:dragover=move |ev| {
                ev.prevent_default();
                bar.dragging.set(true);
            }
            on:dragleave=move |_| bar.dragging.set(false)
            on:drop=move |ev| bar.on_drop(ev)
        >
            <BarOptions draft models save_prompt picker_open/>
            <UploadWidget uploader=bar.uploader hydrated/>
            <SuggestionList s=bar.suggestions on_pick=move |p: SavedPrompt| draft.fill(&p)/>
            <BarMain bar hydrated/>
            <BarStatus error=bar.error hydrated/>
        </form>
        // 在表单外：选择框里的搜索框按 Enter 不会提交提示词栏。
        <PromptPicker open=picker_open on_pick=move |p: SavedPrompt| draft.fill(&p)/>
    }
}

/// 展开时的选项：批量设置、提示词库与“保存为提示词”、张数、模型、宽高比、分辨率。
#[component]
fn BarOptions(
    draft: Draft,
    models: Vec<ModelInfo>,
    save_prompt: RwSignal<Option<PromptDraft>>,
    picker_open: RwSignal<bool>,
) -> impl IntoView {
    view! {
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
    }
}

/// 一直显示的那一行：提示词、“选项”（带收起时的摘要）与“生成”。
#[component]
fn BarMain(bar: Bar, hydrated: RwSignal<bool>) -> impl IntoView {
    let prices = super::cost::Prices::get();
    view! {
        <div class="bar-main">
            <textarea
                name="prompt"
                aria-label="提示词"
                placeholder=move || placeholder_for(bar.draft.mode.get())
                rows="1"
                data-early-enter=""
                prop:value=move || bar.draft.prompt.get()
                on:focus=move |_| bar.open.set(true)
                on:input=move |ev| bar.on_input(event_target_value(&ev))
                on:blur=move |_| bar.suggestions.close()
                on:paste=move |ev| bar.on_paste(ev)
                on:keydown=move |ev| bar.on_key(ev)
            ></textarea>
            <button type="button" class="options-toggle" aria-controls="bar-options"
                aria-expanded=move || bar.open.get().to_string()
                title="张数、模型、宽高比、分辨率、参考图与批量"
                on:click=move |_| bar.open.update(|o| *o = !*o)>
                <Icon d=icon::OPTIONS/>
                <span class="label">"选项"</span>
                <span class="bar-summary">{move || summary(bar.draft)}</span>
                <span class="estimate" data-testid="estimate" title="按模型目录里的价格估算">
                    {move || {
                        let d = bar.draft;
                        prices.estimate(&d.model.get(), d.size.get(), d.total())
                    }}
                </span>
            </button>
            // 水合之前“生成”不禁用（点了由页头的脚本记下，水合后提交），只标着“加载中…”。
            <button type="submit" class="generate"
                disabled=move || hydrated.get() && !bar.can_send()
                aria-busy=move || (!hydrated.get() || bar.busy.get()).then_some("true")>
                "生成"
            </button>
        </div>
    }
}

/// 栏下的提示：水合之前的“加载中…”，以及提交或上传失败的原因。
#[component]
fn BarStatus(error: RwSignal<Option<String>>, hydrated: RwSignal<bool>) -> impl IntoView {
    view! {
        <Show when=move || !hydrated.get()>
            <p class="early-hint" role="status" data-testid="early-hint"
                data-early-hint="加载中…，稍后自动提交">"加载中…"</p>
        </Show>
        <Show when=move || error.get().is_some()>
            <p class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
        </Show>
    }
}
