//! 缩略图：最长边 384 像素的 JPEG，放在原图旁边。保存原图后在后台线程生成，
//! 不占用请求路径；请求缩略图时若还没生成好，就地生成（同样在阻塞线程池里）。

use super::StorageError;
use image::codecs::jpeg::JpegEncoder;

/// 缩略图最长边（像素）。
pub const THUMB_MAX_SIDE: u32 = 384;

/// 由原图字节生成缩略图（JPEG，质量 80）。
pub fn make_thumbnail(data: &[u8]) -> Result<Vec<u8>, StorageError> {
    let image =
        image::load_from_memory(data).map_err(|e| StorageError::NotAnImage(e.to_string()))?;
    let thumb = image.thumbnail(THUMB_MAX_SIDE, THUMB_MAX_SIDE).to_rgb8();
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&thumb)
        .map_err(|e| StorageError::NotAnImage(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbnail_keeps_ratio_within_384() {
        let png = crate::demo::encode_png(&image::RgbImage::new(1376, 768));
        let thumb = image::load_from_memory(&make_thumbnail(&png).unwrap()).unwrap();
        assert_eq!(thumb.width(), 384);
        assert!(
            (thumb.height() as i32 - 214).abs() <= 1,
            "{}",
            thumb.height()
        );
    }
}
