//! 图库的查询与结果（服务器函数的请求与响应，两端共用）。

use super::attempt::AttemptInfo;
use serde::{Deserialize, Serialize};

/// 每页默认张数与上限。
pub const PAGE_SIZE: u32 = 48;
pub const MAX_PAGE_SIZE: u32 = 200;

/// 图库查询条件；每个字段都可省略。
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GalleryQuery {
    /// 提示词里包含的文字。
    pub search: String,
    /// `text2img`（文生图）或 `img2img`（图生图）；省略为全部。
    pub mode: Option<String>,
    /// 起止时间（RFC 3339，含起不含止）。
    pub from: Option<String>,
    pub to: Option<String>,
    /// true 查看回收站。
    pub trash: bool,
    /// true 只看收藏的（☆）。
    pub favourite: Option<bool>,
    /// 上一页返回的 `next_cursor`；省略为第一页。
    pub cursor: Option<String>,
    /// 每页张数（1–200，默认 48）。
    pub limit: Option<u32>,
    /// true 只看自己的（登录了账号时；“我的”）。
    pub mine: bool,
}

/// 图库里的一张图（列表只给缩略图需要的信息）。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GalleryItem {
    pub id: String,
    pub prompt: String,
    pub mode: String,
    pub width: u32,
    pub height: u32,
    /// RFC 3339，UTC。
    pub created_at: String,
    pub url: String,
    pub thumb_url: String,
    /// 收藏了（☆）。
    #[serde(default)]
    pub favourite: bool,
    /// 生成它的模型（列表视图与详情显示）。
    #[serde(default)]
    pub model: String,
    /// 移入回收站的时间；为空表示未删除。
    pub deleted_at: Option<String>,
    /// 所属的账号（没有账号时为空）。
    #[serde(default)]
    pub owner: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GalleryPage {
    pub items: Vec<GalleryItem>,
    /// 还有下一页时，把它作为 `cursor` 传回来。
    pub next_cursor: Option<String>,
}

/// 一张图的全部参数与尝试记录。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageDetail {
    #[serde(flatten)]
    pub item: GalleryItem,
    /// 实际尺寸与请求的不符时的说明。
    #[serde(default)]
    pub size_note: Option<String>,
    /// 联网搜索时引用的来源（标题, 网址）。
    #[serde(default)]
    pub sources: Vec<(String, String)>,
    pub aspect_ratio: String,
    pub image_size: String,
    pub upstream: String,
    pub mime: String,
    pub bytes: i64,
    pub duration_ms: i64,
    pub attempts: Vec<AttemptInfo>,
    /// 参考图（图生图时）的 id。
    pub reference_ids: Vec<String>,
    /// 模型随图说的话（Gemini 的非思考文字部分）。
    pub model_text: Option<String>,
    /// `check --repair` 标记的文件问题（缺失 / 不完整：文件已挪到存储根的 quarantine/ 下）。
    #[serde(default)]
    pub file_problem: Option<String>,
}

/// 模式的中文名。
pub fn mode_label(mode: &str) -> &'static str {
    match mode {
        "img2img" => "图生图",
        _ => "文生图",
    }
}
