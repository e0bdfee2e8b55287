//! 保存生成的图：识别格式、写文件，记录按组提交（见 `Storage::commit_grouped`）；缩略图随后在后台生成，
//! 或在第一次有人要看时现做（见 `thumbs`）。

use super::sql::{Db, DbError};
use super::{db, thumbs, Blobs, ImageRecord, NewImage, Storage, StorageError};
use crate::atomic_file::Durability;
use std::path::{Path, PathBuf};

impl Storage {
    /// 原子地保存一张图像并写入记录；缩略图随后在后台生成。
    pub async fn save_image(&self, image: NewImage) -> Result<ImageRecord, StorageError> {
        let this = self.clone();
        let record = tokio::task::spawn_blocking(move || this.save_image_blocking(image))
            .await
            .map_err(|e| StorageError::Join(e.to_string()))??;
        if thumbs::needed(&record) {
            // 排队满了就不排：第一次有人要看缩略图时再生成。
            let _ = self.inner.thumbs.try_send(record.clone());
        }
        Ok(record)
    }

    /// 返回缩略图（相对根的路径）与类型；还没有就现在生成。原图本来就不比缩略图大时，
    /// 缩略图就是原图（类型也是原图的）。
    pub async fn ensure_thumbnail(
        &self,
        record: ImageRecord,
    ) -> Result<(String, String), StorageError> {
        if !thumbs::needed(&record) {
            return Ok((record.rel_path, record.mime));
        }
        let blobs = self.inner.blobs.clone();
        // 现做的缩略图与参考图的转换共用解码名额（`crate::decode`）：一阵缩略图请求不会同时解码几十张大图。
        let rel = crate::decode::blocking(move || thumbs::ensure(&blobs, &record)).await?;
        Ok((rel, "image/jpeg".into()))
    }

    fn save_image_blocking(&self, image: NewImage) -> Result<ImageRecord, StorageError> {
        let reader = image::ImageReader::new(std::io::Cursor::new(&image.data[..]))
            .with_guessed_format()
            .map_err(|e| StorageError::NotAnImage(e.to_string()))?;
        let format = reader
            .format()
            .ok_or_else(|| StorageError::NotAnImage("无法识别的格式".into()))?;
        let (width, height) = reader
            .into_dimensions()
            .map_err(|e| StorageError::NotAnImage(e.to_string()))?;
        let ext = format.extensions_str().first().copied().unwrap_or("bin");

        let now = chrono::Utc::now();
        let id = uuid::Uuid::now_v7().simple().to_string();
        let rel_path = format!("images/{}/{id}.{ext}", now.format("%Y-%m-%d"));
        let root = self.root();
        // 本地目录的 fsync 留给组提交：同一批改名共用一次。
        let bytes = image.data.len() as i64;
        self.inner
            .blobs
            .write(&root, &rel_path, image.data, Durability::FileSynced)?;
        let dir =
            Blobs::local_path(&root, &rel_path).and_then(|p| p.parent().map(Path::to_path_buf));

        let record = ImageRecord {
            id,
            root,
            rel_path,
            mime: format.to_mime_type().to_string(),
            width,
            height,
            bytes,
            prompt: image.prompt,
            mode: image.mode.to_string(),
            model: image.model,
            aspect_ratio: image.aspect_ratio,
            image_size: image.image_size,
            upstream: image.upstream,
            created_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            duration_ms: image.duration_ms as i64,
            attempts: serde_json::to_string(&image.attempts).unwrap_or_else(|_| "[]".into()),
            reference_ids: serde_json::to_string(&image.reference_ids)
                .unwrap_or_else(|_| "[]".into()),
            model_text: image.model_text,
            favourite: false,
            sources: serde_json::to_string(&image.sources).unwrap_or_else(|_| "[]".into()),
            size_note: image.size_note,
            deleted_at: None,
            account: image.account,
            file_problem: None,
        };
        if let Err(e) = self.commit_grouped(record.clone(), dir) {
            // 没有记录的文件是孤儿：删掉，保持“文件与记录一一对应”。
            let _ = self.inner.blobs.remove(&record.root, &record.rel_path);
            return Err(e);
        }
        Ok(record)
    }

    /// 组提交：把记录放进待提交队列，然后去拿数据库锁。拿到锁的线程把此刻队列里的全部记录
    /// （可能包括别人的）一起提交——每个涉及的目录 fsync 一次（让改名落盘），再用一个事务写入
    /// （一次 WAL fsync）。没赶上这一批的记录由下一个拿到锁的线程提交。
    /// 并发保存时，多张图共用这几次 fsync；只有一张时与逐条提交一样。阻塞调用。
    fn commit_grouped(
        &self,
        record: ImageRecord,
        dir: Option<PathBuf>,
    ) -> Result<(), StorageError> {
        let (done, result) = std::sync::mpsc::channel();
        self.pending().push(PendingInsert { record, dir, done });
        let committed = self.inner.db.run(|conn| {
            let batch = std::mem::take(&mut *self.pending());
            if !batch.is_empty() {
                commit_batch(conn, batch);
            }
            Ok::<_, DbError>(())
        });
        if let Err(e) = committed {
            // 连接都拿不到（PostgreSQL 连不上）：队列里的记录谁也提交不了，全部如实失败。
            for p in std::mem::take(&mut *self.pending()) {
                let _ = p.done.send(Err(StorageError::Unavailable(e.to_string())));
            }
        }
        result
            .recv()
            .unwrap_or_else(|_| Err(StorageError::Join("提交记录的线程意外退出".into())))
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, Vec<PendingInsert>> {
        self.inner.pending.lock().expect("锁未被毒化")
    }
}

/// 一条等待组提交的记录：文件已写好并 fsync、已改名，目录还没 fsync。
pub(super) struct PendingInsert {
    pub(super) record: ImageRecord,
    /// 本地目录里文件所在的目录（要 fsync 的）；对象存储没有。
    pub(super) dir: Option<PathBuf>,
    pub(super) done: std::sync::mpsc::Sender<Result<(), StorageError>>,
}

/// 提交一批记录，把每条的结果发回给它的保存者。
pub(super) fn commit_batch(conn: &mut Db<'_>, batch: Vec<PendingInsert>) {
    let mut dirs: Vec<PathBuf> = batch.iter().filter_map(|p| p.dir.clone()).collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        if let Err(e) = crate::atomic_file::sync_dir(&dir) {
            for p in batch {
                let source = std::io::Error::new(e.kind(), e.to_string());
                let _ = p.done.send(Err(StorageError::Io {
                    context: format!("同步目录 {} 失败", dir.display()),
                    source,
                }));
            }
            return;
        }
    }
    let together = conn.transaction(|tx| {
        for p in &batch {
            db::insert(tx, &p.record)?;
        }
        Ok::<_, DbError>(())
    });
    for p in batch {
        let result = match &together {
            Ok(()) => Ok(()),
            // 一起提交失败（已整体回滚）：逐条再试，谁的问题谁失败。
            Err(_) => db::insert(conn, &p.record).map_err(StorageError::from),
        };
        let _ = p.done.send(result);
    }
}
