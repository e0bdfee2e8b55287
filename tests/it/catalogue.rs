//! 模型目录：旧 id 由现在的模型来做并写明；每个做不到的宽高比、分辨率、参考图数、联网搜索都是 400 与中文原因，
//! 一次上游都不调用；/v1/models 带能力；尺寸核对（偷偷缩小的图被标出、计数，`next` 时换上游拿到足尺寸的图）；
//! 联网搜索只在要求且模型支持时加进请求，来源跟着图存下。

use crate::common::*;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const LOOSE: &str = "[limits]\nrequests_per_minute = 100000\nburst = 100000\n";

async fn v1(server: &Running, body: Value) -> (u16, Value) {
    let res = v1_generate(server, None, body).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([40, 90, 200]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// `/v1/images/edits`，两张大小不同的参考图。
async fn edit_with_two_images(
    server: &Running,
    prompt: &str,
    model: Option<&str>,
) -> reqwest::Response {
    let part = |w, h, name: &str| {
        reqwest::multipart::Part::bytes(png(w, h))
            .file_name(name.to_string())
            .mime_str("image/png")
            .unwrap()
    };
    let mut form = reqwest::multipart::Form::new()
        .text("prompt", prompt.to_string())
        .part("image[]", part(16, 16, "a.png"))
        .part("image[]", part(20, 10, "b.png"));
    if let Some(model) = model {
        form = form.text("model", model.to_string());
    }
    reqwest::Client::new()
        .post(format!("{}/v1/images/edits", server.url))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn aliases_capabilities_and_grounding_are_checked_before_any_upstream_call() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
        .mount(&mock)
        .await;
    let config = format!(
        "[storage]\nroot = \"storage\"\n{LOOSE}\n[[models]]\nid = \"tiny-private\"\nname = \"小模型\"\nmax_references = 1\nsizes = [\"1K\"]\n\n[[upstreams]]\nname = \"目录\"\nbase_url = \"{}\"\nmodels = [\"gemini-3-pro-image\", \"gemini-3.1-flash-lite-image\", \"gemini-nano-banana-2.1\", \"tiny-private\", \"unlisted-model\"]\n",
        mock.uri()
    );
    let ws = Workspace::new(&config);
    let server = ws.serve().await;
    let hits = || async { mock.received_requests().await.unwrap().len() };

    // 做不到的：400，说明它能做什么，上游一次都没被调用。
    let refusals = [
        (
            json!({"prompt": "山", "model": "gemini-3.1-flash-lite-image", "aspect_ratio": "1:8"}),
            "不支持宽高比 1:8，可选：1:1",
        ),
        (
            json!({"prompt": "山", "model": "gemini-3.1-flash-lite-image", "image_size": "4K"}),
            "不支持分辨率 4K，可选：1K",
        ),
        (
            json!({"prompt": "山", "model": "gemini-3-pro-image", "aspect_ratio": "8:1"}),
            "不支持宽高比 8:1",
        ),
        (
            json!({"prompt": "山", "model": "gemini-3.1-flash-lite-image", "google_search": true}),
            "不支持联网搜索",
        ),
        (
            json!({"prompt": "山", "model": "tiny-private", "image_size": "2K"}),
            "不支持分辨率 2K，可选：1K",
        ),
    ];
    for (body, reason) in &refusals {
        let (status, answer) = v1(&server, body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{body}: {message}");
    }
    // 工作台同样（提交整批之前）。
    let (status, body) = call(&server, "submit_jobs", json!({"request": {"prompt": "山", "model": "gemini-3.1-flash-lite-image", "image_size": "2K", "count": 4}})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("不支持分辨率 2K"));
    // 参考图数：tiny-private 最多 1 张。
    let res = edit_with_two_images(&server, "合成", Some("tiny-private")).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("最多接受 1 张参考图"),
        "{body}"
    );
    assert_eq!(hits().await, 0, "做不到的请求一次都没发给上游");

    // 做得到的：新 Flash 的 8:1、不认识的私有模型（什么都放行）。
    assert_eq!(
        v1(
            &server,
            json!({"prompt": "山", "model": "gemini-nano-banana-2.1", "aspect_ratio": "8:1"})
        )
        .await
        .0,
        200
    );
    assert_eq!(v1(&server, json!({"prompt": "山", "model": "unlisted-model", "aspect_ratio": "1:8", "image_size": "512"})).await.0, 200);

    // 旧 id：由现在的模型来做，响应里写明。
    let (status, body) = v1(
        &server,
        json!({"prompt": "山", "model": "gemini-3-pro-image-preview"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["model"], "gemini-3-pro-image");
    let paths: Vec<String> = mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_string())
        .collect();
    assert!(
        paths
            .last()
            .unwrap()
            .contains("/models/gemini-3-pro-image:generateContent"),
        "{paths:?}"
    );

    // 联网搜索：只有要求时请求里才有 google_search 工具。
    let before = hits().await;
    assert_eq!(
        v1(
            &server,
            json!({"prompt": "今天的天气", "model": "gemini-3-pro-image", "google_search": true})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        v1(
            &server,
            json!({"prompt": "今天的天气", "model": "gemini-3-pro-image"})
        )
        .await
        .0,
        200
    );
    let bodies: Vec<Value> = mock.received_requests().await.unwrap()[before..]
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(bodies[0]["tools"], json!([{"google_search": {}}]));
    assert!(bodies[1].get("tools").is_none(), "{}", bodies[1]);

    // /v1/models 带能力。
    let models: Value = get_json(format!("{}/v1/models", server.url)).await;
    let lite = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "gemini-3.1-flash-lite-image")
        .unwrap();
    assert_eq!(
        (&lite["sizes"], &lite["google_search"], &lite["known"]),
        (&json!(["1K"]), &json!(false), &json!(true))
    );
    let unlisted = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "unlisted-model")
        .unwrap();
    assert_eq!(unlisted["known"], false);
    assert_eq!(unlisted["max_references"], 14);
}

#[tokio::test]
async fn downsized_images_are_marked_counted_and_next_gets_a_full_size_one() {
    let cheat = demo_upstream(&["--downsize-rate", "1.0"]).await;
    let honest = demo_upstream(&[]).await;

    // keep（默认）：留下，标“尺寸不符”，计数。
    let ws = Workspace::new(&format!("{LOOSE}{}", config_with_upstream(&cheat.url)));
    let server = ws.serve().await;
    let (status, saved) = studio_generate(&server, "缩水的图").await;
    assert_eq!(status, 200, "{saved}");
    let note = saved["size_note"].as_str().unwrap();
    assert!(
        note.contains("要 1024×1024（1:1 1K），收到 682×682"),
        "{note}"
    );
    assert!(saved["attempts"][0]["size_mismatch"].is_string());
    let (_, detail) = call(&server, "get_image", json!({"id": saved["id"]})).await;
    assert_eq!(detail["size_note"], note);
    let counted = metric(&server, "gateway_size_mismatch_total{upstream=\"替身\"}").await;
    assert_eq!(counted, Some(1.0));

    // next：换到下一个上游，交回的是它的足尺寸图；尝试记录里有两次。
    let ws = Workspace::new(&format!(
        "{LOOSE}[storage]\nroot = \"storage\"\n\n[[upstreams]]\nname = \"缩水\"\nbase_url = \"{}\"\npriority = 0\non_size_mismatch = \"next\"\n\n[[upstreams]]\nname = \"老实\"\nbase_url = \"{}\"\npriority = 1\n",
        cheat.url, honest.url
    ));
    let server = ws.serve().await;
    let (status, saved) = studio_generate(&server, "要足尺寸").await;
    assert_eq!(status, 200, "{saved}");
    assert!(saved["size_note"].is_null(), "{saved}");
    assert_eq!(
        (saved["width"].as_u64(), saved["height"].as_u64()),
        (Some(1024), Some(1024))
    );
    assert_eq!(saved["upstream"], "老实");
    let ups: Vec<&str> = saved["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["upstream"].as_str().unwrap())
        .collect();
    assert_eq!(ups, ["缩水", "老实"]);

    // 联网搜索的来源跟着图存下（演示上游像 Gemini 一样回 groundingMetadata）。
    let res = reqwest::Client::new()
        .post(format!("{}/api/generate_image", server.url))
        .json(&json!({"request": {"prompt": "今天的新闻", "google_search": true}}))
        .send()
        .await
        .unwrap();
    let saved: Value = res.json().await.unwrap();
    assert_eq!(
        saved["sources"][0],
        json!(["演示来源 1", "https://example.com/demo-source-1"]),
        "{saved}"
    );
    let (_, detail) = call(&server, "get_image", json!({"id": saved["id"]})).await;
    assert_eq!(detail["sources"].as_array().unwrap().len(), 2);
}

fn doubao_config(url: &str) -> String {
    format!(
        "[storage]\nroot = \"storage\"\n[retry]\nbase_delay_ms = 10\nmax_delay_ms = 50\n\n[[upstreams]]\nname = \"豆包\"\nkind = \"doubao\"\nbase_url = \"{url}\"\napi_key = \"ark-test-key\"\nmodel = \"doubao-seedream-4-0-250828\"\n"
    )
}

#[tokio::test]
async fn doubao_round_trips_and_its_429_and_safety_refusals_are_classified_like_gemini() {
    let demo = demo_upstream(&[]).await;
    let ws = Workspace::new(&doubao_config(&demo.url));
    let server = ws.serve().await;

    // 文生图（16:9 2K：方舟的 size 给“宽x高”）。
    let (status, body) = v1(
        &server,
        json!({"prompt": "江南水乡", "aspect_ratio": "16:9", "image_size": "2K"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["model"], "doubao-seedream-4-0-250828");
    // 图生图，两张参考图。
    let res = edit_with_two_images(&server, "把两张合在一起", None).await;
    assert_eq!(res.status(), 200);
    let (status, saved) = studio_generate(&server, "豆包的图").await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(
        (saved["width"].as_u64(), saved["upstream"].as_str()),
        (Some(1024), Some("豆包"))
    );
    assert!(saved["size_note"].is_null());

    // 429：和 Gemini 的限流一样重试（每个上游最多 3 次），都不行时 503。
    let limited = demo_upstream(&["--rate-429", "1.0"]).await;
    let ws = Workspace::new(&doubao_config(&limited.url));
    let server = ws.serve().await;
    let (status, body) = studio_generate(&server, "限流").await;
    assert_eq!(status, 503, "{body}");
    let attempts = body["message"].as_str().unwrap_or_default();
    assert!(attempts.contains("429"), "{body}");
    // 安全拦截：和 Gemini 的一样，400 content_policy_violation，不重试。
    let strict = demo_upstream(&["--safety-rate", "1.0"]).await;
    let ws = Workspace::new(&doubao_config(&strict.url));
    let server = ws.serve().await;
    let (status, body) = v1(&server, json!({"prompt": "敏感"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "content_policy_violation");
}
