//! 上游 HTTP 调用的共用部分：分块发送 JSON 请求体并回报发送进度、边读边回报接收进度、
//! 传输层错误的归类与 `Retry-After`。各方言的适配器都用它们。

use crate::gateway::progress::{Progress, ProgressEvent};
use crate::gateway::GatewayError;
use crate::types::job::Phase;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

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
/// 超过 `max_bytes` 的响应不读完：声明的长度超了直接拒绝，没声明的读到超出为止（`ResponseTooLarge`）。
pub async fn read_body(
    upstream: &str,
    response: reqwest::Response,
    progress: &Progress,
    max_bytes: usize,
) -> Result<Bytes, GatewayError> {
    let too_large = || GatewayError::ResponseTooLarge {
        upstream: upstream.to_string(),
        limit_mb: (max_bytes >> 20) as u64,
    };
    progress.report(ProgressEvent::Phase(Phase::Receiving));
    let total = response.content_length();
    if total.is_some_and(|n| n > max_bytes as u64) {
        return Err(too_large());
    }
    let mut buf = BytesMut::with_capacity(total.unwrap_or(0) as usize);
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| transport_error(upstream, e))?;
        if buf.len() + chunk.len() > max_bytes {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
        progress.report(ProgressEvent::Bytes {
            done: buf.len() as u64,
            total,
        });
    }
    Ok(buf.freeze())
}

/// 上游回了 3xx：不跟随（客户端已关掉重定向），报成带去向主机的错误。去向只留协议、主机与路径，不含查询串。
pub fn refuse_redirect(upstream: &str, response: &reqwest::Response) -> Result<(), GatewayError> {
    if !response.status().is_redirection() {
        return Ok(());
    }
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|l| tidy(l.split(['?', '#']).next().unwrap_or("")))
        .unwrap_or_else(|| "（未说明）".into());
    Err(GatewayError::Redirect {
        upstream: upstream.to_string(),
        status: response.status().as_u16(),
        location,
    })
}

/// 上游给的错误说明：去掉网址里的查询串（可能带着 `?key=`），空白合成一个，最多 200 个字符。
pub fn tidy(text: &str) -> String {
    const MAX_CHARS: usize = 200;
    let words: Vec<String> = text
        .split_whitespace()
        .map(|word| match word.find("://") {
            Some(_) => match word.split_once('?') {
                Some((url, _)) => format!("{url}?…"),
                None => word.to_string(),
            },
            None => word.to_string(),
        })
        .collect();
    let joined = words.join(" ");
    if joined.chars().count() <= MAX_CHARS {
        joined
    } else {
        let cut: String = joined.chars().take(MAX_CHARS).collect();
        format!("{cut}…")
    }
}

/// 传输层错误：连不上（请求没发出去）与连接中途断开（响应被截断）分开归类。
pub fn transport_error(upstream: &str, e: reqwest::Error) -> GatewayError {
    let upstream = upstream.to_string();
    if e.is_connect() {
        GatewayError::Connect {
            upstream,
            detail: root_cause(&e),
        }
    } else {
        GatewayError::BadResponse {
            upstream,
            detail: format!("连接中断：{}", root_cause(&e)),
        }
    }
}

/// reqwest 的错误信息嵌套很深，取最底层的原因给人看。
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    tidy(&cur.to_string())
}

/// `Retry-After` 头（秒数形式）。
pub fn retry_after_secs(response: &reqwest::Response) -> Option<f64> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_text_is_trimmed_and_never_carries_a_query_string() {
        let text = "error sending request for url (https://proxy.example/v1beta/models/m:generateContent?key=AIza-secret)";
        let tidy = tidy(text);
        assert!(!tidy.contains("AIza-secret"), "{tidy}");
        assert!(
            tidy.contains("https://proxy.example/v1beta/models/m:generateContent?…"),
            "{tidy}"
        );
        let long = "字".repeat(500);
        assert_eq!(super::tidy(&long).chars().count(), 201);
        assert_eq!(super::tidy("  a \n  b  "), "a b");
    }
}
