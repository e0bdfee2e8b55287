//! 基准用例 a–d：网关开销、16 张大图、页面、进度推送延迟。每个用例自己启停被测进程。

use crate::load::{self, Limit, LoadResult, Target, Wire};
use crate::procs::{self, free_port, Proc, RssSampler};
use crate::Settings;
use futures::StreamExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// 同一张表里的一行：某个目标在某个并发下的一轮结果。
pub struct Row {
    pub target: String,
    pub concurrency: usize,
    pub gzip: bool,
    pub result: LoadResult,
    /// 被测进程（网关或 LiteLLM）在这一轮里的 RSS 峰值（KB，采样得到）。
    pub peak_rss_kb: Option<u64>,
}

const GEMINI_BODY: &str = r#"{"contents":[{"role":"user","parts":[{"text":"bench"}]}],"generationConfig":{"responseModalities":["TEXT","IMAGE"],"imageConfig":{"aspectRatio":"1:1","imageSize":"1K"}}}"#;

pub(crate) fn direct(demo: &Proc) -> Target {
    Target {
        label: "直接调用演示上游".into(),
        url: format!(
            "{}/v1beta/models/gemini-2.5-flash-image:generateContent",
            demo.url
        ),
        body: GEMINI_BODY.into(),
        wire: Wire::Gemini,
        headers: vec![],
        mirrors: vec![],
    }
}

pub(crate) fn ours(server: &Proc) -> Target {
    Target {
        label: "经本网关".into(),
        url: format!("{}/v1/images/generations", server.url),
        body: r#"{"prompt":"bench","size":"1024x1024"}"#.into(),
        wire: Wire::OpenAi,
        headers: bearer(),
        mirrors: vec![],
    }
}

fn litellm(proxy: &Proc) -> Target {
    Target {
        label: "经 LiteLLM".into(),
        url: format!("{}/v1/images/generations", proxy.url),
        body: r#"{"model":"gemini-image","prompt":"bench","size":"1024x1024"}"#.into(),
        wire: Wire::OpenAi,
        headers: bearer(),
        mirrors: vec![],
    }
}

fn bearer() -> Vec<(String, String)> {
    vec![(
        "authorization".into(),
        format!("Bearer {}", procs::BENCH_KEY),
    )]
}

/// 被测的三方：演示上游本身、本网关、（可选）LiteLLM。
struct Stack {
    demo: Proc,
    server: Proc,
    litellm: Option<Proc>,
}

async fn stack(settings: &Settings, work: &Path, demo_args: &[&str]) -> anyhow::Result<Stack> {
    let demo = procs::demo(&settings.bin, free_port(), demo_args).await?;
    let config = procs::server_config(&[("demo", &demo.url)], "");
    let server = procs::server(&settings.bin, &work.join("server"), free_port(), &config).await?;
    let litellm = match &settings.litellm {
        Some(exe) => {
            Some(procs::litellm(exe, &work.join("litellm"), free_port(), &demo.url).await?)
        }
        None => None,
    };
    Ok(Stack {
        demo,
        server,
        litellm,
    })
}

pub(crate) async fn measure(
    target: &Target,
    process: Option<&Proc>,
    concurrency: usize,
    limit: Limit,
    gzip: bool,
) -> Row {
    // 预热：建立连接、填满各自的缓存，不计入结果。
    let warm = Limit {
        requests: (concurrency as u64 * 2).max(10),
        duration: Duration::from_secs(30),
    };
    load::run(target, concurrency, warm, gzip).await;
    let sampler = process.map(|p| RssSampler::start(p.pid(), Duration::from_millis(20)));
    let result = load::run(target, concurrency, limit, gzip).await;
    let peak_rss_kb = match sampler {
        Some(s) => Some(s.finish().await),
        None => None,
    };
    eprintln!(
        "  {} c={concurrency}{}：{} 成功 / {} 失败，p50 {:.2} ms，p99 {:.2} ms，{:.0} 请求/秒{}",
        target.label,
        if gzip { " gzip" } else { "" },
        result.ok,
        result.failed,
        result.ms(50.0),
        result.ms(99.0),
        result.rps(),
        result
            .first_error
            .as_deref()
            .map(|e| format!("；首个错误：{e}"))
            .unwrap_or_default()
    );
    Row {
        target: target.label.clone(),
        concurrency,
        gzip,
        result,
        peak_rss_kb,
    }
}

/// a. 网关开销：小图，并发 1、16、64。
pub async fn overhead(settings: &Settings, work: &Path) -> anyhow::Result<Vec<Row>> {
    eprintln!("== a. 网关开销（小图 64×64）");
    let s = stack(settings, &work.join("overhead"), &["--max-side", "64"]).await?;
    let mut rows = Vec::new();
    for &c in &settings.concurrency {
        let limit = Limit {
            requests: settings.max_requests,
            duration: settings.duration,
        };
        rows.push(measure(&direct(&s.demo), None, c, limit, false).await);
        rows.push(measure(&ours(&s.server), Some(&s.server), c, limit, false).await);
        if let Some(l) = &s.litellm {
            rows.push(measure(&litellm(l), Some(l), c, limit, false).await);
        }
    }
    Ok(rows)
}

/// b. 大图：16 个并发、每张约 8 MB 的 PNG（base64 约 11 MB），不声明与声明 gzip 各一轮。
pub async fn large(settings: &Settings, work: &Path) -> anyhow::Result<Vec<Row>> {
    eprintln!(
        "== b. 16 个并发的大图（每张约 {} 字节）",
        settings.large_bytes
    );
    let bytes = settings.large_bytes.to_string();
    let s = stack(settings, &work.join("large"), &["--png-bytes", &bytes]).await?;
    let limit = Limit {
        requests: settings.large_rounds * 16,
        duration: Duration::from_secs(600),
    };
    let mut rows = Vec::new();
    for gzip in [false, true] {
        rows.push(measure(&direct(&s.demo), None, 16, limit, gzip).await);
        rows.push(measure(&ours(&s.server), Some(&s.server), 16, limit, gzip).await);
        if let Some(l) = &s.litellm {
            rows.push(measure(&litellm(l), Some(l), 16, limit, gzip).await);
        }
    }
    let hwm = s.server.peak_rss_kb();
    eprintln!("  本网关进程的 VmHWM（启动以来的峰值）：{hwm} KB");
    Ok(rows)
}

/// c. 页面与进程本身的数字。
pub struct PageFacts {
    pub images: u64,
    pub studio_ms: (f64, f64),
    pub gallery_ms: (f64, f64),
    pub wasm_bytes: u64,
    pub wasm_gzip: u64,
    pub js_bytes: u64,
    pub js_gzip: u64,
    pub idle_rss_kb: u64,
    pub startup_empty_ms: f64,
    pub startup_full_ms: f64,
    pub binary_bytes: u64,
    /// 每页在 Chromium 里第一次打开（空库）：线上字节、请求数、水合用时（见 `crate::pages`）。
    pub pages: Vec<crate::pages::PageTiming>,
}

pub async fn page(settings: &Settings, work: &Path) -> anyhow::Result<PageFacts> {
    eprintln!("== c. 页面（数据库里 {} 张图）", settings.page_images);
    let dir = work.join("page");
    let demo = procs::demo(&settings.bin, free_port(), &["--max-side", "64"]).await?;
    let config = procs::server_config(&[("demo", &demo.url)], "");
    let port = free_port();
    let server = procs::server(&settings.bin, &dir, port, &config).await?;
    let startup_empty_ms = server.startup.as_secs_f64() * 1000.0;
    // 每页第一次打开：在空库上量（页面的代码与它要的字节，与用户有多少图无关）。
    let pages = crate::pages::measure(&server.url).await?;
    let fill = load::run(
        &ours(&server),
        8,
        Limit {
            requests: settings.page_images,
            duration: Duration::from_secs(600),
        },
        false,
    )
    .await;
    anyhow::ensure!(fill.failed == 0, "写入图片时有失败：{:?}", fill.first_error);
    server.stop().await;

    // 重启：测带着 N 张图的启动时间（含存储核对）与空闲内存。
    let server = procs::restart_server(&settings.bin, &dir, port).await?;
    let startup_full_ms = server.startup.as_secs_f64() * 1000.0;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss_kb = server.rss_kb();
    let client = reqwest::Client::new();
    let studio_ms = page_time(&client, &format!("{}/", server.url), 30).await?;
    let gallery_ms = page_time(&client, &format!("{}/gallery", server.url), 30).await?;
    server.stop().await;

    let pkg = settings
        .bin
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("site/pkg");
    let (wasm_bytes, wasm_gzip) = sizes(&pkg, "wasm")?;
    let (js_bytes, js_gzip) = sizes(&pkg, "js")?;
    Ok(PageFacts {
        images: fill.ok,
        studio_ms,
        gallery_ms,
        wasm_bytes,
        wasm_gzip,
        js_bytes,
        js_gzip,
        idle_rss_kb,
        startup_empty_ms,
        startup_full_ms,
        binary_bytes: std::fs::metadata(&settings.bin)?.len(),
        pages,
    })
}

/// 顺序请求 `n` 次页面，返回（中位数，p90）毫秒。
async fn page_time(client: &reqwest::Client, url: &str, n: usize) -> anyhow::Result<(f64, f64)> {
    client.get(url).send().await?.bytes().await?; // 预热
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let res = client.get(url).send().await?;
        anyhow::ensure!(res.status().is_success(), "{url} 返回 {}", res.status());
        res.bytes().await?;
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[n / 2], times[n * 9 / 10]))
}

/// 站点目录里某种扩展名的文件：原始与 gzip -9 后的字节数。
fn sizes(pkg: &Path, ext: &str) -> anyhow::Result<(u64, u64)> {
    use std::io::Write;
    let mut raw = 0;
    let mut gz = 0;
    for entry in std::fs::read_dir(pkg)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(ext) {
            continue;
        }
        let data = std::fs::read(&path)?;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&data)?;
        raw += data.len() as u64;
        gz += enc.finish()?.len() as u64;
    }
    Ok((raw, gz))
}

/// d. 进度推送：任务状态在服务器上变化（`changed_at_ms`）到 WebSocket 客户端收到的时间。
pub async fn progress(settings: &Settings, work: &Path) -> anyhow::Result<Vec<f64>> {
    eprintln!("== d. 进度推送延迟");
    let demo = procs::demo(
        &settings.bin,
        free_port(),
        &["--max-side", "64", "--delay-ms", "300-900"],
    )
    .await?;
    let config = procs::server_config(&[("demo", &demo.url)], "");
    let server = procs::server(&settings.bin, &work.join("progress"), free_port(), &config).await?;
    let ws_url = format!("{}/ws", server.url.replacen("http://", "ws://", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url).await?;
    let client = reqwest::Client::new();
    // 只统计状态或阶段的转换（排队→生成中→等待上游→接收→保存→完成）：进度数字本来就按 100 ms 合并。
    let mut last: std::collections::HashMap<String, (serde_json::Value, serde_json::Value)> =
        Default::default();
    let mut latencies = Vec::new();
    for batch in 0..settings.progress_batches {
        let res = client
            .post(format!("{}/api/submit_jobs", server.url))
            .json(&serde_json::json!({"request": {"prompt": format!("进度 {batch}"), "count": 4}}))
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "提交失败：{}", res.status());
        let mut done = 0;
        while done < 4 {
            let msg = tokio::time::timeout(Duration::from_secs(60), socket.next())
                .await?
                .ok_or_else(|| anyhow::anyhow!("WebSocket 被关闭"))??;
            let received_ms = now_ms();
            let tokio_tungstenite::tungstenite::Message::Text(text) = msg else {
                continue;
            };
            let value: serde_json::Value = serde_json::from_str(&text)?;
            if value["type"] != "job" {
                continue;
            }
            let key = (value["state"].clone(), value["phase"].clone());
            let id = value["job_id"].as_str().unwrap_or_default().to_string();
            if last.get(&id) != Some(&key) {
                let changed = value["changed_at_ms"].as_u64().unwrap_or(0);
                latencies.push(received_ms.saturating_sub(changed) as f64);
                last.insert(id, key);
            }
            if value["state"] == "done" || value["state"] == "failed" {
                done += 1;
            }
        }
    }
    latencies.sort_by(f64::total_cmp);
    eprintln!(
        "  {} 条推送，中位数 {:.0} ms，最大 {:.0} ms",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies.last().unwrap()
    );
    Ok(latencies)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
