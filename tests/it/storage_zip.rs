//! 打包下载：50 张图的 zip 是有效的压缩包、每一项都能解码；服务器内存增长有界（打印出来）。

use crate::common::*;
use serde_json::{json, Value};
use std::io::Read;

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn zip_of_50_images_is_valid_and_streams_in_bounded_memory() {
    let demo = demo_upstream(&[]).await;
    let ws = Workspace::new(&config_with_upstream(&demo.url));
    let server = ws.serve().await;
    let mut ids = Vec::new();
    for n in [16, 16, 16, 2] {
        let res = v1_generate(
            &server,
            None,
            json!({"prompt": "打包", "n": n, "response_format": "url"}),
        )
        .await;
        let body: Value = res.json().await.unwrap();
        for item in body["data"].as_array().unwrap() {
            // 链接形如 …/files/{id}?exp=…&sig=…（签名链接）。
            let url = item["url"].as_str().unwrap();
            let path = url.split('?').next().unwrap();
            ids.push(path.rsplit('/').next().unwrap().to_string());
        }
    }
    assert_eq!(ids.len(), 50);

    let pid = server.child.id().unwrap();
    let before = rss_kb(pid);
    let started = std::time::Instant::now();
    let res = reqwest::get(format!("{}/files/zip?ids={}", server.url, ids.join(",")))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/zip");
    assert!(res.headers().get("content-encoding").is_none());
    let bytes = res.bytes().await.unwrap();
    let elapsed = started.elapsed();
    let growth_kb = rss_kb(pid).saturating_sub(before);
    println!(
        "zip：{} 字节，{:.1} MB/s，服务器 RSS 增长 {growth_kb} KB",
        bytes.len(),
        bytes.len() as f64 / 1048576.0 / elapsed.as_secs_f64()
    );
    assert!(growth_kb < 32 * 1024, "RSS 增长 {growth_kb} KB");

    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(archive.len(), 50);
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        image::load_from_memory(&data).unwrap_or_else(|e| panic!("第 {i} 项无法解码：{e}"));
    }

    // 有一个 id 不存在：整个请求 404，不会打出缺图的包。
    let mut with_unknown = ids[..3].to_vec();
    with_unknown.push("0123456789abcdef0123456789abcdef".into());
    let res = reqwest::get(format!(
        "{}/files/zip?ids={}",
        server.url,
        with_unknown.join(",")
    ))
    .await
    .unwrap();
    assert_eq!(res.status(), 404);
    let res = reqwest::get(format!("{}/files/zip?ids=", server.url))
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}
