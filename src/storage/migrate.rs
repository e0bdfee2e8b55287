//! `drafting-factory migrate`：把单机的 SQLite + 本地目录搬进对象存储（`--to-s3 s3://桶/前缀`）
//! 与新的元数据库（`--to-database 新库.db`，或 `--to-postgres postgres://…`）。
//!
//! 搬进 PostgreSQL 时：各表的每一行在一个事务里写进目标库（已有的同键行改成源库的样子，所以可以再跑），
//! 提交前逐表核对行数与全部内容的 SHA-256，不一致（例如目标库正被一个实例用着、多了行）就整个回滚；
//! 源库旁的签名密钥文件 `url-signing.key` 一并放进库里，旧的签名链接照常可用。
//!
//! - 源头什么都不改：源数据库只读打开，本地文件只读；
//! - 复制每张图、它的缩略图（有的话）与每份上传的参考图；每个对象写完用 ETag（单次 PUT 时是内容的 MD5）
//!   与本地文件的 MD5 核对，最后再逐个 HEAD 核对一遍大小与 MD5；
//! - 可以中断后再跑：桶里已有、大小与 MD5 都对得上的对象不再复制；
//! - 新数据库是源库的完整副本（`VACUUM INTO`），其中搬好的图与上传改指向对象存储的根；
//!   文件缺失的记录保持原样（照旧指向原来的目录），并在报告里列出。新库先写到临时文件，完成后才改名，
//!   旁边记下它的 SHA-256（`新库.db.migrated`）。新库已存在时，只有它还是上次迁移写出的那一份（摘要相同、没有未合并的 WAL）
//!   才重建，否则拒绝，免得覆盖已经在用的库。所以可以先在服务运行时迁一遍，停服后再迁一遍补上这期间的新图。
//!
//! 步骤：`run` 先 `copy_objects`（`local_items` 列出本地文件 → `copy_items` 复制 → `verify_items` 逐个核对），
//! 再写新库：SQLite 是 `write_target_db`（`VACUUM INTO` 副本 → `repoint_copy` 改指向并核对 → `put_in_place` 落盘改名），
//! PostgreSQL 是 `write_postgres`（`read_source_tables` → `add_url_signing_key` → 每张表 `upsert_table`）。

use super::blobs::{self, Blobs};
use super::sql::{params, Db, DbError, Row, Value};
use super::{db, StorageError};
use crate::atomic_file::Durability;
use md5::{Digest, Md5};
use rusqlite::{Connection, OpenFlags};
use std::collections::HashSet;
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
    /// 搬进 PostgreSQL 时各表写入并核对过的行数。
    pub tables: Vec<(&'static str, usize)>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "图片 {} 张、参考图 {} 份已在对象存储里；本次复制 {} 个对象，{} 个已在桶里（核对无误，未再复制）",
            self.images, self.uploads, self.copied, self.already_there
        )?;
        if !self.tables.is_empty() {
            let rows: Vec<String> = self
                .tables
                .iter()
                .map(|(t, n)| format!("{t} {n}"))
                .collect();
            write!(
                f,
                "；PostgreSQL 里各表的行数与内容都与源库一致（{}）",
                rows.join("、")
            )?;
        }
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

/// 新的元数据库。
pub enum Target {
    /// 新的 SQLite 文件（源库的副本）。
    Sqlite(PathBuf),
    /// PostgreSQL 的连接串。
    Postgres(String),
}

/// 执行迁移（阻塞调用，在 tokio 运行时的阻塞线程里）：有 `to_s3` 时先把文件搬进对象存储，再写新的元数据库。
pub fn run(
    source_db: &Path,
    blobs: &Blobs,
    to_s3: Option<&str>,
    target: &Target,
) -> Result<Report, StorageError> {
    let source = Connection::open_with_flags(source_db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(db_error)?;
    if let Target::Sqlite(target_db) = target {
        if to_s3.is_none() {
            return Err(invalid("写新的 SQLite 文件时要同时给出 --to-s3".into()));
        }
        if same_file(source_db, target_db) {
            return Err(invalid("新数据库不能就是源数据库（源头什么都不改）".into()));
        }
        if target_db.exists() && !is_untouched_copy(target_db) {
            return Err(invalid(format!(
                "新数据库 {} 已存在，且不是上次迁移写出的那一份（可能已经在用）：不覆盖。换一个路径，或确认无用后删掉它再迁移",
                target_db.display()
            )));
        }
    }
    let (mut report, moved, target_root) = match to_s3 {
        Some(root) => {
            if !blobs::is_object_store(root) {
                return Err(invalid(format!("目标“{root}”应写成 s3://桶/前缀")));
            }
            let root = root.trim_end_matches('/').to_string();
            let (report, moved) = copy_objects(&source, blobs, &root)?;
            (report, moved, Some(root))
        }
        None => (Report::default(), Vec::new(), None),
    };
    match target {
        Target::Sqlite(target_db) => {
            let root = target_root.as_deref().expect("上面已要求 --to-s3");
            write_target_db(&source, target_db, root, &moved)?;
        }
        Target::Postgres(url) => {
            report.tables =
                write_postgres(&source, source_db, url, target_root.as_deref(), &moved)?;
        }
    }
    report.images = moved.iter().filter(|m| m.0 == "images").count();
    report.uploads = moved.iter().filter(|m| m.0 == "uploads").count();
    Ok(report)
}

/// 复制每张图、缩略图与上传进对象存储并逐个核对，返回报告与搬好的记录（表名, id）。
#[allow(clippy::type_complexity)]
fn copy_objects(
    source: &Connection,
    blobs: &Blobs,
    target_root: &str,
) -> Result<(Report, Vec<(&'static str, String)>), StorageError> {
    let items = local_items(source)?;
    let (report, moved) = copy_items(blobs, target_root, &items)?;
    // 全部复制完，再逐个核对一遍（大小与 MD5）。
    verify_items(blobs, target_root, &items)?;
    Ok((report, moved))
}

/// 源库里还在本地目录的文件：每张图、它的缩略图（文件在的话）与每份上传。
fn local_items(source: &Connection) -> Result<Vec<Item>, StorageError> {
    let mut items = Vec::new();
    for (id, root, rel) in db::all_paths(&mut Db::Sqlite(source))? {
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
    Ok(items)
}

/// 把这些文件复制进对象存储（桶里已有、核对无误的跳过），返回报告与搬好的记录（表名, id）。
#[allow(clippy::type_complexity)]
fn copy_items(
    blobs: &Blobs,
    target_root: &str,
    items: &[Item],
) -> Result<(Report, Vec<(&'static str, String)>), StorageError> {
    let mut report = Report::default();
    let mut moved: Vec<(&'static str, String)> = Vec::new();
    for item in items {
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
        if blobs.same_content(target_root, &item.rel, &data, &md5) {
            report.already_there += 1;
        } else {
            blobs.write(target_root, &item.rel, data.clone(), Durability::Durable)?;
            report.copied += 1;
        }
        if let Some(table) = item.table {
            moved.push((table, item.id.clone()));
        }
    }
    Ok((report, moved))
}

/// 复制完之后逐个核对对象存储里的这些文件（大小与 MD5），有一个不符就报错（新数据库不写）。
fn verify_items(blobs: &Blobs, target_root: &str, items: &[Item]) -> Result<(), StorageError> {
    for item in items {
        let Some(path) = Blobs::local_path(&item.root, &item.rel) else {
            continue;
        };
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        if !blobs.same_content(target_root, &item.rel, &data, &md5_hex(&data)) {
            return Err(invalid(format!(
                "核对失败：对象 {target_root}/{} 与 {} 不一致（新数据库没有写）",
                item.rel,
                path.display()
            )));
        }
    }
    Ok(())
}

/// 各表与它的主键（按依赖先后：任务引用批次）。
const TABLES: &[(&str, &str)] = &[
    ("images", "id"),
    ("uploads", "id"),
    ("batches", "id"),
    ("jobs", "id"),
    ("idempotency", "key"),
    ("prompts", "id"),
    (
        "usage",
        "period, client, account, upstream, model, key_index",
    ),
    ("secrets", "name"),
    ("instances", "id"),
    ("sessions", "token_hash"),
    ("rate_limits", "key"),
    ("accounts", "name"),
    ("audit_log", "id"),
];

/// 一组行（同样的列、按主键排好）的 SHA-256。
fn rows_digest(rows: &[Row]) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for row in rows {
        for v in row.values() {
            hash.update(format!("{v:?}\u{1f}").as_bytes());
        }
        hash.update(b"\x1e");
    }
    format!("{:x}", hash.finalize())
}

/// 把源库（一个读事务里的一致快照）的每一行写进 PostgreSQL，搬进对象存储的记录改指向 `target_root`；
/// 提交前核对每张表的行数与内容摘要，不一致就回滚（目标库不变）。
fn write_postgres(
    source: &Connection,
    source_db: &Path,
    url: &str,
    target_root: Option<&str>,
    moved: &[(&'static str, String)],
) -> Result<Vec<(&'static str, usize)>, StorageError> {
    let moved: HashSet<(&str, &str)> = moved.iter().map(|(t, id)| (*t, id.as_str())).collect();
    let mut tables = read_source_tables(source, target_root, &moved)?;
    // 单机时签名链接的密钥在源库旁的文件里：放进库里，旧链接照常可用。
    add_url_signing_key(source_db, &mut tables);

    let target = db::connect_postgres(url)?;
    let summary = target.run(|pg| {
        pg.transaction(|tx| {
            let mut summary = Vec::new();
            for (table, key, rows) in &tables {
                summary.push((*table, upsert_table(tx, table, key, rows)?));
            }
            Ok::<_, StorageError>(summary)
        })
    })?;
    Ok(summary)
}

/// 从源库读出的一张表：（表名, 主键, 按主键排好的行）。
type SourceTable = (&'static str, &'static str, Vec<Row>);

/// 读出源库的各表（同一个读事务：服务还在运行时，也是某一时刻的完整样子）；
/// 搬进对象存储的记录（`moved` 里的）改指向 `target_root`。
fn read_source_tables(
    source: &Connection,
    target_root: Option<&str>,
    moved: &HashSet<(&str, &str)>,
) -> Result<Vec<SourceTable>, StorageError> {
    source.execute_batch("BEGIN").map_err(db_error)?;
    let read = (|| {
        let mut src = Db::Sqlite(source);
        let mut tables = Vec::new();
        for (table, key) in TABLES {
            let mut rows = src.query(
                &format!("SELECT * FROM {table} ORDER BY {key}"),
                params![],
                |r| Ok(r.clone()),
            )?;
            for row in &mut rows {
                let id: Option<String> = row.get("id").ok();
                if let (Some(root), Some(id)) = (target_root, id) {
                    if moved.contains(&(*table, id.as_str())) {
                        *row = with_value(row, "root", Value::Text(root.to_string()));
                    }
                }
            }
            tables.push((*table, *key, rows));
        }
        Ok::<_, DbError>(tables)
    })();
    let _ = source.execute_batch("COMMIT");
    Ok(read?)
}

/// 源库旁有签名链接的密钥文件、库里还没有 `url_signing` 时，把它作为一行加进 `secrets` 表（按名字排好）。
fn add_url_signing_key(source_db: &Path, tables: &mut [SourceTable]) {
    let key_file = source_db
        .parent()
        .unwrap_or(Path::new("."))
        .join(super::URL_KEY_FILE);
    if let Ok(key) = std::fs::read_to_string(&key_file) {
        let secrets = &mut tables
            .iter_mut()
            .find(|t| t.0 == "secrets")
            .expect("TABLES 里有 secrets")
            .2;
        if !secrets
            .iter()
            .any(|r| r.get::<String>("name").ok().as_deref() == Some("url_signing"))
        {
            secrets.push(Row::new(
                vec!["name".into(), "value".into()],
                vec![
                    Value::Text("url_signing".into()),
                    Value::Text(key.trim().to_string()),
                ],
            ));
            secrets.sort_by_key(|r| r.get::<String>("name").unwrap_or_default());
        }
    }
}

/// 在目标库的事务里写入一张表的行（已有的同键行改成源库的样子）并核对，返回写入的行数。
fn upsert_table(
    tx: &mut Db<'_>,
    table: &str,
    key: &str,
    rows: &[Row],
) -> Result<usize, StorageError> {
    let Some(first) = rows.first() else {
        check_table(tx, table, key, &[], rows)?;
        return Ok(0);
    };
    let cols = first.names().to_vec();
    let keys: Vec<&str> = key.split(", ").collect();
    let placeholders: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let updates: Vec<String> = cols
        .iter()
        .filter(|c| !keys.contains(&c.as_str()))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let upsert = format!(
        "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT ({key}) {}",
        cols.join(", "),
        placeholders.join(", "),
        if updates.is_empty() {
            "DO NOTHING".to_string()
        } else {
            format!("DO UPDATE SET {}", updates.join(", "))
        }
    );
    for row in rows {
        tx.execute(&upsert, row.values())?;
    }
    check_table(tx, table, key, &cols, rows)?;
    Ok(rows.len())
}

/// 目标库里这张表与源库的行完全一致（行数与内容摘要），否则报错（调用方回滚）。
fn check_table(
    tx: &mut Db<'_>,
    table: &str,
    key: &str,
    cols: &[String],
    source_rows: &[Row],
) -> Result<(), StorageError> {
    let count: usize = tx.query_one(&format!("SELECT COUNT(*) FROM {table}"), params![], |r| {
        r.get(0)
    })?;
    if count != source_rows.len() {
        return Err(invalid(format!(
            "核对失败：PostgreSQL 的 {table} 表有 {count} 行，源库 {} 行（目标库正被别的实例用着，或源库在两次迁移之间删了行——这时换一个空库重迁。已回滚，目标库没变）",
            source_rows.len()
        )));
    }
    if source_rows.is_empty() {
        return Ok(());
    }
    let target_rows = tx.query(
        &format!("SELECT {} FROM {table} ORDER BY {key}", cols.join(", ")),
        params![],
        |r| Ok(r.clone()),
    )?;
    if rows_digest(&target_rows) != rows_digest(source_rows) {
        return Err(invalid(format!(
            "核对失败：PostgreSQL 的 {table} 表的内容与源库不一致（已回滚，目标库没变）"
        )));
    }
    Ok(())
}

/// 改了一列的同一行。
fn with_value(row: &Row, column: &str, value: Value) -> Row {
    let mut values = row.values().to_vec();
    if let Some(i) = row.names().iter().position(|n| n == column) {
        values[i] = value;
    }
    Row::new(row.names().to_vec(), values)
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
        repoint_copy(&temp, target_root, moved)?;
        put_in_place(&temp, target_db, &dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// 在副本 `temp` 里把搬好的记录改指向对象存储的根 `target_root`，并核对：各表行数不变，
/// 指向这个根的记录正好多了改过的条数。
fn repoint_copy(
    temp: &Path,
    target_root: &str,
    moved: &[(&'static str, String)],
) -> Result<(), StorageError> {
    let mut target = Connection::open(temp).map_err(db_error)?;
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
    Ok(())
}

/// 把改好的副本落盘、记下摘要，再改名到 `target_db`（`dir` 是它所在的目录）。
fn put_in_place(temp: &Path, target_db: &Path, dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(temp)
        .and_then(|f| f.sync_all())
        .map_err(|source| StorageError::Io {
            context: "写新数据库失败".into(),
            source,
        })?;
    let digest =
        crate::hash::sha256_hex(std::fs::read(temp).map_err(|source| StorageError::Io {
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
    std::fs::rename(temp, target_db).map_err(|source| StorageError::Io {
        context: format!("无法写到 {}", target_db.display()),
        source,
    })?;
    crate::atomic_file::sync_dir(dir).map_err(|source| StorageError::Io {
        context: "写新数据库失败".into(),
        source,
    })
}
