//! 缩略图：最长边 384 像素的 JPEG，放在原图旁边（`{id}.thumb.jpg`）。
//!
//! 保存原图后交给一个后台线程逐个生成：不占用请求路径，同一时刻最多占一个核、一张图的内存
//! （16 张 8 MB 大图同时完成时，不会有 16 个解码同时进行）。请求缩略图时若还没生成好，就地生成。
//! 缩略图随时可以由原图重新生成，所以写盘不 fsync；原图不比缩略图大时不生成，直接用原图。

use super::{Blobs, Durability, ImageRecord, StorageError};
use image::codecs::jpeg::JpegEncoder;

/// 缩略图最长边（像素）。
pub const THUMB_MAX_SIDE: u32 = 384;

/// 后台队列的长度；排满时新图不排队，等有人要看时再生成。
const QUEUE: usize = 1024;

/// 这张图需不需要单独的缩略图。
pub fn needed(record: &ImageRecord) -> bool {
    record.width.max(record.height) > THUMB_MAX_SIDE
}

/// 启动后台线程，返回往里排队的一端。所有发送端都被丢弃时线程退出。
pub fn worker(blobs: Blobs) -> std::sync::mpsc::SyncSender<ImageRecord> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<ImageRecord>(QUEUE);
    std::thread::Builder::new()
        .name("缩略图".into())
        .spawn(move || {
            // 让位给请求：把本线程的 nice 值调到 19（Linux 上 setpriority 的 PRIO_PROCESS + 0 只作用于调用线程）。
            // 调不成也无妨，只是缩略图与请求平分 CPU。
            // SAFETY: setpriority 只接收整数参数，不读写任何内存。
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, 0, 19);
            }
            for record in rx {
                if let Err(e) = ensure(&blobs, &record) {
                    tracing::warn!(id = %record.id, "生成缩略图失败：{e}");
                }
            }
        })
        .expect("可以启动缩略图线程");
    tx
}

/// 缩略图已在（且不是空文件）就直接返回它相对根的路径，否则由原图生成。阻塞调用。
pub fn ensure(blobs: &Blobs, record: &ImageRecord) -> Result<String, StorageError> {
    let rel = record.thumb_rel_path_for();
    if blobs.exists(&record.root, &rel) {
        return Ok(rel);
    }
    let original = blobs.read(&record.root, &record.rel_path)?;
    let thumb = bytes::Bytes::from(make_thumbnail(&original)?);
    blobs.write(&record.root, &rel, thumb, Durability::Rebuildable)?;
    // 生成期间原图可能已被永久删除（清空回收站先删原图、再删缩略图）：那就把刚写的缩略图也删掉，
    // 免得留下一个没有记录的孤儿文件。写完再查，删除与生成怎样交错都不会漏。
    if !blobs.exists(&record.root, &record.rel_path) {
        let _ = blobs.remove(&record.root, &rel);
        return Err(StorageError::Io {
            context: "原图已被删除".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        });
    }
    Ok(rel)
}

/// 由原图字节生成缩略图（JPEG，质量 80）。
pub fn make_thumbnail(data: &[u8]) -> Result<Vec<u8>, StorageError> {
    let image =
        crate::decode::decode(data, None).map_err(|e| StorageError::NotAnImage(e.to_string()))?;
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
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(image::RgbImage::new(1376, 768))
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        let thumb = image::load_from_memory(&make_thumbnail(&png).unwrap()).unwrap();
        assert_eq!(thumb.width(), 384);
        assert!(
            (thumb.height() as i32 - 214).abs() <= 1,
            "{}",
            thumb.height()
        );
    }
}
