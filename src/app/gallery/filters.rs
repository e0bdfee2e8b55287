//! 图库顶部：“全部图片 / 回收站”、搜索与筛选；其下的选择栏（已选几张、打包下载、删除或恢复、清空回收站）。
//! 水合之前填好的搜索与筛选不丢（#42）：`EarlyFilters` 在水合之前读，水合之后放进状态并重新查询。

use super::browse::Browse;
use crate::app::early;
use leptos::prelude::*;

/// 水合之前用户在搜索与筛选里填好的（没动过的为空）。
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EarlyFilters {
    search: Option<String>,
    mode: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

impl EarlyFilters {
    /// 读筛选栏里各控件此刻的值（在视图水合之前调用；服务端渲染时全是 `None`）。
    pub fn read() -> Self {
        let field = |tag: &str, name: &str| {
            early::changed_value(
                &format!("form.gallery-filters {tag}[name=\"{name}\"]"),
                name,
                "",
            )
        };
        Self {
            search: field("input", "search"),
            mode: field("select", "mode"),
            from: field("input", "from"),
            to: field("input", "to"),
        }
    }

    /// 放进图库的状态；填过任何一项时返回 `true`（要按它们重新查询）。
    pub fn apply(self, b: Browse) -> bool {
        let mut changed = false;
        for (value, signal) in [
            (self.search, b.search),
            (self.mode, b.mode),
            (self.from, b.from_date),
            (self.to, b.to_date),
        ] {
            if let Some(v) = value {
                signal.set(v);
                changed = true;
            }
        }
        changed
    }
}

#[component]
pub fn Filters(browse: Browse, accounts: bool) -> impl IntoView {
    let b = browse;
    let owner = accounts.then(|| {
        view! {
            <select name="owner" aria-label="谁的图" data-testid="gallery-owner" on:change=move |ev| {
                b.mine.set(event_target_value(&ev) == "mine");
                b.reload();
            }>
                <option value="all">"全部"</option>
                <option value="mine">"我的"</option>
            </select>
        }
    });
    view! {
        // data-early：水合前按 Enter 的搜索由页头的脚本记下，水合后照样查询（app/early.rs）。
        <form class="gallery-filters" role="search" autocomplete="off" data-early="gallery" on:submit=move |ev| {
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
            <input type="search" name="search" placeholder="搜索提示词" aria-label="搜索提示词"
                prop:value=move || b.search.get()
                on:input=move |ev| b.search.set(event_target_value(&ev))/>
            {owner}
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
