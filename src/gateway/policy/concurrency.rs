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
        // 排队的名额随作用域归还：等待中的请求被取消（客户端断开、外层 future 被丢弃）时也一样。
        let _waiting = Waiting(&self.waiting);
        let permit = self.permits.clone().acquire_owned().await;
        Ok(permit.expect("信号量从不关闭"))
    }

    /// 正在排队的请求数。
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    pub fn in_flight(&self, max_concurrent: usize) -> usize {
        max_concurrent.saturating_sub(self.permits.available_permits())
    }
}

/// 一个排队中的请求：离开作用域时把排队数减一。
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
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
        // 等到它确实在排队（看排队数，不靠固定的睡眠）。
        while limit.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            limit.acquire().await,
            Err(GatewayError::QueueFull)
        ));
        drop(held);
        waiter.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_dropped_waiter_gives_its_queue_slot_back() {
        let limit = Arc::new(ConcurrencyLimit::new(1, 2));
        let held = limit.acquire().await.unwrap();
        // 两个排队的请求被放弃（例如客户端断开）。
        for _ in 0..2 {
            let waiting = limit.acquire();
            let gave_up = tokio::time::timeout(std::time::Duration::from_millis(5), waiting).await;
            assert!(gave_up.is_err(), "名额被占着，应当在排队");
        }
        assert_eq!(limit.waiting(), 0, "放弃的排队名额都已归还");
        // 下一个请求照常排队，而不是 QueueFull。
        let next = {
            let limit = limit.clone();
            tokio::spawn(async move { limit.acquire().await.map(|_| ()) })
        };
        while limit.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        drop(held);
        next.await.unwrap().unwrap();
    }
}
