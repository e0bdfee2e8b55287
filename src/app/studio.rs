//! 工作台：提示词栏（island）调用服务器函数生成图像，结果显示在上方。

use super::error::AppError;
use super::types::{AspectRatio, GenerateRequest, ImageSize, SavedImage};
use leptos::prelude::*;
use leptos::server_fn::codec::Json;
use leptos::task::spawn_local;

/// 生成一张图像并保存到服务器。可由任何 HTTP 客户端以 JSON 调用：
/// `POST /api/generate_image`，请求体 `{"request":{"prompt":"…","aspect_ratio":"16:9","image_size":"1K"}}`。
#[server(prefix = "/api", endpoint = "generate_image", input = Json)]
pub async fn generate_image(request: GenerateRequest) -> Result<SavedImage, AppError> {
    ssr::generate(request)
        .await
        .map_err(super::error::ssr::into_app_error)
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::*;
    use crate::error::ApiError;
    use crate::gateway::{ImageRequest, InputImage};
    use crate::state::AppState;

    /// 提示词长度上限（字符）。
    const MAX_PROMPT_CHARS: usize = 8000;
    /// 一次最多几张参考图。
    const MAX_REFERENCES: usize = 8;

    /// 按 id 读出参考图：先找图库里的图片，再找上传的参考图。
    async fn load_reference(state: &AppState, id: &str) -> Result<InputImage, ApiError> {
        let not_found = || ApiError::InvalidRequest(format!("参考图“{id}”不存在或已被永久删除"));
        if !id.bytes().all(|b| b.is_ascii_hexdigit()) || id.is_empty() {
            return Err(not_found());
        }
        let (path, mime) = if let Some(r) = state.storage.get(id.to_string()).await? {
            (r.path(), r.mime)
        } else if let Some(u) = state.storage.get_upload(id.to_string()).await? {
            (u.path(), u.mime)
        } else {
            return Err(not_found());
        };
        let data = tokio::fs::read(&path).await.map_err(|e| {
            tracing::warn!(path = %path.display(), "读取参考图失败：{e}");
            not_found()
        })?;
        Ok(InputImage {
            mime,
            data: data.into(),
        })
    }

    pub async fn generate(request: GenerateRequest) -> Result<SavedImage, ApiError> {
        let state = crate::app::error::ssr::state()?;
        let prompt = request.prompt.trim().to_string();
        if prompt.is_empty() {
            return Err(ApiError::InvalidRequest("提示词不能为空".into()));
        }
        if prompt.chars().count() > MAX_PROMPT_CHARS {
            return Err(ApiError::InvalidRequest(format!(
                "提示词太长了，最多 {MAX_PROMPT_CHARS} 个字符"
            )));
        }
        if request.references.len() > MAX_REFERENCES {
            return Err(ApiError::InvalidRequest(format!(
                "参考图最多 {MAX_REFERENCES} 张"
            )));
        }
        let mut references = Vec::with_capacity(request.references.len());
        for id in &request.references {
            references.push(load_reference(&state, id).await?);
        }
        let (image, record) = state
            .generate_and_save(ImageRequest {
                prompt: prompt.clone(),
                references,
                aspect_ratio: request.aspect_ratio,
                image_size: request.image_size,
                model: None,
                progress: Default::default(),
            })
            .await?;
        Ok(SavedImage {
            url: format!("/files/{}", record.id),
            id: record.id,
            width: record.width,
            height: record.height,
            prompt,
            note: image.text,
            upstream: image.upstream,
            attempts: image.attempts,
        })
    }
}

/// 工作台页面。`/?ref=<图片 id>`（图库的“以此图继续编辑”）会把那张图作为参考图带入。
#[component]
pub fn StudioPage() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let references: Vec<String> = query
        .with_untracked(|q| q.get("ref"))
        .into_iter()
        .flat_map(|r| r.split(',').map(str::to_string).collect::<Vec<_>>())
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .collect();
    view! { <Studio references/> }
}

/// 工作台的交互部分：结果网格 + 底部提示词栏。
#[island]
fn Studio(references: Vec<String>) -> impl IntoView {
    let references = RwSignal::new(references);
    let prompt = RwSignal::new(String::new());
    let aspect = RwSignal::new(AspectRatio::default());
    let size = RwSignal::new(ImageSize::default());
    let pending = RwSignal::new(0usize);
    let error = RwSignal::new(None::<String>);
    let images = RwSignal::new(Vec::<SavedImage>::new());
    // 只在浏览器里运行：水合完成后置为 true，测试据此判断页面已可交互。
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));

    let can_send = move || !prompt.with(|p| p.trim().is_empty());
    let submit = move || {
        if !can_send() {
            return;
        }
        let request = GenerateRequest {
            prompt: prompt.get_untracked(),
            aspect_ratio: aspect.get_untracked(),
            image_size: size.get_untracked(),
            references: references.get_untracked(),
        };
        error.set(None);
        pending.update(|n| *n += 1);
        spawn_local(async move {
            match generate_image(request).await {
                Ok(img) => images.update(|list| list.insert(0, img)),
                Err(e) => error.set(Some(e.message)),
            }
            pending.update(|n| *n -= 1);
        });
    };

    view! {
        <section class="studio" data-hydrated=move || hydrated.get().to_string()>
            <div class="grid" data-testid="results">
                <Show when=move || images.with(Vec::is_empty) && pending.get() == 0>
                    <p class="empty">"在下方输入提示词，按 Enter 或点“生成”开始。"</p>
                </Show>
                <Show when=move || { pending.get() > 0 }>
                    <div class="card pending" data-testid="pending-card">
                        <div class="spinner"></div>
                        <p>{move || format!("生成中…（{} 张）", pending.get())}</p>
                    </div>
                </Show>
                <For each=move || images.get() key=|img| img.id.clone() let:img>
                    <ImageCard img/>
                </For>
            </div>
            <form class="prompt-bar" on:submit=move |ev| {
                ev.prevent_default();
                submit();
            }>
                <Show when=move || !references.with(Vec::is_empty)>
                    <ul class="references" aria-label="参考图">
                        <For each=move || references.get() key=|id| id.clone() let:id>
                            {
                                let remove = id.clone();
                                view! {
                                    <li data-testid="reference">
                                        <img src=format!("/files/{id}/thumb") alt="参考图"/>
                                        <button type="button" aria-label="移除参考图" on:click=move |_| {
                                            references.update(|r| r.retain(|x| *x != remove));
                                        }>"×"</button>
                                    </li>
                                }
                            }
                        </For>
                    </ul>
                </Show>
                <textarea
                    name="prompt"
                    placeholder="描述你想要的画面……（Enter 发送，Shift+Enter 换行）"
                    rows="2"
                    prop:value=move || prompt.get()
                    on:input=move |ev| prompt.set(event_target_value(&ev))
                    on:keydown=move |ev| {
                        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                            ev.prevent_default();
                            submit();
                        }
                    }
                ></textarea>
                <div class="controls">
                    <label>
                        "宽高比"
                        <select name="aspect_ratio" on:change=move |ev| {
                            aspect.set(event_target_value(&ev).parse().unwrap_or_default())
                        }>
                            {AspectRatio::ALL
                                .into_iter()
                                .map(|a| view! { <option value=a.as_str()>{a.as_str()}</option> })
                                .collect_view()}
                        </select>
                    </label>
                    <label>
                        "分辨率"
                        <select name="image_size" on:change=move |ev| {
                            size.set(event_target_value(&ev).parse().unwrap_or_default())
                        }>
                            {ImageSize::ALL
                                .into_iter()
                                .map(|s| view! { <option value=s.as_str()>{s.as_str()}</option> })
                                .collect_view()}
                        </select>
                    </label>
                    <button type="submit" class="generate" disabled=move || !can_send()>
                        "生成"
                    </button>
                </div>
                <Show when=move || error.get().is_some()>
                    <p class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
                </Show>
            </form>
        </section>
    }
}

#[component]
fn ImageCard(img: SavedImage) -> impl IntoView {
    let download = format!("{}?download=1", img.url);
    view! {
        <figure class="card done" data-testid="image-card">
            <a href=img.url.clone() target="_blank">
                <img src=img.url.clone() alt=img.prompt.clone() width=img.width height=img.height/>
            </a>
            <figcaption>
                <p class="prompt">{img.prompt.clone()}</p>
                <p class="meta">{format!("{}×{} · {}", img.width, img.height, img.upstream)}</p>
                <a class="button" href=download download>"下载"</a>
            </figcaption>
        </figure>
    }
}
