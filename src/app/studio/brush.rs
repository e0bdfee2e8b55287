//! 局部修改的画笔：笔画的记录（纯数据，可撤销、可重画）与在 `<canvas>` 上画、导出蒙版。
//!
//! 画布的像素大小就是原图的大小（显示时由 CSS 缩放），笔画按画布像素记，所以换了窗口大小也对得上。
//! 涂过的地方在画布上是不透明的洋红色，画布整体半透明地盖在图上；导出的蒙版与原图一样大：
//! 涂过的地方完全透明（要改的地方，OpenAI 的 `mask` 语义），其余不透明。

/// 一笔：经过的点（画布像素）、笔的粗细（画布像素）、是不是橡皮。
#[derive(Debug, Clone, PartialEq)]
pub struct Stroke {
    pub points: Vec<(f64, f64)>,
    pub width: f64,
    pub erase: bool,
}

/// 这些笔画里有没有真正涂了的（只用橡皮擦不算）。
pub fn painted(strokes: &[Stroke]) -> bool {
    strokes.iter().any(|s| !s.erase)
}

/// 屏幕上的一点（相对视口的 CSS 像素）换算成画布像素：画布显示在 `rect` 里，像素大小是 `size`。
pub fn to_canvas(client: (f64, f64), rect: (f64, f64, f64, f64), size: (u32, u32)) -> (f64, f64) {
    let (left, top, width, height) = rect;
    let sx = f64::from(size.0) / width.max(1.0);
    let sy = f64::from(size.1) / height.max(1.0);
    ((client.0 - left) * sx, (client.1 - top) * sy)
}

pub use canvas::{draw_segment, mask_png, repaint};

/// 画与导出。事件处理只在浏览器里运行；服务端编译时 `mask_png` 是个报错的替身。
mod canvas {
    use super::Stroke;
    use wasm_bindgen::JsCast;
    use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

    /// 画笔的颜色（画布整体由 CSS 设成半透明）。
    const INK: &str = "rgb(255, 0, 255)";

    fn context(canvas: &HtmlCanvasElement) -> Option<CanvasRenderingContext2d> {
        canvas.get_context("2d").ok()??.dyn_into().ok()
    }

    /// 把一笔的最后一段（只有一个点时是一个圆点）画上去。
    pub fn draw_segment(canvas: &HtmlCanvasElement, stroke: &Stroke) {
        let Some(ctx) = context(canvas) else {
            return;
        };
        draw(&ctx, stroke, stroke.points.len().saturating_sub(2));
    }

    /// 从 `from` 点起把这一笔画上去。
    fn draw(ctx: &CanvasRenderingContext2d, stroke: &Stroke, from: usize) {
        let op = if stroke.erase {
            "destination-out"
        } else {
            "source-over"
        };
        let _ = ctx.set_global_composite_operation(op);
        ctx.set_stroke_style_str(INK);
        ctx.set_fill_style_str(INK);
        ctx.set_line_width(stroke.width);
        ctx.set_line_cap("round");
        ctx.set_line_join("round");
        let points = &stroke.points[from.min(stroke.points.len())..];
        match points {
            [] => {}
            [(x, y)] => {
                ctx.begin_path();
                let _ = ctx.arc(*x, *y, stroke.width / 2.0, 0.0, std::f64::consts::TAU);
                ctx.fill();
            }
            [(x, y), rest @ ..] => {
                ctx.begin_path();
                ctx.move_to(*x, *y);
                for (x, y) in rest {
                    ctx.line_to(*x, *y);
                }
                ctx.stroke();
            }
        }
        let _ = ctx.set_global_composite_operation("source-over");
    }

    /// 清空画布，按顺序重画这些笔画（撤销之后）。
    pub fn repaint(canvas: &HtmlCanvasElement, strokes: &[Stroke]) {
        let Some(ctx) = context(canvas) else {
            return;
        };
        ctx.clear_rect(0.0, 0.0, canvas.width().into(), canvas.height().into());
        for stroke in strokes {
            draw(&ctx, stroke, 0);
        }
    }

    /// 由画布导出蒙版（PNG）：与画布一样大，涂过的地方完全透明，其余是不透明的黑色。
    #[cfg(feature = "hydrate")]
    pub async fn mask_png(painted: &HtmlCanvasElement) -> Result<web_sys::Blob, String> {
        let failed = || "浏览器无法导出蒙版".to_string();
        let document = web_sys::window()
            .and_then(|w| w.document())
            .ok_or_else(failed)?;
        let mask: HtmlCanvasElement = document
            .create_element("canvas")
            .map_err(|_| failed())?
            .dyn_into()
            .map_err(|_| failed())?;
        mask.set_width(painted.width());
        mask.set_height(painted.height());
        let ctx = context(&mask).ok_or_else(failed)?;
        ctx.set_fill_style_str("#000");
        ctx.fill_rect(0.0, 0.0, mask.width().into(), mask.height().into());
        ctx.set_global_composite_operation("destination-out")
            .map_err(|_| failed())?;
        ctx.draw_image_with_html_canvas_element(painted, 0.0, 0.0)
            .map_err(|_| failed())?;
        let promise = js_sys::Promise::new(&mut |resolve, _reject| {
            let _ = mask.to_blob(&resolve);
        });
        wasm_bindgen_futures::JsFuture::from(promise)
            .await
            .ok()
            .and_then(|blob| blob.dyn_into().ok())
            .ok_or_else(failed)
    }

    #[cfg(not(feature = "hydrate"))]
    pub async fn mask_png(_painted: &HtmlCanvasElement) -> Result<web_sys::Blob, String> {
        Err("只能在浏览器里导出蒙版".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_on_a_half_size_display_lands_at_twice_the_coordinates() {
        // 1024×768 的图显示在 (10, 20) 起 512×384 的框里。
        let p = to_canvas((110.0, 70.0), (10.0, 20.0, 512.0, 384.0), (1024, 768));
        assert_eq!(p, (200.0, 100.0));
    }

    #[test]
    fn only_erasing_is_not_painting() {
        let erase = Stroke {
            points: vec![(1.0, 1.0)],
            width: 4.0,
            erase: true,
        };
        assert!(!painted(std::slice::from_ref(&erase)));
        let paint = Stroke {
            erase: false,
            ..erase.clone()
        };
        assert!(painted(&[erase, paint]));
    }
}
