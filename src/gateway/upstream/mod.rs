//! 上游适配器：每种协议方言一个实现，都藏在 `Upstream` 这一个 trait 后面。
//! 网关之外的代码不直接访问上游。

pub mod gemini;

use super::{GatewayError, GeneratedImage, ImageRequest};
use crate::config::{UpstreamConfig, UpstreamKind};
use futures::future::BoxFuture;

/// 一个已配置好的上游。一次调用就是一次真实的 HTTP 尝试，不含重试。
pub trait Upstream: Send + Sync {
    fn name(&self) -> &str;

    fn generate<'a>(
        &'a self,
        http: &'a reqwest::Client,
        req: &'a ImageRequest,
    ) -> BoxFuture<'a, Result<GeneratedImage, GatewayError>>;
}

/// 按配置里的 `kind` 构造对应方言的适配器。
pub fn build(config: &UpstreamConfig) -> Result<Box<dyn Upstream>, GatewayError> {
    match config.kind {
        UpstreamKind::Gemini => Ok(Box::new(gemini::GeminiUpstream::new(config))),
        other => Err(GatewayError::InvalidRequest(format!(
            "上游“{}”的类型 {other:?} 尚未支持",
            config.name
        ))),
    }
}
