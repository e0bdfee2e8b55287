//! 几个实例共用一个库（PostgreSQL）：报平安与租约（`keep_lease`），每秒从库里跟上别的实例（`follow_others`），
//! 认领失败与写库被拒绝后按库里的样子重新读任务（`claim_lost`、`reload`）。单机（SQLite）时只报平安。

use super::store::{self, Batch, JobRow};
use super::table::{trim, Job, Table};
use super::writer::Claim;
use super::{epoch_ms, now_string, Change, JobManager, FOLLOW, SETTLED};
use crate::types::JobState;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

impl JobManager {
    /// 每隔租约的三分之一报一次平安，并把停了的实例留下的运行中任务标为中断
    /// （本实例任务表里有的，由 `follow_others` 从库里刷新过来，在这里可以重试）。
    pub(super) async fn keep_lease(self, lease_ms: i64) {
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
    /// 本实例的队列，谁先认领谁跑），批次的暂停跟着库里的改，别处运行或排着的任务的状态从库里刷新；
    /// 本实例正在生成的任务的进度写进库里给别的实例看。
    pub(super) async fn follow_others(self) {
        let storage = self.inner.producer.storage.clone();
        let mut tick = tokio::time::interval(FOLLOW);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // 见过的任务（它们被 `trim` 从任务表里拿掉后也不再加回来）；只记最近两分钟建的。
        let mut seen: HashMap<String, Instant> = HashMap::new();
        // 上一次写进库里进度的本实例任务（不再生成的，下一次从库里去掉）。
        let mut published: HashSet<String> = HashSet::new();
        loop {
            tick.tick().await;
            let asked_at = epoch_ms();
            let local = self.local_state();
            let now_published: HashSet<String> =
                local.progress.iter().map(|p| p.job_id.clone()).collect();
            let found = match Self::read_others(&storage, &local, &published).await {
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
            let Found {
                new,
                paused,
                elsewhere,
                refreshed,
                running_here,
                left_queue,
                reopened,
            } = found;
            let (mut changed, queue_changed) = {
                let mut table = self.table();
                let mut queue_changed = add_new(&mut table, new, &mut seen);
                queue_changed |= follow_pauses(&mut table, paused);
                let touched = |table: &Table, id: &str| self.touched(table, id, &local, asked_at);
                let mut changed = Vec::new();
                queue_changed |= follow_states(
                    &mut table,
                    left_queue,
                    reopened,
                    refreshed,
                    &touched,
                    &mut changed,
                );
                follow_elsewhere(&mut table, elsewhere, &mut changed);
                trim(&mut table);
                (changed, queue_changed)
            };
            let reclaim = self.stop_cancelled_elsewhere(running_here, &mut changed);
            self.reclaim_interrupted(&storage, reclaim).await;
            if queue_changed {
                self.notify(Change::Queue);
            }
            for id in changed {
                self.notify(Change::Job(id));
            }
            self.pump();
        }
    }

    /// 这一轮要问库的：本实例排着的、已结束的、正在生成的与别处运行或排着的任务，排着的任务的批次。
    fn local_state(&self) -> Local {
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
            .map(Job::progress)
            .collect();
        let queued: HashSet<&String> = table.queue.iter().collect();
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
                    && !queued.contains(id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        Local {
            batches,
            foreign,
            mine,
            progress,
            waiting,
            settled,
            unwritten,
        }
    }

    /// 一次事务：写本实例的进度（不再生成的去掉），读别的实例这段时间的变化。
    async fn read_others(
        storage: &crate::storage::Storage,
        local: &Local,
        published: &HashSet<String>,
    ) -> Result<Found, crate::storage::StorageError> {
        let since = (chrono::Utc::now() - chrono::Duration::seconds(60))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let finished: Vec<String> = published
            .iter()
            .filter(|id| !local.progress.iter().any(|p| &p.job_id == *id))
            .cloned()
            .collect();
        let (progress, batches, foreign, mine, waiting, settled) = (
            local.progress.clone(),
            local.batches.clone(),
            local.foreign.clone(),
            local.mine.clone(),
            local.waiting.clone(),
            local.settled.clone(),
        );
        storage
            .with_db(move |c| {
                store::publish_progress(c, &progress, &finished)?;
                Ok(Found {
                    new: store::load_created_since(c, &since)?,
                    paused: store::paused_batches(c, &batches)?,
                    elsewhere: store::load_progress(c, &foreign)?,
                    refreshed: store::load_jobs(c, &foreign)?,
                    running_here: store::load_jobs(c, &mine)?,
                    left_queue: store::load_jobs_except(c, &waiting, &[JobState::Queued])?,
                    reopened: store::load_jobs_except(c, &settled, SETTLED)?,
                })
            })
            .await
    }

    /// 本实例动过、库里还没跟上的任务（还有写库请求没执行完，或在这一轮问库之后变了）：不拿库里的旧样子盖掉。
    fn touched(&self, table: &Table, id: &str, local: &Local, asked_at: u64) -> bool {
        local.unwritten.contains(id)
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
    }

    /// 本实例正在生成、却在别的实例上被取消了的：停下（结果作废，与本实例上取消一样）。
    /// 只认同一次运行的取消：刚在本实例上重试、写库还排着队时，库里还是上一次运行的“取消”。
    /// 返回被别的实例标为中断、要收回的（任务 id, 第几次运行）。
    fn stop_cancelled_elsewhere(
        &self,
        running_here: Vec<(Batch, JobRow)>,
        changed: &mut Vec<String>,
    ) -> Vec<(String, u32)> {
        let mut reclaim = Vec::new();
        for (_, row) in running_here {
            let mut table = self.table();
            let same_run = |table: &Table| {
                table
                    .jobs
                    .get(&row.id)
                    .is_some_and(|j| j.row.run == row.run)
            };
            if row.state == JobState::Interrupted
                && same_run(&table)
                && table.jobs.get(&row.id).is_some_and(|j| j.claimed)
            {
                reclaim.push((row.id.clone(), row.run));
            }
            if row.state != JobState::Cancelled || !same_run(&table) {
                continue;
            }
            let Some(handle) = table.running.remove(&row.id) else {
                continue;
            };
            handle.abort();
            if let Some(job) = table.jobs.get_mut(&row.id) {
                job.final_elapsed_ms = job.elapsed_ms();
                job.phase = None;
                job.row = row.clone();
                tracing::info!(job = row.id, "任务在别的实例上被取消了，已停下");
                changed.push(row.id);
            }
        }
        reclaim
    }

    /// 本实例仍在生成、却被别的实例当作停了而标为中断的（一段时间没报上平安，例如库一时连不上）：
    /// 在没有人重试之前收回来，别的实例随后又显示“生成中”，结果照常由本实例写入——不会有人再付一次钱去重试它。
    async fn reclaim_interrupted(
        &self,
        storage: &crate::storage::Storage,
        reclaim: Vec<(String, u32)>,
    ) {
        if reclaim.is_empty() {
            return;
        }
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

    /// 写库时被拒绝或放弃了的任务：按库里的样子重新读（见 `writer`）。
    pub(super) async fn reload_stale(self, mut ids: mpsc::UnboundedReceiver<String>) {
        while let Some(id) = ids.recv().await {
            self.reload(id).await;
        }
    }

    /// 从库里重新读一个任务，换掉任务表里的（它不在本实例上运行时）。
    pub(super) async fn reload(&self, id: String) {
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
            job.adopt(row);
        }
        self.notify(Change::Job(id));
    }

    /// 认领失败：被别的实例先认领了（它在那里运行；这里的卡片显示“生成中”，结果由 `follow_others` 从库里刷新），
    /// 或写不进库（记为失败，没有调用上游）。
    pub(super) fn claim_lost(&self, id: &str, claim: Claim) {
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
}

/// 这一轮要问库的本实例任务（见 `JobManager::local_state`）。
struct Local {
    /// 本实例排着的任务所在的批次（跟上它们的暂停）。
    batches: Vec<String>,
    /// 本实例表里、却不在本实例上运行或排队的任务（别处在运行或排着）。
    foreign: Vec<String>,
    /// 本实例正在运行的。
    mine: Vec<String>,
    /// 本实例正在生成、已认领到的任务的进度（写进库里）。
    progress: Vec<store::Progress>,
    /// 本实例排着的（最前面的 500 个）。
    waiting: Vec<String>,
    /// 本实例已结束、还可能在别处变的。
    settled: Vec<String>,
    /// 问库时还有写库请求没执行完的。
    unwritten: HashSet<String>,
}

/// 库里读到的别的实例的变化。
struct Found {
    /// 最近一分钟建的任务（别的实例收下的批次）。
    new: Vec<(Batch, JobRow)>,
    /// 本实例排着的批次的暂停（批次 id, 暂停着）。
    paused: Vec<(String, bool)>,
    /// 别处正在生成的任务的进度。
    elsewhere: Vec<store::Progress>,
    /// 别处运行或排着的任务此刻的样子。
    refreshed: Vec<(Batch, JobRow)>,
    /// 本实例正在运行的任务在库里的样子（被别处取消或标为中断的）。
    running_here: Vec<(Batch, JobRow)>,
    /// 本实例排着、库里已不是排队中的。
    left_queue: Vec<(Batch, JobRow)>,
    /// 本实例已结束、库里又排上或有了结果的。
    reopened: Vec<(Batch, JobRow)>,
}

/// 别的实例新收下的任务加进任务表（排队中的也排进本实例的队列）；返回队列是否变了。
fn add_new(
    table: &mut Table,
    new: Vec<(Batch, JobRow)>,
    seen: &mut HashMap<String, Instant>,
) -> bool {
    let mut queue_changed = false;
    for (batch, row) in new {
        if seen.insert(row.id.clone(), Instant::now()).is_some() || table.jobs.contains_key(&row.id)
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
        table.jobs.insert(row.id.clone(), Job::new(batch, row));
    }
    queue_changed
}

/// 批次的暂停跟着库里的改；返回队列（能开始的任务）是否变了。
fn follow_pauses(table: &mut Table, paused: Vec<(String, bool)>) -> bool {
    let mut queue_changed = false;
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
    queue_changed
}

/// 本实例排着、库里已不是排队中的（别的实例认领了、在别处取消了）：从本实例的队列里拿掉；
/// 本实例已结束、库里又排上或有了结果的（在别处重试了、中断后晚到的结果）：跟着改，排上的也排进本实例的队列；
/// 别处运行或排着的：换上库里的样子。本实例动过、库里还没跟上的（`touched`）不动。返回队列是否变了。
fn follow_states(
    table: &mut Table,
    left_queue: Vec<(Batch, JobRow)>,
    reopened: Vec<(Batch, JobRow)>,
    refreshed: Vec<(Batch, JobRow)>,
    touched: &dyn Fn(&Table, &str) -> bool,
    changed: &mut Vec<String>,
) -> bool {
    let mut queue_changed = false;
    for (_, row) in left_queue.into_iter().chain(reopened) {
        if table.running.contains_key(&row.id) || touched(table, &row.id) {
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
            job.adopt(row.clone());
            changed.push(row.id);
        }
    }
    for (_, row) in refreshed {
        let mine = table.running.contains_key(&row.id);
        if touched(table, &row.id) {
            continue;
        }
        let Some(job) = table.jobs.get_mut(&row.id) else {
            continue;
        };
        if mine || (job.row.state == row.state && job.row.run == row.run) {
            continue;
        }
        job.adopt(row.clone());
        changed.push(row.id);
    }
    queue_changed
}

/// 别的实例正在生成的：显示它写进库里的进度。
fn follow_elsewhere(table: &mut Table, elsewhere: Vec<store::Progress>, changed: &mut Vec<String>) {
    for p in elsewhere {
        if table.running.contains_key(&p.job_id) {
            continue;
        }
        let Some(job) = table.jobs.get_mut(&p.job_id) else {
            continue;
        };
        if job.row.state == JobState::Running && job.follow_progress(&p) {
            changed.push(p.job_id);
        }
    }
}
