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

pub mod archive;
mod batches;
mod estimate;
mod store;
pub mod ws;

use crate::config::ConfigHandle;
use crate::error::ApiError;
use crate::gateway::{ImageRequest, Progress, ProgressEvent};
use crate::produce::{ProduceFailed, Produced, Producer, References};
use crate::storage::{Storage, StorageError};
use crate::types::batch::plan;
use crate::types::job::QUEUE_SHOWN;
use crate::types::{JobImage, JobState, JobView, Phase, SubmitRequest};
use estimate::{Durations, Reading};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{Batch, JobRow};
use tokio::sync::{broadcast, mpsc};

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

/// 认领一个排队任务的结果：认领到了、被别的实例先认领了，或写不进库。
type Claim = Result<bool, String>;

enum Write {
    /// 写入任务状态；开始运行（认领）时附一个回信，告诉运行它的任务认领成功没有。
    Update(
        Box<JobRow>,
        String,
        Option<tokio::sync::oneshot::Sender<Claim>>,
    ),
    Hide(String),
}

/// 一次写库（不含回信，可以重试）。
#[derive(Clone)]
enum WriteOp {
    Update(Box<JobRow>, String),
    Hide(String),
}

#[derive(Default)]
struct Table {
    jobs: HashMap<String, Job>,
    /// 创建先后（旧的在前）。
    order: Vec<String>,
    queue: VecDeque<String>,
    running: HashMap<String, tokio::task::AbortHandle>,
    /// 暂停着的批次：其中排队的任务不开始。
    paused: HashSet<String>,
}

impl Table {
    /// 将要开始的排队任务（暂停的批次除外），先开始的在前。
    fn runnable_queue(&self) -> impl Iterator<Item = &String> {
        self.queue.iter().filter(|id| {
            self.jobs
                .get(*id)
                .is_some_and(|j| !self.paused.contains(&j.batch.id))
        })
    }
}

struct Job {
    batch: Arc<Batch>,
    row: JobRow,
    phase: Option<Phase>,
    percent: f64,
    attempt: u32,
    /// 这一次运行已在库里认领到（本实例在生成它）。只有认领到了的进度才写进库里给别的实例看。
    claimed: bool,
    started: Option<Instant>,
    /// 结束时的用时（结束后不再增长）。
    final_elapsed_ms: u64,
    bytes_done: u64,
    bytes_total: Option<u64>,
    /// 最近一次变化（Unix 毫秒）。
    changed_at_ms: u64,
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
        let mut durations = Durations::default();
        for (model, size, ms) in recent {
            if let Ok(size) = size.parse() {
                durations.seed(&model, size, ms);
            }
        }
        let mut table = Table::default();
        let mut batches: HashMap<String, Arc<Batch>> = HashMap::new();
        for (batch, row) in loaded {
            if batch.paused {
                table.paused.insert(batch.id.clone());
            }
            let batch = batches
                .entry(batch.id.clone())
                .or_insert_with(|| Arc::new(batch))
                .clone();
            if row.state == JobState::Queued {
                table.queue.push_back(row.id.clone());
            }
            table.order.push(row.id.clone());
            table.jobs.insert(row.id.clone(), Job::new(batch, row));
        }
        // 置顶过的批次排在前面（越晚置顶越靠前），其余按提交先后。
        let mut queue: Vec<String> = table.queue.drain(..).collect();
        queue.sort_by_key(|id| std::cmp::Reverse(table.jobs[id].batch.priority));
        table.queue = queue.into();
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

    fn persist(&self, row: &JobRow) {
        self.mark_unwritten(&row.id);
        let _ = self
            .inner
            .writes
            .send(Write::Update(Box::new(row.clone()), now_string(), None));
    }

    fn mark_unwritten(&self, id: &str) {
        *self
            .inner
            .unwritten
            .lock()
            .expect("锁未被毒化")
            .entry(id.to_string())
            .or_default() += 1;
    }

    /// 写入“生成中”（认领）；回信说认领到了没有。
    fn claim(&self, row: &JobRow) -> tokio::sync::oneshot::Receiver<Claim> {
        self.mark_unwritten(&row.id);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ =
            self.inner
                .writes
                .send(Write::Update(Box::new(row.clone()), now_string(), Some(tx)));
        rx
    }

    /// 每隔租约的三分之一报一次平安，并把停了的实例留下的运行中任务标为中断
    /// （本实例任务表里有的，由 `follow_others` 从库里刷新过来，在这里可以重试）。
    async fn keep_lease(self, lease_ms: i64) {
        let storage = self.inner.producer.storage.clone();
        let mut tick = tokio::time::interval(Duration::from_millis((lease_ms / 3).max(500) as u64));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let (me, now) = (self.inner.instance.clone(), now_string());
            let swept = storage
                .with_db(move |c| {
                    store::heartbeat(c, &me)?;
                    let lease =
                        (c.dialect() == crate::storage::sql::Dialect::Postgres).then_some(lease_ms);
                    Ok(store::interrupt_orphans(c, &now, &me, lease)?)
                })
                .await;
            match swept {
                Ok(ids) if !ids.is_empty() => tracing::warn!(
                    count = ids.len(),
                    "别的实例超过租约没报平安：它正在生成的任务已标为中断（可重试）"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!("报平安或检查别的实例失败：{e}"),
            }
        }
    }

    /// 几个实例共用一个库时，每秒从库里跟上别的实例：它们新收下的批次加进本实例的任务表（排队中的也排进
    /// 本实例的队列，谁先认领谁跑），批次的暂停跟着库里的改，别处运行或排着的任务的状态从库里刷新。
    async fn follow_others(self) {
        let storage = self.inner.producer.storage.clone();
        let mut tick = tokio::time::interval(FOLLOW);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // 见过的任务（它们被 `trim` 从任务表里拿掉后也不再加回来）；只记最近两分钟建的。
        let mut seen: HashMap<String, Instant> = HashMap::new();
        // 上一次写进库里进度的本实例任务（不再生成的，下一次从库里去掉）。
        let mut published: HashSet<String> = HashSet::new();
        loop {
            tick.tick().await;
            let since = (chrono::Utc::now() - chrono::Duration::seconds(60))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let asked_at = epoch_ms();
            let (batches, foreign, mine, progress, waiting, settled, unwritten) = {
                let table = self.table();
                // 本实例排着的（最前面的 500 个）与已结束的：库里它们变了（被别的实例认领、取消，或在别处重试、
                // 中断后晚到了结果），本实例跟着改。
                let waiting: Vec<String> = table.queue.iter().take(500).cloned().collect();
                let settled: Vec<String> = table
                    .jobs
                    .iter()
                    .filter(|(_, j)| SETTLED.contains(&j.row.state))
                    .map(|(id, _)| id.clone())
                    .collect();
                let unwritten: HashSet<String> = self
                    .inner
                    .unwritten
                    .lock()
                    .expect("锁未被毒化")
                    .keys()
                    .cloned()
                    .collect();
                let mine: Vec<String> = table.running.keys().cloned().collect();
                let progress: Vec<store::Progress> = mine
                    .iter()
                    .filter_map(|id| table.jobs.get(id))
                    .filter(|j| j.row.state == JobState::Running && j.claimed)
                    .map(Self::progress_of)
                    .collect();
                let queued: HashSet<String> = table.queue.iter().cloned().collect();
                let batches: Vec<String> = table
                    .queue
                    .iter()
                    .filter_map(|id| table.jobs.get(id).map(|j| j.batch.id.clone()))
                    .collect::<HashSet<_>>()
                    .into_iter()
                    .collect();
                let foreign: Vec<String> = table
                    .jobs
                    .iter()
                    .filter(|(id, j)| {
                        matches!(j.row.state, JobState::Running | JobState::Queued)
                            && !table.running.contains_key(*id)
                            && !queued.contains(*id)
                    })
                    .map(|(id, _)| id.clone())
                    .collect();
                (
                    batches, foreign, mine, progress, waiting, settled, unwritten,
                )
            };
            let finished: Vec<String> = published
                .iter()
                .filter(|id| !progress.iter().any(|p| &p.job_id == *id))
                .cloned()
                .collect();
            let now_published: HashSet<String> =
                progress.iter().map(|p| p.job_id.clone()).collect();
            let found = storage
                .with_db(move |c| {
                    store::publish_progress(c, &progress, &finished)?;
                    Ok((
                        store::load_created_since(c, &since)?,
                        store::paused_batches(c, &batches)?,
                        store::load_progress(c, &foreign)?,
                        store::load_jobs(c, &foreign)?,
                        store::load_jobs(c, &mine)?,
                        store::load_jobs_except(c, &waiting, &[JobState::Queued])?,
                        store::load_jobs_except(c, &settled, SETTLED)?,
                    ))
                })
                .await;
            let (new, paused, elsewhere, refreshed, running_here, left_queue, reopened) =
                match found {
                    Ok(found) => {
                        published = now_published;
                        found
                    }
                    Err(e) => {
                        tracing::warn!("从库里跟上别的实例失败：{e}");
                        continue;
                    }
                };
            seen.retain(|_, at| at.elapsed() < Duration::from_secs(120));
            let mut changed = Vec::new();
            let mut queue_changed = false;
            {
                let mut table = self.table();
                for (batch, row) in new {
                    if seen.insert(row.id.clone(), Instant::now()).is_some()
                        || table.jobs.contains_key(&row.id)
                    {
                        continue;
                    }
                    let batch = table
                        .jobs
                        .values()
                        .find(|j| j.batch.id == batch.id)
                        .map(|j| j.batch.clone())
                        .unwrap_or_else(|| Arc::new(batch));
                    if batch.paused {
                        table.paused.insert(batch.id.clone());
                    }
                    if row.state == JobState::Queued {
                        table.queue.push_back(row.id.clone());
                        queue_changed = true;
                    }
                    table.order.push(row.id.clone());
                    changed.push(row.id.clone());
                    table.jobs.insert(row.id.clone(), Job::new(batch, row));
                }
                for (batch_id, is_paused) in paused {
                    let was = table.paused.contains(&batch_id);
                    if is_paused && !was {
                        table.paused.insert(batch_id);
                        queue_changed = true;
                    } else if !is_paused && was {
                        table.paused.remove(&batch_id);
                        queue_changed = true;
                    }
                }
                let touched = |table: &Table, id: &str| {
                    unwritten.contains(id)
                        || self
                            .inner
                            .unwritten
                            .lock()
                            .expect("锁未被毒化")
                            .contains_key(id)
                        || table
                            .jobs
                            .get(id)
                            .is_some_and(|j| j.changed_at_ms >= asked_at)
                };
                // 本实例排着、库里已不是排队中的（别的实例认领了、在别处取消了）：从本实例的队列里拿掉；
                // 本实例已结束、库里又排上或有了结果的（在别处重试了、中断后晚到的结果）：跟着改，排上的也排进本实例的队列。
                for (_, row) in left_queue.into_iter().chain(reopened) {
                    if table.running.contains_key(&row.id) || touched(&table, &row.id) {
                        continue;
                    }
                    if table.queue.contains(&row.id) {
                        table.queue.retain(|q| *q != row.id);
                        queue_changed = true;
                    }
                    if row.state == JobState::Queued {
                        table.queue.push_back(row.id.clone());
                        queue_changed = true;
                    }
                    if let Some(job) = table.jobs.get_mut(&row.id) {
                        Self::adopt(job, row.clone());
                        changed.push(row.id);
                    }
                }
                for (_, row) in refreshed {
                    let mine = table.running.contains_key(&row.id);
                    if touched(&table, &row.id) {
                        continue;
                    }
                    let Some(job) = table.jobs.get_mut(&row.id) else {
                        continue;
                    };
                    if mine || (job.row.state == row.state && job.row.run == row.run) {
                        continue;
                    }
                    Self::adopt(job, row.clone());
                    changed.push(row.id);
                }
                // 别的实例正在生成的：显示它写进库里的进度。
                for p in elsewhere {
                    if table.running.contains_key(&p.job_id) {
                        continue;
                    }
                    let Some(job) = table.jobs.get_mut(&p.job_id) else {
                        continue;
                    };
                    if job.row.state != JobState::Running {
                        continue;
                    }
                    if Self::follow_progress(job, &p) {
                        changed.push(p.job_id);
                    }
                }
                trim(&mut table);
            }
            // 本实例正在生成、却在别的实例上被取消了的：停下（结果作废，与本实例上取消一样）。
            // 只认同一次运行的取消：刚在本实例上重试、写库还排着队时，库里还是上一次运行的“取消”。
            let mut reclaim = Vec::new();
            for (_, row) in running_here {
                if row.state == JobState::Interrupted {
                    let same_run = self
                        .table()
                        .jobs
                        .get(&row.id)
                        .is_some_and(|j| j.row.run == row.run && j.claimed);
                    if same_run {
                        reclaim.push((row.id.clone(), row.run));
                    }
                }
                if row.state == JobState::Cancelled {
                    let stopped = {
                        let mut table = self.table();
                        let same_run = table
                            .jobs
                            .get(&row.id)
                            .is_some_and(|j| j.row.run == row.run);
                        let handle = if same_run {
                            table.running.remove(&row.id)
                        } else {
                            None
                        };
                        if let Some(handle) = &handle {
                            handle.abort();
                        }
                        match table.jobs.get_mut(&row.id) {
                            Some(job) if handle.is_some() => {
                                job.final_elapsed_ms = Self::elapsed_ms(job);
                                job.phase = None;
                                job.row = row.clone();
                                true
                            }
                            _ => false,
                        }
                    };
                    if stopped {
                        tracing::info!(job = row.id, "任务在别的实例上被取消了，已停下");
                        changed.push(row.id);
                    }
                }
            }
            // 本实例仍在生成、却被别的实例当作停了而标为中断的（一段时间没报上平安，例如库一时连不上）：
            // 在没有人重试之前收回来，别的实例随后又显示“生成中”，结果照常由本实例写入——不会有人再付一次钱去重试它。
            if !reclaim.is_empty() {
                let me = self.inner.instance.clone();
                let back = storage
                    .with_db(move |c| {
                        let mut back = Vec::new();
                        for (id, run) in reclaim {
                            if store::reclaim(c, &id, run, &me)? {
                                back.push(id);
                            }
                        }
                        Ok(back)
                    })
                    .await;
                match back {
                    Ok(ids) if !ids.is_empty() => tracing::warn!(
                        count = ids.len(),
                        "本实例曾被别的实例当作停了（没报上平安），正在生成的任务已从“中断”收回"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!("收回被标为中断的任务失败：{e}"),
                }
            }
            if queue_changed {
                self.notify(Change::Queue);
            }
            for id in changed {
                self.notify(Change::Job(id));
            }
            self.pump();
        }
    }

    /// 写库时被拒绝或放弃了的任务：按库里的样子重新读（见 `writer`）。
    async fn reload_stale(self, mut ids: mpsc::UnboundedReceiver<String>) {
        while let Some(id) = ids.recv().await {
            self.reload(id).await;
        }
    }

    /// 从库里重新读一个任务，换掉任务表里的（它不在本实例上运行时）。
    async fn reload(&self, id: String) {
        let ids = vec![id.clone()];
        let rows = self
            .inner
            .producer
            .storage
            .with_db(move |c| Ok(store::load_jobs(c, &ids)?))
            .await;
        let Ok(Some((_, row))) = rows.map(|r| r.into_iter().next()) else {
            return;
        };
        {
            let mut table = self.table();
            if table.running.contains_key(&id) || table.queue.contains(&id) {
                return;
            }
            let Some(job) = table.jobs.get_mut(&id) else {
                return;
            };
            Self::adopt(job, row);
        }
        self.notify(Change::Job(id));
    }

    /// 认领失败：被别的实例先认领了（它在那里运行；这里的卡片显示“生成中”，结果由 `follow_others` 从库里刷新），
    /// 或写不进库（记为失败，没有调用上游）。
    fn claim_lost(&self, id: &str, claim: Claim) {
        {
            let mut table = self.table();
            table.running.remove(id);
            if let Some(job) = table.jobs.get_mut(id) {
                match claim {
                    Ok(_) => {
                        // 库里它已不是排队中（别的实例先认领了，或在别处被取消、已完成）：按库里的样子显示。
                        tracing::info!(
                            job = id,
                            "任务已由另一个实例认领或已在别处改变，按库里的显示"
                        );
                        let (this, id) = (self.clone(), id.to_string());
                        tokio::spawn(async move { this.reload(id).await });
                    }
                    Err(e) => {
                        job.row.state = JobState::Failed;
                        job.row.error =
                            Some(format!("任务没能开始（数据库不可用，没有调用上游）：{e}"));
                        self.persist(&job.row);
                    }
                }
            }
        }
        self.notify(Change::Job(id.to_string()));
        self.pump();
    }

    /// 工作台上的全部任务，新的在前。
    pub fn snapshot(&self) -> Vec<JobView> {
        let table = self.table();
        table
            .order
            .iter()
            .rev()
            .filter_map(|id| self.view_in(&table, id))
            .collect()
    }

    /// 一个任务此刻的样子。
    pub fn view(&self, id: &str) -> Option<JobView> {
        self.view_in(&self.table(), id)
    }

    /// 将要开始的排队任务，先开始的在前（最多 `QUEUE_SHOWN` 个；卡片据此显示“排队第 N 位”）。
    pub fn queue_order(&self) -> Vec<String> {
        self.table()
            .runnable_queue()
            .take(QUEUE_SHOWN)
            .cloned()
            .collect()
    }

    fn expected_ms(&self, job: &Job) -> (f64, bool) {
        let model = self.model_for(&job.batch);
        match self
            .inner
            .durations
            .lock()
            .expect("锁未被毒化")
            .expected(&model, job.batch.image_size)
        {
            Some(ms) => (ms, true),
            None => (estimate::fallback_ms(job.batch.image_size), false),
        }
    }

    /// 估计用时的键：指定了模型用它，否则用第一个上游的模型。
    fn model_for(&self, batch: &Batch) -> String {
        if !batch.model.is_empty() {
            return batch.model.clone();
        }
        let config = self.inner.config.load();
        self.inner
            .producer
            .gateway
            .upstreams(&config)
            .first()
            .map(|u| u.model.clone())
            .unwrap_or_default()
    }

    fn elapsed_ms(job: &Job) -> u64 {
        match (job.row.state, job.started) {
            (JobState::Running, Some(started)) => started.elapsed().as_millis() as u64,
            // 没在本实例上看着它跑完的（重启后从库里读出的、别的实例生成的）：库里不单独存用时，
            // 按这次运行各次尝试的耗时相加（保存图片的几毫秒不计）。
            _ if job.final_elapsed_ms == 0 => job.row.attempts.iter().map(|a| a.latency_ms).sum(),
            _ => job.final_elapsed_ms,
        }
    }

    /// 任务表里一个任务此刻的样子。
    fn view_in(&self, table: &Table, id: &str) -> Option<JobView> {
        let job = table.jobs.get(id)?;
        Some(self.view_of(job, table.paused.contains(&job.batch.id)))
    }

    fn view_of(&self, job: &Job, paused: bool) -> JobView {
        let elapsed_ms = Self::elapsed_ms(job);
        let eta_ms = if job.row.state == JobState::Running {
            let (expected, known) = self.expected_ms(job);
            known
                .then(|| estimate::eta_ms(elapsed_ms as f64, expected))
                .flatten()
        } else {
            None
        };
        let b = &job.batch;
        JobView {
            job_id: job.row.id.clone(),
            batch_id: b.id.clone(),
            batch_name: b.name.clone(),
            batch_paused: paused,
            index: job.row.index,
            count: b.count,
            prompt: job.row.prompt.clone(),
            variables: job.row.variables.clone(),
            template: job.row.template.clone(),
            aspect_ratio: b.aspect_ratio,
            image_size: b.image_size,
            model: b.model.clone(),
            reference_ids: job.row.reference_ids.clone(),
            state: job.row.state,
            phase: job.phase,
            percent: job.percent.floor().clamp(0.0, 100.0) as u8,
            run: job.row.run,
            attempt: job.attempt,
            upstream: job.row.upstream.clone(),
            elapsed_ms,
            eta_ms,
            bytes_done: job.bytes_done,
            bytes_total: job.bytes_total,
            error: job.row.error.clone(),
            attempts: job.row.attempts.clone(),
            image: job.row.image.clone(),
            created_at: job.row.created_at.clone(),
            changed_at_ms: job.changed_at_ms,
        }
    }

    /// 提交一批：展开变量、多条提示词与逐张改图（见 `types::batch::plan`），每个展开的任务一张卡片。
    /// 参数有误、排队已满或 `admit` 不放行（例如张数限流）时什么都不排队，返回中文原因。
    /// `client` 是提交者（排队上限按它计）；`admit` 在校验与排队上限都通过之后、写库之前被调用一次，参数是张数。
    pub async fn submit(
        &self,
        req: SubmitRequest,
        client: &str,
        admit: impl FnOnce(u32) -> Result<(), ApiError>,
    ) -> Result<Vec<JobView>, ApiError> {
        let max_jobs = self.inner.config.load().limits.max_batch_jobs;
        let plan = plan(&req, max_jobs)?;
        // 先确认参考图都在，免得排了队才失败。
        References::check_exist(&self.inner.producer.storage, &req.references).await?;
        let model = self.check_model(&req)?;
        let total = plan.jobs.len() as u32;
        self.check_queue_room(client, total as usize)?;
        admit(total)?;
        let created_at = now_string();
        let batch = Batch {
            id: new_id(),
            name: plan.name,
            prompt: if req.prompts.is_empty() {
                req.prompt.trim().to_string()
            } else {
                req.prompts.join("\n")
            },
            reference_ids: req.references,
            count: total,
            aspect_ratio: req.aspect_ratio,
            image_size: req.image_size,
            model,
            created_at: created_at.clone(),
            client: client.to_string(),
            paused: false,
            priority: 0,
            google_search: req.google_search,
        };
        let rows: Vec<JobRow> = plan
            .jobs
            .into_iter()
            .zip(1..)
            .map(|(job, index)| JobRow {
                id: new_id(),
                batch_id: batch.id.clone(),
                index,
                prompt: job.prompt,
                reference_ids: job.reference_ids,
                variables: job.variables,
                template: job.template,
                state: JobState::Queued,
                run: 0,
                upstream: None,
                error: None,
                attempts: Vec::new(),
                image: None,
                created_at: created_at.clone(),
                spill: None,
            })
            .collect();
        let batch = Arc::new(batch);
        let rows = Arc::new(rows);
        let (b, r) = (batch.clone(), rows.clone());
        self.inner
            .producer
            .storage
            .with_db(move |c| Ok(store::insert_batch(c, &b, &r)?))
            .await?;
        tracing::info!(batch = %batch.id, count = batch.count, "已提交一批任务");
        let views = {
            let mut table = self.table();
            for row in rows.iter().cloned() {
                // 几个实例共用库时，`follow_others` 可能在写库之后、这里之前已经从库里把它加进来了（也许已经开始运行）：
                // 留着那一份。
                if table.jobs.contains_key(&row.id) {
                    continue;
                }
                table.queue.push_back(row.id.clone());
                table.order.push(row.id.clone());
                table
                    .jobs
                    .insert(row.id.clone(), Job::new(batch.clone(), row));
            }
            rows.iter()
                .rev()
                .filter_map(|r| self.view_in(&table, &r.id))
                .collect()
        };
        for row in rows.iter() {
            self.notify(Change::Job(row.id.clone()));
        }
        self.notify(Change::Queue);
        self.pump();
        Ok(views)
    }

    /// 指定的模型要有上游提供；空为默认模型。
    /// 所选模型（空为默认）有上游提供，并且做得到这次的宽高比、分辨率与参考图数（逐张改图时每个任务一张）。
    fn check_model(&self, req: &SubmitRequest) -> Result<String, ApiError> {
        let model = req.model.trim().to_string();
        let config = self.inner.config.load();
        let per_job_references = match req.reference_mode {
            crate::types::batch::ReferenceMode::Together => req.references.len(),
            crate::types::batch::ReferenceMode::Each => req.references.len().min(1),
        };
        self.inner.producer.gateway.check_request(
            &config,
            Some(model.as_str()).filter(|m| !m.is_empty()),
            req.aspect_ratio,
            req.image_size,
            per_job_references,
            req.google_search,
        )?;
        Ok(model)
    }

    /// 排队上限：全服务器排队的任务不超过 `limits.max_queued_jobs`，每个提交者不超过它的四分之一。
    fn check_queue_room(&self, client: &str, adding: usize) -> Result<(), ApiError> {
        let limits = self.inner.config.load().limits.clone();
        let table = self.table();
        let queued = table.queue.len();
        let mine = table
            .queue
            .iter()
            .filter_map(|id| table.jobs.get(id))
            .filter(|job| job.batch.client == client)
            .count();
        let (all_cap, my_cap) = (
            limits.max_queued_jobs as usize,
            limits.queued_jobs_per_client(),
        );
        if mine + adding > my_cap {
            return Err(ApiError::QueueFull(format!(
                "你排队中的任务已有 {mine} 个，再加 {adding} 个就超过了每人 {my_cap} 个的上限；请等前面的完成或取消一些"
            )));
        }
        if queued + adding > all_cap {
            return Err(ApiError::QueueFull(format!(
                "服务器上排队的任务已有 {queued} 个，再加 {adding} 个就超过了 {all_cap} 个的上限，请稍后再提交"
            )));
        }
        Ok(())
    }

    /// 一张图的收藏状态变了：工作台上产出它的卡片跟着变（并推送给各个页面）。
    pub fn favourite_changed(&self, image_id: &str, favourite: bool) {
        let changed: Vec<String> = {
            let mut table = self.table();
            table
                .jobs
                .values_mut()
                .filter_map(|job| {
                    let image = job.row.image.as_mut().filter(|i| i.id == image_id)?;
                    image.favourite = favourite;
                    Some(job.row.id.clone())
                })
                .collect()
        };
        for id in changed {
            self.notify(Change::Job(id));
        }
    }

    /// 取消排队中或运行中的任务。
    pub fn cancel(&self, id: &str) -> Result<JobView, ApiError> {
        let view = {
            let mut table = self.table();
            let Table {
                jobs,
                queue,
                running,
                ..
            } = &mut *table;
            let job = jobs.get_mut(id).ok_or(ApiError::NotFound)?;
            match job.row.state {
                JobState::Queued => queue.retain(|q| q != id),
                JobState::Running => {
                    if let Some(handle) = running.remove(id) {
                        // 中止任务：进行中的上游请求随之被丢弃，连接断开。
                        handle.abort();
                    }
                }
                other => {
                    return Err(ApiError::InvalidRequest(format!(
                        "这个任务{}，不能取消",
                        other.label()
                    )))
                }
            }
            job.final_elapsed_ms = Self::elapsed_ms(job);
            job.row.state = JobState::Cancelled;
            job.phase = None;
            job.row.error = None;
            self.persist(&job.row);
            self.view_in(&table, id).expect("刚改过的任务在表里")
        };
        tracing::info!(job = id, "任务已取消");
        self.notify(Change::Job(id.to_string()));
        self.notify(Change::Queue);
        self.pump();
        Ok(view)
    }

    /// 重试失败、已取消或中断的任务：重新排到队尾。
    pub fn retry(&self, id: &str) -> Result<JobView, ApiError> {
        let view = {
            let mut table = self.table();
            let job = table.jobs.get_mut(id).ok_or(ApiError::NotFound)?;
            if !job.row.state.can_retry() {
                return Err(ApiError::InvalidRequest(format!(
                    "这个任务{}，不需要重试",
                    job.row.state.label()
                )));
            }
            job.reset(JobState::Queued);
            self.persist(&job.row);
            table.queue.push_back(id.to_string());
            self.view_in(&table, id).expect("刚改过的任务在表里")
        };
        self.notify(Change::Job(id.to_string()));
        self.notify(Change::Queue);
        self.pump();
        Ok(view)
    }

    /// 重新保存“保存失败”的任务：从暂存区取回图，存进图库。成功则变成“已完成”，暂存的图删掉。
    pub async fn resave(&self, id: &str) -> Result<JobView, ApiError> {
        let (batch, row) = {
            let table = self.table();
            let job = table.jobs.get(id).ok_or(ApiError::NotFound)?;
            if !job.row.state.can_resave() {
                return Err(ApiError::InvalidRequest(format!(
                    "这个任务{}，不需要重新保存",
                    job.row.state.label()
                )));
            }
            (job.batch.clone(), job.row.clone())
        };
        let spill = row.spill.clone().unwrap_or_default();
        let storage = &self.inner.producer.storage;
        let data = storage.unspill(spill.clone()).await?;
        let record = storage
            .save_image(crate::storage::NewImage {
                data,
                prompt: row.prompt.clone(),
                mode: if row.reference_ids.is_empty() {
                    "text2img"
                } else {
                    "img2img"
                },
                model: batch.model.clone(),
                aspect_ratio: batch.aspect_ratio.to_string(),
                image_size: batch.image_size.to_string(),
                upstream: row.upstream.clone().unwrap_or_default(),
                duration_ms: 0,
                attempts: row.attempts.clone(),
                reference_ids: row.reference_ids.clone(),
                model_text: None,
                sources: Vec::new(),
                size_note: None,
            })
            .await?;
        storage.drop_spill(&spill);
        let view = {
            let mut table = self.table();
            let job = table.jobs.get_mut(id).ok_or(ApiError::NotFound)?;
            job.row.state = JobState::Done;
            job.row.spill = None;
            job.row.error = None;
            job.percent = 100.0;
            job.row.image = Some(job_image(&record));
            self.persist(&job.row);
            self.view_in(&table, id).expect("刚改过的任务在表里")
        };
        tracing::info!(job = id, image = %record.id, "保存失败的图已重新保存");
        self.notify(Change::Job(id.to_string()));
        Ok(view)
    }

    /// 一个批次（`/v1` 的异步任务就是一个批次）的提交者与全部任务；不存在时为空。
    pub async fn batch(&self, batch_id: &str) -> Result<Option<(String, Vec<JobView>)>, ApiError> {
        let in_memory: Vec<JobView> = {
            let table = self.table();
            let paused = table.paused.contains(batch_id);
            let mut jobs: Vec<&Job> = table
                .jobs
                .values()
                .filter(|j| j.batch.id == batch_id)
                .collect();
            jobs.sort_by_key(|j| j.row.index);
            jobs.into_iter().map(|j| self.view_of(j, paused)).collect()
        };
        if let Some(first) = in_memory.first() {
            let client = self
                .table()
                .jobs
                .get(&first.job_id)
                .map(|j| j.batch.client.clone())
                .unwrap_or_default();
            return Ok(Some((client, in_memory)));
        }
        let id = batch_id.to_string();
        let rows = self
            .inner
            .producer
            .storage
            .with_db(move |c| Ok(store::load_batch(c, &id)?))
            .await?;
        let Some((batch, _)) = rows.first() else {
            return Ok(None);
        };
        let client = batch.client.clone();
        let batch = Arc::new(batch.clone());
        let views = rows
            .into_iter()
            .map(|(_, row)| self.view_of(&Job::new(batch.clone(), row), batch.paused))
            .collect();
        Ok(Some((client, views)))
    }

    /// 从工作台移除：进行中的先取消；生成的图片移入回收站（可在图库恢复）。
    pub async fn remove(&self, id: &str) -> Result<(), ApiError> {
        let state = self
            .table()
            .jobs
            .get(id)
            .map(|j| j.row.state)
            .ok_or(ApiError::NotFound)?;
        if state.is_active() {
            self.cancel(id)?;
        }
        let image = {
            let mut table = self.table();
            table.order.retain(|o| o != id);
            table.jobs.remove(id).and_then(|j| j.row.image)
        };
        let _ = self.inner.writes.send(Write::Hide(id.to_string()));
        if let Some(image) = image {
            self.inner.producer.storage.trash(vec![image.id]).await?;
        }
        self.notify(Change::Removed(id.to_string()));
        Ok(())
    }

    /// 在并发上限内，按先后启动排队的任务；暂停的批次里的任务留在原位。
    fn pump(&self) {
        // 同时在生成的任务数：全局上限，工作台另设了上限（limits.studio_max_concurrent）时取小的。
        let limits = self.inner.config.load().limits.clone();
        let cap = match limits.studio_max_concurrent {
            0 => limits.max_concurrent,
            n => n.min(limits.max_concurrent),
        }
        .max(1) as usize;
        let mut started = Vec::new();
        let mut dropped = false;
        {
            let mut table = self.table();
            let mut i = 0;
            while table.running.len() < cap && i < table.queue.len() {
                let Table {
                    jobs,
                    queue,
                    paused,
                    ..
                } = &mut *table;
                let id = queue[i].clone();
                let Some(job) = jobs
                    .get_mut(&id)
                    .filter(|j| j.row.state == JobState::Queued)
                else {
                    // 已取消或已移除：从队列里拿掉。
                    queue.remove(i);
                    dropped = true;
                    continue;
                };
                if paused.contains(&job.batch.id) {
                    i += 1;
                    continue;
                }
                queue.remove(i);
                job.reset(JobState::Running);
                job.row.run += 1;
                job.started = Some(Instant::now());
                job.percent = 0.0;
                let claimed = self.claim(&job.row);
                let batch = job.batch.clone();
                let handle = tokio::spawn(self.clone().run(id.clone(), batch, claimed));
                table.running.insert(id.clone(), handle.abort_handle());
                started.push(id);
            }
        }
        if dropped || !started.is_empty() {
            self.notify(Change::Queue);
        }
        for id in started {
            self.notify(Change::Job(id));
        }
    }

    /// `claimed`：“生成中”已经写进数据库（认领成功）。先等它再调用上游——否则在两者之间崩溃的话，
    /// 重启后库里这个任务还是“排队中”，会被再跑一次，上游可能已经为第一次计了费（付两次钱）；
    /// 别的实例先认领了、或写不进库时不调用上游。
    async fn run(
        self,
        id: String,
        batch: Arc<Batch>,
        claimed: tokio::sync::oneshot::Receiver<Claim>,
    ) {
        match claimed.await {
            Ok(Ok(true)) => {
                if let Some(job) = self.table().jobs.get_mut(&id) {
                    job.claimed = true;
                }
            }
            Ok(claim) => return self.claim_lost(&id, claim),
            Err(_) => return self.claim_lost(&id, Err("写库的任务已退出".into())),
        }
        let result = self.execute(&id, &batch).await;
        self.finish(&id, result);
    }

    async fn execute(&self, id: &str, batch: &Batch) -> Result<Produced, ProduceFailed> {
        let producer = &self.inner.producer;
        let (run, prompt, reference_ids) = self
            .table()
            .jobs
            .get(id)
            .map(|j| (j.row.run, j.row.prompt.clone(), j.row.reference_ids.clone()))
            .unwrap_or_default();
        let references = References::load(&producer.storage, &reference_ids).await?;
        let (this, job_id) = (self.clone(), id.to_string());
        let request = ImageRequest {
            prompt,
            references: Vec::new(),
            aspect_ratio: batch.aspect_ratio,
            image_size: batch.image_size,
            model: (!batch.model.is_empty()).then(|| batch.model.clone()),
            progress: Progress::new(move |event| this.on_progress(&job_id, event)),
            // 每个任务、每次运行一个种子：同一批的几张各不相同，重试也可能不同。
            seed: Some(seed_for(id, run)),
            client: crate::access::budget::STUDIO_CLIENT.into(),
            google_search: batch.google_search,
        };
        let work = producer.produce(request, references);
        tokio::pin!(work);
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                result = &mut work => return result,
                _ = tick.tick() => self.refresh(id),
            }
        }
    }

    /// 网关回报的真实进度。
    fn on_progress(&self, id: &str, event: ProgressEvent) {
        {
            let mut table = self.table();
            let Some(job) = table.jobs.get_mut(id) else {
                return;
            };
            if job.row.state != JobState::Running {
                return;
            }
            match event {
                ProgressEvent::Attempt { upstream, number } => {
                    job.row.upstream = Some(upstream);
                    job.attempt = number;
                    job.phase = None;
                    job.bytes_done = 0;
                    job.bytes_total = None;
                }
                ProgressEvent::Phase(phase) => {
                    job.phase = Some(phase);
                    job.bytes_done = 0;
                    job.bytes_total = None;
                }
                ProgressEvent::Bytes { done, total } => {
                    job.bytes_done = done;
                    job.bytes_total = total;
                }
            }
            self.update_percent(job);
        }
        self.notify(Change::Job(id.to_string()));
    }

    /// 按时间刷新等待中的估计进度。
    fn refresh(&self, id: &str) {
        {
            let mut table = self.table();
            let Some(job) = table.jobs.get_mut(id) else {
                return;
            };
            if job.row.state != JobState::Running {
                return;
            }
            self.update_percent(job);
        }
        self.notify(Change::Job(id.to_string()));
    }

    /// 换上库里的样子（任务不在本实例上运行）：别处开始了新的一次运行时，上一次的进度与用时不算。
    fn adopt(job: &mut Job, row: JobRow) {
        if row.run != job.row.run {
            job.percent = 0.0;
            job.started = None;
            job.attempt = 0;
        }
        if row.state == JobState::Done {
            job.percent = 100.0;
        }
        if row.state != JobState::Running {
            job.final_elapsed_ms = Self::elapsed_ms(job);
            job.phase = None;
        }
        job.row = row;
    }

    /// 本实例正在生成的任务此刻的进度（写进库里给别的实例看）。
    fn progress_of(job: &Job) -> store::Progress {
        store::Progress {
            job_id: job.row.id.clone(),
            percent: job.percent.floor().clamp(0.0, 99.0) as u8,
            phase: job.phase,
            attempt: job.attempt,
            elapsed_ms: Self::elapsed_ms(job),
            upstream: job.row.upstream.clone(),
        }
    }

    /// 别的实例写进库里的进度用到本实例的任务表上（只增不减，与本实例上一样）；返回是否变了。
    fn follow_progress(job: &mut Job, p: &store::Progress) -> bool {
        let phase = p.phase;
        let percent = job.percent.max(f64::from(p.percent));
        let changed = percent != job.percent
            || phase != job.phase
            || p.attempt != job.attempt
            || p.upstream != job.row.upstream;
        job.percent = percent;
        job.phase = phase;
        job.attempt = p.attempt;
        job.row.upstream = p.upstream.clone();
        // 用时从这里接着走（页面上的秒数不停在上一次读到的值）；只往前调，秒数不倒退。
        let started = Instant::now().checked_sub(Duration::from_millis(p.elapsed_ms));
        job.started = match (job.started, started) {
            (Some(old), Some(new)) => Some(old.min(new)),
            (old, new) => new.or(old),
        };
        changed
    }

    fn update_percent(&self, job: &mut Job) {
        let (expected, _) = self.expected_ms(job);
        let reading = Reading {
            phase: job.phase,
            elapsed_ms: Self::elapsed_ms(job) as f64,
            bytes_done: job.bytes_done,
            bytes_total: job.bytes_total,
        };
        // 只增不减；保存完成前不到 100。
        job.percent = job
            .percent
            .max(estimate::percent(&reading, expected))
            .min(99.0);
    }

    fn finish(&self, id: &str, result: Result<Produced, ProduceFailed>) {
        {
            let mut table = self.table();
            table.running.remove(id);
            let Some(job) = table.jobs.get_mut(id) else {
                return;
            };
            if job.row.state != JobState::Running {
                // 已被取消：结果作废（若图片已写完，它仍在图库里）。
                return;
            }
            job.final_elapsed_ms = Self::elapsed_ms(job);
            job.phase = None;
            match result {
                Ok(Produced { image, record }) => {
                    job.row.state = JobState::Done;
                    job.percent = 100.0;
                    job.row.upstream = Some(record.upstream.clone());
                    job.row.attempts = image.attempts;
                    job.row.image = Some(job_image(&record));
                    self.inner.durations.lock().expect("锁未被毒化").record(
                        &record.model,
                        job.batch.image_size,
                        job.final_elapsed_ms as f64,
                    );
                }
                Err(failed) => {
                    job.row.attempts = failed.attempts;
                    match failed.unsaved.and_then(|u| u.spill) {
                        // 图生成了（付过钱）只是没存下：暂存着，卡片显示“保存失败”与“重新保存”。
                        Some(spill) => {
                            job.row.state = JobState::Unsaved;
                            job.row.spill = Some(spill);
                            job.row.error = Some(format!(
                                "图已经生成，但没能存进图库：{}。它暂存在服务器上（保留 24 小时），可以点“重新保存”",
                                failed.error.public_message()
                            ));
                        }
                        None => {
                            job.row.state = JobState::Failed;
                            job.row.error = Some(failed.error.public_message());
                        }
                    }
                }
            }
            self.persist(&job.row);
            trim(&mut table);
        }
        self.notify(Change::Job(id.to_string()));
        self.pump();
    }
}

/// 由任务 id 与第几次运行得到的种子（非负的 i32）。
fn seed_for(job_id: &str, run: u32) -> i32 {
    let digest = crate::web::sha256_hex(format!("{job_id}:{run}"));
    i32::from_str_radix(&digest[..7], 16).unwrap_or(0)
}

/// 任务产出的图（卡片上显示的那部分）。
fn job_image(record: &crate::storage::ImageRecord) -> JobImage {
    JobImage {
        url: format!("/files/{}", record.id),
        thumb_url: format!("/files/{}/thumb", record.id),
        id: record.id.clone(),
        width: record.width,
        height: record.height,
        model_text: record.model_text.clone(),
        favourite: record.favourite,
        model: record.model.clone(),
        size_note: record.size_note.clone(),
        sources: serde_json::from_str(&record.sources).unwrap_or_default(),
    }
}

/// 内存里只留最近的任务（进行中的永远保留）。
fn trim(table: &mut Table) {
    while table.order.len() > KEEP_IN_MEMORY {
        let Some(pos) = table
            .order
            .iter()
            .position(|id| table.jobs.get(id).is_none_or(|j| !j.row.state.is_active()))
        else {
            break;
        };
        let id = table.order.remove(pos);
        if let Some(job) = table.jobs.remove(&id) {
            // 批次的最后一张也拿掉了：它的暂停标记不再有用（否则这个集合只增不减）。
            let batch = &job.batch.id;
            if table.paused.contains(batch) && !table.jobs.values().any(|j| &j.batch.id == batch) {
                table.paused.remove(batch);
            }
        }
    }
}

impl Job {
    fn new(batch: Arc<Batch>, row: JobRow) -> Self {
        let percent = if row.state == JobState::Done {
            100.0
        } else {
            0.0
        };
        Self {
            batch,
            row,
            phase: None,
            percent,
            attempt: 0,
            claimed: false,
            started: None,
            final_elapsed_ms: 0,
            bytes_done: 0,
            bytes_total: None,
            changed_at_ms: epoch_ms(),
        }
    }

    /// 开始一次新的运行前清掉上一次的结果。
    fn reset(&mut self, state: JobState) {
        self.row.state = state;
        self.row.error = None;
        self.row.image = None;
        self.row.attempts = Vec::new();
        self.row.upstream = None;
        self.row.spill = None;
        self.phase = None;
        self.percent = 0.0;
        self.attempt = 0;
        self.claimed = false;
        self.final_elapsed_ms = 0;
        self.bytes_done = 0;
        self.bytes_total = None;
    }
}

/// 按顺序执行状态写入：同一任务的“开始”不会晚于它的“结束”落盘。
/// 写库出错（连接断了、库忙）时隔 0.2、0.8、3.2 秒重试，仍不行才放弃（后面的写入等着，先后不乱）。
/// 写入被库拒绝的（库里它已是别处的另一次运行，或已被别处改过）以及取消（可能取消的是别的实例上较新的一次运行），
/// 把任务 id 交给 `stale`：任务表按库里的样子重新读它，页面不会一直显示库里没有的状态。
async fn writer(
    storage: Storage,
    mut rx: mpsc::UnboundedReceiver<Write>,
    me: String,
    stale: mpsc::UnboundedSender<String>,
    unwritten: Arc<Mutex<HashMap<String, u32>>>,
) {
    use tokio_retry::strategy::ExponentialBackoff;
    while let Some(write) = rx.recv().await {
        let (op, reply) = match write {
            Write::Update(row, now, reply) => (WriteOp::Update(row, now), reply),
            Write::Hide(id) => (WriteOp::Hide(id), None),
        };
        let backoff = ExponentialBackoff::from_millis(4).factor(50).take(3);
        let result = tokio_retry::Retry::start(backoff, || {
            let (op, me, storage) = (op.clone(), me.clone(), storage.clone());
            async move {
                storage
                    .with_db(move |c| {
                        Ok(match op {
                            WriteOp::Update(row, now, ..) => store::update_job(c, &row, &now, &me)?,
                            WriteOp::Hide(id) => {
                                store::hide_job(c, &id)?;
                                true
                            }
                        })
                    })
                    .await
            }
        })
        .await;
        if let WriteOp::Update(row, _) = &op {
            {
                let mut unwritten = unwritten.lock().expect("锁未被毒化");
                if let Some(n) = unwritten.get_mut(&row.id) {
                    *n -= 1;
                    if *n == 0 {
                        unwritten.remove(&row.id);
                    }
                }
            }
            let recheck = match &result {
                // 库一直不可用：本实例的任务表仍是实际发生的（库里过期了，重启后按库里的处理）。
                Err(e) => {
                    tracing::error!(job = row.id, "写入任务状态失败（重试 3 次后放弃）：{e}");
                    false
                }
                // 认领没成功由运行它的任务自己处理（见 `claim_lost`）。
                Ok(false) if row.state != JobState::Running => {
                    tracing::warn!(
                        job = row.id,
                        "任务状态没有写入：库里它已是别处的另一次运行或已被别处改过，按库里的重新显示"
                    );
                    true
                }
                Ok(_) => row.state == JobState::Cancelled,
            };
            if recheck {
                let _ = stale.send(row.id.clone());
            }
        }
        if let Some(reply) = reply {
            let _ = reply.send(result.map_err(|e| e.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{AspectRatio, ImageSize};

    fn job(batch: &Arc<Batch>, id: String, state: JobState) -> Job {
        let row = JobRow {
            id,
            batch_id: batch.id.clone(),
            index: 0,
            prompt: String::new(),
            reference_ids: Vec::new(),
            variables: Default::default(),
            template: None,
            state,
            run: 1,
            upstream: None,
            error: None,
            attempts: Vec::new(),
            image: None,
            created_at: String::new(),
            spill: None,
        };
        Job::new(batch.clone(), row)
    }

    fn batch(id: &str) -> Arc<Batch> {
        Arc::new(Batch {
            id: id.into(),
            name: String::new(),
            prompt: String::new(),
            reference_ids: Vec::new(),
            count: 1,
            aspect_ratio: AspectRatio::default(),
            image_size: ImageSize::default(),
            model: String::new(),
            created_at: String::new(),
            client: String::new(),
            paused: true,
            priority: 0,
            google_search: false,
        })
    }

    /// 内存里的任务超过上限时拿掉最早的已结束任务；一个暂停过的批次的任务都拿掉了，它的暂停标记也不留；
    /// 还有任务在表里的批次的标记保留。
    #[test]
    fn trimming_the_last_job_of_a_paused_batch_forgets_the_pause() {
        let mut table = Table::default();
        let (old, new) = (batch("old"), batch("new"));
        table.paused.extend(["old".to_string(), "new".to_string()]);
        let mut add = |b: &Arc<Batch>, id: String, state| {
            table.order.push(id.clone());
            table.jobs.insert(id.clone(), job(b, id, state));
        };
        add(&old, "o".into(), JobState::Done);
        for i in 0..KEEP_IN_MEMORY {
            add(&new, format!("n{i}"), JobState::Done);
        }
        trim(&mut table);
        assert_eq!(table.jobs.len(), KEEP_IN_MEMORY);
        assert!(!table.jobs.contains_key("o"));
        assert!(!table.paused.contains("old"));
        assert!(table.paused.contains("new"));
    }
}
