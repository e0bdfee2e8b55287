//! 被测进程：演示上游、本服务器、LiteLLM 代理。都只监听 127.0.0.1；`Proc` 离开作用域时被杀掉。

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// 一个正在运行的被测进程。
pub struct Proc {
    pub child: Child,
    pub url: String,
    /// 从启动到就绪用了多久。
    pub startup: Duration,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// 进程及其所有子进程此刻的常驻内存（KB）。LiteLLM 可能派生子进程，一并算上。
    pub fn rss_kb(&self) -> u64 {
        tree_pids(self.pid())
            .into_iter()
            .map(|pid| status_field(pid, "VmRSS:"))
            .sum()
    }

    /// 主进程启动以来的常驻内存峰值（KB，内核记录的 VmHWM）。
    pub fn peak_rss_kb(&self) -> u64 {
        status_field(self.pid(), "VmHWM:")
    }

    /// SIGKILL：模拟崩溃或断电。
    pub async fn kill_hard(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// SIGTERM 并等它退出（正常停机）。
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill").arg(pid.to_string()).status().await;
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
    }
}

/// 系统分配的空闲回环端口。
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("可以在回环地址上绑定端口")
}

/// 在 `port` 上启动的进程的标准错误（每次启动重写）。
pub fn log_path(port: u16) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("drafting-bench-{port}.log"))
}

/// 启动命令，轮询 `ready_path` 直到返回 2xx（最多 `timeout`）。
pub async fn spawn(
    mut command: Command,
    port: u16,
    ready_path: &str,
    timeout: Duration,
) -> anyhow::Result<Proc> {
    let started = Instant::now();
    // 标准错误写进临时目录里的日志文件：进程提前退出时把结尾附在错误里。
    let log = log_path(port);
    let mut child = command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()?;
    let url = format!("http://127.0.0.1:{port}");
    let probe = reqwest::Client::new();
    loop {
        if let Some(status) = child.try_wait()? {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: String = text.lines().rev().take(5).collect::<Vec<_>>().join("\n");
            anyhow::bail!("进程提前退出（{status}）：{command:?}\n{tail}");
        }
        let ok = probe
            .get(format!("{url}{ready_path}"))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return Ok(Proc {
                child,
                url,
                startup: started.elapsed(),
            });
        }
        if started.elapsed() > timeout {
            let _ = child.start_kill();
            anyhow::bail!("{} 秒内没有就绪：{command:?}", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// 独立的演示上游，`extra` 是故障与尺寸参数。
pub async fn demo(bin: &Path, port: u16, extra: &[&str]) -> anyhow::Result<Proc> {
    let mut cmd = Command::new(bin);
    cmd.args(["demo-upstream", "--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .env("RUST_LOG", "error")
        // 演示上游在这里代表上游，要快：用 mimalloc 默认的延迟归还（服务器为了还内存设成立即归还，见 src/main.rs）。
        .env("MIMALLOC_PURGE_DELAY", "1000");
    spawn(cmd, port, "/v1beta/models", Duration::from_secs(30)).await
}

/// 本服务器：在 `dir` 里写 `factory.toml` 并以它为工作目录启动。
pub async fn server(bin: &Path, dir: &Path, port: u16, config: &str) -> anyhow::Result<Proc> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("factory.toml"), config)?;
    restart_server(bin, dir, port).await
}

/// 以 `dir` 里已有的配置再启动一次（崩溃后重启）。
pub async fn restart_server(bin: &Path, dir: &Path, port: u16) -> anyhow::Result<Proc> {
    let mut cmd = Command::new(bin);
    cmd.args(["--config", "factory.toml", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(dir)
        // 存储的启动核对（警告级）也要记下：浸泡的核对拿它对照崩溃留下的孤儿文件。
        .env("RUST_LOG", "error,drafting_factory::storage=warn");
    spawn(cmd, port, "/healthz", Duration::from_secs(60)).await
}

/// 本网关与 LiteLLM 都要求这把密钥（LiteLLM 不设 master key 不肯启动；为公平，本网关也开启密钥校验）。
pub const BENCH_KEY: &str = "sk-bench-0123456789abcdef";

/// 网关的限额放到足够大：测的是开销，不是限流。
pub fn server_config(upstreams: &[(&str, &str)], extra: &str) -> String {
    let mut config = format!(
        "[auth]\napi_keys = [\"{BENCH_KEY}\"]\n\n[storage]\nroot = \"storage\"\n\n[limits]\nrequests_per_minute = 1000000\nburst = 100000\nmax_concurrent = 1024\nqueue_size = 100000\n",
    );
    config.push_str(extra);
    for (name, url) in upstreams {
        config.push_str(&format!(
            "\n[[upstreams]]\nname = \"{name}\"\nkind = \"gemini\"\nbase_url = \"{url}\"\n"
        ));
    }
    config
}

/// LiteLLM 代理（一个 worker、默认设置、原生 Gemini 提供方，`api_base` 指向演示上游）。
pub async fn litellm(exe: &Path, dir: &Path, port: u16, demo_url: &str) -> anyhow::Result<Proc> {
    std::fs::create_dir_all(dir)?;
    let config = dir.join("litellm.yaml");
    std::fs::write(
        &config,
        format!(
            "model_list:\n  - model_name: gemini-image\n    litellm_params:\n      model: gemini/gemini-2.5-flash-image\n      api_base: {demo_url}/v1beta\n      api_key: bench-key\ngeneral_settings:\n  master_key: {BENCH_KEY}\n"
        ),
    )?;
    let mut cmd = Command::new(exe);
    cmd.arg("--config")
        .arg(&config)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--num_workers",
            "1",
        ])
        .current_dir(dir)
        .env("LITELLM_LOG", "ERROR")
        .env("LITELLM_TELEMETRY", "False")
        .env("NO_DOCS", "True");
    spawn(cmd, port, "/health/liveliness", Duration::from_secs(180)).await
}

/// `pid` 及其全部后代进程。
fn tree_pids(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // 第 4 个字段是父进程号；第 2 个字段（进程名）可能含空格，从最后一个 ')' 之后数。
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    tree
}

fn status_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// 后台每 `every` 采样一次进程树的 RSS，记下最大值（KB）。
pub struct RssSampler {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<u64>,
}

impl RssSampler {
    pub fn start(pid: u32, every: Duration) -> Self {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let mut peak = 0;
            loop {
                let now: u64 = tree_pids(pid)
                    .into_iter()
                    .map(|p| status_field(p, "VmRSS:"))
                    .sum();
                peak = peak.max(now);
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stopped.changed() => return peak,
                }
            }
        });
        Self { stop, task }
    }

    pub async fn finish(self) -> u64 {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or(0)
    }
}

/// 发布版或调试版二进制的位置（相对仓库根）。
pub fn binary(release: bool) -> PathBuf {
    let profile = if release { "release" } else { "debug" };
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(profile)
        .join("drafting-factory")
}
