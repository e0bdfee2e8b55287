//! 大图：点卡片上的图打开。有参考图时原图与结果并排（BatchGen MVP 的“原图 / 结果”），下面是提示词与模型说明。
//! ←/→ 在同一批已出图的卡片间移动，Esc 或点背景关闭。

use super::Reference;
use crate::types::JobView;
use leptos::prelude::*;

/// 同一批里已出图的卡片（按序号），`from` 向前（-1）或向后（+1）一张；到头了不动。
pub fn step(jobs: &[JobView], from: &str, delta: i32) -> Option<String> {
    let current = jobs.iter().find(|j| j.job_id == from)?;
    let mut batch: Vec<&JobView> = jobs
        .iter()
        .filter(|j| j.batch_id == current.batch_id && j.image.is_some())
        .collect();
    batch.sort_by_key(|j| j.index);
    let at = batch.iter().position(|j| j.job_id == from)? as i32;
    let next = at + delta;
    (0..batch.len() as i32)
        .contains(&next)
        .then(|| batch[next as usize].job_id.clone())
}

#[component]
pub fn Lightbox(open: RwSignal<Option<String>>, jobs: RwSignal<Vec<JobView>>) -> impl IntoView {
    let job = Memo::new(move |_| {
        let id = open.get()?;
        jobs.with(|list| list.iter().find(|j| j.job_id == id).cloned())
    });
    move || {
        let j = job.get()?;
        let image = j.image.clone()?;
        let originals = j.reference_ids.clone();
        let has_original = !originals.is_empty();
        Some(view! {
            <div class="dialog-backdrop lightbox" data-testid="lightbox" on:click=move |_| open.set(None)>
                <div class="panes" class:compare=has_original on:click=|ev| ev.stop_propagation()>
                    {has_original.then(|| view! {
                        <figure class="pane original" data-testid="lightbox-original">
                            <figcaption>"原图"</figcaption>
                            {originals.iter().map(|id| view! {
                                <img src=Reference::full_url(id) alt="原图"/>
                            }).collect_view()}
                        </figure>
                    })}
                    <figure class="pane result">
                        {has_original.then(|| view! { <figcaption>"结果"</figcaption> })}
                        <img src=image.url.clone() alt="大图" width=image.width height=image.height
                            data-testid="lightbox-result"/>
                    </figure>
                </div>
                <div class="caption" on:click=|ev| ev.stop_propagation()>
                    <p class="prompt">{j.prompt.clone()}</p>
                    {image.model_text.clone().map(|t| view! {
                        <p class="model-text"><strong>"模型说明："</strong>{t}</p>
                    })}
                    <p class="hint">{format!("第 {} / {} 张 · ←/→ 切换同一批的图 · Esc 关闭", j.index, j.count)}</p>
                </div>
                <button type="button" class="close" aria-label="关闭">"×"</button>
            </div>
        })
    }
}
