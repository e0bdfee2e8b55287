//! 网关的统一输入与输出：无论来自 `/v1` 还是工作台，都先变成 `ImageRequest`。

use crate::types::{AspectRatio, AttemptInfo, ImageSize};
use bytes::Bytes;

/// 一张输入（参考）图像。
#[derive(Clone)]
pub struct InputImage {
    pub mime: String,
    pub data: Bytes,
}

/// 生成或编辑一张图像的请求。
#[derive(Clone)]
pub struct ImageRequest {
    pub prompt: String,
    /// 参考图；非空即为图生图。
    pub references: Vec<InputImage>,
    pub aspect_ratio: AspectRatio,
    pub image_size: ImageSize,
    /// 指定模型；为空时使用上游配置的模型。
    pub model: Option<String>,
    /// 随机种子（Gemini 的 `generationConfig.seed`）：同一批的几张各用各的，得到不同的图；演示上游按它作画。
    pub seed: Option<i32>,
    /// 进度回报（工作台用；`/v1` 留空）。
    pub progress: super::Progress,
    /// 联网搜索：Gemini 请求里加上 `tools: [{"google_search": {}}]`。
    pub google_search: bool,
    /// 谁在用（用量记账）：工作台为“工作台”，`/v1` 为密钥的用途说明，否则为“匿名”。
    pub client: String,
    /// 请求者的账号（用量按账号记；没有账号时为空）。
    pub account: String,
}

impl ImageRequest {
    /// 一个没有参考图、没有种子与进度回报、不联网搜索的请求；其余用下面的方法补上。
    /// 各入口都经 `crate::admit` 得到它（工作台的批次在任务开始时由 `jobs` 用同样的方法建）。
    pub fn new(
        prompt: String,
        aspect_ratio: AspectRatio,
        image_size: ImageSize,
        model: Option<String>,
        client: impl Into<String>,
    ) -> Self {
        Self {
            prompt,
            references: Vec::new(),
            aspect_ratio,
            image_size,
            model,
            seed: None,
            progress: super::Progress::default(),
            google_search: false,
            client: client.into(),
            account: String::new(),
        }
    }

    /// 记在这个账号名下（用量与账号的额度）。
    pub fn on_behalf_of(mut self, account: String) -> Self {
        self.account = account;
        self
    }

    /// 随机种子。
    pub fn seeded(mut self, seed: i32) -> Self {
        self.seed = Some(seed);
        self
    }

    /// 进度回报。
    pub fn reporting(mut self, progress: super::Progress) -> Self {
        self.progress = progress;
        self
    }

    /// 联网搜索。
    pub fn grounded(mut self, google_search: bool) -> Self {
        self.google_search = google_search;
        self
    }
}

/// 上游返回并解码成功的一张图像。
#[derive(Clone)]
pub struct GeneratedImage {
    pub mime: String,
    pub data: Bytes,
    /// 模型随图返回的文字。
    pub text: Option<String>,
    /// 提供这张图的上游名称。
    pub upstream: String,
    /// 实际提供这张图的模型（按模型路由、改用备选模型之后的）。
    pub model: String,
    /// 到成功为止的每一次尝试（由策略流水线填写）。
    pub attempts: Vec<AttemptInfo>,
    /// 联网搜索时模型引用的来源（标题, 网址）。
    pub sources: Vec<(String, String)>,
    /// 图的实际尺寸与请求的不符时的说明（由策略流水线填写），例如“要 2048×2048，收到 1024×1024”。
    pub size_mismatch: Option<String>,
    /// 上游一次返回了几张正式图时，没有当作结果的那几张（结果是像素最多的那张）：已经付过钱，另存进图库。
    pub extras: Vec<InputImage>,
}

impl GeneratedImage {
    /// 图像的标准 base64。上游给的 base64 原文不留：一张 20 MB 的图，原文是另外 27 MB，
    /// 而大多数调用方（`url`、工作台）根本用不到它；`b64_json` 从磁盘上的文件边读边编码（见 `openai::images`）。
    pub fn base64(&self) -> String {
        base64_simd::STANDARD.encode_to_string(&self.data)
    }
}

// 图像字节不进日志：Debug 只给出长度。
impl std::fmt::Debug for InputImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InputImage({}, {} 字节)", self.mime, self.data.len())
    }
}

impl std::fmt::Debug for ImageRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageRequest")
            .field("prompt_chars", &self.prompt.chars().count())
            .field("references", &self.references)
            .field("aspect_ratio", &self.aspect_ratio)
            .field("image_size", &self.image_size)
            .field("model", &self.model)
            .finish()
    }
}

impl std::fmt::Debug for GeneratedImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "GeneratedImage({}, {} 字节, 上游 {})",
            self.mime,
            self.data.len(),
            self.upstream
        )
    }
}
