//! 演示上游的“画师”：由提示词确定性地画出一张 PNG；给了参考图时，在参考图上叠加提示词的色调。
//!
//! 同一提示词、同一尺寸永远得到同一张图，测试可以据此比对。

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{imageops, DynamicImage, ImageEncoder, Rgb, RgbImage};
use sha2::{Digest, Sha256};

/// 由提示词派生的画面参数。
struct Palette {
    from: [f32; 3],
    to: [f32; 3],
    accent: [f32; 3],
    /// 渐变方向（弧度）。
    angle: f32,
    /// 圆：圆心（相对坐标）、半径（相对短边）。
    circles: Vec<(f32, f32, f32)>,
}

impl Palette {
    /// 由提示词（与种子，若有）决定的配色与构图：同样的输入总是同样的图，换一个种子就是另一张。
    fn from_prompt(prompt: &str, seed: Option<i32>) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(prompt.as_bytes());
        if let Some(seed) = seed {
            hasher.update(seed.to_le_bytes());
        }
        let h = hasher.finalize();
        let color = |i: usize| [h[i] as f32, h[i + 1] as f32, h[i + 2] as f32];
        let unit = |i: usize| h[i] as f32 / 255.0;
        let count = 2 + (h[12] % 4) as usize;
        let circles = (0..count)
            .map(|k| {
                let b = 13 + k * 3;
                (unit(b), unit(b + 1), 0.08 + 0.25 * unit(b + 2))
            })
            .collect();
        Self {
            from: color(0),
            to: color(3),
            accent: color(6),
            angle: unit(9) * std::f32::consts::TAU,
            circles,
        }
    }
}

/// 画一张 `width`×`height` 的图。`seed` 不同，同一提示词也画出不同的图。
pub fn draw(
    prompt: &str,
    seed: Option<i32>,
    width: u32,
    height: u32,
    reference: Option<&DynamicImage>,
) -> RgbImage {
    let p = Palette::from_prompt(prompt, seed);
    let base = reference
        .map(|r| imageops::resize(&r.to_rgb8(), width, height, imageops::FilterType::Triangle));
    let (w, h) = (width as f32, height as f32);
    let (cos, sin) = (p.angle.cos(), p.angle.sin());
    let span = w * cos.abs() + h * sin.abs();
    let short = w.min(h);
    let circles: Vec<(f32, f32, f32)> = p
        .circles
        .iter()
        .map(|&(cx, cy, r)| (cx * w, cy * h, (r * short).powi(2)))
        .collect();

    let mut img = RgbImage::new(width, height);
    for (x, y, px) in img.enumerate_pixels_mut() {
        let (fx, fy) = (x as f32, y as f32);
        let t = ((fx - w / 2.0) * cos + (fy - h / 2.0) * sin) / span + 0.5;
        let mut c = lerp(p.from, p.to, t.clamp(0.0, 1.0));
        for &(cx, cy, r2) in &circles {
            if (fx - cx).powi(2) + (fy - cy).powi(2) < r2 {
                c = lerp(c, p.accent, 0.6);
            }
        }
        if let Some(base) = &base {
            // 图生图：以参考图为主体，叠上提示词的色调，整张往左挪一点——像真的模型一样整张重画，
            // 没让改的地方也变了（局部修改的测试靠它证明区域外是贴回的原图）。
            let shift = (width / 50).max(1);
            let b = base.get_pixel((x + shift).min(width - 1), y).0;
            c = lerp([b[0] as f32, b[1] as f32, b[2] as f32], c, 0.3);
        }
        *px = Rgb([c[0] as u8, c[1] as u8, c[2] as u8]);
    }
    img
}

fn lerp(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

/// 编码为 PNG（快速压缩：演示上游要快，不求最小）。
pub fn encode_png(img: &RgbImage) -> Vec<u8> {
    let mut out = Vec::with_capacity(img.len() / 8);
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::Rgb8,
        )
        .expect("写入内存缓冲不会失败");
    out
}

/// 约 `bytes` 字节的噪点 PNG（噪点几乎不可压缩，PNG 大小≈像素字节数），以 base64 part 的形式缓存：
/// 基准测试要的是“上游很快地回一张大图”，每次重新编码会让演示上游自己成为瓶颈。
pub fn noise_png_part(bytes: usize) -> super::Part {
    use base64::Engine;
    use std::sync::{Arc, Mutex};
    static CACHE: Mutex<Option<(usize, Arc<String>)>> = Mutex::new(None);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    let data = match cache.as_ref() {
        Some((n, data)) if *n == bytes => data.clone(),
        _ => {
            let side = ((bytes / 3) as f64).sqrt().max(1.0) as u32;
            let mut state = 0x9E37_79B9_7F4A_7C15_u64;
            let img = RgbImage::from_fn(side, side, |_, _| {
                // xorshift64：确定性的伪随机噪点。
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let v = state.to_le_bytes();
                Rgb([v[0], v[1], v[2]])
            });
            let encoded = base64::engine::general_purpose::STANDARD.encode(encode_png(&img));
            let data = Arc::new(encoded);
            *cache = Some((bytes, data.clone()));
            data
        }
    };
    super::Part {
        inline_data: Some(super::Blob {
            mime_type: "image/png".into(),
            data: (*data).clone(),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_prompt_same_picture_other_prompt_other_picture() {
        let a = draw("一只猫", None, 64, 48, None);
        assert_eq!(a, draw("一只猫", None, 64, 48, None));
        assert_ne!(a, draw("一只狗", None, 64, 48, None));
        // 种子：同一个种子同一张图，不同的种子不同的图。
        assert_eq!(
            draw("一只猫", Some(7), 64, 48, None),
            draw("一只猫", Some(7), 64, 48, None)
        );
        assert_ne!(
            draw("一只猫", Some(7), 64, 48, None),
            draw("一只猫", Some(8), 64, 48, None)
        );
        assert_eq!(a.dimensions(), (64, 48));
    }

    #[test]
    fn edit_stays_close_to_the_reference() {
        let reference = DynamicImage::ImageRgb8(RgbImage::from_pixel(32, 32, Rgb([250, 10, 10])));
        let edited = draw("蓝色", None, 32, 32, Some(&reference));
        let plain = draw("蓝色", None, 32, 32, None);
        // 以参考图为主体：红色通道明显高于不带参考图的版本。
        let red = |img: &RgbImage| img.pixels().map(|p| p.0[0] as u64).sum::<u64>();
        assert!(red(&edited) > red(&plain));
    }

    #[test]
    fn noise_png_has_about_the_requested_size() {
        use base64::Engine;
        let part = noise_png_part(300_000);
        let data = part.inline_data.unwrap().data;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap();
        assert!((290_000..330_000).contains(&png.len()), "{}", png.len());
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), (316, 316));
    }

    #[test]
    fn png_decodes_back() {
        let img = draw("x", None, 40, 30, None);
        let decoded = image::load_from_memory(&encode_png(&img)).unwrap();
        assert_eq!(decoded.to_rgb8(), img);
    }
}
