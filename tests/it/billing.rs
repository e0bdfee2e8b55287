//! 不付两次钱、不丢付过钱的图：按“可能已计费”分的重试、关掉开关时只有一次、认证与配额失败换上游、
//! 总时限、上游凭据按方言发送、存不下的图照样交给调用方并可重新保存、异步任务、启动核对、上传上限、
//! 配置文件的监视不采用空文件。

use crate::common::in_process::{json_of, App};
use crate::common::*;
use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn google_error(code: u16, status: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(code)
        .set_body_json(json!({"error": {"code": code, "message": message, "status": status}}))
}

fn png_b64() -> String {
    gemini_ok_body()["candidates"][0]["content"]["parts"][0]["inlineData"]["data"]
        .as_str()
        .unwrap()
        .to_string()
}

/// 每种方言都把上游密钥放在它该在的地方：gemini 是 `x-goog-api-key`，两种 OpenAI 方言是 `Bearer`。
/// wiremock 只对带着正确凭据的请求应答，并且要被调用恰好一次。
#[tokio::test]
async fn the_upstream_credential_is_sent_the_way_each_dialect_expects() {
    let png = png_b64();
    let cases = [
        (
            "gemini",
            ("x-goog-api-key", "AIza-gemini-key"),
            ResponseTemplate::new(200).set_body_json(gemini_ok_body()),
        ),
        (
            "openai-images",
            ("authorization", "Bearer sk-images-key"),
            ResponseTemplate::new(200).set_body_json(json!({"created": 1, "data": [{"b64_json": png}]})),
        ),
        (
            "openai-chat",
            ("authorization", "Bearer sk-chat-key"),
            ResponseTemplate::new(200).set_body_json(json!({"choices": [{"message": {"role": "assistant",
                "content": "", "images": [{"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}}]}}]})),
        ),
    ];
    for (kind, (name, value), answer) in cases {
        let mock = MockServer::start().await;
        Mock::given(method("POST"))
            .and(header(name, value))
            .respond_with(answer)
            .expect(1)
            .mount(&mock)
            .await;
        let key = value.trim_start_matches("Bearer ");
        let config = format!(
            "[[upstreams]]\nname = \"{kind}\"\nkind = \"{kind}\"\nbase_url = \"{}\"\napi_key = \"{key}\"\n",
            mock.uri()
        );
        let app = App::new(&config).await;
        let (status, body) = app
            .post_json("/v1/images/generations", json!({"prompt": "凭据"}))
            .await;
        assert_eq!(status, 200, "{kind}: {body}");
        mock.verify().await;
    }
}

/// 401、403 与每日配额耗尽的 429：不在这个上游重试，换下一个上游，而且都标为“未计费”。
#[tokio::test]
async fn auth_and_quota_failures_move_to_the_next_upstream_unbilled() {
    for (code, status, message) in [
        (
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        ),
        (403, "PERMISSION_DENIED", "Permission denied"),
        (
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for metric: GenerateRequestsPerDayPerProjectPerModel",
        ),
    ] {
        let primary = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(google_error(code, status, message))
            .expect(1)
            .mount(&primary)
            .await;
        let backup = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
            .expect(1)
            .mount(&backup)
            .await;
        let ws = Workspace::new(&config_with_upstreams(
            &[("主", &primary.uri()), ("备", &backup.uri())],
            "[retry]\nbase_delay_ms = 10\n",
        ));
        let server = ws.serve().await;
        let (status_code, saved) = studio_generate(&server, "换上游").await;
        assert_eq!(status_code, 200, "{code}: {saved}");
        assert_eq!(
            outcomes(&saved),
            vec![("主".into(), "status".into()), ("备".into(), "ok".into())],
            "{code}"
        );
        assert_eq!(
            billing(&saved),
            vec![false, true],
            "{code}：被拒绝的那次未计费"
        );
        primary.verify().await;
        backup.verify().await;
    }
}

/// 一直不回答的上游：整个请求在总时限内结束（超时，504），不会挂着。
#[tokio::test]
async fn a_hanging_upstream_ends_within_the_total_deadline() {
    let hang = demo_upstream(&["--hang-rate", "1"]).await;
    let ws = Workspace::new(&config_with_upstreams(
        &[("卡住的", &hang.url)],
        "[timeouts]\nattempt_s = 1\ntotal_s = 2\n[retry]\nbase_delay_ms = 10\n",
    ));
    let server = ws.serve().await;
    let started = Instant::now();
    let res = v1_generate(&server, None, json!({"prompt": "等不到"})).await;
    let elapsed = started.elapsed();
    assert_eq!(res.status(), 504);
    assert!(
        elapsed < Duration::from_secs(4),
        "总时限 2 秒，实际 {elapsed:?}"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_timeout", "{body}");
}

/// `retry_maybe_billed = false`：可能已计费的失败（500）只有这一次——不重试，也不换上游。
#[tokio::test]
async fn with_the_switch_off_a_maybe_billed_failure_costs_exactly_one_attempt() {
    let primary = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(google_error(
            500,
            "INTERNAL",
            "An internal error has occurred.",
        ))
        .expect(1)
        .mount(&primary)
        .await;
    let backup = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
        .expect(0)
        .mount(&backup)
        .await;
    let ws = Workspace::new(&config_with_upstreams(
        &[("主", &primary.uri()), ("备", &backup.uri())],
        "[retry]\nretry_maybe_billed = false\nbase_delay_ms = 10\n",
    ));
    let server = ws.serve().await;
    let res = v1_generate(&server, None, json!({"prompt": "只付一次"})).await;
    assert_eq!(res.status(), 502);
    let body: Value = res.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("1 次尝试可能已被上游计费"), "{message}");
    primary.verify().await;
    backup.verify().await;
    let metrics = metrics_text(&server).await;
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("gateway_maybe_billed_failures_total") && l.contains("upstream=\"主\"")
        })
        .expect("指标里应当有可能已计费的失败计数");
    assert!(line.ends_with(" 1"), "{line}");
}

/// 坏掉的 200（JSON 不完整）：可能已计费，开关开着时最多再试一次——总共两次，不会三次。
#[tokio::test]
async fn a_corrupt_200_is_retried_at_most_once() {
    let broken = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw("{\"candidates\": [{\"content\"", "application/json"),
        )
        .expect(2)
        .mount(&broken)
        .await;
    let ws = Workspace::new(&config_with_upstreams(
        &[("坏的", &broken.uri())],
        "[retry]\nmax_attempts = 3\nbase_delay_ms = 10\n",
    ));
    let server = ws.serve().await;
    let (status, body) = studio_generate(&server, "坏响应").await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("2 次尝试可能已被上游计费"),
        "{body}"
    );
    broken.verify().await;
}

fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// 存不进图库的图（这里用一个同名文件挡住当天的图片目录）：`/v1` 照样拿到图（响应头说没存下），
/// 工作台的卡片是“保存失败”，挪开障碍后“重新保存”成功。
#[tokio::test]
async fn a_paid_image_that_cannot_be_stored_is_still_delivered_and_can_be_saved_later() {
    let demo = demo_upstream(&[]).await;
    let ws = Workspace::new(&config_with_upstream(&demo.url));
    let server = ws.serve().await;
    let blocker = ws.storage().join("images").join(today());
    std::fs::create_dir_all(blocker.parent().unwrap()).unwrap();
    std::fs::write(&blocker, b"not a directory").unwrap();

    v1_unsaved(&server).await;

    let job_id = unsaved_card(&server, "卡片存不下").await;
    let spilled = files_under(&ws.storage().join(".spill"));
    assert_eq!(spilled.len(), 2, "两张图都在暂存区里：{spilled:?}");

    std::fs::remove_file(&blocker).unwrap();
    let (status, view) = call(&server, "resave_job", json!({"job_id": job_id})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["state"], "done");
    let url = format!("{}{}", server.url, view["image"]["url"].as_str().unwrap());
    assert_eq!(reqwest::get(url).await.unwrap().status(), 200);
    assert_eq!(
        files_under(&ws.storage().join(".spill")).len(),
        1,
        "重新保存后删掉它的暂存"
    );
}

/// 异步任务：202 与任务 id；取到结果；别的密钥查不到；重启后还在；工作台上也看得到。
#[tokio::test]
async fn slow_images_can_be_requested_asynchronously() {
    let demo = demo_upstream(&["--delay-ms", "300"]).await;
    let extra = "[auth]\napi_keys = [\"sk-task-a\", \"sk-task-b\"]\n";
    let ws = Workspace::new(&config_with_upstreams(&[("替身", &demo.url)], extra));
    let server = ws.serve().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let res = http
        .post(format!("{}/v1/images/generations", server.url))
        .bearer_auth("sk-task-a")
        .header("prefer", "respond-async")
        .json(&json!({"prompt": "慢慢画", "n": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let task: Value = res.json().await.unwrap();
    assert_eq!(task["status"], "queued");
    let id = task["id"].as_str().unwrap().to_string();
    let get = |key: &'static str, query: &'static str| {
        let url = format!("{}/v1/images/tasks/{id}{query}", server.url);
        let http = http.clone();
        async move {
            let res = http.get(url).bearer_auth(key).send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let started = Instant::now();
    let done = loop {
        let (status, body) = get("sk-task-a", "").await;
        assert_eq!(status, 200, "{body}");
        if body["status"] == "succeeded" {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "任务没有完成：{body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(done["data"].as_array().unwrap().len(), 2, "{done}");
    let url = done["data"][0]["url"].as_str().unwrap();
    assert_eq!(http.get(url).send().await.unwrap().status(), 200);
    assert_eq!(get("sk-task-b", "").await.0, 404, "别人的任务查不到");
    // 重启后还能取到，b64_json 也行。
    drop(server);
    let server = ws.serve().await;
    let res = http
        .get(format!(
            "{}/v1/images/tasks/{id}?response_format=b64_json",
            server.url
        ))
        .bearer_auth("sk-task-a")
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "succeeded", "{body}");
    assert!(body["data"][0]["b64_json"]
        .as_str()
        .is_some_and(|s| s.len() > 100));
    // 任务就是工作台上的卡片。
    let page = http
        .get(&server.url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("慢慢画"), "工作台上看得到这个任务");
}

/// 启动时的存储核对：一个有记录却缺文件的、一个有文件却没记录的，都报告出来。
#[tokio::test]
async fn the_startup_check_reports_a_missing_file_and_an_orphan() {
    let demo = demo_upstream(&[]).await;
    let ws = Workspace::new(&config_with_upstream(&demo.url));
    let server = ws.serve().await;
    let health: Value = get_json(format!("{}/healthz", server.url)).await;
    assert_eq!(health["storage"]["missing_files"], 0);
    assert_eq!(health["storage"]["orphan_files"], 0);
    let (status, saved) = studio_generate(&server, "核对").await;
    assert_eq!(status, 200, "{saved}");
    drop(server);
    let original = originals_under(&ws.storage().join("images"));
    assert_eq!(original.len(), 1);
    std::fs::remove_file(&original[0]).unwrap();
    let orphan = ws.storage().join("images").join(today()).join("孤儿.png");
    std::fs::write(&orphan, b"no row points here").unwrap();
    let server = ws.serve().await;
    let health: Value = get_json(format!("{}/healthz", server.url)).await;
    assert_eq!(health["storage"]["missing_files"], 1, "{health}");
    assert!(
        health["storage"]["orphan_files"].as_u64().unwrap() >= 1,
        "{health}"
    );
}

/// 一张噪点 PNG（压不小），约 `side`² × 3 字节。
fn noise_png(side: u32) -> Vec<u8> {
    let mut state = 0x2545F491u32;
    let img = image::RgbImage::from_fn(side, side, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        image::Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8])
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn upload(png: Vec<u8>) -> Request<Body> {
    let boundary = "----up";
    let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n").into_bytes();
    body.extend_from_slice(&png);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Request::post("/uploads")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .header("content-length", body.len())
        .body(Body::from(body))
        .unwrap()
}

/// 上传上限：超过 `max_upload_mb` 的图被拒绝、什么都不存；设置页调高上限后，下一个请求就按新的。
#[tokio::test]
async fn upload_limits_refuse_big_files_and_follow_the_settings_at_once() {
    let app = App::new("[storage]\nmax_upload_mb = 1\n").await;
    let big = noise_png(800);
    assert!(big.len() > 1 << 20, "测试图要超过 1 MB：{}", big.len());
    let (status, body) = json_of(app.send(upload(big.clone())).await).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("上限是 1 MB"),
        "{body}"
    );
    assert!(
        files_under(&app.storage().join("uploads")).is_empty(),
        "什么都没存"
    );

    let (_, view) = app.admin("get_settings", json!({})).await;
    let mut numbers = view["numbers"].clone();
    numbers["storage.max_upload_mb"] = json!(3);
    let update = json!({"update": {"upstreams": view["upstreams"], "storage_root": view["storage_root"],
        "numbers": numbers, "flags": view["flags"], "listen": "127.0.0.1:3000"}});
    let (status, saved) = app.admin("save_settings", update).await;
    assert_eq!(status, 200, "{saved}");
    let (status, body) = json_of(app.send(upload(big)).await).await;
    assert_eq!(status, 200, "新上限立即生效：{body}");
    assert_eq!(files_under(&app.storage().join("uploads")).len(), 1);
}

/// 手工编辑配置文件：空文件（编辑器保存到一半）与去掉全部上游的文件不采用；随后的有效改动照常生效。
#[tokio::test]
async fn the_config_watcher_refuses_an_empty_file_and_one_without_upstreams() {
    let demo = demo_upstream(&[]).await;
    let ws = Workspace::new(&config_with_upstreams(&[("原来的", &demo.url)], ""));
    let server = ws.serve().await;
    let file = ws.path().join("factory.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let refused = config_reloads(&server, "refused").await;
    std::fs::write(&file, "").unwrap();
    wait_for_config_reload(&server, "refused", refused).await;
    std::fs::write(&file, "[storage]\nroot = \"storage\"\n").unwrap();
    wait_for_config_reload(&server, "refused", refused + 1.0).await;
    let (status, saved) = studio_generate(&server, "还是原来的").await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["upstream"], "原来的", "被拒绝的文件没有生效");
    let applied = config_reloads(&server, "applied").await;
    std::fs::write(&file, text.replace("原来的", "改过的")).unwrap();
    wait_for_config_reload(&server, "applied", applied).await;
    let (_, saved) = studio_generate(&server, "改过之后").await;
    assert_eq!(saved["upstream"], "改过的");

    // 没有上游（演示模式）时，空文件照样不采用（否则其余设置都会被悄悄换回默认值）。
    let demo_ws = Workspace::new(
        "[limits]
burst = 7
",
    );
    let demo_server = demo_ws.serve().await;
    let refused_before = config_reloads(&demo_server, "refused").await;
    std::fs::write(demo_ws.path().join("factory.toml"), "\n").unwrap();
    wait_for_config_reload(&demo_server, "refused", refused_before).await;
    assert_eq!(
        config_reloads(&demo_server, "applied").await,
        0.0,
        "空文件不能被采用"
    );
}
