//! 提示词栏正在编辑的这一次提交（`Draft`：各字段的信号，及由它们得出的请求），提交的模式，
//! 浏览器记住的那部分选择（`Prefs`，读写在 `prefs.rs`），以及水合之前用户已经填好的值（`EarlyDraft`，#42）。
//! 提示词栏、批量面板都从这里取。

use super::Reference;
use crate::app::early;
use crate::types::batch::{placeholders, values_by_line, PromptItem, ReferenceMode, VariableMode};
use crate::types::catalogue::ModelInfo;
use crate::types::prompt::{PromptDraft, SavedPrompt};
use crate::types::{AspectRatio, ImageSize, SubmitRequest};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// 提交的模式。
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// 一条提示词（可含变量）。
    #[default]
    Single,
    /// 多条提示词，一行一条。
    Multi,
    /// 批量改图：每张参考图一个任务。
    Each,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Single, Mode::Multi, Mode::Each];

    pub fn label(self) -> &'static str {
        match self {
            Mode::Single => "单条",
            Mode::Multi => "多条（一行一条）",
            Mode::Each => "批量改图（逐张）",
        }
    }

    /// 单选框的 `value`。
    pub fn value(self) -> &'static str {
        match self {
            Mode::Single => "single",
            Mode::Multi => "multi",
            Mode::Each => "each",
        }
    }

    pub fn from_value(value: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.value() == value)
    }
}

/// 正在编辑的这一次提交。
#[derive(Clone, Copy)]
pub struct Draft {
    pub prompt: RwSignal<String>,
    pub count: RwSignal<u32>,
    pub aspect: RwSignal<AspectRatio>,
    pub size: RwSignal<ImageSize>,
    pub model: RwSignal<String>,
    pub references: RwSignal<Vec<Reference>>,
    pub mode: RwSignal<Mode>,
    /// 变量名 → 输入框里的文字（一行一个值）。提示词里已不再出现的变量不提交。
    pub variables: RwSignal<BTreeMap<String, String>>,
    pub variable_mode: RwSignal<VariableMode>,
    pub name: RwSignal<String>,
    /// 联网搜索（只有支持它的模型显示这个开关）。
    pub google_search: RwSignal<bool>,
    /// 从提示词库填进来的那条（id, 内容）：原样提交时记一次使用。
    pub picked: RwSignal<Option<(String, String)>>,
    /// “将生成 N 张”的预览（批量时由服务器展开，见 `batch_panel`）。
    pub preview: RwSignal<Preview>,
}

/// 预览：没有提示词时为空；批量时是服务器展开的结果（或它说的原因）。
pub type Preview = Option<Result<crate::types::batch::ExpandPreview, String>>;

impl Draft {
    pub fn new(references: RwSignal<Vec<Reference>>) -> Self {
        Self {
            prompt: RwSignal::new(String::new()),
            count: RwSignal::new(1),
            aspect: RwSignal::new(AspectRatio::default()),
            size: RwSignal::new(ImageSize::default()),
            model: RwSignal::new(String::new()),
            references,
            mode: RwSignal::new(Mode::default()),
            variables: RwSignal::new(BTreeMap::new()),
            variable_mode: RwSignal::new(VariableMode::default()),
            name: RwSignal::new(String::new()),
            google_search: RwSignal::new(false),
            picked: RwSignal::new(None),
            preview: RwSignal::new(None),
        }
    }

    /// 将生成几张：有预览时按预览（批量展开后的总数），否则就是张数。
    pub fn total(&self) -> u32 {
        match self.preview.get() {
            Some(Ok(p)) => p.total,
            _ => self.count.get(),
        }
    }

    /// 填入库里的一条：提示词，模板的话还有变量的默认值（一行一个）。
    pub fn fill(&self, p: &SavedPrompt) {
        self.prompt.set(p.content.clone());
        if !p.variables.is_empty() {
            self.variables.set(
                p.variables
                    .iter()
                    .map(|(k, v)| (k.clone(), v.join("\n")))
                    .collect(),
            );
            if self.mode.get_untracked() == Mode::Multi {
                self.mode.set(Mode::Single);
            }
        }
        self.picked.set(Some((p.id.clone(), p.content.clone())));
    }

    /// 现在的提示词与变量，作为“保存为提示词”的初稿。
    pub fn as_prompt_draft(&self) -> PromptDraft {
        let content = self.prompt.get_untracked();
        let used = placeholders(&content);
        let variables = self
            .variables
            .with_untracked(|raw| values_by_line(raw, &used));
        PromptDraft {
            content,
            variables,
            ..Default::default()
        }
    }

    /// 提示词里出现的变量名（按先后）。
    pub fn detected(&self) -> Vec<String> {
        self.prompt.with(|p| placeholders(p))
    }

    /// 这次提交是不是批量的（有变量、多条或逐张）：是的话预览要问服务器展开。
    pub fn is_batch(&self) -> bool {
        self.mode.get() != Mode::Single || !self.detected().is_empty()
    }

    /// 要提交的请求（读取时会订阅各字段，预览据此刷新）。
    pub fn request(&self) -> SubmitRequest {
        let text = self.prompt.get();
        let mode = self.mode.get();
        let detected = placeholders(&text);
        let variables = self.variables.with(|raw| values_by_line(raw, &detected));
        let (prompt, prompts) = match mode {
            Mode::Multi => (String::new(), text.lines().map(PromptItem::from).collect()),
            _ => (text, Vec::new()),
        };
        SubmitRequest {
            prompt,
            prompts,
            variables,
            variable_mode: self.variable_mode.get(),
            reference_mode: if mode == Mode::Each {
                ReferenceMode::Each
            } else {
                ReferenceMode::Together
            },
            name: self.name.get(),
            count: self.count.get(),
            aspect_ratio: self.aspect.get(),
            image_size: self.size.get(),
            model: self.model.get(),
            references: self
                .references
                .with(|r| r.iter().map(|r| r.id.clone()).collect()),
            google_search: self.google_search.get(),
            // 局部修改在大图里提交（还没有画笔界面时只能经接口）。
            mask: None,
        }
    }

    pub fn prefs(&self) -> Prefs {
        Prefs {
            count: self.count.get_untracked(),
            aspect_ratio: self.aspect.get_untracked(),
            image_size: self.size.get_untracked(),
            model: self.model.get_untracked(),
            mode: self.mode.get_untracked(),
        }
    }

    /// 水合之后：先用记下的偏好，再用水合前用户填好的值覆盖（动过的控件不被偏好盖掉）。
    pub fn apply(&self, early: EarlyDraft, prefs: Option<Prefs>, models: &[ModelInfo]) {
        if let Some(p) = prefs {
            self.restore(p, models);
        }
        if let Some(text) = early.prompt {
            self.prompt.set(text);
        }
        if let Some(mode) = early.mode {
            self.mode.set(mode);
        }
        if let Some(count) = early.count {
            self.count
                .set(count.clamp(1, crate::types::limits::MAX_COUNT));
        }
        if let Some(model) = early.model {
            self.model.set(model);
        }
        if let Some(aspect) = early.aspect {
            self.aspect.set(aspect);
        }
        if let Some(size) = early.size {
            self.size.set(size);
        }
        if let Some(on) = early.google_search {
            self.google_search.set(on);
        }
    }

    fn restore(&self, p: Prefs, models: &[ModelInfo]) {
        self.count
            .set(p.count.clamp(1, crate::types::limits::MAX_COUNT));
        self.aspect.set(p.aspect_ratio);
        self.size.set(p.image_size);
        // 记下的模型已不再提供时用默认。
        if p.model.is_empty() || models.iter().any(|m| m.id == p.model) {
            self.model.set(p.model);
        }
        self.mode.set(p.mode);
    }
}

/// 记在浏览器里的选择：上次提交用的张数、宽高比、分辨率、模型与模式。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prefs {
    pub count: u32,
    pub aspect_ratio: AspectRatio,
    pub image_size: ImageSize,
    pub model: String,
    pub mode: Mode,
}

/// 水合之前用户在提示词栏里已经填好、选好的值（#42）；没动过的控件是 `None`（交给偏好或默认值）。
/// 必须在提示词栏的视图水合之前读（水合会按信号的初值重设这些控件），水合之后用 [`Draft::apply`] 放进信号。
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EarlyDraft {
    pub prompt: Option<String>,
    pub mode: Option<Mode>,
    pub count: Option<u32>,
    pub model: Option<String>,
    pub aspect: Option<AspectRatio>,
    pub size: Option<ImageSize>,
    pub google_search: Option<bool>,
}

impl EarlyDraft {
    /// 读提示词栏（`form.prompt-bar`）里各控件此刻的值；服务端渲染时全是 `None`。
    pub fn read() -> Self {
        let select = |name: &str, default: &str| {
            early::changed_value(
                &format!("form.prompt-bar select[name=\"{name}\"]"),
                name,
                default,
            )
        };
        Self {
            prompt: early::value("form.prompt-bar textarea[name=\"prompt\"]")
                .filter(|t| !t.is_empty()),
            mode: early::changed_value(
                "form.prompt-bar input[name=\"mode\"]:checked",
                "mode",
                Mode::default().value(),
            )
            .and_then(|v| Mode::from_value(&v)),
            count: select("count", "1").and_then(|v| v.parse().ok()),
            model: select("model", ""),
            aspect: select("aspect_ratio", AspectRatio::default().as_str())
                .and_then(|v| v.parse().ok()),
            size: select("image_size", ImageSize::default().as_str()).and_then(|v| v.parse().ok()),
            google_search: early::changed_checked(
                "form.prompt-bar input[name=\"google_search\"]",
                "google_search",
                false,
            ),
        }
    }
}
