//! 调度与运行：在并发上限内按先后启动排队的任务（`pump`），认领后经生产线生成（`run`、`execute`），
//! 把网关的进度与按时间的估计折成百分比（`on_progress`、`refresh`），结束时记下结果（`finish`）。

use super::estimate::{self, Reading};
use super::store::Batch;
use super::table::{trim, Job, Table};
use super::views::job_image;
use super::writer::Claim;
use super::{Change, JobManager, TICK};
use crate::gateway::{ImageRequest, Progress, ProgressEvent};
use crate::produce::{ProduceFailed, Produced, References};
use crate::types::JobState;
use std::sync::Arc;
use std::time::Instant;

impl JobManager {
    /// 在并发上限内，按先后启动排队的任务；暂停的批次里的任务留在原位。
    pub(super) fn pump(&self) {
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
    pub(super) async fn run(
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

    pub(super) async fn execute(&self, id: &str, batch: &Batch) -> Result<Produced, ProduceFailed> {
        let producer = &self.inner.producer;
        let (run, prompt, reference_ids) = self
            .table()
            .jobs
            .get(id)
            .map(|j| (j.row.run, j.row.prompt.clone(), j.row.reference_ids.clone()))
            .unwrap_or_default();
        let references = References::load(&producer.storage, &reference_ids).await?;
        let references = match &batch.mask {
            // 局部修改：每次运行（含重试）都按同一个蒙版改第一张参考图。
            Some(mask) => {
                let region = region_of(&producer.storage, mask, &references).await?;
                references.with_region(Some(region))
            }
            None => references,
        };
        let (this, job_id) = (self.clone(), id.to_string());
        let model = (!batch.model.is_empty()).then(|| batch.model.clone());
        let request = ImageRequest::new(
            prompt,
            batch.aspect_ratio,
            batch.image_size,
            model,
            crate::types::usage::STUDIO_CLIENT,
        )
        .reporting(Progress::new(move |event| this.on_progress(&job_id, event)))
        // 每个任务、每次运行一个种子：同一批的几张各不相同，重试也可能不同。
        .seeded(seed_for(id, run))
        .grounded(batch.google_search)
        .on_behalf_of(batch.account.clone());
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
    pub(super) fn on_progress(&self, id: &str, event: ProgressEvent) {
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
    pub(super) fn refresh(&self, id: &str) {
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

    pub(super) fn update_percent(&self, job: &mut Job) {
        let (expected, _) = self.expected_ms(job);
        let reading = Reading {
            phase: job.phase,
            elapsed_ms: job.elapsed_ms() as f64,
            bytes_done: job.bytes_done,
            bytes_total: job.bytes_total,
        };
        // 只增不减；保存完成前不到 100。
        job.percent = job
            .percent
            .max(estimate::percent(&reading, expected))
            .min(99.0);
    }

    pub(super) fn finish(&self, id: &str, result: Result<Produced, ProduceFailed>) {
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
            job.final_elapsed_ms = job.elapsed_ms();
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
pub(super) fn seed_for(job_id: &str, run: u32) -> i32 {
    let digest = crate::web::sha256_hex(format!("{job_id}:{run}"));
    i32::from_str_radix(&digest[..7], 16).unwrap_or(0)
}

/// 批次的蒙版（上传的 PNG 的 id）对第一张参考图的区域（见 `crate::region`）。
pub async fn region_of(
    storage: &crate::storage::Storage,
    mask: &str,
    references: &References,
) -> Result<std::sync::Arc<crate::region::RegionEdit>, crate::error::ApiError> {
    let mask = References::load(storage, &[mask.to_string()]).await?;
    let (Some(mask), Some(first)) = (mask.images.first(), references.images.first()) else {
        return Err(crate::error::ApiError::InvalidRequest(
            "局部修改要有蒙版与一张参考图".into(),
        ));
    };
    Ok(std::sync::Arc::new(
        crate::region::RegionEdit::prepare(mask.data.clone(), first).await?,
    ))
}
