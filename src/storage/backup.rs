//! `drafting-factory backup` 与 `restore`：一份一致的快照（元数据库 + 全部图、缩略图、参考图 + 签名链接的密钥），
//! 在一台新机器上原样恢复。
//!
//! 备份目录的样子（`backup.json` 是清单，恢复前逐个核对）：
//! ```text
//! 备份目录/
//!   backup.json        清单：格式版本、时刻、数据库与每个文件的 SHA-256 和大小、备份时就缺文件的记录
//!   factory.db         元数据库的快照（`VACUUM INTO`：一个读事务里的一致副本，服务运行时也能备份）
//!   url-signing.key    签名链接的密钥（有的话；恢复后旧的签名链接照常可用）
//!   files/images/…     图与缩略图、files/uploads/… 参考图（相对存储根的路径）
//! ```
//! - 备份：先写进同一父目录下的临时目录，全部写完、落盘后才改名成目标目录，中断不会留下“看起来完整”的备份；
//!   目标已存在且不是空目录时拒绝（不覆盖任何东西）。文件按快照里的记录取（本地目录或对象存储都行），
//!   快照之后才加的图不在这份里，快照之后被永久删除的图记在清单的 `missing` 里。
//! - 恢复：先核对清单里的每个文件（大小与 SHA-256），一个不符就什么都不写；目标数据库已存在、
//!   或存储根里已有图时拒绝（恢复是给新机器用的，不与已有的数据混在一起）。文件写进配置的存储根
//!   （本地目录或对象存储），记录改指向它，最后才把数据库改名到位。
//!
//! 元数据在 PostgreSQL 时：备份请用 `pg_dump`（这里拒绝并说明）；恢复到 PostgreSQL 先恢复成 SQLite，
//! 再用 `migrate --to-postgres` 搬过去。

use super::blobs::{self, Blobs};
use super::sql::Db;
use super::{db, StorageError, URL_KEY_FILE};
use crate::atomic_file::{self, Durability};
use rusqlite::{Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// 清单的文件名。
pub const MANIFEST: &str = "backup.json";
const DATABASE: &str = "factory.db";
const FILES: &str = "files";
/// 清单格式的版本（恢复只认得这一版）。
const FORMAT: u32 = 1;

/// 备份的清单。
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub created_at: String,
    pub database_sha256: String,
    /// 带了签名链接的密钥。
    pub url_signing_key: bool,
    pub images: usize,
    pub uploads: usize,
    pub files: Vec<Entry>,
    /// 备份时记录在、文件不在的图片或参考图（id）。
    pub missing: Vec<String>,
}

/// 备份里的一个文件（路径相对存储根，也相对备份的 `files/`）。
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub rel: String,
    pub bytes: u64,
    pub sha256: String,
}

impl Manifest {
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StorageError {
    let context = context.into();
    move |source| StorageError::Io { context, source }
}

fn refuse(message: String) -> StorageError {
    StorageError::Io {
        context: message,
        source: std::io::Error::other("已拒绝，什么都没改"),
    }
}

fn sqlite(e: rusqlite::Error) -> StorageError {
    StorageError::Db(e.into())
}

/// 快照里要备份的一个文件。
struct Wanted {
    /// 记录的 id。
    id: String,
    root: String,
    rel: String,
    /// 是缩略图（随时可以再生成，不在不算缺）。
    thumb: bool,
}

/// 快照里要备份的文件，与图片、参考图的条数。
fn files_of(snapshot: &Connection) -> Result<(Vec<Wanted>, usize, usize), StorageError> {
    let mut out = Vec::new();
    let images = db::all_paths(&mut Db::Sqlite(snapshot))?;
    let image_count = images.len();
    for (id, root, rel) in images {
        let thumb = db::thumb_rel_path(&rel);
        out.push(Wanted {
            id: id.clone(),
            root: root.clone(),
            rel,
            thumb: false,
        });
        out.push(Wanted {
            id,
            root,
            rel: thumb,
            thumb: true,
        });
    }
    let mut stmt = snapshot
        .prepare("SELECT id, root, rel_path FROM uploads")
        .map_err(sqlite)?;
    let uploads = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(sqlite)?
        .collect::<rusqlite::Result<Vec<(String, String, String)>>>()
        .map_err(sqlite)?;
    let upload_count = uploads.len();
    out.extend(uploads.into_iter().map(|(id, root, rel)| Wanted {
        id,
        root,
        rel,
        thumb: false,
    }));
    Ok((out, image_count, upload_count))
}

/// 备份到 `to`（不存在或空目录）。`source_db` 是 SQLite 文件。阻塞调用。
pub fn backup(source_db: &Path, blobs: &Blobs, to: &Path) -> Result<Manifest, StorageError> {
    if to.exists()
        && std::fs::read_dir(to)
            .map_err(io(format!("无法读取 {}", to.display())))?
            .next()
            .is_some()
    {
        return Err(refuse(format!(
            "{} 已存在且不是空目录：备份不覆盖已有的文件",
            to.display()
        )));
    }
    if !source_db.is_file() {
        return Err(refuse(format!("找不到数据库 {}", source_db.display())));
    }
    let parent = to
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(format!("无法创建 {}", parent.display())))?;
    let name = to
        .file_name()
        .map_or("backup".into(), |n| n.to_string_lossy().into_owned());
    let temp = parent.join(format!(
        "{}{name}-{}",
        atomic_file::PARTIAL_PREFIX,
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&temp);
    std::fs::create_dir_all(&temp).map_err(io(format!("无法创建 {}", temp.display())))?;
    let result = write_backup(source_db, blobs, &temp);
    let manifest = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&temp);
            return Err(e);
        }
    };
    if to.exists() {
        std::fs::remove_dir(to).map_err(io(format!("无法替换空目录 {}", to.display())))?;
    }
    std::fs::rename(&temp, to).map_err(io(format!("无法写到 {}", to.display())))?;
    atomic_file::sync_dir(parent).map_err(io("备份落盘失败"))?;
    Ok(manifest)
}

fn write_backup(source_db: &Path, blobs: &Blobs, temp: &Path) -> Result<Manifest, StorageError> {
    // 一致的快照：`VACUUM INTO` 在一个读事务里复制整个库，服务照常写它的库。
    let source =
        Connection::open_with_flags(source_db, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sqlite)?;
    source
        .busy_timeout(std::time::Duration::from_secs(10))
        .map_err(sqlite)?;
    let snapshot_path = temp.join(DATABASE);
    source
        .execute("VACUUM INTO ?1", [snapshot_path.to_string_lossy()])
        .map_err(sqlite)?;
    drop(source);
    let snapshot = Connection::open_with_flags(&snapshot_path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(sqlite)?;
    let (wanted, images, uploads) = files_of(&snapshot)?;
    drop(snapshot);
    let mut files = Vec::new();
    let mut missing = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for Wanted {
        id,
        root,
        rel,
        thumb,
    } in wanted
    {
        if !seen.insert(rel.clone()) {
            continue;
        }
        if !blobs.exists(&root, &rel) {
            // 缩略图随时可以再生成，不算缺。
            if !thumb {
                missing.push(id);
            }
            continue;
        }
        let data = blobs.read(&root, &rel)?;
        let path = temp.join(FILES).join(&rel);
        atomic_file::write(&path, &data, Durability::Durable, 0o644)
            .map_err(io(format!("无法写入 {}", path.display())))?;
        files.push(Entry {
            rel,
            bytes: data.len() as u64,
            sha256: crate::hash::sha256_hex(&data),
        });
    }
    let key = source_db
        .parent()
        .unwrap_or(Path::new("."))
        .join(URL_KEY_FILE);
    let url_signing_key = key.is_file();
    if url_signing_key {
        let data = std::fs::read(&key).map_err(io(format!("无法读取 {}", key.display())))?;
        atomic_file::write(&temp.join(URL_KEY_FILE), &data, Durability::Durable, 0o600)
            .map_err(io("无法写入签名密钥"))?;
    }
    let database = std::fs::read(&snapshot_path).map_err(io("无法读取数据库快照"))?;
    std::fs::File::open(&snapshot_path)
        .and_then(|f| f.sync_all())
        .map_err(io("数据库快照落盘失败"))?;
    let manifest = Manifest {
        format: FORMAT,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        database_sha256: crate::hash::sha256_hex(&database),
        url_signing_key,
        images,
        uploads,
        files,
        missing,
    };
    let text = serde_json::to_vec_pretty(&manifest).expect("清单可以序列化");
    atomic_file::write(&temp.join(MANIFEST), &text, Durability::Durable, 0o644)
        .map_err(io("无法写入清单"))?;
    for dir in [
        temp.join(FILES).join("images"),
        temp.join(FILES).join("uploads"),
    ] {
        sync_tree(&dir);
    }
    Ok(manifest)
}

/// 把目录树里的每个目录落盘（文件各自已落盘；改名之后它们的目录项也要在）。
fn sync_tree(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            sync_tree(&entry.path());
        }
    }
    let _ = atomic_file::sync_dir(dir);
}

/// 读并核对备份：清单、数据库与每个文件的大小和 SHA-256。有一个不符就报错。
pub fn verify(from: &Path) -> Result<Manifest, StorageError> {
    let text = std::fs::read(from.join(MANIFEST)).map_err(io(format!(
        "{} 里没有清单 {MANIFEST}：不是绘图工厂的备份",
        from.display()
    )))?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| refuse(format!("清单 {MANIFEST} 读不懂：{e}")))?;
    if manifest.format != FORMAT {
        return Err(refuse(format!(
            "备份的格式是第 {} 版，这个程序只认得第 {FORMAT} 版",
            manifest.format
        )));
    }
    let database = std::fs::read(from.join(DATABASE)).map_err(io("备份里没有数据库 factory.db"))?;
    if crate::hash::sha256_hex(&database) != manifest.database_sha256 {
        return Err(refuse("备份里的数据库与清单不符（被改过或没写完）".into()));
    }
    for f in &manifest.files {
        if f.rel.split('/').any(|part| part == ".." || part.is_empty()) {
            return Err(refuse(format!("清单里的路径 {} 不合法", f.rel)));
        }
        let path = from.join(FILES).join(&f.rel);
        let data = std::fs::read(&path).map_err(io(format!("备份里缺文件 {}", f.rel)))?;
        if data.len() as u64 != f.bytes || crate::hash::sha256_hex(&data) != f.sha256 {
            return Err(refuse(format!(
                "备份里的文件 {} 与清单不符（被改过或没写完）",
                f.rel
            )));
        }
    }
    if manifest.url_signing_key && !from.join(URL_KEY_FILE).is_file() {
        return Err(refuse("清单说有签名密钥，备份里却没有".into()));
    }
    Ok(manifest)
}

/// 从 `from` 恢复：文件写进 `root`（本地目录或 `s3://…`），数据库写到 `target_db`（SQLite 文件）。阻塞调用。
pub fn restore(
    from: &Path,
    blobs: &Blobs,
    root: &str,
    target_db: &Path,
) -> Result<Manifest, StorageError> {
    let manifest = verify(from)?;
    for suffix in ["", "-wal"] {
        let path = PathBuf::from(format!("{}{suffix}", target_db.display()));
        if path.exists() {
            return Err(refuse(format!(
                "数据库 {} 已存在：恢复只用于新机器，不覆盖已有的库（要恢复就先把它移到别处）",
                path.display()
            )));
        }
    }
    for dir in ["images", "uploads"] {
        if !blobs.list(root, dir)?.is_empty() {
            return Err(refuse(format!(
                "存储根 {root} 的 {dir}/ 里已经有文件：恢复只用于新机器，不与已有的图混在一起"
            )));
        }
    }
    let dir = target_db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    std::fs::create_dir_all(&dir).map_err(io(format!("无法创建 {}", dir.display())))?;
    if !blobs::is_object_store(root) {
        std::fs::create_dir_all(root).map_err(io(format!("无法创建存储目录 {root}")))?;
    }
    // 先放文件，最后才放数据库：中途失败时没有指向不存在文件的记录（多出的文件可以再恢复一次覆盖掉）。
    for f in &manifest.files {
        let data = std::fs::read(from.join(FILES).join(&f.rel))
            .map_err(io(format!("无法读取 {}", f.rel)))?;
        blobs.write(root, &f.rel, data.into(), Durability::Durable)?;
    }
    if manifest.url_signing_key {
        let data = std::fs::read(from.join(URL_KEY_FILE)).map_err(io("无法读取签名密钥"))?;
        atomic_file::write(&dir.join(URL_KEY_FILE), &data, Durability::Durable, 0o600)
            .map_err(io("无法写入签名密钥"))?;
    }
    let temp = dir.join(format!(
        "{}restoring-{DATABASE}",
        atomic_file::PARTIAL_PREFIX
    ));
    let _ = std::fs::remove_file(&temp);
    std::fs::copy(from.join(DATABASE), &temp).map_err(io("无法复制数据库"))?;
    let repointed = (|| {
        let conn = Connection::open(&temp).map_err(sqlite)?;
        conn.execute("UPDATE images SET root = ?1", [root])
            .map_err(sqlite)?;
        conn.execute("UPDATE uploads SET root = ?1", [root])
            .map_err(sqlite)?;
        drop(conn);
        std::fs::File::open(&temp)
            .and_then(|f| f.sync_all())
            .map_err(io("数据库落盘失败"))
    })();
    if let Err(e) = repointed {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    std::fs::rename(&temp, target_db).map_err(io(format!("无法写到 {}", target_db.display())))?;
    atomic_file::sync_dir(&dir).map_err(io("数据库落盘失败"))?;
    Ok(manifest)
}
