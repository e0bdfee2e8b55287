//! 打包下载：把选中的图片流式写成 zip（不压缩，PNG/JPEG 本来就压缩过）。
//!
//! zip 的写入是同步的：在阻塞线程里写，经一个有界通道（8 块 × 64 KB）交给响应体。
//! 内存占用与图片数量、大小无关；客户端断开时通道关闭，写线程随即停止。
//! 同时最多打 `MAX_ZIPS` 个包，每个调用方最多 `MAX_ZIPS_PER_CLIENT` 个（多了 503，见 `ZipSlots`）；
//! 客户端 `STALL` 这么久不读，写线程放弃——一个只连不读的客户端占不住阻塞线程，也占不满全部名额。

use super::{Blobs, ImageRecord};
use bytes::Bytes;
use futures::Stream;
use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

const CHUNK: usize = 64 * 1024;
/// 同时最多打几个包。
pub const MAX_ZIPS: usize = 4;
/// 每个调用方（会话或 IP）同时最多打几个包。
pub const MAX_ZIPS_PER_CLIENT: usize = 2;

/// 打包下载的名额：全服务器 [`MAX_ZIPS`] 个，每个调用方最多 [`MAX_ZIPS_PER_CLIENT`] 个。
#[derive(Clone)]
pub struct ZipSlots {
    global: Arc<tokio::sync::Semaphore>,
    per_client: Arc<Mutex<HashMap<String, usize>>>,
}

impl Default for ZipSlots {
    fn default() -> Self {
        Self {
            global: Arc::new(tokio::sync::Semaphore::new(MAX_ZIPS)),
            per_client: Arc::default(),
        }
    }
}

/// 占着的一个打包名额；丢掉时归还。
pub struct ZipSlot {
    _global: tokio::sync::OwnedSemaphorePermit,
    slots: ZipSlots,
    client: String,
}

impl ZipSlots {
    /// 给调用方 `client` 占一个名额；它自己的或全服务器的都满了时返回 None。
    pub fn take(&self, client: &str) -> Option<ZipSlot> {
        let mut counts = self.per_client.lock().expect("锁未被毒化");
        let n = counts.entry(client.to_string()).or_default();
        if *n >= MAX_ZIPS_PER_CLIENT {
            return None;
        }
        let global = self.global.clone().try_acquire_owned().ok()?;
        *n += 1;
        Some(ZipSlot {
            _global: global,
            slots: self.clone(),
            client: client.to_string(),
        })
    }
}

impl Drop for ZipSlot {
    fn drop(&mut self) {
        let mut counts = self.slots.per_client.lock().expect("锁未被毒化");
        if let Some(n) = counts.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.client);
            }
        }
    }
}
/// 客户端这么久不读，就不等了。
const STALL: std::time::Duration = std::time::Duration::from_secs(60);

/// 把输出按 64 KB 一块送进通道的 `Write`。
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
    runtime: tokio::runtime::Handle,
}

impl ChannelWriter {
    fn send_buffered(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        let sent = self
            .runtime
            .block_on(tokio::time::timeout(STALL, self.tx.send(Ok(chunk))));
        match sent {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(io::Error::new(io::ErrorKind::BrokenPipe, "客户端已断开")),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "客户端长时间不读取，已停止打包",
            )),
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_buffered()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_buffered()
    }
}

/// zip 里的一项：存储里的一个文件（根 + 相对路径），或一段现成的内容（例如清单 manifest.csv）。
pub enum Entry {
    File {
        name: String,
        root: String,
        rel_path: String,
    },
    Bytes {
        name: String,
        data: Vec<u8>,
    },
}

impl Entry {
    /// 图库里的一张图，文件名见 `entry_name`。
    pub fn image(record: &ImageRecord) -> Self {
        Entry::File {
            name: entry_name(record),
            root: record.root.clone(),
            rel_path: record.rel_path.clone(),
        }
    }
}

/// zip 里的文件名：提示词摘要 + id 末 8 位（id 前段是时间戳，末段是随机数）+ 扩展名。
fn entry_name(record: &ImageRecord) -> String {
    let excerpt = record.prompt_excerpt();
    let tail = &record.id[record.id.len().saturating_sub(8)..];
    let ext = record.rel_path.rsplit('.').next().unwrap_or("png");
    if excerpt.is_empty() {
        format!("{tail}.{ext}")
    } else {
        format!("{excerpt}-{tail}.{ext}")
    }
}

fn write_zip(blobs: &Blobs, entries: Vec<Entry>, writer: ChannelWriter) -> io::Result<()> {
    let mut zip = ZipWriter::new_stream(writer);
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .large_file(true);
    for entry in entries {
        match entry {
            Entry::File {
                name,
                root,
                rel_path,
            } => {
                zip.start_file(name, options).map_err(io::Error::other)?;
                match Blobs::local_path(&root, &rel_path) {
                    Some(path) => {
                        let mut file = std::fs::File::open(path)?;
                        io::copy(&mut file, &mut zip)?;
                    }
                    // 对象存储：一次取一个对象（内存里最多一张图）。
                    None => {
                        let data = blobs
                            .read(&root, &rel_path)
                            .map_err(|e| io::Error::other(e.to_string()))?;
                        zip.write_all(&data)?;
                    }
                }
            }
            Entry::Bytes { name, data } => {
                zip.start_file(name, options).map_err(io::Error::other)?;
                zip.write_all(&data)?;
            }
        }
    }
    let mut inner = zip.finish().map_err(io::Error::other)?;
    inner.flush()
}

/// 返回 zip 的字节流。读文件出错时流以错误结束（连接中断，客户端不会拿到看似完整的坏包）。
/// `slot` 是打包的名额（见 `ZipSlots`），写完或放弃时归还。
pub fn zip_stream(
    blobs: Blobs,
    entries: Vec<Entry>,
    slot: ZipSlot,
) -> impl Stream<Item = io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel(8);
    let writer = ChannelWriter {
        tx: tx.clone(),
        buf: Vec::with_capacity(CHUNK),
        runtime: tokio::runtime::Handle::current(),
    };
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        if let Err(e) = write_zip(&blobs, entries, writer) {
            match e.kind() {
                io::ErrorKind::BrokenPipe => {}
                io::ErrorKind::TimedOut => tracing::warn!("打包下载：{e}"),
                _ => {
                    tracing::error!("打包下载失败：{e}");
                    let _ = tx.try_send(Err(e));
                }
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_cannot_take_every_zip_slot() {
        let slots = ZipSlots::default();
        let mine: Vec<ZipSlot> = (0..MAX_ZIPS_PER_CLIENT)
            .map(|_| slots.take("ip:198.51.100.1").unwrap())
            .collect();
        assert!(slots.take("ip:198.51.100.1").is_none(), "自己的满了");
        let other = slots.take("ip:198.51.100.2");
        assert!(other.is_some(), "别人照常");
        drop(mine);
        assert!(slots.take("ip:198.51.100.1").is_some(), "归还后又能打包");
    }
}
