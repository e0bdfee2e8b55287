//! 图库的状态：查询条件、已加载的图片、选择与详情，以及对它们的动作（都是具名方法）。
//! 各组件拿到同一个 `Browse`（都是信号，可复制），读它、调它的方法。

use super::{
    empty_trash, get_image, list_images, restore_images, set_image_favourite, trash_images,
};
use crate::types::gallery::{GalleryItem, GalleryPage, GalleryQuery, ImageDetail};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// 图库页面的全部状态（都是信号，可随意复制传给子组件）。
#[derive(Clone, Copy)]
pub struct Browse {
    pub search: RwSignal<String>,
    pub mode: RwSignal<String>,
    pub from_date: RwSignal<String>,
    pub to_date: RwSignal<String>,
    /// 正在看回收站。
    pub trash: RwSignal<bool>,
    /// 只看收藏的。
    pub favourites: RwSignal<bool>,
    /// 只看自己的（登录了账号时的“我的”）。
    pub mine: RwSignal<bool>,
    /// 列表视图（缩略图、提示词、尺寸、日期、模型一行一张）；否则是网格。
    pub list_view: RwSignal<bool>,
    pub items: RwSignal<Vec<GalleryItem>>,
    pub next_cursor: RwSignal<Option<String>>,
    pub loading: RwSignal<bool>,
    pub error: RwSignal<Option<String>>,
    pub selected: RwSignal<Vec<String>>,
    pub detail: RwSignal<Option<ImageDetail>>,
    /// 每次重新查询加一；过期查询的结果到达时丢弃，不会覆盖新结果。
    generation: RwSignal<u64>,
}

impl Browse {
    pub fn new(initial: GalleryPage) -> Self {
        Self {
            search: RwSignal::new(String::new()),
            mode: RwSignal::new(String::new()),
            from_date: RwSignal::new(String::new()),
            to_date: RwSignal::new(String::new()),
            trash: RwSignal::new(false),
            favourites: RwSignal::new(false),
            mine: RwSignal::new(false),
            list_view: RwSignal::new(false),
            items: RwSignal::new(initial.items),
            next_cursor: RwSignal::new(initial.next_cursor),
            loading: RwSignal::new(false),
            error: RwSignal::new(None),
            selected: RwSignal::new(Vec::new()),
            detail: RwSignal::new(None),
            generation: RwSignal::new(0),
        }
    }

    fn query(self, cursor: Option<String>) -> GalleryQuery {
        GalleryQuery {
            search: self.search.get_untracked(),
            mode: Some(self.mode.get_untracked()).filter(|m| !m.is_empty()),
            from: local_day_start(&self.from_date.get_untracked(), 0),
            to: local_day_start(&self.to_date.get_untracked(), 1),
            trash: self.trash.get_untracked(),
            favourite: self.favourites.get_untracked().then_some(true),
            cursor,
            limit: None,
            mine: self.mine.get_untracked(),
        }
    }

    /// 取一页：`cursor` 为空是重新查询（替换列表），否则接在后面。
    fn load(self, cursor: Option<String>) {
        let append = cursor.is_some();
        let query = self.query(cursor);
        let this_generation = self.generation.get_untracked();
        self.loading.set(true);
        spawn_local(async move {
            let result = list_images(query).await;
            if self.generation.get_untracked() != this_generation {
                return;
            }
            match result {
                Ok(page) => {
                    if append {
                        self.items.update(|list| list.extend(page.items));
                    } else {
                        self.items.set(page.items);
                    }
                    self.next_cursor.set(page.next_cursor);
                    self.error.set(None);
                }
                Err(e) => self.error.set(Some(e.message)),
            }
            self.loading.set(false);
        });
    }

    /// 有没有设搜索或筛选条件（没有时空图库显示“还没有图片”的引导）。
    pub fn filtered(self) -> bool {
        !self.search.get().trim().is_empty()
            || !self.mode.get().is_empty()
            || !self.from_date.get().is_empty()
            || !self.to_date.get().is_empty()
    }

    /// 条件变了：从第一页重新查，清掉选择。
    pub fn reload(self) {
        self.generation.update(|g| *g += 1);
        self.selected.set(Vec::new());
        self.load(None);
    }

    pub fn load_more(self) {
        if self.loading.get_untracked() {
            return;
        }
        if let Some(cursor) = self.next_cursor.get_untracked() {
            self.load(Some(cursor));
        }
    }

    /// 切换“全部图片 / 收藏 / 回收站”。
    pub fn show_tab(self, trash: bool, favourites: bool) {
        self.trash.set(trash);
        self.favourites.set(favourites);
        self.reload();
    }

    /// 收藏或取消收藏一张图（网格与详情里的 ☆ 同步变）。
    pub fn set_favourite(self, id: String, on: bool) {
        spawn_local(async move {
            match set_image_favourite(id.clone(), on).await {
                Ok(_) => {
                    self.items.update(|list| {
                        list.iter_mut()
                            .filter(|i| i.id == id)
                            .for_each(|i| i.favourite = on)
                    });
                    self.detail.update(|d| {
                        if let Some(d) = d.as_mut().filter(|d| d.item.id == id) {
                            d.item.favourite = on;
                        }
                    });
                }
                Err(e) => self.error.set(Some(e.message)),
            }
        });
    }

    /// 这张图现在收藏了没有。
    pub fn is_favourite(self, id: &str) -> bool {
        self.items
            .with(|list| list.iter().any(|i| i.id == id && i.favourite))
    }

    /// 把这些图片移入回收站（`to_trash`）或从回收站恢复。
    pub fn move_to_trash(self, ids: Vec<String>, to_trash: bool) {
        spawn_local(async move {
            let result = if to_trash {
                trash_images(ids.clone()).await
            } else {
                restore_images(ids.clone()).await
            };
            match result {
                Ok(_) => {
                    self.items
                        .update(|list| list.retain(|i| !ids.contains(&i.id)));
                    self.selected.update(|s| s.retain(|id| !ids.contains(id)));
                    self.detail.set(None);
                }
                Err(e) => self.error.set(Some(e.message)),
            }
        });
    }

    /// 永久删除回收站里的全部图片（先请用户确认）。
    pub fn empty_trash(self) {
        let sure = web_sys::window()
            .and_then(|w| {
                w.confirm_with_message("永久删除回收站里的全部图片？此操作不能撤销。")
                    .ok()
            })
            .unwrap_or(false);
        if !sure {
            return;
        }
        spawn_local(async move {
            match empty_trash().await {
                Ok(_) => self.reload(),
                Err(e) => self.error.set(Some(e.message)),
            }
        });
    }

    pub fn open_detail(self, id: String) {
        spawn_local(async move {
            match get_image(id).await {
                Ok(d) => self.detail.set(Some(d)),
                Err(e) => self.error.set(Some(e.message)),
            }
        });
    }

    /// 选中或取消选中一张。
    pub fn pick(self, id: String, on: bool) {
        self.selected.update(|s| {
            s.retain(|x| *x != id);
            if on {
                s.push(id);
            }
        });
    }
}

/// 浏览器本地时区某天（`YYYY-MM-DD`，加 `plus_days` 天）零点的 UTC 时间（RFC 3339）；空字符串为 None。
fn local_day_start(date: &str, plus_days: u32) -> Option<String> {
    if date.is_empty() {
        return None;
    }
    #[cfg(feature = "hydrate")]
    {
        // 不带时区的“日期T时间”按浏览器本地时区解析。
        let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(&format!(
            "{date}T00:00:00"
        )));
        if d.get_time().is_nan() {
            return None;
        }
        d.set_date(d.get_date() + plus_days);
        Some(String::from(d.to_iso_string()))
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = plus_days;
        None
    }
}
