//! 集成测试的公共部分：在回环地址的随机端口上启动真正的二进制（服务器或演示上游）。
#![allow(dead_code)]

pub mod in_process;
pub mod postgres;
pub mod process;
pub mod s3;

pub use drafting_factory::storage::sql::{params, Db, DbError};

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_drafting-factory");

/// 测试启动的服务器用的管理员登录令牌（`FACTORY_ADMIN_TOKEN`）：没设管理员密码、只在本机可达时，
/// 测试凭它打开管理员登录链接拿到会话（见 `admin_cookie`），和运维打开启动时打印的链接一样。
pub const TEST_ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdefghijklmnop";

/// 一个正在运行的子进程；离开作用域时被杀掉。
pub struct Running {
    pub child: Child,
    pub url: String,
    /// 进程至今打印的日志（标准错误，最多留最后 4 MB）。
    pub logs: std::sync::Arc<std::sync::Mutex<String>>,
    /// 凭管理员登录链接拿到的会话 Cookie（第一次要用时才去拿；设了管理员密码的服务器没有）。
    admin: tokio::sync::OnceCell<Option<String>>,
}

/// 启动二进制并等它在标准输出打印出 `http://…` 地址。
async fn start(args: &[&str], dir: &Path) -> Running {
    start_with_env(args, dir, &[]).await
}

async fn start_with_env(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> Running {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .env("FACTORY_ADMIN_TOKEN", TEST_ADMIN_TOKEN)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("可以启动二进制");
    // 日志（标准错误）照常显示在测试输出里，同时留一份给要检查日志的测试。
    let logs = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = child.stderr.take().unwrap();
    let sink = logs.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("{line}");
            let mut all = sink.lock().unwrap();
            if all.len() > 4 << 20 {
                all.clear();
            }
            all.push_str(&line);
            all.push('\n');
        }
    });
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(pos) = line.find("http://") {
                return line[pos..].trim().to_string();
            }
        }
        panic!("进程退出了，没有打印监听地址：{args:?}");
    })
    .await
    .expect("60 秒内应当启动");
    // 继续读掉标准输出，免得管道写满阻塞子进程。
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Running {
        child,
        url,
        logs,
        admin: Default::default(),
    }
}

/// 启动独立的演示上游（Gemini 替身），`extra` 是故障开关等参数。
pub async fn demo_upstream(extra: &[&str]) -> Running {
    demo_upstream_at("127.0.0.1:0", extra).await
}

/// 在指定地址上启动演示上游。
pub async fn demo_upstream_at(addr: &str, extra: &[&str]) -> Running {
    let mut args = vec!["demo-upstream", "--listen", addr];
    args.extend_from_slice(extra);
    start(&args, &std::env::temp_dir()).await
}

/// 一个临时工作目录，里面放配置文件与存储目录。
pub struct Workspace {
    pub dir: tempfile::TempDir,
    /// `DF_TEST_METADATA=postgres` 时这个工作区用的 PostgreSQL 库。
    pub postgres: Option<String>,
    /// `DF_TEST_IMAGES=s3` 时这个工作区的图所在的桶（键的前缀是 `ws/`）。
    pub bucket: Option<s3::Bucket>,
}

/// `DF_TEST_IMAGES=s3` 时工作区的图在桶里的前缀。
const BUCKET_PREFIX: &str = "ws";

impl Workspace {
    /// `DF_TEST_METADATA=postgres` 时（scripts/test.sh 用它把存储与图库的测试在 PostgreSQL 上再跑一遍），
    /// 没写 `storage.database` 的配置改为用一个新建的 PostgreSQL 库；`DF_TEST_IMAGES=s3` 时，
    /// 图放在工作区的 `storage` 目录里的配置改为放进一个新建的桶（见 `with_bucket`）。
    pub fn new(config: &str) -> Self {
        let ws = Self {
            dir: tempfile::tempdir().unwrap(),
            postgres: postgres::selected().then(postgres::database),
            bucket: s3::selected().then(s3::fresh_bucket),
        };
        ws.write_config(config);
        ws
    }

    /// 元数据总在 SQLite 文件里、图总在本地目录里的工作区（测的正是 SQLite 文件本身的：迁移、缺少数据库路径的配置）。
    pub fn sqlite(config: &str) -> Self {
        let ws = Self {
            dir: tempfile::tempdir().unwrap(),
            postgres: None,
            bucket: None,
        };
        ws.write_config(config);
        ws
    }

    /// 改写 `factory.toml`（PostgreSQL 模式下没写 `storage.database` 的仍用这个工作区的库，
    /// 对象存储模式下照样换成这个工作区的桶）。
    pub fn write_config(&self, config: &str) {
        let config = match &self.postgres {
            Some(url) => with_database(config, url),
            None => config.to_string(),
        };
        let config = match &self.bucket {
            Some(bucket) => with_bucket(&config, bucket),
            None => config,
        };
        std::fs::write(self.path().join("factory.toml"), config).unwrap();
    }

    /// 工作区主存储（`storage` 目录，或对象存储模式下的桶）里的全部文件，路径相对于存储根
    /// （`images/2026/11/30/….png` 之类），排好序。
    pub async fn stored_files(&self) -> Vec<String> {
        let mut files: Vec<String> = match &self.bucket {
            Some(bucket) => {
                assert!(
                    !self.storage().join("images").exists(),
                    "对象存储模式下图不该写进本地的 storage 目录"
                );
                bucket
                    .keys()
                    .await
                    .into_iter()
                    .filter_map(|k| {
                        k.strip_prefix(&format!("{BUCKET_PREFIX}/"))
                            .map(str::to_string)
                    })
                    .collect()
            }
            None => files_under(&self.storage())
                .into_iter()
                .map(|p| {
                    p.strip_prefix(self.storage())
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect(),
        };
        files.sort();
        files
    }

    /// 同上，只要写完了的原图（不含缩略图与写到一半的临时文件，见 `originals_under`）。
    pub async fn stored_originals(&self, under: &str) -> Vec<String> {
        self.stored_files()
            .await
            .into_iter()
            .filter(|f| f.starts_with(under) && is_original(f))
            .collect()
    }

    /// 库里一条图片记录（`root`, `rel_path`）指向的文件的内容：本地目录里的，或桶里的对象。
    pub async fn read_stored(&self, root: &str, rel: &str) -> Option<bytes::Bytes> {
        match (root.strip_prefix("s3://"), &self.bucket) {
            (Some(location), Some(bucket)) => {
                let prefix = location.split_once('/').map_or("", |(_, p)| p);
                bucket.get(&format!("{prefix}/{rel}")).await
            }
            (Some(_), None) => panic!("{root} 不是这个工作区的桶"),
            (None, _) => std::fs::read(Path::new(root).join(rel))
                .ok()
                .map(bytes::Bytes::from),
        }
    }

    /// 直接查看服务器的元数据库（SQLite 文件 storage/factory.db，或这个工作区的 PostgreSQL 库），
    /// 在单独的线程里做（同步的数据库客户端不能在 tokio 的线程里用）。
    pub fn db<T: Send>(&self, f: impl FnOnce(&mut Db<'_>) -> Result<T, DbError> + Send) -> T {
        let spec = match &self.postgres {
            Some(url) => url.clone(),
            None => self
                .storage()
                .join("factory.db")
                .to_string_lossy()
                .into_owned(),
        };
        std::thread::scope(|s| {
            s.spawn(move || {
                let db = drafting_factory::storage::open_database(&spec).unwrap();
                db.run(f).unwrap()
            })
            .join()
            .unwrap()
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn storage(&self) -> PathBuf {
        self.path().join("storage")
    }

    /// 以 `factory.toml` 启动服务器，监听随机端口。
    pub async fn serve(&self) -> Running {
        self.serve_with_env(&[]).await
    }

    /// 同上，另加环境变量。
    pub async fn serve_with_env(&self, env: &[(&str, &str)]) -> Running {
        start_with_env(
            &["--config", "factory.toml", "--listen", "127.0.0.1:0"],
            self.path(),
            env,
        )
        .await
    }
}

/// 配置里没写 `storage.database` 时填上 `url`（本来就写不对的配置原样返回）。
fn with_database(config: &str, url: &str) -> String {
    edit_storage(config, |storage| {
        storage
            .entry("database")
            .or_insert_with(|| toml::Value::String(url.to_string()));
    })
}

/// 改配置里的 `[storage]` 表（没有就新建）；解析不了的配置原样返回（测的就是写错的配置）。
fn edit_storage(config: &str, edit: impl FnOnce(&mut toml::Table)) -> String {
    let Ok(mut doc) = config.parse::<toml::Table>() else {
        return config.to_string();
    };
    let storage = doc
        .entry("storage")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    let Some(storage) = storage.as_table_mut() else {
        return config.to_string();
    };
    edit(storage);
    toml::to_string(&doc).unwrap()
}

/// 对象存储模式：图放在工作区 `storage` 目录里的配置（没写 `storage.root` 或写的就是 `storage`）改为放进 `bucket`
/// （`s3://桶/ws`），没写数据库的 SQLite 仍在 `storage/factory.db`（与本地目录时同一处，测试照样查得到）；
/// 桶的连接（`[storage.s3]`）总是写上，改到别的根以后旧图仍取得到。
fn with_bucket(config: &str, bucket: &s3::Bucket) -> String {
    edit_storage(config, |storage| {
        let root = storage.get("root").and_then(|r| r.as_str());
        if root.is_none_or(|r| r == "storage") {
            storage.insert(
                "root".into(),
                toml::Value::String(format!("s3://{}/{BUCKET_PREFIX}", bucket.name)),
            );
            storage
                .entry("database")
                .or_insert_with(|| toml::Value::String("storage/factory.db".into()));
        }
        let s3: toml::Table = format!(
        "endpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id = \"test\"\nsecret_access_key = \"test-secret\"",
        bucket.endpoint()
    )
    .parse()
    .unwrap();
        storage
            .entry("s3")
            .or_insert_with(|| toml::Value::Table(s3));
    })
}

/// 指向某个演示上游的最小配置。
pub fn config_with_upstream(upstream_url: &str) -> String {
    format!(
        "[storage]\nroot = \"storage\"\n\n[[upstreams]]\nname = \"替身\"\nkind = \"gemini\"\nbase_url = \"{upstream_url}\"\n"
    )
}

/// 递归列出目录下已写完的原图文件。缩略图及其写到一半的临时文件在后台生成，数量取决于时机，不计入；
/// 检查“没有残留临时文件”的测试用 `files_under`，它什么都列。
pub fn originals_under(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| is_original(&p.to_string_lossy()))
        .collect()
}

/// 路径的最后一段是写完了的原图（不是缩略图，也不是写到一半的临时文件）。
fn is_original(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    !name.ends_with(".thumb.jpg") && !name.starts_with(".partial-")
}

/// 递归列出目录下的所有文件。
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// 多个上游（名称, 地址）按顺序排优先级，再加上任意额外配置。
pub fn config_with_upstreams(upstreams: &[(&str, &str)], extra: &str) -> String {
    let mut text = format!("[storage]\nroot = \"storage\"\n{extra}\n");
    for (i, (name, url)) in upstreams.iter().enumerate() {
        text.push_str(&format!(
            "\n[[upstreams]]\nname = \"{name}\"\nkind = \"gemini\"\nbase_url = \"{url}\"\npriority = {i}\n"
        ));
    }
    text
}

/// 设置页建的 `/v1` 密钥在配置里的样子（只有摘要），`limits` 是 `images_per_day = …`、`max_spend_per_day = …` 之类。
/// 密钥的前 12 个字符是它的前缀：同一个配置里的几个密钥前缀要不同。
pub fn key_entry(label: &str, key: &str, limits: &str) -> String {
    format!(
        "\n[[auth.keys]]\nlabel = \"{label}\"\nprefix = \"{}\"\nsha256 = \"{}\"\ncreated_at = \"2026-11-30T00:00:00Z\"\n{limits}\n",
        &key[..12],
        drafting_factory::web::sha256_hex(key)
    )
}

/// 一个没有人监听的本机地址（连接会被拒绝）。
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

/// 一张小 PNG 的 Gemini 成功响应体。
pub fn gemini_ok_body() -> serde_json::Value {
    use base64::Engine;
    let img = image::RgbImage::from_pixel(8, 8, image::Rgb([10, 200, 30]));
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    serde_json::json!({"candidates": [{"content": {"role": "model", "parts": [
        {"inlineData": {"mimeType": "image/png", "data": base64::engine::general_purpose::STANDARD.encode(&png)}}
    ]}, "finishReason": "STOP"}]})
}

/// 经工作台的服务器函数生成一张图（它会返回尝试记录）。
pub async fn studio_generate(server: &Running, prompt: &str) -> (u16, serde_json::Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/api/generate_image", server.url))
        .json(&serde_json::json!({"request": {"prompt": prompt}}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// 经 `/v1/images/generations` 生成。
pub async fn v1_generate(
    server: &Running,
    key: Option<&str>,
    body: serde_json::Value,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/images/generations", server.url))
        .json(&body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap()
}

/// 尝试记录里每次的（上游, 结果分类）。
pub fn outcomes(saved: &serde_json::Value) -> Vec<(String, String)> {
    saved["attempts"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|a| {
            (
                a["upstream"].as_str().unwrap().to_string(),
                a["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// 尝试记录里每次是否“可能已计费”。
pub fn billing(saved: &serde_json::Value) -> Vec<bool> {
    saved["attempts"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|a| {
            a["maybe_billed"]
                .as_bool()
                .expect("每次尝试都标明是否可能已计费")
        })
        .collect()
}

/// 以 JSON 调用一个服务器函数（`POST /api/{endpoint}`），返回状态码与 JSON 响应（无法解析时为 null）。
pub async fn call(
    server: &Running,
    endpoint: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    post_json(server, &format!("/api/{endpoint}"), None, body).await
}

/// 管理员会话的 Cookie（`factory_admin=…`）：打开管理员登录链接 `/admin/token?token=…` 拿到，每个服务器只拿一次。
/// 设了管理员密码、或端口可能被别人访问到的服务器不认这个链接，返回 None。
pub async fn admin_cookie(server: &Running) -> Option<String> {
    server
        .admin
        .get_or_init(|| async {
            let response = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap()
                .get(format!(
                    "{}/admin/token?token={TEST_ADMIN_TOKEN}",
                    server.url
                ))
                .send()
                .await
                .unwrap();
            if response.status() != 303 {
                return None;
            }
            let cookie = response.headers()["set-cookie"].to_str().unwrap();
            Some(cookie.split(';').next().unwrap().to_string())
        })
        .await
        .clone()
}

/// 以本站的 Origin 与管理员会话（见 `admin_cookie`）调用设置页的服务器函数（`POST /api/admin/{name}`），返回状态码与 JSON。
pub async fn admin(
    server: &Running,
    name: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    post_json(
        server,
        &format!("/api/admin/{name}"),
        Some(&server.url),
        body,
    )
    .await
}

async fn post_json(
    server: &Running,
    path: &str,
    origin: Option<&str>,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", server.url))
        .timeout(Duration::from_secs(120))
        .json(&body);
    if let Some(origin) = origin {
        req = req.header("origin", origin);
        if let Some(cookie) = admin_cookie(server).await {
            req = req.header("cookie", cookie);
        }
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

/// 用 `hash-password` 子命令生成哈希（和运维手工操作一样）。
pub fn hash_password(password: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(BIN)
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(hash.starts_with("$argon2"), "{hash}");
    hash
}

/// 进程的内存峰值（VmHWM，KB）。
pub fn peak_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// `/metrics` 的全文（带管理员会话，见 `admin_cookie`；配置了 `server.metrics_public` 的服务器不需要）。
pub async fn metrics_text(server: &Running) -> String {
    let mut req = reqwest::Client::new()
        .get(format!("{}/metrics", server.url))
        .timeout(Duration::from_secs(10));
    if let Some(cookie) = admin_cookie(server).await {
        req = req.header("cookie", cookie);
    }
    let response = req.send().await.expect("可以读 /metrics");
    assert_eq!(response.status(), 200, "/metrics 应当可读");
    response.text().await.unwrap()
}

/// `/metrics` 里某个指标（行首匹配，可带标签）的值；没有这一行时为 None（不当成 0）。
pub async fn metric(server: &Running, line_start: &str) -> Option<f64> {
    let text = metrics_text(server).await;
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// 等到网关的在途上游调用数达到 `n`（最多 20 秒）：测试据此确定“谁占着名额”，而不是睡一段固定时间。
pub async fn wait_for_in_flight(server: &Running, n: f64) {
    wait_for_metric(
        server,
        "gateway_in_flight",
        |v| v >= n,
        &format!("网关的在途数到 {n}"),
    )
    .await;
}

/// 等某件事发生的期限：`while !条件 { deadline.tick().await }`，到期还没等到就让测试失败并说出在等什么。
/// 每次只小睡 20 毫秒（是轮询的间隔，不是估计的等待时间）。
pub struct Deadline {
    end: std::time::Instant,
    what: String,
}

impl Deadline {
    pub fn new(secs: u64, what: impl Into<String>) -> Self {
        Self {
            end: std::time::Instant::now() + Duration::from_secs(secs),
            what: what.into(),
        }
    }

    /// 还没到期就等 20 毫秒再看；到期则让测试失败。
    pub async fn tick(&self) {
        assert!(
            std::time::Instant::now() < self.end,
            "到期也没有等到：{}",
            self.what
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// 等到 `/metrics` 里某个指标（行首匹配，见 `metric`；还没有这一行时算 0）满足 `pred`（最多 20 秒），返回那时的值。
/// `what` 说明在等什么，等不到时写进失败信息。
pub async fn wait_for_metric(
    server: &Running,
    line_start: &str,
    pred: impl Fn(f64) -> bool,
    what: &str,
) -> f64 {
    let deadline = Deadline::new(20, format!("{what}（{line_start}）"));
    loop {
        let value = metric(server, line_start).await.unwrap_or(0.0);
        if pred(value) {
            return value;
        }
        deadline.tick().await;
    }
}

/// 手工改配置文件后服务器处理它的次数（`config_file_reloads_total`，`result` 为 applied、refused 或 unchanged）。
pub async fn config_reloads(server: &Running, result: &str) -> f64 {
    metric(
        server,
        &format!("config_file_reloads_total{{result=\"{result}\"}}"),
    )
    .await
    .unwrap_or(0.0)
}

/// 等到服务器又处理了一次配置文件、结果是 `result`：`before` 是改文件之前 `config_reloads(server, result)` 的值。
pub async fn wait_for_config_reload(server: &Running, result: &str, before: f64) {
    wait_for_metric(
        server,
        &format!("config_file_reloads_total{{result=\"{result}\"}}"),
        |v| v > before,
        &format!("配置文件的改动被处理（{result}）"),
    )
    .await;
}

/// 等到服务器的日志（标准错误，见 `Running::logs`）里出现 `needle`（最多 20 秒）。
/// 测试启动的服务器的日志级别默认是 warn，要等 info 的行须以 `serve_with_env(&[("RUST_LOG", "info")])` 启动。
pub async fn wait_for_log(server: &Running, needle: &str) {
    let deadline = Deadline::new(20, format!("日志里出现“{needle}”"));
    loop {
        let seen = server.logs.lock().unwrap().contains(needle);
        if seen {
            return;
        }
        deadline.tick().await;
    }
}

/// GET 一个地址，把响应体当 JSON 读出（请求失败或不是 JSON 时让测试失败）。
pub async fn get_json(url: impl reqwest::IntoUrl) -> serde_json::Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// GET 一个地址，把响应体当文本读出（请求失败时让测试失败）。
pub async fn get_text(url: impl reqwest::IntoUrl) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// 经 `/ws` 的快照等到某个任务进入某个状态（最多 30 秒）。
pub async fn wait_for_state(server: &Running, job_id: &str, state: &str) -> serde_json::Value {
    use futures::StreamExt;
    let url = server.url.replace("http://", "ws://") + "/ws";
    let started = std::time::Instant::now();
    loop {
        let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let snapshot: serde_json::Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
        if let Some(job) = snapshot["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|j| j["job_id"] == job_id)
        {
            if job["state"] == state {
                return job.clone();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{job_id} 没有进入 {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// 经 `POST /uploads` 上传一张 PNG 参考图，返回它的 id。
pub async fn upload(server: &Running, name: &str, png: Vec<u8>) -> String {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(png)
            .file_name(name.to_string())
            .mime_str("image/png")
            .unwrap(),
    );
    let res = reqwest::Client::new()
        .post(format!("{}/uploads", server.url))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let saved: serde_json::Value = res.json().await.unwrap();
    assert_eq!(saved[0]["filename"], name);
    saved[0]["id"].as_str().unwrap().to_string()
}

/// 提交一张工作台卡片，等它成为“保存失败”（生成了却存不下），返回任务 id。
pub async fn unsaved_card(server: &Running, prompt: &str) -> String {
    let (status, views) = call(
        server,
        "submit_jobs",
        serde_json::json!({"request": {"prompt": prompt}}),
    )
    .await;
    assert_eq!(status, 200, "{views}");
    let job_id = views[0]["job_id"].as_str().unwrap().to_string();
    let job = wait_for_state(server, &job_id, "unsaved").await;
    assert!(job["error"].as_str().unwrap().contains("重新保存"), "{job}");
    job_id
}

/// 经 `/v1` 生成一张存不进图库的图：照样 200，响应头说没存下，图以 `b64_json` 给出且是一张完整的图。
pub async fn v1_unsaved(server: &Running) {
    let res = v1_generate(
        server,
        None,
        serde_json::json!({"prompt": "存不下", "response_format": "url"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-factory-unsaved"], "1");
    let body: serde_json::Value = res.json().await.unwrap();
    let b64 = body["data"][0]["b64_json"]
        .as_str()
        .unwrap_or_else(|| panic!("没存下的图以 b64_json 给出：{body}"));
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    image::load_from_memory(&png).expect("是一张完整的图");
}

/// 在工作区里跑一个子命令（`migrate`、`backup`、`check`……），返回（成功与否，标准输出 + 标准错误）。
pub async fn run_cli(ws: &Workspace, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(ws.path())
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// 用工作台密码登录，返回 `Cookie` 头用的 `名=值`。
pub async fn session_cookie(server: &Running, password: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("{}/login", server.url))
        .json(&serde_json::json!({ "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let set = res.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}
