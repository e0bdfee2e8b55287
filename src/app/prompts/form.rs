//! 编辑一条提示词的表单：标题、内容、分类、标签、收藏，以及模板变量的默认值（内容里每个 `{变量}` 一格，
//! 一行一个值）。提示词库页面就地编辑用它，工作台的“保存为提示词”对话框也用它。

use super::save_prompt;
use crate::types::batch::{placeholders, values_by_line};
use crate::types::prompt::{PromptDraft, SavedPrompt};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::BTreeMap;

/// 标签输入框里的分隔：中英文逗号、顿号。
fn split_tags(text: &str) -> Vec<String> {
    text.split([',', '，', '、'])
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

/// 表单里的各栏（都是信号，可复制）。
#[derive(Clone, Copy)]
struct Fields {
    title: RwSignal<String>,
    content: RwSignal<String>,
    category: RwSignal<String>,
    /// 标签输入框里的文字（逗号分隔）。
    tags: RwSignal<String>,
    favourite: RwSignal<bool>,
    /// 变量名 → 默认值（一行一个）。
    variables: RwSignal<BTreeMap<String, String>>,
}

impl Fields {
    /// 从初稿开始（`id` 另外留着）。
    fn new(draft: PromptDraft) -> Self {
        Self {
            title: RwSignal::new(draft.title),
            content: RwSignal::new(draft.content),
            category: RwSignal::new(draft.category),
            tags: RwSignal::new(draft.tags.join("，")),
            favourite: RwSignal::new(draft.favourite),
            variables: RwSignal::new(
                draft
                    .variables
                    .into_iter()
                    .map(|(k, v)| (k, v.join("\n")))
                    .collect::<BTreeMap<_, _>>(),
            ),
        }
    }

    /// 要保存的一条。`used` 是内容里还在用的变量：只交它们的值（删掉的变量，它的值也不留）。
    fn to_draft(self, id: Option<String>, used: &[String]) -> PromptDraft {
        PromptDraft {
            id,
            title: self.title.get_untracked(),
            content: self.content.get_untracked(),
            category: self.category.get_untracked(),
            tags: split_tags(&self.tags.get_untracked()),
            favourite: self.favourite.get_untracked(),
            variables: self.variables.with_untracked(|v| values_by_line(v, used)),
        }
    }
}

/// 保存：成功时交给 `on_saved`，失败时原因显示在表单里。
fn save(
    draft: PromptDraft,
    busy: RwSignal<bool>,
    error: RwSignal<Option<String>>,
    on_saved: Callback<SavedPrompt>,
) {
    busy.set(true);
    error.set(None);
    spawn_local(async move {
        match save_prompt(draft).await {
            Ok(saved) => on_saved.run(saved),
            Err(e) => error.set(Some(e.message)),
        }
        busy.set(false);
    });
}

#[component]
pub fn PromptForm(
    draft: PromptDraft,
    #[prop(into)] on_saved: Callback<SavedPrompt>,
    #[prop(into)] on_cancel: Callback<()>,
) -> impl IntoView {
    let id = draft.id.clone();
    let fields = Fields::new(draft);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let detected = Memo::new(move |_| fields.content.with(|c| placeholders(c)));

    view! {
        <form class="prompt-form" data-testid="prompt-form" novalidate on:submit=move |ev| {
            ev.prevent_default();
            let draft = fields.to_draft(id.clone(), &detected.get_untracked());
            save(draft, busy, error, on_saved);
        }>
            <label>"标题"
                <input name="title" maxlength="100" placeholder="留空用内容的开头"
                    prop:value=move || fields.title.get()
                    on:input=move |ev| fields.title.set(event_target_value(&ev))/>
            </label>
            <label>"内容"
                <textarea name="content" rows="3" placeholder="提示词，可用 {变量}"
                    prop:value=move || fields.content.get()
                    on:input=move |ev| fields.content.set(event_target_value(&ev))></textarea>
            </label>
            <VariableDefaults detected variables=fields.variables/>
            <MetaRow fields/>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
            </Show>
            <div class="actions">
                <button type="submit" class="primary" disabled=move || busy.get()>"保存"</button>
                <button type="button" on:click=move |_| on_cancel.run(())>"取消"</button>
            </div>
        </form>
    }
}

/// 模板变量的默认值：内容里每个 `{变量}` 一格，一行一个值；没有变量时不显示。
#[component]
fn VariableDefaults(
    detected: Memo<Vec<String>>,
    variables: RwSignal<BTreeMap<String, String>>,
) -> impl IntoView {
    view! {
        <Show when=move || !detected.with(Vec::is_empty)>
            <fieldset class="variables">
                <legend>"模板变量的默认值（每行一个）"</legend>
                <For each=move || detected.get() key=|name| name.clone() let:name>
                    {
                        let (read, write) = (name.clone(), name.clone());
                        view! {
                            <label>{format!("{{{name}}}")}
                                <textarea rows="2" data-variable=name.clone()
                                    prop:value=move || variables.with(|v| v.get(&read).cloned().unwrap_or_default())
                                    on:input=move |ev| {
                                        let text = event_target_value(&ev);
                                        variables.update(|v| { v.insert(write.clone(), text); });
                                    }></textarea>
                            </label>
                        }
                    }
                </For>
            </fieldset>
        </Show>
    }
}

/// 分类、标签与收藏（一行）。
#[component]
fn MetaRow(fields: Fields) -> impl IntoView {
    view! {
        <div class="row">
            <label>"分类"
                <input name="category" maxlength="30" list="prompt-categories" placeholder="如：人像"
                    prop:value=move || fields.category.get()
                    on:input=move |ev| fields.category.set(event_target_value(&ev))/>
            </label>
            <label>"标签"
                <input name="tags" placeholder="用逗号分隔"
                    prop:value=move || fields.tags.get()
                    on:input=move |ev| fields.tags.set(event_target_value(&ev))/>
            </label>
            <label class="check">
                <input type="checkbox" name="favourite" prop:checked=move || fields.favourite.get()
                    on:change=move |ev| fields.favourite.set(event_target_checked(&ev))/>
                "收藏"
            </label>
        </div>
    }
}

/// “保存为提示词”对话框：`draft` 有值时打开（预填好），保存或取消后关上。
#[component]
pub fn SavePromptDialog(draft: RwSignal<Option<PromptDraft>>) -> impl IntoView {
    let saved = RwSignal::new(None::<String>);
    view! {
        {move || draft.get().map(|d| view! {
            <div class="dialog-backdrop" on:click=move |_| draft.set(None)>
                <div class="dialog save-prompt" role="dialog" aria-modal="true" aria-label="保存为提示词"
                    on:click=|ev| ev.stop_propagation()>
                    <h2>"保存为提示词"</h2>
                    <PromptForm draft=d
                        on_saved=move |p: SavedPrompt| {
                            saved.set(Some(format!("已保存到提示词库：{}", p.title)));
                            draft.set(None);
                            spawn_local(async move {
                                crate::app::browser::sleep_ms(4000).await;
                                saved.set(None);
                            });
                        }
                        on_cancel=move |_| draft.set(None)/>
                </div>
            </div>
        })}
        <Show when=move || saved.get().is_some()>
            <p class="toast" role="status" data-testid="prompt-saved"
                on:click=move |_| saved.set(None)>{move || saved.get().unwrap_or_default()}</p>
        </Show>
    }
}
