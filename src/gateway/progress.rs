//! 单次请求的进度回报：哪一次尝试、处在哪个阶段、收发了多少字节。
//!
//! 调用方（工作台的任务管理器）在 `ImageRequest::progress` 里放一个回调；`/v1` 不关心进度，留空即可。
//! 阶段全部来自真实事件（见 `upstream/http.rs`）：请求体最后一块交给连接后才算“等待上游”，收到响应头才算“接收”。

use crate::types::job::Phase;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub enum ProgressEvent {
    /// 开始对某个上游的第 `number` 次尝试（从 1 起，跨上游累计）。
    Attempt {
        upstream: String,
        number: u32,
    },
    Phase(Phase),
    /// 当前阶段（发送或接收）已传输的字节数与总数（未知时为空）。
    Bytes {
        done: u64,
        total: Option<u64>,
    },
}

/// 进度回调；默认不回报。
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<dyn Fn(ProgressEvent) + Send + Sync>>);

impl Progress {
    pub fn new(f: impl Fn(ProgressEvent) + Send + Sync + 'static) -> Self {
        Self(Some(Arc::new(f)))
    }

    pub fn report(&self, event: ProgressEvent) {
        if let Some(f) = &self.0 {
            f(event);
        }
    }
}
