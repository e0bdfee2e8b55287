//! 图库顶部：“全部图片 / 回收站”、搜索与筛选；其下的选择栏（已选几张、打包下载、删除或恢复、清空回收站）。

use super::browse::Browse;
use leptos::prelude::*;

#[component]
pub fn Filters(browse: Browse) -> impl IntoView {
    let b = browse;
    view! {
        <form class="gallery-filters" role="search" on:submit=move |ev| {
            ev.prevent_default();
            b.reload();
        }>
            <div class="tabs" role="tablist">
                <button type="button" role="tab"
                    aria-selected=move || (!b.trash.get() && !b.favourites.get()).to_string()
                    on:click=move |_| b.show_tab(false, false)>"全部图片"</button>
                <button type="button" role="tab" data-testid="tab-favourites"
                    aria-selected=move || b.favourites.get().to_string()
                    on:click=move |_| b.show_tab(false, true)>"收藏"</button>
                <button type="button" role="tab" aria-selected=move || b.trash.get().to_string()
                    on:click=move |_| b.show_tab(true, false)>"回收站"</button>
            </div>
            <div class="view-toggle" role="group" aria-label="视图">
                <button type="button" aria-pressed=move || (!b.list_view.get()).to_string()
                    on:click=move |_| b.list_view.set(false)>"网格"</button>
                <button type="button" aria-pressed=move || b.list_view.get().to_string()
                    data-testid="view-list" on:click=move |_| b.list_view.set(true)>"列表"</button>
            </div>
            <input type="search" name="search" placeholder="搜索提示词"
                prop:value=move || b.search.get()
                on:input=move |ev| b.search.set(event_target_value(&ev))/>
            <select name="mode" aria-label="模式" on:change=move |ev| {
                b.mode.set(event_target_value(&ev));
                b.reload();
            }>
                <option value="">"全部模式"</option>
                <option value="text2img">"文生图"</option>
                <option value="img2img">"图生图"</option>
            </select>
            <label>"从"<input type="date" name="from" on:change=move |ev| {
                b.from_date.set(event_target_value(&ev));
                b.reload();
            }/></label>
            <label>"到"<input type="date" name="to" on:change=move |ev| {
                b.to_date.set(event_target_value(&ev));
                b.reload();
            }/></label>
            <button type="submit">"搜索"</button>
        </form>
    }
}

#[component]
pub fn SelectionBar(browse: Browse) -> impl IntoView {
    let b = browse;
    let zip_href = move || format!("/files/zip?ids={}", b.selected.get().join(","));
    view! {
        <div class="selection-bar">
            <span>{move || format!("已选 {} 张", b.selected.with(Vec::len))}</span>
            <Show when=move || !b.selected.with(Vec::is_empty)>
                <a class="button" href=zip_href download>"打包下载"</a>
                <Show
                    when=move || b.trash.get()
                    fallback=move || view! {
                        <button type="button" on:click=move |_| b.move_to_trash(b.selected.get_untracked(), true)>
                            "删除"
                        </button>
                    }
                >
                    <button type="button" on:click=move |_| b.move_to_trash(b.selected.get_untracked(), false)>
                        "恢复"
                    </button>
                </Show>
            </Show>
            <Show when=move || b.trash.get() && !b.items.with(Vec::is_empty)>
                <button type="button" class="danger" on:click=move |_| b.empty_trash()>"清空回收站"</button>
            </Show>
        </div>
    }
}
