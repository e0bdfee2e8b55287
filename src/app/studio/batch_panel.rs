//! 提示词栏上方的批量设置：模式（单条 / 多条 / 批量改图）、变量面板（提示词里每个 `{变量}` 一行，值一行一个）、
//! 组合方式、批次名称，以及“将生成 N 张”的预览（批量时问服务器 `/api/expand_prompt`，停止输入 300 ms 后）。

use super::browser;
use super::cost::Prices;
use super::draft::{Draft, Mode, Preview};
use super::expand_prompt;
use crate::types::batch::{ExpandPreview, VariableMode};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// 预览里列出几条展开后的提示词。
const PREVIEW_PROMPTS: usize = 3;
/// 停止输入多久后再问服务器。
const DEBOUNCE_MS: u32 = 300;

/// 请求变了：批量时等一会儿再问服务器（只采用最后一次的回答）；单条时就是张数。
/// 在副作用里调用：读到的 `draft` 各字段都会被订阅。
fn refresh_preview(draft: Draft, preview: RwSignal<Preview>, generation: StoredValue<u64>) {
    let request = draft.request();
    if request.prompt.trim().is_empty()
        && request.prompts.iter().all(|p| p.text().trim().is_empty())
    {
        preview.set(None);
        return;
    }
    if !draft.is_batch() {
        preview.set(Some(Ok(ExpandPreview {
            prompts: Vec::new(),
            total: request.count,
        })));
        return;
    }
    generation.update_value(|g| *g += 1);
    let mine = generation.get_value();
    spawn_local(async move {
        browser::sleep_ms(DEBOUNCE_MS).await;
        if generation.get_value() != mine {
            return;
        }
        let answer = expand_prompt(request).await.map_err(|e| e.message);
        if generation.get_value() == mine {
            preview.set(Some(answer));
        }
    });
}

#[component]
pub fn BatchPanel(draft: Draft) -> impl IntoView {
    let preview = draft.preview;
    let generation = StoredValue::new(0u64);
    Effect::new(move |_| refresh_preview(draft, preview, generation));
    let detected = Memo::new(move |_| draft.detected());

    view! {
        <div class="batch-panel">
            <ModeSwitch draft/>
            <Variables draft detected/>
            <Show when=move || draft.mode.get() == Mode::Each && draft.references.with(Vec::is_empty)>
                <p class="hint">"批量改图：先添加几张参考图（可以一次选多张），每张生成各自的结果。"</p>
            </Show>
            <Show when=move || draft.is_batch()>
                <input type="text" class="batch-name-input" placeholder="批次名称（可选，默认是提示词的开头）"
                    aria-label="批次名称" maxlength="100"
                    prop:value=move || draft.name.get()
                    on:input=move |ev| draft.name.set(event_target_value(&ev))/>
            </Show>
            <PreviewNote draft/>
        </div>
    }
}

/// 模式：原生单选框（样式是一排按钮），水合之前也能选，水合后取它此刻的值。
/// `checked` 属性是服务端渲染时的默认选择，之后由 `prop:checked` 跟着信号走。
#[component]
fn ModeSwitch(draft: Draft) -> impl IntoView {
    view! {
        <div class="modes" role="radiogroup" aria-label="模式">
            {Mode::ALL.into_iter().map(|m| view! {
                <label class="seg">
                    <input type="radio" name="mode" value=m.value() checked={m == Mode::default()}
                        prop:checked=move || draft.mode.get() == m
                        on:change=move |_| draft.mode.set(m)/>
                    <span>{m.label()}</span>
                </label>
            }).collect_view()}
        </div>
    }
}

/// 变量面板：提示词里每个 `{变量}` 一行（值一行一个）；两个以上时选组合方式。没有变量时不显示。
#[component]
fn Variables(draft: Draft, detected: Memo<Vec<String>>) -> impl IntoView {
    view! {
        <Show when=move || !detected.with(Vec::is_empty)>
            <fieldset class="variables" data-testid="variables">
                <legend>"变量（每行一个值，每个值生成一张）"</legend>
                <For each=move || detected.get() key=|name| name.clone() let:name>
                    <VariableValues draft name/>
                </For>
                <Show when=move || { detected.with(Vec::len) > 1 }>
                    <label>
                        "组合方式"
                        <select on:change=move |ev| draft.variable_mode.set(
                            if event_target_value(&ev) == "zip" { VariableMode::Zip } else { VariableMode::Cartesian })>
                            <option value="cartesian" prop:selected=move || draft.variable_mode.get() == VariableMode::Cartesian>"全部组合"</option>
                            <option value="zip" prop:selected=move || draft.variable_mode.get() == VariableMode::Zip>"按行对应"</option>
                        </select>
                    </label>
                </Show>
            </fieldset>
        </Show>
    }
}

/// 一个变量的值（每行一个）。
#[component]
fn VariableValues(draft: Draft, name: String) -> impl IntoView {
    let (read, write) = (name.clone(), name.clone());
    view! {
        <label class="variable">
            <span class="variable-name">{format!("{{{name}}}")}</span>
            <textarea rows="2" placeholder="每行一个值" aria-label=format!("变量 {name} 的值")
                prop:value=move || draft.variables.with(|v| v.get(&read).cloned().unwrap_or_default())
                on:input=move |ev| {
                    let value = event_target_value(&ev);
                    draft.variables.update(|v| { v.insert(write.clone(), value); });
                }></textarea>
        </label>
    }
}

/// “将生成 N 张”与前几条展开后的提示词；展开不了时是服务器说的原因。
#[component]
fn PreviewNote(draft: Draft) -> impl IntoView {
    let prices = Prices::get();
    move || {
        let (ok, invalid) = match draft.preview.get() {
            Some(Ok(p)) => (Some(p), None),
            Some(Err(message)) => (None, Some(message)),
            None => (None, None),
        };
        let ok = ok.map(|p| view! {
                <div class="preview" data-testid="preview">
                    <strong>{format!("将生成 {} 张", p.total)}</strong>
                    " "
                    <span class="estimate">
                        {prices.estimate(&draft.model.get(), draft.size.get(), p.total)}
                    </span>
                    {(!p.prompts.is_empty()).then(|| view! {
                        <ol>
                            {p.prompts.iter().take(PREVIEW_PROMPTS).map(|t| view! { <li>{t.clone()}</li> }).collect_view()}
                            {(p.prompts.len() > PREVIEW_PROMPTS).then(|| view! {
                                <li class="more">{format!("……共 {} 条", p.prompts.len())}</li>
                            })}
                        </ol>
                    })}
                </div>
        });
        let invalid = invalid.map(|message| {
            view! {
                <p class="preview invalid" data-testid="preview">{message}</p>
            }
        });
        view! { {ok} {invalid} }
    }
}
