//! 任务此刻的样子（`JobView`：卡片与 `/ws` 推送的内容）：状态、进度、用时与预计剩余时间、排队顺序。

use super::store::Batch;
use super::table::{Job, Table};
use super::{estimate, JobManager};
use crate::types::job::QUEUE_SHOWN;
use crate::types::{JobImage, JobState, JobView};

impl JobManager {
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

    pub(super) fn expected_ms(&self, job: &Job) -> (f64, bool) {
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
    pub(super) fn model_for(&self, batch: &Batch) -> String {
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

    /// 任务表里一个任务此刻的样子。
    pub(super) fn view_in(&self, table: &Table, id: &str) -> Option<JobView> {
        let job = table.jobs.get(id)?;
        Some(self.view_of(job, table.paused.contains(&job.batch.id)))
    }

    pub(super) fn view_of(&self, job: &Job, paused: bool) -> JobView {
        let elapsed_ms = job.elapsed_ms();
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
            owner: b.account.clone(),
            mask: b.mask.clone(),
        }
    }
}

/// 任务产出的图（卡片上显示的那部分）。
pub(super) fn job_image(record: &crate::storage::ImageRecord) -> JobImage {
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
