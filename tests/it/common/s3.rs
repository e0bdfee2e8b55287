//! 测试用的 S3 兼容服务：PyPI 的 moto 独立服务器（`moto_server`），在回环地址的一个端口上作为子进程运行，
//! 由 `bash scripts/install-tools.sh --e2e` 装进 target/sdk-venv。测试直接用 HTTP 查看桶里的对象，
//! 不经过被测的代码：moto 不校验签名，但不带 Authorization 的请求算匿名、读不到私有对象，
//! 所以每个请求带一个形式正确、签名随意的头。
//!
//! 两种用法：`S3::start()` 给一个测试自己的服务器（可以停掉、再启动）；`DF_TEST_IMAGES=s3` 时
//! （scripts/test.sh 用它把存储与图库的测试在对象存储上再跑一遍）每个工作区从整个测试程序共用的一个服务器里
//! 拿一个新桶（`fresh_bucket`）。

use super::process::{after_exit, free_port};
use std::path::Path;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// 一个正在运行的 moto 服务器和里面的一个桶；离开作用域时进程被杀掉。
pub struct S3 {
    child: Child,
    bucket: Bucket,
}

/// 某个 moto 服务器里的一个桶：查看、放入、删除对象。
#[derive(Debug, Clone)]
pub struct Bucket {
    pub port: u16,
    pub name: String,
}

impl std::ops::Deref for S3 {
    type Target = Bucket;
    fn deref(&self) -> &Bucket {
        &self.bucket
    }
}

fn moto_server() -> std::path::PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/sdk-venv/bin/moto_server");
    assert!(
        bin.exists(),
        "找不到 {}：请先运行 bash scripts/install-tools.sh --e2e",
        bin.display()
    );
    bin
}

/// 带着随意签名的 HTTP 客户端（见模块说明）。
fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_static(
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
        ),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// 是否把工作区的图放进对象存储（`DF_TEST_IMAGES=s3`）。
#[allow(dead_code)]
pub fn selected() -> bool {
    std::env::var("DF_TEST_IMAGES").is_ok_and(|v| v == "s3")
}

/// 整个测试程序共用的服务器的端口（第一次用时启动；测试程序退出后由一个看门的小进程停掉它）。
#[allow(clippy::zombie_processes)]
fn shared_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let port = free_port();
        let child = std::process::Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("可以启动 moto_server");
        after_exit(&format!("kill {} 2>/dev/null", child.id()));
        port
    })
}

/// 共用服务器里一个新建的空桶（在单独的线程里建：调用方可能在 tokio 里，也可能不在）。
#[allow(dead_code)]
pub fn fresh_bucket() -> Bucket {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let bucket = Bucket {
        port: shared_port(),
        name: format!(
            "ws-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ),
    };
    let creating = bucket.clone();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(creating.create())
    })
    .join()
    .unwrap();
    bucket
}

impl S3 {
    /// 在一个空闲端口上启动，建好桶 `factory`。
    pub async fn start() -> S3 {
        S3::start_at(free_port()).await
    }

    /// 在指定端口上启动（模拟对象存储停机后恢复：新进程是空的，桶要重建）。
    pub async fn start_at(port: u16) -> S3 {
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("可以启动 moto_server");
        let s3 = S3 {
            child,
            bucket: Bucket {
                port,
                name: "factory".into(),
            },
        };
        s3.bucket.create().await;
        s3
    }

    /// 停掉服务（模拟对象存储不可达）。
    pub async fn stop(mut self) -> u16 {
        self.child.kill().await.unwrap();
        self.bucket.port
    }
}

impl Bucket {
    /// 等服务器起来（最多 30 秒），建桶。
    async fn create(&self) {
        let started = Instant::now();
        while client().get(self.endpoint()).send().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server 30 秒内没有启动"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let created = client().put(self.url("")).send().await.unwrap();
        assert!(created.status().is_success(), "建桶失败：{created:?}");
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn url(&self, key: &str) -> String {
        format!("{}/{}/{key}", self.endpoint(), self.name)
    }

    /// 服务器的配置：图片放在 `s3://桶/team`，元数据库在工作目录的 meta/ 下（`DF_TEST_METADATA=postgres` 时不写，
    /// 由工作区填上它的 PostgreSQL 库），上游用内置演示上游。
    pub fn config(&self, extra: &str) -> String {
        let database = if super::postgres::selected() {
            ""
        } else {
            "database = \"meta/factory.db\"\n"
        };
        format!(
            "[storage]\nroot = \"s3://{}/team\"\n{database}\n\
             [storage.s3]\nendpoint = \"{}\"\nregion = \"us-east-1\"\n\
             access_key_id = \"test\"\nsecret_access_key = \"test-secret\"\n\n{extra}",
            self.name,
            self.endpoint()
        )
    }

    /// 桶里全部对象的键（按字典序）。
    pub async fn keys(&self) -> Vec<String> {
        let listing = client()
            .get(format!(
                "{}/{}?list-type=2&max-keys=1000",
                self.endpoint(),
                self.name
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !listing.contains("<IsTruncated>true"),
            "测试里的对象不该超过 1000 个"
        );
        let mut keys: Vec<String> = listing
            .split("<Key>")
            .skip(1)
            .map(|rest| rest.split("</Key>").next().unwrap().to_string())
            .collect();
        keys.sort();
        keys
    }

    /// 含 `part` 的那个键（必须恰好一个）。
    pub async fn key_containing(&self, part: &str) -> String {
        let found: Vec<String> = self
            .keys()
            .await
            .into_iter()
            .filter(|k| k.contains(part))
            .collect();
        assert_eq!(found.len(), 1, "含 {part} 的对象：{found:?}");
        found.into_iter().next().unwrap()
    }

    pub async fn get(&self, key: &str) -> Option<bytes::Bytes> {
        let res = client().get(self.url(key)).send().await.unwrap();
        res.status()
            .is_success()
            .then_some(res.bytes().await.unwrap())
    }

    pub async fn put(&self, key: &str, data: &'static [u8]) {
        let res = client().put(self.url(key)).body(data).send().await.unwrap();
        assert!(res.status().is_success(), "{res:?}");
    }

    pub async fn delete(&self, key: &str) {
        let res = client().delete(self.url(key)).send().await.unwrap();
        assert!(res.status().is_success(), "{res:?}");
    }
}
