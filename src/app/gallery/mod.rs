//! 图库：所有保存过的图片，按时间倒序分页加载；搜索、筛选、详情、多选打包下载、回收站。
//!
//! 服务器函数都以 JSON 收发，任何 HTTP 客户端都可以调用（见 README“图库接口”）。

use super::error::AppError;
use super::types::AttemptInfo;
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use serde::{Deserialize, Serialize};

/// 每页默认张数与上限。
pub const PAGE_SIZE: u32 = 48;
pub const MAX_PAGE_SIZE: u32 = 200;

/// 图库查询条件；每个字段都可省略。
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GalleryQuery {
    /// 提示词里包含的文字。
    pub search: String,
    /// `text2img`（文生图）或 `img2img`（图生图）；省略为全部。
    pub mode: Option<String>,
    /// 起止时间（RFC 3339，含起不含止）。
    pub from: Option<String>,
    pub to: Option<String>,
    /// true 查看回收站。
    pub trash: bool,
    /// 上一页返回的 `next_cursor`；省略为第一页。
    pub cursor: Option<String>,
    /// 每页张数（1–200，默认 48）。
    pub limit: Option<u32>,
}

/// 图库里的一张图（列表只给缩略图需要的信息）。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GalleryItem {
    pub id: String,
    pub prompt: String,
    pub mode: String,
    pub width: u32,
    pub height: u32,
    /// RFC 3339，UTC。
    pub created_at: String,
    pub url: String,
    pub thumb_url: String,
    /// 移入回收站的时间；为空表示未删除。
    pub deleted_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GalleryPage {
    pub items: Vec<GalleryItem>,
    /// 还有下一页时，把它作为 `cursor` 传回来。
    pub next_cursor: Option<String>,
}

/// 一张图的全部参数与尝试记录。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageDetail {
    #[serde(flatten)]
    pub item: GalleryItem,
    pub model: String,
    pub aspect_ratio: String,
    pub image_size: String,
    pub upstream: String,
    pub mime: String,
    pub bytes: i64,
    pub duration_ms: i64,
    pub attempts: Vec<AttemptInfo>,
    /// 参考图（图生图时）的 id。
    pub reference_ids: Vec<String>,
}

/// 模式的中文名。
pub fn mode_label(mode: &str) -> &'static str {
    match mode {
        "img2img" => "图生图",
        _ => "文生图",
    }
}

/// `POST /api/list_images`，请求体 `{"query":{…GalleryQuery}}`。
#[server(prefix = "/api", endpoint = "list_images", input = Json)]
pub async fn list_images(query: GalleryQuery) -> Result<GalleryPage, AppError> {
    ssr::list(query)
        .await
        .map_err(super::error::ssr::into_app_error)
}

/// `POST /api/get_image`，请求体 `{"id":"…"}`：一张图的全部参数与尝试记录。
#[server(prefix = "/api", endpoint = "get_image", input = Json)]
pub async fn get_image(id: String) -> Result<ImageDetail, AppError> {
    ssr::detail(id)
        .await
        .map_err(super::error::ssr::into_app_error)
}

/// `POST /api/trash_images`，请求体 `{"ids":["…"]}`：移入回收站，返回移入的张数。
#[server(prefix = "/api", endpoint = "trash_images", input = Json)]
pub async fn trash_images(ids: Vec<String>) -> Result<usize, AppError> {
    ssr::trash(ids, true)
        .await
        .map_err(super::error::ssr::into_app_error)
}

/// `POST /api/restore_images`，请求体 `{"ids":["…"]}`：从回收站恢复，返回恢复的张数。
#[server(prefix = "/api", endpoint = "restore_images", input = Json)]
pub async fn restore_images(ids: Vec<String>) -> Result<usize, AppError> {
    ssr::trash(ids, false)
        .await
        .map_err(super::error::ssr::into_app_error)
}

/// `POST /api/empty_trash`，请求体 `{}`：永久删除回收站里的全部图片（文件与记录），返回张数。
#[server(prefix = "/api", endpoint = "empty_trash", input = Json)]
pub async fn empty_trash() -> Result<usize, AppError> {
    ssr::empty_trash()
        .await
        .map_err(super::error::ssr::into_app_error)
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::*;
    use crate::app::error::ssr::state;
    use crate::error::ApiError;
    use crate::storage::{ImageRecord, ListFilter};

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
            deleted_at: r.deleted_at.clone(),
        }
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

    pub async fn list(query: GalleryQuery) -> Result<GalleryPage, ApiError> {
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
        let filter = ListFilter {
            search: query.search.trim().to_string(),
            mode,
            from: normalize_time("from", query.from)?,
            to: normalize_time("to", query.to)?,
            trash: query.trash,
            after: parse_cursor(query.cursor)?,
            // 多取一条，用来判断还有没有下一页。
            limit: limit + 1,
        };
        let mut records = state()?.storage.list(filter).await?;
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

    pub async fn detail(id: String) -> Result<ImageDetail, ApiError> {
        let r = state()?.storage.get(id).await?.ok_or(ApiError::NotFound)?;
        Ok(ImageDetail {
            item: item(&r),
            attempts: serde_json::from_str(&r.attempts).unwrap_or_default(),
            reference_ids: serde_json::from_str(&r.reference_ids).unwrap_or_default(),
            model: r.model,
            aspect_ratio: r.aspect_ratio,
            image_size: r.image_size,
            upstream: r.upstream,
            mime: r.mime,
            bytes: r.bytes,
            duration_ms: r.duration_ms,
        })
    }

    pub async fn trash(ids: Vec<String>, to_trash: bool) -> Result<usize, ApiError> {
        if ids.is_empty() || ids.len() > MAX_IDS {
            return Err(ApiError::InvalidRequest(format!(
                "请选择 1 到 {MAX_IDS} 张图片"
            )));
        }
        let storage = state()?.storage;
        let n = if to_trash {
            storage.trash(ids).await?
        } else {
            storage.restore(ids).await?
        };
        Ok(n)
    }

    pub async fn empty_trash() -> Result<usize, ApiError> {
        let removed = state()?.storage.empty_trash().await?;
        tracing::info!(removed, "已清空回收站");
        Ok(removed)
    }
}

#[component]
pub fn GalleryPage() -> impl IntoView {
    let first = Resource::new(|| (), |_| list_images(GalleryQuery::default()));
    view! {
        <Suspense fallback=|| view! { <p class="loading">"加载中……"</p> }>
            {move || Suspend::new(async move {
                match first.await {
                    Ok(initial) => view! { <Gallery initial/> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}

/// 图库的交互部分。首页数据由服务端渲染时带入，之后的翻页与筛选在浏览器里调用服务器函数。
#[island]
fn Gallery(initial: GalleryPage) -> impl IntoView {
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    let search = RwSignal::new(String::new());
    let mode = RwSignal::new(String::new());
    let from_date = RwSignal::new(String::new());
    let to_date = RwSignal::new(String::new());
    let trash = RwSignal::new(false);

    let items = RwSignal::new(initial.items);
    let next_cursor = RwSignal::new(initial.next_cursor);
    let loading = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let selected = RwSignal::new(Vec::<String>::new());
    let detail = RwSignal::new(None::<ImageDetail>);
    // 每次重新查询加一；过期查询的结果到达时丢弃，不会覆盖新结果。
    let generation = RwSignal::new(0u64);

    let query = move |cursor: Option<String>| GalleryQuery {
        search: search.get_untracked(),
        mode: Some(mode.get_untracked()).filter(|m| !m.is_empty()),
        from: local_day_start(&from_date.get_untracked(), 0),
        to: local_day_start(&to_date.get_untracked(), 1),
        trash: trash.get_untracked(),
        cursor,
        limit: None,
    };
    let load = move |cursor: Option<String>| {
        let append = cursor.is_some();
        let query = query(cursor);
        let this_generation = generation.get_untracked();
        loading.set(true);
        leptos::task::spawn_local(async move {
            let result = list_images(query).await;
            if generation.get_untracked() != this_generation {
                return;
            }
            match result {
                Ok(page) => {
                    if append {
                        items.update(|list| list.extend(page.items));
                    } else {
                        items.set(page.items);
                    }
                    next_cursor.set(page.next_cursor);
                    error.set(None);
                }
                Err(e) => error.set(Some(e.message)),
            }
            loading.set(false);
        });
    };
    let reload = move || {
        generation.update(|g| *g += 1);
        selected.set(Vec::new());
        load(None);
    };
    let load_more = move || {
        if loading.get_untracked() {
            return;
        }
        if let Some(cursor) = next_cursor.get_untracked() {
            load(Some(cursor));
        }
    };

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
            load_more();
        }
    });
    // 一页不够填满屏幕时（大屏幕）继续加载。
    Effect::new(move |_| {
        if !loading.get() && next_cursor.with(Option::is_some) && near_bottom() {
            load_more();
        }
    });

    // 对选中的（或详情里的那一张）图片执行移入回收站 / 恢复。
    let act = move |ids: Vec<String>, to_trash: bool| {
        leptos::task::spawn_local(async move {
            let result = if to_trash {
                trash_images(ids.clone()).await
            } else {
                restore_images(ids.clone()).await
            };
            match result {
                Ok(_) => {
                    items.update(|list| list.retain(|i| !ids.contains(&i.id)));
                    selected.update(|s| s.retain(|id| !ids.contains(id)));
                    detail.set(None);
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let empty = move || {
        leptos::task::spawn_local(async move {
            match empty_trash().await {
                Ok(_) => reload(),
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let open_detail = move |id: String| {
        leptos::task::spawn_local(async move {
            match get_image(id).await {
                Ok(d) => detail.set(Some(d)),
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let _esc = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() == "Escape" {
            detail.set(None);
        }
    });

    let zip_href = move || format!("/files/zip?ids={}", selected.get().join(","));
    let switch_view = move |to: bool| {
        trash.set(to);
        reload();
    };

    view! {
        <section class="gallery" data-hydrated=move || hydrated.get().to_string()>
            <form class="gallery-filters" role="search" on:submit=move |ev| {
                ev.prevent_default();
                reload();
            }>
                <div class="tabs" role="tablist">
                    <button type="button" role="tab" aria-selected=move || (!trash.get()).to_string()
                        on:click=move |_| switch_view(false)>"全部图片"</button>
                    <button type="button" role="tab" aria-selected=move || trash.get().to_string()
                        on:click=move |_| switch_view(true)>"回收站"</button>
                </div>
                <input type="search" name="search" placeholder="搜索提示词"
                    prop:value=move || search.get()
                    on:input=move |ev| search.set(event_target_value(&ev))/>
                <select name="mode" aria-label="模式" on:change=move |ev| {
                    mode.set(event_target_value(&ev));
                    reload();
                }>
                    <option value="">"全部模式"</option>
                    <option value="text2img">"文生图"</option>
                    <option value="img2img">"图生图"</option>
                </select>
                <label>"从"<input type="date" name="from" on:change=move |ev| {
                    from_date.set(event_target_value(&ev));
                    reload();
                }/></label>
                <label>"到"<input type="date" name="to" on:change=move |ev| {
                    to_date.set(event_target_value(&ev));
                    reload();
                }/></label>
                <button type="submit">"搜索"</button>
            </form>

            <div class="selection-bar">
                <span>{move || format!("已选 {} 张", selected.with(Vec::len))}</span>
                <Show when=move || !selected.with(Vec::is_empty)>
                    <a class="button" href=zip_href download>"打包下载"</a>
                    <Show
                        when=move || trash.get()
                        fallback=move || view! {
                            <button type="button" on:click=move |_| act(selected.get_untracked(), true)>
                                "删除"
                            </button>
                        }
                    >
                        <button type="button" on:click=move |_| act(selected.get_untracked(), false)>
                            "恢复"
                        </button>
                    </Show>
                </Show>
                <Show when=move || trash.get() && !items.with(Vec::is_empty)>
                    <button type="button" class="danger" on:click=move |_| {
                        let sure = web_sys::window()
                            .and_then(|w| w.confirm_with_message("永久删除回收站里的全部图片？此操作不能撤销。").ok())
                            .unwrap_or(false);
                        if sure {
                            empty();
                        }
                    }>"清空回收站"</button>
                </Show>
            </div>

            <Show when=move || error.get().is_some()>
                <p class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
            </Show>

            <div class="gallery-grid" data-testid="gallery-grid">
                <Show when=move || items.with(Vec::is_empty) && !loading.get()>
                    <p class="empty">
                        {move || if trash.get() { "回收站是空的。" } else { "没有符合条件的图片。" }}
                    </p>
                </Show>
                <For each=move || items.get() key=|item| item.id.clone() let:item>
                    {
                        let id = item.id.clone();
                        let id_for_check = id.clone();
                        let id_for_open = id.clone();
                        let checked = move || selected.with(|s| s.contains(&id));
                        view! {
                            <figure class="thumb" data-testid="gallery-item" data-id=item.id.clone()>
                                <button type="button" class="open" title="查看详情"
                                    on:click=move |_| open_detail(id_for_open.clone())>
                                    <img src=item.thumb_url.clone() alt=item.prompt.clone() loading="lazy"/>
                                </button>
                                <label class="pick">
                                    <input type="checkbox" aria-label="选择"
                                        prop:checked=checked
                                        on:change=move |ev| {
                                            let on = event_target_checked(&ev);
                                            let id = id_for_check.clone();
                                            selected.update(|s| {
                                                s.retain(|x| *x != id);
                                                if on {
                                                    s.push(id);
                                                }
                                            });
                                        }/>
                                </label>
                                <figcaption>
                                    <span class="prompt">{item.prompt.clone()}</span>
                                    <span class="meta">
                                        {format!("{} · {}×{}", mode_label(&item.mode), item.width, item.height)}
                                    </span>
                                </figcaption>
                            </figure>
                        }
                    }
                </For>
            </div>
            <div node_ref=sentinel class="load-more">
                <Show when=move || next_cursor.with(Option::is_some)>
                    <button type="button" disabled=move || loading.get() on:click=move |_| load_more()>
                        {move || if loading.get() { "加载中……" } else { "加载更多" }}
                    </button>
                </Show>
            </div>

            {move || detail.get().map(|d| view! {
                <DetailDialog d on_close=move || detail.set(None)
                    on_trash=move |id, to_trash| act(vec![id], to_trash)/>
            })}
        </section>
    }
}

/// 详情：大图、全部参数、尝试记录与操作。
#[component]
fn DetailDialog(
    d: ImageDetail,
    on_close: impl Fn() + Copy + Send + Sync + 'static,
    on_trash: impl Fn(String, bool) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let item = d.item.clone();
    let in_trash = item.deleted_at.is_some();
    let id = item.id.clone();
    let rows = [
        ("模式", mode_label(&item.mode).to_string()),
        ("尺寸", format!("{}×{}", item.width, item.height)),
        ("宽高比", d.aspect_ratio.clone()),
        ("分辨率", d.image_size.clone()),
        ("模型", d.model.clone()),
        ("上游", d.upstream.clone()),
        ("耗时", format!("{:.1} 秒", d.duration_ms as f64 / 1000.0)),
        (
            "大小",
            format!("{:.1} KB · {}", d.bytes as f64 / 1024.0, d.mime),
        ),
        ("创建时间", item.created_at.clone()),
        ("参考图", d.reference_ids.len().to_string()),
    ];
    view! {
        <div class="dialog-backdrop" on:click=move |_| on_close()>
            <div class="dialog" role="dialog" aria-modal="true" aria-label="图片详情"
                data-testid="detail" on:click=|ev| ev.stop_propagation()>
                <button type="button" class="close" aria-label="关闭" on:click=move |_| on_close()>"×"</button>
                <img class="full" src=item.url.clone() alt=item.prompt.clone()/>
                <div class="info">
                    <p class="prompt">{item.prompt.clone()}</p>
                    <dl>
                        {rows.into_iter().map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> }).collect_view()}
                    </dl>
                    <details>
                        <summary>{format!("尝试记录（{} 次）", d.attempts.len())}</summary>
                        <ol class="attempts">
                            {d.attempts.iter().map(|a| view! {
                                <li>{super::types::describe_attempt(a)}</li>
                            }).collect_view()}
                        </ol>
                    </details>
                    <div class="actions">
                        <a class="button" href=format!("{}?download=1", item.url) download>"下载"</a>
                        <a class="button" href=format!("/?ref={}", item.id)>"以此图继续编辑"</a>
                        {if in_trash {
                            view! { <button type="button" on:click=move |_| on_trash(id.clone(), false)>"恢复"</button> }.into_any()
                        } else {
                            view! { <button type="button" class="danger" on:click=move |_| on_trash(id.clone(), true)>"删除"</button> }.into_any()
                        }}
                    </div>
                </div>
            </div>
        </div>
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
