//! 元数据库：SQLite 文件（默认）或 PostgreSQL（`storage.database = "postgres://…"`）。
//! 表结构只经由迁移脚本改变；两种数据库各有一份迁移（方言不同），内容一一对应，脚本在 `schema`。

use super::schema::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
use super::sql::{params, Database, Db, DbError, Row};
use rusqlite::Connection;
use rusqlite_migration::{Migrations, M};
use std::path::Path;

/// SQLite 的迁移（脚本见 `schema::SQLITE_MIGRATIONS`）：按顺序执行，已执行过的不会再执行。
fn migrations() -> Migrations<'static> {
    Migrations::new(SQLITE_MIGRATIONS.iter().map(|&sql| M::up(sql)).collect())
}

pub use crate::config::is_postgres_url as is_postgres;

/// 同时连着 PostgreSQL 的连接数上限（每个实例）。
const POSTGRES_POOL: u32 = 8;

/// 连上 PostgreSQL 并迁移到最新。几个实例同时启动时，迁移由咨询锁排成一个接一个。
pub fn connect_postgres(url: &str) -> Result<Database, DbError> {
    let mut config: postgres::Config = url.parse()?;
    config
        .connect_timeout(std::time::Duration::from_secs(5))
        .application_name("drafting-factory");
    let manager = r2d2_postgres::PostgresConnectionManager::new(config, postgres::NoTls);
    let pool = r2d2::Pool::builder()
        .max_size(POSTGRES_POOL)
        .min_idle(Some(1))
        .connection_timeout(std::time::Duration::from_secs(10))
        .error_handler(Box::new(r2d2::LoggingErrorHandler))
        .build(manager)?;
    let database = Database::Postgres(pool);
    database.run(migrate_postgres)?;
    Ok(database)
}

/// 与 `rusqlite_migration` 同样的约定：`schema_version` 记着执行到第几条。
fn migrate_postgres(db: &mut Db<'_>) -> Result<(), DbError> {
    db.transaction(|tx| {
        tx.batch(
            "SELECT pg_advisory_xact_lock(7160731);
             CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);",
        )?;
        let done: Option<usize> =
            tx.query_opt("SELECT version FROM schema_version", params![], |r| {
                r.get(0)
            })?;
        let done = done.unwrap_or(0);
        if done > POSTGRES_MIGRATIONS.len() {
            return Err(DbError::TooNew {
                found: done,
                known: POSTGRES_MIGRATIONS.len(),
            });
        }
        for migration in &POSTGRES_MIGRATIONS[done..] {
            tx.batch(migration)?;
        }
        tx.execute("DELETE FROM schema_version", params![])?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            params![POSTGRES_MIGRATIONS.len()],
        )?;
        Ok(())
    })
}

/// 名为 `name` 的共用密钥：还没有就存入 `fresh`（几个实例同时第一次取时只有一个的存得进去），返回库里的那一把。
pub fn shared_secret(conn: &mut Db<'_>, name: &str, fresh: &str) -> Result<String, DbError> {
    conn.execute(
        "INSERT INTO secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
        params![name, fresh],
    )?;
    conn.query_one(
        "SELECT value FROM secrets WHERE name = ?1",
        params![name],
        |r| r.get(0),
    )
}

/// 打开 `storage.database` 指的数据库：PostgreSQL 的连接串，或 SQLite 文件的路径。
pub fn connect(database: &str) -> Result<Database, super::StorageError> {
    if is_postgres(database) {
        Ok(connect_postgres(database)?)
    } else {
        Ok(Database::Sqlite(std::sync::Mutex::new(open(Path::new(
            database,
        ))?)))
    }
}

/// 一张已保存图像的记录。
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRecord {
    pub id: String,
    pub root: String,
    pub rel_path: String,
    pub mime: String,
    pub width: u32,
    pub height: u32,
    pub bytes: i64,
    pub prompt: String,
    pub mode: String,
    pub model: String,
    pub aspect_ratio: String,
    pub image_size: String,
    pub upstream: String,
    pub created_at: String,
    pub duration_ms: i64,
    /// 尝试记录（JSON 数组）。
    pub attempts: String,
    /// 参考图 id（JSON 数组，指向 uploads 表）。
    pub reference_ids: String,
    /// 模型随图说的话（Gemini 的非思考文字部分）。
    pub model_text: Option<String>,
    /// 收藏了（☆）。
    pub favourite: bool,
    /// 联网搜索时引用的来源（JSON：[[标题, 网址], …]）。
    pub sources: String,
    /// 实际尺寸与请求的不符时的说明。
    pub size_note: Option<String>,
    /// 移入回收站的时间；为空表示未删除。
    pub deleted_at: Option<String>,
    /// 所属的账号（没有账号时为空）。
    pub account: String,
    /// `check --repair` 标记的文件问题（缺失 / 不完整）；正常为空。
    pub file_problem: Option<String>,
}

impl ImageRecord {
    /// 文件在本地目录里的完整路径；放在对象存储里的图没有（读写经由 `Blobs`）。
    pub fn local_path(&self) -> Option<std::path::PathBuf> {
        super::Blobs::local_path(&self.root, &self.rel_path)
    }

    /// 提示词摘要（最多 24 个字母数字字符，空格变下划线），用于下载与打包的文件名。
    pub fn prompt_excerpt(&self) -> String {
        self.prompt
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == ' ')
            .take(24)
            .collect::<String>()
            .trim()
            .replace(' ', "_")
    }

    /// 缩略图应在的位置（与原图同目录）。
    pub fn thumb_rel_path_for(&self) -> String {
        thumb_rel_path(&self.rel_path)
    }

    fn from_row(row: &Row) -> Result<Self, DbError> {
        Ok(Self {
            id: row.get("id")?,
            root: row.get("root")?,
            rel_path: row.get("rel_path")?,
            mime: row.get("mime")?,
            width: row.get("width")?,
            height: row.get("height")?,
            bytes: row.get("bytes")?,
            prompt: row.get("prompt")?,
            mode: row.get("mode")?,
            model: row.get("model")?,
            aspect_ratio: row.get("aspect_ratio")?,
            image_size: row.get("image_size")?,
            upstream: row.get("upstream")?,
            created_at: row.get("created_at")?,
            duration_ms: row.get("duration_ms")?,
            attempts: row.get("attempts")?,
            reference_ids: row.get("reference_ids")?,
            model_text: row.get("model_text")?,
            favourite: row.get("favourite")?,
            sources: row.get("sources")?,
            size_note: row.get("size_note")?,
            deleted_at: row.get("deleted_at")?,
            account: row.get("account")?,
            file_problem: row.get("file_problem")?,
        })
    }
}

/// 原图相对路径 → 缩略图相对路径：`…/{id}.png` → `…/{id}.thumb.jpg`。
pub fn thumb_rel_path(rel_path: &str) -> String {
    match rel_path.rsplit_once('.') {
        Some((stem, _)) => format!("{stem}.thumb.jpg"),
        None => format!("{rel_path}.thumb.jpg"),
    }
}

/// 打开（必要时新建）SQLite 文件并迁移到最新。
pub fn open(path: &Path) -> Result<Connection, rusqlite_migration::Error> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    migrations().to_latest(&mut conn)?;
    Ok(conn)
}

pub fn insert(conn: &mut Db<'_>, r: &ImageRecord) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO images (id, root, rel_path, mime, width, height, bytes, prompt, mode, model,
                             aspect_ratio, image_size, upstream, created_at,
                             duration_ms, attempts, reference_ids, model_text, sources, size_note, account)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
        params![
            r.id,
            r.root,
            r.rel_path,
            r.mime,
            r.width,
            r.height,
            r.bytes,
            r.prompt,
            r.mode,
            r.model,
            r.aspect_ratio,
            r.image_size,
            r.upstream,
            r.created_at,
            r.duration_ms,
            r.attempts,
            r.reference_ids,
            r.model_text,
            r.sources,
            r.size_note,
            r.account
        ],
    )?;
    Ok(())
}

/// 所有记录的（id, 原图绝对路径, 缩略图绝对路径），供启动时核对。
/// 每张图（含回收站里的）的 id、根与相对路径。
pub fn all_paths(conn: &mut Db<'_>) -> Result<Vec<(String, String, String)>, DbError> {
    conn.query("SELECT id, root, rel_path FROM images", params![], |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    })
}

/// 按 id 取记录（包括回收站里的：恢复之前仍可查看）。
pub fn get(conn: &mut Db<'_>, id: &str) -> Result<Option<ImageRecord>, DbError> {
    conn.query_opt(
        "SELECT * FROM images WHERE id = ?1",
        params![id],
        ImageRecord::from_row,
    )
}

/// 图库的一次查询条件。时间都是与 `created_at` 同格式的 UTC 字符串。
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// 提示词包含这段文字（不区分 ASCII 大小写）。
    pub search: String,
    pub mode: Option<String>,
    /// 起止时间（含起、不含止）。
    pub from: Option<String>,
    pub to: Option<String>,
    /// true 只看回收站，false 只看未删除的。
    pub trash: bool,
    /// true 只看收藏的，false 只看没收藏的。
    pub favourite: Option<bool>,
    /// 只看这个账号的。
    pub account: Option<String>,
    /// 翻页游标：上一页最后一条的 (created_at, id)。
    pub after: Option<(String, String)>,
    pub limit: u32,
}

/// 按时间倒序列出符合条件的记录（键集分页：翻页时不会因新增图片而重复或漏掉）。
pub fn list(conn: &mut Db<'_>, f: &ListFilter) -> Result<Vec<ImageRecord>, DbError> {
    let escaped = f
        .search
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let (after_time, after_id) = f.after.clone().unzip();
    conn.query(
        "SELECT * FROM images
         WHERE (deleted_at IS NOT NULL) = ?1
           AND (?2 = '' OR prompt LIKE '%' || ?2 || '%' ESCAPE '\\')
           AND (CAST(?3 AS TEXT) IS NULL OR mode = ?3)
           AND (CAST(?4 AS TEXT) IS NULL OR created_at >= ?4)
           AND (CAST(?5 AS TEXT) IS NULL OR created_at < ?5)
           AND (CAST(?6 AS TEXT) IS NULL OR (created_at, id) < (?6, ?7))
           AND (CAST(?9 AS BIGINT) IS NULL OR favourite = ?9)
           AND (CAST(?10 AS TEXT) IS NULL OR account = ?10)
         ORDER BY created_at DESC, id DESC
         LIMIT ?8",
        params![
            f.trash,
            escaped,
            f.mode,
            f.from,
            f.to,
            after_time,
            after_id,
            f.limit,
            f.favourite,
            f.account
        ],
        ImageRecord::from_row,
    )
}

/// 收藏或取消收藏一张图，返回改到的行数（没有这张图时为 0）。
pub fn set_favourite(conn: &mut Db<'_>, id: &str, favourite: bool) -> Result<usize, DbError> {
    conn.execute(
        "UPDATE images SET favourite = ?2 WHERE id = ?1",
        params![id, favourite],
    )
}

/// 把这些图片移入回收站（已在回收站的不变），返回实际移入的条数。
pub fn trash(conn: &mut Db<'_>, ids: &[String], now: &str) -> Result<usize, DbError> {
    let mut n = 0;
    for id in ids {
        n += conn.execute(
            "UPDATE images SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
            params![id, now],
        )?;
    }
    Ok(n)
}

/// 从回收站恢复，返回实际恢复的条数。
pub fn restore(conn: &mut Db<'_>, ids: &[String]) -> Result<usize, DbError> {
    let mut n = 0;
    for id in ids {
        n += conn.execute(
            "UPDATE images SET deleted_at = NULL WHERE id = ?1 AND deleted_at IS NOT NULL",
            params![id],
        )?;
    }
    Ok(n)
}

/// 删除回收站里的全部记录（一句 `DELETE … RETURNING`，原子的），返回被删除的记录，调用方随后删文件。
/// `only` 不为空时只删这个账号的。
pub fn purge_trash(conn: &mut Db<'_>, only: Option<&str>) -> Result<Vec<ImageRecord>, DbError> {
    conn.query(
        "DELETE FROM images WHERE deleted_at IS NOT NULL AND (CAST(?1 AS TEXT) IS NULL OR account = ?1)
         RETURNING *",
        params![only],
        ImageRecord::from_row,
    )
}

/// 一份上传（参考图）的记录：按内容哈希存一份。
#[derive(Debug, Clone, PartialEq)]
pub struct UploadRecord {
    pub id: String,
    pub root: String,
    pub rel_path: String,
    pub mime: String,
    pub bytes: i64,
    pub created_at: String,
    /// 上传时的文件名（同样的内容再传一次时记最近的名字）；粘贴的图没有名字。
    pub filename: Option<String>,
}

impl UploadRecord {
    /// 同 `ImageRecord::local_path`。
    pub fn local_path(&self) -> Option<std::path::PathBuf> {
        super::Blobs::local_path(&self.root, &self.rel_path)
    }
}

pub fn get_upload(conn: &mut Db<'_>, id: &str) -> Result<Option<UploadRecord>, DbError> {
    conn.query_opt(
        "SELECT id, root, rel_path, mime, bytes, created_at, filename FROM uploads WHERE id = ?1",
        params![id],
        |row| {
            Ok(UploadRecord {
                id: row.get(0)?,
                root: row.get(1)?,
                rel_path: row.get(2)?,
                mime: row.get(3)?,
                bytes: row.get(4)?,
                created_at: row.get(5)?,
                filename: row.get(6)?,
            })
        },
    )
}

/// 写入（或覆盖：文件丢失后重新保存时）一条上传记录。
pub fn put_upload(conn: &mut Db<'_>, u: &UploadRecord) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO uploads (id, root, rel_path, mime, bytes, created_at, filename)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET root = excluded.root, rel_path = excluded.rel_path,
             mime = excluded.mime, bytes = excluded.bytes, created_at = excluded.created_at,
             filename = excluded.filename",
        params![
            u.id,
            u.root,
            u.rel_path,
            u.mime,
            u.bytes,
            u.created_at,
            u.filename
        ],
    )?;
    Ok(())
}

/// 记录里出现过的所有存储根（核对文件时每个根都要看）。
pub fn roots(conn: &mut Db<'_>) -> Result<Vec<String>, DbError> {
    conn.query(
        "SELECT DISTINCT root FROM images UNION SELECT DISTINCT root FROM uploads",
        params![],
        |row| row.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().unwrap();
    }

    #[test]
    fn insert_then_get_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("t.db")).unwrap();
        let mut conn = Db::Sqlite(&conn);
        let r = ImageRecord {
            account: String::new(),
            file_problem: None,
            id: "a".into(),
            root: "/r".into(),
            rel_path: "images/x.png".into(),
            mime: "image/png".into(),
            width: 2,
            height: 3,
            bytes: 4,
            prompt: "猫".into(),
            mode: "text2img".into(),
            model: "m".into(),
            aspect_ratio: "1:1".into(),
            image_size: "1K".into(),
            upstream: "u".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            duration_ms: 12,
            attempts: "[]".into(),
            reference_ids: "[]".into(),
            model_text: None,
            favourite: false,
            sources: "[]".into(),
            size_note: None,
            deleted_at: None,
        };
        insert(&mut conn, &r).unwrap();
        assert_eq!(get(&mut conn, "a").unwrap(), Some(r.clone()));
        assert_eq!(get(&mut conn, "b").unwrap(), None);
        // 主键防止同一张图写两行。
        assert!(insert(&mut conn, &r).is_err());
    }

    fn record(id: &str, prompt: &str, mode: &str, created_at: &str) -> ImageRecord {
        ImageRecord {
            account: String::new(),
            file_problem: None,
            id: id.into(),
            root: "/r".into(),
            rel_path: format!("images/{id}.png"),
            mime: "image/png".into(),
            width: 1,
            height: 1,
            bytes: 1,
            prompt: prompt.into(),
            mode: mode.into(),
            model: "m".into(),
            aspect_ratio: "1:1".into(),
            image_size: "1K".into(),
            upstream: "u".into(),
            created_at: created_at.into(),
            duration_ms: 0,
            attempts: "[]".into(),
            reference_ids: "[]".into(),
            model_text: None,
            favourite: false,
            sources: "[]".into(),
            size_note: None,
            deleted_at: None,
        }
    }

    fn ids(rows: Vec<ImageRecord>) -> Vec<String> {
        rows.into_iter().map(|r| r.id).collect()
    }

    #[test]
    fn list_pages_filters_and_trash() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("t.db")).unwrap();
        let mut conn = Db::Sqlite(&conn);
        for (id, prompt, mode, t) in [
            ("a", "红色的猫", "text2img", "2026-01-01T00:00:00.000Z"),
            ("b", "蓝色的狗", "img2img", "2026-01-02T00:00:00.000Z"),
            ("c", "100% 纯_色", "text2img", "2026-01-03T00:00:00.000Z"),
            ("d", "红色的花", "text2img", "2026-01-03T00:00:00.000Z"),
        ] {
            insert(&mut conn, &record(id, prompt, mode, t)).unwrap();
        }
        let all = ListFilter {
            limit: 10,
            ..Default::default()
        };
        // 时间倒序；同一时刻按 id 倒序。
        assert_eq!(ids(list(&mut conn, &all).unwrap()), ["d", "c", "b", "a"]);
        // 键集分页：第二页从第一页最后一条之后开始。
        let first = list(
            &mut conn,
            &ListFilter {
                limit: 2,
                ..all.clone()
            },
        )
        .unwrap();
        let last = first.last().unwrap();
        let after = Some((last.created_at.clone(), last.id.clone()));
        let second = ListFilter {
            limit: 2,
            after,
            ..all.clone()
        };
        assert_eq!(ids(list(&mut conn, &second).unwrap()), ["b", "a"]);
        // 搜索：% 与 _ 按字面匹配，不是通配符。
        let search = |q: &str| ListFilter {
            search: q.into(),
            ..all.clone()
        };
        assert_eq!(ids(list(&mut conn, &search("红色")).unwrap()), ["d", "a"]);
        assert_eq!(ids(list(&mut conn, &search("%")).unwrap()), ["c"]);
        assert_eq!(ids(list(&mut conn, &search("纯_")).unwrap()), ["c"]);
        assert!(list(&mut conn, &search("_色的猫")).unwrap().is_empty());
        // 模式与日期。
        let img2img = ListFilter {
            mode: Some("img2img".into()),
            ..all.clone()
        };
        assert_eq!(ids(list(&mut conn, &img2img).unwrap()), ["b"]);
        let jan2 = ListFilter {
            from: Some("2026-01-02T00:00:00.000Z".into()),
            to: Some("2026-01-03T00:00:00.000Z".into()),
            ..all.clone()
        };
        assert_eq!(ids(list(&mut conn, &jan2).unwrap()), ["b"]);
        // 回收站：移入、恢复、清空。
        let trash_view = ListFilter {
            trash: true,
            ..all.clone()
        };
        assert_eq!(
            trash(&mut conn, &["a".into(), "b".into(), "zz".into()], "t").unwrap(),
            2
        );
        assert_eq!(
            trash(&mut conn, &["a".into()], "t").unwrap(),
            0,
            "已在回收站的不重复计数"
        );
        assert_eq!(ids(list(&mut conn, &all).unwrap()), ["d", "c"]);
        assert_eq!(ids(list(&mut conn, &trash_view).unwrap()), ["b", "a"]);
        assert_eq!(restore(&mut conn, &["b".into()]).unwrap(), 1);
        assert_eq!(ids(list(&mut conn, &all).unwrap()), ["d", "c", "b"]);
        let purged = purge_trash(&mut conn, None).unwrap();
        assert_eq!(ids(purged), ["a"]);
        assert_eq!(get(&mut conn, "a").unwrap(), None);
        assert!(list(&mut conn, &trash_view).unwrap().is_empty());
    }
}
