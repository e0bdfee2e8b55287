//! 局部修改的结果：原图与结果叠在一起，拖动分界线对比（左边原图、右边结果）。
//! 分界线是一个盖满整张图的透明滑块（`<input type="range">`）：鼠标、手指拖动都行，聚焦后用 ←/→ 调。

use leptos::prelude::*;

#[component]
pub fn Compare(before: String, after: String, width: u32, height: u32) -> impl IntoView {
    let at = RwSignal::new(50u32);
    view! {
        <div class="compare-slider" data-testid="compare" style=format!("aspect-ratio: {width} / {height}; width: min(92vw, calc(74vh * {width} / {height}))")
            on:click=|ev| ev.stop_propagation()>
            <img class="before" src=before alt="原图" width=width height=height data-testid="compare-before"/>
            <img class="after" src=after alt="结果" width=width height=height data-testid="compare-after"
                style=move || format!("clip-path: inset(0 0 0 {}%)", at.get())/>
            <span class="divider" aria-hidden="true" style=move || format!("left: {}%", at.get())></span>
            <span class="tag left" aria-hidden="true">"原图"</span>
            <span class="tag right" aria-hidden="true">"结果"</span>
            <input type="range" min="0" max="100" data-testid="compare-range"
                aria-label="对比原图与结果：分界线左边是原图，右边是结果"
                prop:value=move || at.get().to_string()
                on:input=move |ev| at.set(event_target_value(&ev).parse().unwrap_or(50))/>
        </div>
    }
}
