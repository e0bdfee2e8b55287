//! 整批的操作：暂停、继续、置顶、全部取消、重试失败的、移除，以及批次列表（`/api/list_batches`）。
//!
//! 批次在数据库里（`batches` 表）；它的任务中还在工作台上的在内存里，状态以内存为准（写库是异步的）。

use super::store::{self, BatchRow};
use super::{Change, JobManager, Table};
use crate::error::ApiError;
use crate::types::batch::{BatchPage, BatchView};
use crate::types::JobState;

/// 批次列表每页默认与最多几个。
const DEFAULT_PAGE: u32 = 20;
const MAX_PAGE: u32 = 100;

impl JobManager {
    /// 内存里属于这个批次的任务 id，按序号。
    fn batch_jobs(table: &Table, batch_id: &str) -> Vec<String> {
        let mut jobs: Vec<(u32, String)> = table
            .jobs
            .values()
            .filter(|j| j.batch.id == batch_id)
            .map(|j| (j.row.index, j.row.id.clone()))
            .collect();
        jobs.sort();
        jobs.into_iter().map(|(_, id)| id).collect()
    }

    /// 批次存在（没被移除）才能操作，否则 404。
    async fn existing_batch(&self, batch_id: &str) -> Result<(), ApiError> {
        let id = batch_id.to_string();
        let exists = self
            .inner
            .producer
            .storage
            .with_db(move |c| Ok(store::batch_exists(c, &id)?))
            .await?;
        exists.then_some(()).ok_or(ApiError::NotFound)
    }

    /// 暂停（`paused = true`）或继续一个批次：暂停时其中排队的任务不开始，运行中的照常完成。
    pub async fn pause_batch(&self, batch_id: &str, paused: bool) -> Result<BatchView, ApiError> {
        self.existing_batch(batch_id).await?;
        let id = batch_id.to_string();
        self.inner
            .producer
            .storage
            .with_db(move |c| Ok(store::set_paused(c, &id, paused)?))
            .await?;
        let ids = {
            let mut table = self.table();
            if paused {
                table.paused.insert(batch_id.to_string());
            } else {
                table.paused.remove(batch_id);
            }
            Self::batch_jobs(&table, batch_id)
        };
        tracing::info!(batch = batch_id, paused, "批次暂停状态已改变");
        for id in ids {
            self.notify(Change::Job(id));
        }
        self.notify(Change::Queue);
        if !paused {
            self.pump();
        }
        self.batch_view(batch_id).await
    }

    /// 置顶：这个批次排队中的任务移到队首（保持它们之间的先后），重启后也记得。
    pub async fn prioritize_batch(&self, batch_id: &str) -> Result<BatchView, ApiError> {
        self.existing_batch(batch_id).await?;
        let id = batch_id.to_string();
        self.inner
            .producer
            .storage
            .with_db(move |c| Ok(store::raise_priority(c, &id)?))
            .await?;
        {
            let mut table = self.table();
            let Table { queue, jobs, .. } = &mut *table;
            let (mine, rest): (Vec<String>, Vec<String>) = queue
                .drain(..)
                .partition(|q| jobs.get(q).is_some_and(|j| j.batch.id == batch_id));
            queue.extend(mine);
            queue.extend(rest);
        }
        self.notify(Change::Queue);
        self.batch_view(batch_id).await
    }

    /// 取消这个批次里所有排队中与运行中的任务。
    pub async fn cancel_batch(&self, batch_id: &str) -> Result<BatchView, ApiError> {
        self.existing_batch(batch_id).await?;
        let active: Vec<String> = {
            let table = self.table();
            Self::batch_jobs(&table, batch_id)
                .into_iter()
                .filter(|id| table.jobs[id].row.state.is_active())
                .collect()
        };
        for id in &active {
            // 两次查看之间它可能刚好结束了：那就不用取消。
            let _ = self.cancel(id);
        }
        tracing::info!(batch = batch_id, cancelled = active.len(), "整批取消");
        self.batch_view(batch_id).await
    }

    /// 重试这个批次里失败与中断的任务（已取消的与保存失败的不动）。排队放不下时一个都不重试。
    pub async fn retry_failed(&self, batch_id: &str) -> Result<BatchView, ApiError> {
        self.existing_batch(batch_id).await?;
        let (failed, client): (Vec<String>, String) = {
            let table = self.table();
            let ids: Vec<String> = Self::batch_jobs(&table, batch_id)
                .into_iter()
                .filter(|id| {
                    matches!(
                        table.jobs[id].row.state,
                        JobState::Failed | JobState::Interrupted
                    )
                })
                .collect();
            let client = ids
                .first()
                .map(|id| table.jobs[id].batch.client.clone())
                .unwrap_or_default();
            (ids, client)
        };
        self.check_queue_room(&client, failed.len())?;
        for id in &failed {
            self.retry(id)?;
        }
        tracing::info!(
            batch = batch_id,
            retried = failed.len(),
            "重试整批失败的任务"
        );
        self.batch_view(batch_id).await
    }

    /// 把整个批次从工作台移除：进行中的先取消，生成的图片移入回收站（可在图库恢复）。
    pub async fn remove_batch(&self, batch_id: &str) -> Result<(), ApiError> {
        self.existing_batch(batch_id).await?;
        let in_memory = Self::batch_jobs(&self.table(), batch_id);
        for id in &in_memory {
            self.remove(id).await?;
        }
        // 已不在内存里的旧任务：它们的图也移入回收站。
        let id = batch_id.to_string();
        let rows = self
            .inner
            .producer
            .storage
            .with_db(move |c| {
                let rows = store::load_batch(c, &id)?;
                store::hide_batch(c, &id)?;
                Ok(rows)
            })
            .await?;
        let images: Vec<String> = rows
            .into_iter()
            .filter(|(_, row)| !in_memory.contains(&row.id))
            .filter_map(|(_, row)| row.image.map(|i| i.id))
            .collect();
        if !images.is_empty() {
            self.inner.producer.storage.trash(images).await?;
        }
        self.table().paused.remove(batch_id);
        tracing::info!(batch = batch_id, "批次已从工作台移除");
        Ok(())
    }

    /// 一页批次，新的在前。`cursor` 是上一页的 `next_cursor`。
    /// `account` 不为空时只列这个账号的批次（登录了账号的人只看自己的）。
    pub async fn list_batches(
        &self,
        cursor: Option<String>,
        limit: Option<u32>,
        account: Option<String>,
    ) -> Result<BatchPage, ApiError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let after = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(
                c.split_once('|')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| ApiError::InvalidRequest("cursor 无效".into()))?,
            ),
        };
        let rows = self
            .inner
            .producer
            .storage
            .with_db(move |c| Ok(store::list_batches(c, after, limit + 1, account)?))
            .await?;
        let more = rows.len() > limit as usize;
        let items: Vec<BatchView> = {
            let table = self.table();
            rows.into_iter()
                .take(limit as usize)
                .map(|row| summarize(row, &table))
                .collect()
        };
        let next_cursor = more
            .then(|| items.last().map(|b| format!("{}|{}", b.created_at, b.id)))
            .flatten();
        Ok(BatchPage { items, next_cursor })
    }

    /// 批次所属的账号（没有主人时为空）；没有这个批次时 404。
    pub async fn batch_owner(&self, batch_id: &str) -> Result<String, ApiError> {
        let id = batch_id.to_string();
        self.inner
            .producer
            .storage
            .with_db(move |c| Ok(store::batch_account(c, &id)?))
            .await?
            .ok_or(ApiError::NotFound)
    }

    /// 任务所属的账号（没有主人时为空）；没有这个任务时 404。
    pub async fn job_owner(&self, job_id: &str) -> Result<String, ApiError> {
        if let Some(view) = self.view(job_id) {
            return Ok(view.owner);
        }
        let id = job_id.to_string();
        self.inner
            .producer
            .storage
            .with_db(move |c| Ok(store::job_account(c, &id)?))
            .await?
            .ok_or(ApiError::NotFound)
    }

    /// 一个批次此刻的概况。
    pub async fn batch_view(&self, batch_id: &str) -> Result<BatchView, ApiError> {
        let id = batch_id.to_string();
        let row = self
            .inner
            .producer
            .storage
            .with_db(move |c| Ok(store::batch_row(c, &id)?))
            .await?
            .ok_or(ApiError::NotFound)?;
        Ok(summarize(row, &self.table()))
    }
}

/// 数各状态的任务：还在内存里的以内存为准（库里的状态是异步写的，可能慢一步），暂停以内存为准。
fn summarize(row: BatchRow, table: &Table) -> BatchView {
    let mut view = BatchView {
        paused: table.paused.contains(&row.id) || (row.paused && !table_knows(table, &row.id)),
        id: row.id,
        name: row.name,
        created_at: row.created_at,
        total: row.jobs.len() as u32,
        done: 0,
        failed: 0,
        cancelled: 0,
        running: 0,
        queued: 0,
    };
    for (id, stored) in &row.jobs {
        let state = table.jobs.get(id).map_or(*stored, |j| j.row.state);
        match state {
            JobState::Done => view.done += 1,
            JobState::Failed | JobState::Interrupted | JobState::Unsaved => view.failed += 1,
            JobState::Cancelled => view.cancelled += 1,
            JobState::Running => view.running += 1,
            JobState::Queued => view.queued += 1,
        }
    }
    view
}

/// 内存里有没有这个批次的任务（有则暂停状态以内存为准）。
fn table_knows(table: &Table, batch_id: &str) -> bool {
    table.jobs.values().any(|j| j.batch.id == batch_id)
}
