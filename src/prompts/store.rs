//! 提示词库的 SQL（表结构见 `storage::db` 的迁移 10）。

use crate::storage::sql::{params, Db, DbError, Dialect, Row};
use crate::types::prompt::{PromptQuery, PromptSort, SavedPrompt};

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("字符串的列表与映射总能序列化")
}

fn prompt_of(r: &Row) -> Result<SavedPrompt, DbError> {
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
        variables: serde_json::from_str(&r.get::<String>("variables")?).unwrap_or_default(),
        example: r.get("example")?,
        owner: r.get("account")?,
    })
}

pub fn insert(conn: &mut Db<'_>, p: &SavedPrompt) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO prompts (id, title, content, category, tags, favourite, use_count, last_used_at,
                              created_at, updated_at, deleted_at, variables, example, account)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
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
            p.example,
            p.owner
        ],
    )?;
    Ok(())
}

/// 改写一条（标题、内容、分类、标签、收藏、变量、用量），返回改到的行数。
pub fn update(conn: &mut Db<'_>, p: &SavedPrompt) -> Result<usize, DbError> {
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

pub fn get(conn: &mut Db<'_>, id: &str) -> Result<Option<SavedPrompt>, DbError> {
    conn.query_opt(
        "SELECT * FROM prompts WHERE id = ?1",
        params![id],
        prompt_of,
    )
}

/// 不在回收站里、内容完全相同的一条（导入时合并用）。
pub fn find_by_content(conn: &mut Db<'_>, content: &str) -> Result<Option<SavedPrompt>, DbError> {
    conn.query_opt(
        "SELECT * FROM prompts WHERE content = ?1 AND deleted_at IS NULL ORDER BY created_at LIMIT 1",
        params![content],
        prompt_of,
    )
}

fn like_pattern(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// 一页：收藏的在前，再按排序方式；`offset` 条之后的 `limit` 条。
pub fn list(
    conn: &mut Db<'_>,
    q: &PromptQuery,
    offset: u32,
    limit: u32,
) -> Result<Vec<SavedPrompt>, DbError> {
    let order = match q.sort {
        PromptSort::Recent => "COALESCE(last_used_at, '') DESC, updated_at DESC",
        PromptSort::Uses => "use_count DESC, COALESCE(last_used_at, '') DESC",
        PromptSort::Name => "lower(title) ASC",
    };
    // 标签存成 JSON 数组：按带引号的 JSON 字符串找，`"猫"` 不会匹配到标签“小猫”。
    let has_tag = match conn.dialect() {
        Dialect::Sqlite => "instr(tags, ?4) > 0",
        Dialect::Postgres => "strpos(tags, ?4) > 0",
    };
    conn.query(
        &format!(
            "SELECT * FROM prompts
         WHERE (deleted_at IS NOT NULL) = ?1
           AND (?2 = '' OR title LIKE '%' || ?2 || '%' ESCAPE '\\'
                OR content LIKE '%' || ?2 || '%' ESCAPE '\\'
                OR tags LIKE '%' || ?2 || '%' ESCAPE '\\')
           AND (CAST(?3 AS TEXT) IS NULL OR category = ?3)
           AND (CAST(?4 AS TEXT) IS NULL OR {has_tag})
           AND (CAST(?5 AS BIGINT) IS NULL OR favourite = ?5)
         ORDER BY favourite DESC, {order}, id
         LIMIT ?6 OFFSET ?7"
        ),
        params![
            q.trash,
            like_pattern(q.search.trim()),
            q.category.as_deref().filter(|c| !c.is_empty()),
            q.tag.as_deref().filter(|t| !t.is_empty()).map(|t| json(&t)),
            q.favourite,
            limit,
            offset
        ],
        prompt_of,
    )
}

/// 库里（不在回收站的）全部分类与标签，各自排好序。
pub fn facets(conn: &mut Db<'_>) -> Result<(Vec<String>, Vec<String>), DbError> {
    let categories = conn.query(
        "SELECT DISTINCT category FROM prompts WHERE deleted_at IS NULL AND category != '' ORDER BY category",
        params![],
        |r| r.get(0),
    )?;
    let mut tags = std::collections::BTreeSet::new();
    for text in conn.query(
        "SELECT DISTINCT tags FROM prompts WHERE deleted_at IS NULL",
        params![],
        |r| r.get::<String>(0),
    )? {
        tags.extend(serde_json::from_str::<Vec<String>>(&text).unwrap_or_default());
    }
    Ok((categories, tags.into_iter().collect()))
}

/// 输入时的候选：标题或内容以它开头的在前，其次包含它的；同样匹配时收藏的、用得多的在前。
pub fn suggest(conn: &mut Db<'_>, text: &str, limit: u32) -> Result<Vec<SavedPrompt>, DbError> {
    conn.query(
        "SELECT * FROM prompts
         WHERE deleted_at IS NULL
           AND (title LIKE '%' || ?1 || '%' ESCAPE '\\' OR content LIKE '%' || ?1 || '%' ESCAPE '\\')
         ORDER BY (title LIKE ?1 || '%' ESCAPE '\\' OR content LIKE ?1 || '%' ESCAPE '\\') DESC,
                  favourite DESC, use_count DESC, updated_at DESC
         LIMIT ?2",
        params![like_pattern(text), limit],
        prompt_of,
    )
}

/// 移入回收站（`at` 为时刻）或恢复（`at` 为空），返回改到的行数。
pub fn set_deleted(conn: &mut Db<'_>, id: &str, at: Option<&str>) -> Result<usize, DbError> {
    conn.execute(
        "UPDATE prompts SET deleted_at = ?2 WHERE id = ?1",
        params![id, at],
    )
}

/// 用了一次：次数加一、记下时刻；返回改到的行数（回收站里的不算）。
pub fn record_use(conn: &mut Db<'_>, id: &str, now: &str) -> Result<usize, DbError> {
    conn.execute(
        "UPDATE prompts SET use_count = use_count + 1, last_used_at = ?2
         WHERE id = ?1 AND deleted_at IS NULL",
        params![id, now],
    )
}

/// 不在回收站里的全部（导出用），按创建先后。
pub fn all_active(conn: &mut Db<'_>) -> Result<Vec<SavedPrompt>, DbError> {
    conn.query(
        "SELECT * FROM prompts WHERE deleted_at IS NULL ORDER BY created_at, id",
        params![],
        prompt_of,
    )
}

/// 表里一共几行（含回收站）：0 表示库从没用过。
pub fn count_all(conn: &mut Db<'_>) -> Result<i64, DbError> {
    conn.query_one("SELECT COUNT(*) FROM prompts", params![], |r| r.get(0))
}
