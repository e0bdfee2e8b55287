//! 端到端（不含浏览器）：真服务器 + 独立的演示上游，各在自己的端口；经服务器函数生成一张图。

use crate::common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn generates_png_with_requested_size_and_saves_it_atomically() {
    let demo = demo_upstream(&[]).await;
    let ws = Workspace::new(&config_with_upstream(&demo.url));
    let server = ws.serve().await;
    let http = reqwest::Client::new();

    let res = http
        .post(format!("{}/api/generate_image", server.url))
        .json(&json!({"request": {"prompt": "海边的灯塔，黄昏", "aspect_ratio": "16:9", "image_size": "1K"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let saved: Value = res.json().await.unwrap();
    assert_eq!(
        (saved["width"].as_u64(), saved["height"].as_u64()),
        (Some(1376), Some(768))
    );
    assert_eq!(saved["upstream"], "替身");

    // 通过 /files/{id} 取回：确实是 PNG，像素尺寸符合 16:9 的 1K 档。
    let url = format!("{}{}", server.url, saved["url"].as_str().unwrap());
    let file = http.get(&url).send().await.unwrap();
    assert_eq!(file.headers()["content-type"], "image/png");
    let bytes = file.bytes().await.unwrap();
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).unwrap();
    assert_eq!((img.width(), img.height()), (1376, 768));

    // 磁盘上：文件在存储根目录下、内容一致，没有残留的临时文件。
    let files = originals_under(&ws.storage().join("images"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(std::fs::read(&files[0]).unwrap(), bytes.to_vec());
    assert!(files[0].to_string_lossy().ends_with(".png"));
    // 缩略图在后台写（也经临时文件）：等它写完（最多 20 秒，等不到就失败），之后不应留下任何临时文件。
    // 不经 GET /files/{id}/thumb 看：那里缺了会当场生成一张，后台没写也照样通过。
    let thumb_path = files[0].with_extension("thumb.jpg");
    let has_partial = || {
        files_under(ws.path()).iter().any(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".partial-")
        })
    };
    let deadline = Deadline::new(20, format!("后台写完缩略图 {}", thumb_path.display()));
    while !thumb_path.exists() || has_partial() {
        deadline.tick().await;
    }
    assert_eq!(
        files_under(&ws.storage().join("images")).len(),
        2,
        "只有原图与缩略图：{:?}",
        files_under(ws.path())
    );
    let thumb = image::load_from_memory_with_format(
        &std::fs::read(&thumb_path).unwrap(),
        image::ImageFormat::Jpeg,
    )
    .expect("缩略图是一张完整的 JPEG");
    assert_eq!(
        thumb.width().max(thumb.height()),
        384,
        "缩略图最长边 384：{}×{}",
        thumb.width(),
        thumb.height()
    );
    assert!(thumb.width() > thumb.height(), "缩略图保持 16:9 的横向");

    // 下载链接带上 attachment 与可读文件名。
    let dl = http.get(format!("{url}?download=1")).send().await.unwrap();
    let disposition = dl.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment;") && disposition.contains("filename*=UTF-8''"),
        "{disposition}"
    );
}

#[tokio::test]
async fn empty_prompt_is_refused_with_chinese_message_and_nothing_saved() {
    let demo = demo_upstream(&[]).await;
    let ws = Workspace::new(&config_with_upstream(&demo.url));
    let server = ws.serve().await;
    let res = reqwest::Client::new()
        .post(format!("{}/api/generate_image", server.url))
        .json(&json!({"request": {"prompt": "   "}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["message"], "提示词不能为空");
    assert!(files_under(&ws.storage().join("images")).is_empty());
}

#[tokio::test]
async fn upstream_safety_block_is_reported_and_nothing_saved() {
    let demo = demo_upstream(&["--safety-rate", "1"]).await;
    let ws = Workspace::new(&config_with_upstream(&demo.url));
    let server = ws.serve().await;
    let res = reqwest::Client::new()
        .post(format!("{}/api/generate_image", server.url))
        .json(&json!({"request": {"prompt": "被拦截的内容"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["code"], "content_policy_violation");
    assert!(
        err["message"].as_str().unwrap().contains("安全策略"),
        "{err}"
    );
    assert!(files_under(&ws.storage().join("images")).is_empty());
}

#[tokio::test]
async fn files_route_answers_404_for_unknown_and_malformed_ids() {
    let ws = Workspace::new("");
    let server = ws.serve().await;
    let http = reqwest::Client::new();
    for path in [
        "/files/0123456789abcdef0123456789abcdef",
        "/files/..%2F..%2Fetc%2Fpasswd",
        "/files/factory.db",
        "/files/%2Fetc%2Fpasswd",
    ] {
        let res = http
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn healthz_and_demo_mode_without_upstreams() {
    let ws = Workspace::new("");
    let server = ws.serve().await;
    let health: Value = get_json(format!("{}/healthz", server.url)).await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["demo_mode"], true);
    let page = get_text(&server.url).await;
    // 页头的“演示模式”标记（窄屏只显示“演示”两个字，说明在 title 里）。
    assert!(
        page.contains("class=\"demo-badge\"")
            && page.contains("未配置上游，图像由内置演示上游绘制")
            && page.contains("生成"),
        "{page}"
    );
}
