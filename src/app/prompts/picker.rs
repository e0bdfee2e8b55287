//! 工作台的“提示词库”选择框：搜索，看全部、收藏的或最近用过的，点一条把它填进提示词栏。

use super::list_prompts;
use crate::types::prompt::{PromptQuery, PromptSort, SavedPrompt};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// 选择框里的一页几条。
const PICKER_SIZE: u32 = 30;

#[derive(Clone, Copy, PartialEq, Eq)]
enum View {
    All,
    Favourites,
    Recent,
}

/// 选择框的状态（都是信号，可复制）。
#[derive(Clone, Copy)]
struct Picker {
    search: RwSignal<String>,
    view_kind: RwSignal<View>,
    items: RwSignal<Vec<SavedPrompt>>,
    error: RwSignal<Option<String>>,
    /// 每次重新查询加一；过期查询的结果丢弃。
    generation: StoredValue<u64>,
}

impl Picker {
    fn new() -> Self {
        Self {
            search: RwSignal::new(String::new()),
            view_kind: RwSignal::new(View::All),
            items: RwSignal::new(Vec::new()),
            error: RwSignal::new(None),
            generation: StoredValue::new(0),
        }
    }

    /// 按现在的搜索与视图查什么。
    fn query(self, kind: View) -> PromptQuery {
        PromptQuery {
            search: self.search.get_untracked(),
            favourite: (kind == View::Favourites).then_some(true),
            sort: match kind {
                View::Recent => PromptSort::Recent,
                _ => PromptSort::Uses,
            },
            limit: Some(PICKER_SIZE),
            ..Default::default()
        }
    }

    /// 重新查（打开时、换视图时立即，停止输入 200 ms 后）；期间又查了一次的，这次的结果不要。
    fn load(self, delay_ms: u32) {
        self.generation.update_value(|g| *g += 1);
        let mine = self.generation.get_value();
        let kind = self.view_kind.get_untracked();
        let query = self.query(kind);
        spawn_local(async move {
            if delay_ms > 0 {
                crate::app::browser::sleep_ms(delay_ms).await;
            }
            if self.generation.get_value() != mine {
                return;
            }
            let result = list_prompts(query).await;
            if self.generation.get_value() != mine {
                return;
            }
            match result {
                Ok(page) => {
                    let mut list = page.items;
                    if kind == View::Recent {
                        list.retain(|p| p.last_used_at.is_some());
                    }
                    self.items.set(list);
                    self.error.set(None);
                }
                Err(e) => self.error.set(Some(e.message)),
            }
        });
    }
}

/// `open` 为真时显示；选中一条时调用 `on_pick` 并关上。
#[component]
pub fn PromptPicker(
    open: RwSignal<bool>,
    #[prop(into)] on_pick: Callback<SavedPrompt>,
) -> impl IntoView {
    let picker = Picker::new();
    let input = NodeRef::<leptos::html::Input>::new();
    // 打开时：重新查，光标放进搜索框。
    Effect::new(move |_| {
        if open.get() {
            picker.load(0);
            if let Some(el) = input.get() {
                let _ = el.focus();
            }
        }
    });

    view! {
        <Show when=move || open.get()>
            <div class="dialog-backdrop" on:click=move |_| open.set(false)>
                <div class="dialog prompt-picker" role="dialog" aria-modal="true" aria-label="提示词库"
                    data-testid="prompt-picker" on:click=|ev| ev.stop_propagation()
                    on:keydown=move |ev| if ev.key() == "Escape" { open.set(false) }>
                    <button type="button" class="close" aria-label="关闭" on:click=move |_| open.set(false)>"×"</button>
                    <h2>"提示词库"</h2>
                    <input type="search" name="picker-search" placeholder="搜索标题、内容或标签" node_ref=input
                        prop:value=move || picker.search.get()
                        on:input=move |ev| { picker.search.set(event_target_value(&ev)); picker.load(200); }/>
                    <PickerTabs picker/>
                    <Show when=move || picker.error.get().is_some()>
                        <p class="error" role="alert">{move || picker.error.get().unwrap_or_default()}</p>
                    </Show>
                    <PickerList picker open on_pick/>
                </div>
            </div>
        </Show>
    }
}

/// 全部、收藏的、最近用过的。
#[component]
fn PickerTabs(picker: Picker) -> impl IntoView {
    view! {
        <div class="tabs" role="tablist">
            {[(View::All, "全部"), (View::Favourites, "收藏"), (View::Recent, "最近用过")].into_iter().map(|(k, label)| view! {
                <button type="button" role="tab" aria-selected=move || (picker.view_kind.get() == k).to_string()
                    on:click=move |_| { picker.view_kind.set(k); picker.load(0); }>{label}</button>
            }).collect_view()}
        </div>
    }
}

/// 查到的提示词；点一条就用它并关上选择框。
#[component]
fn PickerList(
    picker: Picker,
    open: RwSignal<bool>,
    on_pick: Callback<SavedPrompt>,
) -> impl IntoView {
    view! {
        <ul class="picker-list">
            <Show when=move || picker.items.with(Vec::is_empty)>
                <li class="empty">"没有符合条件的提示词。"</li>
            </Show>
            <For each=move || picker.items.get() key=|p| p.id.clone() let:p>
                <PickerItem p open on_pick/>
            </For>
        </ul>
    }
}

/// 一条：标题（收藏的带 ★）、模板标记与内容。
#[component]
fn PickerItem(
    p: SavedPrompt,
    open: RwSignal<bool>,
    on_pick: Callback<SavedPrompt>,
) -> impl IntoView {
    let title = p.title.clone();
    let content = p.content.clone();
    let star = if p.favourite { "★ " } else { "" };
    let template = (!p.variables.is_empty()).then_some("模板");
    view! {
        <li>
            <button type="button" class="pick-prompt" data-testid="pick-prompt"
                on:click=move |_| {
                    open.set(false);
                    on_pick.run(p.clone());
                }>
                <strong>{format!("{star}{title}")}</strong>
                {template.map(|t| view! { <span class="badge">{t}</span> })}
                <span class="content">{content}</span>
            </button>
        </li>
    }
}
