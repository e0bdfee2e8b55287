//! 参考图：已选的缩略图（可移除）、“＋ 参考图”按钮。选择、拖进提示词栏、粘贴都经 `Uploader::add` 上传。
//! 上传要 WASM：水合之前按钮是禁用的并标着 `aria-busy`（“加载中…”），水合前拖进来的文件由页头的脚本拦下并提示稍后再加。

use super::{browser, Reference};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// 上传参考图的动作与状态；提示词栏的拖放与粘贴也用它。
#[derive(Clone, Copy)]
pub struct Uploader {
    pub references: RwSignal<Vec<Reference>>,
    /// 上传失败的原因显示在提示词栏的错误处。
    pub error: RwSignal<Option<String>>,
    pub uploading: RwSignal<bool>,
}

impl Uploader {
    pub fn new(references: RwSignal<Vec<Reference>>, error: RwSignal<Option<String>>) -> Self {
        Self {
            references,
            error,
            uploading: RwSignal::new(false),
        }
    }

    /// 上传这些文件，成功的加进参考图（同一张不重复加）。
    pub fn add(self, files: Vec<web_sys::File>) {
        if files.is_empty() {
            return;
        }
        self.error.set(None);
        self.uploading.set(true);
        spawn_local(async move {
            match browser::upload(files).await {
                Ok(saved) => self.references.update(|list| {
                    for u in saved {
                        if !list.iter().any(|r| r.id == u.id) {
                            list.push(Reference {
                                id: u.id,
                                thumb_url: u.url,
                                filename: u.filename,
                            });
                        }
                    }
                }),
                Err(message) => self.error.set(Some(message)),
            }
            self.uploading.set(false);
        });
    }
}

/// 文件列表 → Vec。
pub fn files_of(list: Option<web_sys::FileList>) -> Vec<web_sys::File> {
    let Some(list) = list else {
        return Vec::new();
    };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

#[component]
pub fn UploadWidget(
    uploader: Uploader,
    /// 页面已水合（之前不能上传）。
    hydrated: RwSignal<bool>,
) -> impl IntoView {
    let references = uploader.references;
    let file_input = NodeRef::<leptos::html::Input>::new();
    let not_ready = move || !hydrated.get();
    view! {
        <div class="references-row" class:has-references=move || !references.with(Vec::is_empty)>
            <ul class="references" aria-label="参考图">
                <For each=move || references.get() key=|r| r.id.clone() let:r>
                    {
                        let remove = r.id.clone();
                        view! {
                            <li data-testid="reference" title=r.filename.clone()>
                                <img src=r.thumb_url.clone() alt="参考图"/>
                                {r.filename.clone().map(|name| view! { <span class="filename">{name}</span> })}
                                <button type="button" aria-label="移除参考图" disabled=not_ready on:click=move |_| {
                                    references.update(|list| list.retain(|x| x.id != remove));
                                }>"×"</button>
                            </li>
                        }
                    }
                </For>
            </ul>
            <button type="button" class="add-reference" title="添加参考图（也可以拖进来或粘贴）"
                disabled=not_ready aria-busy=move || (not_ready() || uploader.uploading.get()).then_some("true")
                on:click=move |_| { if let Some(input) = file_input.get() { input.click(); } }>
                {move || if not_ready() {
                    "＋ 参考图（加载中…）"
                } else if uploader.uploading.get() {
                    "上传中……"
                } else {
                    "＋ 参考图"
                }}
            </button>
            <input type="file" accept="image/png,image/jpeg,image/webp,image/gif,image/heic,image/heif,.heic,.heif" multiple hidden
                node_ref=file_input data-testid="file-input"
                on:change=move |ev| {
                    let input: web_sys::HtmlInputElement = event_target(&ev);
                    uploader.add(files_of(input.files()));
                    input.set_value("");
                }/>
        </div>
    }
}
