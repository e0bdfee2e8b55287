//! 打包下载：50 张约 2 MB 的图（约 100 MB 的 zip）是有效的压缩包，每一项都能解码、对得上选中的 id；
//! 服务器的内存峰值（VmHWM）增长远小于 zip 的大小——是流式写出的，没有整包放在内存里。

use crate::common::*;
use serde_json::{json, Value};
use std::io::Read;

#[tokio::test]
async fn zip_of_50_images_is_valid_and_streams_in_bounded_memory() {
    let demo = demo_upstream(&["--png-bytes", "2000000"]).await;
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
    let before = peak_kb(pid);
    let started = std::time::Instant::now();
    let res = reqwest::get(format!("{}/files/zip?ids={}", server.url, ids.join(",")))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/zip");
    assert!(res.headers().get("content-encoding").is_none());
    let bytes = res.bytes().await.unwrap();
    let elapsed = started.elapsed();
    let growth_kb = peak_kb(pid).saturating_sub(before);
    println!(
        "zip：{} 字节，{:.1} MB/s，服务器内存峰值增长 {growth_kb} KB",
        bytes.len(),
        bytes.len() as f64 / 1048576.0 / elapsed.as_secs_f64()
    );
    assert!(bytes.len() > 90 << 20, "zip 应有约 100 MB：{}", bytes.len());
    assert!(
        growth_kb < 32 * 1024,
        "内存峰值增长 {growth_kb} KB：zip 有 {} MB，不应整个放进内存",
        bytes.len() >> 20
    );

    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(archive.len(), 50);
    let mut tails = std::collections::BTreeSet::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        // 文件名形如 `{提示词摘要}-{id 末 8 位}.png`。
        let name = entry.name().unwrap().to_string();
        let tail = name
            .rsplit('-')
            .next()
            .unwrap()
            .trim_end_matches(".png")
            .to_string();
        tails.insert(tail);
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        image::load_from_memory(&data).unwrap_or_else(|e| panic!("第 {i} 项无法解码：{e}"));
    }
    let wanted: std::collections::BTreeSet<String> = ids
        .iter()
        .map(|id| id[id.len() - 8..].to_string())
        .collect();
    assert_eq!(tails, wanted, "zip 里正好是选中的 50 张");

    // 重复的 id 只算一次。
    let res = reqwest::get(format!(
        "{}/files/zip?ids={},{},{}",
        server.url, ids[0], ids[1], ids[0]
    ))
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    let archive = zip::ZipArchive::new(std::io::Cursor::new(res.bytes().await.unwrap())).unwrap();
    assert_eq!(archive.len(), 2);

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
