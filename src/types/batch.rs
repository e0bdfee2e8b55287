//! 批量：一次提交展开成哪些任务——提示词里的变量 `{名字}`、多条提示词、批量改图（每张参考图一个任务）。
//!
//! 浏览器（变量面板按提示词里出现的变量一行一个）与服务器（展开、校验、预览）用同一份代码。
//!
//! 变量的写法：`{风格}` 是变量；`{{` 与 `}}` 是字面的花括号。变量名由字母、数字、`_`、`-` 组成（可以是汉字），
//! 最多 30 个字符；不合这个写法的花括号（例如 `{"a": 1}`）按字面保留，所以原来带花括号的提示词照样能用。

use super::limits::{
    validate_request, RequestError, Surface, MAX_PROMPT_CHARS, MAX_REFERENCES, MAX_VARIABLES,
    MAX_VARIABLE_VALUES, MAX_VARIABLE_VALUE_CHARS,
};
use super::shape::{AspectRatio, ImageSize};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// 批量改图（逐张）时最多几张参考图。
pub const MAX_EACH_REFERENCES: usize = 64;
/// 批次名称最多几个字符。
pub const MAX_BATCH_NAME_CHARS: usize = 100;
/// 变量名最多几个字符。
const MAX_VARIABLE_NAME_CHARS: usize = 30;
/// 没给名称时，用第一条提示词的前几个字。
const DEFAULT_NAME_CHARS: usize = 20;

/// 多个变量怎样组合。
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VariableMode {
    /// 全部组合（笛卡尔积）：2 个风格 × 2 个季节 = 4 条。
    #[default]
    Cartesian,
    /// 按位组合：第 i 个值放在一起；每个变量的值要一样多。
    Zip,
}

/// 参考图怎样用。
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceMode {
    /// 全部参考图放进同一个请求（原来的行为）。
    #[default]
    Together,
    /// 批量改图：每张参考图一个任务，每个任务只带它自己那一张。
    Each,
}

/// 一次提交为什么不能展开（中文说明，点名是哪个变量）。
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error("提示词里的变量 {{{0}}} 没有给值（要写字面的花括号，请用 {{{{ 和 }}}}）")]
    Unfilled(String),
    #[error("变量“{0}”没有出现在提示词里（在提示词里写 {{{0}}} 来使用它）")]
    Unused(String),
    #[error("变量“{0}”没有值（每行写一个值）")]
    EmptyValues(String),
    #[error("变量名“{0}”不合规：只能用字母、数字、_ 与 -，最多 30 个字符")]
    BadName(String),
    #[error("按位组合时每个变量的值要一样多：{0}")]
    UnequalZip(String),
    #[error("这次会生成 {total} 张，超过了每次最多 {max} 张的上限（limits.max_batch_jobs）")]
    TooMany { total: u64, max: u32 },
    #[error("批量改图（逐张）需要至少一张参考图")]
    EachNeedsReferences,
    #[error("局部修改（mask）改的是第一张参考图：要有参考图，且不能逐张改图")]
    MaskNeedsTheImage,
    #[error("批量改图（逐张）最多 {MAX_EACH_REFERENCES} 张参考图，收到 {0} 张")]
    TooManyEach(usize),
    #[error("批次名称最多 {MAX_BATCH_NAME_CHARS} 个字符（收到 {0} 个）")]
    NameTooLong(usize),
    #[error("变量最多 {MAX_VARIABLES} 个，收到 {0} 个")]
    TooManyVariables(usize),
    #[error("变量“{name}”的值最多 {MAX_VARIABLE_VALUES} 个，收到 {got} 个")]
    TooManyValues { name: String, got: usize },
    #[error(
        "变量“{name}”的值太长了：一个值最多 {MAX_VARIABLE_VALUE_CHARS} 个字符（收到 {got} 个）"
    )]
    ValueTooLong { name: String, got: usize },
    #[error("填入变量“{name}”后提示词太长了：最多 {MAX_PROMPT_CHARS} 个字符，这样填会有 {got} 个")]
    RenderedTooLong { name: String, got: usize },
}

/// 模板的一段：文字，或一个变量。
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(String),
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

/// 把模板切成文字与变量。
fn parse(template: &str) -> Vec<Piece> {
    let chars: Vec<char> = template.chars().collect();
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if (c == '{' && next == Some('{')) || (c == '}' && next == Some('}')) {
            text.push(c);
            i += 2;
            continue;
        }
        if c == '{' {
            let name_len = chars[i + 1..]
                .iter()
                .take_while(|c| is_name_char(**c))
                .count();
            let close = i + 1 + name_len;
            if name_len > 0 && name_len <= MAX_VARIABLE_NAME_CHARS && chars.get(close) == Some(&'}')
            {
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Var(chars[i + 1..close].iter().collect()));
                i = close + 1;
                continue;
            }
        }
        text.push(c);
        i += 1;
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    pieces
}

/// 把一段文字写成不含变量的模板（花括号都变成字面的）：`/v1` 的异步任务借工作台的批次运行时用。
pub fn literal(text: &str) -> String {
    text.replace('{', "{{").replace('}', "}}")
}

/// 模板里用到的变量名，按第一次出现的先后，不重复。
pub fn placeholders(template: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for piece in parse(template) {
        if let Piece::Var(name) = piece {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names
}

fn render(pieces: &[Piece], values: &BTreeMap<String, String>) -> String {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.as_str(),
            Piece::Var(name) => values.get(name).map(String::as_str).unwrap_or(""),
        })
        .collect()
}

/// 填入变量之后的字符数（不真的拼出来：先数，超了就不必占那么多内存）。
fn rendered_chars(pieces: &[Piece], values: &BTreeMap<String, String>) -> usize {
    pieces
        .iter()
        .map(|p| match p {
            Piece::Text(t) => t.chars().count(),
            Piece::Var(name) => values.get(name).map_or(0, |v| v.chars().count()),
        })
        .fold(0usize, usize::saturating_add)
}

/// 出现次数 × 长度最大的那个变量：提示词填得太长时点它的名。
fn longest_contribution(pieces: &[Piece], values: &BTreeMap<String, String>) -> String {
    let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
    for piece in pieces {
        if let Piece::Var(name) = piece {
            let len = values.get(name).map_or(0, |v| v.chars().count());
            *by_name.entry(name).or_default() += len;
        }
    }
    by_name
        .into_iter()
        .max_by_key(|(_, len)| *len)
        .map(|(name, _)| name.to_string())
        .unwrap_or_default()
}

/// 展开后的一个任务。
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedJob {
    pub prompt: String,
    /// 这个任务用的变量值（变量名 → 值）。
    pub variables: BTreeMap<String, String>,
    pub reference_ids: Vec<String>,
    /// 用了变量时，展开前的模板（卡片上“保存为提示词”用）；没用变量时为空。
    pub template: Option<String>,
}

/// 一次提交展开的结果。
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub name: String,
    /// 展开后的提示词（不重复计张数与参考图），按生成的先后。
    pub prompts: Vec<String>,
    pub jobs: Vec<PlannedJob>,
}

/// `/api/expand_prompt` 的回答：展开后的提示词与一共会生成几张。
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExpandPreview {
    pub prompts: Vec<String>,
    pub total: u32,
}

/// 变量输入框里的文字（变量名 → 一行一个值）→ 这些变量各自的值（没填的为空）。
pub fn values_by_line(
    raw: &BTreeMap<String, String>,
    names: &[String],
) -> BTreeMap<String, Vec<String>> {
    names
        .iter()
        .map(|name| {
            let values = raw
                .get(name)
                .map(|v| v.lines().map(str::to_string).collect())
                .unwrap_or_default();
            (name.clone(), values)
        })
        .collect()
}

/// 一条模板展开成的（提示词, 变量值, 模板, 每条几张）。
type Expansion<'a> = (String, BTreeMap<String, String>, &'a str, u32);

/// 工作台一次提交（一个批次）：每条展开后的提示词生成 `count` 张，每张是一个独立的任务（卡片）。
/// 除 `prompt` 外的字段都可省略；批量的字段（变量、多条提示词、逐张改图）见本模块。拼错的字段名是 400。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    #[serde(default)]
    pub prompt: String,
    /// 多条提示词；非空时代替 `prompt`。每项是一条文字（每条 `count` 张），或
    /// `{"text": "…", "count": 3}` / `{"prompt_id": "库里的 id", "count": 2}`（这一条自己的张数）。
    #[serde(default)]
    pub prompts: Vec<PromptItem>,
    /// 变量名 → 值（一个值一张）：填进提示词里的 `{变量名}`。
    #[serde(default)]
    pub variables: std::collections::BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub variable_mode: VariableMode,
    #[serde(default)]
    pub reference_mode: ReferenceMode,
    /// 批次名称；空为提示词的开头。
    #[serde(default)]
    pub name: String,
    /// 每条提示词（逐张改图时每张参考图）几张，1–16。
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub aspect_ratio: AspectRatio,
    #[serde(default)]
    pub image_size: ImageSize,
    /// 模型；空为上游配置的默认模型。
    #[serde(default)]
    pub model: String,
    /// 参考图 id（图库图片 id 或上传 id）。
    #[serde(default)]
    pub references: Vec<String>,
    /// 联网搜索（Google 搜索接地；只有支持它的模型可以开）。
    #[serde(default)]
    pub google_search: bool,
    /// 局部修改：蒙版（上传的 PNG 的 id，与第一张参考图一样大，完全透明的像素是要改的地方）。
    /// 模型画回来的图按它贴回第一张参考图，区域外的像素不变；重试照样用它。
    #[serde(default)]
    pub mask: Option<String>,
}

fn one() -> u32 {
    1
}

/// `prompts` 的一项：一条文字（旧写法，张数用请求的 `count`），或带自己张数的一条。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PromptItem {
    Text(String),
    Entry(PromptEntry),
}

/// 带自己张数的一条：`text` 或 `prompt_id`（提示词库里的一条，服务器收下时换成它的内容）二选一。
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptEntry {
    #[serde(default)]
    pub text: String,
    #[serde(default)]
    pub prompt_id: Option<String>,
    /// 这一条几张（1–16）；省略时用请求的 `count`。
    #[serde(default)]
    pub count: Option<u32>,
}

impl PromptItem {
    /// 这一条的文字（`prompt_id` 还没换成内容时为空）。
    pub fn text(&self) -> &str {
        match self {
            PromptItem::Text(t) => t,
            PromptItem::Entry(e) => &e.text,
        }
    }

    /// 这一条几张：自己的，或请求的 `count`。
    pub fn count_or(&self, default: u32) -> u32 {
        match self {
            PromptItem::Entry(PromptEntry { count: Some(n), .. }) => *n,
            _ => default,
        }
    }
}

impl From<&str> for PromptItem {
    fn from(text: &str) -> Self {
        PromptItem::Text(text.to_string())
    }
}

impl From<String> for PromptItem {
    fn from(text: String) -> Self {
        PromptItem::Text(text)
    }
}

impl Default for SubmitRequest {
    fn default() -> Self {
        Self {
            prompt: String::new(),
            prompts: Vec::new(),
            variables: Default::default(),
            variable_mode: Default::default(),
            reference_mode: Default::default(),
            name: String::new(),
            count: 1,
            aspect_ratio: Default::default(),
            image_size: Default::default(),
            model: String::new(),
            references: Vec::new(),
            google_search: false,
            mask: None,
        }
    }
}

/// 校验一次提交并展开成任务；`max_jobs` 是 `limits.max_batch_jobs`。出错时什么都不产生。
pub fn plan(req: &SubmitRequest, max_jobs: u32) -> Result<Plan, BatchError> {
    let counted = templates_of(req);
    check_prompts_and_references(req, &counted)?;
    let templates: Vec<&str> = counted.iter().map(|(t, _)| *t).collect();
    let counts: Vec<u32> = counted.iter().map(|(_, n)| *n).collect();
    let name = req.name.trim();
    let name_chars = name.chars().count();
    if name_chars > MAX_BATCH_NAME_CHARS {
        return Err(BatchError::NameTooLong(name_chars));
    }

    let variables = clean_variables(&req.variables)?;
    let parsed: Vec<Vec<Piece>> = templates.iter().map(|t| parse(t)).collect();
    let used: Vec<Vec<String>> = templates.iter().map(|t| placeholders(t)).collect();
    check_variables(&variables, &used, req.variable_mode)?;

    // 先数一共多少张，超了就不必展开（1000 × 1000 的变量不会先占满内存）。
    let total = count_jobs(req, &used, &counts, &variables);
    if total > max_jobs as u64 {
        return Err(BatchError::TooMany {
            total,
            max: max_jobs,
        });
    }

    let prompts = expand_prompts(req, &counted, &parsed, &used, &variables)?;
    let jobs = planned_jobs(req, &prompts, total);
    let name = if name.is_empty() {
        default_name(templates[0])
    } else {
        name.to_string()
    };
    Ok(Plan {
        name,
        prompts: prompts.into_iter().map(|(p, _, _, _)| p).collect(),
        jobs,
    })
}

/// 要展开的模板与各自的张数：多条提示词里非空的那些（去掉两边空白）；一条都没有时是 `prompt` 本身。
fn templates_of(req: &SubmitRequest) -> Vec<(&str, u32)> {
    if req.prompts.iter().any(|p| !p.text().trim().is_empty()) {
        req.prompts
            .iter()
            .map(|p| (p.text().trim(), p.count_or(req.count)))
            .filter(|(t, _)| !t.is_empty())
            .collect()
    } else {
        vec![(req.prompt.as_str(), req.count)]
    }
}

/// 提示词、张数、参考图数的基本检查（逐张模式下每个任务只带一张参考图），
/// 再按参考图的用法查参考图的张数。
fn check_prompts_and_references(
    req: &SubmitRequest,
    templates: &[(&str, u32)],
) -> Result<(), BatchError> {
    let per_job_references = match req.reference_mode {
        ReferenceMode::Together => req.references.len(),
        ReferenceMode::Each => 1,
    };
    for (t, count) in templates {
        validate_request(Surface::Studio, t, *count, per_job_references)?;
    }
    match req.reference_mode {
        ReferenceMode::Together if req.references.len() > MAX_REFERENCES => {
            return Err(RequestError::TooManyReferences {
                got: req.references.len(),
            }
            .into())
        }
        ReferenceMode::Each if req.references.is_empty() => {
            return Err(BatchError::EachNeedsReferences)
        }
        ReferenceMode::Each if req.references.len() > MAX_EACH_REFERENCES => {
            return Err(BatchError::TooManyEach(req.references.len()))
        }
        _ => {}
    }
    if req.mask.is_some()
        && (req.references.is_empty() || req.reference_mode == ReferenceMode::Each)
    {
        return Err(BatchError::MaskNeedsTheImage);
    }
    Ok(())
}

/// 变量与提示词对得上：给了值的变量都出现在提示词里，提示词里的变量都给了值；
/// 按位组合时每个变量的值一样多。`used` 是每条模板用到的变量。
fn check_variables(
    variables: &BTreeMap<String, Vec<String>>,
    used: &[Vec<String>],
    mode: VariableMode,
) -> Result<(), BatchError> {
    for name in variables.keys() {
        if !used.iter().any(|u| u.contains(name)) {
            return Err(BatchError::Unused(name.clone()));
        }
    }
    for name in used.iter().flatten() {
        if !variables.contains_key(name) {
            return Err(BatchError::Unfilled(name.clone()));
        }
    }
    if mode == VariableMode::Zip {
        let lengths: Vec<(String, usize)> = variables
            .iter()
            .map(|(k, v)| (k.clone(), v.len()))
            .collect();
        if lengths.windows(2).any(|w| w[0].1 != w[1].1) {
            let detail = lengths
                .iter()
                .map(|(k, n)| format!("{k} 有 {n} 个"))
                .collect::<Vec<_>>()
                .join("，");
            return Err(BatchError::UnequalZip(detail));
        }
    }
    Ok(())
}

/// 一共会生成几张（只数不展开，溢出时取上限）：各模板的取值组合数之和 × 每条提示词的张数
/// （逐张改图时再乘参考图数）。
fn count_jobs(
    req: &SubmitRequest,
    used: &[Vec<String>],
    counts: &[u32],
    variables: &BTreeMap<String, Vec<String>>,
) -> u64 {
    let per_reference_set = match req.reference_mode {
        ReferenceMode::Together => 1,
        ReferenceMode::Each => req.references.len() as u64,
    };
    used.iter()
        .zip(counts)
        .map(|(names, count)| {
            let expansions = match req.variable_mode {
                VariableMode::Cartesian => names
                    .iter()
                    .map(|n| variables[n].len() as u64)
                    .fold(1u64, u64::saturating_mul),
                VariableMode::Zip => names.first().map_or(1, |n| variables[n].len() as u64),
            };
            expansions.saturating_mul(*count as u64 * per_reference_set)
        })
        .fold(0u64, u64::saturating_add)
}

/// 每条模板按变量的取值组合展开成提示词（按生成的先后），每条都做提示词的检查；
/// 填入变量后太长时点名贡献最多的变量。
fn expand_prompts<'a>(
    req: &SubmitRequest,
    templates: &[(&'a str, u32)],
    parsed: &[Vec<Piece>],
    used: &[Vec<String>],
    variables: &BTreeMap<String, Vec<String>>,
) -> Result<Vec<Expansion<'a>>, BatchError> {
    let mut prompts: Vec<Expansion> = Vec::new();
    for ((pieces, names), &(template, count)) in parsed.iter().zip(used).zip(templates) {
        for values in combinations(names, variables, req.variable_mode) {
            let got = rendered_chars(pieces, &values);
            if got > MAX_PROMPT_CHARS {
                let name = longest_contribution(pieces, &values);
                return Err(BatchError::RenderedTooLong { name, got });
            }
            let prompt = render(pieces, &values);
            let prompt = validate_request(Surface::Studio, &prompt, count, 1)?;
            prompts.push((prompt, values, template, count));
        }
    }
    Ok(prompts)
}

/// 展开后的每条提示词 × 每组参考图（一起用时一组，逐张改图时每张一组）× `count` 张，每张一个任务。
fn planned_jobs(req: &SubmitRequest, prompts: &[Expansion<'_>], total: u64) -> Vec<PlannedJob> {
    let mut jobs = Vec::with_capacity(total as usize);
    for (prompt, values, template, count) in prompts {
        let template = (!values.is_empty()).then(|| template.trim().to_string());
        let reference_sets: Vec<Vec<String>> = match req.reference_mode {
            ReferenceMode::Together => vec![req.references.clone()],
            ReferenceMode::Each => req.references.iter().map(|r| vec![r.clone()]).collect(),
        };
        for references in reference_sets {
            for _ in 0..*count {
                jobs.push(PlannedJob {
                    prompt: prompt.clone(),
                    variables: values.clone(),
                    reference_ids: references.clone(),
                    template: template.clone(),
                });
            }
        }
    }
    jobs
}

/// 去掉值两边的空白与空行；变量名不合规、一个值都没有时报错。
fn clean_variables(
    raw: &BTreeMap<String, Vec<String>>,
) -> Result<BTreeMap<String, Vec<String>>, BatchError> {
    if raw.len() > MAX_VARIABLES {
        return Err(BatchError::TooManyVariables(raw.len()));
    }
    let mut clean = BTreeMap::new();
    for (name, values) in raw {
        let name = name.trim();
        let chars = name.chars().count();
        if chars == 0 || chars > MAX_VARIABLE_NAME_CHARS || !name.chars().all(is_name_char) {
            return Err(BatchError::BadName(name.to_string()));
        }
        if values.len() > MAX_VARIABLE_VALUES {
            return Err(BatchError::TooManyValues {
                name: name.to_string(),
                got: values.len(),
            });
        }
        if let Some(got) = values
            .iter()
            .map(|v| v.chars().count())
            .find(|n| *n > MAX_VARIABLE_VALUE_CHARS)
        {
            return Err(BatchError::ValueTooLong {
                name: name.to_string(),
                got,
            });
        }
        let values: Vec<String> = values
            .iter()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if values.is_empty() {
            return Err(BatchError::EmptyValues(name.to_string()));
        }
        clean.insert(name.to_string(), values);
    }
    Ok(clean)
}

/// 一条模板用到的变量的全部取值组合。笛卡尔积按变量在模板里出现的先后，最后一个变化最快。
fn combinations(
    names: &[String],
    variables: &BTreeMap<String, Vec<String>>,
    mode: VariableMode,
) -> Vec<BTreeMap<String, String>> {
    match mode {
        VariableMode::Zip => {
            let n = names.first().map_or(1, |n| variables[n].len());
            (0..n)
                .map(|i| {
                    names
                        .iter()
                        .map(|name| (name.clone(), variables[name][i].clone()))
                        .collect()
                })
                .collect()
        }
        VariableMode::Cartesian => {
            let mut all = vec![BTreeMap::new()];
            for name in names {
                all = all
                    .into_iter()
                    .flat_map(|partial: BTreeMap<String, String>| {
                        variables[name].iter().map(move |value| {
                            let mut next = partial.clone();
                            next.insert(name.clone(), value.clone());
                            next
                        })
                    })
                    .collect();
            }
            all
        }
    }
}

/// 默认的批次名：第一条提示词（变量未展开）的前 20 个字。
fn default_name(prompt: &str) -> String {
    let mut name: String = prompt.chars().take(DEFAULT_NAME_CHARS).collect();
    if prompt.chars().count() > DEFAULT_NAME_CHARS {
        name.push('…');
    }
    name
}

/// 一个批次的概况（`/api/list_batches` 与工作台的批次标题）。
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchView {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub total: u32,
    pub done: u32,
    /// 失败、中断与保存失败的（需要人处理的）。
    pub failed: u32,
    pub cancelled: u32,
    pub running: u32,
    pub queued: u32,
    pub paused: bool,
}

/// 一页批次；`next_cursor` 为空表示没有更多了。
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BatchPage {
    pub items: Vec<BatchView>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(prompt: &str) -> SubmitRequest {
        SubmitRequest {
            prompt: prompt.into(),
            ..SubmitRequest::default()
        }
    }

    fn vars(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn placeholders_are_found_in_order_and_braces_can_be_literal() {
        assert_eq!(
            placeholders("{季节}的{风格}小屋，{季节}"),
            vec!["季节", "风格"]
        );
        assert!(placeholders("字面的 {{风格}} 与 JSON {\"a\": 1} 与 { 空 }").is_empty());
        let pieces = parse("{{风格}} 与 }} 与 {a");
        assert_eq!(render(&pieces, &BTreeMap::new()), "{风格} 与 } 与 {a");
        let text = "{风格} {{x}} }{";
        assert_eq!(render(&parse(&literal(text)), &BTreeMap::new()), text);
    }

    #[test]
    fn cartesian_and_zip_expansions() {
        let mut req = request("{风格}的{季节}");
        req.variables = vars(&[("风格", &["油画", "水彩"]), ("季节", &["春", "冬"])]);
        req.count = 2;
        let plan = plan(&req, 256).unwrap();
        assert_eq!(
            plan.prompts,
            vec!["油画的春", "油画的冬", "水彩的春", "水彩的冬"]
        );
        assert_eq!(plan.jobs.len(), 8);
        assert_eq!(
            plan.jobs[1].prompt, "油画的春",
            "同一条提示词的几张挨在一起"
        );
        assert_eq!(plan.jobs[2].variables["季节"], "冬");
        assert_eq!(plan.name, "{风格}的{季节}");

        req.variable_mode = VariableMode::Zip;
        let plan = super::plan(&req, 256).unwrap();
        assert_eq!(plan.prompts, vec!["油画的春", "水彩的冬"]);
        assert_eq!(plan.jobs.len(), 4);
    }

    #[test]
    fn multi_prompt_and_batch_edit() {
        let mut req = request("");
        req.prompts = vec!["一只猫".into(), "  ".into(), "{物}在雨中".into()];
        req.variables = vars(&[("物", &["狗", "车", ""])]);
        req.references = vec!["a".into(), "b".into(), "c".into()];
        req.reference_mode = ReferenceMode::Each;
        let plan = plan(&req, 256).unwrap();
        assert_eq!(plan.prompts, vec!["一只猫", "狗在雨中", "车在雨中"]);
        assert_eq!(plan.jobs.len(), 9, "3 条提示词 × 3 张参考图");
        assert_eq!(plan.jobs[0].reference_ids, vec!["a"]);
        assert_eq!(plan.jobs[2].reference_ids, vec!["c"]);
    }

    #[test]
    fn every_bad_input_names_the_problem() {
        let check = |req: &SubmitRequest, expected: BatchError| {
            assert_eq!(plan(req, 256).unwrap_err(), expected);
        };
        check(&request("{风格}的猫"), BatchError::Unfilled("风格".into()));
        let mut req = request("猫");
        req.variables = vars(&[("风格", &["油画"])]);
        check(&req, BatchError::Unused("风格".into()));
        let mut req = request("{风格}的猫");
        req.variables = vars(&[("风格", &[" ", ""])]);
        check(&req, BatchError::EmptyValues("风格".into()));
        let mut req = request("{风格}的{季节}");
        req.variables = vars(&[("风格", &["油画", "水彩"]), ("季节", &["春"])]);
        req.variable_mode = VariableMode::Zip;
        assert!(
            matches!(plan(&req, 256), Err(BatchError::UnequalZip(d)) if d.contains("季节 有 1 个"))
        );
        let mut req = request("{a}{b}");
        let many: Vec<String> = (0..100).map(|i| i.to_string()).collect();
        req.variables = [("a".to_string(), many.clone()), ("b".to_string(), many)].into();
        check(
            &req,
            BatchError::TooMany {
                total: 10_000,
                max: 256,
            },
        );
        let mut req = request("改成水彩");
        req.reference_mode = ReferenceMode::Each;
        check(&req, BatchError::EachNeedsReferences);
        req.references = (0..65).map(|i| i.to_string()).collect();
        check(&req, BatchError::TooManyEach(65));
        let mut req = request("猫");
        req.name = "名".repeat(101);
        check(&req, BatchError::NameTooLong(101));
        let mut req = request("猫");
        req.count = 0;
        assert!(matches!(plan(&req, 256), Err(BatchError::Request(_))));
    }

    #[test]
    fn an_expansion_bomb_is_refused_before_it_is_built() {
        // 2,666 个 {a} 与一个 8,000 字的值：拼出来会有两千多万字，先数就拒绝了，点名变量 a。
        let mut req = request(&"{a}".repeat(2666));
        req.variables = vars(&[("a", &["字".repeat(MAX_VARIABLE_VALUE_CHARS).as_str()])]);
        assert_eq!(
            plan(&req, 256).unwrap_err(),
            BatchError::RenderedTooLong {
                name: "a".into(),
                got: 2666 * MAX_VARIABLE_VALUE_CHARS,
            }
        );
        let mut req = request("{a}{b}");
        req.variables = vars(&[("a", &["短"]), ("b", &["长".repeat(7999).as_str()])]);
        assert!(plan(&req, 256).is_ok(), "正好 8000 字");
        req.variables = vars(&[("a", &["短短"]), ("b", &["长".repeat(7999).as_str()])]);
        assert!(matches!(
            plan(&req, 256),
            Err(BatchError::RenderedTooLong { name, got: 8001 }) if name == "b"
        ));
        let mut req = request("{a}");
        req.variables = vars(&[("a", &["长".repeat(MAX_VARIABLE_VALUE_CHARS + 1).as_str()])]);
        assert!(matches!(
            plan(&req, 256),
            Err(BatchError::ValueTooLong { name, .. }) if name == "a"
        ));
        let mut req = request("{a}");
        req.variables = [(
            "a".to_string(),
            vec!["x".to_string(); MAX_VARIABLE_VALUES + 1],
        )]
        .into();
        assert!(matches!(
            plan(&req, 100_000),
            Err(BatchError::TooManyValues { got, .. }) if got == MAX_VARIABLE_VALUES + 1
        ));
        let mut req = request("猫");
        req.variables = (0..=MAX_VARIABLES)
            .map(|i| (format!("v{i}"), vec!["x".to_string()]))
            .collect();
        assert_eq!(
            plan(&req, 256).unwrap_err(),
            BatchError::TooManyVariables(MAX_VARIABLES + 1)
        );
    }

    #[test]
    fn the_default_name_is_the_start_of_the_prompt() {
        let req = request(&"长".repeat(30));
        assert_eq!(
            plan(&req, 256).unwrap().name,
            format!("{}…", "长".repeat(20))
        );
    }
}
