//! 图库的 JSON 接口（服务器函数）：分页、搜索、坏参数、回收站，以及改存储根之后旧图仍在。

use crate::common::*;
use serde_json::{json, Value};

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

async fn generate(server: &Running, prompt: &str) -> String {
    let (status, saved) = studio_generate(server, prompt).await;
    assert_eq!(status, 200, "{saved}");
    saved["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn pages_search_and_bad_parameters() {
    let demo = demo_upstream(&[]).await;
    let ws = Workspace::new(&config_with_upstream(&demo.url));
    let server = ws.serve().await;
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(
            generate(
                &server,
                &format!("第{i}张 {}", if i % 2 == 0 { "猫" } else { "狗" }),
            )
            .await,
        );
    }
    made.reverse(); // 图库按时间倒序

    // 每页 2 张，沿 next_cursor 翻到底：顺序正确、不重不漏。
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    for _ in 0..5 {
        let (status, page) = call(
            &server,
            "list_images",
            json!({"query": {"limit": 2, "cursor": cursor}}),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        seen.extend(ids(&page));
        cursor = page["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(seen, made);

    let (_, cats) = call(&server, "list_images", json!({"query": {"search": "猫"}})).await;
    assert_eq!(
        ids(&cats),
        [made[0].clone(), made[2].clone(), made[4].clone()]
    );
    assert_eq!(
        cats["items"][0]["thumb_url"],
        format!("/files/{}/thumb", made[0])
    );

    let (status, detail) = call(&server, "get_image", json!({"id": made[0]})).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(detail["attempts"][0]["outcome"], "ok");
    assert_eq!(detail["upstream"], "替身");

    // 坏参数：400 与中文说明。
    for (endpoint, body, needle) in [
        (
            "list_images",
            json!({"query": {"mode": "video"}}),
            "mode 只能是",
        ),
        (
            "list_images",
            json!({"query": {"limit": 0}}),
            "limit 必须在 1 到 200",
        ),
        (
            "list_images",
            json!({"query": {"limit": 201}}),
            "limit 必须在 1 到 200",
        ),
        (
            "list_images",
            json!({"query": {"from": "昨天"}}),
            "RFC 3339",
        ),
        (
            "list_images",
            json!({"query": {"cursor": "abc"}}),
            "翻页游标无效",
        ),
        ("trash_images", json!({"ids": []}), "请选择 1 到"),
    ] {
        let (status, err) = call(&server, endpoint, body.clone()).await;
        assert_eq!(status, 400, "{body} → {err}");
        assert!(
            err["message"].as_str().unwrap().contains(needle),
            "{body} → {err}"
        );
    }
    let (status, _) = call(&server, "get_image", json!({"id": "0".repeat(32)})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn trash_restore_and_empty_trash_removes_files_and_rows() {
    let demo = demo_upstream(&[]).await;
    let ws = Workspace::new(&config_with_upstream(&demo.url));
    let server = ws.serve().await;
    let keep = generate(&server, "留下的").await;
    let gone = generate(&server, "要删的").await;
    let http = reqwest::Client::new();
    // 先取一次缩略图，确保它已写好。
    let thumb = http
        .get(format!("{}/files/{gone}/thumb", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(thumb.status(), 200);

    let (_, n) = call(
        &server,
        "trash_images",
        json!({"ids": [gone, "f".repeat(32)]}),
    )
    .await;
    assert_eq!(n, 1, "不存在的 id 不计数");
    let (_, live) = call(&server, "list_images", json!({"query": {}})).await;
    assert_eq!(ids(&live), vec![keep.clone()]);
    let (_, trash) = call(&server, "list_images", json!({"query": {"trash": true}})).await;
    assert_eq!(ids(&trash), vec![gone.clone()]);
    assert!(trash["items"][0]["deleted_at"].is_string());
    // 回收站里的图在恢复前仍可查看。
    let res = http
        .get(format!("{}/files/{gone}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let (_, n) = call(&server, "restore_images", json!({"ids": [gone]})).await;
    assert_eq!(n, 1);
    let (_, live) = call(&server, "list_images", json!({"query": {}})).await;
    assert_eq!(ids(&live), [gone.clone(), keep.clone()]);

    call(&server, "trash_images", json!({"ids": [gone]})).await;
    let before = ws.stored_originals("images/").await.len();
    let (status, n) = call(&server, "empty_trash", json!({})).await;
    assert_eq!((status, n), (200, json!(1)));
    assert_eq!(ws.stored_originals("images/").await.len(), before - 1);
    // 后台的缩略图线程可能正好在删除时写完一张缩略图：它写完发现原图没了会自己删掉（见 storage/thumbs.rs），
    // 所以这里等它一会儿（对象存储上更容易赶上）。
    let started = std::time::Instant::now();
    loop {
        let leftovers: Vec<_> = ws
            .stored_files()
            .await
            .into_iter()
            .filter(|p| p.contains(&gone))
            .collect();
        if leftovers.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "原图与缩略图都应删除：{leftovers:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let res = http
        .get(format!("{}/files/{gone}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let (status, _) = call(&server, "get_image", json!({"id": keep})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn changing_the_root_keeps_old_images_listed_and_served() {
    let demo = demo_upstream(&[]).await;
    let ws = Workspace::new(&config_with_upstream(&demo.url));
    let server = ws.serve().await;
    let old = generate(&server, "旧根下的图").await;
    drop(server);

    // 改根目录，同时把数据库固定在原处（设置页改根时就这样写配置；元数据在 PostgreSQL 时库本来就不随根走）。
    let pinned = if ws.postgres.is_some() {
        "root = \"新目录\""
    } else {
        "root = \"新目录\"\ndatabase = \"storage/factory.db\""
    };
    ws.write_config(&config_with_upstream(&demo.url).replace("root = \"storage\"", pinned));
    let server = ws.serve().await;
    let new = generate(&server, "新根下的图").await;

    assert!(originals_under(&ws.path().join("新目录"))
        .iter()
        .any(|p| p.to_string_lossy().contains(&new)));
    assert!(ws
        .stored_originals("")
        .await
        .iter()
        .any(|p| p.contains(&old)));
    let (_, page) = call(&server, "list_images", json!({"query": {}})).await;
    assert_eq!(ids(&page), [new.clone(), old.clone()]);
    let http = reqwest::Client::new();
    for id in [&old, &new] {
        for suffix in ["", "/thumb"] {
            let res = http
                .get(format!("{}/files/{id}{suffix}", server.url))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{id}{suffix}");
        }
    }
    let health: Value = http
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["storage"]["missing_files"], 0, "{health}");
}
