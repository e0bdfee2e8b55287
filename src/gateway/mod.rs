//! 网关：唯一与上游通信的模块。`/v1` 接口与工作台的服务器函数都调用 `Gateway::generate`。
//!
//! 目前只做最基本的一件事：按优先级取第一个上游、在单次超时内调用一次。
//! 鉴权、限流、并发、重试、回退、熔断等策略将按 DESIGN §5 的顺序写在 `policy` 模块里。

mod error;
mod request;
pub mod upstream;

pub use error::{ErrorClass, GatewayError};
pub use request::{GeneratedImage, ImageRequest, InputImage};

use crate::config::{Config, ConfigHandle, UpstreamConfig, UpstreamKind, DEFAULT_MODEL};
use std::sync::Arc;
use std::time::Duration;

/// 演示上游在上游列表里显示的名字。
pub const DEMO_UPSTREAM_NAME: &str = "演示上游";

#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: ConfigHandle,
    /// 内置演示上游的地址；没有配置上游时使用它。
    demo_base_url: Option<String>,
}

impl Gateway {
    pub fn new(config: ConfigHandle, demo_base_url: Option<String>) -> Self {
        let connect = Duration::from_millis(config.load().timeouts.connect_ms);
        let http = reqwest::Client::builder()
            .connect_timeout(connect)
            .user_agent(concat!("drafting-factory/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("HTTP 客户端的固定参数不会出错");
        Self {
            inner: Arc::new(Inner {
                http,
                config,
                demo_base_url,
            }),
        }
    }

    /// 当前生效的上游列表，按 `priority` 从小到大排序；未配置时为内置演示上游。
    pub fn upstreams(&self, config: &Config) -> Vec<UpstreamConfig> {
        if config.upstreams.is_empty() {
            return self
                .inner
                .demo_base_url
                .iter()
                .map(|base| UpstreamConfig {
                    name: DEMO_UPSTREAM_NAME.into(),
                    kind: UpstreamKind::Gemini,
                    base_url: base.clone(),
                    api_key: String::new(),
                    model: DEFAULT_MODEL.into(),
                    priority: 0,
                })
                .collect();
        }
        let mut list = config.upstreams.clone();
        list.sort_by_key(|u| u.priority);
        list
    }

    /// 生成（或编辑）一张图像。
    pub async fn generate(&self, req: ImageRequest) -> Result<GeneratedImage, GatewayError> {
        if req.prompt.trim().is_empty() {
            return Err(GatewayError::InvalidRequest("提示词不能为空".into()));
        }
        let config = self.inner.config.load_full();
        let chosen = self
            .upstreams(&config)
            .into_iter()
            .next()
            .ok_or(GatewayError::NoUpstream)?;
        let upstream = upstream::build(&chosen)?;
        let secs = config.timeouts.attempt_s;
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(
            Duration::from_secs(secs),
            upstream.generate(&self.inner.http, &req),
        )
        .await
        .unwrap_or_else(|_| {
            Err(GatewayError::Timeout {
                upstream: chosen.name.clone(),
                secs,
            })
        });
        match &result {
            Ok(img) => tracing::info!(
                upstream = %chosen.name,
                bytes = img.data.len(),
                latency_ms = started.elapsed().as_millis() as u64,
                "上游调用成功"
            ),
            Err(e) => tracing::warn!(
                upstream = %chosen.name,
                class = e.class().as_str(),
                latency_ms = started.elapsed().as_millis() as u64,
                "上游调用失败：{e}"
            ),
        }
        result
    }
}
