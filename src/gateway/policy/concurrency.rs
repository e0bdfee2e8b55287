//! 并发上限：全服务器同时在途的上游调用不超过 `limits.max_concurrent`；
//! 超出的请求排队等待，排队的超过 `limits.queue_size` 时立即拒绝（503），不无限堆积。

use crate::gateway::GatewayError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct ConcurrencyLimit {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue_size: usize,
}

impl ConcurrencyLimit {
    pub fn new(max_concurrent: usize, queue_size: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            waiting: AtomicUsize::new(0),
            queue_size,
        }
    }

    /// 取得一个在途名额；队列已满时返回 `QueueFull`。
    pub async fn acquire(&self) -> Result<OwnedSemaphorePermit, GatewayError> {
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue_size {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(GatewayError::QueueFull);
        }
        let permit = self.permits.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        Ok(permit.expect("信号量从不关闭"))
    }

    pub fn in_flight(&self, max_concurrent: usize) -> usize {
        max_concurrent.saturating_sub(self.permits.available_permits())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_queue_is_refused_at_once() {
        let limit = Arc::new(ConcurrencyLimit::new(1, 1));
        let held = limit.acquire().await.unwrap();
        let waiter = {
            let limit = limit.clone();
            tokio::spawn(async move { limit.acquire().await.map(|_| ()) })
        };
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(matches!(
            limit.acquire().await,
            Err(GatewayError::QueueFull)
        ));
        drop(held);
        waiter.await.unwrap().unwrap();
    }
}
