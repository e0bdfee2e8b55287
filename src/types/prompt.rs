//! 提示词库的类型：保存的提示词（可带变量的模板）、查询、导出文件，以及保存时的上限与校验。

use super::limits::MAX_PROMPT_CHARS;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// 标题最多几个字符。
pub const MAX_TITLE_CHARS: usize = 100;
/// 分类最多几个字符。
pub const MAX_CATEGORY_CHARS: usize = 30;
/// 最多几个标签、每个最多几个字符。
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_CHARS: usize = 30;
/// 模板的每个变量最多保存几个值。
pub const MAX_TEMPLATE_VALUES: usize = 100;
/// 导出文件的版本。
pub const EXPORT_VERSION: u32 = 1;

/// 库里的一条提示词。`variables` 非空时它是模板：变量名 → 保存的默认值（一个值一张）。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPrompt {
    pub id: String,
    pub title: String,
    pub content: String,
    pub category: String,
    pub tags: Vec<String>,
    pub favourite: bool,
    pub use_count: u32,
    pub last_used_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// 在回收站里时为移入的时刻。
    pub deleted_at: Option<String>,
    pub variables: BTreeMap<String, Vec<String>>,
    /// 第一次启动时放进来的示例（可以删）。
    pub example: bool,
    /// 建它的账号（没有账号时为空）：只有他自己或管理员能删。
    #[serde(default)]
    pub owner: String,
}

/// `save_prompt` 的参数：`id` 为空是新建，否则更新那一条。
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PromptDraft {
    pub id: Option<String>,
    pub title: String,
    pub content: String,
    pub category: String,
    pub tags: Vec<String>,
    pub favourite: bool,
    pub variables: BTreeMap<String, Vec<String>>,
}

impl From<&SavedPrompt> for PromptDraft {
    /// 改一条已有的：从它现在的样子开始。
    fn from(p: &SavedPrompt) -> Self {
        Self {
            id: Some(p.id.clone()),
            title: p.title.clone(),
            content: p.content.clone(),
            category: p.category.clone(),
            tags: p.tags.clone(),
            favourite: p.favourite,
            variables: p.variables.clone(),
        }
    }
}

/// 列表的排序。
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptSort {
    /// 最近用过的在前（没用过的按最近修改）。
    #[default]
    Recent,
    /// 用得最多的在前。
    Uses,
    /// 按标题。
    Name,
}

/// `list_prompts` 的查询（都可省略）。收藏的总在前面。
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PromptQuery {
    /// 标题、内容或标签里包含的文字。
    pub search: String,
    pub category: Option<String>,
    pub tag: Option<String>,
    /// true 只看收藏的。
    pub favourite: Option<bool>,
    pub sort: PromptSort,
    /// true 查看回收站。
    pub trash: bool,
    pub cursor: Option<String>,
    /// 每页几条（1–200，默认 50）。
    pub limit: Option<u32>,
}

/// 一页提示词，另附库里（不在回收站的）全部分类与标签，供筛选。
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PromptPage {
    pub items: Vec<SavedPrompt>,
    pub next_cursor: Option<String>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// 导出文件里的一条（没有 id：导入到别的库时重新编号）。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedPrompt {
    /// 可省略：为空时取内容的开头。
    #[serde(default)]
    pub title: String,
    pub content: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub favourite: bool,
    #[serde(default)]
    pub use_count: u32,
    #[serde(default)]
    pub last_used_at: Option<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, Vec<String>>,
}

/// `export_prompts` 的结果，也是 `import_prompts` 收的 `data`。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptExport {
    pub version: u32,
    pub prompts: Vec<ExportedPrompt>,
}

/// 导入的结果：新加了几条，几条与库里内容相同的合并了。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ImportResult {
    pub added: u32,
    pub merged: u32,
}

/// 保存的提示词不合规的原因（中文，点名是哪个字段）。
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    #[error("{field}不能为空")]
    Empty { field: &'static str },
    #[error("{field}最多 {max} 个字符（收到 {got} 个）")]
    TooLong {
        field: String,
        max: usize,
        got: usize,
    },
    #[error("标签最多 {MAX_TAGS} 个（收到 {0} 个）")]
    TooManyTags(usize),
    #[error("模板变量“{0}”{1}")]
    Variable(String, String),
}

fn check_len(field: &str, value: &str, max: usize) -> Result<(), PromptError> {
    let got = value.chars().count();
    if got > max {
        return Err(PromptError::TooLong {
            field: field.to_string(),
            max,
            got,
        });
    }
    Ok(())
}

/// 整理并校验一条要保存的提示词：去掉两边空白、空标签与重复标签；标题为空时取内容的开头。
pub fn clean_draft(mut d: PromptDraft) -> Result<PromptDraft, PromptError> {
    d.content = d.content.trim().to_string();
    if d.content.is_empty() {
        return Err(PromptError::Empty { field: "内容" });
    }
    check_len("内容", &d.content, MAX_PROMPT_CHARS)?;
    d.title = d.title.trim().to_string();
    if d.title.is_empty() {
        d.title = d.content.chars().take(30).collect();
    }
    check_len("标题", &d.title, MAX_TITLE_CHARS)?;
    d.category = d.category.trim().to_string();
    check_len("分类", &d.category, MAX_CATEGORY_CHARS)?;
    let mut tags: Vec<String> = Vec::new();
    for tag in d.tags.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        check_len(&format!("标签“{tag}”"), tag, MAX_TAG_CHARS)?;
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(PromptError::TooManyTags(tags.len()));
    }
    d.tags = tags;
    let used = super::batch::placeholders(&d.content);
    let mut variables = BTreeMap::new();
    for (name, values) in d.variables {
        if !used.contains(&name) {
            return Err(PromptError::Variable(
                name,
                "没有出现在内容里（在内容里写 {变量名} 来使用它）".into(),
            ));
        }
        let values: Vec<String> = values
            .iter()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if values.len() > MAX_TEMPLATE_VALUES {
            return Err(PromptError::Variable(
                name,
                format!("最多保存 {MAX_TEMPLATE_VALUES} 个值"),
            ));
        }
        for v in &values {
            check_len(&format!("变量“{name}”的值"), v, MAX_PROMPT_CHARS)?;
        }
        variables.insert(name, values);
    }
    d.variables = variables;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drafts_are_tidied_and_every_limit_names_its_field() {
        let d = clean_draft(PromptDraft {
            content: "  {风格}的猫  ".into(),
            tags: vec!["动物".into(), " ".into(), "动物".into(), "猫".into()],
            variables: [("风格".to_string(), vec![" 油画 ".to_string(), "".into()])].into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(d.content, "{风格}的猫");
        assert_eq!(d.title, "{风格}的猫");
        assert_eq!(d.tags, vec!["动物", "猫"]);
        assert_eq!(d.variables["风格"], vec!["油画"]);

        let bad = |d: PromptDraft| clean_draft(d).unwrap_err().to_string();
        let base = || PromptDraft {
            content: "猫".into(),
            ..Default::default()
        };
        assert_eq!(bad(PromptDraft::default()), "内容不能为空");
        assert!(bad(PromptDraft {
            title: "题".repeat(101),
            ..base()
        })
        .contains("标题最多 100 个字符（收到 101 个）"));
        assert!(bad(PromptDraft {
            tags: (0..21).map(|i| i.to_string()).collect(),
            ..base()
        })
        .contains("标签最多 20 个"));
        assert!(bad(PromptDraft {
            tags: vec!["长".repeat(31)],
            ..base()
        })
        .contains("最多 30 个字符"));
        assert!(bad(PromptDraft {
            category: "类".repeat(31),
            ..base()
        })
        .contains("分类最多 30 个字符"));
        assert!(bad(PromptDraft {
            content: "字".repeat(MAX_PROMPT_CHARS + 1),
            ..Default::default()
        })
        .contains("内容最多"));
        assert!(bad(PromptDraft {
            variables: [("季节".to_string(), vec!["春".to_string()])].into(),
            ..base()
        })
        .contains("模板变量“季节”没有出现在内容里"));
    }
}
