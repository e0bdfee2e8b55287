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
    pub model: String,
    /// 到成功为止的每一次尝试（由策略流水线填写）。
    pub attempts: Vec<AttemptInfo>,
    /// 上游给的标准 base64 原文（Gemini 以 base64 返回图像）。回给调用方时直接用，不必再编码一遍。
    pub base64: Option<String>,
}

impl GeneratedImage {
    /// 图像的标准 base64：有上游原文就直接交出，否则现在编码。
    pub fn take_base64(&mut self) -> String {
        use base64::Engine;
        self.base64
            .take()
            .unwrap_or_else(|| base64::engine::general_purpose::STANDARD.encode(&self.data))
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
