//! 大图里的“局部修改”：在图上涂出要改的地方（画笔粗细可调、橡皮、撤销、清除；手机上用手指涂），
//! 写一句这块要改成什么，提交后是一张普通卡片（进度、取消、重试照常）。蒙版上传后随批次存着，重试改的是同一块；
//! 服务器把模型的图按蒙版贴回原图，涂过的地方以外的像素不变（见 `crate::region`）。

use super::brush::{self, Stroke};
use super::{add_submitted, browser, submit_jobs};
use crate::types::{AspectRatio, ImageSize, JobView, SubmitRequest};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// 要局部修改的图（一张已完成卡片的结果）。
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub image_id: String,
    pub url: String,
    pub width: u32,
    pub height: u32,
    pub aspect_ratio: AspectRatio,
    pub image_size: ImageSize,
    pub model: String,
}

impl Target {
    pub fn of(job: &JobView) -> Option<Target> {
        let image = job.image.as_ref()?;
        Some(Target {
            image_id: image.id.clone(),
            url: image.url.clone(),
            width: image.width,
            height: image.height,
            aspect_ratio: job.aspect_ratio,
            image_size: job.image_size,
            model: job.model.clone(),
        })
    }
}

/// 画笔的默认粗细与范围（屏幕上的 CSS 像素；画的时候换算成原图像素）。
const BRUSH: (u32, u32, u32) = (6, 36, 160);

#[component]
pub fn RegionEditor(
    target: Target,
    jobs: RwSignal<Vec<JobView>>,
    /// 局部修改模式开着；取消或提交成功后关上。
    editing: RwSignal<bool>,
    /// 大图打开的卡片；提交成功后关上大图，好看到新卡片。
    open: RwSignal<Option<String>>,
) -> impl IntoView {
    let canvas = NodeRef::<leptos::html::Canvas>::new();
    let strokes = RwSignal::new(Vec::<Stroke>::new());
    let current = StoredValue::new(None::<Stroke>);
    let (min, default, max) = BRUSH;
    let size = RwSignal::new(default);
    let erase = RwSignal::new(false);
    let prompt = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let (width, height) = (target.width, target.height);
    let url = target.url.clone();

    // 这次按下的点（画布像素）与屏幕到画布的比例。
    let at = move |ev: &web_sys::PointerEvent| {
        let c = canvas.get_untracked()?;
        let r = c.get_bounding_client_rect();
        let rect = (r.left(), r.top(), r.width(), r.height());
        let client = (f64::from(ev.client_x()), f64::from(ev.client_y()));
        let scale = f64::from(width) / r.width().max(1.0);
        Some((c, brush::to_canvas(client, rect, (width, height)), scale))
    };
    let down = move |ev: web_sys::PointerEvent| {
        let Some((c, point, scale)) = at(&ev) else {
            return;
        };
        ev.prevent_default();
        let _ = c.set_pointer_capture(ev.pointer_id());
        let stroke = Stroke {
            points: vec![point],
            width: f64::from(size.get_untracked()) * scale,
            erase: erase.get_untracked(),
        };
        brush::draw_segment(&c, &stroke);
        current.set_value(Some(stroke));
    };
    let moved = move |ev: web_sys::PointerEvent| {
        if current.with_value(Option::is_none) {
            return;
        }
        let Some((c, point, _)) = at(&ev) else {
            return;
        };
        current.update_value(|s| {
            if let Some(s) = s {
                s.points.push(point);
                brush::draw_segment(&c, s);
            }
        });
    };
    let end = move |_| {
        let mut finished = None;
        current.update_value(|s| finished = s.take());
        if let Some(stroke) = finished {
            strokes.update(|list| list.push(stroke));
        }
    };
    let redraw = move || {
        if let Some(c) = canvas.get_untracked() {
            strokes.with_untracked(|list| brush::repaint(&c, list));
        }
    };
    let undo = move |_| {
        strokes.update(|list| {
            list.pop();
        });
        redraw();
    };
    let clear = move |_| {
        strokes.set(Vec::new());
        redraw();
    };
    let submit = move || {
        let text = prompt.get_untracked().trim().to_string();
        let problem = if !strokes.with_untracked(|s| brush::painted(s)) {
            Some("先在图上涂出要修改的地方")
        } else if text.is_empty() {
            Some("写一句这块要改成什么")
        } else {
            None
        };
        if let Some(problem) = problem {
            error.set(Some(problem.to_string()));
            return;
        }
        let Some(c) = canvas.get_untracked() else {
            return;
        };
        let target = target.clone();
        error.set(None);
        busy.set(true);
        spawn_local(async move {
            match send(&c, target, text).await {
                Ok(views) => {
                    add_submitted(jobs, views);
                    editing.set(false);
                    open.set(None);
                }
                Err(message) => error.set(Some(message)),
            }
            busy.set(false);
        });
    };

    view! {
        <div class="region-editor" data-testid="region-editor" on:click=|ev| ev.stop_propagation()>
            <div class="paint-area">
                <img src=url alt="要修改的图" width=width height=height/>
                <canvas node_ref=canvas width=width height=height data-testid="region-canvas"
                    aria-label="在图上涂出要修改的地方"
                    on:pointerdown=down on:pointermove=moved on:pointerup=end on:pointercancel=end></canvas>
            </div>
            <div class="region-tools" role="toolbar" aria-label="画笔">
                <label>"画笔大小"
                    <input type="range" min=min max=max prop:value=move || size.get().to_string()
                        on:input=move |ev| size.set(event_target_value(&ev).parse().unwrap_or(default))/>
                </label>
                <button type="button" aria-pressed=move || erase.get().to_string()
                    on:click=move |_| erase.update(|e| *e = !*e)>"橡皮"</button>
                <button type="button" disabled=move || strokes.with(Vec::is_empty) on:click=undo>"撤销"</button>
                <button type="button" disabled=move || strokes.with(Vec::is_empty) on:click=clear>"清除"</button>
            </div>
            <form class="region-prompt" on:submit=move |ev| {
                ev.prevent_default();
                submit();
            }>
                <textarea rows="2" aria-label="这块要改成什么" placeholder="这块要改成什么，例如：换成一只橘猫"
                    prop:value=move || prompt.get()
                    on:input=move |ev| prompt.set(event_target_value(&ev))></textarea>
                <button type="submit" class="primary" disabled=move || busy.get()>
                    {move || if busy.get() { "提交中……" } else { "提交局部修改" }}
                </button>
                <button type="button" on:click=move |_| editing.set(false)>"取消"</button>
            </form>
            {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <p class="hint">"只有涂过的地方会被重画，其余像素与原图一模一样；提交后是一张新卡片，重试时改的是同一块。"</p>
        </div>
    }
}

/// 导出并上传蒙版，再提交一张以原图为参考图、带蒙版的卡片。
async fn send(
    canvas: &web_sys::HtmlCanvasElement,
    target: Target,
    prompt: String,
) -> Result<Vec<JobView>, String> {
    let blob = brush::mask_png(canvas).await?;
    let mask = browser::upload_blob(&blob, "蒙版.png").await?;
    let request = SubmitRequest {
        prompt,
        references: vec![target.image_id],
        mask: Some(mask.id),
        aspect_ratio: target.aspect_ratio,
        image_size: target.image_size,
        model: target.model,
        ..Default::default()
    };
    submit_jobs(request).await.map_err(|e| e.message)
}
