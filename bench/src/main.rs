//! 绘图工厂的基准测试与故障浸泡（DESIGN §8，说明见 bench/README.md）。
//!
//! - `bench full`：完整基准（发布版二进制；可选 LiteLLM 对比），结果写进 docs/benchmarks.md 与 .svg；
//! - `bench quick`：CI 里跑的小配置，只检查正确性：每个响应都是完整的图、浸泡后的存储核对通过、
//!   核对本身能发现故意放进去的半成品文件。任何一项不满足则以非零状态退出。
//!
//! 只访问 127.0.0.1；每一轮都有请求数与时长上限。

mod cases;
mod cluster;
mod faults;
mod floor;
mod load;
mod memory;
mod pages;
mod procs;
mod report;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "绘图工厂的基准测试与故障浸泡")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// 完整基准：a 网关开销（与同一次运行里量的落盘下限）、b 大图、c 页面（含每页在 Chromium 里第一次打开的
    /// 线上字节与水合用时）、d 进度推送、e 大批次的内存、f 多实例、故障浸泡。
    Full {
        /// LiteLLM 可执行文件（bench/run.sh 在 target/litellm-venv 里安装）；不给则不对比。
        #[arg(long)]
        litellm: Option<PathBuf>,
        /// 开销用例每轮的时长上限（秒）。
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// 只跑这些部分（逗号分隔：overhead,large,page,progress,memory,cluster,faults）；默认全部。
        /// 只跑一部分时，文件里其余各节保留上次的结果。
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// 结果写到哪里（同名 .svg 为图）。
        #[arg(long, default_value = "docs/benchmarks.md")]
        out: PathBuf,
    },
    /// CI 用的小配置：只检查正确性，几十秒跑完。
    Quick,
}

/// 一次运行的全部参数。
pub struct Settings {
    pub bin: PathBuf,
    pub litellm: Option<PathBuf>,
    pub concurrency: Vec<usize>,
    pub duration: Duration,
    pub max_requests: u64,
    pub large_bytes: usize,
    pub large_rounds: u64,
    pub page_images: u64,
    pub progress_batches: usize,
    pub soak_requests: usize,
    pub soak_down_requests: usize,
    pub soak_concurrency: usize,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Full {
            litellm,
            duration,
            only,
            out,
        } => full(litellm, duration, only, out).await,
        Command::Quick => quick().await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("基准测试失败：{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn full(
    litellm: Option<PathBuf>,
    duration: u64,
    only: Vec<String>,
    out: PathBuf,
) -> anyhow::Result<()> {
    // 子进程换了工作目录，相对路径会指错地方：先变成绝对路径。
    let litellm = match litellm {
        Some(p) => Some(
            std::fs::canonicalize(&p)
                .map_err(|e| anyhow::anyhow!("找不到 LiteLLM 可执行文件 {}：{e}", p.display()))?,
        ),
        None => None,
    };
    let settings = Settings {
        bin: procs::binary(true),
        litellm,
        concurrency: vec![1, 16, 64],
        duration: Duration::from_secs(duration),
        max_requests: 50_000,
        large_bytes: 8_000_000,
        large_rounds: 4,
        page_images: 1_000,
        progress_batches: 5,
        soak_requests: 2_000,
        soak_down_requests: 200,
        soak_concurrency: 32,
    };
    anyhow::ensure!(
        settings.bin.exists(),
        "缺少 {}：先运行 cargo leptos build --release（或用 bash bench/run.sh）",
        settings.bin.display()
    );
    let wants = |part: &str| only.is_empty() || only.iter().any(|o| o == part);
    let work = tempfile::tempdir()?;
    let mut results = report::Results {
        machine: machine_facts(&settings),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        overhead: Vec::new(),
        floor: Vec::new(),
        large: Vec::new(),
        page: None,
        progress_ms: Vec::new(),
        memory: Vec::new(),
        cluster: Vec::new(),
        soak: None,
        partial: !only.is_empty(),
    };
    if wants("overhead") {
        results.overhead = cases::overhead(&settings, work.path()).await?;
        // 同一次运行、同一块盘上的落盘下限：网关开销写成“下限 + x”。
        results.floor = floor::run(
            &work.path().join("floor"),
            floor::image_bytes(&results.overhead),
            &FLOOR_CONCURRENCY,
            load::Limit {
                requests: settings.max_requests,
                duration: settings.duration,
            },
        )
        .await?;
    }
    if wants("large") {
        results.large = cases::large(&settings, work.path()).await?;
    }
    if wants("page") {
        results.page = Some(cases::page(&settings, work.path()).await?);
    }
    if wants("progress") {
        results.progress_ms = cases::progress(&settings, work.path()).await?;
    }
    if wants("memory") {
        let spec = memory::Spec {
            requests: 4,
            n: 16,
            png_bytes: 20_000_000,
            settle: Duration::from_secs(10),
        };
        results.memory = memory::run(&settings.bin, work.path(), spec).await?;
    }
    if wants("cluster") {
        results.cluster = cluster::run(&settings, work.path()).await?;
    }
    if wants("faults") {
        results.soak = Some(faults::soak(&settings, work.path()).await?);
    }
    report::write(&results, &out)?;
    eprintln!("结果已写入 {}", out.display());
    let invalid = invalid_responses(&results);
    anyhow::ensure!(invalid.is_empty(), "有无效的响应：\n{}", invalid.join("\n"));
    let over = results
        .page
        .as_ref()
        .map(|p| pages::over_budget(&p.pages))
        .unwrap_or_default();
    anyhow::ensure!(
        over.is_empty(),
        "每页的线上字节超出预算：\n{}",
        over.join("\n")
    );
    Ok(())
}

/// 落盘下限量哪几个并发（与 a 节的并发 1、16 对照）。
const FLOOR_CONCURRENCY: [usize; 2] = [1, 16];

/// 快速检查里的内存用例：2 个并发请求 × n = 4 × 5 MB。
const QUICK_MEMORY: memory::Spec = memory::Spec {
    requests: 2,
    n: 4,
    png_bytes: 5_000_000,
    settle: Duration::from_secs(10),
};

async fn quick() -> anyhow::Result<()> {
    let settings = Settings {
        bin: procs::binary(false),
        litellm: None,
        concurrency: vec![4],
        duration: Duration::from_secs(30),
        max_requests: 60,
        large_bytes: 1_000_000,
        large_rounds: 1,
        page_images: 20,
        progress_batches: 1,
        soak_requests: 100,
        soak_down_requests: 10,
        soak_concurrency: 8,
    };
    anyhow::ensure!(
        settings.bin.exists(),
        "缺少 {}：先运行 cargo build --features ssr",
        settings.bin.display()
    );
    let work = tempfile::tempdir()?;
    let overhead = cases::overhead(&settings, work.path()).await?;
    // 落盘下限的代码也走一遍（很小的配置，只检查它做得成）。
    let floor = floor::run(
        &work.path().join("floor"),
        floor::image_bytes(&overhead),
        &FLOOR_CONCURRENCY,
        load::Limit {
            requests: 50,
            duration: Duration::from_secs(5),
        },
    )
    .await?;
    let results = report::Results {
        machine: String::new(),
        command: "bench quick".into(),
        overhead,
        floor,
        large: cases::large(&settings, work.path()).await?,
        page: None,
        progress_ms: cases::progress(&settings, work.path()).await?,
        memory: memory::run(&settings.bin, work.path(), QUICK_MEMORY).await?,
        cluster: Vec::new(),
        soak: Some(faults::soak(&settings, work.path()).await?),
        partial: false,
    };
    let mut problems = invalid_responses(&results);
    problems.extend(memory::problems(&results.memory));
    if let Some(soak) = &results.soak {
        problems.extend(soak.problems.iter().cloned());
        for p in soak.phases.iter().take(5) {
            if p.saved * 10 < p.requests * 9 {
                problems.push(format!(
                    "“{}”成功率过低：{}/{}",
                    p.name, p.saved, p.requests
                ));
            }
        }
        // 故障真的被注入、网关真的重试或回退了（期望约 45 次；0 说明出故障的上游根本没被用到）。
        let handled: f64 = soak
            .phases
            .iter()
            .take(5)
            .map(|p| p.retries + p.fallbacks)
            .sum();
        if handled < 5.0 {
            problems.push(format!("五类故障一共只触发了 {handled} 次重试或回退"));
        }
        if let Some(killed) = soak.phases.get(6) {
            if killed.saved == 0 {
                problems.push("服务器重启后没有任何请求成功".into());
            }
        }
        if let Some(down) = soak.phases.get(5) {
            if down.saved > 0 || down.failed != down.requests {
                problems.push(format!(
                    "两个上游都不可用时仍有请求成功或中断：{} 成功、{} 中断",
                    down.saved, down.interrupted
                ));
            }
        }
        problems.extend(planted_partial_is_caught(work.path())?);
    }
    anyhow::ensure!(
        problems.is_empty(),
        "发现问题：\n- {}",
        problems.join("\n- ")
    );
    eprintln!("快速检查全部通过");
    Ok(())
}

/// 每轮里任何一个不是完整图像的响应都算问题（LiteLLM 的除外：它只作对照，失败如实写进报告）。
fn invalid_responses(results: &report::Results) -> Vec<String> {
    results
        .overhead
        .iter()
        .chain(&results.large)
        .chain(&results.cluster)
        .filter(|r| r.target != "经 LiteLLM" && (r.result.failed > 0 || r.result.ok == 0))
        .map(|r| {
            format!(
                "{}（并发 {}）：{} 个响应无效，首个：{}",
                r.target,
                r.concurrency,
                r.result.failed,
                r.result.first_error.as_deref().unwrap_or("没有成功的响应")
            )
        })
        .collect()
}

/// 核对本身必须能失败：往浸泡后的存储里放一个半成品文件和一个没有记录的图，核对应当报告这两个
/// （没有记录的图只有在服务器启动核对报告过时才放过；这里给的日志是空的）。
fn planted_partial_is_caught(work: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let storage = work.join("soak/storage");
    let day = std::fs::read_dir(storage.join("images"))?
        .flatten()
        .next()
        .ok_or_else(|| anyhow::anyhow!("浸泡后 images 目录是空的"))?
        .path();
    let partial = day.join(".partial-planted-by-bench");
    let orphan = day.join("orphan-planted-by-bench.png");
    std::fs::write(&partial, b"half a png")?;
    std::fs::write(&orphan, b"not recorded")?;
    let check = faults::verify_storage(&storage, &storage.join("factory.db"), &[], "")?;
    std::fs::remove_file(&partial)?;
    std::fs::remove_file(&orphan)?;
    let caught = |name: &str| check.problems.iter().any(|p| p.contains(name));
    Ok(
        if caught(".partial-planted-by-bench") && caught("orphan-planted-by-bench.png") {
            eprintln!("  存储核对发现了故意放入的半成品文件与没有记录的图（核对能失败）");
            Vec::new()
        } else {
            vec![format!(
                "存储核对没有发现故意放入的半成品文件或没有记录的图：{:?}",
                check.problems
            )]
        },
    )
}

fn machine_facts(settings: &Settings) -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("未知")
        .trim()
        .to_string();
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let litellm = settings
        .litellm
        .as_ref()
        .map(|p| {
            let pip = p.with_file_name("pip");
            std::process::Command::new(pip)
                .args(["show", "litellm"])
                .output()
                .ok()
                .and_then(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .find(|l| l.starts_with("Version:"))
                        .map(|l| l.trim_start_matches("Version:").trim().to_string())
                })
                .unwrap_or_else(|| "未知版本".into())
        })
        .unwrap_or_else(|| "未对比".into());
    format!(
        "- CPU：{model}，{cores} 核；内存 {:.0} GiB；Linux {}\n- 本服务器：发布版（cargo leptos build --release --split）；每张图都落盘：文件 fsync 后改名，目录 fsync 与 SQLite 记录（WAL，synchronous=FULL）按组提交\n- LiteLLM：{litellm}（`litellm[proxy]`，一个 worker，默认设置）\n- 负载发生器：bench/src/load.rs（闭环、固定并发、reqwest + HdrHistogram），与被测进程在同一台机器上",
        mem_kb as f64 / 1048576.0,
        kernel.trim()
    )
}
