//! README 里说了、此前没有测试的承诺，每条一个测试，去掉那个行为测试就会失败：
//! 上游回 404 与重定向换下一个上游（密钥不跟着重定向走）、响应太大不换上游、代理的 502 未计费并重试、
//! “200 却没有图”只再试一次；幂等键 24 小时过期、按调用方区分、编辑接口换了参考图是 409；
//! 调用方的每日额度重启不清零、昨天（UTC）的用量不算今天的；密钥与工作台的同时请求数；
//! 批次打包的清单里有失败与已取消的任务；只搬元数据的 `migrate --to-postgres`；密钥都不能用时跳过上游、
//! 密钥的错误不触发熔断；对话流的保活注释；带签名的 `/files` 链接作为对话的参考图；启动时清理暂存区；
//! `server.public_url` 作为链接前缀；`/ws` 上的排队顺序（卡片上的“排队第 N 位”）。
//! 全部对着真正的二进制，上游是 wiremock（数得清调用次数）或演示上游；不睡固定的时间，等的都是看得见的事件。

use crate::common::*;
use base64::Engine;
use futures::StreamExt;
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};
use std::time::{Duration, Instant, SystemTime};
use wiremock::matchers::{body_string_contains, header_regex, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// 快速重试：每个上游最多 3 次，退避很短。
const FAST: &str = "[retry]\nmax_attempts = 3\nbase_delay_ms = 10\nmax_delay_ms = 50\n";

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// 每个请求最多等 60 秒的 HTTP 客户端。
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn status_and_json(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// `POST /v1/images/generations`，可带 API 密钥与幂等键。
async fn v1(
    server: &Running,
    key: Option<&str>,
    idempotency: Option<&str>,
    body: Value,
) -> (u16, Value) {
    let mut req = http()
        .post(format!("{}/v1/images/generations", server.url))
        .json(&body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(idempotency) = idempotency {
        req = req.header("idempotency-key", idempotency);
    }
    status_and_json(req.send().await.expect("请求应当完成")).await
}

/// `POST /v1/images/edits`（multipart，一张参考图），带 API 密钥与幂等键。
async fn edit(server: &Running, key: &str, idempotency: &str, image: Vec<u8>) -> (u16, Value) {
    let form = Form::new().text("prompt", "换成夜景").part(
        "image",
        Part::bytes(image)
            .file_name("ref.png")
            .mime_str("image/png")
            .unwrap(),
    );
    let res = http()
        .post(format!("{}/v1/images/edits", server.url))
        .bearer_auth(key)
        .header("idempotency-key", idempotency)
        .multipart(form)
        .send()
        .await
        .expect("请求应当完成");
    status_and_json(res).await
}

/// 工作台生成一张（成功时返回值带尝试记录）。
async fn studio(server: &Running, prompt: &str) -> (u16, Value) {
    call(
        server,
        "generate_image",
        json!({"request": {"prompt": prompt}}),
    )
    .await
}

/// 签名链接或 `/files/{id}` 里的图片 id。
fn image_id(url: &str) -> String {
    url.split('?')
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

/// `/v1` 以 `url` 返回的第一张图的 id。
fn first_id(body: &Value) -> String {
    image_id(
        body["data"][0]["url"]
            .as_str()
            .unwrap_or_else(|| panic!("响应里应当有图片链接：{body}")),
    )
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn google_error(code: u16, status: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(code)
        .set_body_json(json!({"error": {"code": code, "message": message, "status": status}}))
}

/// 总是成功的上游。
async fn ok_upstream() -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
        .mount(&mock)
        .await;
    mock
}

async fn hits(mock: &MockServer) -> usize {
    mock.received_requests().await.unwrap_or_default().len()
}

async fn serve_with(upstreams: &[(&str, &str)], extra: &str) -> (Workspace, Running) {
    let ws = Workspace::new(&config_with_upstreams(upstreams, extra));
    let server = ws.serve().await;
    (ws, server)
}

fn png(color: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(16, 16, image::Rgb(color));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

async fn ws_connect(server: &Running) -> Socket {
    let url = server.url.replace("http://", "ws://") + "/ws";
    let (socket, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(url),
    )
    .await
    .expect("10 秒内应当连上 /ws")
    .expect("可以连上 /ws");
    socket
}

/// `/ws` 上的下一条文字消息（最多等 10 秒）。
async fn next_json(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("10 秒内应当收到 /ws 的消息")
            .expect("/ws 不该被关掉")
            .expect("/ws 的消息可读");
        if message.is_text() {
            return serde_json::from_str(message.to_text().unwrap()).unwrap();
        }
    }
}

/// 新连一条 `/ws`，取它的第一条消息（快照）。
async fn take_snapshot(server: &Running) -> Value {
    let mut socket = ws_connect(server).await;
    let first = next_json(&mut socket).await;
    assert_eq!(first["type"], "snapshot", "{first}");
    first
}

/// 快照里处于某个状态的任务 id。
fn in_state(snapshot: &Value, state: &str) -> Vec<String> {
    snapshot["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["state"] == state)
        .map(|j| j["job_id"].as_str().unwrap().to_string())
        .collect()
}

/// 等某个任务进入某个状态（看 `/ws` 的快照，最多 30 秒）。
async fn wait_job(server: &Running, job_id: &str, state: &str) {
    let started = Instant::now();
    loop {
        let snapshot = take_snapshot(server).await;
        if in_state(&snapshot, state).iter().any(|id| id == job_id) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "任务 {job_id} 30 秒内没有变成 {state}：{snapshot}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// 在这条 `/ws` 上等一条排队顺序恰好是 `want` 的 `queue` 消息（最多 10 秒）。
async fn wait_for_queue(socket: &mut Socket, want: &[String]) {
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        let message = next_json(socket).await;
        if message["type"] == "queue" {
            if message["job_ids"] == json!(want) {
                return;
            }
            seen.push(message["job_ids"].clone());
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "没有等到排队顺序 {want:?}，收到的是 {seen:?}"
        );
    }
}

/// 提交一批，返回批次 id 与按序号排好的任务 id（接口返回的是新的在前）。
async fn submit(server: &Running, request: Value) -> (String, Vec<String>) {
    let (status, jobs) = call(server, "submit_jobs", json!({ "request": request })).await;
    assert_eq!(status, 200, "{jobs}");
    let mut list: Vec<(u64, String)> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["index"].as_u64().unwrap(),
                j["job_id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    list.sort();
    let batch = jobs[0]["batch_id"].as_str().unwrap().to_string();
    (batch, list.into_iter().map(|(_, id)| id).collect())
}

// ───────────────────────── 重试与回退 ─────────────────────────

/// 404：这个上游用不了（例如没有这个模型），不在它上面重试，换下一个上游；这次未计费。
#[tokio::test]
async fn a_404_moves_to_the_next_upstream_unbilled_without_a_retry() {
    let primary = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(google_error(
            404,
            "NOT_FOUND",
            "models/gemini-3-pro-image is not found for API version v1beta",
        ))
        .expect(1)
        .mount(&primary)
        .await;
    let backup = ok_upstream().await;
    let (_ws, server) = serve_with(&[("主", &primary.uri()), ("备", &backup.uri())], FAST).await;
    let (status, saved) = studio(&server, "换一个上游").await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(
        outcomes(&saved),
        pairs(&[("主", "status"), ("备", "ok")]),
        "404 不重试，直接换下一个上游"
    );
    assert_eq!(billing(&saved), [false, true], "404 那次未计费");
    primary.verify().await;
}

/// 302 带 Location：不跟随（请求与密钥都不会到 Location 指向的主机），换下一个上游；未计费；
/// 尝试记录里的去向不带查询串。
#[tokio::test]
async fn a_redirect_moves_to_the_next_upstream_and_the_key_never_reaches_the_location() {
    let elsewhere = MockServer::start().await;
    let primary = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(302).insert_header(
            "location",
            format!(
                "{}/v1beta/models/m:generateContent?key=stolen-query",
                elsewhere.uri()
            ),
        ))
        .expect(1)
        .mount(&primary)
        .await;
    let backup = ok_upstream().await;
    let secret = "AIza-redirect-secret-0000";
    let config = format!(
        "[storage]\nroot = \"storage\"\n{FAST}\n[[upstreams]]\nname = \"主\"\nkind = \"gemini\"\nbase_url = \"{}\"\napi_key = \"{secret}\"\npriority = 0\n\n[[upstreams]]\nname = \"备\"\nkind = \"gemini\"\nbase_url = \"{}\"\npriority = 1\n",
        primary.uri(),
        backup.uri()
    );
    let ws = Workspace::new(&config);
    let server = ws.serve().await;
    let (status, saved) = studio(&server, "被重定向").await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(
        outcomes(&saved),
        pairs(&[("主", "redirect"), ("备", "ok")]),
        "重定向不跟随，换下一个上游"
    );
    assert_eq!(billing(&saved), [false, true], "重定向那次未计费");
    assert_eq!(
        hits(&elsewhere).await,
        0,
        "Location 指向的主机一个请求都没收到（密钥没有被带过去）"
    );
    let text = saved.to_string();
    assert!(
        !text.contains("stolen-query") && !text.contains(secret),
        "尝试记录里没有查询串与密钥：{text}"
    );
    primary.verify().await;
}

/// 超过 `limits.max_upstream_response_mb` 的响应：可能已计费，丢弃，直接告诉调用方，不换备用上游（换了就再付一次钱）。
#[tokio::test]
async fn an_oversized_response_does_not_fall_back() {
    let mut huge = gemini_ok_body();
    huge["candidates"][0]["content"]["parts"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"text": "长".repeat(600_000)}));
    let primary = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(huge))
        .expect(1)
        .mount(&primary)
        .await;
    let backup = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
        .expect(0)
        .mount(&backup)
        .await;
    let extra = format!("{FAST}[limits]\nmax_upstream_response_mb = 1\n");
    let (_ws, server) = serve_with(&[("主", &primary.uri()), ("备", &backup.uri())], &extra).await;
    let (status, body) = studio(&server, "太大的回答").await;
    assert_eq!(status, 502, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("超过了 1 MB 的上限") && message.contains("1 次尝试可能已被上游计费"),
        "{message}"
    );
    primary.verify().await;
    backup.verify().await;
}

/// 代理在模型运行前回的 502：未计费，放心重试（两次 502 之后第三次成功；若当成“可能已计费”，只会再试一次）。
#[tokio::test]
async fn a_proxy_502_is_unbilled_and_retried() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(502).set_body_raw(
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
            "text/html",
        ))
        .up_to_n_times(2)
        .expect(2)
        .with_priority(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
        .expect(1)
        .with_priority(2)
        .mount(&mock)
        .await;
    let (_ws, server) = serve_with(&[("主", &mock.uri())], FAST).await;
    let (status, saved) = studio(&server, "代理坏了一下").await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(
        outcomes(&saved),
        pairs(&[("主", "status"), ("主", "status"), ("主", "ok")])
    );
    assert_eq!(billing(&saved), [false, false, true], "502 未计费");
    mock.verify().await;
}

/// 200 却只有文字（finishReason STOP）：可能已计费，`max_attempts = 3` 也只再试一次——上游恰好被调用两次。
#[tokio::test]
async fn a_200_without_an_image_is_retried_exactly_once() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"candidates": [{
            "content": {"role": "model", "parts": [{"text": "我只能用文字描述这幅画"}]},
            "finishReason": "STOP"}]})),
        )
        .expect(2)
        .mount(&mock)
        .await;
    let (_ws, server) = serve_with(&[("主", &mock.uri())], FAST).await;
    let (status, body) = studio(&server, "只回文字").await;
    assert_eq!(status, 502, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("只返回了文字") && message.contains("2 次尝试可能已被上游计费"),
        "{message}"
    );
    mock.verify().await;
}

// ───────────────────────── 幂等键 ─────────────────────────

/// 幂等键：24 小时内回放、满 24 小时（把库里的记录往前拨）就重新生成；按调用方区分（两个密钥用同一个键各自生成）；
/// `/v1/images/edits` 同一个键换了参考图是 409，什么都不生成。
#[tokio::test]
async fn idempotency_keys_expire_after_a_day_are_per_caller_and_guard_edits() {
    let (a, b) = ("sk-idem-caller-aaaa", "sk-idem-caller-bbbb");
    let mock = ok_upstream().await;
    let extra = format!("{FAST}[auth]\napi_keys = [\"{a}\", \"{b}\"]\n");
    let (ws, server) = serve_with(&[("主", &mock.uri())], &extra).await;

    // 24 小时内原样重发：第一次的图，不再生成。
    let body = json!({"prompt": "会过期的", "response_format": "url"});
    let (status, first) = v1(&server, Some(a), Some("k-expire"), body.clone()).await;
    assert_eq!(status, 200, "{first}");
    let (_, again) = v1(&server, Some(a), Some("k-expire"), body.clone()).await;
    assert_eq!(first_id(&again), first_id(&first));
    assert_eq!(hits(&mock).await, 1);
    // 记录满 24 小时（库里的时刻往前拨一天零一秒）：同一个键重发就重新生成。
    let aged = ws.db(|c| {
        c.execute(
            "UPDATE idempotency SET created_at = created_at - 86401",
            params![],
        )
    });
    assert_eq!(aged, 1, "库里有这一条幂等记录");
    let (status, later) = v1(&server, Some(a), Some("k-expire"), body).await;
    assert_eq!(status, 200, "{later}");
    assert_ne!(first_id(&later), first_id(&first), "过期的记录不再回放");
    assert_eq!(hits(&mock).await, 2);

    // 两个调用方用同一个键：各自生成，谁也拿不到别人的图。
    let shared = json!({"prompt": "同一个键，两个调用方", "response_format": "url"});
    let (_, mine) = v1(&server, Some(a), Some("k-shared"), shared.clone()).await;
    let (_, theirs) = v1(&server, Some(b), Some("k-shared"), shared.clone()).await;
    assert_ne!(first_id(&theirs), first_id(&mine), "幂等键按调用方区分");
    assert_eq!(hits(&mock).await, 4);
    let (_, mine_again) = v1(&server, Some(a), Some("k-shared"), shared).await;
    assert_eq!(first_id(&mine_again), first_id(&mine));
    assert_eq!(hits(&mock).await, 4);

    // 编辑：同一个键、同一张参考图回放；换了参考图 409，不调用上游。
    let (status, edited) = edit(&server, a, "k-edit", png([200, 0, 0])).await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(hits(&mock).await, 5);
    let (status, conflict) = edit(&server, a, "k-edit", png([0, 0, 200])).await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(
        conflict["error"]["code"], "idempotency_conflict",
        "{conflict}"
    );
    let (status, replayed) = edit(&server, a, "k-edit", png([200, 0, 0])).await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(hits(&mock).await, 5, "冲突与回放都没有再调用上游");
}

// ───────────────────────── 调用方的额度 ─────────────────────────

/// 每日张数：重启不清零（从用量表接上今天的）；日界是 UTC 零点——把用量挪到昨天的同一小时，今天的额度就又有了。
/// 运行中跨过零点的重置要能拨的钟，见报告里提议的 `ClientBudgets` 时钟钩子。
#[tokio::test]
async fn a_daily_quota_survives_a_restart_and_yesterdays_usage_does_not_count() {
    let key = "sk-df-quota-test-key-0000000000000000000";
    let client = "限额组";
    let mock = ok_upstream().await;
    let ws = Workspace::new(&config_with_upstreams(
        &[("主", &mock.uri())],
        &key_entry(client, key, "images_per_day = 2"),
    ));
    let server = ws.serve().await;
    for prompt in ["一", "二"] {
        let (status, body) = v1(&server, Some(key), None, json!({ "prompt": prompt })).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        v1(&server, Some(key), None, json!({"prompt": "三"}))
            .await
            .0,
        429,
        "今天的 2 张用完了"
    );
    // 用量每秒成批写进库里：等这 2 张写进去，再重启。
    let used = || {
        ws.db(|c| {
            c.query_one(
                "SELECT CAST(COALESCE(SUM(images), 0) AS BIGINT) FROM usage WHERE client = ?1",
                params![client],
                |r| r.get::<i64>(0),
            )
        })
    };
    let started = Instant::now();
    while used() < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "用量 20 秒内没有写进库里"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);

    let server = ws.serve().await;
    let (status, body) = v1(&server, Some(key), None, json!({"prompt": "重启之后"})).await;
    assert_eq!(status, 429, "重启不清零：{body}");
    assert_eq!(body["error"]["code"], "insufficient_quota", "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("今天还剩 0 张"), "{message}");
    drop(server);

    // 同样的用量挪到昨天（UTC）的同一小时：不算今天的。
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let moved = ws.db(|c| {
        c.execute(
            "UPDATE usage SET period = CAST(?1 AS TEXT) || substr(period, 11) WHERE client = ?2",
            params![yesterday.as_str(), client],
        )
    });
    assert!(moved >= 1, "库里有这个调用方的用量行");
    let server = ws.serve().await;
    let (status, body) = v1(&server, Some(key), None, json!({"prompt": "新的一天"})).await;
    assert_eq!(status, 200, "昨天的用量不算今天的：{body}");
}

/// 设置页建的密钥的“同时请求数”：第一个请求还在上游时，同一个密钥的第二个 429；第一个结束后又能发。
#[tokio::test]
async fn a_keys_max_concurrent_is_enforced() {
    let key = "sk-df-solo-test-key-00000000000000000000";
    let slow = demo_upstream(&["--delay-ms", "1000"]).await;
    let ws = Workspace::new(&config_with_upstreams(
        &[("替身", &slow.url)],
        &key_entry("单线组", key, "max_concurrent = 1"),
    ));
    let server = ws.serve().await;
    let (first, second) = tokio::join!(
        v1(&server, Some(key), None, json!({"prompt": "一"})),
        async {
            wait_for_in_flight(&server, 1.0).await;
            v1(&server, Some(key), None, json!({"prompt": "二"})).await
        }
    );
    assert_eq!(second.0, 429, "{}", second.1);
    assert_eq!(
        second.1["error"]["code"], "insufficient_quota",
        "{}",
        second.1
    );
    let message = second.1["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("同时最多 1 个请求"), "{message}");
    assert_eq!(first.0, 200, "{}", first.1);
    let (status, body) = v1(&server, Some(key), None, json!({"prompt": "三"})).await;
    assert_eq!(status, 200, "前一个结束，名额还回来了：{body}");
}

/// `limits.studio_max_concurrent = 1`（全局并发仍是 16）：一批 3 张，只有 1 张在生成，其余排队。
#[tokio::test]
async fn studio_max_concurrent_caps_the_running_cards() {
    let hang = demo_upstream(&["--hang-rate", "1"]).await;
    let ws = Workspace::new(&format!(
        "{}\n[limits]\nstudio_max_concurrent = 1\n",
        config_with_upstream(&hang.url)
    ));
    let server = ws.serve().await;
    let (_, jobs) = submit(&server, json!({"prompt": "一次三张", "count": 3})).await;
    let started = Instant::now();
    let snapshot = loop {
        let snapshot = take_snapshot(&server).await;
        if !in_state(&snapshot, "running").is_empty() {
            break snapshot;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "没有任务开始：{snapshot}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        in_state(&snapshot, "running"),
        [jobs[0].clone()],
        "工作台同时只生成 1 张：{snapshot}"
    );
    assert_eq!(in_state(&snapshot, "queued").len(), 2, "{snapshot}");
    assert_eq!(snapshot["queue"], json!(jobs[1..]), "{snapshot}");
}

// ───────────────────────── 批次、迁移 ─────────────────────────

/// 批次打包的 `manifest.csv`：完成的、失败的、已取消的任务各有一行；只有完成的有文件。
#[tokio::test]
async fn the_batch_manifest_has_rows_for_failed_and_cancelled_jobs() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("坏图"))
        .respond_with(google_error(400, "INVALID_ARGUMENT", "这张图画不了"))
        .with_priority(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("慢图"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(gemini_ok_body())
                .set_delay(Duration::from_secs(30)),
        )
        .with_priority(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
        .with_priority(2)
        .mount(&mock)
        .await;
    let extra = format!("{FAST}[limits]\nmax_concurrent = 1\n");
    let (_ws, server) = serve_with(&[("主", &mock.uri())], &extra).await;
    let (batch, jobs) = submit(&server, json!({"prompts": ["好图", "坏图", "慢图"]})).await;
    // 一次只跑一张：第 3 张还在排队（或卡在上游），取消它。
    let (status, cancelled) = call(&server, "cancel_job", json!({"job_id": jobs[2]})).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled", "{cancelled}");
    wait_job(&server, &jobs[0], "done").await;
    wait_job(&server, &jobs[1], "failed").await;

    let res = http()
        .get(format!("{}/files/zip?batch={batch}", server.url))
        .send()
        .await
        .expect("请求应当完成");
    assert_eq!(res.status(), 200);
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(res.bytes().await.unwrap())).unwrap();
    assert_eq!(archive.len(), 2, "一张完成的图，加上清单");
    let mut manifest = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("manifest.csv").unwrap(), &mut manifest)
        .unwrap();
    let mut reader = csv::Reader::from_reader(manifest.trim_start_matches('\u{feff}').as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let row = |index: &str| {
        rows.iter()
            .find(|r| &r[0] == index)
            .unwrap_or_else(|| panic!("清单里没有第 {index} 个任务：{manifest}"))
    };
    assert_eq!(rows.len(), 3, "{manifest}");
    let (done, failed, gone) = (row("1"), row("2"), row("3"));
    assert_eq!((&done[1], &done[4]), ("好图", "已完成"));
    assert!(
        !done[6].is_empty() && archive.by_name(&done[6]).is_ok(),
        "完成的有文件：{done:?}"
    );
    assert_eq!((&failed[1], &failed[4]), ("坏图", "失败"));
    assert!(failed[5].contains("400"), "失败的写明原因：{failed:?}");
    assert_eq!(&failed[6], "", "失败的没有文件");
    assert_eq!((&gone[1], &gone[4], &gone[6]), ("慢图", "已取消", ""));
}

/// `migrate --to-postgres` 不带 `--to-s3`：只搬元数据，图留在原处；记录的根不变，签名密钥随库走，
/// 改用 PostgreSQL 启动后原来的图照常取得到。
#[tokio::test]
async fn migrate_to_postgres_without_s3_moves_only_the_metadata() {
    let ws = Workspace::sqlite("[storage]\nroot = \"storage\"\n");
    let server = ws.serve().await;
    let (status, saved) = studio(&server, "只搬元数据").await;
    assert_eq!(status, 200, "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();
    let before = http()
        .get(format!("{}/files/{id}", server.url))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    drop(server);
    let local_root: String =
        ws.db(|c| c.query_one("SELECT root FROM images", params![], |r| r.get::<String>(0)));

    let pg = crate::common::postgres::database();
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(BIN)
            .args([
                "migrate",
                "--config",
                "factory.toml",
                "--to-postgres",
                pg.as_str(),
            ])
            .current_dir(ws.path())
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("迁移应当在 120 秒内结束")
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    let query = |sql: &str| crate::common::postgres::query_text(&pg, sql);
    assert_eq!(
        query("SELECT root FROM images"),
        Some(local_root),
        "图没有搬，记录仍指向原来的目录"
    );
    let key = std::fs::read_to_string(ws.storage().join("url-signing.key")).unwrap();
    assert_eq!(
        query("SELECT value FROM secrets WHERE name = 'url_signing'"),
        Some(key.trim().to_string()),
        "签名密钥随库走"
    );

    std::fs::write(
        ws.path().join("factory.toml"),
        format!("[storage]\nroot = \"storage\"\ndatabase = \"{pg}\"\n"),
    )
    .unwrap();
    let server = ws.serve().await;
    let res = http()
        .get(format!("{}/files/{id}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.bytes().await.unwrap(),
        before,
        "同一张图，从原来的目录取"
    );
    let (status, page) = call(&server, "list_images", json!({"query": {}})).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
}

// ───────────────────────── 密钥池与熔断 ─────────────────────────

/// 密钥都不能用（401 失效、每日配额用完休息）时跳过这个上游：第二个请求一个都不发给它。
/// 密钥的错误不算上游坏了：`breaker_failures = 1` 时两个池子也都没有熔断——两种错误各走一遍两条路
/// （池甲：401 换密钥、配额 429 落到熔断记账；池乙反过来）。
#[tokio::test]
async fn unusable_keys_skip_the_upstream_without_tripping_the_breaker() {
    let keys = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header_regex("x-goog-api-key", "^key-reject-"))
        .respond_with(google_error(
            401,
            "UNAUTHENTICATED",
            "API key not valid. Please pass a valid API key.",
        ))
        .mount(&keys)
        .await;
    Mock::given(method("POST"))
        .and(header_regex("x-goog-api-key", "^key-daily-"))
        .respond_with(google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Quota exceeded for quota metric 'GenerateRequestsPerDayPerProjectPerModel'",
        ))
        .mount(&keys)
        .await;
    let backup = ok_upstream().await;
    let pool = |name: &str, secrets: &str, priority: u32| {
        format!(
            "\n[[upstreams]]\nname = \"{name}\"\nkind = \"gemini\"\nbase_url = \"{}\"\napi_keys = [{secrets}]\npriority = {priority}\n",
            keys.uri()
        )
    };
    let config = format!(
        "[storage]\nroot = \"storage\"\n[retry]\nbase_delay_ms = 10\nmax_delay_ms = 50\nbreaker_failures = 1\nbreaker_cooldown_s = 600\n{}{}\n[[upstreams]]\nname = \"备\"\nkind = \"gemini\"\nbase_url = \"{}\"\npriority = 2\n",
        pool("池甲", "\"key-reject-aaaa\", \"key-daily-bbbb\"", 0),
        pool("池乙", "\"key-daily-cccc\", \"key-reject-dddd\"", 1),
        backup.uri()
    );
    let ws = Workspace::new(&config);
    let server = ws.serve().await;

    let (status, saved) = studio(&server, "密钥都坏了").await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(
        outcomes(&saved),
        pairs(&[
            ("池甲", "status"),
            ("池甲", "status"),
            ("池乙", "status"),
            ("池乙", "status"),
            ("备", "ok")
        ]),
        "同一请求里先换密钥，密钥用尽再换上游"
    );
    assert_eq!(hits(&keys).await, 4);

    let (status, report) = admin(&server, "usage_report", json!({})).await;
    assert_eq!(status, 200, "{report}");
    for (name, states) in [
        ("池甲", ["disabled", "resting"]),
        ("池乙", ["resting", "disabled"]),
    ] {
        let live = report["live"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .unwrap_or_else(|| panic!("用量页没有 {name}：{report}"));
        assert_eq!(live["circuit"], "closed", "密钥的错误不触发熔断：{live}");
        let got: Vec<&str> = live["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["state"].as_str().unwrap())
            .collect();
        assert_eq!(got, states, "{live}");
    }

    let (status, saved) = studio(&server, "跳过它们").await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(outcomes(&saved), pairs(&[("备", "ok")]));
    assert_eq!(hits(&keys).await, 4, "密钥都不能用的上游一个请求都没收到");
}

// ───────────────────────── 对话接口与链接 ─────────────────────────

/// `stream: true` 时，等上游的这段时间里有 SSE 保活注释（`: keep-alive`），在图之前。
// 需要：src/openai/chat.rs 的保活间隔现在写死为 10 秒；改为读环境变量 FACTORY_SSE_KEEPALIVE_MS（毫秒，默认 10000），
// 例如 `let every = std::env::var("FACTORY_SSE_KEEPALIVE_MS").ok().and_then(|v| v.parse().ok())
// .map(Duration::from_millis).unwrap_or(Duration::from_secs(10));` 再 `KeepAlive::new().interval(every)`。
// 没有这个钩子时这里只能等 10 秒以上的上游，测试会因等不到保活注释而失败。
#[tokio::test]
async fn the_chat_stream_sends_keep_alive_comments_while_waiting() {
    let slow = demo_upstream(&["--delay-ms", "1500"]).await;
    let ws = Workspace::new(&config_with_upstream(&slow.url));
    let server = ws
        .serve_with_env(&[("FACTORY_SSE_KEEPALIVE_MS", "200")])
        .await;
    let mut res = http()
        .post(format!("{}/v1/chat/completions", server.url))
        .json(&json!({"stream": true, "messages": [{"role": "user", "content": "慢慢画一只鲸鱼"}]}))
        .send()
        .await
        .expect("请求应当完成");
    assert_eq!(res.status(), 200);
    let mut raw = Vec::new();
    while let Some(chunk) = res.chunk().await.expect("流应当读得完") {
        raw.extend_from_slice(&chunk);
    }
    let text = String::from_utf8(raw).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let keep_alive = lines
        .iter()
        .position(|l| l.starts_with(':') && l.contains("keep-alive"))
        .unwrap_or_else(|| panic!("等上游的 1.5 秒里应当有保活注释：{text}"));
    let image = lines
        .iter()
        .position(|l| l.contains("\"images\""))
        .unwrap_or_else(|| panic!("流里应当有图：{text}"));
    assert!(keep_alive < image, "保活注释在等待期间、图之前：{text}");
    assert_eq!(
        lines.iter().rev().find(|l| !l.is_empty()),
        Some(&"data: [DONE]"),
        "{text}"
    );
}

async fn chat_with_image(server: &Running, url: &str) -> (u16, Value) {
    let res = http()
        .post(format!("{}/v1/chat/completions", server.url))
        .json(&json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "照这张改成夜景"},
            {"type": "image_url", "image_url": {"url": url}}
        ]}]}))
        .send()
        .await
        .expect("请求应当完成");
    status_and_json(res).await
}

/// `/v1` 交出的带签名的 `/files/{id}` 链接可以作为对话的参考图（那张图真的发给了上游）；
/// 没签名的、改过到期时间的链接 400，不调用上游。
#[tokio::test]
async fn signed_file_links_work_as_chat_input_and_unsigned_ones_are_refused() {
    let mock = ok_upstream().await;
    let (_ws, server) = serve_with(&[("主", &mock.uri())], FAST).await;
    let (status, body) = v1(
        &server,
        None,
        None,
        json!({"prompt": "先画一张", "response_format": "url"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let signed = body["data"][0]["url"].as_str().unwrap().to_string();
    assert!(
        signed.contains("?exp=") && signed.contains("&sig="),
        "{signed}"
    );
    let bytes = http()
        .get(&signed)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();

    let (status, answer) = chat_with_image(&server, &signed).await;
    assert_eq!(status, 200, "{answer}");
    let requests = mock.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let sent = String::from_utf8_lossy(&requests[1].body);
    assert!(
        sent.contains(&base64::engine::general_purpose::STANDARD.encode(&bytes)),
        "链接指向的图作为参考图发给了上游"
    );

    let unsigned = signed.split('?').next().unwrap().to_string();
    let exp: u64 = signed
        .split("exp=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let extended = signed.replace(&format!("exp={exp}"), &format!("exp={}", exp + 1));
    for url in [unsigned, extended] {
        let (status, body) = chat_with_image(&server, &url).await;
        assert_eq!(status, 400, "{url}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("签名"), "{url}: {message}");
    }
    assert_eq!(hits(&mock).await, 2, "被拒绝的链接不调用上游");
}

/// `server.public_url` 是 `/v1` 图片链接的前缀（结尾的斜杠去掉）；去掉前缀后的路径在本服务上取得到这张图。
#[tokio::test]
async fn public_url_is_the_prefix_of_v1_links() {
    let key = "sk-public-url-test-0000";
    let demo = demo_upstream(&[]).await;
    let extra = format!(
        "[server]\npublic_url = \"https://draw.example.com/gongchang/\"\n[auth]\napi_keys = [\"{key}\"]\n"
    );
    let (_ws, server) = serve_with(&[("替身", &demo.url)], &extra).await;
    let (status, body) = v1(
        &server,
        Some(key),
        None,
        json!({"prompt": "对外的链接", "response_format": "url"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let url = body["data"][0]["url"].as_str().unwrap();
    let path = url
        .strip_prefix("https://draw.example.com/gongchang")
        .unwrap_or_else(|| panic!("链接的前缀应当是 server.public_url：{url}"));
    assert!(
        path.starts_with("/files/") && path.contains("sig="),
        "{url}"
    );
    let res = http()
        .get(format!("{}{path}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{url}");
    assert!(res.bytes().await.unwrap().starts_with(b"\x89PNG"));
}

// ───────────────────────── 存储与工作台 ─────────────────────────

/// 暂存区 `.spill/` 里超过 24 小时的文件在启动时清理，新的留着。
#[tokio::test]
async fn spilled_files_older_than_a_day_are_removed_at_startup() {
    let ws = Workspace::sqlite("");
    let spill = ws.storage().join(".spill");
    std::fs::create_dir_all(&spill).unwrap();
    let old = spill.join(format!("{}.bin", "a".repeat(32)));
    let fresh = spill.join(format!("{}.bin", "b".repeat(32)));
    std::fs::write(&old, "25 小时前暂存的图").unwrap();
    std::fs::write(&fresh, "刚暂存的图").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(25 * 3600))
        .unwrap();
    let server = ws.serve_with_env(&[("RUST_LOG", "info")]).await;
    // 清理做完时写一行日志：等它，再看两个文件。
    wait_for_log(&server, "已清理过期的暂存图").await;
    assert!(!old.exists(), "超过 24 小时的暂存被删掉了");
    assert!(fresh.exists(), "新的暂存还在");
}

/// `/ws` 的排队顺序（卡片据此显示“排队第 N 位”）：快照里按提交先后；置顶后先开始的在前；暂停的批次不在其中。
#[tokio::test]
async fn the_socket_reports_the_queue_order_behind_card_positions() {
    let hang = demo_upstream(&["--hang-rate", "1"]).await;
    let ws = Workspace::new(&format!(
        "{}\n[limits]\nmax_concurrent = 1\n",
        config_with_upstream(&hang.url)
    ));
    let server = ws.serve().await;
    let (first_batch, a) = submit(
        &server,
        json!({"prompt": "先来的", "count": 3, "name": "甲"}),
    )
    .await;
    let (second_batch, b) = submit(
        &server,
        json!({"prompt": "后来的", "count": 2, "name": "乙"}),
    )
    .await;

    // 甲的第 1 张占着唯一的名额（上游一直不回答），其余按提交先后排队。
    let mut socket = ws_connect(&server).await;
    let snapshot = next_json(&mut socket).await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    assert_eq!(in_state(&snapshot, "running"), [a[0].clone()], "{snapshot}");
    assert_eq!(
        snapshot["queue"],
        json!([a[1], a[2], b[0], b[1]]),
        "{snapshot}"
    );

    // 置顶乙：乙的排到前面（保持它们之间的先后）。
    let (status, view) = call(
        &server,
        "prioritize_batch",
        json!({"batch_id": second_batch}),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    wait_for_queue(
        &mut socket,
        &[b[0].clone(), b[1].clone(), a[1].clone(), a[2].clone()],
    )
    .await;

    // 暂停甲：它排队的任务不再显示名次。
    let (status, view) = call(&server, "pause_batch", json!({"batch_id": first_batch})).await;
    assert_eq!(status, 200, "{view}");
    wait_for_queue(&mut socket, &[b[0].clone(), b[1].clone()]).await;
}
