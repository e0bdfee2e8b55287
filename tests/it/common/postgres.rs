//! 测试用的 PostgreSQL：Debian 的 `postgresql` 包里的服务器，整个测试程序共用一个，在回环地址的
//! 空闲端口上运行（数据目录在临时目录里，`fsync=off`）。每个测试拿一个自己的空数据库。
//! 测试程序退出后，一个看门的小进程把服务器停掉、删掉数据目录。
//!
//! 以 root 运行时（CI），服务器以 `postgres` 用户运行（PostgreSQL 拒绝以 root 运行）。

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

struct Server {
    port: u16,
    /// 服务器与看门进程：活过本测试程序（由看门进程收尾），这里只是留着它们的句柄。
    _processes: [std::process::Child; 2],
}

static SERVER: OnceLock<Server> = OnceLock::new();

/// `initdb`、`postgres` 所在的目录（Debian 把它们放在 /usr/lib/postgresql/<版本>/bin）。
fn bin_dir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop()
        .expect("找不到 PostgreSQL（/usr/lib/postgresql/*/bin/initdb）：请先运行 bash scripts/install-tools.sh")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

/// 以运行服务器的用户执行（root 时换成 postgres 用户，用 `setpriv` 直接换身份，不多一层进程）。
fn as_server_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    }
}

// 服务器与看门进程本来就要活过本测试程序，由看门进程收尾；这里不等它们。
#[allow(clippy::zombie_processes)]
fn start() -> Server {
    let bin = bin_dir();
    let dir = tempfile::Builder::new()
        .prefix("df-postgres-")
        .tempdir()
        .unwrap()
        .keep();
    if is_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "无法把 {} 交给 postgres 用户", dir.display());
    }
    let data = dir.join("data");
    let out = as_server_user(&bin.join("initdb"))
        .args(["-D"])
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        ])
        .output()
        .expect("可以运行 initdb");
    assert!(
        out.status.success(),
        "initdb 失败：{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = super::process::free_port();
    let child = as_server_user(&bin.join("postgres"))
        .arg("-D")
        .arg(&data)
        .args(["-p", &port.to_string(), "-k"])
        .arg(&dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=300",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("可以启动 postgres");
    // 看门：本测试程序退出后停掉服务器（快速停止），再删数据目录。
    let watcher = super::process::after_exit(&format!(
        "kill -INT {pg} 2>/dev/null; \
         for i in $(seq 20); do kill -0 {pg} 2>/dev/null || break; sleep 0.5; done; rm -rf '{dir}'",
        pg = child.id(),
        dir = dir.display()
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if admin(port, "SELECT 1").is_ok() {
            return Server {
                port,
                _processes: [child, watcher],
            };
        }
        assert!(Instant::now() < deadline, "PostgreSQL 30 秒内没有启动");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// 以管理员身份执行一句 SQL（在单独的线程里用同步客户端：测试本身跑在 tokio 里）。
fn admin(port: u16, sql: &str) -> Result<(), String> {
    let sql = sql.to_string();
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(
            &format!("host=127.0.0.1 port={port} user=postgres dbname=postgres connect_timeout=2"),
            postgres::NoTls,
        )
        .map_err(|e| e.to_string())?;
        client.batch_execute(&sql).map_err(|e| e.to_string())
    })
    .join()
    .unwrap()
}

/// 一个新建的空数据库的连接串。
pub fn database() -> String {
    let server = SERVER.get_or_init(start);
    let name = format!("t_{}", uuid_like());
    admin(server.port, &format!("CREATE DATABASE {name}")).expect("可以建库");
    format!("postgres://postgres@127.0.0.1:{}/{name}", server.port)
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// 在某个库里执行一句查询，取第一行第一列（文字）。测试用它直接查看库里的数据，不经过被测的代码。
pub fn query_text(url: &str, sql: &str) -> Option<String> {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client
            .query_opt(sql.as_str(), &[])
            .unwrap()
            .map(|r| r.get::<_, String>(0))
    })
    .join()
    .unwrap()
}

/// 在某个库里执行一句 SQL（测试直接改库，不经过被测的代码）。
pub fn execute(url: &str, sql: &str) {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client.batch_execute(&sql).unwrap();
    })
    .join()
    .unwrap()
}

/// 这次测试运行要不要把元数据放在 PostgreSQL（`DF_TEST_METADATA=postgres`，见 scripts/test.sh）。
pub fn selected() -> bool {
    std::env::var("DF_TEST_METADATA").as_deref() == Ok("postgres")
}
