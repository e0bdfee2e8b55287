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
    /// 本实例刚熔断的上游与熔断到何时：多实例时由 `crate::cluster_breakers` 取走写进库里（每个上游最多一项）。
    opened: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// 全局在途上限（按当时的上限与排队数建立；设置改变后新请求用新的，在途的照旧归还到旧的）。
    global_limit: crate::config::Rebuilt<(u32, u32), ConcurrencyLimit>,
    /// 各上游自己的并发上限（按名称与上限值建立，上限改变时换新的）。
    upstream_limits:
        std::sync::Mutex<std::collections::HashMap<(String, u32), Arc<ConcurrencyLimit>>>,
    /// 同一优先级的上游按权重轮流。
    balancer: policy::route::Balancer,
    /// 各上游密钥池的状态。
    keys: policy::keys::KeyStates,
    /// 各上游此刻在途的调用数（用量页）。
    in_flight: std::sync::Mutex<std::collections::HashMap<String, u32>>,
    /// 用量记账。
    usage: crate::usage::UsageRecorder,
}

impl Inner {
    /// 记下本实例刚熔断了 `upstream`（熔断 `cooldown`）。
    fn note_opened(&self, upstream: &str, cooldown: Duration) {
        self.opened
            .lock()
            .expect("熔断记录锁未被毒化")
            .insert(upstream.to_string(), std::time::Instant::now() + cooldown);
    }
}

impl Gateway {
    pub fn new(
        config: ConfigHandle,
        demo_base_url: Option<String>,
        usage: crate::usage::UsageRecorder,
    ) -> Self {
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
                opened: Default::default(),
                global_limit: Default::default(),
                upstream_limits: Default::default(),
                balancer: Default::default(),
                keys: Default::default(),
                in_flight: Default::default(),
                usage,
            }),
        }
    }

    /// 当前生效的上游列表，按 `priority` 从小到大排序；未配置时为内置演示上游。
    pub fn upstreams(&self, config: &Config) -> Vec<UpstreamConfig> {
        self.inner.upstreams(config)
    }

    /// 启动时接上各上游密钥本月已花的：`rows` 是（上游名、密钥序号（从 1 起）、美元的百万分之一），来自用量表。
    /// 序号按此刻的密钥池对应：池子改过顺序或换过密钥时，按新池子里同一序号的密钥算。
    pub fn adopt_key_spend(&self, config: &Config, month: &str, rows: &[(String, u32, i64)]) {
        for upstream in self.upstreams(config) {
            let pool = upstream.key_pool();
            for (name, index, usd) in rows.iter().filter(|r| r.0 == upstream.name) {
                if let Some(secret) = (*index as usize).checked_sub(1).and_then(|i| pool.get(i)) {
                    self.inner.keys.add_spend_in(name, secret, month, *usd);
                }
            }
        }
    }

    /// 一个上游每个密钥此刻的状态（设置页与用量页；只有序号与末 4 位）。
    pub fn key_states(
        &self,
        config: &Config,
        upstream: &UpstreamConfig,
    ) -> Vec<crate::types::settings::KeyState> {
        use policy::keys::KeyHealth;
        self.inner
            .keys
            .report(upstream, policy::key_budget(config, upstream))
            .into_iter()
            .map(|k| {
                let (state, label_zh) = match &k.health {
                    KeyHealth::Healthy => ("ok", "正常".to_string()),
                    KeyHealth::Disabled => (
                        "disabled",
                        "失效（上游拒绝了它），改掉密钥后恢复".to_string(),
                    ),
                    KeyHealth::Resting(until) => (
                        "resting",
                        format!(
                            "每日配额用完，休息到 {}",
                            chrono::DateTime::<chrono::Utc>::from(*until)
                                .format("%Y-%m-%d %H:%M UTC")
                        ),
                    ),
                    KeyHealth::OverBudget => (
                        "over_budget",
                        "本月花费到了上限（key_max_spend_per_month），下个月 1 日（UTC）恢复"
                            .to_string(),
                    ),
                    KeyHealth::Cooling(until) => (
                        "cooling",
                        format!(
                            "被限流，冷却中（还要 {} 秒）",
                            until
                                .saturating_duration_since(std::time::Instant::now())
                                .as_secs()
                                .max(1)
                        ),
                    ),
                };
                crate::types::settings::KeyState {
                    label: k.label,
                    state: state.into(),
                    label_zh,
                    last_error: k.last_error,
                }
            })
            .collect()
    }

    /// 本实例自上次取走以来熔断了的上游，与各自还要熔断多久（多实例时写进库里，见 `crate::cluster_breakers`）。
    pub fn take_opened(&self) -> Vec<(String, Duration)> {
        let now = std::time::Instant::now();
        self.inner
            .opened
            .lock()
            .expect("熔断记录锁未被毒化")
            .drain()
            .filter_map(|(name, until)| Some((name, until.checked_duration_since(now)?)))
            .collect()
    }

    /// 别的实例熔断了这个上游，还剩 `remaining`：本实例也跳过它到同一时刻。
    pub fn open_elsewhere(&self, upstream: &str, remaining: Duration) {
        if self.inner.breakers.open_elsewhere(upstream, remaining) {
            metrics::gauge!("gateway_breaker_open", "upstream" => upstream.to_string()).set(1.0);
        }
    }

    /// 各上游此刻的状态（熔断、密钥、在途数、最近的错误）与页头圆点的颜色。
    pub fn live(
        &self,
        config: &Config,
    ) -> (
        Vec<crate::types::usage::UpstreamLive>,
        crate::types::usage::Health,
    ) {
        use crate::types::usage::{Health, UpstreamLive};
        use policy::circuit_breaker::BreakerState;
        let in_flight = self
            .inner
            .in_flight
            .lock()
            .expect("在途计数锁未被毒化")
            .clone();
        let live: Vec<UpstreamLive> = self
            .upstreams(config)
            .iter()
            .map(|u| {
                let keys = self.key_states(config, u);
                UpstreamLive {
                    name: u.name.clone(),
                    models: u.served_models(),
                    circuit: match self.inner.breakers.state(&u.name) {
                        BreakerState::Closed => "closed",
                        BreakerState::Open => "open",
                        BreakerState::HalfOpen => "half_open",
                    }
                    .into(),
                    in_flight: in_flight.get(&u.name).copied().unwrap_or(0),
                    last_error: keys.iter().rev().find_map(|k| k.last_error.clone()),
                    keys,
                }
            })
            .collect();
        let usable =
            |u: &UpstreamLive| u.circuit != "open" && u.keys.iter().any(|k| k.state == "ok");
        let healthy =
            |u: &UpstreamLive| u.circuit == "closed" && u.keys.iter().all(|k| k.state == "ok");
        let health = if !live.iter().any(usable) {
            Health::Red
        } else if live.iter().all(healthy) {
            Health::Green
        } else {
            Health::Yellow
        };
        (live, health)
    }

    /// 对一个上游做一次真实的小请求（设置页的“测试连接”），不重试、不回退，返回耗时。
    pub async fn probe(&self, upstream: &UpstreamConfig) -> Result<Duration, GatewayError> {
        let adapter = upstream::build(upstream, self.inner.max_response_bytes())?;
        let request = ImageRequest::new(
            "连接测试：白底上一个蓝色圆形".into(),
            crate::types::AspectRatio::Square,
            crate::types::ImageSize::K1,
            None,
            String::new(),
        );
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

    /// 有没有上游提供这个模型（`None` 为上游自己的默认模型，总是可以）；没有时的错误列出可用的模型。
    /// 提交前先查，免得排了队、开始流式响应之后才失败。
    pub fn check_model(&self, config: &Config, model: Option<&str>) -> Result<(), GatewayError> {
        let Some(model) = model else {
            return Ok(());
        };
        let upstreams = self.upstreams(config);
        let routed = policy::routed_model(config, &upstreams, model);
        if upstreams.iter().any(|u| u.serves(&routed)) {
            return Ok(());
        }
        Err(GatewayError::UnknownModel {
            model: model.to_string(),
            available: policy::available_models(&upstreams).join("、"),
        })
    }

    /// 这个请求（模型为空时是第一个上游的默认模型）在模型目录里的能力：有没有上游提供它、宽高比、分辨率、
    /// 参考图数与联网搜索它做不做得到。做不到的 400，说明它能做什么；不调用上游。
    pub fn check_request(
        &self,
        config: &Config,
        model: Option<&str>,
        aspect_ratio: crate::types::AspectRatio,
        size: crate::types::ImageSize,
        references: usize,
        grounding: bool,
    ) -> Result<(), GatewayError> {
        self.check_model(config, model)?;
        self.capabilities(config, model)
            .check(aspect_ratio, size, references, grounding)
            .map_err(|e| GatewayError::InvalidRequest(e.to_string()))
    }

    /// 一个模型（空为第一个上游的默认模型）在目录里的能力；旧 id 按现在的模型算。
    pub fn capabilities(
        &self,
        config: &Config,
        model: Option<&str>,
    ) -> crate::types::catalogue::ModelInfo {
        let upstreams = self.upstreams(config);
        let id = match model {
            Some(m) => policy::routed_model(config, &upstreams, m),
            None => upstreams
                .first()
                .map(|u| u.model.clone())
                .unwrap_or_default(),
        };
        crate::catalogue::lookup(config, &id)
    }

    /// 各上游提供的模型（去重，按上游的先后；`/v1/models` 与工作台的模型下拉框）。
    pub fn models(&self, config: &Config) -> Vec<String> {
        policy::available_models(&self.upstreams(config))
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
                    model: DEFAULT_MODEL.into(),
                    ..Default::default()
                })
                .collect();
        }
        let mut list = config.upstreams.clone();
        list.sort_by_key(|u| u.priority);
        list
    }
}
