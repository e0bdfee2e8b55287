//! 任务管理器：工作台的一次提交变成一批任务（每张图一个），按提交先后排队，在全局并发上限内经网关运行。
//!
//! - 状态：排队中 → 生成中（发送 / 等待上游 / 接收 / 保存）→ 已完成 | 失败 | 已取消；重启时运行中的记为“中断”。
//! - 取消：排队中的直接出队；运行中的中止其任务，正在进行的上游请求随之断开。
//! - 重试：失败、已取消、中断的任务重新排到队尾，作为一次新的运行。
//! - 批次：一次提交是一个批次（变量展开、多条提示词、逐张改图见 `types::batch`），可以整批暂停、继续、
//!   置顶、取消、重试失败的、移除与打包下载（见 `batches.rs`）。
//! - 持久化：批次与任务在提交时一次写入（事务）；之后每次状态转换按发生顺序由一个写入任务写库。
//!   进度只在内存里（重启后无意义）。
//! - 通知：任何变化都广播任务 id；`/ws` 按 100 ms 合并后推给浏览器（见 `ws.rs`）。
//!
//! 房间：`table.rs`（任务表与一个任务）、`commands.rs`（提交、取消、重试……）、`scheduler.rs`（排队、运行、进度）、
//! `writer.rs`（按顺序写库、认领）、`cluster.rs`（几个实例共用一个库：租约、跟上别的实例）、`views.rs`（卡片的样子）、
//! `batches.rs`（整批的操作与批次列表）、`archive.rs`（打包下载）、`ws.rs`（推送）、`store.rs`（SQL）、`estimate.rs`（估计用时）。

pub mod archive;
mod batches;
mod cluster;
mod commands;
mod estimate;
mod scheduler;
mod store;
mod table;
mod views;
mod writer;
pub mod ws;

/// 批次的蒙版对第一张参考图的区域（局部修改；收下批次时先核对一次，见 `crate::admit::batch`）。
pub use scheduler::region_of;

use crate::config::ConfigHandle;
use crate::produce::Producer;
use crate::storage::StorageError;
use crate::types::JobState;
use estimate::Durations;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use table::Table;
use tokio::sync::{broadcast, mpsc};
use writer::{writer, Write};

/// 内存里（工作台上）最多保留的任务数；更早的仍在数据库与图库里。
const KEEP_IN_MEMORY: usize = 300;
/// 运行中任务按时间估计的进度多久刷新一次。
const TICK: Duration = Duration::from_millis(250);
/// 已结束、但还可能在别处变的状态（重试从这几种开始；中断后晚到的结果也会来）。完成的不会再变。
const SETTLED: &[JobState] = &[
    JobState::Failed,
    JobState::Cancelled,
    JobState::Interrupted,
    JobState::Unsaved,
];

/// 几个实例共用一个库时，多久从库里跟上别的实例一次（见 `JobManager::follow_others`）。
const FOLLOW: Duration = Duration::from_secs(1);

/// 广播给 `/ws` 的变化。
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Job(String),
    Removed(String),
    /// 排队顺序变了（有任务开始、排进来、出队，或批次暂停、继续、置顶）。
    Queue,
}

#[derive(Clone)]
pub struct JobManager {
    inner: Arc<Inner>,
}

struct Inner {
    producer: Producer,
    config: ConfigHandle,
    table: Mutex<Table>,
    durations: Mutex<Durations>,
    changes: broadcast::Sender<Change>,
    /// 状态转换的写库请求，由一个任务按顺序执行。
    writes: mpsc::UnboundedSender<Write>,
    /// 本实例的 id（每次启动一个新的）：认领任务与报平安用（见 `store::update_job`）。
    instance: String,
    /// 还有写库请求没执行完的任务（id → 个数）：跟上别的实例时不拿库里的旧样子盖掉它们。
    unwritten: Arc<Mutex<HashMap<String, u32>>>,
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn now_string() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

impl JobManager {
    /// 载入上次的任务：运行中的记为“中断”，排队中的重新排队并开始运行。
    ///
    /// 几个实例共用一个 PostgreSQL 时，“上次运行中的”只算那些运行它的实例已经超过租约没报平安的；
    /// SQLite 只有本实例在用，别的实例都已停了。
    pub async fn open(producer: Producer, config: ConfigHandle) -> Result<Self, StorageError> {
        let storage = producer.storage.clone();
        let now = now_string();
        let instance = new_id();
        let lease_ms = i64::from(config.load().cluster.lease_s) * 1000;
        // SQLite 只有本实例在用：别的实例一律算停了。
        let lease = match storage.dialect() {
            crate::storage::sql::Dialect::Postgres => Some(lease_ms),
            crate::storage::sql::Dialect::Sqlite => None,
        };
        let storage_is_shared = storage.dialect() == crate::storage::sql::Dialect::Postgres;
        let me = instance.clone();
        let (interrupted, loaded, recent) = storage
            .with_db(move |c| {
                store::heartbeat(c, &me)?;
                Ok((
                    store::interrupt_orphans(c, &now, &me, lease)?,
                    store::load_visible(c, KEEP_IN_MEMORY as u32)?,
                    store::recent_durations(c)?,
                ))
            })
            .await?;
        if !interrupted.is_empty() {
            tracing::warn!(
                count = interrupted.len(),
                "上次停止时有任务正在生成，已标记为中断（可重试）"
            );
        }
        let durations = Durations::from_recent(recent);
        let table = Table::from_loaded(loaded);
        let requeued = table.queue.len();
        let (changes, _) = broadcast::channel(4096);
        let (writes, rx) = mpsc::unbounded_channel();
        let manager = Self {
            inner: Arc::new(Inner {
                producer,
                config,
                table: Mutex::new(table),
                durations: Mutex::new(durations),
                changes,
                writes,
                instance: instance.clone(),
                unwritten: Arc::default(),
            }),
        };
        let (stale, stale_rx) = mpsc::unbounded_channel();
        tokio::spawn(writer(
            storage,
            rx,
            instance,
            stale,
            manager.inner.unwritten.clone(),
        ));
        tokio::spawn(manager.clone().reload_stale(stale_rx));
        tokio::spawn(manager.clone().keep_lease(lease_ms));
        if storage_is_shared {
            tokio::spawn(manager.clone().follow_others());
        }
        if requeued > 0 {
            tracing::info!(requeued, "重新排队上次未开始的任务");
        }
        manager.pump();
        Ok(manager)
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.inner.table.lock().expect("任务表锁未被毒化")
    }

    /// 本实例的 id（每次启动一个新的；在库里报平安、认领任务与占幂等键用）。
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// 订阅变化（`/ws` 用）。
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.inner.changes.subscribe()
    }

    fn notify(&self, change: Change) {
        if let Change::Job(id) = &change {
            if let Some(job) = self.table().jobs.get_mut(id) {
                job.changed_at_ms = epoch_ms();
            }
        }
        // 没有订阅者时发送失败，无妨。
        let _ = self.inner.changes.send(change);
    }
}
