//! 提示词库的 SQL（表结构见 `storage::db` 的迁移 10）。

use crate::types::prompt::{PromptQuery, PromptSort, SavedPrompt};
use rusqlite::{params, Connection, OptionalExtension, Row};

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("字符串的列表与映射总能序列化")
}

fn prompt_of(r: &Row<'_>) -> rusqlite::Result<SavedPrompt> {
    let parse = |text: String| serde_json::from_str(&text).unwrap_or_default();
    Ok(SavedPrompt {
        id: r.get("id")?,
        title: r.get("title")?,
        content: r.get("content")?,
        category: r.get("category")?,
        tags: parse(r.get("tags")?),
        favourite: r.get("favourite")?,
        use_count: r.get("use_count")?,
        last_used_at: r.get("last_used_at")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
        deleted_at: r.get("deleted_at")?,
        variables: serde_json::from_str(&r.get::<_, String>("variables")?).unwrap_or_default(),
        example: r.get("example")?,
    })
}

pub fn insert(conn: &Connection, p: &SavedPrompt) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO prompts (id, title, content, category, tags, favourite, use_count, last_used_at,
                              created_at, updated_at, deleted_at, variables, example)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            p.id,
            p.title,
            p.content,
            p.category,
            json(&p.tags),
            p.favourite,
            p.use_count,
            p.last_used_at,
            p.created_at,
            p.updated_at,
            p.deleted_at,
            json(&p.variables),
            p.example
        ],
    )?;
    Ok(())
}

/// 改写一条（标题、内容、分类、标签、收藏、变量、用量），返回改到的行数。
pub fn update(conn: &Connection, p: &SavedPrompt) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE prompts SET title = ?2, content = ?3, category = ?4, tags = ?5, favourite = ?6,
                use_count = ?7, last_used_at = ?8, updated_at = ?9, variables = ?10
         WHERE id = ?1",
        params![
            p.id,
            p.title,
            p.content,
            p.category,
            json(&p.tags),
            p.favourite,
            p.use_count,
            p.last_used_at,
            p.updated_at,
            json(&p.variables)
        ],
    )
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<SavedPrompt>> {
    conn.query_row("SELECT * FROM prompts WHERE id = ?1", [id], prompt_of)
        .optional()
}

/// 不在回收站里、内容完全相同的一条（导入时合并用）。
pub fn find_by_content(conn: &Connection, content: &str) -> rusqlite::Result<Option<SavedPrompt>> {
    conn.query_row(
        "SELECT * FROM prompts WHERE content = ?1 AND deleted_at IS NULL ORDER BY created_at LIMIT 1",
        [content],
        prompt_of,
    )
    .optional()
}

fn like_pattern(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// 一页：收藏的在前，再按排序方式；`offset` 条之后的 `limit` 条。
pub fn list(
    conn: &Connection,
    q: &PromptQuery,
    offset: u32,
    limit: u32,
) -> rusqlite::Result<Vec<SavedPrompt>> {
    let order = match q.sort {
        PromptSort::Recent => "COALESCE(last_used_at, '') DESC, updated_at DESC",
        PromptSort::Uses => "use_count DESC, COALESCE(last_used_at, '') DESC",
        PromptSort::Name => "title COLLATE NOCASE ASC",
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT * FROM prompts
         WHERE (deleted_at IS NOT NULL) = ?1
           AND (?2 = '' OR title LIKE '%' || ?2 || '%' ESCAPE '\\'
                OR content LIKE '%' || ?2 || '%' ESCAPE '\\'
                OR tags LIKE '%' || ?2 || '%' ESCAPE '\\')
           AND (?3 IS NULL OR category = ?3)
           AND (?4 IS NULL OR EXISTS (SELECT 1 FROM json_each(prompts.tags) WHERE value = ?4))
           AND (?5 IS NULL OR favourite = ?5)
         ORDER BY favourite DESC, {order}, id
         LIMIT ?6 OFFSET ?7"
    ))?;
    let rows = stmt.query_map(
        params![
            q.trash,
            like_pattern(q.search.trim()),
            q.category.as_deref().filter(|c| !c.is_empty()),
            q.tag.as_deref().filter(|t| !t.is_empty()),
            q.favourite,
            limit,
            offset
        ],
        prompt_of,
    )?;
    rows.collect()
}

/// 库里（不在回收站的）全部分类与标签，各自排好序。
pub fn facets(conn: &Connection) -> rusqlite::Result<(Vec<String>, Vec<String>)> {
    let mut categories = conn.prepare_cached(
        "SELECT DISTINCT category FROM prompts WHERE deleted_at IS NULL AND category != '' ORDER BY category",
    )?;
    let categories = categories
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut tags = conn.prepare_cached(
        "SELECT DISTINCT j.value FROM prompts, json_each(prompts.tags) j
         WHERE prompts.deleted_at IS NULL ORDER BY j.value",
    )?;
    let tags = tags
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok((categories, tags))
}

/// 输入时的候选：标题或内容以它开头的在前，其次包含它的；同样匹配时收藏的、用得多的在前。
pub fn suggest(conn: &Connection, text: &str, limit: u32) -> rusqlite::Result<Vec<SavedPrompt>> {
    let mut stmt = conn.prepare_cached(
        "SELECT * FROM prompts
         WHERE deleted_at IS NULL
           AND (title LIKE '%' || ?1 || '%' ESCAPE '\\' OR content LIKE '%' || ?1 || '%' ESCAPE '\\')
         ORDER BY (title LIKE ?1 || '%' ESCAPE '\\' OR content LIKE ?1 || '%' ESCAPE '\\') DESC,
                  favourite DESC, use_count DESC, updated_at DESC
         LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![like_pattern(text), limit], prompt_of)?;
    rows.collect()
}

/// 移入回收站（`at` 为时刻）或恢复（`at` 为空），返回改到的行数。
pub fn set_deleted(conn: &Connection, id: &str, at: Option<&str>) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE prompts SET deleted_at = ?2 WHERE id = ?1",
        params![id, at],
    )
}

/// 用了一次：次数加一、记下时刻；返回改到的行数（回收站里的不算）。
pub fn record_use(conn: &Connection, id: &str, now: &str) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE prompts SET use_count = use_count + 1, last_used_at = ?2
         WHERE id = ?1 AND deleted_at IS NULL",
        params![id, now],
    )
}

/// 不在回收站里的全部（导出用），按创建先后。
pub fn all_active(conn: &Connection) -> rusqlite::Result<Vec<SavedPrompt>> {
    let mut stmt = conn
        .prepare_cached("SELECT * FROM prompts WHERE deleted_at IS NULL ORDER BY created_at, id")?;
    let rows = stmt.query_map([], prompt_of)?;
    rows.collect()
}

/// 表里一共几行（含回收站）：0 表示库从没用过。
pub fn count_all(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COUNT(*) FROM prompts", [], |r| r.get(0))
}
