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
    pub thumb_rel_path: Option<String>,
    pub duration_ms: i64,
    /// 尝试记录（JSON 数组）。
    pub attempts: String,
}

impl ImageRecord {
    pub fn path(&self) -> std::path::PathBuf {
        Path::new(&self.root).join(&self.rel_path)
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
            thumb_rel_path: row.get("thumb_rel_path")?,
            duration_ms: row.get("duration_ms")?,
            attempts: row.get("attempts")?,
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
                             aspect_ratio, image_size, upstream, created_at, thumb_rel_path,
                             duration_ms, attempts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
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
            r.thumb_rel_path,
            r.duration_ms,
            r.attempts
        ],
    )?;
    Ok(())
}

/// 所有记录的（id, 原图绝对路径, 缩略图绝对路径），供启动时核对。
pub fn all_paths(
    conn: &Connection,
) -> rusqlite::Result<Vec<(String, std::path::PathBuf, Option<std::path::PathBuf>)>> {
    let mut stmt = conn.prepare("SELECT id, root, rel_path FROM images")?;
    let rows = stmt.query_map([], |row| {
        let root: String = row.get(1)?;
        let rel: String = row.get(2)?;
        // 缩略图由原图派生：即使崩溃发生在写缩略图记录之前，它也不算孤儿文件。
        let thumb = Path::new(&root).join(thumb_rel_path(&rel));
        Ok((
            row.get::<_, String>(0)?,
            Path::new(&root).join(rel),
            Some(thumb),
        ))
    })?;
    rows.collect()
}

pub fn set_thumbnail(conn: &Connection, id: &str, thumb_rel_path: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE images SET thumb_rel_path = ?2 WHERE id = ?1",
        params![id, thumb_rel_path],
    )?;
    Ok(())
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<ImageRecord>> {
    conn.query_row(
        "SELECT * FROM images WHERE id = ?1 AND deleted_at IS NULL",
        [id],
        ImageRecord::from_row,
    )
    .optional()
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
            thumb_rel_path: None,
            duration_ms: 12,
            attempts: "[]".into(),
        };
        insert(&conn, &r).unwrap();
        assert_eq!(get(&conn, "a").unwrap(), Some(r.clone()));
        assert_eq!(get(&conn, "b").unwrap(), None);
        // 主键防止同一张图写两行。
        assert!(insert(&conn, &r).is_err());
    }
}
