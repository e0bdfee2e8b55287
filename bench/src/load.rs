//! 负载发生器：固定并发的闭环客户端（每个 worker 发完一个再发下一个），有请求数与时长两道上限；
//! 每个响应都解出图像并检查是一张完整的 PNG。延迟用 HdrHistogram 记录（微秒）。

use base64::Engine;
use bytes::Bytes;
use hdrhistogram::Histogram;
use serde::Deserialize;
use std::borrow::Cow;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// 响应是哪种协议：决定从哪里取出图像。
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Wire {
    /// Gemini `generateContent`：`candidates[0].content.parts[]` 中最后一个非 thought 的 `inlineData`。
    Gemini,
    /// OpenAI Images：`data[].b64_json` 的最后一张。
    OpenAi,
}

/// 一个被测目标：同一种请求反复发送。
#[derive(Clone)]
pub struct Target {
    pub label: String,
    pub url: String,
    /// 同样的服务的其它地址（几个实例）：第 i 个 worker 固定发往 `[url, mirrors…]` 的第 i % n 个，
    /// 相当于前面有个轮流分配连接的负载均衡。
    pub mirrors: Vec<String>,
    pub body: Bytes,
    pub wire: Wire,
    pub headers: Vec<(String, String)>,
}

impl Target {
    /// 第 `i` 个 worker 用的目标：地址按 `mirrors` 轮流分配。
    fn for_worker(&self, i: usize) -> Target {
        let mut target = self.clone();
        if !self.mirrors.is_empty() {
            let urls: Vec<&String> = std::iter::once(&self.url).chain(&self.mirrors).collect();
            target.url = urls[i % urls.len()].clone();
        }
        target
    }
}

/// 每轮的上限：先到者为准。
#[derive(Clone, Copy)]
pub struct Limit {
    pub requests: u64,
    pub duration: Duration,
}

/// 一轮的结果。
pub struct LoadResult {
    pub latency_us: Histogram<u64>,
    pub ok: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// 收到的响应体（解压前）字节数合计。
    pub wire_bytes: u64,
}

impl LoadResult {
    pub fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// 第 `q` 分位（0–100）的延迟，毫秒。
    pub fn ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q / 100.0) as f64 / 1000.0
    }
}

/// 以 `concurrency` 个 worker 压 `target`。`gzip` 为真时声明 `Accept-Encoding: gzip` 并自行解压。
pub async fn run(target: &Target, concurrency: usize, limit: Limit, gzip: bool) -> LoadResult {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(300))
        .build()
        .expect("HTTP 客户端可以创建");
    let issued = Arc::new(AtomicU64::new(0));
    let shared = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let deadline = started + limit.duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|i| {
            let (client, target, issued, shared) = (
                client.clone(),
                target.for_worker(i),
                issued.clone(),
                shared.clone(),
            );
            tokio::spawn(async move {
                let mut local = Tally::default();
                while Instant::now() < deadline
                    && issued.fetch_add(1, Ordering::Relaxed) < limit.requests
                {
                    let t0 = Instant::now();
                    let outcome = one_request(&client, &target, gzip).await;
                    let us = t0.elapsed().as_micros() as u64;
                    match outcome {
                        Ok(bytes) => {
                            local.ok += 1;
                            local.wire_bytes += bytes;
                            local.latency.record(us.max(1)).ok();
                        }
                        Err(e) => {
                            local.failed += 1;
                            local.first_error.get_or_insert(e);
                        }
                    }
                }
                shared.lock().unwrap().merge(local);
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker 不会 panic");
    }
    let elapsed = started.elapsed();
    let tally = std::mem::take(&mut *shared.lock().unwrap());
    LoadResult {
        latency_us: tally.latency,
        ok: tally.ok,
        failed: tally.failed,
        first_error: tally.first_error,
        elapsed,
        wire_bytes: tally.wire_bytes,
    }
}

struct Tally {
    latency: Histogram<u64>,
    ok: u64,
    failed: u64,
    first_error: Option<String>,
    wire_bytes: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            latency: Histogram::new(3).expect("3 位有效数字的直方图"),
            ok: 0,
            failed: 0,
            first_error: None,
            wire_bytes: 0,
        }
    }
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.latency.add(&other.latency).ok();
        self.ok += other.ok;
        self.failed += other.failed;
        self.wire_bytes += other.wire_bytes;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// 发一次请求、读完整个响应体、取出并检查图像。返回响应体的线上字节数。
async fn one_request(client: &reqwest::Client, target: &Target, gzip: bool) -> Result<u64, String> {
    let mut request = client
        .post(&target.url)
        .header("content-type", "application/json")
        .body(target.body.clone());
    for (k, v) in &target.headers {
        request = request.header(k, v);
    }
    if gzip {
        request = request.header("accept-encoding", "gzip");
    }
    let response = request.send().await.map_err(|e| format!("请求失败：{e}"))?;
    let status = response.status();
    let gzipped = response
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("读取响应失败：{e}"))?;
    let wire_bytes = body.len() as u64;
    let body = if gzipped {
        let mut plain = Vec::with_capacity(body.len() * 2);
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut plain)
            .map_err(|e| format!("gzip 解压失败：{e}"))?;
        Bytes::from(plain)
    } else {
        body
    };
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        return Err(format!("HTTP {status}：{text}"));
    }
    let png = extract_image(target.wire, &body)?;
    check_png(&png)?;
    Ok(wire_bytes)
}

#[derive(Deserialize)]
struct GeminiResponse<'a> {
    #[serde(borrow)]
    candidates: Vec<Candidate<'a>>,
}
#[derive(Deserialize)]
struct Candidate<'a> {
    #[serde(borrow)]
    content: Content<'a>,
}
#[derive(Deserialize)]
struct Content<'a> {
    #[serde(borrow)]
    parts: Vec<Part<'a>>,
}
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(default)]
    thought: bool,
    #[serde(borrow, default)]
    inline_data: Option<InlineData<'a>>,
}
#[derive(Deserialize)]
struct InlineData<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
}
#[derive(Deserialize)]
struct OpenAiResponse<'a> {
    #[serde(borrow)]
    data: Vec<OpenAiImage<'a>>,
}
#[derive(Deserialize)]
struct OpenAiImage<'a> {
    #[serde(borrow)]
    b64_json: Cow<'a, str>,
}

/// 从响应 JSON 里取出图像字节。
pub fn extract_image(wire: Wire, body: &[u8]) -> Result<Vec<u8>, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let bad = |e: serde_json::Error| format!("响应不是预期的 JSON：{e}");
    let data = match wire {
        Wire::Gemini => {
            let parsed: GeminiResponse = serde_json::from_slice(body).map_err(bad)?;
            parsed
                .candidates
                .into_iter()
                .flat_map(|c| c.content.parts)
                .filter(|p| !p.thought)
                .filter_map(|p| p.inline_data)
                .next_back()
                .map(|d| d.data)
                .ok_or("响应里没有图像")?
        }
        Wire::OpenAi => {
            let parsed: OpenAiResponse = serde_json::from_slice(body).map_err(bad)?;
            // 取最后一张：LiteLLM 会把 Gemini 的 thought 草图也放进 data，正式图在最后。
            parsed
                .data
                .into_iter()
                .next_back()
                .map(|d| d.b64_json)
                .ok_or("响应里没有图像")?
        }
    };
    b64.decode(data.as_bytes())
        .map_err(|e| format!("图像的 base64 无法解码：{e}"))
}

/// 检查是一张完整的 PNG：签名、IHDR 尺寸非零、每个块的长度与 CRC 都对、以 IEND 结尾。
/// 不解压像素（大图时那会让客户端自己成为瓶颈），但任何截断或改动都会被发现。
pub fn check_png(data: &[u8]) -> Result<(u32, u32), String> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !data.starts_with(SIGNATURE) {
        return Err("不是 PNG（签名不对）".into());
    }
    let mut pos = SIGNATURE.len();
    let mut size = None;
    loop {
        let header = data.get(pos..pos + 8).ok_or("PNG 被截断：缺少 IEND")?;
        let len = u32::from_be_bytes(header[..4].try_into().unwrap()) as usize;
        let kind = &header[4..8];
        let chunk = data
            .get(pos + 4..pos + 8 + len)
            .ok_or("PNG 被截断：块不完整")?;
        let crc = data
            .get(pos + 8 + len..pos + 12 + len)
            .ok_or("PNG 被截断：缺少 CRC")?;
        if crc32fast::hash(chunk) != u32::from_be_bytes(crc.try_into().unwrap()) {
            return Err(format!(
                "PNG 的 {} 块 CRC 不对",
                String::from_utf8_lossy(kind)
            ));
        }
        if kind == b"IHDR" && len >= 8 {
            let w = u32::from_be_bytes(chunk[4..8].try_into().unwrap());
            let h = u32::from_be_bytes(chunk[8..12].try_into().unwrap());
            size = Some((w, h));
        }
        pos += 12 + len;
        if kind == b"IEND" {
            break;
        }
    }
    match size {
        Some((w, h)) if w > 0 && h > 0 => Ok((w, h)),
        _ => Err("PNG 缺少有效的 IHDR".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_png() -> Vec<u8> {
        let img = image::RgbImage::from_pixel(3, 2, image::Rgb([1, 2, 3]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn a_whole_png_passes_and_any_damage_fails() {
        let png = tiny_png();
        assert_eq!(check_png(&png), Ok((3, 2)));
        assert!(check_png(&png[..png.len() - 1]).is_err(), "截断");
        let mut flipped = png.clone();
        flipped[40] ^= 0xff;
        assert!(check_png(&flipped).is_err(), "改动一个字节");
        assert!(check_png(b"GIF89a....").is_err(), "别的格式");
    }

    #[test]
    fn images_are_found_in_both_wire_formats() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(tiny_png());
        let gemini = format!(
            r#"{{"candidates":[{{"content":{{"parts":[{{"thought":true,"inlineData":{{"mimeType":"image/png","data":"AAAA"}}}},{{"text":"好"}},{{"inlineData":{{"mimeType":"image/png","data":"{b64}"}}}}]}}}}]}}"#
        );
        let png = extract_image(Wire::Gemini, gemini.as_bytes()).unwrap();
        assert_eq!(check_png(&png), Ok((3, 2)));
        let openai = format!(r#"{{"created":1,"data":[{{"b64_json":"{b64}"}}]}}"#);
        assert!(extract_image(Wire::OpenAi, openai.as_bytes()).is_ok());
        assert!(extract_image(Wire::OpenAi, br#"{"created":1,"data":[]}"#).is_err());
        assert!(extract_image(
            Wire::Gemini,
            br#"{"candidates":[{"content":{"parts":[{"text":"x"}]}}]}"#
        )
        .is_err());
    }
}
