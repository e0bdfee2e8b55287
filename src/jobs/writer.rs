//! 写库：任务状态的每次转换由一个写入任务按发生顺序写进数据库（`writer`）；开始运行时的写入就是认领，
//! 回信告诉运行它的任务认领到了没有（见 `scheduler.rs` 的 `run`）。还没写进库的任务记在 `unwritten` 里，
//! 跟上别的实例时不拿库里的旧样子盖掉它们（见 `cluster.rs`）。

use super::store::{self, JobRow};
use super::{now_string, JobManager};
use crate::storage::Storage;
use crate::types::JobState;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// 认领一个排队任务的结果：认领到了、被别的实例先认领了，或写不进库。
pub(super) type Claim = Result<bool, String>;

pub(super) enum Write {
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

impl JobManager {
    pub(super) fn persist(&self, row: &JobRow) {
        self.mark_unwritten(&row.id);
        let _ = self
            .inner
            .writes
            .send(Write::Update(Box::new(row.clone()), now_string(), None));
    }

    pub(super) fn mark_unwritten(&self, id: &str) {
        *self
            .inner
            .unwritten
            .lock()
            .expect("锁未被毒化")
            .entry(id.to_string())
            .or_default() += 1;
    }

    /// 写入“生成中”（认领）；回信说认领到了没有。
    pub(super) fn claim(&self, row: &JobRow) -> tokio::sync::oneshot::Receiver<Claim> {
        self.mark_unwritten(&row.id);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ =
            self.inner
                .writes
                .send(Write::Update(Box::new(row.clone()), now_string(), Some(tx)));
        rx
    }
}

/// 按顺序执行状态写入：同一任务的“开始”不会晚于它的“结束”落盘。
/// 写库出错（连接断了、库忙）时隔 0.2、0.8、3.2 秒重试，仍不行才放弃（后面的写入等着，先后不乱）。
/// 写入被库拒绝的（库里它已是别处的另一次运行，或已被别处改过）以及取消（可能取消的是别的实例上较新的一次运行），
/// 把任务 id 交给 `stale`：任务表按库里的样子重新读它，页面不会一直显示库里没有的状态。
pub(super) async fn writer(
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
