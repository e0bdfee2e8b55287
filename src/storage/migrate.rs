//! `drafting-factory migrate --to-s3 s3://桶/前缀 --to-database 新库.db`：把单机的本地目录搬进对象存储。
//!
//! - 源头什么都不改：源数据库只读打开，本地文件只读；
//! - 复制每张图、它的缩略图（有的话）与每份上传的参考图；每个对象写完用 ETag（单次 PUT 时是内容的 MD5）
//!   与本地文件的 MD5 核对，最后再逐个 HEAD 核对一遍大小与 MD5；
//! - 可以中断后再跑：桶里已有、大小与 MD5 都对得上的对象不再复制；
//! - 新数据库是源库的完整副本（`VACUUM INTO`），其中搬好的图与上传改指向对象存储的根；
//!   文件缺失的记录保持原样（照旧指向原来的目录），并在报告里列出。新库先写到临时文件，完成后才改名，
//!   旁边记下它的 SHA-256（`新库.db.migrated`）。新库已存在时，只有它还是上次迁移写出的那一份（摘要相同、没有未合并的 WAL）
//!   才重建，否则拒绝，免得覆盖已经在用的库。所以可以先在服务运行时迁一遍，停服后再迁一遍补上这期间的新图。

use super::blobs::{self, Blobs};
use super::{db, StorageError};
use crate::atomic_file::Durability;
use md5::{Digest, Md5};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};

/// 迁移的结果。
#[derive(Debug, Default, PartialEq)]
pub struct Report {
    /// 搬进对象存储的图片与上传的条数（记录）。
    pub images: usize,
    pub uploads: usize,
    /// 本次复制的对象数（含缩略图）。
    pub copied: usize,
    /// 桶里已有、核对无误而跳过的对象数。
    pub already_there: usize,
    /// 记录在、文件不在的（图片或上传的 id），保持原样。
    pub missing: Vec<String>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "图片 {} 张、参考图 {} 份已在对象存储里；本次复制 {} 个对象，{} 个已在桶里（核对无误，未再复制）",
            self.images, self.uploads, self.copied, self.already_there
        )?;
        if !self.missing.is_empty() {
            write!(
                f,
                "；{} 条记录的文件本来就不在，新库里保持原样：{}",
                self.missing.len(),
                self.missing.join(", ")
            )?;
        }
        Ok(())
    }
}

fn db_error(e: rusqlite::Error) -> StorageError {
    StorageError::Db(e.into())
}

/// 一个要搬的文件。
struct Item {
    /// `images` 或 `uploads`；缩略图为 None（不改记录）。
    table: Option<&'static str>,
    id: String,
    root: String,
    rel: String,
}

fn md5_hex(data: &[u8]) -> String {
    format!("{:x}", Md5::digest(data))
}

/// 执行迁移（阻塞调用，在 tokio 运行时的阻塞线程里）。
pub fn to_object_store(
    source_db: &Path,
    blobs: &Blobs,
    target_root: &str,
    target_db: &Path,
) -> Result<Report, StorageError> {
    if !blobs::is_object_store(target_root) {
        return Err(invalid(format!("目标“{target_root}”应写成 s3://桶/前缀")));
    }
    let target_root = target_root.trim_end_matches('/').to_string();
    let source = Connection::open_with_flags(source_db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(db_error)?;
    if same_file(source_db, target_db) {
        return Err(invalid("新数据库不能就是源数据库（源头什么都不改）".into()));
    }
    if target_db.exists() && !is_untouched_copy(target_db) {
        return Err(invalid(format!(
            "新数据库 {} 已存在，且不是上次迁移写出的那一份（可能已经在用）：不覆盖。换一个路径，或确认无用后删掉它再迁移",
            target_db.display()
        )));
    }

    let mut items = Vec::new();
    for (id, root, rel) in db::all_paths(&mut super::sql::Db::Sqlite(&source))? {
        if blobs::is_object_store(&root) {
            continue;
        }
        items.push(Item {
            table: Some("images"),
            id: id.clone(),
            root: root.clone(),
            rel: rel.clone(),
        });
        let thumb = db::thumb_rel_path(&rel);
        if Path::new(&root).join(&thumb).is_file() {
            items.push(Item {
                table: None,
                id,
                root,
                rel: thumb,
            });
        }
    }
    {
        let mut stmt = source
            .prepare("SELECT id, root, rel_path FROM uploads")
            .map_err(db_error)?;
        let uploads = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(db_error)?
            .collect::<rusqlite::Result<Vec<(String, String, String)>>>()
            .map_err(db_error)?;
        for (id, root, rel) in uploads {
            if !blobs::is_object_store(&root) {
                items.push(Item {
                    table: Some("uploads"),
                    id,
                    root,
                    rel,
                });
            }
        }
    }

    let mut report = Report::default();
    let mut moved: Vec<(&'static str, String)> = Vec::new();
    for item in &items {
        let Some(path) = Blobs::local_path(&item.root, &item.rel) else {
            continue;
        };
        let data = match std::fs::read(&path) {
            Ok(data) => bytes::Bytes::from(data),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if item.table.is_some() {
                    report.missing.push(item.id.clone());
                }
                continue;
            }
            Err(source) => {
                return Err(StorageError::Io {
                    context: format!("读取 {} 失败", path.display()),
                    source,
                })
            }
        };
        let md5 = md5_hex(&data);
        if blobs.same_content(&target_root, &item.rel, &data, &md5) {
            report.already_there += 1;
        } else {
            blobs.write(&target_root, &item.rel, data.clone(), Durability::Durable)?;
            report.copied += 1;
        }
        if let Some(table) = item.table {
            moved.push((table, item.id.clone()));
        }
    }

    // 全部复制完，再逐个核对一遍（大小与 MD5）。
    for item in &items {
        let Some(path) = Blobs::local_path(&item.root, &item.rel) else {
            continue;
        };
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        if !blobs.same_content(&target_root, &item.rel, &data, &md5_hex(&data)) {
            return Err(invalid(format!(
                "核对失败：对象 {target_root}/{} 与 {} 不一致（新数据库没有写）",
                item.rel,
                path.display()
            )));
        }
    }

    write_target_db(&source, target_db, &target_root, &moved)?;
    report.images = moved.iter().filter(|m| m.0 == "images").count();
    report.uploads = moved.iter().filter(|m| m.0 == "uploads").count();
    Ok(report)
}

fn invalid(message: String) -> StorageError {
    StorageError::Io {
        context: message,
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// 各表的行数（表名排序）。
fn table_counts(conn: &Connection) -> Result<Vec<(String, i64)>, StorageError> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .map_err(db_error)?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(db_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(db_error)?;
    names
        .into_iter()
        .map(|name| {
            let n = conn
                .query_row(&format!("SELECT COUNT(*) FROM \"{name}\""), [], |r| {
                    r.get(0)
                })
                .map_err(db_error)?;
            Ok((name, n))
        })
        .collect()
}

/// 数据库文件旁边的文件：`factory.db` + `-wal` 之类。
fn sidecar(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// 记着新库摘要的文件。
fn fingerprint_path(target_db: &Path) -> PathBuf {
    sidecar(target_db, ".migrated")
}

/// 已存在的新库是不是上次迁移写出的那一份、还没用过：摘要与记下的相同，也没有还没合并进主文件的 WAL
/// （服务正开着它时，新写的行先在 `-wal` 里）。
fn is_untouched_copy(target_db: &Path) -> bool {
    // 服务开着它时旁边有 -wal 与 -shm（正常关闭后都会删掉）。
    if ["-wal", "-shm"]
        .iter()
        .any(|suffix| sidecar(target_db, suffix).exists())
    {
        return false;
    }
    match (
        std::fs::read_to_string(fingerprint_path(target_db)),
        std::fs::read(target_db),
    ) {
        (Ok(recorded), Ok(data)) => recorded.trim() == crate::hash::sha256_hex(&data),
        _ => false,
    }
}

/// 写新库：源库的完整副本（临时文件），把搬好的记录改指向对象存储，核对行数，改名到位。
fn write_target_db(
    source: &Connection,
    target_db: &Path,
    target_root: &str,
    moved: &[(&'static str, String)],
) -> Result<(), StorageError> {
    let dir = target_db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).map_err(|source| StorageError::Io {
        context: format!("无法创建目录 {}", dir.display()),
        source,
    })?;
    let temp = dir.join(format!(
        ".migrating-{}",
        target_db
            .file_name()
            .map_or("factory.db".into(), |n| n.to_string_lossy())
    ));
    // 上次中断留下的临时库与它的日志都删掉（留着的回滚日志会被套到新的副本上）。
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let _ = std::fs::remove_file(sidecar(&temp, suffix));
    }
    source
        .execute("VACUUM INTO ?1", [temp.to_string_lossy()])
        .map_err(db_error)?;
    let result = (|| {
        let mut target = Connection::open(&temp).map_err(db_error)?;
        // 副本里指向对象存储这个根的记录数（之前就把存储根换到这个桶时，已有一些）。
        let pointed = |c: &Connection| -> Result<usize, StorageError> {
            c.query_row(
                "SELECT (SELECT COUNT(*) FROM images WHERE root = ?1) + (SELECT COUNT(*) FROM uploads WHERE root = ?1)",
                [target_root],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
            .map_err(db_error)
        };
        // 副本是 `VACUUM INTO` 在一个读事务里取的一致快照；服务还在运行时，源库之后的变化不影响它。
        let counts = table_counts(&target)?;
        let already = pointed(&target)?;
        let tx = target.transaction().map_err(db_error)?;
        let mut updated = 0;
        for (table, id) in moved {
            // 列出文件之后、取快照之前被永久删除的记录：更新 0 行，不算错。
            updated += tx
                .execute(
                    &format!("UPDATE {table} SET root = ?1 WHERE id = ?2"),
                    [target_root, id.as_str()],
                )
                .map_err(db_error)?;
        }
        tx.commit().map_err(db_error)?;
        if table_counts(&target)? != counts {
            return Err(invalid("核对失败：改写之后新数据库的行数变了".into()));
        }
        let now = pointed(&target)?;
        if now != already + updated {
            return Err(invalid(format!(
                "核对失败：新数据库里指向对象存储的记录 {now} 条，应为 {}",
                already + updated
            )));
        }
        drop(target);
        std::fs::File::open(&temp)
            .and_then(|f| f.sync_all())
            .map_err(|source| StorageError::Io {
                context: "写新数据库失败".into(),
                source,
            })?;
        let digest =
            crate::hash::sha256_hex(std::fs::read(&temp).map_err(|source| StorageError::Io {
                context: "读新数据库失败".into(),
                source,
            })?);
        // 先记摘要、再改名：改名前崩溃，下次看到的是旧库配新摘要（不符，拒绝覆盖，不会误删）。
        crate::atomic_file::write(
            &fingerprint_path(target_db),
            digest.as_bytes(),
            Durability::Durable,
            0o644,
        )
        .map_err(|source| StorageError::Io {
            context: "写新数据库的摘要失败".into(),
            source,
        })?;
        std::fs::rename(&temp, target_db).map_err(|source| StorageError::Io {
            context: format!("无法写到 {}", target_db.display()),
            source,
        })?;
        crate::atomic_file::sync_dir(&dir).map_err(|source| StorageError::Io {
            context: "写新数据库失败".into(),
            source,
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}
