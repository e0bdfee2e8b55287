//! 两种流式回答（对话的 `stream: true` 与任务的事件流）共用的保活。

use axum::response::sse::KeepAlive;
use std::time::Duration;

/// 等待期间每隔一会儿发一行保活注释（`: keep-alive`）：代理与客户端常在 30–60 秒没有数据时断开。
pub(super) fn keep_alive() -> KeepAlive {
    KeepAlive::new().interval(interval()).text("keep-alive")
}

/// 保活的间隔：10 秒。环境变量 `FACTORY_SSE_KEEPALIVE_MS` 可改（测试用它在几百毫秒内看到保活）。
fn interval() -> Duration {
    std::env::var("FACTORY_SSE_KEEPALIVE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(10))
}
