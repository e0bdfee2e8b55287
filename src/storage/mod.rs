//! 图像存储：磁盘上的图像文件 + SQLite 元数据。
//!
//! 写入顺序保证崩溃安全：同目录临时文件 → 写入 → fsync → 改名 → fsync 目录 → 最后写数据库行。
//! 任何时刻崩溃，都不会留下半个文件，也不会有指向不存在文件的记录；
//! 最多留下一个 `.partial-` 开头的临时文件，下次启动时清掉。

mod archive;
mod db;
pub mod routes;
mod thumbs;

pub use db::ImageRecord;

use rusqlite::Connection;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// 临时文件名前缀；启动时清理以它开头的文件。
const PARTIAL_PREFIX: &str = ".partial-";
const DB_FILE: &str = "factory.db";

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
}

#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    /// 新文件写到这里。
    root: PathBuf,
    db: Mutex<Connection>,
    audit: Audit,
}

/// 启动时文件与记录的核对结果。
#[derive(Debug, Clone, Default)]
pub struct Audit {
    /// 有记录、但文件不存在的图片 id。
    pub missing_files: Vec<String>,
    /// 存储根的 images/ 下没有任何记录指向的文件。
    pub orphan_files: Vec<PathBuf>,
}

/// 比对数据库记录与磁盘文件（只读，不修改任何东西）。
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
    let mut stack = vec![root.join("images")];
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
    /// 打开（必要时创建）`root` 下的存储：建库、迁移、清理上次崩溃留下的临时文件。
    pub fn open(root: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(root)
            .map_err(io_err(format!("无法创建存储目录 {}", root.display())))?;
        let removed = remove_partials(root);
        if removed > 0 {
            tracing::warn!(removed, "已清理上次中断时留下的临时文件");
        }
        let conn = db::open(&root.join(DB_FILE))?;
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
                root: root.to_path_buf(),
                db: Mutex::new(conn),
                audit,
            }),
        })
    }

    /// 启动时的核对结果。
    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    pub fn root(&self) -> &Path {
        &self.inner.root
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
        let conn = self.inner.db.lock().expect("数据库锁未被毒化");
        db::set_thumbnail(&conn, &record.id, &rel)?;
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
        let path = self.inner.root.join(&rel_path);
        write_atomically(&path, &image.data)?;

        let record = ImageRecord {
            id,
            root: self.inner.root.to_string_lossy().into_owned(),
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
        };
        let conn = self.inner.db.lock().expect("数据库锁未被毒化");
        if let Err(e) = db::insert(&conn, &record) {
            // 没有记录的文件是孤儿：删掉，保持“文件与记录一一对应”。
            let _ = std::fs::remove_file(&path);
            return Err(e.into());
        }
        Ok(record)
    }

    /// 按 id 查记录（已删除的不返回）。
    pub async fn get(&self, id: String) -> Result<Option<ImageRecord>, StorageError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = this.inner.db.lock().expect("数据库锁未被毒化");
            db::get(&conn, &id).map_err(StorageError::from)
        })
        .await
        .map_err(|e| StorageError::Join(e.to_string()))?
    }
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

/// 删除 `root/images` 下所有 `.partial-` 临时文件，返回删除的个数。
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
        }
    }

    #[tokio::test]
    async fn saves_file_and_row_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
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
        let storage = Storage::open(dir.path()).unwrap();
        let err = storage
            .save_image(new_image(bytes::Bytes::from_static(b"not an image")))
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::NotAnImage(_)), "{err}");
        assert!(!dir.path().join("images").exists());
    }

    #[test]
    fn leftover_partials_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let day = dir.path().join("images/2026-01-01");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::write(day.join(".partial-abc"), b"half").unwrap();
        std::fs::write(day.join("keep.png"), b"x").unwrap();
        Storage::open(dir.path()).unwrap();
        assert!(!day.join(".partial-abc").exists());
        assert!(day.join("keep.png").exists());
    }
}
