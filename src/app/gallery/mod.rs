//! 图库：所有保存过的图片，按时间倒序分页加载；搜索、筛选、详情、多选打包下载、回收站。
//!
//! 服务器函数都以 JSON 收发，任何 HTTP 客户端都可以调用（见 README“图库接口”）。
//!
//! - `mod.rs`（本文件）：服务器函数与页面；
//! - `browse.rs`：图库的状态与动作（查询、翻页、删除、恢复、详情）；
//! - `filters.rs`、`grid.rs`、`detail.rs`：筛选栏与选择栏、缩略图网格、详情对话框。

mod browse;
pub mod detail;
mod filters;
mod grid;

use crate::types::codec::JsonStr;
use crate::types::gallery::{GalleryPage, GalleryQuery, ImageDetail};
use crate::types::AppError;
use browse::Browse;
use detail::DetailDialog;
use filters::{EarlyFilters, Filters, SelectionBar};
use grid::Grid;
use leptos::prelude::*;

/// `POST /api/list_images`，请求体 `{"query":{…GalleryQuery}}`。
#[server(prefix = "/api", endpoint = "list_images", input = JsonStr, output = JsonStr)]
pub async fn list_images(query: GalleryQuery) -> Result<GalleryPage, AppError> {
    crate::state::with_state(|s| async move { ssr::list(&s, query).await }).await
}

/// `POST /api/get_image`，请求体 `{"id":"…"}`：一张图的全部参数与尝试记录。
#[server(prefix = "/api", endpoint = "get_image", input = JsonStr, output = JsonStr)]
pub async fn get_image(id: String) -> Result<ImageDetail, AppError> {
    crate::state::with_state(|s| async move { ssr::detail(&s, id).await }).await
}

/// `POST /api/trash_images`，请求体 `{"ids":["…"]}`：移入回收站，返回移入的张数。
#[server(prefix = "/api", endpoint = "trash_images", input = JsonStr, output = JsonStr)]
pub async fn trash_images(ids: Vec<String>) -> Result<usize, AppError> {
    crate::state::with_state(|s| async move { ssr::trash(&s, ids, true).await }).await
}

/// `POST /api/restore_images`，请求体 `{"ids":["…"]}`：从回收站恢复，返回恢复的张数。
#[server(prefix = "/api", endpoint = "restore_images", input = JsonStr, output = JsonStr)]
pub async fn restore_images(ids: Vec<String>) -> Result<usize, AppError> {
    crate::state::with_state(|s| async move { ssr::trash(&s, ids, false).await }).await
}

/// `POST /api/set_image_favourite`，请求体 `{"id":"…","favourite":true}`：收藏或取消收藏一张图，
/// 返回它的新状态。
#[server(prefix = "/api", endpoint = "set_image_favourite", input = JsonStr, output = JsonStr)]
pub async fn set_image_favourite(id: String, favourite: bool) -> Result<bool, AppError> {
    crate::state::with_state(|s| async move { ssr::set_favourite(&s, id, favourite).await }).await
}

/// `POST /api/empty_trash`，请求体 `{}`：永久删除回收站里的全部图片（文件与记录），返回张数。
#[server(prefix = "/api", endpoint = "empty_trash", input = JsonStr, output = JsonStr)]
pub async fn empty_trash() -> Result<usize, AppError> {
    crate::state::with_state(|s| async move { ssr::empty_trash(&s).await }).await
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::*;
    use crate::error::ApiError;
    use crate::state::AppState;
    use crate::storage::{ImageRecord, ListFilter};
    use crate::types::gallery::{GalleryItem, MAX_PAGE_SIZE, PAGE_SIZE};

    /// 一次最多操作的张数。
    const MAX_IDS: usize = 1000;

    fn item(r: &ImageRecord) -> GalleryItem {
        GalleryItem {
            url: format!("/files/{}", r.id),
            thumb_url: format!("/files/{}/thumb", r.id),
            id: r.id.clone(),
            prompt: r.prompt.clone(),
            mode: r.mode.clone(),
            width: r.width,
            height: r.height,
            created_at: r.created_at.clone(),
            favourite: r.favourite,
            model: r.model.clone(),
            deleted_at: r.deleted_at.clone(),
            owner: r.account.clone(),
        }
    }

    /// 当前请求的人，与图库对他的可见范围（`accounts.private_galleries`）。
    async fn viewer() -> crate::access::accounts::Viewer {
        crate::access::accounts::current().await
    }

    /// 把调用方给的时间统一成数据库里的格式（UTC、毫秒、Z），这样字符串比较就是时间比较。
    fn normalize_time(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
        let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
            return Ok(None);
        };
        let parsed = chrono::DateTime::parse_from_rfc3339(value.trim()).map_err(|_| {
            ApiError::InvalidRequest(format!(
                "{name} 应为 RFC 3339 时间（例如 2026-11-23T00:00:00+08:00），收到“{value}”"
            ))
        })?;
        Ok(Some(
            parsed
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ))
    }

    fn parse_cursor(cursor: Option<String>) -> Result<Option<(String, String)>, ApiError> {
        let Some(cursor) = cursor.filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let bad = || ApiError::InvalidRequest("翻页游标无效，请从第一页重新加载".into());
        let (time, id) = cursor.rsplit_once('_').ok_or_else(bad)?;
        let time = normalize_time("cursor", Some(time.to_string()))
            .map_err(|_| bad())?
            .ok_or_else(bad)?;
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        Ok(Some((time, id.to_string())))
    }

    pub async fn list(state: &AppState, query: GalleryQuery) -> Result<GalleryPage, ApiError> {
        let mode = match query.mode.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(m @ ("text2img" | "img2img")) => Some(m.to_string()),
            Some(other) => {
                return Err(ApiError::InvalidRequest(format!(
                    "mode 只能是 text2img（文生图）或 img2img（图生图），收到“{other}”"
                )))
            }
        };
        let limit = query.limit.unwrap_or(PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ApiError::InvalidRequest(format!(
                "limit 必须在 1 到 {MAX_PAGE_SIZE} 之间，收到 {limit}"
            )));
        }
        let private = state.config.load().accounts.private_galleries;
        let filter = ListFilter {
            account: viewer().await.gallery_owner(query.mine, private),
            search: query.search.trim().to_string(),
            mode,
            from: normalize_time("from", query.from)?,
            to: normalize_time("to", query.to)?,
            trash: query.trash,
            favourite: query.favourite,
            after: parse_cursor(query.cursor)?,
            // 多取一条，用来判断还有没有下一页。
            limit: limit + 1,
        };
        let mut records = state.storage.list(filter).await?;
        let next_cursor = if records.len() > limit as usize {
            records.truncate(limit as usize);
            records.last().map(|r| format!("{}_{}", r.created_at, r.id))
        } else {
            None
        };
        Ok(GalleryPage {
            items: records.iter().map(item).collect(),
            next_cursor,
        })
    }

    pub async fn detail(state: &AppState, id: String) -> Result<ImageDetail, ApiError> {
        let r = state.storage.get(id).await?.ok_or(ApiError::NotFound)?;
        let private = state.config.load().accounts.private_galleries;
        if viewer()
            .await
            .gallery_owner(false, private)
            .is_some_and(|only| only != r.account)
        {
            return Err(ApiError::NotFound);
        }
        Ok(ImageDetail {
            item: item(&r),
            attempts: serde_json::from_str(&r.attempts).unwrap_or_default(),
            reference_ids: serde_json::from_str(&r.reference_ids).unwrap_or_default(),
            model_text: r.model_text,
            size_note: r.size_note,
            file_problem: r.file_problem,
            sources: serde_json::from_str(&r.sources).unwrap_or_default(),
            aspect_ratio: r.aspect_ratio,
            image_size: r.image_size,
            upstream: r.upstream,
            mime: r.mime,
            bytes: r.bytes,
            duration_ms: r.duration_ms,
        })
    }

    pub async fn trash(
        state: &AppState,
        ids: Vec<String>,
        to_trash: bool,
    ) -> Result<usize, ApiError> {
        if ids.is_empty() || ids.len() > MAX_IDS {
            return Err(ApiError::InvalidRequest(format!(
                "请选择 1 到 {MAX_IDS} 张图片"
            )));
        }
        let storage = &state.storage;
        // 别人的图要管理员才能删（或恢复）：有一张不行就整个拒绝，什么都不改。
        let viewer = viewer().await;
        if viewer.0.is_some() {
            for id in &ids {
                if let Some(r) = storage.get(id.clone()).await? {
                    viewer.check_touch(&r.account, "张图")?;
                }
            }
        }
        let n = if to_trash {
            storage.trash(ids).await?
        } else {
            storage.restore(ids).await?
        };
        Ok(n)
    }

    pub async fn set_favourite(
        state: &AppState,
        id: String,
        favourite: bool,
    ) -> Result<bool, ApiError> {
        if !state.storage.set_favourite(id.clone(), favourite).await? {
            return Err(ApiError::NotFound);
        }
        state.jobs.favourite_changed(&id, favourite);
        Ok(favourite)
    }

    /// 清空回收站：管理员（与没有账号的会话）清空全部；成员只永久删除自己的。记进操作记录。
    pub async fn empty_trash(state: &AppState) -> Result<usize, ApiError> {
        let viewer = viewer().await;
        let only = viewer
            .0
            .as_ref()
            .filter(|p| !p.admin)
            .map(|p| p.name.clone());
        let removed = state.storage.empty_trash(only.clone()).await?;
        tracing::info!(removed, "已清空回收站");
        let what = match only {
            Some(name) => format!("永久删除了“{name}”回收站里的 {removed} 张图"),
            None => format!("永久删除了回收站里的 {removed} 张图"),
        };
        crate::admin::accounts::record(state, &viewer, "清空回收站", &what).await;
        Ok(removed)
    }
}

#[component]
pub fn GalleryPage() -> impl IntoView {
    let first = Resource::new(|| (), |_| list_images(GalleryQuery::default()));
    // 登录了账号时图库有“全部 / 我的”。
    let accounts = use_context::<crate::types::PageInfo>().is_some_and(|p| p.me.is_some());
    view! {
        <Suspense fallback=|| view! { <p class="loading">"加载中……"</p> }>
            {move || Suspend::new(async move {
                match first.await {
                    Ok(initial) => view! { <Gallery initial accounts/> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// 图库的交互部分。`accounts`：登录了账号（筛选栏多一个“全部 / 我的”）。
#[island(lazy)]
fn Gallery(initial: GalleryPage, accounts: bool) -> impl IntoView {
    let hydrated = RwSignal::new(false);
    // 水合之前填好的搜索与筛选：在视图水合之前读（水合会把搜索框重设为信号的初值）。
    let mut early_filters = Some(EarlyFilters::read());
    let browse = Browse::new(initial);
    Effect::new(move |_| {
        hydrated.set(true);
        let Some(filters) = early_filters.take() else {
            return;
        };
        untrack(|| {
            let submitted = crate::app::early::take_submit("gallery");
            if filters.apply(browse) || submitted {
                browse.reload();
            }
        });
    });

    // 滚到接近底部时自动加载下一页（也可以点“加载更多”）。
    let sentinel = NodeRef::<leptos::html::Div>::new();
    let near_bottom = move || {
        let (Some(el), Some(win)) = (sentinel.get_untracked(), web_sys::window()) else {
            return false;
        };
        let viewport = win
            .inner_height()
            .ok()
            .and_then(|h| h.as_f64())
            .unwrap_or(800.0);
        el.get_bounding_client_rect().top() < viewport + 600.0
    };
    let _scroll = window_event_listener(leptos::ev::scroll, move |_| {
        if near_bottom() {
            browse.load_more();
        }
    });
    // 一页不够填满屏幕时（大屏幕）继续加载。
    Effect::new(move |_| {
        if !browse.loading.get() && browse.next_cursor.with(Option::is_some) && near_bottom() {
            browse.load_more();
        }
    });
    let _esc = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() == "Escape" {
            browse.detail.set(None);
        }
    });

    view! {
        <section class="gallery" data-hydrated=move || hydrated.get().to_string()
            aria-busy=move || (!hydrated.get()).then_some("true")>
            <Filters browse accounts/>
            <SelectionBar browse/>
            <Show when=move || browse.error.get().is_some()>
                <p class="error" role="alert">{move || browse.error.get().unwrap_or_default()}</p>
            </Show>
            <Grid browse/>
            <div node_ref=sentinel class="load-more">
                <Show when=move || browse.next_cursor.with(Option::is_some)>
                    <button type="button" disabled=move || browse.loading.get() on:click=move |_| browse.load_more()>
                        {move || if browse.loading.get() { "加载中……" } else { "加载更多" }}
                    </button>
                </Show>
            </div>
            {move || browse.detail.get().map(|d| view! {
                <DetailDialog d on_close=move || browse.detail.set(None)
                    on_trash=move |id, to_trash| browse.move_to_trash(vec![id], to_trash)
                    on_favourite=move |id, on| browse.set_favourite(id, on)/>
            })}
        </section>
    }
}
