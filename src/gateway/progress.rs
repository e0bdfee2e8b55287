//! 单次请求的进度回报：哪一次尝试、处在哪个阶段、收发了多少字节。
//!
//! 调用方（工作台的任务管理器）在 `ImageRequest::progress` 里放一个回调；`/v1` 不关心进度，留空即可。
//! 阶段全部来自真实事件：请求体最后一块交给连接后才算“等待上游”，收到响应头才算“接收”。

use super::upstream::transport_error;
use super::GatewayError;
use crate::app::types::Phase;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
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

/// 每次交给连接的请求体块大小。
const CHUNK: usize = 64 * 1024;

/// 以 JSON 发送请求体，并回报发送进度：每交出一块报一次字节数，最后一块交出后进入“等待上游”。
/// 带上 `Content-Length`，上游（及其前面的代理）看到的仍是普通的定长请求。
pub fn send_json(
    call: reqwest::RequestBuilder,
    body: &impl serde::Serialize,
    progress: &Progress,
) -> reqwest::RequestBuilder {
    let data = Bytes::from(serde_json::to_vec(body).expect("请求体总能序列化为 JSON"));
    let total = data.len() as u64;
    progress.report(ProgressEvent::Phase(Phase::Sending));
    let chunks: Vec<Bytes> = (0..data.len())
        .step_by(CHUNK)
        .map(|start| data.slice(start..(start + CHUNK).min(data.len())))
        .collect();
    let count = chunks.len();
    let progress = progress.clone();
    let mut sent = 0u64;
    let stream = futures::stream::iter(chunks.into_iter().enumerate().map(move |(i, chunk)| {
        sent += chunk.len() as u64;
        progress.report(ProgressEvent::Bytes {
            done: sent,
            total: Some(total),
        });
        if i + 1 == count {
            progress.report(ProgressEvent::Phase(Phase::Waiting));
        }
        Ok::<_, std::io::Error>(chunk)
    }));
    call.header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::CONTENT_LENGTH, total)
        .body(reqwest::Body::wrap_stream(stream))
}

/// 读完响应体，边读边回报接收进度（总数取 `Content-Length`，没有时为空）。
pub async fn read_body(
    upstream: &str,
    response: reqwest::Response,
    progress: &Progress,
) -> Result<Bytes, GatewayError> {
    progress.report(ProgressEvent::Phase(Phase::Receiving));
    let total = response.content_length();
    let mut buf = BytesMut::with_capacity(total.unwrap_or(0).min(64 << 20) as usize);
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| transport_error(upstream, e))?;
        buf.extend_from_slice(&chunk);
        progress.report(ProgressEvent::Bytes {
            done: buf.len() as u64,
            total,
        });
    }
    Ok(buf.freeze())
}
