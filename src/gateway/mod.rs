//! 网关：唯一与上游通信的模块。`/v1` 接口与工作台的服务器函数都调用 `Gateway::generate`。
//!
//! 策略（并发、超时、重试、回退、熔断）的顺序写在 `policy/mod.rs`；
//! 各协议方言的适配器在 `upstream/`。

mod error;
pub mod policy;
pub mod progress;
mod request;
pub mod upstream;

pub use error::{ErrorClass, Failed, GatewayError};
pub use progress::{Progress, ProgressEvent};
pub use request::{GeneratedImage, ImageRequest, InputImage};

use crate::config::{Config, ConfigHandle, UpstreamConfig, UpstreamKind, DEFAULT_MODEL};
use policy::circuit_breaker::CircuitBreakers;
use policy::concurrency::ConcurrencyLimit;
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
    breakers: CircuitBreakers,
    /// 全局在途上限（按当时的上限与排队数建立；设置改变后新请求用新的，在途的照旧归还到旧的）。
    global_limit: crate::config::Rebuilt<(u32, u32), ConcurrencyLimit>,
    /// 各上游自己的并发上限（按名称与上限值建立，上限改变时换新的）。
    upstream_limits:
        std::sync::Mutex<std::collections::HashMap<(String, u32), Arc<ConcurrencyLimit>>>,
}

impl Gateway {
    pub fn new(config: ConfigHandle, demo_base_url: Option<String>) -> Self {
        let current = config.load();
        let connect = Duration::from_millis(current.timeouts.connect_ms);
        let http = reqwest::Client::builder()
            .connect_timeout(connect)
            // 不跟随重定向：上游（或它前面的代理）回 3xx 时，密钥绝不能被带到另一台主机上（见 `upstream::http`）。
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("drafting-factory/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("HTTP 客户端的固定参数不会出错");
        drop(current);
        Self {
            inner: Arc::new(Inner {
                http,
                config,
                demo_base_url,
                breakers: CircuitBreakers::default(),
                global_limit: Default::default(),
                upstream_limits: Default::default(),
            }),
        }
    }

    /// 当前生效的上游列表，按 `priority` 从小到大排序；未配置时为内置演示上游。
    pub fn upstreams(&self, config: &Config) -> Vec<UpstreamConfig> {
        self.inner.upstreams(config)
    }

    /// 对一个上游做一次真实的小请求（设置页的“测试连接”），不重试、不回退，返回耗时。
    pub async fn probe(&self, upstream: &UpstreamConfig) -> Result<Duration, GatewayError> {
        let adapter = upstream::build(upstream, self.inner.max_response_bytes())?;
        let request = ImageRequest {
            prompt: "连接测试：白底上一个蓝色圆形".into(),
            references: Vec::new(),
            aspect_ratio: crate::types::AspectRatio::Square,
            image_size: crate::types::ImageSize::K1,
            model: None,
            progress: Progress::default(),
            seed: None,
        };
        let secs = self.inner.config.load().timeouts.attempt_s;
        let started = std::time::Instant::now();
        tokio::time::timeout(
            Duration::from_secs(secs),
            adapter.generate(&self.inner.http, &request),
        )
        .await
        .map_err(|_| GatewayError::Timeout {
            upstream: upstream.name.clone(),
            secs,
        })??;
        Ok(started.elapsed())
    }

    /// 列出一个上游提供的模型。
    pub async fn list_models(
        &self,
        upstream: &UpstreamConfig,
    ) -> Result<Vec<String>, GatewayError> {
        upstream::build(upstream, self.inner.max_response_bytes())?
            .list_models(&self.inner.http)
            .await
    }

    /// 生成（或编辑）一张图像：经过整条策略流水线。
    pub async fn generate(&self, req: ImageRequest) -> Result<GeneratedImage, Failed> {
        if req.prompt.trim().is_empty() {
            return Err(GatewayError::InvalidRequest("提示词不能为空".into()).into());
        }
        policy::run(&self.inner, &req).await
    }
}

impl Inner {
    /// 上游响应体的上限（字节），跟随当前配置。
    fn max_response_bytes(&self) -> usize {
        self.config.load().limits.max_upstream_response_mb as usize * 1024 * 1024
    }

    /// 全局并发上限：跟随当前配置。
    fn global_limit(&self, config: &Config) -> Arc<ConcurrencyLimit> {
        let key = (config.limits.max_concurrent, config.limits.queue_size);
        self.global_limit.get(key, |(max, queue)| {
            ConcurrencyLimit::new(max as usize, queue as usize)
        })
    }

    /// 上游自己的并发上限；没有设置（0）时为 None。
    fn upstream_limit(
        &self,
        upstream: &UpstreamConfig,
        queue_size: u32,
    ) -> Option<Arc<ConcurrencyLimit>> {
        if upstream.max_concurrent == 0 {
            return None;
        }
        let mut limits = self.upstream_limits.lock().expect("并发表锁未被毒化");
        let entry = limits
            .entry((upstream.name.clone(), upstream.max_concurrent))
            .or_insert_with(|| {
                Arc::new(ConcurrencyLimit::new(
                    upstream.max_concurrent as usize,
                    queue_size as usize,
                ))
            });
        Some(entry.clone())
    }

    fn upstreams(&self, config: &Config) -> Vec<UpstreamConfig> {
        if config.upstreams.is_empty() {
            return self
                .demo_base_url
                .iter()
                .map(|base| UpstreamConfig {
                    name: DEMO_UPSTREAM_NAME.into(),
                    kind: UpstreamKind::Gemini,
                    base_url: base.clone(),
                    api_key: String::new(),
                    model: DEFAULT_MODEL.into(),
                    priority: 0,
                    max_concurrent: 0,
                })
                .collect();
        }
        let mut list = config.upstreams.clone();
        list.sort_by_key(|u| u.priority);
        list
    }
}
