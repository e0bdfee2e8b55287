//! 用量记账：网关每次上游尝试记一条（调用方、上游、模型、密钥、成败与分类、是否重试或改用后备、耗时、字节数），
//! 后台任务每秒成批写进数据库（表 `usage`，每小时 × 调用方 × 上游 × 模型 × 密钥一行），不在请求的路上等。
//! 超过 `limits.usage_keep_days` 天的按天合并。用量页（`/usage`）与调用方的每日额度都从这里读。

pub mod report;
mod store;

pub use store::UsageRow;

use crate::config::ConfigHandle;
use crate::storage::Storage;
use std::time::Duration;
use tokio::sync::mpsc;

/// 耗时直方图各桶的上界（毫秒）；最后一桶是“更久”。
pub const LATENCY_BUCKETS_MS: [u64; 9] = [
    500, 1000, 2000, 5000, 10_000, 20_000, 30_000, 60_000, 120_000,
];

/// 等着写库的事件最多几条：满了就丢（并记一个指标），绝不让请求等记账。
const QUEUE: usize = 8192;
/// 多久写一次库。
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// 一次上游尝试。
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptEvent {
    /// UTC 的小时：`YYYY-MM-DDTHH`。
    pub hour: String,
    pub client: String,
    /// 请求者的账号（没有账号时为空）。
    pub account: String,
    pub upstream: String,
    pub model: String,
    /// 密钥在池里的序号（从 1 起），没有密钥为 0。
    pub key_index: u32,
    /// 成功时为 None，失败时为错误分类（`timeout`、`status` ……）。
    pub failure: Option<String>,
    /// 同一上游上的第二次及以后的尝试。
    pub retry: bool,
    /// 换到另一个上游（或备选模型）之后的尝试。
    pub fallback: bool,
    pub latency_ms: u64,
    /// 收到的图像字节数与发出的请求字节数（提示词与参考图）。
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// 计费类别（成功的已计费；失败的看请求是否可能到了模型那里）。
    pub billing: crate::types::attempt::Billing,
    /// 这个模型与分辨率的每张价格（美元，百万分之一）；不知道时为空。
    pub price: Option<crate::types::money::Micros>,
}

impl AttemptEvent {
    /// 现在所在的 UTC 小时。
    pub fn current_hour() -> String {
        chrono::Utc::now().format("%Y-%m-%dT%H").to_string()
    }
}

/// 记账的入口（可随意复制）。没有后台任务时（测试里单独建网关）什么都不记。
#[derive(Clone, Default)]
pub struct UsageRecorder {
    tx: Option<mpsc::Sender<AttemptEvent>>,
}

impl UsageRecorder {
    pub fn record(&self, event: AttemptEvent) {
        if let Some(tx) = &self.tx {
            if tx.try_send(event).is_err() {
                metrics::counter!("usage_events_dropped_total").increment(1);
            }
        }
    }
}

/// 启动写库的后台任务，返回记账入口。每小时顺带把超过保留期的行按天合并。
pub fn spawn(storage: Storage, config: ConfigHandle) -> UsageRecorder {
    let (tx, mut rx) = mpsc::channel::<AttemptEvent>(QUEUE);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        let mut last_rollup = std::time::Instant::now() - Duration::from_secs(3600);
        let mut batch = Vec::new();
        loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Some(e) => {
                        batch.push(e);
                        continue;
                    }
                    None => {
                        flush(&storage, std::mem::take(&mut batch)).await;
                        return;
                    }
                },
                _ = tick.tick() => {}
            }
            flush(&storage, std::mem::take(&mut batch)).await;
            if last_rollup.elapsed() >= Duration::from_secs(3600) {
                last_rollup = std::time::Instant::now();
                let keep_days = config.load().limits.usage_keep_days;
                let result = storage
                    .with_db(move |c| Ok(store::roll_up(c, keep_days)?))
                    .await;
                match result {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rows = n, keep_days, "用量：超过保留期的按天合并了"),
                    Err(e) => tracing::warn!("用量按天合并失败：{e}"),
                }
            }
        }
    });
    UsageRecorder { tx: Some(tx) }
}

async fn flush(storage: &Storage, batch: Vec<AttemptEvent>) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len();
    if let Err(e) = storage.with_db(move |c| Ok(store::add(c, &batch)?)).await {
        tracing::warn!(events = n, "用量写库失败：{e}");
    }
}

/// 从 `since`（含）起每个上游的每个密钥（序号从 1 起）按目录价格的花费（已计费加可能已计费，美元，百万分之一）。
pub async fn key_spend_since(
    storage: &Storage,
    since: String,
) -> Result<Vec<(String, u32, i64)>, crate::storage::StorageError> {
    storage
        .with_db(move |c| Ok(store::key_spend_since(c, &since)?))
        .await
}

/// 额度按谁计：一个调用方（用量表的 `client` 列：“工作台”、密钥的用途说明）或一个账号
/// （`account` 列：这个人在工作台与用他的密钥合起来的）。
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Client(String),
    Account(String),
}

impl Scope {
    /// 给人看的名字（也是额度表里的键）。
    pub fn shown(&self) -> String {
        match self {
            Scope::Client(c) => c.clone(),
            Scope::Account(a) => format!("账号“{a}”"),
        }
    }

    fn column(&self) -> (&'static str, String) {
        match self {
            Scope::Client(c) => ("client", c.clone()),
            Scope::Account(a) => ("account", a.clone()),
        }
    }
}

/// 某调用方（或账号）从 `since_hour`（含）起按目录价格的花费（已计费加可能已计费，美元，百万分之一）。
pub async fn spend_since(storage: &Storage, scope: &Scope, since_hour: String) -> i64 {
    let (column, value) = scope.column();
    storage
        .with_db(move |c| Ok(store::spend_since(c, column, &value, &since_hour)?))
        .await
        .unwrap_or(0)
}

/// 某调用方（或账号）从 `since_hour`（含）起生成的张数（每日额度启动时从这里接上）。
pub async fn images_since(storage: &Storage, scope: &Scope, since_hour: String) -> u64 {
    let (column, value) = scope.column();
    storage
        .with_db(move |c| Ok(store::images_since(c, column, &value, &since_hour)?))
        .await
        .unwrap_or(0)
}

/// 各账号从 `since`（含）起生成的张数与花费（美元，百万分之一）：设置页的账号列表用。
pub async fn by_account_since(
    storage: &Storage,
    since: String,
) -> Result<Vec<(String, u64, i64)>, crate::storage::StorageError> {
    storage
        .with_db(move |c| Ok(store::by_account_since(c, &since)?))
        .await
}
