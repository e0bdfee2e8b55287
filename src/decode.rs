//! 解码图片的唯一入口：带上限解码（边长与内存），同时进行的解码有上限。
//!
//! 一个 35 字节的 GIF 可以声明 11000 × 11000 的画布，不设上限解码要 460 MB；十几个这样的请求同时来就能拖垮服务器。
//! 所以参考图（GIF、HEIC 转 PNG）与缩略图都经这里：边长不超过 [`MAX_DECODE_SIDE`]、解码分配不超过
//! [`MAX_DECODE_ALLOC`]，全服务器同时最多 [`DECODE_SLOTS`] 个解码（其余的排队等）。
//! 只读文件头取尺寸的（`image_size`）不解码像素，不占名额。
//! 单独一个模块：HTTP 层（参考图）与存储（缩略图）都用它，谁也不必向对方借。

use image::{DynamicImage, ImageFormat, ImageReader, Limits};
use std::io::Cursor;

/// 解码的图片每边最多几个像素。
pub const MAX_DECODE_SIDE: u32 = 8192;
/// 一次解码最多分配多少字节（RGBA 约 3300 万像素）。
pub const MAX_DECODE_ALLOC: u64 = 128 << 20;
/// 全服务器同时最多几个解码。
pub const DECODE_SLOTS: usize = 2;

static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(DECODE_SLOTS);

/// 图片为什么不能解码（中文说明）。
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "太大：{width} × {height} 像素（每边最多 {MAX_DECODE_SIDE} 像素，总共约 3300 万像素）"
    )]
    TooLarge { width: u32, height: u32 },
    #[error("无法解码：{0}")]
    Broken(String),
}

fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_DECODE_SIDE);
    limits.max_image_height = Some(MAX_DECODE_SIDE);
    limits.max_alloc = Some(MAX_DECODE_ALLOC);
    limits
}

/// 只读文件头得到尺寸（不解码像素）；超过边长上限时报错。`format` 为空时按内容猜。
pub fn image_size(data: &[u8], format: Option<ImageFormat>) -> Result<(u32, u32), DecodeError> {
    let (width, height) = reader(data, format)?
        .into_dimensions()
        .map_err(|e| DecodeError::Broken(e.to_string()))?;
    if width > MAX_DECODE_SIDE || height > MAX_DECODE_SIDE {
        return Err(DecodeError::TooLarge { width, height });
    }
    Ok((width, height))
}

fn reader(
    data: &[u8],
    format: Option<ImageFormat>,
) -> Result<ImageReader<Cursor<&[u8]>>, DecodeError> {
    let reader = ImageReader::new(Cursor::new(data));
    match format {
        Some(format) => Ok({
            let mut reader = reader;
            reader.set_format(format);
            reader
        }),
        None => reader
            .with_guessed_format()
            .map_err(|e| DecodeError::Broken(e.to_string())),
    }
}

/// 带上限地解码（阻塞调用；在 [`blocking`] 里用）。先看文件头里的尺寸，超了不解码。
pub fn decode(data: &[u8], format: Option<ImageFormat>) -> Result<DynamicImage, DecodeError> {
    image_size(data, format)?;
    let mut reader = reader(data, format)?;
    reader.limits(limits());
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => match image_size(data, format) {
            Ok((width, height)) => DecodeError::TooLarge { width, height },
            Err(e) => e,
        },
        e => DecodeError::Broken(e.to_string()),
    })
}

/// 在阻塞线程里做一件解码的活，全服务器同时最多 [`DECODE_SLOTS`] 件（其余的等名额）。
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let _slot = SLOTS.acquire().await.expect("信号量不会被关闭");
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 一个 43 字节的 GIF：逻辑屏幕（画布）`w × h`，只有一帧 1 × 1 的像素。
    pub fn gif_with_canvas(w: u16, h: u16) -> Vec<u8> {
        let mut gif = b"GIF89a".to_vec();
        gif.extend_from_slice(&w.to_le_bytes());
        gif.extend_from_slice(&h.to_le_bytes());
        // 全局调色板 2 色；图像描述符 1 × 1；LZW 数据；结尾。
        gif.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
        gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
        gif.extend_from_slice(&[0x02, 0x02, 0x44, 0x01, 0x00, 0x3B]);
        gif
    }

    #[test]
    fn a_tiny_gif_with_a_huge_canvas_is_refused_before_decoding() {
        let bomb = gif_with_canvas(11_000, 11_000);
        assert!(bomb.len() < 100, "{} 字节", bomb.len());
        assert_eq!(
            decode(&bomb, Some(ImageFormat::Gif)).unwrap_err(),
            DecodeError::TooLarge {
                width: 11_000,
                height: 11_000
            }
        );
        let fine = gif_with_canvas(64, 32);
        let image = decode(&fine, None).unwrap();
        assert_eq!((image.width(), image.height()), (64, 32));
    }

    #[test]
    fn the_allocation_cap_holds_below_the_side_cap() {
        // 8000 × 8000 的 RGBA 要 256 MB，超过分配上限。
        let big = gif_with_canvas(8000, 8000);
        assert!(matches!(
            decode(&big, Some(ImageFormat::Gif)),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
