//! 局部修改（#40）：OpenAI 的 `mask`——与第一张图一样大的 PNG，**完全透明**（alpha = 0）的像素是要改的地方。
//!
//! Gemini 不收蒙版，总是整张重画（颜色、人脸、文字都可能跟着变）。所以这里：
//! 1. 校验蒙版（[`Region::from_mask`]）：PNG、带透明通道、与原图同样大、至少有一个完全透明的像素；
//! 2. 告诉模型改哪里：原图之外再给一张**标出区域的副本**（区域蒙上半透明的洋红色、描一圈边，[`Region::marked_copy`]），
//!    提示词后面加一句说明（[`INSTRUCTION`]）；
//! 3. 模型画回来的图缩放到原图大小，按蒙版贴回原图（[`Region::composite`]）：区域内向里羽化 [`FEATHER`] 像素，
//!    **区域外的每个像素都原样是原图的**（权重为 0 的像素直接拷贝，不经任何运算）。
//!
//! 全部透明的蒙版表示整张都可以改：贴回之后就是模型的图（缩放到原图大小）。

use image::{DynamicImage, ImageFormat, Rgba, RgbaImage};

/// 羽化的宽度（像素）：只往区域里面渐变，区域外不受影响。
pub const FEATHER: u32 = 4;

/// 加在提示词后面的说明（模型看到的；存进图库的仍是用户写的提示词）。
pub const INSTRUCTION: &str = "\n\n（局部修改：第一张是原图，第二张是同一张图，要修改的区域蒙着半透明的洋红色并描了边。\
只按上面的要求修改这个区域，区域以外保持原样；返回与原图构图一致的完整图片，不要画出洋红色与边框。）";

/// 蒙版为什么不能用（中文说明，都是 400）。
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    #[error("mask 必须是 PNG（带透明通道），收到的不是 PNG")]
    NotPng,
    #[error("mask 没有透明通道：要用带 alpha 的 PNG，完全透明的像素表示要修改的区域")]
    NoAlpha,
    #[error("mask 是 {mask_w} × {mask_h} 像素，第一张图是 {image_w} × {image_h}：两者必须一样大")]
    SizeMismatch {
        mask_w: u32,
        mask_h: u32,
        image_w: u32,
        image_h: u32,
    },
    #[error("mask 里没有完全透明（alpha = 0）的像素：没有要修改的区域")]
    Empty,
    #[error("mask {0}")]
    Decode(#[from] crate::decode::DecodeError),
}

/// 要修改的区域：每个像素的权重（0 = 原图，255 = 模型的图），区域边缘向里羽化。
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    width: u32,
    height: u32,
    /// 行优先，每像素一个字节。
    weights: Vec<u8>,
}

impl Region {
    /// 校验蒙版并算出权重。`image_size` 是第一张图的尺寸。阻塞调用（在 `decode::blocking` 里用）。
    pub fn from_mask(mask: &[u8], image_size: (u32, u32)) -> Result<Region, MaskError> {
        if image::guess_format(mask).ok() != Some(ImageFormat::Png) {
            return Err(MaskError::NotPng);
        }
        let (mask_w, mask_h) = crate::decode::image_size(mask, Some(ImageFormat::Png))?;
        let (image_w, image_h) = image_size;
        if (mask_w, mask_h) != (image_w, image_h) {
            return Err(MaskError::SizeMismatch {
                mask_w,
                mask_h,
                image_w,
                image_h,
            });
        }
        let decoded = crate::decode::decode(mask, Some(ImageFormat::Png))?;
        if !decoded.color().has_alpha() {
            return Err(MaskError::NoAlpha);
        }
        let alpha = decoded.to_rgba8();
        let edit: Vec<bool> = alpha.pixels().map(|p| p.0[3] == 0).collect();
        if !edit.iter().any(|e| *e) {
            return Err(MaskError::Empty);
        }
        Ok(Region {
            width: mask_w,
            height: mask_h,
            weights: feathered(&edit, mask_w as usize, mask_h as usize),
        })
    }

    /// 要修改的像素占几成（0–1，日志与说明用）。
    pub fn share(&self) -> f64 {
        let edited = self.weights.iter().filter(|w| **w > 0).count();
        edited as f64 / self.weights.len().max(1) as f64
    }

    /// 原图的一个副本，要修改的区域蒙上半透明的洋红色、边缘描一圈（PNG）：给模型看“改哪里”。
    pub fn marked_copy(&self, source: &DynamicImage) -> Vec<u8> {
        let mut img = source.to_rgba8();
        let (w, h) = (self.width as usize, self.height as usize);
        let inside = |x: usize, y: usize| self.weights[y * w + x] > 0;
        for (x, y, px) in img.enumerate_pixels_mut() {
            let (x, y) = (x as usize, y as usize);
            if !inside(x, y) {
                continue;
            }
            let edge = [(0i64, 1i64), (1, 0), (0, -1), (-1, 0)]
                .iter()
                .any(|(dx, dy)| {
                    let (nx, ny) = (x as i64 + dx, y as i64 + dy);
                    nx < 0
                        || ny < 0
                        || nx >= w as i64
                        || ny >= h as i64
                        || !inside(nx as usize, ny as usize)
                });
            *px = if edge {
                Rgba([255, 0, 255, 255])
            } else {
                let [r, g, b, a] = px.0;
                Rgba([
                    ((r as u16 + 255) / 2) as u8,
                    g / 2,
                    ((b as u16 + 255) / 2) as u8,
                    a,
                ])
            };
        }
        png(&img)
    }

    /// 把模型的图（缩放到原图大小）按权重贴回原图，返回 PNG：权重为 0 的像素原样拷贝原图。
    pub fn composite(&self, source: &DynamicImage, generated: &DynamicImage) -> Vec<u8> {
        let mut out = source.to_rgba8();
        let model = if generated.width() == self.width && generated.height() == self.height {
            generated.to_rgba8()
        } else {
            image::imageops::resize(
                &generated.to_rgba8(),
                self.width,
                self.height,
                image::imageops::FilterType::Lanczos3,
            )
        };
        for (i, (px, new)) in out.pixels_mut().zip(model.pixels()).enumerate() {
            let w = u32::from(self.weights[i]);
            if w == 0 {
                continue;
            }
            for c in 0..3 {
                let (old, new) = (u32::from(px.0[c]), u32::from(new.0[c]));
                px.0[c] = ((old * (255 - w) + new * w + 127) / 255) as u8;
            }
        }
        png(&out)
    }
}

/// 一次局部修改要交给生产线的：区域与给模型看的标记副本（见 `crate::produce`）。
#[derive(Debug)]
pub struct RegionEdit {
    pub region: Region,
    pub marked: crate::gateway::InputImage,
}

impl RegionEdit {
    /// 校验蒙版（对照第一张图 `source` 的尺寸）、画好标记副本。解码在全服务器的解码名额里做。
    pub async fn prepare(
        mask: bytes::Bytes,
        source: &crate::gateway::InputImage,
    ) -> Result<RegionEdit, crate::error::ApiError> {
        let data = source.data.clone();
        let prepared = crate::decode::blocking(move || {
            let size =
                crate::decode::image_size(&data, None).map_err(|e| format!("第 1 张图{e}"))?;
            let region = Region::from_mask(&mask, size).map_err(|e| e.to_string())?;
            let source = crate::decode::decode(&data, None).map_err(|e| format!("第 1 张图{e}"))?;
            let marked = region.marked_copy(&source);
            Ok::<_, String>((region, marked))
        })
        .await
        .map_err(crate::error::ApiError::InvalidRequest)?;
        let (region, marked) = prepared;
        Ok(RegionEdit {
            region,
            marked: crate::gateway::InputImage {
                mime: "image/png".into(),
                data: marked.into(),
            },
        })
    }

    /// 把模型的图贴回原图（解码在全服务器的解码名额里做），返回 PNG。
    pub async fn put_back(
        self: std::sync::Arc<Self>,
        source: bytes::Bytes,
        generated: bytes::Bytes,
    ) -> Result<Vec<u8>, crate::decode::DecodeError> {
        crate::decode::blocking(move || {
            let source = crate::decode::decode(&source, None)?;
            let generated = crate::decode::decode(&generated, None)?;
            Ok(self.region.composite(&source, &generated))
        })
        .await
    }
}

/// 编码成 PNG（无损：区域外的像素存下去还是原图的）。
fn png(img: &RgbaImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png)
        .expect("内存里的 RGBA 图总能编码成 PNG");
    out.into_inner()
}

/// 权重：区域外 0；区域内按到区域外最近像素的距离（8 邻域的棋盘距离）从 255/FEATHER 渐变到 255。
fn feathered(edit: &[bool], w: usize, h: usize) -> Vec<u8> {
    const FAR: u32 = u32::MAX / 2;
    let mut dist: Vec<u32> = edit.iter().map(|e| if *e { FAR } else { 0 }).collect();
    // 两遍扫描的距离变换（正向看左、上、左上、右上，反向看右、下、右下、左下）。
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let mut d = dist[i];
            if x > 0 {
                d = d.min(dist[i - 1] + 1);
            }
            if y > 0 {
                d = d.min(dist[i - w] + 1);
                if x > 0 {
                    d = d.min(dist[i - w - 1] + 1);
                }
                if x + 1 < w {
                    d = d.min(dist[i - w + 1] + 1);
                }
            }
            dist[i] = d;
        }
    }
    for y in (0..h).rev() {
        for x in (0..w).rev() {
            let i = y * w + x;
            let mut d = dist[i];
            if x + 1 < w {
                d = d.min(dist[i + 1] + 1);
            }
            if y + 1 < h {
                d = d.min(dist[i + w] + 1);
                if x + 1 < w {
                    d = d.min(dist[i + w + 1] + 1);
                }
                if x > 0 {
                    d = d.min(dist[i + w - 1] + 1);
                }
            }
            dist[i] = d;
        }
    }
    dist.iter()
        .map(|d| (d.min(&FEATHER) * 255 / FEATHER) as u8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 一张 `w × h` 的蒙版：`hole` 里的像素完全透明，其余不透明。
    fn mask(w: u32, h: u32, hole: (u32, u32, u32, u32)) -> Vec<u8> {
        let (x0, y0, x1, y1) = hole;
        let img = RgbaImage::from_fn(w, h, |x, y| {
            let inside = (x0..x1).contains(&x) && (y0..y1).contains(&y);
            Rgba([0, 0, 0, if inside { 0 } else { 255 }])
        });
        png(&img)
    }

    #[test]
    fn masks_are_checked_before_anything_is_sent() {
        assert_eq!(
            Region::from_mask(&mask(8, 8, (2, 2, 4, 4)), (16, 8)),
            Err(MaskError::SizeMismatch {
                mask_w: 8,
                mask_h: 8,
                image_w: 16,
                image_h: 8
            })
        );
        assert_eq!(
            Region::from_mask(&mask(8, 8, (0, 0, 0, 0)), (8, 8)),
            Err(MaskError::Empty)
        );
        assert_eq!(
            Region::from_mask(b"GIF89a....", (8, 8)),
            Err(MaskError::NotPng)
        );
        let rgb = DynamicImage::new_rgb8(8, 8);
        let mut opaque = std::io::Cursor::new(Vec::new());
        rgb.write_to(&mut opaque, ImageFormat::Png).unwrap();
        assert_eq!(
            Region::from_mask(&opaque.into_inner(), (8, 8)),
            Err(MaskError::NoAlpha)
        );
        assert!(
            Region::from_mask(&mask(8, 8, (0, 0, 8, 8)), (8, 8)).is_ok(),
            "全透明：整张都改"
        );
    }

    #[test]
    fn outside_pixels_are_copied_and_the_edge_fades_inward() {
        let region = Region::from_mask(&mask(32, 32, (8, 8, 24, 24)), (32, 32)).unwrap();
        let source = DynamicImage::ImageRgba8(RgbaImage::from_fn(32, 32, |x, y| {
            Rgba([x as u8 * 7, y as u8 * 7, 100, 255])
        }));
        // 模型的图尺寸不同（要缩放）、颜色全变。
        let generated =
            DynamicImage::ImageRgba8(RgbaImage::from_pixel(64, 64, Rgba([0, 255, 0, 255])));
        let out = image::load_from_memory(&region.composite(&source, &generated))
            .unwrap()
            .to_rgba8();
        let src = source.to_rgba8();
        for (x, y, px) in out.enumerate_pixels() {
            let inside = (8..24).contains(&x) && (8..24).contains(&y);
            if !inside {
                assert_eq!(px, src.get_pixel(x, y), "({x},{y}) 在区域外，应是原图");
            }
        }
        assert_eq!(
            out.get_pixel(16, 16).0,
            [0, 255, 0, 255],
            "区域中心是模型的图"
        );
        let edge = out.get_pixel(8, 16).0;
        assert!(
            edge[1] > src.get_pixel(8, 16).0[1] && edge[1] < 255,
            "边缘是渐变：{edge:?}"
        );
        assert!((region.share() - 0.25).abs() < 1e-9);
    }

    #[test]
    fn the_marked_copy_outlines_the_region() {
        let region = Region::from_mask(&mask(16, 16, (4, 4, 12, 12)), (16, 16)).unwrap();
        let source = DynamicImage::ImageRgba8(RgbaImage::from_pixel(16, 16, Rgba([0, 0, 0, 255])));
        let marked = image::load_from_memory(&region.marked_copy(&source))
            .unwrap()
            .to_rgba8();
        assert_eq!(marked.get_pixel(4, 8).0, [255, 0, 255, 255], "边");
        assert_eq!(marked.get_pixel(8, 8).0, [127, 0, 127, 255], "里面蒙着洋红");
        assert_eq!(marked.get_pixel(1, 1).0, [0, 0, 0, 255], "外面不动");
    }
}
