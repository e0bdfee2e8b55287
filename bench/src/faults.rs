//! 故障浸泡：经本服务器发有限个请求，演示上游按类别注入 30% 的故障，另一个健康的演示上游做后备；
//! 然后两个上游都不可用；然后在运行中途杀掉服务器再重启。最后对照存储核对：没有半成品文件、
//! 没有重复、每个成功的文件都在且完整、每个失败都有清楚的（中文）原因。

use crate::load::check_png;
use crate::procs::{self, free_port, Proc};
use crate::Settings;
use hdrhistogram::Histogram;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// 网关在浸泡里用的时限：单次尝试 2 秒（挂起的上游在这之后被放弃），整个请求 20 秒。
const ATTEMPT_S: u64 = 2;
const TOTAL_S: u64 = 20;

/// 一个请求的结局。
#[derive(Debug, Clone)]
pub enum Outcome {
    /// 成功：服务器给出的图片 id。
    Saved(String),
    /// 服务器明确回答失败：HTTP 状态与 `error.message`。
    Failed { status: u16, message: String },
    /// 连接断开或连不上（服务器被杀的那一刻在途的请求）：结局未知，只要求不留半成品、不重复。
    Interrupted(String),
}

#[derive(Debug, Clone)]
pub struct Record {
    pub prompt: String,
    pub outcome: Outcome,
    pub latency: Duration,
}

/// 一个阶段的汇总。
pub struct PhaseReport {
    pub name: String,
    pub requests: usize,
    pub saved: usize,
    pub failed: usize,
    pub interrupted: usize,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub retries: f64,
    pub fallbacks: f64,
    /// 每个失败的原因（去重，最多几条），写进报告。
    pub sample_errors: Vec<String>,
}

pub struct SoakReport {
    pub phases: Vec<PhaseReport>,
    /// 存储核对发现的问题；空表示全部通过。
    pub problems: Vec<String>,
    /// 核对了多少张图、多少个文件。
    pub checked_rows: usize,
    pub checked_files: usize,
}

struct Soak {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    url: String,
    server: Mutex<Option<Proc>>,
    flaky: Proc,
    healthy_port: u16,
    healthy: Mutex<Option<Proc>>,
    client: reqwest::Client,
    records: Mutex<Vec<Record>>,
    /// “恢复”请求的序号：提示词要唯一，核对才能发现重复。
    probes: AtomicU64,
}

pub async fn soak(settings: &Settings, work: &Path) -> anyhow::Result<SoakReport> {
    let per_class = settings.soak_requests / 5;
    eprintln!(
        "== 故障浸泡（每类故障 {per_class} 个请求，并发 {}）",
        settings.soak_concurrency
    );
    let flaky = procs::demo(&settings.bin, free_port(), &["--max-side", "64"]).await?;
    let healthy_port = free_port();
    let healthy = procs::demo(&settings.bin, healthy_port, &["--max-side", "64"]).await?;
    let config = procs::server_config(
        &[("flaky", &flaky.url), ("healthy", &healthy.url)],
        &format!(
            // 重试与后备的次数从 /metrics 读：对基准程序开放（本机上的临时实例）。
            "\n[server]\nmetrics_public = true\n\n[timeouts]\nattempt_s = {ATTEMPT_S}\ntotal_s = {TOTAL_S}\n\n[retry]\nbase_delay_ms = 50\nmax_delay_ms = 2000\nbreaker_cooldown_s = 2\n"
        ),
    );
    let dir = work.join("soak");
    let port = free_port();
    let server = procs::server(&settings.bin, &dir, port, &config).await?;
    let soak = Arc::new(Soak {
        bin: settings.bin.clone(),
        dir: dir.clone(),
        port,
        url: server.url.clone(),
        server: Mutex::new(Some(server)),
        flaky,
        healthy_port,
        healthy: Mutex::new(Some(healthy)),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(TOTAL_S + 30))
            .build()?,
        records: Mutex::new(Vec::new()),
        probes: AtomicU64::new(0),
    });

    let mut phases = Vec::new();
    for (name, option) in [
        ("上游 503 错误 30%", "error_rate"),
        ("429 + Retry-After 30%", "rate_429"),
        ("挂起超过单次时限 30%", "hang_rate"),
        ("响应体中途截断 30%", "truncate_rate"),
        ("200 但 JSON 非法 30%", "malformed_rate"),
    ] {
        soak.settle().await?;
        soak.set_faults(&[(option, 0.3)]).await?;
        phases.push(
            soak.phase(name, per_class, settings.soak_concurrency, None)
                .await?,
        );
    }

    // 两个上游都不可用：一个每次都回 503，另一个进程被停掉（连接被拒）。
    soak.set_faults(&[("error_rate", 1.0)]).await?;
    if let Some(h) = soak.healthy.lock().await.take() {
        h.stop().await;
    }
    let down = soak
        .phase(
            "两个上游都不可用",
            settings.soak_down_requests,
            settings.soak_concurrency,
            None,
        )
        .await?;
    phases.push(down);
    // 运行中途 SIGKILL 服务器再重启；故障照常注入（五类各 6%）。上游每次要 200–600 ms，
    // 保证被杀的那一刻有请求在途；等熔断冷却（2 秒）过去再开始。
    let healthy = procs::demo(
        &settings.bin,
        soak.healthy_port,
        &["--max-side", "64", "--delay-ms", "200-600"],
    )
    .await?;
    *soak.healthy.lock().await = Some(healthy);
    let mixed: Vec<(&str, f64)> = [
        "error_rate",
        "rate_429",
        "hang_rate",
        "truncate_rate",
        "malformed_rate",
    ]
    .into_iter()
    .map(|k| (k, 0.06))
    .collect();
    soak.set_faults(&mixed).await?;
    soak.set_delay("200-600").await?;
    let recovery = soak.wait_recovered().await?;
    eprintln!(
        "  上游恢复后，第一次成功用了 {:.1} 秒",
        recovery.as_secs_f64()
    );
    phases.push(
        soak.phase(
            "中途杀掉并重启服务器（混合故障 30%）",
            per_class,
            settings.soak_concurrency,
            Some(per_class / 2),
        )
        .await?,
    );

    if let Some(server) = soak.server.lock().await.take() {
        server.stop().await;
    }
    let records = soak.records.lock().await.clone();
    let storage = dir.join("storage");
    // 最后一次启动（被杀之后的重启）时存储核对报告了什么。
    let startup_log = std::fs::read_to_string(procs::log_path(soak.port)).unwrap_or_default();
    let check = verify_storage(
        &storage,
        &storage.join("factory.db"),
        &records,
        &startup_log,
    )?;
    if check.reported_orphans > 0 {
        eprintln!(
            "  被杀时刚写好、还没来得及记录的图：{} 个，重启时的存储核对已报告（文件还在，不算丢失）",
            check.reported_orphans
        );
    }
    Ok(SoakReport {
        phases,
        problems: check.problems,
        checked_rows: check.rows,
        checked_files: check.files,
    })
}

impl Soak {
    /// 每个故障阶段开始前：关掉故障，等熔断冷却过去，再让一个请求成功（探测成功，熔断关闭）。
    /// 否则上一阶段末尾熔断的 flaky 会在下一阶段的头 2 秒里被跳过——阶段短时，整个阶段都碰不到故障。
    async fn settle(&self) -> anyhow::Result<()> {
        self.set_faults(&[]).await?;
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        self.wait_recovered().await?;
        Ok(())
    }

    /// 上游恢复后逐个发请求，直到有一个成功（熔断冷却后只放一个试探请求过去，其余立即失败）。
    /// 这些请求也记入结局，一并核对。
    async fn wait_recovered(&self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            let n = self.probes.fetch_add(1, Ordering::SeqCst);
            let record = self.one(format!("恢复 {n}")).await;
            let ok = matches!(record.outcome, Outcome::Saved(_));
            self.records.lock().await.push(record);
            if ok {
                return Ok(started.elapsed());
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "上游恢复后 60 秒内没有请求成功"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn set_delay(&self, delay: &str) -> anyhow::Result<()> {
        let res = self
            .client
            .post(format!("{}/_demo/options", self.flaky.url))
            .json(&serde_json::json!({ "delay_ms": delay }))
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "设置延迟失败：{}", res.status());
        Ok(())
    }

    async fn set_faults(&self, rates: &[(&str, f64)]) -> anyhow::Result<()> {
        let mut body: HashMap<&str, f64> = [
            "hang_rate",
            "error_rate",
            "rate_429",
            "quota_rate",
            "truncate_rate",
            "malformed_rate",
            "safety_rate",
            "text_only_rate",
        ]
        .into_iter()
        .map(|k| (k, 0.0))
        .collect();
        body.extend(rates.iter().copied());
        let res = self
            .client
            .post(format!("{}/_demo/options", self.flaky.url))
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(
            res.status().is_success(),
            "设置故障率失败：{}",
            res.status()
        );
        Ok(())
    }

    /// 跑一个阶段：`requests` 个请求、`concurrency` 个 worker。`kill_after` 给出时，
    /// 完成这么多个请求后 SIGKILL 服务器并在同一端口重启。
    async fn phase(
        self: &Arc<Self>,
        name: &str,
        requests: usize,
        concurrency: usize,
        kill_after: Option<usize>,
    ) -> anyhow::Result<PhaseReport> {
        let before = self.counters().await?;
        let issued = Arc::new(AtomicU64::new(0));
        let finished = Arc::new(AtomicU64::new(0));
        let phase_id = self.records.lock().await.len();
        let mut workers = Vec::new();
        for _ in 0..concurrency {
            let (this, issued, finished) = (self.clone(), issued.clone(), finished.clone());
            workers.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let i = issued.fetch_add(1, Ordering::SeqCst) as usize;
                    if i >= requests {
                        break;
                    }
                    let prompt = format!("浸泡 {phase_id}-{i}");
                    let record = this.one(prompt).await;
                    let interrupted = matches!(record.outcome, Outcome::Interrupted(_));
                    mine.push(record);
                    finished.fetch_add(1, Ordering::SeqCst);
                    if interrupted {
                        this.wait_ready().await;
                    }
                }
                mine
            }));
        }
        let mut killed_counters = None;
        if let Some(after) = kill_after {
            while (finished.load(Ordering::SeqCst) as usize) < after {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let at_kill = self.counters().await?;
            if let Some(server) = self.server.lock().await.take() {
                server.kill_hard().await;
            }
            eprintln!("  已 SIGKILL 服务器（完成 {after} 个请求时），重启中…");
            tokio::time::sleep(Duration::from_millis(300)).await;
            let server = procs::restart_server(&self.bin, &self.dir, self.port).await?;
            *self.server.lock().await = Some(server);
            killed_counters = Some(at_kill.minus(&before));
        }
        let mut records = Vec::new();
        for w in workers {
            records.extend(w.await?);
        }
        let after = self.counters().await?;
        let used = match killed_counters {
            Some(first) => first.plus(&after),
            None => after.minus(&before),
        };
        let report = summarize(name, &records, &used);
        eprintln!(
            "  {name}：{} 成功 / {} 失败 / {} 中断，p99 {:.0} ms，重试 {}，改用后备 {}",
            report.saved,
            report.failed,
            report.interrupted,
            report.p99_ms,
            report.retries,
            report.fallbacks
        );
        for e in &report.sample_errors {
            eprintln!("    例：{e}");
        }
        self.records.lock().await.extend(records);
        Ok(report)
    }

    async fn one(&self, prompt: String) -> Record {
        let started = Instant::now();
        let result = self
            .client
            .post(format!("{}/v1/images/generations", self.url))
            .bearer_auth(procs::BENCH_KEY)
            .json(&serde_json::json!({"prompt": prompt, "response_format": "url"}))
            .send()
            .await;
        let outcome = match result {
            Err(e) => Outcome::Interrupted(e.to_string()),
            Ok(res) => {
                let status = res.status().as_u16();
                match res.json::<serde_json::Value>().await {
                    Err(e) => Outcome::Interrupted(format!("HTTP {status}，响应体读不完：{e}")),
                    Ok(body) if status == 200 => {
                        let url = body["data"][0]["url"].as_str().unwrap_or_default();
                        // 签名链接形如 …/files/{id}?exp=…&sig=…
                        let path = url.split('?').next().unwrap_or_default();
                        match path.rsplit('/').next().filter(|id| !id.is_empty()) {
                            Some(id) => Outcome::Saved(id.to_string()),
                            None => Outcome::Failed {
                                status,
                                message: format!("200 但没有图片地址：{body}"),
                            },
                        }
                    }
                    Ok(body) => Outcome::Failed {
                        status,
                        message: body["error"]["message"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    },
                }
            }
        };
        Record {
            prompt,
            outcome,
            latency: started.elapsed(),
        }
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let ok = self
                .client
                .get(format!("{}/healthz", self.url))
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// 从 `/metrics` 读网关的重试与后备计数。读不到是错误（不当作 0：那样的核对永远“通过”）。
    async fn counters(&self) -> anyhow::Result<Counters> {
        let response = self
            .client
            .get(format!("{}/metrics", self.url))
            .send()
            .await?;
        anyhow::ensure!(
            response.status().is_success(),
            "读 /metrics 得到 HTTP {}",
            response.status()
        );
        Ok(Counters::parse(&response.text().await?))
    }
}

/// 网关的累计计数（Prometheus 文本格式里按名字求和）。
#[derive(Default, Clone, Copy)]
struct Counters {
    retries: f64,
    fallbacks: f64,
}

impl Counters {
    fn parse(text: &str) -> Self {
        let sum = |name: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(name) && !l.starts_with('#'))
                .filter(|l| l[name.len()..].starts_with(['{', ' ']))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        Self {
            retries: sum("gateway_retries_total"),
            fallbacks: sum("gateway_fallbacks_total"),
        }
    }
    fn minus(&self, o: &Self) -> Self {
        Self {
            retries: self.retries - o.retries,
            fallbacks: self.fallbacks - o.fallbacks,
        }
    }
    fn plus(&self, o: &Self) -> Self {
        Self {
            retries: self.retries + o.retries,
            fallbacks: self.fallbacks + o.fallbacks,
        }
    }
}

fn summarize(name: &str, records: &[Record], counters: &Counters) -> PhaseReport {
    let mut hist = Histogram::<u64>::new(3).expect("直方图");
    let mut errors = Vec::new();
    let (mut saved, mut failed, mut interrupted) = (0, 0, 0);
    for r in records {
        hist.record(r.latency.as_millis().max(1) as u64).ok();
        match &r.outcome {
            Outcome::Saved(_) => saved += 1,
            Outcome::Failed { message, .. } => {
                failed += 1;
                if errors.len() < 3 && !errors.contains(message) {
                    errors.push(message.clone());
                }
            }
            Outcome::Interrupted(reason) => {
                interrupted += 1;
                let reason = format!("（中断）{reason}");
                if errors.len() < 4 && !errors.contains(&reason) {
                    errors.push(reason);
                }
            }
        }
    }
    PhaseReport {
        name: name.to_string(),
        requests: records.len(),
        saved,
        failed,
        interrupted,
        p99_ms: hist.value_at_quantile(0.99) as f64,
        max_ms: hist.max() as f64,
        retries: counters.retries,
        fallbacks: counters.fallbacks,
        sample_errors: errors,
    }
}

pub struct Check {
    pub problems: Vec<String>,
    /// 没有记录、但服务器启动时的存储核对已经报告了的文件（崩溃发生在文件落盘与写记录之间）。
    pub reported_orphans: usize,
    pub rows: usize,
    pub files: usize,
}

/// 对照存储核对一次浸泡的全部结局。每发现一个问题记一条（中文），不在第一个问题处停下。
///
/// 没有记录的图片文件是问题，除非 `startup_log`（被杀后重启的服务器的日志）里启动核对报告了它：
/// SIGKILL 恰好落在“文件已改名落盘、记录还没提交”之间时会留下这样的文件，设计上由启动核对报告、交给人处理。
pub fn verify_storage(
    root: &Path,
    db: &Path,
    records: &[Record],
    startup_log: &str,
) -> anyhow::Result<Check> {
    let mut reported_orphans = 0;
    let mut problems = Vec::new();
    let files = files_under(root);
    for f in &files {
        let name = f.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with(".partial-") {
            problems.push(format!("残留的半成品文件：{}", f.display()));
        }
    }
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn.prepare("SELECT id, root, rel_path, bytes, prompt FROM images")?;
    let rows: Vec<(String, String, String, i64, String)> = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut by_prompt: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut by_id: HashMap<&str, &str> = HashMap::new();
    let mut referenced = std::collections::HashSet::new();
    for (id, row_root, rel, bytes, prompt) in &rows {
        by_prompt.entry(prompt).or_default().push(id);
        by_id.insert(id, prompt);
        let path = Path::new(row_root).join(rel);
        referenced.insert(path.clone());
        match std::fs::read(&path) {
            Err(e) => problems.push(format!("图片 {id} 的文件不在：{}（{e}）", path.display())),
            Ok(data) if data.len() as i64 != *bytes => problems.push(format!(
                "图片 {id} 的文件大小 {} 与记录 {bytes} 不符",
                data.len()
            )),
            Ok(data) => {
                if let Err(e) = check_png(&data) {
                    problems.push(format!("图片 {id} 的文件不完整：{e}"));
                }
            }
        }
    }
    let images_dir = root.join("images");
    for f in files.iter().filter(|f| f.starts_with(&images_dir)) {
        let partial = f
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(".partial-"));
        // 缩略图（`{id}.thumb.jpg`）在后台生成，属于同名 id 的记录。
        let thumb_of_row = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .and_then(|n| n.strip_suffix(".thumb.jpg").map(str::to_string))
            .is_some_and(|id| by_id.contains_key(id.as_str()));
        if !partial && !thumb_of_row && !referenced.contains(f) {
            if startup_log.contains(&f.display().to_string()) {
                reported_orphans += 1;
            } else {
                problems.push(format!(
                    "没有记录、启动核对也没有报告的孤儿文件：{}",
                    f.display()
                ));
            }
        }
    }
    for (prompt, ids) in &by_prompt {
        if ids.len() > 1 {
            problems.push(format!(
                "同一个请求“{prompt}”存了 {} 张：{ids:?}",
                ids.len()
            ));
        }
    }
    let cjk = |s: &str| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
    for r in records {
        match &r.outcome {
            Outcome::Saved(id) => match by_id.get(id.as_str()) {
                None => problems.push(format!("成功的请求“{}”返回的图片 {id} 没有记录", r.prompt)),
                Some(p) if *p != r.prompt => problems.push(format!(
                    "图片 {id} 的提示词是“{p}”，不是请求的“{}”",
                    r.prompt
                )),
                Some(_) => {}
            },
            Outcome::Failed { status, message } => {
                if message.trim().is_empty() || !cjk(message) {
                    problems.push(format!(
                        "失败的请求“{}”（HTTP {status}）没有清楚的中文原因：{message:?}",
                        r.prompt
                    ));
                }
                if by_prompt.contains_key(r.prompt.as_str()) {
                    problems.push(format!("失败的请求“{}”却存下了图片", r.prompt));
                }
                if r.latency > Duration::from_secs(TOTAL_S + 2) {
                    problems.push(format!(
                        "失败的请求“{}”用了 {:.1} 秒，超过总时限 {TOTAL_S} 秒",
                        r.prompt,
                        r.latency.as_secs_f64()
                    ));
                }
            }
            Outcome::Interrupted(_) => {}
        }
    }
    Ok(Check {
        problems,
        reported_orphans,
        rows: rows.len(),
        files: files.len(),
    })
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}
