//! 大图：点卡片上的图打开。有参考图时原图与结果并排（BatchGen MVP 的“原图 / 结果”），下面是提示词与模型说明。
//! ←/→ 在同一批已出图的卡片间移动，Esc 或点背景关闭。
//! “局部修改”在这里涂出要改的地方（`region_edit.rs`）；局部修改的结果打开时是前后对比的滑块（`compare.rs`）。

use super::compare::Compare;
use super::region_edit::{RegionEditor, Target};
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
pub fn Lightbox(
    open: RwSignal<Option<String>>,
    /// 正在“局部修改”（换一张图或关上大图时结束）。
    editing: RwSignal<bool>,
    jobs: RwSignal<Vec<JobView>>,
) -> impl IntoView {
    let job = Memo::new(move |_| {
        let id = open.get()?;
        jobs.with(|list| list.iter().find(|j| j.job_id == id).cloned())
    });
    // 画笔只跟着图变：卡片的其他变化（如收藏）不清掉涂好的笔画。
    let target = Memo::new(move |_| job.with(|j| j.as_ref().and_then(Target::of)));
    Effect::watch(move || open.get(), move |_, _, _| editing.set(false), false);
    let editor = move || {
        let target = target.get().filter(|_| editing.get())?;
        Some(view! {
            <div class="dialog-backdrop lightbox" data-testid="lightbox" on:click=move |_| open.set(None)>
                <RegionEditor target jobs editing open/>
            </div>
        })
    };
    let viewer = move || {
        if editing.get() {
            return None;
        }
        let j = job.get()?;
        let image = j.image.clone()?;
        let originals = j.reference_ids.clone();
        let has_original = !originals.is_empty();
        // 局部修改的结果：原图与结果叠在一起对比；其余：有参考图时并排。
        let masked = j.mask.is_some() && has_original;
        let compare = masked.then(|| {
            view! {
                <Compare before=Reference::full_url(&originals[0]) after=image.url.clone()
                    width=image.width height=image.height/>
            }
        });
        let panes = (!masked).then(|| view! {
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
        });
        Some(view! {
            <div class="dialog-backdrop lightbox" data-testid="lightbox" on:click=move |_| open.set(None)>
                {compare}
                {panes}
                <div class="caption" on:click=|ev| ev.stop_propagation()>
                    <p class="prompt">{j.prompt.clone()}</p>
                    {image.model_text.clone().map(|t| view! {
                        <p class="model-text"><strong>"模型说明："</strong>{t}</p>
                    })}
                    <p class="hint">{format!("第 {} / {} 张 · ←/→ 切换同一批的图 · Esc 关闭", j.index, j.count)}</p>
                    <button type="button" class="region-start" data-testid="region-start"
                        title="在图上涂出要改的地方，其余像素保持不变"
                        on:click=move |_| editing.set(true)>"局部修改"</button>
                </div>
                <button type="button" class="close" aria-label="关闭">"×"</button>
            </div>
        })
    };
    view! { {editor} {viewer} }
}
