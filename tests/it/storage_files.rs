//! `/files`：按数据库 id 取图与缩略图；ETag 与 304；各种路径穿越与坏 id 一律 404。

use crate::common::*;
use serde_json::Value;

async fn one_image(server: &Running) -> String {
    let (status, saved) = studio_generate(server, "缩略图测试").await;
    assert_eq!(status, 200, "{saved}");
    saved["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn thumbnail_is_a_small_jpeg_beside_the_image_and_both_are_cacheable() {
    let demo = demo_upstream(&[]).await;
    let ws = Workspace::new(&config_with_upstream(&demo.url));
    let server = ws.serve().await;
    let id = one_image(&server).await;
    let http = reqwest::Client::new();

    let res = http
        .get(format!("{}/files/{id}/thumb", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let thumb = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(thumb.width().max(thumb.height()), 384);
    let files = ws.stored_files().await;
    assert!(
        files
            .iter()
            .any(|p| p.starts_with("images/") && p.ends_with(&format!("{id}.thumb.jpg"))),
        "{files:?}"
    );

    for (path, tag) in [
        (format!("/files/{id}/thumb"), etag),
        (format!("/files/{id}"), format!("\"{id}\"")),
    ] {
        let cached = http
            .get(format!("{}{path}", server.url))
            .header("if-none-match", &tag)
            .send()
            .await
            .unwrap();
        assert_eq!(cached.status(), 304, "{path}");
    }
}

#[tokio::test]
async fn traversal_and_bad_ids_are_404_and_read_nothing() {
    let demo = demo_upstream(&[]).await;
    let ws = Workspace::new(&config_with_upstream(&demo.url));
    let server = ws.serve().await;
    let id = one_image(&server).await;
    // 一个存储根之外、猜得到路径的文件。
    std::fs::write(ws.path().join("secret.txt"), "不该被读到").unwrap();
    let cases = [
        "/files/...".to_string(),
        "/files/..%2F..%2Fsecret.txt".into(),
        "/files/%2e%2e%2f%2e%2e%2fsecret.txt".into(),
        "/files/%2Fetc%2Fpasswd".into(),
        "/files/factory.db".into(),
        "/files/images%2F".into(),
        "/files/0123456789abcdef0123456789abcdef".into(),
        "/files/0123456789abcdef0123456789abcdeg".into(),
        format!("/files/{}", &id[..31]),
        format!("/files/{id}0"),
        format!("/files/{id}%00"),
        format!("/files/{id}/..%2F..%2Fsecret.txt"),
        "/files/0123456789abcdef0123456789abcdef/thumb".into(),
        "/files/..%2Fsecret.txt/thumb".into(),
    ];
    let http = reqwest::Client::new();
    for path in &cases {
        let res = http
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap();
        assert_eq!(status, 404, "{path}");
        assert!(
            !body.contains("不该被读到") && !body.contains("SQLite"),
            "{path}: {body}"
        );
        if let Ok(v) = serde_json::from_str::<Value>(&body) {
            assert_eq!(v["error"]["code"], "not_found", "{path}");
        }
    }
}
