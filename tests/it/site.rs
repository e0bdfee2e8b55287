//! 站点文件（页面的 JS、WASM）怎样交给浏览器：不带 `--split` 构建的站点让服务器拒绝启动；每个页面在 `<head>` 里
//! 预加载自己的 island 的块（只有自己的）；`.wasm` 以 `application/wasm` 给出（`instantiateStreaming` 要它），
//! 浏览器要 brotli 就给 brotli、要 gzip 就给 gzip；图片从不压缩。站点是临时目录里内容已知的假文件
//! （`LEPTOS_SITE_ROOT`），不依赖有没有构建过浏览器端。

use crate::common::*;
use drafting_factory::web::preload::{SPLIT_LOADER_JS, SPLIT_MANIFEST};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// 最小的 WASM 模块（魔数与版本号）。
const TINY_WASM: &[u8] = b"\0asm\x01\0\0\0";

/// 在 `dir/pkg/` 里写这些文件。
fn write_pkg(dir: &Path, files: &[(&str, &[u8])]) {
    let pkg = dir.join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    for (name, data) in files {
        std::fs::write(pkg.join(name), data).unwrap();
    }
}

#[test]
fn an_unsplit_site_is_refused_with_the_command_to_build_it() {
    // `cargo leptos build --release`（不带 --split）的样子：主 WASM、主 JS、样式表，没有拆分清单与加载器。
    let site = tempfile::tempdir().unwrap();
    write_pkg(
        site.path(),
        &[
            ("drafting-factory.wasm", TINY_WASM),
            (
                "drafting-factory.js",
                b"import * as s from './__wasm_split.______________________.js';".as_slice(),
            ),
            ("drafting-factory.css", b"body {}".as_slice()),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
        .env("RUST_LOG", "off")
        .env("LEPTOS_SITE_ROOT", site.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = crate::config_errors::exit_within(child, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("启动失败"), "{stderr}");
    assert!(
        stderr.contains("cargo leptos build --release --split"),
        "应说出该用的命令：{stderr}"
    );
    assert!(stderr.contains(SPLIT_MANIFEST), "{stderr}");
}

/// `html` 里全部 `<link …>` 标签的文字。
fn link_tags(html: &str) -> Vec<String> {
    html.split("<link")
        .skip(1)
        .map(|rest| rest.split('>').next().unwrap_or_default().to_string())
        .collect()
}

/// 预加载 `href` 的那个 `<link>`（`as="fetch"`、`type="application/wasm"`、带 crossorigin）在不在。
fn preloads_wasm(html: &str, href: &str) -> bool {
    link_tags(html).iter().any(|tag| {
        tag.contains(r#"rel="preload""#)
            && tag.contains(&format!(r#"href="{href}""#))
            && tag.contains(r#"as="fetch""#)
            && tag.contains(r#"type="application/wasm""#)
            && tag.contains("crossorigin")
    })
}

#[tokio::test]
async fn pages_preload_their_own_chunks_and_wasm_goes_out_as_wasm_compressed_on_request() {
    let site = tempfile::tempdir().unwrap();
    // 主 WASM 要大于压缩的下限（1 KB）且可压缩。
    let wasm: Vec<u8> = TINY_WASM
        .iter()
        .copied()
        .chain((0..64 * 1024u32).map(|i| (i % 251) as u8))
        .collect();
    let manifest = json!({
        "studio_loader_11": ["chunk_1", "split_studio_loader_11"],
        "gallery_loader_22": ["chunk_1", "chunk_2", "split_gallery_loader_22"],
    })
    .to_string();
    write_pkg(
        site.path(),
        &[
            ("drafting-factory.wasm", wasm.as_slice()),
            (
                "drafting-factory.js",
                b"export default async function () {}".as_slice(),
            ),
            (SPLIT_LOADER_JS, b"export const loaded = true;".as_slice()),
            (SPLIT_MANIFEST, manifest.as_bytes()),
            ("chunk_1.wasm", TINY_WASM),
            ("chunk_2.wasm", TINY_WASM),
            ("split_studio_loader_11.wasm", TINY_WASM),
            ("split_gallery_loader_22.wasm", TINY_WASM),
        ],
    );
    let ws = Workspace::new("");
    let server = ws
        .serve_with_env(&[("LEPTOS_SITE_ROOT", site.path().to_str().unwrap())])
        .await;
    let client = reqwest::Client::new();
    let page = |path: &str| {
        let url = format!("{}{path}", server.url);
        let client = client.clone();
        async move {
            let res = client
                .get(url)
                .header("accept", "text/html")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.text().await.unwrap()
        }
    };

    // 每页：拆分的加载器 JS 以 modulepreload 预加载；自己的 island 的块以 fetch 预加载，别的页面的不加载。
    let studio = page("/").await;
    let gallery = page("/gallery").await;
    for html in [&studio, &gallery] {
        assert!(
            link_tags(html)
                .iter()
                .any(|tag| tag.contains(r#"rel="modulepreload""#)
                    && tag.contains(&format!(r#"href="/pkg/{SPLIT_LOADER_JS}""#))),
            "{html}"
        );
    }
    assert!(preloads_wasm(&studio, "/pkg/chunk_1.wasm"), "{studio}");
    assert!(
        preloads_wasm(&studio, "/pkg/split_studio_loader_11.wasm"),
        "{studio}"
    );
    assert!(!studio.contains("chunk_2.wasm") && !studio.contains("split_gallery_loader"));
    assert!(preloads_wasm(&gallery, "/pkg/chunk_1.wasm"), "{gallery}");
    assert!(preloads_wasm(&gallery, "/pkg/chunk_2.wasm"), "{gallery}");
    assert!(
        preloads_wasm(&gallery, "/pkg/split_gallery_loader_22.wasm"),
        "{gallery}"
    );
    assert!(!gallery.contains("split_studio_loader"));

    // `.wasm` 是 application/wasm；要 br 给 br，要 gzip 给 gzip，都不要就原样。
    let get = |path: &str, encoding: Option<&'static str>| {
        let mut req = client.get(format!("{}{path}", server.url));
        if let Some(e) = encoding {
            req = req.header("accept-encoding", e);
        }
        req.send()
    };
    for (asked, expected) in [
        (Some("br"), Some("br")),
        (Some("gzip, deflate, br"), Some("br")),
        (Some("gzip"), Some("gzip")),
        (None, None),
    ] {
        let res = get("/pkg/drafting-factory.wasm", asked).await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.headers()["content-type"],
            "application/wasm",
            "{asked:?}"
        );
        assert_eq!(
            res.headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap()),
            expected,
            "Accept-Encoding: {asked:?}"
        );
        let body = res.bytes().await.unwrap();
        if expected.is_some() {
            assert!(body.len() < wasm.len() / 2, "压缩过：{} 字节", body.len());
        } else {
            assert_eq!(body, wasm);
        }
    }

    // 图片从不压缩（PNG 本来就压缩过，再压只费 CPU）。
    let (status, image) = call(
        &server,
        "generate_image",
        json!({"request": {"prompt": "不压缩的图"}}),
    )
    .await;
    assert_eq!(status, 200, "{image}");
    let url = image["url"].as_str().unwrap();
    let res = get(url, Some("gzip, deflate, br")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert!(
        res.headers().get("content-encoding").is_none(),
        "{:?}",
        res.headers()
    );
}
