//! 网关策略：每条规则各一个测试，全部经真实端口上的真实服务器，上游是演示上游（故障开关）或 wiremock（精确的应答序列）。

use crate::common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// 快速重试的配置：测试不必等半秒的基础退避。
const FAST_RETRY: &str = "[retry]\nbase_delay_ms = 20\nmax_delay_ms = 2000\n";

fn pair(name: &'static str, url: &str) -> (&'static str, String) {
    (name, url.to_string())
}

async fn serve(upstreams: &[(&str, String)], extra: &str) -> (Workspace, Running) {
    let list: Vec<(&str, &str)> = upstreams.iter().map(|(n, u)| (*n, u.as_str())).collect();
    let ws = Workspace::new(&config_with_upstreams(&list, extra));
    let server = ws.serve().await;
    (ws, server)
}

fn google_error(code: u16, status: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(code)
        .set_body_json(json!({"error": {"code": code, "message": message, "status": status}}))
}

/// 第一次按 `first` 应答，之后都成功；两者各应被调用恰好一次。
async fn fail_once_then_ok(mock: &MockServer, first: ResponseTemplate) {
    Mock::given(method("POST"))
        .respond_with(first)
        .up_to_n_times(1)
        .expect(1)
        .with_priority(1)
        .mount(mock)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
        .expect(1)
        .with_priority(2)
        .mount(mock)
        .await;
}

#[tokio::test]
async fn a_503_then_success_is_retried_once() {
    let mock = MockServer::start().await;
    fail_once_then_ok(&mock, google_error(503, "UNAVAILABLE", "overloaded")).await;
    let (_ws, server) = serve(&[pair("主", &mock.uri())], FAST_RETRY).await;
    let (status, saved) = studio_generate(&server, "重试一次").await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(
        outcomes(&saved),
        vec![("主".into(), "status".into()), ("主".into(), "ok".into())]
    );
    mock.verify().await;
}

#[tokio::test]
async fn a_400_is_not_retried_and_not_sent_elsewhere() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(google_error(
            400,
            "INVALID_ARGUMENT",
            "Unsupported aspect ratio",
        ))
        .expect(1)
        .mount(&mock)
        .await;
    let backup = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
        .expect(0)
        .mount(&backup)
        .await;
    let (_ws, server) = serve(
        &[pair("主", &mock.uri()), pair("备", &backup.uri())],
        FAST_RETRY,
    )
    .await;
    let res = v1_generate(&server, None, json!({"prompt": "x"})).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    mock.verify().await;
    backup.verify().await;
}

#[tokio::test]
async fn a_429_with_retry_after_waits_at_least_that_long() {
    let mock = MockServer::start().await;
    let rate_limited = google_error(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted")
        .insert_header("retry-after", "1");
    fail_once_then_ok(&mock, rate_limited).await;
    let (_ws, server) = serve(&[pair("主", &mock.uri())], FAST_RETRY).await;
    let started = Instant::now();
    let (status, saved) = studio_generate(&server, "限流后重试").await;
    assert_eq!(status, 200, "{saved}");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "应当等待 Retry-After 的 1 秒：{:?}",
        started.elapsed()
    );
    mock.verify().await;
}

#[tokio::test]
async fn an_attempt_timeout_moves_once_to_the_fallback() {
    let hang = demo_upstream(&["--hang-rate", "1"]).await;
    let healthy = demo_upstream(&[]).await;
    let extra = format!("{FAST_RETRY}[timeouts]\nattempt_s = 1\ntotal_s = 30\n");
    let (_ws, server) = serve(
        &[pair("卡住的", &hang.url), pair("备用", &healthy.url)],
        &extra,
    )
    .await;
    let (status, saved) = studio_generate(&server, "超时重试").await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(
        outcomes(&saved),
        vec![
            ("卡住的".into(), "timeout".into()),
            ("备用".into(), "ok".into())
        ],
        "超时可能已计费：这唯一的一次再试用在备用上游上"
    );
    assert_eq!(billing(&saved), vec![true, true], "超时与成功都可能已计费");
}

#[tokio::test]
async fn truncated_and_malformed_bodies_move_once_to_the_fallback() {
    for knob in ["--truncate-rate", "--malformed-rate"] {
        let broken = demo_upstream(&[knob, "1"]).await;
        let healthy = demo_upstream(&[]).await;
        let (_ws, server) = serve(
            &[pair("坏的", &broken.url), pair("备用", &healthy.url)],
            FAST_RETRY,
        )
        .await;
        let (status, saved) = studio_generate(&server, "坏响应").await;
        assert_eq!(status, 200, "{knob}: {saved}");
        assert_eq!(
            outcomes(&saved),
            vec![
                ("坏的".into(), "bad_response".into()),
                ("备用".into(), "ok".into())
            ],
            "{knob}：回答坏了可能已计费，只再试一次（在备用上）"
        );
    }
}

#[tokio::test]
async fn a_safety_block_is_400_content_policy_violation_without_retry() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"candidates": [{"finishReason": "IMAGE_SAFETY"}]})),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let (ws, server) = serve(&[pair("主", &mock.uri())], FAST_RETRY).await;
    let res = v1_generate(&server, None, json!({"prompt": "不该画的"})).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "content_policy_violation");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("安全策略"));
    mock.verify().await;
    assert!(files_under(&ws.storage().join("images")).is_empty());
}

#[tokio::test]
async fn primary_down_backup_serves() {
    let healthy = demo_upstream(&[]).await;
    let (_ws, server) = serve(
        &[pair("主", &closed_port_url()), pair("备用", &healthy.url)],
        FAST_RETRY,
    )
    .await;
    let res = v1_generate(&server, None, json!({"prompt": "回退", "n": 2})).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert!(body["data"][0]["b64_json"].as_str().unwrap().len() > 100);
}

#[tokio::test]
async fn all_down_fails_within_the_deadline_with_a_chinese_message() {
    let broken = demo_upstream(&["--error-rate", "1"]).await;
    let extra = format!("{FAST_RETRY}[timeouts]\nattempt_s = 2\ntotal_s = 5\n");
    let (_ws, server) = serve(
        &[pair("主", &closed_port_url()), pair("备", &broken.url)],
        &extra,
    )
    .await;
    let started = Instant::now();
    let res = v1_generate(&server, None, json!({"prompt": "都坏了"})).await;
    // 两个上游都是立即失败，远用不到总时限（5 秒）；上限另留 5 秒余量，机器忙时也不误报。
    // 总时限本身由 billing.rs 的 a_hanging_upstream_ends_within_the_total_deadline 对着不回答的上游测。
    assert!(
        started.elapsed() < Duration::from_secs(5 + 5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(res.status().as_u16(), 502 | 503),
        "{}",
        res.status()
    );
    let body: Value = res.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("所有上游都失败了"), "{message}");
    assert_eq!(body["error"]["type"], "server_error");
}

#[tokio::test]
async fn breaker_opens_after_k_failures_then_recovers() {
    let primary_url = closed_port_url();
    let backup = demo_upstream(&[]).await;
    let extra = "[retry]\nbase_delay_ms = 10\nmax_delay_ms = 50\nmax_attempts = 2\nbreaker_failures = 2\nbreaker_cooldown_s = 2\n";
    let (_ws, server) = serve(
        &[pair("主", &primary_url), pair("备用", &backup.url)],
        extra,
    )
    .await;

    let first_started = Instant::now();
    let (_, first) = studio_generate(&server, "一").await;
    assert_eq!(
        outcomes(&first).iter().filter(|(u, _)| u == "主").count(),
        2,
        "{first}"
    );
    let (_, second) = studio_generate(&server, "二").await;
    assert_eq!(
        outcomes(&second),
        vec![("备用".into(), "ok".into())],
        "熔断期间跳过主上游"
    );

    // 主上游恢复（在同一端口上启动演示上游），冷却期过后探测成功即恢复使用：一直发请求，
    // 冷却期内的都由备用完成（主被跳过），直到有一个由主完成。
    let _primary = demo_upstream_at(primary_url.trim_start_matches("http://"), &[]).await;
    let deadline = Deadline::new(20, "冷却期过后主上游恢复使用");
    loop {
        let (_, next) = studio_generate(&server, "三").await;
        if outcomes(&next) == vec![("主".to_string(), "ok".to_string())] {
            break;
        }
        assert_eq!(
            outcomes(&next),
            vec![("备用".into(), "ok".into())],
            "冷却期内仍跳过主上游"
        );
        deadline.tick().await;
    }
    // 熔断发生在第一个请求之内：从它开始算，恢复不会早于冷却期（2 秒）。
    assert!(
        first_started.elapsed() >= Duration::from_secs(2),
        "冷却期没过主上游就被用了：{:?}",
        first_started.elapsed()
    );
}

#[tokio::test]
async fn rate_limit_gives_429_with_retry_after() {
    let healthy = demo_upstream(&[]).await;
    let extra = "[limits]\nrequests_per_minute = 1\nburst = 1\n";
    let (_ws, server) = serve(&[pair("主", &healthy.url)], extra).await;
    assert_eq!(
        v1_generate(&server, None, json!({"prompt": "一"}))
            .await
            .status(),
        200
    );
    let res = v1_generate(&server, None, json!({"prompt": "二"})).await;
    assert_eq!(res.status(), 429);
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
}

#[tokio::test]
async fn a_full_queue_answers_503() {
    let slow = demo_upstream(&["--delay-ms", "1500"]).await;
    let extra = "[limits]\nmax_concurrent = 1\nqueue_size = 0\n";
    let (_ws, server) = serve(&[pair("主", &slow.url)], extra).await;
    // 第二个请求等第一个真的占住名额（在途数为 1）之后再发。
    let (a, b) = tokio::join!(v1_generate(&server, None, json!({"prompt": "一"})), async {
        wait_for_in_flight(&server, 1.0).await;
        v1_generate(&server, None, json!({"prompt": "二"})).await
    });
    assert_eq!(a.status(), 200);
    assert_eq!(b.status(), 503);
    let body: Value = b.json().await.unwrap();
    assert_eq!(body["error"]["code"], "server_busy");
}

#[tokio::test]
async fn missing_or_wrong_key_is_401() {
    let healthy = demo_upstream(&[]).await;
    let extra = "[auth]\napi_keys = [\"sk-test-1\"]\n";
    let (_ws, server) = serve(&[pair("主", &healthy.url)], extra).await;
    for key in [None, Some("sk-wrong")] {
        let res = v1_generate(&server, key, json!({"prompt": "x"})).await;
        assert_eq!(res.status(), 401, "{key:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_api_key");
    }
    assert_eq!(
        v1_generate(&server, Some("sk-test-1"), json!({"prompt": "x"}))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn url_format_points_at_this_server_and_models_are_listed() {
    let healthy = demo_upstream(&[]).await;
    let (_ws, server) = serve(&[pair("主", &healthy.url)], "").await;
    let res = v1_generate(
        &server,
        None,
        json!({"prompt": "链接", "response_format": "url", "size": "1536x1024"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let url = body["data"][0]["url"].as_str().unwrap();
    assert!(url.starts_with(&server.url), "{url}");
    let png = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    let img = image::load_from_memory(&png).unwrap();
    assert_eq!(
        (img.width(), img.height()),
        (1264, 848),
        "1536x1024 → 3:2 的 1K 档"
    );
    let models: Value = get_json(format!("{}/v1/models", server.url)).await;
    assert_eq!(models["data"][0]["id"], "gemini-3-pro-image");
    let bad = v1_generate(&server, None, json!({"prompt": "x", "n": 17})).await;
    assert_eq!(bad.status(), 400);
}

async fn v1_with_key(server: &Running, key: &str, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/images/generations", server.url))
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn idempotency_key_returns_the_first_result_without_generating_again() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(gemini_ok_body())
                .set_delay(Duration::from_millis(300)),
        )
        .expect(2)
        .mount(&mock)
        .await;
    let (ws, server) = serve(&[pair("主", &mock.uri())], FAST_RETRY).await;
    let body = json!({"prompt": "只付一次钱", "response_format": "url"});

    // 并发的两个重复请求只生成一次，拿到同一张图。
    let (a, b) = tokio::join!(
        v1_with_key(&server, "k-1", body.clone()),
        v1_with_key(&server, "k-1", body.clone())
    );
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    // 链接是签名链接（到期时间随请求时刻变）：比较它指向的图片 id。
    let image_id = |v: &Value| {
        let url = v["data"][0]["url"]
            .as_str()
            .unwrap_or_else(|| panic!("{v}"));
        url.split('?')
            .next()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(image_id(&a), image_id(&b), "{a} {b}");
    // 同一个键、同一个请求再发：同一张图，字节完全一样。
    let again: Value = v1_with_key(&server, "k-1", body.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(image_id(&again), image_id(&a));
    let bytes = |v: &Value| {
        let url = v["data"][0]["url"].as_str().unwrap().to_string();
        async move { reqwest::get(url).await.unwrap().bytes().await.unwrap() }
    };
    let first_bytes = bytes(&a).await;
    assert!(first_bytes.len() > 50);
    assert_eq!(bytes(&again).await, first_bytes, "重放给的是同一张图的字节");
    // 同一个键、不同的请求：409，什么都不生成。
    let conflict = v1_with_key(&server, "k-1", json!({"prompt": "换了提示词"})).await;
    assert_eq!(conflict.status(), 409);
    let err: Value = conflict.json().await.unwrap();
    assert_eq!(err["error"]["code"], "idempotency_conflict", "{err}");
    // 另一个键会重新生成。
    let other: Value = v1_with_key(&server, "k-2", body.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(image_id(&other), image_id(&a));
    assert_eq!(originals_under(&ws.storage().join("images")).len(), 2);
    // 重启之后：记录在数据库里，重放仍是第一次的图，不再生成（wiremock 总共只被调用 2 次）。
    drop(server);
    let server = ws.serve().await;
    let after_restart: Value = v1_with_key(&server, "k-1", body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(image_id(&after_restart), image_id(&a));
    assert_eq!(bytes(&after_restart).await, first_bytes);
    mock.verify().await;
}

#[tokio::test]
async fn request_id_is_returned_and_kept_when_given() {
    let ws = Workspace::new("");
    let server = ws.serve().await;
    let http = reqwest::Client::new();
    let res = http
        .get(format!("{}/v1/models", server.url))
        .send()
        .await
        .unwrap();
    assert!(res
        .headers()
        .get("x-request-id")
        .is_some_and(|v| v.len() >= 32));
    let res = http
        .get(format!("{}/v1/models", server.url))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-abc-123");
}

#[tokio::test]
async fn metrics_count_attempts_retries_and_requests_without_secrets() {
    let mock = MockServer::start().await;
    fail_once_then_ok(&mock, google_error(503, "UNAVAILABLE", "overloaded")).await;
    let config = format!(
        "[storage]\nroot = \"storage\"\n{FAST_RETRY}[auth]\napi_keys = [\"sk-metrics-secret\"]\n\n[[upstreams]]\nname = \"主\"\nbase_url = \"{}\"\napi_key = \"AIza-upstream-secret\"\n",
        mock.uri()
    );
    let ws = Workspace::new(&config);
    let server = ws.serve().await;
    assert_eq!(
        v1_generate(
            &server,
            Some("sk-metrics-secret"),
            json!({"prompt": "计数"})
        )
        .await
        .status(),
        200
    );
    let text = metrics_text(&server).await;
    for want in [
        "gateway_attempts_total{upstream=\"主\",outcome=\"status\"} 1",
        "gateway_attempts_total{upstream=\"主\",outcome=\"ok\"} 1",
        "gateway_retries_total{upstream=\"主\"} 1",
        "http_requests_total{route=\"/v1/images/generations\",status=\"200\"} 1",
        "gateway_attempt_duration_seconds_bucket",
    ] {
        assert!(text.contains(want), "缺少 {want}：\n{text}");
    }
    assert!(!text.contains("secret"), "指标里不能有密钥");
}

#[tokio::test]
async fn a_per_upstream_cap_queues_and_refuses_beyond_its_queue() {
    let slow = demo_upstream(&["--delay-ms", "1500"]).await;
    let config = format!(
        "[storage]\nroot = \"storage\"\n[limits]\nqueue_size = 0\n\n[[upstreams]]\nname = \"主\"\nbase_url = \"{}\"\nmax_concurrent = 1\n",
        slow.url
    );
    let ws = Workspace::new(&config);
    let server = ws.serve().await;
    let (a, b) = tokio::join!(v1_generate(&server, None, json!({"prompt": "一"})), async {
        wait_for_in_flight(&server, 1.0).await;
        v1_generate(&server, None, json!({"prompt": "二"})).await
    });
    assert_eq!(a.status(), 200);
    assert_eq!(b.status(), 503, "全局上限是 16，但这个上游只允许 1 个在途");
}

/// 进度回报把请求体拆成块发送，但上游（及其前面的代理）看到的仍应是普通的定长 JSON 请求。
#[tokio::test]
async fn gemini_requests_stay_fixed_length_json() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
        .expect(1)
        .mount(&mock)
        .await;
    let (_ws, server) = serve(&[pair("主", &mock.uri())], FAST_RETRY).await;
    let (status, saved) = studio_generate(&server, "定长请求").await;
    assert_eq!(status, 200, "{saved}");
    let requests = mock.received_requests().await.unwrap();
    let req = &requests[0];
    assert_eq!(req.headers["content-type"], "application/json");
    assert!(req.headers.get("transfer-encoding").is_none());
    assert_eq!(
        req.headers["content-length"].to_str().unwrap(),
        req.body.len().to_string()
    );
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["contents"][0]["parts"][0]["text"], "定长请求");
}
