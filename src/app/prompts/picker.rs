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

/// `open` 为真时显示；选中一条时调用 `on_pick` 并关上。
#[component]
pub fn PromptPicker(
    open: RwSignal<bool>,
    #[prop(into)] on_pick: Callback<SavedPrompt>,
) -> impl IntoView {
    let search = RwSignal::new(String::new());
    let view_kind = RwSignal::new(View::All);
    let items = RwSignal::new(Vec::<SavedPrompt>::new());
    let error = RwSignal::new(None::<String>);
    let generation = StoredValue::new(0u64);
    let input = NodeRef::<leptos::html::Input>::new();

    // 打开时、换视图时、停止输入 200 ms 后：重新查。
    let load = move |delay_ms: u32| {
        generation.update_value(|g| *g += 1);
        let mine = generation.get_value();
        let kind = view_kind.get_untracked();
        let query = PromptQuery {
            search: search.get_untracked(),
            favourite: (kind == View::Favourites).then_some(true),
            sort: match kind {
                View::Recent => PromptSort::Recent,
                _ => PromptSort::Uses,
            },
            limit: Some(PICKER_SIZE),
            ..Default::default()
        };
        spawn_local(async move {
            if delay_ms > 0 {
                crate::app::browser::sleep_ms(delay_ms).await;
            }
            if generation.get_value() != mine {
                return;
            }
            let result = list_prompts(query).await;
            if generation.get_value() != mine {
                return;
            }
            match result {
                Ok(page) => {
                    let mut list = page.items;
                    if kind == View::Recent {
                        list.retain(|p| p.last_used_at.is_some());
                    }
                    items.set(list);
                    error.set(None);
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    Effect::new(move |_| {
        if open.get() {
            load(0);
            if let Some(el) = input.get() {
                let _ = el.focus();
            }
        }
    });
    let pick = move |p: SavedPrompt| {
        open.set(false);
        on_pick.run(p);
    };

    view! {
        <Show when=move || open.get()>
            <div class="dialog-backdrop" on:click=move |_| open.set(false)>
                <div class="dialog prompt-picker" role="dialog" aria-modal="true" aria-label="提示词库"
                    data-testid="prompt-picker" on:click=|ev| ev.stop_propagation()
                    on:keydown=move |ev| if ev.key() == "Escape" { open.set(false) }>
                    <button type="button" class="close" aria-label="关闭" on:click=move |_| open.set(false)>"×"</button>
                    <h2>"提示词库"</h2>
                    <input type="search" name="picker-search" placeholder="搜索标题、内容或标签" node_ref=input
                        prop:value=move || search.get()
                        on:input=move |ev| { search.set(event_target_value(&ev)); load(200); }/>
                    <div class="tabs" role="tablist">
                        {[(View::All, "全部"), (View::Favourites, "收藏"), (View::Recent, "最近用过")].into_iter().map(|(k, label)| view! {
                            <button type="button" role="tab" aria-selected=move || (view_kind.get() == k).to_string()
                                on:click=move |_| { view_kind.set(k); load(0); }>{label}</button>
                        }).collect_view()}
                    </div>
                    <Show when=move || error.get().is_some()>
                        <p class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
                    </Show>
                    <ul class="picker-list">
                        <Show when=move || items.with(Vec::is_empty)>
                            <li class="empty">"没有符合条件的提示词。"</li>
                        </Show>
                        <For each=move || items.get() key=|p| p.id.clone() let:p>
                            {
                                let title = p.title.clone();
                                let content = p.content.clone();
                                let star = if p.favourite { "★ " } else { "" };
                                let template = (!p.variables.is_empty()).then_some("模板");
                                view! {
                                    <li>
                                        <button type="button" class="pick-prompt" data-testid="pick-prompt"
                                            on:click=move |_| pick(p.clone())>
                                            <strong>{format!("{star}{title}")}</strong>
                                            {template.map(|t| view! { <span class="badge">{t}</span> })}
                                            <span class="content">{content}</span>
                                        </button>
                                    </li>
                                }
                            }
                        </For>
                    </ul>
                </div>
            </div>
        </Show>
    }
}
