//! 任务表：本实例内存里的任务（卡片）、排队顺序、运行中的与暂停着的批次，以及一个任务（`Job`）的进度与用时。
//! 任务表只在 `JobManager` 的锁里改；这里的函数都不加锁、不通知，只改表。

use super::store::{self, Batch, JobRow};
use super::{epoch_ms, KEEP_IN_MEMORY};
use crate::types::{JobState, Phase};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
pub(super) struct Table {
    pub(super) jobs: HashMap<String, Job>,
    /// 创建先后（旧的在前）。
    pub(super) order: Vec<String>,
    pub(super) queue: VecDeque<String>,
    pub(super) running: HashMap<String, tokio::task::AbortHandle>,
    /// 暂停着的批次：其中排队的任务不开始。
    pub(super) paused: HashSet<String>,
}

impl Table {
    /// 启动时从库里读出的任务建表：排队中的排进队列，置顶过的批次在前（越晚置顶越靠前），其余按提交先后。
    pub(super) fn from_loaded(loaded: Vec<(Batch, JobRow)>) -> Self {
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
        let mut queue: Vec<String> = table.queue.drain(..).collect();
        queue.sort_by_key(|id| std::cmp::Reverse(table.jobs[id].batch.priority));
        table.queue = queue.into();
        table
    }

    /// 将要开始的排队任务（暂停的批次除外），先开始的在前。
    pub(super) fn runnable_queue(&self) -> impl Iterator<Item = &String> {
        self.queue.iter().filter(|id| {
            self.jobs
                .get(*id)
                .is_some_and(|j| !self.paused.contains(&j.batch.id))
        })
    }
}

pub(super) struct Job {
    pub(super) batch: Arc<Batch>,
    pub(super) row: JobRow,
    pub(super) phase: Option<Phase>,
    pub(super) percent: f64,
    pub(super) attempt: u32,
    /// 这一次运行已在库里认领到（本实例在生成它）。只有认领到了的进度才写进库里给别的实例看。
    pub(super) claimed: bool,
    pub(super) started: Option<Instant>,
    /// 结束时的用时（结束后不再增长）。
    pub(super) final_elapsed_ms: u64,
    pub(super) bytes_done: u64,
    pub(super) bytes_total: Option<u64>,
    /// 最近一次变化（Unix 毫秒）。
    pub(super) changed_at_ms: u64,
}

impl Job {
    pub(super) fn new(batch: Arc<Batch>, row: JobRow) -> Self {
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
    pub(super) fn reset(&mut self, state: JobState) {
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

    /// 这次运行至今（或到结束）的用时。
    pub(super) fn elapsed_ms(&self) -> u64 {
        match (self.row.state, self.started) {
            (JobState::Running, Some(started)) => started.elapsed().as_millis() as u64,
            // 没在本实例上看着它跑完的（重启后从库里读出的、别的实例生成的）：库里不单独存用时，
            // 按这次运行各次尝试的耗时相加（保存图片的几毫秒不计）。
            _ if self.final_elapsed_ms == 0 => self.row.attempts.iter().map(|a| a.latency_ms).sum(),
            _ => self.final_elapsed_ms,
        }
    }

    /// 换上库里的样子（任务不在本实例上运行）：别处开始了新的一次运行时，上一次的进度与用时不算。
    pub(super) fn adopt(&mut self, row: JobRow) {
        if row.run != self.row.run {
            self.percent = 0.0;
            self.started = None;
            self.attempt = 0;
        }
        if row.state == JobState::Done {
            self.percent = 100.0;
        }
        if row.state != JobState::Running {
            self.final_elapsed_ms = self.elapsed_ms();
            self.phase = None;
        }
        self.row = row;
    }

    /// 本实例正在生成的任务此刻的进度（写进库里给别的实例看）。
    pub(super) fn progress(&self) -> store::Progress {
        store::Progress {
            job_id: self.row.id.clone(),
            percent: self.percent.floor().clamp(0.0, 99.0) as u8,
            phase: self.phase,
            attempt: self.attempt,
            elapsed_ms: self.elapsed_ms(),
            upstream: self.row.upstream.clone(),
        }
    }

    /// 别的实例写进库里的进度用到本实例的任务表上（只增不减，与本实例上一样）；返回是否变了。
    pub(super) fn follow_progress(&mut self, p: &store::Progress) -> bool {
        let phase = p.phase;
        let percent = self.percent.max(f64::from(p.percent));
        let changed = percent != self.percent
            || phase != self.phase
            || p.attempt != self.attempt
            || p.upstream != self.row.upstream;
        self.percent = percent;
        self.phase = phase;
        self.attempt = p.attempt;
        self.row.upstream = p.upstream.clone();
        // 用时从这里接着走（页面上的秒数不停在上一次读到的值）；只往前调，秒数不倒退。
        let started = Instant::now().checked_sub(Duration::from_millis(p.elapsed_ms));
        self.started = match (self.started, started) {
            (Some(old), Some(new)) => Some(old.min(new)),
            (old, new) => new.or(old),
        };
        changed
    }
}

/// 内存里只留最近的任务（进行中的永远保留）。
pub(super) fn trim(table: &mut Table) {
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
            account: String::new(),
            mask: None,
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
