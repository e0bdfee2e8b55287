//! 坏配置：每一种都让真实的二进制以非零状态退出，并用中文说出是哪一项、为什么。

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// 坏配置应当立即让进程退出；给它 30 秒（机器再忙也够），过了还在运行就是被接受了、服务器已在服务。
const EXIT_WITHIN: Duration = Duration::from_secs(30);

fn start_with(config: &str, extra: &[&str]) -> (Output, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("factory.toml"), config).unwrap();
    std::fs::write(dir.path().join("a-file"), "不是目录").unwrap();
    let child = Command::new(crate::common::BIN)
        .args(["--config", "factory.toml"])
        .args(extra)
        .current_dir(dir.path())
        .env("RUST_LOG", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (exit_within(child, EXIT_WITHIN), dir)
}

/// 等子进程退出并收齐它的输出（两个管道各由一个线程读，免得写满了卡住子进程）；
/// 到期还在运行就杀掉它并让测试失败，而不是让整个测试一直挂着。`site.rs` 也用它（不能用的站点同样应立即退出）。
pub(crate) fn exit_within(mut child: Child, limit: Duration) -> Output {
    let read_all = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().unwrap()));
    let stderr = read_all(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = stderr.join().unwrap();
            panic!(
                "{} 秒没有退出：坏配置被接受、服务器已在运行。标准错误：{}",
                limit.as_secs(),
                String::from_utf8_lossy(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn assert_refused(config: &str, expected: &[&str]) {
    let (out, _dir) = start_with(config, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "应当拒绝启动：{config}");
    assert!(
        out.status.code().is_some(),
        "应当正常退出而不是崩溃：{stderr}"
    );
    for want in expected {
        assert!(
            stderr.contains(want),
            "错误信息应包含“{want}”，实际：{stderr}"
        );
    }
    assert!(stderr.contains("启动失败"), "{stderr}");
}

#[test]
fn unknown_key() {
    assert_refused(
        "[server]\nlistn = \"127.0.0.1:3000\"\n",
        &["server.listn", "未知的配置项"],
    );
}

#[test]
fn unknown_section() {
    assert_refused(
        "[sever]\nlisten = \"127.0.0.1:3000\"\n",
        &["sever", "未知的配置项"],
    );
}

#[test]
fn wrong_type() {
    assert_refused(
        "[limits]\nmax_concurrent = \"十六\"\n",
        &["limits.max_concurrent", "类型不对"],
    );
}

#[test]
fn port_out_of_range() {
    assert_refused(
        "[server]\nlisten = \"127.0.0.1:70000\"\n",
        &["server.listen", "1–65535"],
    );
}

#[test]
fn port_zero() {
    assert_refused(
        "[server]\nlisten = \"127.0.0.1:0\"\n",
        &["server.listen", "不能为 0"],
    );
}

#[test]
fn unwritable_storage_root() {
    assert_refused(
        "[storage]\nroot = \"a-file/images\"\n",
        &["storage.root", "无法创建目录"],
    );
}

#[test]
fn bad_upstream_url() {
    assert_refused(
        "[[upstreams]]\nname = \"主\"\nbase_url = \"gemini.example.com\"\n",
        &["upstreams[0].base_url", "不是有效的网址"],
    );
    assert_refused(
        "[[upstreams]]\nname = \"主\"\nbase_url = \"ftp://gemini.example.com\"\n",
        &["upstreams[0].base_url", "http://"],
    );
}

#[test]
fn unknown_upstream_kind() {
    assert_refused(
        "[[upstreams]]\nname = \"主\"\nkind = \"dalle\"\nbase_url = \"https://x.example.com\"\n",
        &["upstreams[0].kind", "不是可选值之一"],
    );
}

#[test]
fn toml_syntax_error() {
    assert_refused("[server\nlisten = 1\n", &["第 1 行", "TOML"]);
}

#[test]
fn negative_limit() {
    assert_refused(
        "[limits]\nrequests_per_minute = -5\n",
        &["limits.requests_per_minute"],
    );
}

#[test]
fn port_in_use_names_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let (out, _dir) = start_with(&format!("[server]\nlisten = \"{addr}\"\n"), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&addr) && stderr.contains("已被占用"),
        "{stderr}"
    );
}

#[test]
fn a_bad_file_changes_nothing_on_disk() {
    let (out, dir) = start_with(
        "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\nroot = \"kept-out\"\n",
        &[],
    );
    assert_ne!(out.status.code(), Some(0));
    // 看配置里写的那个存储目录（不是默认的 storage）：它没有被创建；目录里只有配置文件本身。
    assert!(!dir.path().join("kept-out").exists());
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut entries = entries;
    entries.sort();
    assert_eq!(
        entries,
        ["a-file", "factory.toml"],
        "无效的配置什么都不创建"
    );
}

#[test]
fn bad_listen_flag_is_explained_in_chinese() {
    for (flag, want) in [
        ("nonsense", "不是有效的“IP:端口”地址"),
        ("127.0.0.1:70000", "超出范围"),
    ] {
        let (out, _dir) = start_with("", &["--listen", flag]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{flag}");
        assert!(stderr.contains(want), "{flag}: {stderr}");
    }
}
