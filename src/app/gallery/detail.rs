//! 图片详情：大图、全部参数、尝试记录与操作（下载、以此图继续编辑、删除或恢复）。

use crate::app::star::Star;
use crate::types::describe_attempt;
use crate::types::gallery::{mode_label, ImageDetail};
use leptos::prelude::*;

/// 详情：大图、全部参数、尝试记录与操作。
#[component]
pub fn DetailDialog(
    d: ImageDetail,
    on_close: impl Fn() + Copy + Send + Sync + 'static,
    on_trash: impl Fn(String, bool) + Copy + Send + Sync + 'static,
    on_favourite: impl Fn(String, bool) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    // 收藏状态变了，`browse.detail` 会换成新的值，整个对话框重画。
    let starred = Signal::stored(d.item.favourite);
    let id_for_star = d.item.id.clone();
    let item = d.item.clone();
    let in_trash = item.deleted_at.is_some();
    let id = item.id.clone();
    let rows = [
        ("模式", mode_label(&item.mode).to_string()),
        ("尺寸", format!("{}×{}", item.width, item.height)),
        ("宽高比", d.aspect_ratio.clone()),
        ("分辨率", d.image_size.clone()),
        ("模型", item.model.clone()),
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
                    {d.model_text.clone().map(|t| view! {
                        <p class="model-text" data-testid="detail-model-text"><strong>"模型说明："</strong>{t}</p>
                    })}
                    {d.size_note.clone().map(|n| view! {
                        <p class="size-note" data-testid="detail-size-note"><span class="badge warn">"尺寸不符"</span>" "{n}</p>
                    })}
                    {d.file_problem.clone().map(|p| view! {
                        <p class="size-note" data-testid="detail-file-problem"><span class="badge warn">{format!("文件{p}")}</span>
                            " 核对时发现这张图的文件有问题（check --repair 已标记；不完整的文件在存储根的 quarantine/ 下）"</p>
                    })}
                    <Sources sources=d.sources.clone()/>
                    <dl>
                        {rows.into_iter().map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> }).collect_view()}
                    </dl>
                    <details>
                        <summary>{format!("尝试记录（{} 次）", d.attempts.len())}</summary>
                        <ol class="attempts">
                            {d.attempts.iter().map(|a| view! {
                                <li>{describe_attempt(a)}</li>
                            }).collect_view()}
                        </ol>
                    </details>
                    <div class="actions">
                        <Star on=starred on_toggle=move |on| on_favourite(id_for_star.clone(), on)/>
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

/// 联网搜索时模型引用的来源（新窗口打开，不带来源页）。
#[component]
pub fn Sources(sources: Vec<(String, String)>) -> impl IntoView {
    let sources: Vec<(String, String)> = sources
        .into_iter()
        .filter(|(_, url)| crate::types::is_web_link(url))
        .collect();
    (!sources.is_empty()).then(|| {
        view! {
            <details class="sources" data-testid="sources">
                <summary>{format!("联网搜索的来源（{} 个）", sources.len())}</summary>
                <ul>
                    {sources.into_iter().map(|(title, url)| {
                        let shown = if title.is_empty() { url.clone() } else { title };
                        view! { <li><a href=url target="_blank" rel="noopener noreferrer">{shown}</a></li> }
                    }).collect_view()}
                </ul>
            </details>
        }
    })
}
