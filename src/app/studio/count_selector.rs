//! 张数：一个下拉框，1–16 张（#33：原来 1/2/4/8/16 的按钮与输入框各选一次，重复了）。
//! 原生的 `<select>`：水合之前也能选（水合后取它此刻的值，见 `draft.rs` 的 `EarlyDraft`），键盘上下键可改。

use crate::types::limits::MAX_COUNT;
use leptos::prelude::*;

#[component]
pub fn CountSelector(count: RwSignal<u32>) -> impl IntoView {
    view! {
        <label class="field count">
            <span>"张数"</span>
            <select name="count" aria-label="张数"
                on:change=move |ev| {
                    if let Ok(n) = event_target_value(&ev).parse::<u32>() {
                        count.set(n);
                    }
                }>
                {(1..=MAX_COUNT).map(|n| view! {
                    <option value=n.to_string() selected={count.get_untracked() == n}
                        prop:selected=move || count.get() == n>{n}</option>
                }).collect_view()}
            </select>
        </label>
    }
}
