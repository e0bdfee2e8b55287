//! 图库的缩略图网格：点开看详情，勾选用于打包下载或删除。

use super::browse::Browse;
use crate::app::star::Star;
use crate::types::gallery::{mode_label, GalleryItem};
use leptos::prelude::*;

#[component]
pub fn Grid(browse: Browse) -> impl IntoView {
    let b = browse;
    view! {
        <div class="gallery-grid" class:list=move || b.list_view.get() data-testid="gallery-grid">
            <Show when=move || b.items.with(Vec::is_empty) && !b.loading.get()>
                {move || if b.trash.get() {
                    view! { <p class="empty">"回收站是空的。"</p> }.into_any()
                } else if b.favourites.get() {
                    view! { <p class="empty">"还没有收藏的图片：点图片上的 ☆ 收藏。"</p> }.into_any()
                } else if b.filtered() {
                    view! { <p class="empty">"没有符合条件的图片。"</p> }.into_any()
                } else {
                    view! {
                        <div class="empty" data-testid="gallery-empty">
                            <p class="empty-title">"还没有图片"</p>
                            <p>"在工作台生成的每一张图都会自动保存在这里。"</p>
                            <a class="button" href="/">"去工作台生成第一张"</a>
                        </div>
                    }.into_any()
                }}
            </Show>
            <For each=move || b.items.get() key=|item| item.id.clone() let:item>
                <Thumb item browse=b/>
            </For>
        </div>
    }
}

#[component]
fn Thumb(item: GalleryItem, browse: Browse) -> impl IntoView {
    let b = browse;
    let (id_for_check, id_for_open) = (item.id.clone(), item.id.clone());
    let id = item.id.clone();
    let checked = move || b.selected.with(|s| s.contains(&id));
    let (id_for_star, id_for_toggle) = (item.id.clone(), item.id.clone());
    let starred = Signal::derive(move || b.is_favourite(&id_for_star));
    let date = item
        .created_at
        .get(..16)
        .unwrap_or(&item.created_at)
        .replace('T', " ");
    view! {
        <figure class="thumb" data-testid="gallery-item" data-id=item.id.clone()>
            <button type="button" class="open" title="查看详情"
                on:click=move |_| b.open_detail(id_for_open.clone())>
                <img src=item.thumb_url.clone() alt=item.prompt.clone() loading="lazy"/>
            </button>
            <label class="pick">
                <input type="checkbox" aria-label="选择"
                    prop:checked=checked
                    on:change=move |ev| b.pick(id_for_check.clone(), event_target_checked(&ev))/>
            </label>
            <Star on=starred on_toggle=move |on| b.set_favourite(id_for_toggle.clone(), on)/>
            <figcaption>
                <span class="prompt">{item.prompt.clone()}</span>
                <span class="meta">
                    {format!("{} · {}×{}", mode_label(&item.mode), item.width, item.height)}
                </span>
                <span class="meta list-only">{format!("{date} UTC · {}", item.model)}</span>
            </figcaption>
        </figure>
    }
}
