//! 收下一张参考图：按内容识别类型（不信文件名与声明的类型），不超过大小上限。
//!
//! PNG、JPEG、WebP 原样使用；GIF（取第一帧）与 HEIC/HEIF（iPhone 的照片）转成 PNG 再用——
//! Gemini 收 PNG/JPEG/WebP/HEIC/HEIF，但浏览器显示不了 HEIC，缩略图与别的上游也只认前三种。
//! 转换在阻塞线程里做（一张 1200 万像素的 HEIC 要解码几百毫秒）。

use crate::error::ApiError;
use crate::gateway::InputImage;
use image::ImageFormat;

/// HEIC 最多解码多少像素（防恶意文件；iPhone 的照片是 1200–4800 万像素）。
const MAX_HEIF_PIXELS: u64 = 50_000_000;

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
        return Err(ApiError::InvalidRequest(format!(
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
            return Ok(InputImage {
                mime: format.to_mime_type().to_string(),
                data,
            })
        }
        Kind::Gif | Kind::Heif => tokio::task::spawn_blocking(move || to_png(kind, &data))
            .await
            .map_err(|e| ApiError::Internal(format!("转换参考图的线程出错：{e}")))?,
    };
    let png = converted.map_err(|reason| {
        ApiError::InvalidRequest(format!("第 {index} 张参考图无法解码：{reason}"))
    })?;
    Ok(InputImage {
        mime: "image/png".into(),
        data: png.into(),
    })
}

/// GIF 的第一帧或 HEIC 的主图，编码成 PNG。
fn to_png(kind: Kind, data: &[u8]) -> Result<Vec<u8>, String> {
    let image = match kind {
        Kind::Heif => {
            let options = heifer::Options {
                max_threads: 1,
                max_pixels: MAX_HEIF_PIXELS,
            };
            let decoded = heifer::decode_with_options(data, &options).map_err(|e| e.to_string())?;
            image::RgbaImage::from_raw(decoded.width, decoded.height, decoded.to_rgba8())
                .map(image::DynamicImage::ImageRgba8)
                .ok_or_else(|| "解码出的像素数与尺寸不符".to_string())?
        }
        _ => image::load_from_memory_with_format(data, ImageFormat::Gif)
            .map_err(|e| e.to_string())?,
    };
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), ImageFormat::Png)
        .map_err(|e| e.to_string())?;
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
    }
}
