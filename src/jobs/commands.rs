//! 对任务的操作：提交一批、取消、重试、重新保存、移除、收藏变了、查一个批次。每个操作改任务表、写库、通知。

use super::store::{self, Batch, JobRow};
use super::table::{Job, Table};
use super::views::job_image;
use super::writer::Write;
use super::{new_id, now_string, Change, JobManager};
use crate::error::ApiError;
use crate::types::batch::Plan;
use crate::types::{JobState, JobView, SubmitRequest};
use std::sync::Arc;

impl JobManager {
    /// 排进一批已经收下的任务（校验、模型、排队上限与额度都由 `crate::admit::batch` 做过）：
    /// 批次与任务一次写库，每个展开的任务一张卡片。`client` 是提交者（排队上限按它计）。
    pub async fn enqueue(
        &self,
        req: &SubmitRequest,
        plan: Plan,
        model: String,
        client: &str,
        account: &str,
    ) -> Result<Vec<JobView>, ApiError> {
        let (mut batch, rows) = new_batch(req, plan, model, client);
        batch.account = account.to_string();
        let batch = Arc::new(batch);
        let rows = Arc::new(rows);
        let (b, r) = (batch.clone(), rows.clone());
        self.inner
            .producer
            .storage
            .with_db(move |c| Ok(store::insert_batch(c, &b, &r)?))
            .await?;
        tracing::info!(batch = %batch.id, count = batch.count, "已提交一批任务");
        let views = self.add_to_table(&batch, &rows);
        for row in rows.iter() {
            self.notify(Change::Job(row.id.clone()));
        }
        self.notify(Change::Queue);
        self.pump();
        Ok(views)
    }

    /// 新提交的批次的任务排进任务表与队列，返回它们的样子（新的在前）。
    fn add_to_table(&self, batch: &Arc<Batch>, rows: &[JobRow]) -> Vec<JobView> {
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
    }

    /// 排队上限：全服务器排队的任务不超过 `limits.max_queued_jobs`，每个提交者不超过它的四分之一。
    pub fn check_queue_room(&self, client: &str, adding: usize) -> Result<(), ApiError> {
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
            job.final_elapsed_ms = job.elapsed_ms();
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
                account: batch.account.clone(),
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
}

/// 展开好的一次提交 → 批次与它的任务（都还是排队中，还没写库）。
fn new_batch(req: &SubmitRequest, plan: Plan, model: String, client: &str) -> (Batch, Vec<JobRow>) {
    let created_at = now_string();
    let batch = Batch {
        id: new_id(),
        name: plan.name,
        prompt: if req.prompts.is_empty() {
            req.prompt.trim().to_string()
        } else {
            req.prompts
                .iter()
                .map(|p| p.text())
                .collect::<Vec<_>>()
                .join("\n")
        },
        reference_ids: req.references.clone(),
        count: plan.jobs.len() as u32,
        aspect_ratio: req.aspect_ratio,
        image_size: req.image_size,
        model,
        created_at: created_at.clone(),
        client: client.to_string(),
        account: String::new(),
        mask: req.mask.clone(),
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
    (batch, rows)
}
