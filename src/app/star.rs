//! 收藏按钮（☆/★）：工作台的卡片、图库的网格与详情里都用它。

use leptos::prelude::*;

/// 收藏开关：`on` 是现在的状态，点一下调用 `on_toggle(新状态)`。
#[component]
pub fn Star(
    #[prop(into)] on: Signal<bool>,
    #[prop(into)] on_toggle: Callback<bool>,
) -> impl IntoView {
    view! {
        <button type="button" class="star" data-testid="star"
            aria-pressed=move || on.get().to_string()
            aria-label=move || if on.get() { "取消收藏" } else { "收藏" }
            title=move || if on.get() { "取消收藏" } else { "收藏" }
            on:click=move |_| on_toggle.run(!on.get_untracked())>
            {move || if on.get() { "★" } else { "☆" }}
        </button>
    }
}
