//! 收下一张参考图：按内容识别类型（不信文件名与声明的类型），不超过大小上限。
//!
//! PNG、JPEG、WebP 原样使用；GIF（取第一帧）与 HEIC/HEIF（iPhone 的照片）转成 PNG 再用——
//! Gemini 收 PNG/JPEG/WebP/HEIC/HEIF，但浏览器显示不了 HEIC，缩略图与别的上游也只认前三种。
//! 转换经 `crate::decode`：带边长与内存上限，同时进行的转换有上限（一张 1200 万像素的 HEIC 要解码几百毫秒）。
//! 原样使用的格式也先读文件头，边长超过上限的不收（之后做缩略图时解不开）。

use crate::decode::DecodeError;
use crate::error::ApiError;
use crate::gateway::InputImage;
use image::ImageFormat;

/// HEIC 最多解码多少像素：与别的格式同一个内存上限（RGBA 约 3300 万像素；iPhone 的照片通常是 1200–2400 万像素，
/// 4800 万像素的“HEIF 最大”照片要先缩小）。
const MAX_HEIF_PIXELS: u64 = crate::decode::MAX_DECODE_ALLOC / 4;

/// 这段字节是什么图。
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// 可以直接用的格式。
    Ready(ImageFormat),
    Gif,
    Heif,
}

/// HEIF 家族（ISO BMFF，`ftyp` 盒子的主品牌）。
fn is_heif(data: &[u8]) -> bool {
    data.len() >= 12
        && &data[4..8] == b"ftyp"
        && matches!(
            &data[8..12],
            b"heic" | b"heix" | b"hevc" | b"hevx" | b"heim" | b"heis" | b"mif1" | b"msf1"
        )
}

fn detect(data: &[u8]) -> Option<Kind> {
    if is_heif(data) {
        return Some(Kind::Heif);
    }
    match image::guess_format(data).ok()? {
        f @ (ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP) => Some(Kind::Ready(f)),
        ImageFormat::Gif => Some(Kind::Gif),
        _ => None,
    }
}

/// 校验并（需要时）转换第 `index` 张参考图。
pub async fn accept_image(
    data: bytes::Bytes,
    max_bytes: usize,
    index: usize,
) -> Result<InputImage, ApiError> {
    if data.len() > max_bytes {
        return Err(ApiError::PayloadTooLarge(format!(
            "第 {index} 张参考图太大（{:.1} MB），上限是 {} MB",
            data.len() as f64 / 1048576.0,
            max_bytes / 1048576
        )));
    }
    let kind = detect(&data).ok_or_else(|| {
        ApiError::InvalidRequest(format!(
            "第 {index} 张参考图不是可识别的图片（支持 PNG、JPEG、WebP、GIF、HEIC）"
        ))
    })?;
    let converted = match kind {
        Kind::Ready(format) => {
            crate::decode::image_size(&data, Some(format)).map_err(|reason| {
                ApiError::InvalidRequest(format!("第 {index} 张参考图{reason}"))
            })?;
            return Ok(InputImage {
                mime: format.to_mime_type().to_string(),
                data,
            });
        }
        Kind::Gif | Kind::Heif => crate::decode::blocking(move || to_png(kind, &data)).await,
    };
    let png = converted
        .map_err(|reason| ApiError::InvalidRequest(format!("第 {index} 张参考图{reason}")))?;
    Ok(InputImage {
        mime: "image/png".into(),
        data: png.into(),
    })
}

/// GIF 的第一帧或 HEIC 的主图，编码成 PNG。
fn to_png(kind: Kind, data: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let image = match kind {
        Kind::Heif => {
            let options = heifer::Options {
                max_threads: 1,
                max_pixels: MAX_HEIF_PIXELS,
            };
            let decoded = heifer::decode_with_options(data, &options)
                .map_err(|e| DecodeError::Broken(e.to_string()))?;
            image::RgbaImage::from_raw(decoded.width, decoded.height, decoded.to_rgba8())
                .map(image::DynamicImage::ImageRgba8)
                .ok_or_else(|| DecodeError::Broken("解码出的像素数与尺寸不符".into()))?
        }
        _ => crate::decode::decode(data, Some(ImageFormat::Gif))?,
    };
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
        .map_err(|e| DecodeError::Broken(e.to_string()))?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gif(w: u32, h: u32) -> Vec<u8> {
        let frame = image::RgbaImage::from_pixel(w, h, image::Rgba([200, 30, 30, 255]));
        let mut out = Vec::new();
        image::DynamicImage::ImageRgba8(frame)
            .write_to(&mut std::io::Cursor::new(&mut out), ImageFormat::Gif)
            .unwrap();
        out
    }

    fn heic(w: u32, h: u32) -> Vec<u8> {
        let rgb: Vec<u8> = (0..w * h)
            .flat_map(|i| [(i % 251) as u8, 90, 160])
            .collect();
        heifer::encode_rgb8(w, h, &rgb, &heifer::EncodeOptions::default()).unwrap()
    }

    fn decoded_size(png: &[u8]) -> (u32, u32) {
        let img = image::load_from_memory_with_format(png, ImageFormat::Png).unwrap();
        (img.width(), img.height())
    }

    #[tokio::test]
    async fn gif_and_heic_become_png_of_the_same_size() {
        for (name, data) in [("gif", gif(40, 30)), ("heic", heic(64, 48))] {
            let accepted = accept_image(data.into(), 1 << 20, 1).await.unwrap();
            assert_eq!(accepted.mime, "image/png", "{name}");
            let expected = if name == "gif" { (40, 30) } else { (64, 48) };
            assert_eq!(decoded_size(&accepted.data), expected, "{name}");
        }
    }

    #[tokio::test]
    async fn ready_formats_pass_and_broken_files_are_refused_with_a_reason() {
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(image::RgbImage::new(2, 2))
            .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        // PNG 原样通过（不重新编码）。
        let same = accept_image(png.clone().into(), 1 << 20, 1).await.unwrap();
        assert_eq!(&same.data[..], &png[..]);
        let err = accept_image(b"not an image".to_vec().into(), 1 << 20, 2)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("第 2 张参考图不是可识别的图片"),
            "{err}"
        );
        let mut broken = heic(16, 16);
        broken.truncate(broken.len() / 2);
        let err = accept_image(broken.into(), 1 << 20, 3).await.unwrap_err();
        assert!(err.to_string().contains("第 3 张参考图无法解码"), "{err}");
        let err = accept_image(gif(4, 4).into(), 10, 1).await.unwrap_err();
        assert!(err.to_string().contains("太大"), "{err}");
        assert_eq!(err.status(), axum::http::StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn huge_canvases_are_refused_without_decoding() {
        let mut bomb = b"GIF89a".to_vec();
        bomb.extend_from_slice(&11_000u16.to_le_bytes());
        bomb.extend_from_slice(&11_000u16.to_le_bytes());
        bomb.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
        bomb.extend_from_slice(&[
            0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3B,
        ]);
        let err = accept_image(bomb.into(), 1 << 20, 2).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("第 2 张参考图太大：11000 × 11000 像素"),
            "{err}"
        );
        // 原样使用的格式只读文件头：9000 像素宽的 PNG 也不收。
        let mut png = Vec::new();
        image::DynamicImage::ImageLuma8(image::GrayImage::new(9000, 1))
            .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let err = accept_image(png.into(), 1 << 20, 1).await.unwrap_err();
        assert!(err.to_string().contains("每边最多 8192 像素"), "{err}");
    }
}
