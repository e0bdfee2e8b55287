//! 张数选择：常用的 1/2/4/8/16 一键选，也可以输入 1–16 之间的任意数（越界由服务器说明原因）。

use crate::types::limits::MAX_COUNT;
use leptos::prelude::*;

/// 一键可选的张数。
const PRESETS: [u32; 5] = [1, 2, 4, 8, 16];

#[component]
pub fn CountSelector(count: RwSignal<u32>) -> impl IntoView {
    view! {
        <div class="counts" role="group" aria-label="张数">
            {PRESETS.into_iter().map(|n| view! {
                <button type="button" aria-pressed=move || (count.get() == n).to_string()
                    on:click=move |_| count.set(n)>{n}</button>
            }).collect_view()}
            <input type="number" name="count" min="1" max=MAX_COUNT aria-label="张数（1–16）"
                prop:value=move || count.get().to_string()
                on:input=move |ev| {
                    if let Ok(n) = event_target_value(&ev).parse::<u32>() {
                        count.set(n);
                    }
                }/>
        </div>
    }
}
