//! 元数据库：存储根目录下的 SQLite 文件。表结构只经由迁移脚本改变。

use rusqlite::{params, Connection, OptionalExtension, Row};
use rusqlite_migration::{Migrations, M};
use std::path::Path;

/// 迁移按顺序执行，已执行过的不会再执行；只能在末尾追加，不能修改已有的。
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(
            "CREATE TABLE images (
            id           TEXT PRIMARY KEY,
            root         TEXT NOT NULL,   -- 写入时的存储根目录（绝对路径）
            rel_path     TEXT NOT NULL,   -- 相对 root 的文件路径
            mime         TEXT NOT NULL,
            width        INTEGER NOT NULL,
            height       INTEGER NOT NULL,
            bytes        INTEGER NOT NULL,
            prompt       TEXT NOT NULL,
            mode         TEXT NOT NULL,   -- text2img / img2img
            model        TEXT NOT NULL,
            aspect_ratio TEXT NOT NULL,
            image_size   TEXT NOT NULL,
            upstream     TEXT NOT NULL,
            created_at   TEXT NOT NULL,   -- RFC 3339，UTC
            deleted_at   TEXT
        );
        CREATE INDEX images_created ON images(created_at DESC);",
        ),
        M::up(
            "ALTER TABLE images ADD COLUMN thumb_rel_path TEXT;          -- 缩略图，相对 root；生成前为空
             ALTER TABLE images ADD COLUMN duration_ms INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE images ADD COLUMN attempts TEXT NOT NULL DEFAULT '[]';  -- 尝试记录（JSON）",
        ),
        M::up(
            "CREATE TABLE uploads (
            id         TEXT PRIMARY KEY,   -- 内容的 SHA-256（十六进制）：同样的图只存一份
            root       TEXT NOT NULL,
            rel_path   TEXT NOT NULL,
            mime       TEXT NOT NULL,
            bytes      INTEGER NOT NULL,
            created_at TEXT NOT NULL
        );
        ALTER TABLE images ADD COLUMN reference_ids TEXT NOT NULL DEFAULT '[]'; -- 参考图（uploads.id 的 JSON 数组）
        CREATE INDEX images_deleted ON images(deleted_at);",
        ),
        M::up(
            "CREATE TABLE batches (
            id            TEXT PRIMARY KEY,
            prompt        TEXT NOT NULL,
            reference_ids TEXT NOT NULL,   -- JSON 数组
            count         INTEGER NOT NULL,
            aspect_ratio  TEXT NOT NULL,
            image_size    TEXT NOT NULL,
            model         TEXT NOT NULL,   -- 空为默认模型
            created_at    TEXT NOT NULL
        );
        CREATE TABLE jobs (
            id          TEXT PRIMARY KEY,
            batch_id    TEXT NOT NULL REFERENCES batches(id),
            idx         INTEGER NOT NULL,  -- 本批中的序号，从 1 起
            state       TEXT NOT NULL,     -- queued/running/done/failed/cancelled/interrupted
            run         INTEGER NOT NULL DEFAULT 0,
            upstream    TEXT,
            error       TEXT,
            attempts    TEXT NOT NULL DEFAULT '[]',
            image_id    TEXT,
            created_at  TEXT NOT NULL,
            started_at  TEXT,
            finished_at TEXT,
            hidden      INTEGER NOT NULL DEFAULT 0  -- 从工作台移除
        );
        CREATE INDEX jobs_state ON jobs(state);
        CREATE INDEX jobs_created ON jobs(created_at);",
        ),
        // 缩略图的路径由原图路径决定（`thumb_rel_path`），有没有生成看文件在不在，不必再写一次库。
        M::up("ALTER TABLE images DROP COLUMN thumb_rel_path;"),
        // 批次是谁提交的（工作台会话或 IP 的指纹、/v1 的密钥指纹）：排队上限按它计。
        M::up("ALTER TABLE batches ADD COLUMN client TEXT NOT NULL DEFAULT '';"),
        // 幂等键：同一调用方、同一接口、同一个 Idempotency-Key 在 24 小时内只生成一次（重启后也记得）；
        // 任务没能存进图库的图先放在暂存区，`spill` 是它的暂存 id（“重新保存”用）。
        M::up(
            "CREATE TABLE idempotency (
            key          TEXT PRIMARY KEY,  -- 调用方|接口|Idempotency-Key
            request_hash TEXT NOT NULL,     -- 请求参数与参考图内容的 SHA-256：同一个键配不同的请求是 409
            result       TEXT NOT NULL,     -- 生成的图：[{\"id\",\"revised_prompt\"}]（JSON）
            created_at   INTEGER NOT NULL   -- Unix 秒；24 小时后作废
        );
        ALTER TABLE jobs ADD COLUMN spill TEXT;",
        ),
        // 批量：批次有名称、可暂停、可置顶、可整批移除；每个任务有自己展开后的提示词、参考图与变量值
        // （为空时用批次的，兼容以前的任务）。图片记下模型随图说的话；上传记下原来的文件名。
        M::up(
            "ALTER TABLE batches ADD COLUMN name TEXT NOT NULL DEFAULT '';
        ALTER TABLE batches ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE batches ADD COLUMN priority INTEGER NOT NULL DEFAULT 0; -- 置顶的先后：越大越靠前
        ALTER TABLE batches ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN prompt TEXT;
        ALTER TABLE jobs ADD COLUMN reference_ids TEXT;  -- JSON 数组
        ALTER TABLE jobs ADD COLUMN variables TEXT;      -- JSON 对象：变量名 → 值
        ALTER TABLE images ADD COLUMN model_text TEXT;
        ALTER TABLE uploads ADD COLUMN filename TEXT;
        CREATE INDEX jobs_batch ON jobs(batch_id, idx);
        CREATE INDEX batches_created ON batches(created_at DESC);",
        ),
        // 提示词库（可带变量的模板，软删除）；图片可以收藏；任务记下展开前的模板（“保存为提示词”用）。
        M::up(
            "CREATE TABLE prompts (
            id           TEXT PRIMARY KEY,
            title        TEXT NOT NULL,
            content      TEXT NOT NULL,
            category     TEXT NOT NULL DEFAULT '',
            tags         TEXT NOT NULL DEFAULT '[]',  -- JSON 数组
            favourite    INTEGER NOT NULL DEFAULT 0,
            use_count    INTEGER NOT NULL DEFAULT 0,
            last_used_at TEXT,
            created_at   TEXT NOT NULL,
            updated_at   TEXT NOT NULL,
            deleted_at   TEXT,
            variables    TEXT NOT NULL DEFAULT '{}',  -- JSON 对象：变量名 → 保存的值
            example      INTEGER NOT NULL DEFAULT 0   -- 第一次启动时放进来的示例
        );
        CREATE INDEX prompts_content ON prompts(content);
        ALTER TABLE images ADD COLUMN favourite INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN template TEXT;",
        ),
        // 用量：每小时 × 调用方 × 上游 × 模型 × 密钥一行（超过保留期的按天合并，`period` 为日期）。
        M::up(
            "CREATE TABLE usage (
            period      TEXT NOT NULL,     -- 'YYYY-MM-DDTHH'（UTC 的小时）或 'YYYY-MM-DD'（按天合并后）
            client      TEXT NOT NULL,
            upstream    TEXT NOT NULL,
            model       TEXT NOT NULL,
            key_index   INTEGER NOT NULL,  -- 密钥在池里的序号（从 1 起），没有密钥为 0
            requests    INTEGER NOT NULL DEFAULT 0,  -- 上游尝试次数
            images      INTEGER NOT NULL DEFAULT 0,
            failures    TEXT NOT NULL DEFAULT '{}',  -- JSON：错误分类 → 次数
            retries     INTEGER NOT NULL DEFAULT 0,
            fallbacks   INTEGER NOT NULL DEFAULT 0,
            latency     TEXT NOT NULL DEFAULT '[]',  -- JSON：耗时直方图各桶的次数（桶见 usage::LATENCY_BUCKETS_MS）
            bytes_in    INTEGER NOT NULL DEFAULT 0,
            bytes_out   INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (period, client, upstream, model, key_index)
        );",
        ),
        // 联网搜索：批次记下开没开，图记下引用的来源；图的尺寸与请求的不符时记下说明。
        M::up(
            "ALTER TABLE batches ADD COLUMN google_search INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE images ADD COLUMN sources TEXT NOT NULL DEFAULT '[]';  -- JSON：[[标题, 网址], …]
        ALTER TABLE images ADD COLUMN size_note TEXT;",
        ),
    ])
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

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
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

pub fn open(path: &Path) -> Result<Connection, rusqlite_migration::Error> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    migrations().to_latest(&mut conn)?;
    Ok(conn)
}

pub fn insert(conn: &Connection, r: &ImageRecord) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO images (id, root, rel_path, mime, width, height, bytes, prompt, mode, model,
                             aspect_ratio, image_size, upstream, created_at,
                             duration_ms, attempts, reference_ids, model_text, sources, size_note)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
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
            r.size_note
        ],
    )?;
    Ok(())
}

/// 所有记录的（id, 原图绝对路径, 缩略图绝对路径），供启动时核对。
/// 每张图（含回收站里的）的 id、根与相对路径。
pub fn all_paths(conn: &Connection) -> rusqlite::Result<Vec<(String, String, String)>> {
    let mut stmt = conn.prepare("SELECT id, root, rel_path FROM images")?;
    let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    rows.collect()
}

/// 按 id 取记录（包括回收站里的：恢复之前仍可查看）。
pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<ImageRecord>> {
    conn.query_row(
        "SELECT * FROM images WHERE id = ?1",
        [id],
        ImageRecord::from_row,
    )
    .optional()
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
    /// 翻页游标：上一页最后一条的 (created_at, id)。
    pub after: Option<(String, String)>,
    pub limit: u32,
}

/// 按时间倒序列出符合条件的记录（键集分页：翻页时不会因新增图片而重复或漏掉）。
pub fn list(conn: &Connection, f: &ListFilter) -> rusqlite::Result<Vec<ImageRecord>> {
    let escaped = f
        .search
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let (after_time, after_id) = f.after.clone().unzip();
    let mut stmt = conn.prepare_cached(
        "SELECT * FROM images
         WHERE (deleted_at IS NOT NULL) = ?1
           AND (?2 = '' OR prompt LIKE '%' || ?2 || '%' ESCAPE '\\')
           AND (?3 IS NULL OR mode = ?3)
           AND (?4 IS NULL OR created_at >= ?4)
           AND (?5 IS NULL OR created_at < ?5)
           AND (?6 IS NULL OR (created_at, id) < (?6, ?7))
           AND (?9 IS NULL OR favourite = ?9)
         ORDER BY created_at DESC, id DESC
         LIMIT ?8",
    )?;
    let rows = stmt.query_map(
        params![
            f.trash,
            escaped,
            f.mode,
            f.from,
            f.to,
            after_time,
            after_id,
            f.limit,
            f.favourite
        ],
        ImageRecord::from_row,
    )?;
    rows.collect()
}

/// 收藏或取消收藏一张图，返回改到的行数（没有这张图时为 0）。
pub fn set_favourite(conn: &Connection, id: &str, favourite: bool) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE images SET favourite = ?2 WHERE id = ?1",
        params![id, favourite],
    )
}

/// 把这些图片移入回收站（已在回收站的不变），返回实际移入的条数。
pub fn trash(conn: &Connection, ids: &[String], now: &str) -> rusqlite::Result<usize> {
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
pub fn restore(conn: &Connection, ids: &[String]) -> rusqlite::Result<usize> {
    let mut n = 0;
    for id in ids {
        n += conn.execute(
            "UPDATE images SET deleted_at = NULL WHERE id = ?1 AND deleted_at IS NOT NULL",
            [id],
        )?;
    }
    Ok(n)
}

/// 删除回收站里的全部记录（在一个事务里），返回被删除的记录，调用方随后删文件。
pub fn purge_trash(conn: &mut Connection) -> rusqlite::Result<Vec<ImageRecord>> {
    let tx = conn.transaction()?;
    let removed = {
        let mut stmt = tx.prepare("SELECT * FROM images WHERE deleted_at IS NOT NULL")?;
        let rows = stmt.query_map([], ImageRecord::from_row)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    tx.execute("DELETE FROM images WHERE deleted_at IS NOT NULL", [])?;
    tx.commit()?;
    Ok(removed)
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

pub fn get_upload(conn: &Connection, id: &str) -> rusqlite::Result<Option<UploadRecord>> {
    conn.query_row(
        "SELECT id, root, rel_path, mime, bytes, created_at, filename FROM uploads WHERE id = ?1",
        [id],
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
    .optional()
}

/// 写入（或覆盖：文件丢失后重新保存时）一条上传记录。
pub fn put_upload(conn: &Connection, u: &UploadRecord) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO uploads (id, root, rel_path, mime, bytes, created_at, filename)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
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
pub fn roots(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt =
        conn.prepare("SELECT DISTINCT root FROM images UNION SELECT DISTINCT root FROM uploads")?;
    let rows = stmt.query_map([], |row| row.get(0))?;
    rows.collect()
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
        let r = ImageRecord {
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
        insert(&conn, &r).unwrap();
        assert_eq!(get(&conn, "a").unwrap(), Some(r.clone()));
        assert_eq!(get(&conn, "b").unwrap(), None);
        // 主键防止同一张图写两行。
        assert!(insert(&conn, &r).is_err());
    }

    fn record(id: &str, prompt: &str, mode: &str, created_at: &str) -> ImageRecord {
        ImageRecord {
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
        let mut conn = open(&dir.path().join("t.db")).unwrap();
        for (id, prompt, mode, t) in [
            ("a", "红色的猫", "text2img", "2026-01-01T00:00:00.000Z"),
            ("b", "蓝色的狗", "img2img", "2026-01-02T00:00:00.000Z"),
            ("c", "100% 纯_色", "text2img", "2026-01-03T00:00:00.000Z"),
            ("d", "红色的花", "text2img", "2026-01-03T00:00:00.000Z"),
        ] {
            insert(&conn, &record(id, prompt, mode, t)).unwrap();
        }
        let all = ListFilter {
            limit: 10,
            ..Default::default()
        };
        // 时间倒序；同一时刻按 id 倒序。
        assert_eq!(ids(list(&conn, &all).unwrap()), ["d", "c", "b", "a"]);
        // 键集分页：第二页从第一页最后一条之后开始。
        let first = list(
            &conn,
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
        assert_eq!(ids(list(&conn, &second).unwrap()), ["b", "a"]);
        // 搜索：% 与 _ 按字面匹配，不是通配符。
        let search = |q: &str| ListFilter {
            search: q.into(),
            ..all.clone()
        };
        assert_eq!(ids(list(&conn, &search("红色")).unwrap()), ["d", "a"]);
        assert_eq!(ids(list(&conn, &search("%")).unwrap()), ["c"]);
        assert_eq!(ids(list(&conn, &search("纯_")).unwrap()), ["c"]);
        assert!(list(&conn, &search("_色的猫")).unwrap().is_empty());
        // 模式与日期。
        let img2img = ListFilter {
            mode: Some("img2img".into()),
            ..all.clone()
        };
        assert_eq!(ids(list(&conn, &img2img).unwrap()), ["b"]);
        let jan2 = ListFilter {
            from: Some("2026-01-02T00:00:00.000Z".into()),
            to: Some("2026-01-03T00:00:00.000Z".into()),
            ..all.clone()
        };
        assert_eq!(ids(list(&conn, &jan2).unwrap()), ["b"]);
        // 回收站：移入、恢复、清空。
        let trash_view = ListFilter {
            trash: true,
            ..all.clone()
        };
        assert_eq!(
            trash(&conn, &["a".into(), "b".into(), "zz".into()], "t").unwrap(),
            2
        );
        assert_eq!(
            trash(&conn, &["a".into()], "t").unwrap(),
            0,
            "已在回收站的不重复计数"
        );
        assert_eq!(ids(list(&conn, &all).unwrap()), ["d", "c"]);
        assert_eq!(ids(list(&conn, &trash_view).unwrap()), ["b", "a"]);
        assert_eq!(restore(&conn, &["b".into()]).unwrap(), 1);
        assert_eq!(ids(list(&conn, &all).unwrap()), ["d", "c", "b"]);
        let purged = purge_trash(&mut conn).unwrap();
        assert_eq!(ids(purged), ["a"]);
        assert_eq!(get(&conn, "a").unwrap(), None);
        assert!(list(&conn, &trash_view).unwrap().is_empty());
    }
}
