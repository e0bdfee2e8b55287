//! 提示词库：保存的提示词与模板（带变量的默认值），分类、标签、收藏、使用次数、回收站、导入导出，
//! 以及输入时的候选。数据和图片一样在存储根目录下的 SQLite 里（表 `prompts`）。
//!
//! 界面与服务器函数在 `app/prompts`；这里只有做事的函数，谁都可以调用。

mod seeds;
mod store;

use crate::error::ApiError;
use crate::storage::{Storage, StorageError};
use crate::types::prompt::{
    clean_draft, ExportedPrompt, ImportResult, PromptDraft, PromptError, PromptExport, PromptPage,
    PromptQuery, SavedPrompt, EXPORT_VERSION,
};

/// 列表每页默认与最多几条。
const PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 200;
/// 候选最多几条。
const MAX_SUGGESTIONS: u32 = 20;

impl From<PromptError> for ApiError {
    fn from(e: PromptError) -> Self {
        ApiError::InvalidRequest(e.to_string())
    }
}

/// 搜索与候选的文字不超过一条提示词的长度（更长的不可能匹配到任何一条）。
fn check_search_len(field: &str, text: &str) -> Result<(), ApiError> {
    let max = crate::types::limits::MAX_PROMPT_CHARS;
    let got = text.chars().count();
    if got > max {
        return Err(ApiError::InvalidRequest(format!(
            "{field} 最多 {max} 个字符（收到 {got} 个）"
        )));
    }
    Ok(())
}

fn now_string() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// 一页提示词（收藏的在前），附全部分类与标签。`cursor` 是上一页给的 `next_cursor`。
pub async fn list(storage: &Storage, query: PromptQuery) -> Result<PromptPage, ApiError> {
    check_search_len("search", &query.search)?;
    let limit = query.limit.unwrap_or(PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(ApiError::InvalidRequest(format!(
            "limit 必须在 1 到 {MAX_PAGE_SIZE} 之间，收到 {limit}"
        )));
    }
    let offset: u32 = match query.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => c
            .parse()
            .map_err(|_| ApiError::InvalidRequest("翻页游标无效，请从第一页重新加载".into()))?,
    };
    let (mut items, (categories, tags)) = storage
        .with_db(move |c| {
            Ok((
                store::list(c, &query, offset, limit + 1)?,
                store::facets(c)?,
            ))
        })
        .await?;
    let next_cursor = (items.len() > limit as usize).then(|| (offset + limit).to_string());
    items.truncate(limit as usize);
    Ok(PromptPage {
        items,
        next_cursor,
        categories,
        tags,
    })
}

/// 新建（`id` 为空）或更新一条。校验不过时什么都不改。新建的记在 `owner`（账号）名下。
pub async fn save(
    storage: &Storage,
    draft: PromptDraft,
    owner: String,
) -> Result<SavedPrompt, ApiError> {
    let d = clean_draft(draft)?;
    let now = now_string();
    let saved = storage
        .with_db(move |c| {
            let existing = match &d.id {
                Some(id) => match store::get(c, id)? {
                    Some(e) => Some(e),
                    None => return Ok(None),
                },
                None => None,
            };
            let prompt = SavedPrompt {
                id: d.id.clone().unwrap_or_else(new_id),
                title: d.title,
                content: d.content,
                category: d.category,
                tags: d.tags,
                favourite: d.favourite,
                use_count: existing.as_ref().map_or(0, |e| e.use_count),
                last_used_at: existing.as_ref().and_then(|e| e.last_used_at.clone()),
                created_at: existing
                    .as_ref()
                    .map_or_else(|| now.clone(), |e| e.created_at.clone()),
                updated_at: now,
                deleted_at: existing.as_ref().and_then(|e| e.deleted_at.clone()),
                variables: d.variables,
                example: existing.as_ref().is_some_and(|e| e.example),
                owner: existing.as_ref().map_or(owner, |e| e.owner.clone()),
            };
            if existing.is_some() {
                store::update(c, &prompt)?;
            } else {
                store::insert(c, &prompt)?;
            }
            Ok(Some(prompt))
        })
        .await?;
    saved.ok_or(ApiError::NotFound)
}

/// 移入回收站（`trashed = true`）或恢复。别人建的要管理员（见 `Viewer::check_touch`）。
pub async fn set_trashed(
    storage: &Storage,
    viewer: &crate::access::accounts::Viewer,
    id: String,
    trashed: bool,
) -> Result<SavedPrompt, ApiError> {
    let existing = storage
        .with_db({
            let id = id.clone();
            move |c| Ok(store::get(c, &id)?)
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    viewer.check_touch(&existing.owner, "条提示词")?;
    let now = now_string();
    let prompt = storage
        .with_db(move |c| {
            let at = trashed.then_some(now.as_str());
            if store::set_deleted(c, &id, at)? == 0 {
                return Ok(None);
            }
            Ok(store::get(c, &id)?)
        })
        .await?;
    prompt.ok_or(ApiError::NotFound)
}

/// 用了一次（提交了这条提示词）：次数加一，记下时刻。
pub async fn record_use(storage: &Storage, id: String) -> Result<SavedPrompt, ApiError> {
    let now = now_string();
    let prompt = storage
        .with_db(move |c| {
            if store::record_use(c, &id, &now)? == 0 {
                return Ok(None);
            }
            Ok(store::get(c, &id)?)
        })
        .await?;
    prompt.ok_or(ApiError::NotFound)
}

/// 输入时的候选（`text` 两边的空白不算；空的没有候选）。
pub async fn suggest(
    storage: &Storage,
    text: String,
    limit: Option<u32>,
) -> Result<Vec<SavedPrompt>, ApiError> {
    let text = text.trim().to_string();
    if text.is_empty() {
        return Ok(Vec::new());
    }
    check_search_len("text", &text)?;
    let limit = limit.unwrap_or(8).clamp(1, MAX_SUGGESTIONS);
    Ok(storage
        .with_db(move |c| Ok(store::suggest(c, &text, limit)?))
        .await?)
}

fn exported(p: SavedPrompt) -> ExportedPrompt {
    ExportedPrompt {
        title: p.title,
        content: p.content,
        category: p.category,
        tags: p.tags,
        favourite: p.favourite,
        use_count: p.use_count,
        last_used_at: p.last_used_at,
        variables: p.variables,
    }
}

/// 导出不在回收站里的全部提示词。
pub async fn export(storage: &Storage) -> Result<PromptExport, ApiError> {
    let all = storage.with_db(|c| Ok(store::all_active(c)?)).await?;
    Ok(PromptExport {
        version: EXPORT_VERSION,
        prompts: all.into_iter().map(exported).collect(),
    })
}

/// 读导出文件：形状不对时指出是哪个字段（例如 `prompts[3].title`）；整份不合格就一条都不导入。
fn parse_export(data: serde_json::Value) -> Result<Vec<(ExportedPrompt, PromptDraft)>, ApiError> {
    let file: PromptExport = serde_path_to_error::deserialize(data).map_err(|e| {
        let path = e.path().to_string();
        ApiError::InvalidRequest(format!(
            "导入文件的格式不对（{}）：{}",
            if path == "." {
                "最外层".into()
            } else {
                path
            },
            crate::types::error::serde_reason(&e.inner().to_string())
        ))
    })?;
    if file.version != EXPORT_VERSION {
        return Err(ApiError::InvalidRequest(format!(
            "导入文件的版本是 {}，这里只认 {EXPORT_VERSION}",
            file.version
        )));
    }
    file.prompts
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let draft = clean_draft(PromptDraft {
                id: None,
                title: p.title.clone(),
                content: p.content.clone(),
                category: p.category.clone(),
                tags: p.tags.clone(),
                favourite: p.favourite,
                variables: p.variables.clone(),
            })
            .map_err(|e| ApiError::InvalidRequest(format!("导入文件的 prompts[{i}]：{e}")))?;
            Ok((p, draft))
        })
        .collect()
}

/// 导入导出的文件：内容与库里（不在回收站的）某条相同的合并进那一条（标签取并集、收藏取或、
/// 次数取大），其余新增。全部在一个事务里：任何一条出错，一条都不导入。
pub async fn import(storage: &Storage, data: serde_json::Value) -> Result<ImportResult, ApiError> {
    let entries = parse_export(data)?;
    let now = now_string();
    let result = storage
        .with_db(move |c| {
            c.transaction(|tx| {
                let mut result = ImportResult::default();
                for (raw, d) in entries {
                    match store::find_by_content(tx, &d.content)? {
                        Some(mut existing) => {
                            for tag in d.tags {
                                if !existing.tags.contains(&tag) {
                                    existing.tags.push(tag);
                                }
                            }
                            existing.tags.truncate(crate::types::prompt::MAX_TAGS);
                            existing.favourite |= d.favourite;
                            existing.use_count = existing.use_count.max(raw.use_count);
                            existing.last_used_at = existing.last_used_at.max(raw.last_used_at);
                            if existing.category.is_empty() {
                                existing.category = d.category;
                            }
                            if existing.variables.is_empty() {
                                existing.variables = d.variables;
                            }
                            existing.updated_at = now.clone();
                            store::update(tx, &existing)?;
                            result.merged += 1;
                        }
                        None => {
                            store::insert(
                                tx,
                                &SavedPrompt {
                                    id: new_id(),
                                    title: d.title,
                                    content: d.content,
                                    category: d.category,
                                    tags: d.tags,
                                    favourite: d.favourite,
                                    use_count: raw.use_count,
                                    last_used_at: raw.last_used_at,
                                    created_at: now.clone(),
                                    updated_at: now.clone(),
                                    deleted_at: None,
                                    variables: d.variables,
                                    example: false,
                                    owner: String::new(),
                                },
                            )?;
                            result.added += 1;
                        }
                    }
                }
                Ok(result)
            })
        })
        .await?;
    tracing::info!(added = result.added, merged = result.merged, "导入了提示词");
    Ok(result)
}

/// 第一次启动（库里一条都没有过）时放进示例提示词；之后删光了也不再放。
pub async fn seed_if_empty(storage: &Storage) -> Result<(), StorageError> {
    storage
        .with_db(|c| {
            if store::count_all(c)? > 0 {
                return Ok(());
            }
            let now = now_string();
            c.transaction(|tx| {
                for seed in seeds::SEEDS {
                    store::insert(tx, &seed.prompt(new_id(), &now))?;
                }
                Ok::<_, StorageError>(())
            })?;
            tracing::info!(
                count = seeds::SEEDS.len(),
                "提示词库是空的：放进了示例提示词"
            );
            Ok(())
        })
        .await
}

/// 批次里按 id 引用的库内提示词（`prompts` 的 `{"prompt_id": …}`）换成它的内容，并记一次使用。
/// 同时给了 `text`、id 不在库里或在回收站里时 400，什么都不排队（调用方在展开之前调用）。
/// `record_use` 为假时（“将生成 N 张”的预览）不记使用次数。
pub async fn resolve_ids(
    storage: &Storage,
    req: &mut crate::types::SubmitRequest,
    record_use: bool,
) -> Result<(), ApiError> {
    use crate::types::batch::PromptItem;
    let mut ids = Vec::new();
    for item in &req.prompts {
        if let PromptItem::Entry(e) = item {
            if let Some(id) = &e.prompt_id {
                if !e.text.trim().is_empty() {
                    return Err(ApiError::InvalidRequest(format!(
                        "prompts 的一项里 text 与 prompt_id 只能给一个（prompt_id 是“{id}”）"
                    )));
                }
                ids.push(id.clone());
            }
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    // 每一条至少一张：条数超过一批的上限时不必查库（展开时反正会拒绝）。
    let max = crate::types::limits::MAX_LIBRARY_PROMPTS;
    if ids.len() > max {
        return Err(ApiError::InvalidRequest(format!(
            "一次最多引用提示词库里的 {max} 条，收到 {} 条",
            ids.len()
        )));
    }
    let now = now_string();
    let found = storage
        .with_db(move |c| {
            let mut found = Vec::new();
            for id in ids {
                let prompt = store::get(c, &id)?.filter(|p| p.deleted_at.is_none());
                found.push((id, prompt));
            }
            Ok(found)
        })
        .await?;
    for item in &mut req.prompts {
        let PromptItem::Entry(e) = item else { continue };
        let Some(id) = &e.prompt_id else { continue };
        match found
            .iter()
            .find(|(f, _)| f == id)
            .and_then(|(_, p)| p.as_ref())
        {
            Some(p) => e.text = p.content.clone(),
            None => {
                return Err(ApiError::InvalidRequest(format!(
                    "提示词库里没有 id 为“{id}”的提示词（或它在回收站里）"
                )))
            }
        }
    }
    if !record_use {
        return Ok(());
    }
    let used: Vec<String> = found.into_iter().map(|(id, _)| id).collect();
    storage
        .with_db(move |c| {
            for id in &used {
                store::record_use(c, id, &now)?;
            }
            Ok(())
        })
        .await?;
    Ok(())
}
