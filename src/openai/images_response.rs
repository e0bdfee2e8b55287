//! `/v1/images/*` 的响应体：OpenAI 的 `{"created":…,"data":[{"b64_json"|"url", "revised_prompt"}]}`。
//!
//! 大图的内存（DESIGN §8）：`b64_json` 不在内存里拼好再发。存进图库的图从磁盘上的文件（或对象存储的响应流）边读边编码，
//! 每次 192 KB，一个 16 张 20 MB 的响应在服务器里只占几百 KB；`Content-Length` 事先算得出来
//! （base64 的长度只取决于文件大小）。只有没能存下的图（它只在内存里）才以整段 base64 发出。

use super::idempotency::Produced;
use crate::error::ApiError;
use crate::state::AppState;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Serialize;
use tokio::io::AsyncReadExt;

/// 图片链接的绝对前缀：优先 `server.public_url`，否则按请求的 Host 拼。
pub fn public_base_url(state: &AppState, headers: &HeaderMap) -> String {
    let public_url = state.config.load().server.public_url.clone();
    if !public_url.is_empty() {
        return public_url.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// 每次从文件读多少字节再编码：3 的倍数，块与块之间不出现填充。
const CHUNK: usize = 3 * 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ResponseFormat {
    B64Json,
    Url,
}

/// `response_format`：默认 `b64_json`。
pub(crate) fn response_format(value: Option<&str>) -> Result<ResponseFormat, ApiError> {
    match value {
        None | Some("b64_json") => Ok(ResponseFormat::B64Json),
        Some("url") => Ok(ResponseFormat::Url),
        Some(other) => Err(ApiError::InvalidRequest(format!(
            "response_format 只能是 b64_json 或 url，收到“{other}”"
        ))),
    }
}

/// 每张图里除 `b64_json` 以外的字段，照常由 serde_json 序列化。
#[derive(Serialize)]
struct Fields {
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    revised_prompt: Option<String>,
    /// 扩展字段：实际提供这张图的模型。
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
}

/// 响应体的一段：现成的文字，或一个要边读边编码成 base64 的文件。
enum Part {
    Text(Bytes),
    /// 边读边编码：本地文件，或对象存储的响应流。
    Base64 {
        reader: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
        len: u64,
    },
}

impl Part {
    fn len(&self) -> u64 {
        match self {
            Part::Text(b) => b.len() as u64,
            Part::Base64 { len, .. } => len.div_ceil(3) * 4,
        }
    }
}

/// 响应里的一张图：`b64_json`（一段文字或一个文件）与其余字段。
struct Entry {
    b64: Option<Part>,
    fields: Fields,
}

/// 把生成好的图写成 OpenAI 的图像响应。没能存进图库的图（`id` 为空）一律以 `b64_json` 给出——
/// 它已经付过钱，调用方必须拿到——并在响应头 `X-Factory-Unsaved` 里说有几张没存下。
pub(crate) async fn images_response(
    state: &AppState,
    headers: &HeaderMap,
    format: ResponseFormat,
    produced: Vec<Produced>,
) -> Result<Response, ApiError> {
    images_response_with(state, headers, format, produced, &serde_json::Map::new()).await
}

/// 同上，响应体的顶层另加 `extra` 里的字段（异步任务的 `id`、`status` 等），图照样边读边编码。
pub(crate) async fn images_response_with(
    state: &AppState,
    headers: &HeaderMap,
    format: ResponseFormat,
    produced: Vec<Produced>,
    extra: &serde_json::Map<String, serde_json::Value>,
) -> Result<Response, ApiError> {
    let base_url = public_base_url(state, headers);
    let ttl = state.config.load().server.file_url_ttl_s;
    let unsaved = produced.iter().filter(|p| p.id.is_none()).count();
    let mut entries = Vec::with_capacity(produced.len());
    for item in produced {
        let (b64, url) = match (item.id, item.base64) {
            (None, base64) => (base64.map(|b| Part::Text(b.into())), None),
            (Some(id), _) => match format {
                ResponseFormat::B64Json => (Some(open_image(state, &id).await?), None),
                // 链接带签名：调用方（例如聊天软件）的浏览器没有工作台会话也能打开，过期或被改动就打不开。
                ResponseFormat::Url => (
                    None,
                    Some(format!("{base_url}{}", state.url_signer.sign(&id, ttl))),
                ),
            },
        };
        let fields = Fields {
            url,
            revised_prompt: item.revised_prompt,
            model: item.model,
        };
        entries.push(Entry { b64, fields });
    }
    let mut response = body_response(chrono::Utc::now().timestamp(), entries, extra);
    if unsaved > 0 {
        response
            .headers_mut()
            .insert("x-factory-unsaved", unsaved.into());
    }
    Ok(response)
}

/// 拼出响应体：JSON 的骨架由 serde_json 写，`b64_json` 的内容作为单独的一段接进去——
/// 标准 base64 的字母表里没有要转义的字符，不必经过序列化器，也不必先拷进一个大字符串。
fn body_response(
    created: i64,
    entries: Vec<Entry>,
    extra: &serde_json::Map<String, serde_json::Value>,
) -> Response {
    let mut parts = Vec::new();
    let mut text = format!("{{\"created\":{created},\"data\":[");
    for (i, entry) in entries.into_iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        let fields = serde_json::to_string(&entry.fields).expect("响应结构总能序列化");
        match entry.b64 {
            None => text.push_str(&fields),
            Some(part) => {
                text.push_str("{\"b64_json\":\"");
                parts.push(Part::Text(std::mem::take(&mut text).into()));
                parts.push(part);
                text.push('"');
                // fields 形如 `{}` 或 `{"url":…}`：接在 b64_json 后面。
                if fields.len() > 2 {
                    text.push(',');
                }
                text.push_str(&fields[1..]);
            }
        }
    }
    text.push(']');
    for (key, value) in extra {
        let key = serde_json::to_string(key).expect("字符串总能序列化");
        let value = serde_json::to_string(value).expect("JSON 值总能序列化");
        text.push_str(&format!(",{key}:{value}"));
    }
    text.push('}');
    parts.push(Part::Text(text.into()));
    let length: u64 = parts.iter().map(Part::len).sum();
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/json".to_string(),
            ),
            (axum::http::header::CONTENT_LENGTH, length.to_string()),
        ],
        axum::body::Body::from_stream(body_stream(parts)),
    )
        .into_response()
}

/// 打开图库里的一张图。
async fn open_image(state: &AppState, id: &str) -> Result<Part, ApiError> {
    let record = state
        .storage
        .get(id.to_string())
        .await?
        .ok_or(ApiError::NotFound)?;
    // 文件（或对象存储的响应）现在就打开：之后即使它被删进回收站再清掉，已打开的照样读得完。
    let opened = async {
        match record.local_path() {
            Some(path) => {
                let file = tokio::fs::File::open(path).await?;
                let len = file.metadata().await?.len();
                Ok::<_, std::io::Error>(Part::Base64 {
                    reader: Box::new(file),
                    len,
                })
            }
            None => {
                let (len, stream) = state
                    .storage
                    .blobs()
                    .get_stream(&record.root, &record.rel_path)
                    .await
                    .map_err(std::io::Error::other)?;
                Ok(Part::Base64 {
                    reader: Box::new(tokio_util::io::StreamReader::new(stream)),
                    len,
                })
            }
        }
    };
    opened.await.map_err(|e| {
        tracing::error!(id = %record.id, "读取图片失败：{e}");
        ApiError::NotFound
    })
}

fn body_stream(parts: Vec<Part>) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
    futures::stream::iter(parts).flat_map(|part| match part {
        Part::Text(text) => futures::stream::once(async move { Ok(text) }).left_stream(),
        Part::Base64 { reader, len } => file_base64(reader, len).right_stream(),
    })
}

/// 文件内容的标准 base64，一块一块地给出。
fn file_base64(
    reader: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
    len: u64,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
    futures::stream::try_unfold((reader, len), |(mut file, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let take = left.min(CHUNK as u64) as usize;
        let mut raw = vec![0u8; take];
        file.read_exact(&mut raw).await?;
        let encoded = base64_simd::STANDARD.encode_to_string(&raw);
        Ok(Some((Bytes::from(encoded), (file, left - take as u64))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn text(s: &str) -> Option<Part> {
        Some(Part::Text(Bytes::copy_from_slice(s.as_bytes())))
    }

    async fn file(dir: &std::path::Path, data: &[u8]) -> Option<Part> {
        let path = dir.join(format!("{}.bin", data.len()));
        std::fs::write(&path, data).unwrap();
        let file = tokio::fs::File::open(&path).await.unwrap();
        Some(Part::Base64 {
            reader: Box::new(file),
            len: data.len() as u64,
        })
    }

    fn fields(url: Option<&str>, revised_prompt: Option<&str>) -> Fields {
        Fields {
            url: url.map(Into::into),
            revised_prompt: revised_prompt.map(Into::into),
            model: None,
        }
    }

    /// 响应体与 serde_json 写出的同一个 JSON 相同，`Content-Length` 与实际长度相同；
    /// 文件分块编码（块边界、结尾的填充）与一次编码整个文件的结果相同。
    #[tokio::test]
    async fn response_body_is_the_json_serde_would_write() {
        let dir = tempfile::tempdir().unwrap();
        let b64 = |data: &[u8]| base64::engine::general_purpose::STANDARD.encode(data);
        let mut cases: Vec<(Vec<Entry>, serde_json::Value)> = vec![
            (vec![], serde_json::json!([])),
            (
                vec![
                    Entry {
                        b64: text("AAAA"),
                        fields: fields(None, Some("带 \"引号\" 与\n换行")),
                    },
                    Entry {
                        b64: None,
                        fields: fields(Some("http://127.0.0.1/files/abc"), Some("第二张")),
                    },
                ],
                serde_json::json!([
                    {"b64_json": "AAAA", "revised_prompt": "带 \"引号\" 与\n换行"},
                    {"url": "http://127.0.0.1/files/abc", "revised_prompt": "第二张"},
                ]),
            ),
        ];
        for size in [0, 1, 2, 3, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 2] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
            cases.push((
                vec![Entry {
                    b64: file(dir.path(), &data).await,
                    fields: fields(None, None),
                }],
                serde_json::json!([{"b64_json": b64(&data)}]),
            ));
        }
        let extra: serde_json::Map<String, serde_json::Value> = serde_json::from_value(
            serde_json::json!({"id": "任务", "status": "succeeded", "done": 2}),
        )
        .unwrap();
        for (i, (entries, data)) in cases.into_iter().enumerate() {
            // 一半的情况带着任务的字段（`GET /v1/images/tasks/{id}`）。
            let with_extra = i % 2 == 1;
            let empty = serde_json::Map::new();
            let response = body_response(42, entries, if with_extra { &extra } else { &empty });
            let length: usize = response.headers()[axum::http::header::CONTENT_LENGTH]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            assert_eq!(body.len(), length, "Content-Length 与实际长度一致");
            let got: serde_json::Value = serde_json::from_slice(&body).unwrap();
            let mut want = serde_json::json!({"created": 42, "data": data});
            if with_extra {
                want.as_object_mut().unwrap().extend(extra.clone());
            }
            assert_eq!(got, want);
        }
    }
}
