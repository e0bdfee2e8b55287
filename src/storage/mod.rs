//! 图像存储：磁盘上的图像文件 + SQLite 元数据。
//!
//! 写入顺序保证崩溃安全：同目录临时文件 → 写入 → fsync → 改名 → fsync 目录 → 最后写数据库行。
//! 任何时刻崩溃，都不会留下半个文件，也不会有指向不存在文件的记录；
//! 最多留下一个 `.partial-` 开头的临时文件，下次启动时清掉。

mod archive;
mod db;
pub mod routes;
mod thumbs;

pub use db::{ImageRecord, ListFilter, UploadRecord};

use rusqlite::Connection;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// 临时文件名前缀；启动时清理以它开头的文件。
const PARTIAL_PREFIX: &str = ".partial-";
/// 默认的数据库文件名（位于存储根下）。
pub const DB_FILE: &str = "factory.db";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{context}：{source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("数据库错误：{0}")]
    Db(#[from] rusqlite::Error),
    #[error("数据库迁移失败：{0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("上游返回的数据不是可识别的图像：{0}")]
    NotAnImage(String),
    #[error("后台任务异常退出：{0}")]
    Join(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StorageError {
    let context = context.into();
    move |source| StorageError::Io { context, source }
}

/// 要保存的一张图像及其来历。
pub struct NewImage {
    pub data: bytes::Bytes,
    pub prompt: String,
    pub mode: &'static str,
    pub model: String,
    pub aspect_ratio: String,
    pub image_size: String,
    pub upstream: String,
    /// 从开始生成到拿到图的耗时。
    pub duration_ms: u64,
    pub attempts: Vec<crate::app::types::AttemptInfo>,
    /// 参考图（已由 `save_upload` 保存）的 id。
    pub reference_ids: Vec<String>,
}

#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    /// 新文件写到这里。改存储根只影响之后写的文件；旧文件的记录里有它自己的根，照常可取。
    root: std::sync::RwLock<PathBuf>,
    db: Mutex<Connection>,
    audit: Audit,
}

/// 启动时文件与记录的核对结果。
#[derive(Debug, Clone, Default)]
pub struct Audit {
    /// 有记录、但文件不存在的图片 id。
    pub missing_files: Vec<String>,
    /// 各存储根的 images/ 下没有任何记录指向的文件。
    pub orphan_files: Vec<PathBuf>,
}

/// 比对数据库记录与磁盘文件（只读，不修改任何东西）。当前根和记录里出现过的每个根都会检查。
fn audit(conn: &Connection, root: &Path) -> Result<Audit, StorageError> {
    let rows = db::all_paths(conn)?;
    let mut known = std::collections::HashSet::new();
    let mut missing_files = Vec::new();
    for (id, path, thumb) in rows {
        if !path.is_file() {
            missing_files.push(id);
        }
        known.insert(path);
        known.extend(thumb);
    }
    let mut orphan_files: Vec<PathBuf> = Vec::new();
    let mut roots: Vec<PathBuf> = db::roots(conn)?.into_iter().map(PathBuf::from).collect();
    roots.push(root.to_path_buf());
    roots.sort();
    roots.dedup();
    let mut stack: Vec<PathBuf> = roots.iter().map(|r| r.join("images")).collect();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if !known.contains(&path) {
                orphan_files.push(path);
            }
        }
    }
    Ok(Audit {
        missing_files,
        orphan_files,
    })
}

impl Storage {
    /// 打开存储：新文件写到 `root`，元数据在 `database`（SQLite 文件）。
    /// 建库、迁移、清理上次崩溃留下的临时文件，并核对记录与文件。
    pub fn open(root: &Path, database: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(root)
            .map_err(io_err(format!("无法创建存储目录 {}", root.display())))?;
        if let Some(dir) = database.parent() {
            std::fs::create_dir_all(dir)
                .map_err(io_err(format!("无法创建数据库目录 {}", dir.display())))?;
        }
        let conn = db::open(database)?;
        let mut removed = 0;
        for r in db::roots(&conn)?.iter().map(Path::new).chain([root]) {
            removed += remove_partials(r);
        }
        if removed > 0 {
            tracing::warn!(removed, "已清理上次中断时留下的临时文件");
        }
        let audit = audit(&conn, root)?;
        if !audit.missing_files.is_empty() || !audit.orphan_files.is_empty() {
            // 只报告、不自动修复：丢文件或多文件都需要人来判断。
            tracing::warn!(
                missing = audit.missing_files.len(),
                orphans = audit.orphan_files.len(),
                first_missing = ?audit.missing_files.iter().take(5).collect::<Vec<_>>(),
                first_orphans = ?audit.orphan_files.iter().take(5).collect::<Vec<_>>(),
                "存储核对：有记录缺文件，或有文件没有记录"
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                root: std::sync::RwLock::new(root.to_path_buf()),
                db: Mutex::new(conn),
                audit,
            }),
        })
    }

    /// 启动时的核对结果。
    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    /// 新文件当前写到的根目录。
    pub fn root(&self) -> PathBuf {
        self.inner.root.read().expect("锁未被毒化").clone()
    }

    /// 改变新文件写到的根目录（已有的文件不移动，照常可取）。
    pub fn set_root(&self, root: PathBuf) {
        *self.inner.root.write().expect("锁未被毒化") = root;
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.inner.db.lock().expect("数据库锁未被毒化")
    }

    /// 在阻塞线程池里用数据库连接做一件事（任务表等其他模块也经由它读写同一个库）。
    pub async fn with_db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&mut this.db()))
            .await
            .map_err(|e| StorageError::Join(e.to_string()))?
    }

    /// 原子地保存一张图像并写入记录；缩略图随后在后台生成。
    pub async fn save_image(&self, image: NewImage) -> Result<ImageRecord, StorageError> {
        let data = image.data.clone();
        let this = self.clone();
        let record = tokio::task::spawn_blocking(move || this.save_image_blocking(image))
            .await
            .map_err(|e| StorageError::Join(e.to_string()))??;
        let (this, background) = (self.clone(), record.clone());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = this.write_thumbnail_blocking(&background, &data) {
                tracing::warn!(id = %background.id, "生成缩略图失败：{e}");
            }
        });
        Ok(record)
    }

    /// 返回缩略图的路径；还没有就现在生成。
    pub async fn ensure_thumbnail(&self, record: ImageRecord) -> Result<PathBuf, StorageError> {
        if let Some(rel) = &record.thumb_rel_path {
            let path = Path::new(&record.root).join(rel);
            if path.is_file() {
                return Ok(path);
            }
        }
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let data = std::fs::read(record.path()).map_err(io_err("读取原图失败"))?;
            this.write_thumbnail_blocking(&record, &data)
        })
        .await
        .map_err(|e| StorageError::Join(e.to_string()))?
    }

    fn write_thumbnail_blocking(
        &self,
        record: &ImageRecord,
        data: &[u8],
    ) -> Result<PathBuf, StorageError> {
        let rel = record.thumb_rel_path_for();
        let path = Path::new(&record.root).join(&rel);
        write_atomically(&path, &thumbs::make_thumbnail(data)?)?;
        db::set_thumbnail(&self.db(), &record.id, &rel)?;
        Ok(path)
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
        let path = root.join(&rel_path);
        write_atomically(&path, &image.data)?;

        let record = ImageRecord {
            id,
            root: root.to_string_lossy().into_owned(),
            rel_path,
            mime: format.to_mime_type().to_string(),
            width,
            height,
            bytes: image.data.len() as i64,
            prompt: image.prompt,
            mode: image.mode.to_string(),
            model: image.model,
            aspect_ratio: image.aspect_ratio,
            image_size: image.image_size,
            upstream: image.upstream,
            created_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            thumb_rel_path: None,
            duration_ms: image.duration_ms as i64,
            attempts: serde_json::to_string(&image.attempts).unwrap_or_else(|_| "[]".into()),
            reference_ids: serde_json::to_string(&image.reference_ids)
                .unwrap_or_else(|_| "[]".into()),
            deleted_at: None,
        };
        if let Err(e) = db::insert(&self.db(), &record) {
            // 没有记录的文件是孤儿：删掉，保持“文件与记录一一对应”。
            let _ = std::fs::remove_file(&path);
            return Err(e.into());
        }
        Ok(record)
    }

    /// 按 id 查记录（回收站里的也返回，见 `ImageRecord::deleted_at`）。
    pub async fn get(&self, id: String) -> Result<Option<ImageRecord>, StorageError> {
        self.with_db(move |c| Ok(db::get(c, &id)?)).await
    }

    /// 各存储根下（未删除的）图片数。
    pub async fn image_counts_by_root(&self) -> Result<Vec<(String, u64)>, StorageError> {
        self.with_db(|c| {
            let mut stmt = c.prepare(
                "SELECT root, COUNT(*) FROM images WHERE deleted_at IS NULL GROUP BY root ORDER BY root",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// 图库查询。
    pub async fn list(&self, filter: ListFilter) -> Result<Vec<ImageRecord>, StorageError> {
        self.with_db(move |c| Ok(db::list(c, &filter)?)).await
    }

    /// 移入回收站，返回实际移入的条数。文件不动，可以恢复。
    pub async fn trash(&self, ids: Vec<String>) -> Result<usize, StorageError> {
        let now = now_string();
        self.with_db(move |c| Ok(db::trash(c, &ids, &now)?)).await
    }

    /// 从回收站恢复，返回实际恢复的条数。
    pub async fn restore(&self, ids: Vec<String>) -> Result<usize, StorageError> {
        self.with_db(move |c| Ok(db::restore(c, &ids)?)).await
    }

    /// 清空回收站：先删记录（一个事务），再删文件。删文件前崩溃最多留下孤儿文件（启动核对会报告），
    /// 不会留下指向缺失文件的记录。返回删除的张数。
    pub async fn empty_trash(&self) -> Result<usize, StorageError> {
        self.with_db(|c| {
            let removed = db::purge_trash(c)?;
            for r in &removed {
                for path in [r.path(), Path::new(&r.root).join(r.thumb_rel_path_for())] {
                    if let Err(e) = std::fs::remove_file(&path) {
                        if e.kind() != std::io::ErrorKind::NotFound {
                            tracing::warn!(path = %path.display(), "删除文件失败：{e}");
                        }
                    }
                }
            }
            Ok(removed.len())
        })
        .await
    }

    /// 保存一张上传的参考图：按内容的 SHA-256 去重，同样的图只存一份。返回它的记录。
    pub async fn save_upload(
        &self,
        data: bytes::Bytes,
        mime: String,
    ) -> Result<UploadRecord, StorageError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.save_upload_blocking(&data, &mime))
            .await
            .map_err(|e| StorageError::Join(e.to_string()))?
    }

    fn save_upload_blocking(&self, data: &[u8], mime: &str) -> Result<UploadRecord, StorageError> {
        use sha2::Digest;
        let id = format!("{:x}", sha2::Sha256::digest(data));
        if let Some(existing) = db::get_upload(&self.db(), &id)? {
            if existing.path().is_file() {
                return Ok(existing);
            }
        }
        let ext = match mime {
            "image/png" => "png",
            "image/jpeg" => "jpg",
            "image/webp" => "webp",
            _ => "bin",
        };
        let root = self.root();
        let rel_path = format!("uploads/{}/{id}.{ext}", &id[..2]);
        write_atomically(&root.join(&rel_path), data)?;
        let record = UploadRecord {
            id,
            root: root.to_string_lossy().into_owned(),
            rel_path,
            mime: mime.to_string(),
            bytes: data.len() as i64,
            created_at: now_string(),
        };
        db::put_upload(&self.db(), &record)?;
        Ok(record)
    }

    /// 按 id 取一份上传。
    pub async fn get_upload(&self, id: String) -> Result<Option<UploadRecord>, StorageError> {
        self.with_db(move |c| Ok(db::get_upload(c, &id)?)).await
    }
}

fn now_string() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// 同目录临时文件 → 写入 → fsync → 改名 → fsync 目录。
fn write_atomically(path: &Path, data: &[u8]) -> Result<(), StorageError> {
    let dir = path.parent().expect("图像路径总有上级目录");
    std::fs::create_dir_all(dir).map_err(io_err(format!("无法创建目录 {}", dir.display())))?;
    // tempfile 默认建 0600 的文件；图片是给人用的普通文件，改名后应当和普通文件一样可读（0644）。
    use std::os::unix::fs::PermissionsExt;
    let mut tmp = tempfile::Builder::new()
        .prefix(PARTIAL_PREFIX)
        .permissions(std::fs::Permissions::from_mode(0o644))
        .tempfile_in(dir)
        .map_err(io_err(format!("无法在 {} 创建临时文件", dir.display())))?;
    tmp.write_all(data).map_err(io_err("写入图像失败"))?;
    tmp.as_file()
        .sync_all()
        .map_err(io_err("同步图像到磁盘失败"))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .map_err(io_err(format!("无法保存图像到 {}", path.display())))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("同步目录失败"))?;
    Ok(())
}

/// 删除 `root/images` 与 `root/uploads` 下所有 `.partial-` 临时文件，返回删除的个数。
fn remove_partials(root: &Path) -> usize {
    fn walk(dir: &Path, removed: &mut usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                walk(&path, removed);
            } else if entry
                .file_name()
                .to_string_lossy()
                .starts_with(PARTIAL_PREFIX)
                && std::fs::remove_file(&path).is_ok()
            {
                *removed += 1;
            }
        }
    }
    let mut removed = 0;
    walk(&root.join("images"), &mut removed);
    walk(&root.join("uploads"), &mut removed);
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> bytes::Bytes {
        let img = image::RgbImage::new(w, h);
        crate::demo::encode_png(&img).into()
    }

    fn new_image(data: bytes::Bytes) -> NewImage {
        NewImage {
            data,
            prompt: "测试".into(),
            mode: "text2img",
            model: "m".into(),
            aspect_ratio: "1:1".into(),
            image_size: "1K".into(),
            upstream: "u".into(),
            duration_ms: 5,
            attempts: Vec::new(),
            reference_ids: Vec::new(),
        }
    }

    #[tokio::test]
    async fn saves_file_and_row_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &dir.path().join(DB_FILE)).unwrap();
        let rec = storage.save_image(new_image(png(7, 5))).await.unwrap();
        assert_eq!(
            (rec.width, rec.height, rec.mime.as_str()),
            (7, 5, "image/png")
        );
        assert!(rec.path().is_file());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(rec.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "图片文件应为普通的 0644");
        assert_eq!(
            storage.get(rec.id.clone()).await.unwrap(),
            Some(rec.clone())
        );
        assert_eq!(remove_partials(dir.path()), 0);
    }

    #[tokio::test]
    async fn non_image_is_refused_and_nothing_written() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &dir.path().join(DB_FILE)).unwrap();
        let err = storage
            .save_image(new_image(bytes::Bytes::from_static(b"not an image")))
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::NotAnImage(_)), "{err}");
        assert!(!dir.path().join("images").exists());
    }

    #[tokio::test]
    async fn uploads_are_stored_once_per_content() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path(), &dir.path().join(DB_FILE)).unwrap();
        let data = png(3, 3);
        let a = storage
            .save_upload(data.clone(), "image/png".into())
            .await
            .unwrap();
        let b = storage
            .save_upload(data.clone(), "image/png".into())
            .await
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(std::fs::read(a.path()).unwrap(), data);
        let other = storage
            .save_upload(png(4, 4), "image/png".into())
            .await
            .unwrap();
        assert_ne!(other.id, a.id);
        let files = std::fs::read_dir(dir.path().join("uploads"))
            .unwrap()
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .count();
        assert_eq!(files, 2, "两种内容，两份文件");
        // 文件丢了之后再上传同样的内容：重新写回。
        std::fs::remove_file(a.path()).unwrap();
        let again = storage
            .save_upload(data.clone(), "image/png".into())
            .await
            .unwrap();
        assert_eq!(std::fs::read(again.path()).unwrap(), data);
    }

    #[tokio::test]
    async fn root_change_keeps_old_images_reachable() {
        let old_root = tempfile::tempdir().unwrap();
        let new_root = tempfile::tempdir().unwrap();
        let database = old_root.path().join(DB_FILE);
        let storage = Storage::open(old_root.path(), &database).unwrap();
        let before = storage.save_image(new_image(png(2, 2))).await.unwrap();
        storage.set_root(new_root.path().to_path_buf());
        let after = storage.save_image(new_image(png(3, 3))).await.unwrap();
        assert!(after.path().starts_with(new_root.path()));
        assert!(before.path().starts_with(old_root.path()));
        let listed = storage
            .list(ListFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(listed.len(), 2);
        // 重新打开（像重启一样）：两个根下的文件都被核对，没有“缺文件”。
        drop(storage);
        let reopened = Storage::open(new_root.path(), &database).unwrap();
        assert!(reopened.audit().missing_files.is_empty());
        assert!(reopened.get(before.id).await.unwrap().is_some());
    }

    #[test]
    fn leftover_partials_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let day = dir.path().join("images/2026-01-01");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::write(day.join(".partial-abc"), b"half").unwrap();
        std::fs::write(day.join("keep.png"), b"x").unwrap();
        Storage::open(dir.path(), &dir.path().join(DB_FILE)).unwrap();
        assert!(!day.join(".partial-abc").exists());
        assert!(day.join("keep.png").exists());
    }
}
