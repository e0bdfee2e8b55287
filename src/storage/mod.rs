//! 图像存储：图像文件（本地目录或 S3 兼容的对象存储，见 `blobs`）+ SQLite 元数据。
//!
//! 写入顺序保证崩溃安全：同目录临时文件 → 写入 → fsync → 改名 → fsync 目录 → 最后写数据库行
//! （对象存储：PUT 完成 → 写数据库行）。
//! 原图的“fsync 目录 + 写数据库行”按组提交：并发保存的多张图共用一次目录 fsync 与一次事务。
//! 任何时刻崩溃，都不会留下半个文件，也不会有指向不存在文件的记录；
//! 最多留下一个 `.partial-` 开头的临时文件，下次启动时清掉。
//!
//! 各个房间：
//! - 本文件：`Storage` 本身——打开（建库、迁移、清临时文件、核对记录与文件）、存储根、暂存区、共用密钥；
//! - `images`：保存生成的图（写文件、组提交记录）与缩略图；
//! - `library`：图库的查询、收藏与回收站；
//! - `uploads`：参考图的保存（按内容去重）与读取；
//! - `db`：元数据库的连接与各表的读写；`schema`：两种数据库的迁移脚本；`sql`：SQLite 与 PostgreSQL 共用的那层；
//! - `blobs`：按根读写文件（本地目录或对象存储）；`thumbs`：缩略图；`spill`：暂存区；
//!   `archive`：打包下载；`shared_config`：集群共用的配置；`migrate`：把图与元数据搬到别处；
//!   `backup`：备份与恢复；`repair`：`check --repair` 的核对与修复（挪开多余与不完整的文件、标记缺文件的记录）。

pub mod accounts;
pub mod archive;
pub mod backup;
pub mod blobs;
pub(crate) mod db;
mod images;
mod library;
pub mod migrate;
pub mod repair;
mod schema;
mod shared_config;
mod spill;
pub mod sql;
mod thumbs;
mod uploads;

pub use blobs::Blobs;
/// 打开 `storage.database` 指的元数据库（并迁移到最新）；测试与 `migrate` 直接查看库时用。
pub use db::connect as open_database;
pub use db::{ImageRecord, ListFilter, UploadRecord};

use crate::atomic_file::{Durability, PARTIAL_PREFIX};
use crate::config::S3Config;
use images::PendingInsert;
use sql::{Database, Db, DbError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use crate::config::DB_FILE;

/// 签名图片链接的密钥文件名（单机时在数据库文件所在的目录；见 `crate::access::signed`）。
pub const URL_KEY_FILE: &str = "url-signing.key";

/// 一把新的随机密钥（32 字节，64 位十六进制）：签名链接的密钥等。
pub fn new_secret_hex() -> String {
    let key: [u8; 32] = rand::random();
    key.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{context}：{source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("数据库错误：{0}")]
    Db(#[from] DbError),
    #[error("数据库迁移失败：{0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("上游返回的数据不是可识别的图像：{0}")]
    NotAnImage(String),
    #[error("后台任务异常退出：{0}")]
    Join(String),
    #[error("数据库不可用：{0}")]
    Unavailable(String),
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StorageError {
    let context = context.into();
    move |source| StorageError::Io { context, source }
}

/// 要保存的一张图像及其来历。
#[derive(Clone)]
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
    pub attempts: Vec<crate::types::AttemptInfo>,
    /// 参考图（已由 `save_upload` 保存）的 id。
    pub reference_ids: Vec<String>,
    /// 模型随图说的话。
    pub model_text: Option<String>,
    /// 联网搜索时引用的来源（标题, 网址）。
    pub sources: Vec<(String, String)>,
    /// 实际尺寸与请求的不符时的说明。
    pub size_note: Option<String>,
    /// 所属的账号（没有账号时为空）。
    pub account: String,
}

#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    /// 新文件写到这里（本地目录的绝对路径，或 `s3://桶/前缀`）。改存储根只影响之后写的文件；
    /// 旧文件的记录里有它自己的根，照常可取。
    root: std::sync::RwLock<String>,
    /// 按根读写文件。
    blobs: Blobs,
    /// 数据库所在的本地目录：存储根是对象存储时，暂存区放在这里。
    local_dir: PathBuf,
    db: Database,
    audit: Audit,
    /// 等待组提交的图片记录（见 `Storage::commit_grouped`）。
    pending: Mutex<Vec<PendingInsert>>,
    /// 待生成缩略图的图片，由一个后台线程逐个处理（见 `thumbs::worker`）。
    thumbs: std::sync::mpsc::SyncSender<ImageRecord>,
    /// 打包下载的名额（见 `archive::ZipSlots`）。
    zips: archive::ZipSlots,
}

/// 启动时文件与记录的核对结果。
#[derive(Debug, Clone, Default)]
pub struct Audit {
    /// 有记录、但文件不存在的图片 id。
    pub missing_files: Vec<String>,
    /// 各存储根的 images/ 下没有任何记录指向的文件（根, 相对路径）。
    pub orphan_files: Vec<(String, String)>,
}

/// 比对数据库记录与文件（只读，不修改任何东西）。当前根和记录里出现过的每个根都会检查：
/// 每个根列一次 images/ 下的文件（对象存储是一次 LIST，不必每张图一次 HEAD）。
pub(crate) fn audit(conn: &mut Db<'_>, blobs: &Blobs, root: &str) -> Result<Audit, StorageError> {
    let mut roots = db::roots(conn)?;
    roots.push(root.to_string());
    roots.sort();
    roots.dedup();
    let mut listed = std::collections::HashMap::new();
    for r in &roots {
        match blobs.list(r, "images") {
            Ok(files) => {
                listed.insert(
                    r.clone(),
                    files.into_iter().collect::<std::collections::HashSet<_>>(),
                );
            }
            // 旧的根（例如停用了的对象存储）查不了：照常启动，它的图暂时取不到。当前的根查不了才不启动。
            Err(e) if *r != root => tracing::warn!("启动核对跳过了旧的存储根 {r}：{e}"),
            Err(e) => return Err(e),
        }
    }
    let mut missing_files = Vec::new();
    for (id, r, rel) in db::all_paths(conn)? {
        let Some(files) = listed.get_mut(&r) else {
            continue;
        };
        if !files.remove(&rel) {
            missing_files.push(id);
        }
        // 缩略图由原图派生：即使崩溃发生在它写完之后、记录之前，它也不算孤儿文件。
        files.remove(&db::thumb_rel_path(&rel));
    }
    let mut orphan_files: Vec<(String, String)> = listed
        .into_iter()
        .flat_map(|(r, files)| files.into_iter().map(move |rel| (r.clone(), rel)))
        .collect();
    orphan_files.sort();
    Ok(Audit {
        missing_files,
        orphan_files,
    })
}

impl Storage {
    /// 打开存储：新文件写到 `root`（本地目录，或 `s3://桶/前缀`），元数据在 `database`
    /// （SQLite 文件的路径，或 `postgres://…` 连接串）。
    /// 建库、迁移、清理上次崩溃留下的临时文件，并核对记录与文件。
    /// `home` 是元数据在 PostgreSQL、图在对象存储时暂存区所在的本机目录（服务传配置文件所在的目录：
    /// 容器里是 `/data` 卷，systemd 下是 StateDirectory，重启、重建都还在）；`None` 时用系统的临时目录。
    pub async fn open(
        root: &Path,
        database: &Path,
        s3: S3Config,
        home: Option<PathBuf>,
    ) -> Result<Self, StorageError> {
        let (root, database) = (root.to_path_buf(), database.to_path_buf());
        tokio::task::spawn_blocking(move || Self::open_blocking(&root, &database, s3, home))
            .await
            .map_err(|e| StorageError::Join(e.to_string()))?
    }

    fn open_blocking(
        root: &Path,
        database: &Path,
        s3: S3Config,
        home: Option<PathBuf>,
    ) -> Result<Self, StorageError> {
        let root = root.to_string_lossy().into_owned();
        if !blobs::is_object_store(&root) {
            std::fs::create_dir_all(&root).map_err(io_err(format!("无法创建存储目录 {root}")))?;
        }
        let database = database.to_string_lossy().into_owned();
        // 暂存区所在的本机目录（图在对象存储时用）：SQLite 文件旁边；元数据在 PostgreSQL 时是 `home`。
        let local_dir = if db::is_postgres(&database) {
            home.unwrap_or_else(|| std::env::temp_dir().join("drafting-factory"))
        } else {
            Path::new(&database)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf()
        };
        std::fs::create_dir_all(&local_dir).map_err(io_err(format!(
            "无法创建数据库目录 {}",
            local_dir.display()
        )))?;
        let database = db::connect(&database)?;
        let roots = database.run(db::roots)?;
        let mut removed = 0;
        for r in roots.iter().chain([&root]) {
            if !blobs::is_object_store(r) {
                removed += remove_partials(Path::new(r));
            }
        }
        if removed > 0 {
            tracing::warn!(removed, "已清理上次中断时留下的临时文件");
        }
        let blobs = Blobs::new(s3);
        let audit = database.run(|c| audit(c, &blobs, &root))?;
        if !audit.missing_files.is_empty() || !audit.orphan_files.is_empty() {
            // 只报告、不自动修复：丢文件或多文件都需要人来判断。
            tracing::warn!(
                missing = audit.missing_files.len(),
                orphans = audit.orphan_files.len(),
                first_missing = ?audit.missing_files.iter().take(5).collect::<Vec<_>>(),
                first_orphans = ?audit.orphan_files.iter().take(5).map(|(r, rel)| format!("{r}/{rel}")).collect::<Vec<_>>(),
                "存储核对：有记录缺文件，或有文件没有记录"
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                root: std::sync::RwLock::new(root),
                thumbs: thumbs::worker(blobs.clone()),
                blobs,
                local_dir,
                db: database,
                audit,
                pending: Mutex::new(Vec::new()),
                zips: archive::ZipSlots::default(),
            }),
        })
    }

    /// 启动时的核对结果。
    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    /// 新文件当前写到的根（本地目录的绝对路径，或 `s3://桶/前缀`）。
    pub fn root(&self) -> String {
        self.inner.root.read().expect("锁未被毒化").clone()
    }

    /// 改变新文件写到的根与对象存储的连接（已有的文件不移动，照常可取）。
    pub fn set_root(&self, root: &Path, s3: S3Config) {
        self.inner.blobs.set_s3(s3);
        *self.inner.root.write().expect("锁未被毒化") = root.to_string_lossy().into_owned();
    }

    /// 按根读写文件的那一层。
    pub fn blobs(&self) -> &Blobs {
        &self.inner.blobs
    }

    /// 暂存区所在的本地目录：存储根是本地目录时就是它，是对象存储时是数据库所在的目录。
    fn spill_root(&self) -> PathBuf {
        let root = self.root();
        if blobs::is_object_store(&root) {
            self.inner.local_dir.clone()
        } else {
            PathBuf::from(root)
        }
    }

    /// 在阻塞线程池里用数据库连接做一件事（任务表等其他模块也经由它读写同一个库）。
    pub async fn with_db<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Db<'_>) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.inner.db.run(f))
            .await
            .map_err(|e| StorageError::Join(e.to_string()))?
    }

    /// 把没能存进图库的图（已经付过钱）放进暂存区，返回暂存 id。见 `spill.rs`。
    pub async fn spill(&self, data: bytes::Bytes) -> Result<String, StorageError> {
        let root = self.spill_root();
        tokio::task::spawn_blocking(move || spill::put(&root, &data))
            .await
            .map_err(|e| StorageError::Join(e.to_string()))?
    }

    /// 取回暂存的图。
    pub async fn unspill(&self, id: String) -> Result<bytes::Bytes, StorageError> {
        let root = self.spill_root();
        tokio::task::spawn_blocking(move || spill::get(&root, &id).map(bytes::Bytes::from))
            .await
            .map_err(|e| StorageError::Join(e.to_string()))?
    }

    /// 重新保存成功后删掉暂存的图。
    pub fn drop_spill(&self, id: &str) {
        spill::remove(&self.spill_root(), id);
    }

    /// 清理超过 24 小时的暂存图（启动时与每小时一次）。
    pub fn clean_spill(&self) -> usize {
        spill::clean(&self.spill_root())
    }

    /// 给调用方 `client` 占一个打包下载的名额；它自己的或全部的名额都在用时返回 None。
    pub fn zip_slot(&self, client: &str) -> Option<archive::ZipSlot> {
        self.inner.zips.take(client)
    }

    /// 元数据库是哪一种（PostgreSQL 时可能有别的实例共用它）。
    pub fn dialect(&self) -> sql::Dialect {
        self.inner.db.dialect()
    }

    /// 各实例共用的密钥 `name`（没有就生成一把存进库里）。
    pub async fn shared_secret(&self, name: &'static str) -> Result<String, StorageError> {
        let fresh = new_secret_hex();
        self.with_db(move |c| Ok(db::shared_secret(c, name, &fresh)?))
            .await
    }
}

fn now_string() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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
    use super::images::{commit_batch, PendingInsert};
    use super::*;

    fn png(w: u32, h: u32) -> bytes::Bytes {
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(image::RgbImage::new(w, h))
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out.into()
    }

    /// 存储根与 SQLite 文件都在 `dir` 里的存储。
    async fn open_local(dir: &Path) -> Storage {
        Storage::open(dir, &dir.join(DB_FILE), S3Config::default(), None)
            .await
            .unwrap()
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
            model_text: None,
            sources: Vec::new(),
            size_note: None,
            reference_ids: Vec::new(),
            account: String::new(),
        }
    }

    #[tokio::test]
    async fn saves_file_and_row_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let storage = open_local(dir.path()).await;
        let rec = storage.save_image(new_image(png(7, 5))).await.unwrap();
        assert_eq!(
            (rec.width, rec.height, rec.mime.as_str()),
            (7, 5, "image/png")
        );
        assert!(rec.local_path().unwrap().is_file());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(rec.local_path().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o644, "图片文件应为普通的 0644");
        assert_eq!(
            storage.get(rec.id.clone()).await.unwrap(),
            Some(rec.clone())
        );
        assert_eq!(remove_partials(dir.path()), 0);
        // 7×5 的图不比缩略图大：缩略图就是原图本身，类型也照原图。
        let (thumb, mime) = storage.ensure_thumbnail(rec.clone()).await.unwrap();
        assert_eq!((thumb, mime.as_str()), (rec.rel_path.clone(), "image/png"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_saves_are_committed_together_and_each_gets_its_own_row() {
        let dir = tempfile::tempdir().unwrap();
        let storage = open_local(dir.path()).await;
        let saves = (0..40).map(|i| {
            let storage = storage.clone();
            tokio::spawn(async move {
                let mut image = new_image(png(3 + i, 2));
                image.prompt = format!("并发 {i}");
                storage.save_image(image).await.unwrap()
            })
        });
        let records: Vec<ImageRecord> = futures::future::try_join_all(saves).await.unwrap();
        for (i, rec) in records.iter().enumerate() {
            assert_eq!(rec.prompt, format!("并发 {i}"));
            assert_eq!(rec.width, 3 + i as u32);
            assert_eq!(
                storage.get(rec.id.clone()).await.unwrap().as_ref(),
                Some(rec)
            );
            assert!(rec.local_path().unwrap().is_file());
        }
        let rows: i64 = storage
            .with_db(|c| {
                Ok(c.query_one("SELECT COUNT(*) FROM images", sql::params![], |r| r.get(0))?)
            })
            .await
            .unwrap();
        assert_eq!(rows, 40);
    }

    #[tokio::test]
    async fn a_failing_record_does_not_take_its_batch_down() {
        let dir = tempfile::tempdir().unwrap();
        let storage = open_local(dir.path()).await;
        let good = |id: &str| ImageRecord {
            account: String::new(),
            file_problem: None,
            id: id.into(),
            root: dir.path().to_string_lossy().into_owned(),
            rel_path: format!("images/{id}.png"),
            mime: "image/png".into(),
            width: 1,
            height: 1,
            bytes: 1,
            prompt: "p".into(),
            mode: "text2img".into(),
            model: "m".into(),
            aspect_ratio: "1:1".into(),
            image_size: "1K".into(),
            upstream: "u".into(),
            created_at: now_string(),
            duration_ms: 0,
            attempts: "[]".into(),
            reference_ids: "[]".into(),
            model_text: None,
            favourite: false,
            sources: "[]".into(),
            size_note: None,
            deleted_at: None,
        };
        storage
            .inner
            .db
            .run(|c| db::insert(c, &good("dup")))
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let batch = ["a", "dup", "b"]
            .into_iter()
            .map(|id| PendingInsert {
                record: good(id),
                dir: Some(dir.path().to_path_buf()),
                done: tx.clone(),
            })
            .collect();
        storage
            .inner
            .db
            .run(|c| {
                commit_batch(c, batch);
                Ok::<_, DbError>(())
            })
            .unwrap();
        let results: Vec<bool> = rx.try_iter().map(|r| r.is_ok()).collect();
        assert_eq!(
            results,
            vec![true, false, true],
            "主键重复的那条失败，其余照常写入"
        );
    }

    #[tokio::test]
    async fn non_image_is_refused_and_nothing_written() {
        let dir = tempfile::tempdir().unwrap();
        let storage = open_local(dir.path()).await;
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
        let storage = open_local(dir.path()).await;
        let data = png(3, 3);
        let a = storage
            .save_upload(data.clone(), "image/png".into(), None)
            .await
            .unwrap();
        let b = storage
            .save_upload(data.clone(), "image/png".into(), None)
            .await
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(std::fs::read(a.local_path().unwrap()).unwrap(), data);
        // 同样的内容换个文件名再传：记下新名字（而不是卡住——曾经在这里自己锁死了数据库）。
        let renamed = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            storage.save_upload(data.clone(), "image/png".into(), Some("新名字.png".into())),
        )
        .await
        .expect("不会卡住")
        .unwrap();
        assert_eq!(renamed.id, a.id);
        assert_eq!(
            storage
                .get_upload(a.id.clone())
                .await
                .unwrap()
                .unwrap()
                .filename
                .as_deref(),
            Some("新名字.png")
        );
        let other = storage
            .save_upload(png(4, 4), "image/png".into(), None)
            .await
            .unwrap();
        assert_ne!(other.id, a.id);
        let files = std::fs::read_dir(dir.path().join("uploads"))
            .unwrap()
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .count();
        assert_eq!(files, 2, "两种内容，两份文件");
        // 文件丢了之后再上传同样的内容：重新写回。
        std::fs::remove_file(a.local_path().unwrap()).unwrap();
        let again = storage
            .save_upload(data.clone(), "image/png".into(), None)
            .await
            .unwrap();
        assert_eq!(std::fs::read(again.local_path().unwrap()).unwrap(), data);
    }

    #[tokio::test]
    async fn root_change_keeps_old_images_reachable() {
        let old_root = tempfile::tempdir().unwrap();
        let new_root = tempfile::tempdir().unwrap();
        let database = old_root.path().join(DB_FILE);
        let storage = Storage::open(old_root.path(), &database, S3Config::default(), None)
            .await
            .unwrap();
        let before = storage.save_image(new_image(png(2, 2))).await.unwrap();
        storage.set_root(new_root.path(), S3Config::default());
        let after = storage.save_image(new_image(png(3, 3))).await.unwrap();
        assert!(after.local_path().unwrap().starts_with(new_root.path()));
        assert!(before.local_path().unwrap().starts_with(old_root.path()));
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
        let reopened = Storage::open(new_root.path(), &database, S3Config::default(), None)
            .await
            .unwrap();
        assert!(reopened.audit().missing_files.is_empty());
        assert!(reopened.get(before.id).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn leftover_partials_are_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let day = dir.path().join("images/2026-01-01");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::write(day.join(".partial-abc"), b"half").unwrap();
        std::fs::write(day.join("keep.png"), b"x").unwrap();
        open_local(dir.path()).await;
        assert!(!day.join(".partial-abc").exists());
        assert!(day.join("keep.png").exists());
    }
}
