//! 没有人在这里写过的真实客户端：官方 openai Python 包与 openai npm 包对着真服务器跑；
//! Google 官方的 google-genai Python 包对着演示上游跑（它必须像真的 Gemini 一样读懂官方 SDK）。
//! SDK 由 `bash scripts/install-tools.sh --e2e` 安装（Python 虚拟环境在 target/sdk-venv，npm 包在 end2end/）。

use crate::common::*;
use std::path::Path;
use std::process::Command;

const KEY: &str = "sk-sdk-test-0001";

async fn server_for_sdk() -> (Running, Workspace, Running) {
    let demo = demo_upstream(&[]).await;
    let extra =
        format!("[auth]\napi_keys = [\"{KEY}\"]\n[limits]\nrequests_per_minute = 6\nburst = 16\n");
    let ws = Workspace::new(&config_with_upstreams(&[("替身", &demo.url)], &extra));
    let server = ws.serve().await;
    (demo, ws, server)
}

fn run_client(program: &Path, args: &[&str], dir: &Path, url: &str) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("FACTORY_URL", url)
        .env("FACTORY_KEY", KEY)
        // 脚本用 check() 检查，在 PYTHONOPTIMIZE 下拒绝运行；别让外面的环境变量带进来。
        .env_remove("PYTHONOPTIMIZE")
        .output()
        .unwrap_or_else(|e| panic!("无法运行 {}：{e}", program.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "SDK 测试失败：\n{stdout}\n{stderr}");
}

#[tokio::test]
async fn official_python_sdk() {
    let (_demo, _ws, server) = server_for_sdk().await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/sdk-venv/bin/python");
    assert!(
        python.exists(),
        "找不到 {}：请先运行 bash scripts/install-tools.sh --e2e",
        python.display()
    );
    let url = server.url.clone();
    tokio::task::spawn_blocking(move || {
        run_client(&python, &["tests/sdk/openai_python.py"], root, &url)
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn official_npm_sdk() {
    let (_demo, _ws, server) = server_for_sdk().await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join("end2end/node_modules/openai").is_dir(),
        "找不到 openai npm 包：请先运行 bash scripts/install-tools.sh --e2e"
    );
    let url = server.url.clone();
    tokio::task::spawn_blocking(move || {
        run_client(
            Path::new("node"),
            &["--test", "sdk/"],
            &root.join("end2end"),
            &url,
        )
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn google_genai_sdk_against_the_demo_upstream() {
    let demo = demo_upstream(&[]).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/sdk-venv/bin/python");
    assert!(
        python.exists(),
        "找不到 {}：请先运行 bash scripts/install-tools.sh --e2e",
        python.display()
    );
    let url = demo.url.clone();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(&python)
            .arg("tests/sdk/google_genai.py")
            .current_dir(root)
            .env("DEMO_URL", &url)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env_remove("GOOGLE_GENAI_USE_VERTEXAI")
            .env_remove("PYTHONOPTIMIZE")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        println!("{stdout}");
        assert!(
            out.status.success(),
            "google-genai SDK 测试失败：\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    })
    .await
    .unwrap();
}
