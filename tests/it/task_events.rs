//! `/v1` 的异步任务（#41 第 6 项）：`GET /v1/images/tasks/{id}` 带 `Accept: text/event-stream` 时推送状态的变化
//! （排队 → 生成中 → 完成，完成时带图片链接），`DELETE` 取消正在等上游的任务（停下，不存图）。

use crate::common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use std::time::Duration;

/// 提交一个异步任务，返回它的 id。
async fn submit(server: &Running, prompt: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("{}/v1/images/generations", server.url))
        .header("prefer", "respond-async")
        .json(&json!({ "prompt": prompt }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let task: Value = res.json().await.unwrap();
    task["id"].as_str().unwrap().to_string()
}

async fn status(server: &Running, id: &str) -> Value {
    get_json(format!("{}/v1/images/tasks/{id}", server.url)).await
}

#[tokio::test]
async fn the_event_stream_sees_queued_then_running_then_done_with_links() {
    // 同时只生成一张、每张 0.6 秒：第二个任务先排队。
    let demo = demo_upstream(&["--delay-ms", "600"]).await;
    let ws = Workspace::new(
        &(config_with_upstream(&demo.url) + "[limits]\nstudio_max_concurrent = 1\n"),
    );
    let server = ws.serve().await;
    let _first = submit(&server, "先到的").await;
    let second = submit(&server, "后到的").await;
    let res = reqwest::Client::new()
        .get(format!("{}/v1/images/tasks/{second}", server.url))
        .header("accept", "text/event-stream")
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut body = res.bytes_stream();
    let mut text = String::new();
    // 流在任务结束后自己关闭。
    while let Some(chunk) = body.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let statuses: Vec<&str> = events
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["queued", "running", "succeeded"], "{text}");
    assert!(text.contains("event: status"), "{text}");
    let last = events.last().unwrap();
    let url = last["data"][0]["url"].as_str().expect("完成时带图片链接");
    let png = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"));
}

#[tokio::test]
async fn delete_stops_a_task_that_is_waiting_for_the_upstream_and_stores_nothing() {
    // 上游不回答：任务一直在“生成中”。
    let demo = demo_upstream(&["--hang-rate", "1"]).await;
    let ws = Workspace::new(&config_with_upstream(&demo.url));
    let server = ws.serve().await;
    let id = submit(&server, "等不到的").await;
    let deadline = Deadline::new(10, "任务开始生成");
    while status(&server, &id).await["status"] != "running" {
        deadline.tick().await;
    }
    let res = reqwest::Client::new()
        .delete(format!("{}/v1/images/tasks/{id}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "cancelled", "{body}");
    assert_eq!(status(&server, &id).await["status"], "cancelled");
    let images: i64 =
        ws.db(|c| c.query_one("SELECT COUNT(*) FROM images", params![], |r| r.get(0)));
    assert_eq!(images, 0, "取消的任务不存图");
    // 别的方法：405，Allow 里有 GET 与 DELETE。
    let res = reqwest::Client::new()
        .put(format!("{}/v1/images/tasks/{id}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert!(res.headers()["allow"].to_str().unwrap().contains("DELETE"));
    // 不存在的任务：404。
    let res = reqwest::Client::new()
        .delete(format!(
            "{}/v1/images/tasks/0123456789abcdef0123456789abcdef",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
