//! e. 大批次下的内存：几个并发的 `n = 16` 请求、每张是很大的图，看被测服务器的 RSS 峰值、VmHWM，
//! 以及最后一个响应之后 10 秒的 RSS（内存有没有还回去）。`url` 与 `b64_json` 各跑一轮，每轮一个新进程。
//!
//! 服务器用默认的限额（全局并发 16 等）：测的是用户照默认配置部署后会看到的内存。

use crate::procs::{self, free_port, RssSampler, BENCH_KEY};
use std::path::Path;
use std::time::{Duration, Instant};

/// 一轮的规模。
#[derive(Clone, Copy)]
pub struct Spec {
    /// 同时发出的请求数。
    pub requests: usize,
    /// 每个请求的 n。
    pub n: u32,
    /// 演示上游每张图的 PNG 字节数。
    pub png_bytes: usize,
    /// 最后一个响应之后等多久再量“之后”的 RSS。
    pub settle: Duration,
}

/// 一轮的结果（内存单位 KB）。
pub struct MemoryRow {
    pub format: &'static str,
    pub spec: Spec,
    pub images: usize,
    pub seconds: f64,
    pub idle_kb: u64,
    pub peak_kb: u64,
    pub hwm_kb: u64,
    pub after_kb: u64,
}

/// 只给 API 密钥与存储位置，其余（并发、排队、上限）都是默认值。
fn config() -> String {
    format!("[auth]\napi_keys = [\"{BENCH_KEY}\"]\n\n[storage]\nroot = \"storage\"\n")
}

pub async fn run(bin: &Path, work: &Path, spec: Spec) -> anyhow::Result<Vec<MemoryRow>> {
    eprintln!(
        "== e. 内存：{} 个并发请求 × n = {}，每张约 {} 字节",
        spec.requests, spec.n, spec.png_bytes
    );
    let mut rows = Vec::new();
    for format in ["url", "b64_json"] {
        rows.push(one(bin, &work.join(format!("memory-{format}")), spec, format).await?);
    }
    Ok(rows)
}

async fn one(
    bin: &Path,
    work: &Path,
    spec: Spec,
    format: &'static str,
) -> anyhow::Result<MemoryRow> {
    let png = spec.png_bytes.to_string();
    let demo = procs::demo(bin, free_port(), &["--png-bytes", &png]).await?;
    let mut config = config();
    config.push_str(&format!(
        "\n[[upstreams]]\nname = \"demo\"\nkind = \"gemini\"\nbase_url = \"{}\"\n",
        demo.url
    ));
    let server = procs::server(bin, work, free_port(), &config).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_kb = server.rss_kb();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let sampler = RssSampler::start(server.pid(), Duration::from_millis(20));
    let started = Instant::now();
    let calls = (0..spec.requests).map(|i| {
        let client = client.clone();
        let url = format!("{}/v1/images/generations", server.url);
        let body = serde_json::json!({
            "prompt": format!("memory {i}"),
            "n": spec.n,
            "response_format": format,
        });
        async move {
            let response = client
                .post(url)
                .bearer_auth(BENCH_KEY)
                .json(&body)
                .send()
                .await?;
            let status = response.status();
            let bytes = response.bytes().await?;
            anyhow::ensure!(
                status.is_success(),
                "{status}：{}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            );
            let value: serde_json::Value = serde_json::from_slice(&bytes)?;
            let data = value["data"].as_array().cloned().unwrap_or_default();
            Ok::<_, anyhow::Error>(data)
        }
    });
    let results = futures::future::join_all(calls).await;
    let seconds = started.elapsed().as_secs_f64();
    let peak_kb = sampler.finish().await;
    let hwm_kb = server.peak_rss_kb();
    let mut images = Vec::new();
    for result in results {
        images.extend(result?);
    }
    // 每张图都要真的在响应里：url 要能打开（抽查第一张，读完整个文件），b64_json 要大致是那么大。
    let min_b64 = spec.png_bytes * 4 / 3 * 9 / 10;
    for (i, image) in images.iter().enumerate() {
        match format {
            "url" => {
                let url = image["url"].as_str().unwrap_or("");
                anyhow::ensure!(url.starts_with("http"), "第 {i} 张没有链接：{image}");
            }
            _ => {
                let len = image["b64_json"].as_str().map_or(0, str::len);
                anyhow::ensure!(len >= min_b64, "第 {i} 张的 b64_json 只有 {len} 字节");
            }
        }
    }
    anyhow::ensure!(
        images.len() == spec.requests * spec.n as usize,
        "要 {} 张，只拿到 {} 张",
        spec.requests * spec.n as usize,
        images.len()
    );
    if format == "url" {
        let url = images[0]["url"].as_str().unwrap_or("");
        let bytes = client
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        anyhow::ensure!(
            bytes.starts_with(b"\x89PNG") && bytes.len() >= spec.png_bytes * 9 / 10,
            "第一张图的链接没有给出完整的 PNG（{} 字节）",
            bytes.len()
        );
    }
    drop(images);
    // 每秒记一次，打印出来：看得出内存是渐渐还回去，还是一直不还。
    let mut trace = Vec::new();
    for _ in 0..spec.settle.as_secs() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        trace.push((server.rss_kb() / 1024).to_string());
    }
    eprintln!("  {format}：之后每秒的 RSS（MB）：{}", trace.join(" "));
    let after_kb = server.rss_kb();
    let row = MemoryRow {
        format,
        spec,
        images: spec.requests * spec.n as usize,
        seconds,
        idle_kb,
        peak_kb,
        hwm_kb,
        after_kb,
    };
    eprintln!(
        "  {format}：{} 张用时 {seconds:.1} 秒；空闲 {} KB，峰值 {} KB，VmHWM {} KB，{} 秒后 {} KB",
        row.images,
        idle_kb,
        peak_kb,
        hwm_kb,
        spec.settle.as_secs(),
        after_kb
    );
    server.stop().await;
    drop(demo);
    Ok(row)
}

/// CI 的快速检查：过后 RSS 不得超过空闲时的两倍。
pub fn problems(rows: &[MemoryRow]) -> Vec<String> {
    rows.iter()
        .filter(|r| r.after_kb > 2 * r.idle_kb)
        .map(|r| {
            format!(
                "内存（{}）：最后一个响应后 {} 秒仍占 {} KB，超过空闲时 {} KB 的两倍",
                r.format,
                r.spec.settle.as_secs(),
                r.after_kb,
                r.idle_kb
            )
        })
        .collect()
}
