//! 多个上游与调用方：按模型路由、同级按权重分担、备选模型；密钥池（失效、配额休息到重置、轮换、日志里没有密钥）；
//! 调用方的每日额度；用量记账与用量页的数据。上游都是 wiremock（数得清每个上游、每个密钥被调用了几次）。

use crate::common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use wiremock::matchers::{body_string_contains, header, method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// 放宽 /v1 的限流（这些测试要发几百个请求），重试快一些。
const LOOSE: &str = "[limits]\nrequests_per_minute = 100000\nburst = 100000\n[retry]\nbase_delay_ms = 10\nmax_delay_ms = 50\n";

async fn ok_upstream() -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
        .mount(&mock)
        .await;
    mock
}

fn upstream(name: &str, url: &str, extra: &str) -> String {
    format!(
        "\n[[upstreams]]\nname = \"{name}\"\nkind = \"gemini\"\nbase_url = \"{url}\"\n{extra}\n"
    )
}

async fn serve(config: &str) -> (Workspace, Running) {
    let ws = Workspace::new(&format!("[storage]\nroot = \"storage\"\n{config}"));
    let server = ws.serve().await;
    (ws, server)
}

async fn hits(mock: &MockServer) -> usize {
    mock.received_requests().await.unwrap_or_default().len()
}

/// 调用管理员的服务器函数（同源：带上本站的 Origin，与浏览器一样）。
async fn admin(server: &Running, name: &str) -> (u16, Value) {
    crate::common::admin(server, name, json!({})).await
}

async fn generate(server: &Running, model: &str) -> (u16, Value) {
    let res = v1_generate(server, None, json!({"prompt": "一座山", "model": model})).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn models_route_to_their_upstreams_weights_share_load_and_fallback_models_are_reported() {
    let (a, b) = (ok_upstream().await, ok_upstream().await);
    let (heavy, light) = (ok_upstream().await, ok_upstream().await);
    let primary = MockServer::start().await;
    let backup = ok_upstream().await;
    let config = format!(
        "{LOOSE}[routing]\nmodel_fallbacks = {{ \"model-x\" = [\"model-y\"] }}\n{}{}{}{}{}{}",
        upstream("甲", &a.uri(), "models = [\"model-a\"]\npriority = 0"),
        upstream(
            "乙",
            &b.uri(),
            "models = [\"model-b\", \"model-b2\"]\npriority = 1"
        ),
        upstream(
            "重",
            &heavy.uri(),
            "model = \"model-w\"\npriority = 2\nweight = 3"
        ),
        upstream(
            "轻",
            &light.uri(),
            "model = \"model-w\"\npriority = 2\nweight = 1"
        ),
        upstream("主", &primary.uri(), "model = \"model-x\"\npriority = 3"),
        upstream("备", &backup.uri(), "model = \"model-y\"\npriority = 4"),
    );
    let (_ws, server) = serve(&config).await;

    // 每个模型只发给列出它的上游。
    for _ in 0..3 {
        assert_eq!(generate(&server, "model-a").await.0, 200);
    }
    for model in ["model-b", "model-b2"] {
        assert_eq!(generate(&server, model).await.0, 200);
    }
    assert_eq!((hits(&a).await, hits(&b).await), (3, 2));
    let body = b.received_requests().await.unwrap()[1]
        .url
        .path()
        .to_string();
    assert!(body.contains("model-b2"), "{body}");

    // /v1/models 是并集。
    let models: Value = get_json(format!("{}/v1/models", server.url)).await;
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["model-a", "model-b", "model-b2", "model-w", "model-x", "model-y"]
    );

    // 没有上游提供的模型：400，列出可用的，一个上游都没被调用。
    let before = hits(&a).await + hits(&b).await + hits(&heavy).await + hits(&primary).await;
    let (status, body) = generate(&server, "model-nope").await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("model-nope") && message.contains("model-a、model-b"),
        "{message}"
    );
    assert_eq!(
        hits(&a).await + hits(&b).await + hits(&heavy).await + hits(&primary).await,
        before
    );

    // 权重 3:1，400 个请求（并发 8）：300 / 100 ± 5%。
    let mut tasks = tokio::task::JoinSet::new();
    let url = server.url.clone();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..8 {
        let (url, next) = (url.clone(), next.clone());
        tasks.spawn(async move {
            let client = reqwest::Client::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 400 {
                let res = client
                    .post(format!("{url}/v1/images/generations"))
                    .json(&json!({"prompt": "山", "model": "model-w"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let (h, l) = (hits(&heavy).await, hits(&light).await);
    assert_eq!(h + l, 400);
    assert!(
        (285..=315).contains(&h) && (85..=115).contains(&l),
        "重 {h}、轻 {l}"
    );

    // 备选模型：主上游好的时候不用备选。
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
        .mount(&primary)
        .await;
    let (status, body) = generate(&server, "model-x").await;
    assert_eq!(status, 200);
    assert_eq!(body["data"][0]["model"], "model-x");
    assert_eq!(hits(&backup).await, 0);
    // 主上游坏了：改用 model-y，响应里写明。
    primary.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503).set_body_json(
            json!({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}),
        ))
        .mount(&primary)
        .await;
    let (status, body) = generate(&server, "model-x").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["model"], "model-y");
    assert_eq!(hits(&backup).await, 1);
    let path = backup.received_requests().await.unwrap()[0]
        .url
        .path()
        .to_string();
    assert!(path.contains("model-y"), "{path}");

    // 工作台（没指定模型）：第一个上游的默认模型，尝试记录写明用的模型。
    let (status, saved) = studio_generate(&server, "山").await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["attempts"][0]["model"], "model-a");
}

#[tokio::test]
async fn key_pool_disables_rejected_keys_rests_exhausted_ones_until_reset_and_never_logs_keys() {
    let mock = MockServer::start().await;
    let (k1, k2, k3) = (
        "sk-alpha-secret-1111",
        "sk-beta-secret-2222",
        "sk-gamma-secret-3333",
    );
    let by_key = |key: &'static str| Mock::given(method("POST")).and(header("x-goog-api-key", key));
    by_key(k1)
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {"code": 401, "message": "API key not valid", "status": "UNAUTHENTICATED"}})))
        .mount(&mock)
        .await;
    by_key(k2)
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"error": {"code": 429,
            "message": "Quota exceeded for quota metric 'GenerateRequestsPerDayPerProjectPerModel'", "status": "RESOURCE_EXHAUSTED"}})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&mock)
        .await;
    for key in [k2, k3] {
        by_key(key)
            .respond_with(ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
            .with_priority(2)
            .mount(&mock)
            .await;
    }
    let config_with_reset = |reset: &str| {
        format!(
            "[storage]\nroot = \"storage\"\n{LOOSE}{}",
            upstream(
                "池",
                &mock.uri(),
                &format!("api_keys = [\"{k1}\", \"{k2}\", \"{k3}\"]\nquota_reset = \"{reset}\"")
            )
        )
    };
    let ws = Workspace::new(&config_with_reset("00:00 America/Los_Angeles"));
    let server = ws.serve_with_env(&[("RUST_LOG", "info")]).await;
    // 配额在几秒后“重置”（测试缩短；真实的是太平洋时间午夜）。服务器起来以后才定这个时刻、改配置文件，
    // 等服务器采用了再发第一个请求：启动再慢也不会让重置时刻在 #2 用完配额之前就过去（那样它要休息到明天）。
    let reset_at = chrono::Utc::now() + chrono::Duration::seconds(4);
    let applied = config_reloads(&server, "applied").await;
    ws.write_config(&config_with_reset(
        &reset_at.format("%H:%M:%S UTC").to_string(),
    ));
    wait_for_config_reload(&server, "applied", applied).await;
    let used = |key: &'static str| {
        let mock = &mock;
        async move {
            mock.received_requests()
                .await
                .unwrap()
                .iter()
                .filter(|r| r.headers.get("x-goog-api-key").is_some_and(|v| v == key))
                .count()
        }
    };

    // 第一个请求：#1 被拒（失效）→ #2 配额用完（休息）→ #3 成功，都在同一个请求里，调用方看到的是成功。
    let (status, saved) = studio_generate(&server, "池").await;
    assert_eq!(status, 200, "{saved}");
    let keys: Vec<&str> = saved["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["#1 …1111", "#2 …2222", "#3 …3333"]);
    for _ in 0..4 {
        assert_eq!(studio_generate(&server, "池").await.0, 200);
    }
    assert_eq!((used(k1).await, used(k2).await, used(k3).await), (1, 1, 5));

    // 设置页看得到每个密钥的状态（只有序号与末 4 位）。
    let (status, view) = admin(&server, "get_settings").await;
    assert_eq!(status, 200, "{view}");
    let states: Vec<&str> = view["upstreams"][0]["key_states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["disabled", "resting", "ok"]);
    let resting = view["upstreams"][0]["key_states"][1]["label_zh"]
        .as_str()
        .unwrap();
    assert!(
        resting.contains(&reset_at.format("%Y-%m-%d %H:%M UTC").to_string()),
        "#2 休息到配置的重置时刻（不是明天的：那说明第一个请求到得比重置时刻还晚）：{resting}"
    );

    // 重置之后 #2 回来了（设置页上又是正常），与 #3 轮流；#1 改掉之前再也不用。
    let deadline = Deadline::new(20, "重置时刻过后 #2 恢复正常");
    loop {
        let (status, view) = admin(&server, "get_settings").await;
        assert_eq!(status, 200, "{view}");
        let states = &view["upstreams"][0]["key_states"];
        if states[1]["state"] == "ok" {
            assert_eq!(states[0]["state"], "disabled", "{states}");
            break;
        }
        deadline.tick().await;
    }
    for _ in 0..4 {
        assert_eq!(studio_generate(&server, "池").await.0, 200);
    }
    assert_eq!(used(k1).await, 1);
    assert_eq!((used(k2).await, used(k3).await), (3, 7));

    // 密钥原文不在日志、尝试记录、设置页与 /metrics 里。
    let metrics = metrics_text(&server).await;
    let logs = server.logs.lock().unwrap().clone();
    assert!(logs.contains("#1 …1111"), "日志里用序号与末 4 位称呼密钥");
    for key in [k1, k2, k3] {
        let secret = &key[..key.len() - 4];
        for (place, text) in [
            ("日志", &logs),
            ("/metrics", &metrics),
            ("尝试记录", &saved.to_string()),
            ("设置页", &view.to_string()),
        ] {
            assert!(!text.contains(secret), "{place}里出现了密钥 {key}");
        }
    }
}

#[tokio::test]
async fn client_budgets_count_images_and_refuse_whole_submissions() {
    let key = "sk-df-budget-test-key-000000000000000000";
    let config = format!(
        "[limits]\nrequests_per_minute = 100000\nburst = 100000\nstudio_images_per_day = 10\n\n[[auth.keys]]\nlabel = \"设计组\"\nprefix = \"sk-df-budget\"\nsha256 = \"{}\"\ncreated_at = \"2026-11-30T00:00:00Z\"\nimages_per_day = 5\n",
        drafting_factory::web::sha256_hex(key)
    );
    let (ws, server) = serve(&config).await;

    // /v1：2 + 2 + 1 = 5 张，第 6 张 429 insufficient_quota。最后一张带幂等键。
    for n in [2, 2] {
        let res = v1_generate(&server, Some(key), json!({"prompt": "山", "n": n})).await;
        assert_eq!(res.status(), 200);
    }
    let with_idempotency_key = || {
        reqwest::Client::new()
            .post(format!("{}/v1/images/generations", server.url))
            .bearer_auth(key)
            .header("idempotency-key", "last-one")
            .json(&json!({"prompt": "最后一张", "response_format": "url"}))
            .send()
    };
    let first: Value = with_idempotency_key().await.unwrap().json().await.unwrap();
    let res = v1_generate(&server, Some(key), json!({"prompt": "山"})).await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "insufficient_quota");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("每天最多生成 5 张") && message.contains("重置"),
        "{message}"
    );
    // 额度用完了，已经付过钱的那张仍取得回来（幂等键回放不占额度，也不再计入）。
    let again = with_idempotency_key().await.unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    let path = |v: &Value| {
        v["data"][0]["url"]
            .as_str()
            .unwrap()
            .split('?')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(path(&again), path(&first));
    let res = v1_generate(&server, Some(key), json!({"prompt": "山"})).await;
    assert_eq!(res.status(), 429, "额度仍是用完的");

    // 工作台每天 10 张：一次 16 张整批拒绝，什么都不排队。
    let rows =
        || ws.db(|c| c.query_one("SELECT COUNT(*) FROM jobs", params![], |r| r.get::<i64>(0)));
    let (status, body) = call(
        &server,
        "submit_jobs",
        json!({"request": {"prompt": "山", "count": 16}}),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("每天最多生成 10 张"),
        "{body}"
    );
    assert_eq!(rows(), 0);
    let (status, _) = call(
        &server,
        "submit_jobs",
        json!({"request": {"prompt": "山", "count": 8}}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &server,
        "submit_jobs",
        json!({"request": {"prompt": "山", "count": 4}}),
    )
    .await;
    assert_eq!(status, 429);
    assert_eq!(rows(), 8);
}

#[tokio::test]
async fn usage_page_data_matches_a_known_mix_exactly() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("坏"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": {"code": 400, "message": "bad prompt", "status": "INVALID_ARGUMENT"}}),
        ))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(".*"))
        .respond_with(ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
        .mount(&mock)
        .await;
    let (_ws, server) = serve(&format!(
        "{LOOSE}{}",
        upstream("记账", &mock.uri(), "model = \"model-u\"")
    ))
    .await;
    for prompt in ["好一", "坏一", "好二", "坏二", "好三"] {
        let res = v1_generate(&server, None, json!({"prompt": prompt})).await;
        assert_eq!(
            res.status().as_u16(),
            if prompt.starts_with('好') { 200 } else { 400 }
        );
    }
    // 记账每秒写一次库：等它写进去。
    let started = Instant::now();
    let report = loop {
        let (status, report) = admin(&server, "usage_report").await;
        assert_eq!(status, 200, "{report}");
        if report["last_24h"][0]["requests"] == 5 {
            break report;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "用量没有写进去：{report}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let stats = &report["last_24h"][0];
    assert_eq!(stats["name"], "记账");
    assert_eq!(
        (&stats["images"], &stats["failures"], &stats["retries"]),
        (&json!(3), &json!({"status": 2}), &json!(0))
    );
    assert!((stats["success_rate"].as_f64().unwrap() - 0.6).abs() < 1e-9);
    let today = report["days"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(report["upstreams"][0], "记账");
    assert_eq!(
        *report["images_per_day"][0]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
        json!(3)
    );
    assert_eq!(
        report["clients_today"],
        json!([{"client": "匿名", "images": 3, "budget": 0}])
    );
    assert_eq!(report["live"][0]["circuit"], "closed");
    assert_eq!(report["health"], "green");

    let (status, csv) = admin(&server, "usage_csv").await;
    assert_eq!(status, 200);
    let csv = csv.as_str().unwrap();
    let line = csv.lines().find(|l| l.contains("记账")).unwrap();
    assert!(line.starts_with(today.as_str().unwrap()), "{line}");
    assert!(
        line.contains(",匿名,记账,model-u,0,5,3,2,status=2,0,0,"),
        "{line}"
    );
}
