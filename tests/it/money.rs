//! 钱（#37）：每次计费的尝试按模型目录的价格记账；用量页的 JSON 与 CSV 给出精确的合计（按模型、按上游与密钥、
//! 按调用方、每天）；可能已计费的失败照样计入、价格未知的记为“未知”而不是 0；`/v1` 的响应头带这次的花费；
//! 密钥的每日花费上限在会超过的那个请求上拒绝（429 `insufficient_quota`，上游一次都没被调用）。
//! 上游是 wiremock（数得清调用次数），价格取自编进程序的目录（`src/models.toml`）：
//! Nano Banana Pro（gemini-3-pro-image）1K/2K $0.134、4K $0.24；gemini-3.1-flash-image 1K $0.067、2K $0.101、4K $0.151；
//! gemini-3.1-flash-lite-image 没有价格。

use crate::common::*;
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PRO: &str = "gemini-3-pro-image";
const FLASH: &str = "gemini-3.1-flash-image";
const LITE: &str = "gemini-3.1-flash-lite-image";
const KEY_A: &str = "sk-df-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const KEY_B: &str = "sk-df-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// 提示词里有“坏的回答”时回 200 却不是 JSON（可能已计费，只再试一次），其余都成功。
async fn upstream() -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(body_string_contains("坏的回答"))
        .respond_with(ResponseTemplate::new(200).set_body_string("这不是 JSON"))
        .with_priority(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
        .with_priority(2)
        .mount(&mock)
        .await;
    mock
}

fn config(url: &str, keys: &str) -> String {
    format!(
        "[storage]\nroot = \"storage\"\n[retry]\nmax_attempts = 3\nbase_delay_ms = 10\nmax_delay_ms = 50\n\
         [[upstreams]]\nname = \"主上游\"\nkind = \"gemini\"\nbase_url = \"{url}\"\n\
         models = [\"{PRO}\", \"{FLASH}\", \"{LITE}\"]\n{keys}"
    )
}

/// `POST /v1/images/generations`：状态码、`X-Factory-Cost` 与 JSON。
async fn v1(server: &Running, key: &str, body: Value) -> (u16, Option<String>, Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/v1/images/generations", server.url))
        .timeout(Duration::from_secs(60))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .expect("请求应当完成");
    let status = res.status().as_u16();
    let cost = res
        .headers()
        .get("x-factory-cost")
        .map(|v| v.to_str().unwrap().to_string());
    (status, cost, res.json().await.unwrap_or(Value::Null))
}

fn line<'a>(report: &'a Value, table: &str, name: &str) -> &'a Value {
    report["spend"][table]
        .as_array()
        .unwrap_or_else(|| panic!("报告里应有 spend.{table}：{report}"))
        .iter()
        .find(|l| l["name"] == name)
        .unwrap_or_else(|| panic!("spend.{table} 里应有 {name}：{}", report["spend"][table]))
}

/// 一行的（已计费金额、已计费价格未知次数、可能已计费金额、可能已计费价格未知次数）。
fn cell(v: &Value) -> (i64, u64, i64, u64) {
    (
        v["billed"]["usd"].as_i64().unwrap(),
        v["billed"]["unpriced"].as_u64().unwrap(),
        v["maybe"]["usd"].as_i64().unwrap(),
        v["maybe"]["unpriced"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn spend_is_priced_per_attempt_and_adds_up_exactly_by_model_key_and_client() {
    let mock = upstream().await;
    let keys = key_entry("设计组", KEY_A, "") + &key_entry("脚本", KEY_B, "");
    let ws = Workspace::new(&config(&mock.uri(), &keys));
    let server = ws.serve().await;

    // 两个模型 × 两种分辨率 × 两个密钥与工作台；响应头是这次的花费（美元）。
    let asks = [
        (KEY_A, PRO, "1K", 2, "0.268"),
        (KEY_A, FLASH, "2K", 1, "0.101"),
        (KEY_B, PRO, "4K", 1, "0.24"),
        (KEY_B, FLASH, "1K", 1, "0.067"),
    ];
    for (key, model, size, n, cost) in asks {
        let (status, header, body) = v1(
            &server,
            key,
            json!({"prompt": format!("{model} {size}"), "model": model, "image_size": size, "n": n}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(header.as_deref(), Some(cost), "{model} {size} × {n}");
    }
    // 价格未知的模型：照样生成，记为“未知”而不是 0；响应头是已知部分（0）。
    let (status, header, body) = v1(
        &server,
        KEY_A,
        json!({"prompt": "无价", "model": LITE, "image_size": "1K"}),
    )
    .await;
    assert_eq!((status, header.as_deref()), (200, Some("0.00")), "{body}");
    // 可能已计费的失败：200 却不是 JSON，再试一次也一样：两次尝试都按价格计入“可能已计费”。
    let (status, _, body) = v1(
        &server,
        KEY_B,
        json!({"prompt": "坏的回答", "model": PRO, "image_size": "1K"}),
    )
    .await;
    assert!(status >= 500, "{status} {body}");
    // 工作台：一张 Pro 2K、一张 Flash 4K。
    for (model, size) in [(PRO, "2K"), (FLASH, "4K")] {
        let (status, body) = call(
            &server,
            "generate_image",
            json!({"request": {"prompt": "工作台", "model": model, "image_size": size}}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }

    // 用量每秒成批写库：等到合计出现。
    let deadline = Deadline::new(20, "用量页的花费合计");
    let report = loop {
        let (status, report) = admin(&server, "usage_report", json!({})).await;
        assert_eq!(status, 200, "{report}");
        if report["spend"]["total"]["billed"]["usd"] == 961_000
            && report["spend"]["total"]["maybe"]["usd"] == 268_000
        {
            break report;
        }
        deadline.tick().await;
    };
    assert_eq!(cell(&report["spend"]["total"]), (961_000, 1, 268_000, 0));
    let by = |table: &str, name: &str| cell(&line(&report, table, name)["spend"]);
    assert_eq!(by("by_client", "设计组"), (369_000, 1, 0, 0));
    assert_eq!(by("by_client", "脚本"), (307_000, 0, 268_000, 0));
    assert_eq!(by("by_client", "工作台"), (285_000, 0, 0, 0));
    assert_eq!(by("by_model", PRO), (642_000, 0, 268_000, 0));
    assert_eq!(by("by_model", FLASH), (319_000, 0, 0, 0));
    assert_eq!(
        by("by_model", LITE),
        (0, 1, 0, 0),
        "价格未知的记次数，不当作 0 元"
    );
    assert_eq!(by("by_upstream_key", "主上游"), (961_000, 1, 268_000, 0));
    assert_eq!(line(&report, "by_model", PRO)["images"], 4);
    let per_day: i64 = report["spend"]["per_day"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["billed"]["usd"].as_i64().unwrap())
        .sum();
    assert_eq!(per_day, 961_000, "每天的加起来等于总计");
    assert_eq!(report["spend"]["pricing"]["currency"], "USD");

    // CSV：同样的数（已计费花费一列加起来 0.961 美元，可能已计费 0.268）。
    let (status, csv) = admin(&server, "usage_csv", json!({})).await;
    assert_eq!(status, 200);
    let csv = csv
        .as_str()
        .unwrap()
        .trim_start_matches('\u{feff}')
        .to_string();
    let mut reader = ::csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("CSV 应有“{name}”一列：{header:?}"))
    };
    let (billed, maybe) = (column("已计费花费(USD)"), column("可能已计费花费(USD)"));
    let micros = |text: &str| (text.parse::<f64>().unwrap() * 1e6).round() as i64;
    let (mut billed_sum, mut maybe_sum) = (0, 0);
    for row in reader.records() {
        let row = row.unwrap();
        billed_sum += micros(&row[billed]);
        maybe_sum += micros(&row[maybe]);
    }
    assert_eq!((billed_sum, maybe_sum), (961_000, 268_000));
    assert_eq!(
        mock.received_requests().await.unwrap().len(),
        10,
        "9 张图 + 一次再试"
    );
}

#[tokio::test]
async fn a_daily_spend_cap_refuses_the_request_that_would_pass_it_without_calling_upstream() {
    let mock = upstream().await;
    let keys = key_entry("小预算", KEY_A, "max_spend_per_day = 0.5");
    let ws = Workspace::new(&config(&mock.uri(), &keys));
    let server = ws.serve().await;
    let pro_1k = json!({"prompt": "一张", "model": PRO, "image_size": "1K"});
    for _ in 0..3 {
        let (status, cost, body) = v1(&server, KEY_A, pro_1k.clone()).await;
        assert_eq!((status, cost.as_deref()), (200, Some("0.134")), "{body}");
    }
    // 已花 $0.402，再一张 $0.134 就超过 $0.50：拒绝，上游不被调用。
    let (status, _, body) = v1(&server, KEY_A, pro_1k.clone()).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "insufficient_quota", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    for part in [
        "每天最多花 $0.50",
        "已花 $0.402",
        "这次估计 $0.134",
        "UTC 重置",
    ] {
        assert!(message.contains(part), "原因应说明“{part}”：{message}");
    }
    // n = 4 一次也不行（整个拒绝，不做一部分）；价格未知的模型在设了上限时不放行。
    let (status, _, body) = v1(
        &server,
        KEY_A,
        json!({"prompt": "四张", "model": FLASH, "image_size": "1K", "n": 4}),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    let (status, _, body) = v1(&server, KEY_A, json!({"prompt": "无价", "model": LITE})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("没有价格"),
        "{body}"
    );
    assert_eq!(
        mock.received_requests().await.unwrap().len(),
        3,
        "被拒的请求一个都没到上游"
    );
    // 还剩 $0.098：一张 Flash 1K（$0.067）仍然放行。
    let (status, cost, body) = v1(
        &server,
        KEY_A,
        json!({"prompt": "便宜的", "model": FLASH, "image_size": "1K"}),
    )
    .await;
    assert_eq!((status, cost.as_deref()), (200, Some("0.067")), "{body}");
}

#[tokio::test]
async fn an_upstream_key_over_its_monthly_budget_is_skipped_and_the_spend_survives_a_restart() {
    let mock = upstream().await;
    // 两个密钥，每个每月最多 $0.20；Pro 1K 每张 $0.134：每个密钥用两次就到了上限。
    let text = format!(
        "[storage]\nroot = \"storage\"\n[retry]\nmax_attempts = 2\nbase_delay_ms = 10\nmax_delay_ms = 50\n\
         [[upstreams]]\nname = \"主上游\"\nkind = \"gemini\"\nbase_url = \"{}\"\nmodels = [\"{PRO}\"]\n\
         api_keys = [\"gemini-key-one-1111\", \"gemini-key-two-2222\"]\nkey_max_spend_per_month = 0.2\n",
        mock.uri()
    );
    let ws = Workspace::new(&text);
    let server = ws.serve().await;
    let one = json!({"prompt": "一张", "image_size": "1K"});
    let anon = |server: &Running, body: Value| {
        let url = format!("{}/v1/images/generations", server.url);
        async move {
            let res = reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    for _ in 0..4 {
        let (status, body) = anon(&server, one.clone()).await;
        assert_eq!(status, 200, "{body}");
    }
    let keys_used: Vec<String> = mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            r.headers
                .get("x-goog-api-key")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        keys_used.iter().filter(|k| k.ends_with("1111")).count(),
        2,
        "两个密钥轮流：{keys_used:?}"
    );
    // 两个密钥本月都花了 $0.268 ≥ $0.20：这个上游被跳过，请求失败且没有到上游。
    let (status, body) = anon(&server, one.clone()).await;
    assert!(status >= 500, "{status} {body}");
    assert_eq!(mock.received_requests().await.unwrap().len(), 4);
    let (_, settings) = admin(&server, "get_settings", json!({})).await;
    let states: Vec<&str> = settings["upstreams"][0]["key_states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["over_budget", "over_budget"], "{settings}");

    // 用量每秒写库：等本月的花费写进去，再重启：从用量表接上，仍然跳过。
    let deadline = Deadline::new(20, "密钥的花费写进用量表");
    while ws.db(|c| {
        c.query_one(
            "SELECT CAST(COALESCE(SUM(spend_micros), 0) AS BIGINT) FROM usage WHERE key_index > 0",
            params![],
            |r| r.get::<i64>(0),
        )
    }) < 536_000
    {
        deadline.tick().await;
    }
    drop(server);
    let server = ws.serve().await;
    let (status, body) = anon(&server, one).await;
    assert!(status >= 500, "重启不清零：{status} {body}");
    assert_eq!(
        mock.received_requests().await.unwrap().len(),
        4,
        "重启后也没有调用上游"
    );
}
