//! 三种上游方言的适配器（gemini、openai-images、openai-chat）各自与演示上游往返：文生图尺寸正确，图生图由参考图派生。

use crate::common::*;
use base64::Engine;
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

fn red_png() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(48, 48, image::Rgb([250, 10, 10]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

#[tokio::test]
async fn every_dialect_round_trips_against_the_demo_upstream() {
    let demo = demo_upstream(&[]).await;
    for kind in ["gemini", "openai-images", "openai-chat"] {
        let config = format!(
            "[storage]\nroot = \"storage\"\n\n[[upstreams]]\nname = \"{kind}\"\nkind = \"{kind}\"\nbase_url = \"{}\"\nmodel = \"gemini-2.5-flash-image\"\n",
            demo.url
        );
        let ws = Workspace::new(&config);
        let server = ws.serve().await;
        let http = reqwest::Client::new();

        // 文生图：9:16、1K → 768×1376。
        let res = v1_generate(
            &server,
            None,
            json!({"prompt": format!("{kind} 的灯塔"), "aspect_ratio": "9:16"}),
        )
        .await;
        assert_eq!(res.status(), 200, "{kind}");
        let body: Value = res.json().await.unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(body["data"][0]["b64_json"].as_str().unwrap())
            .unwrap();
        let img = image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), (768, 1376), "{kind}");

        // 图生图：红色参考图 → 结果以红色为主。
        let form = Form::new()
            .text("prompt", "保持构图")
            .text("size", "1024x1024")
            .part(
                "image",
                Part::bytes(red_png())
                    .file_name("r.png")
                    .mime_str("image/png")
                    .unwrap(),
            );
        let res = http
            .post(format!("{}/v1/images/edits", server.url))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{kind}");
        let body: Value = res.json().await.unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(body["data"][0]["b64_json"].as_str().unwrap())
            .unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        let mean_red =
            img.pixels().map(|p| p.0[0] as f64).sum::<f64>() / (img.width() * img.height()) as f64;
        assert!(
            mean_red > 150.0,
            "{kind}: 编辑结果应由参考图派生（平均红 {mean_red}）"
        );
    }
}

/// 以 snake_case 回答的 Gemini 反向代理（有的 Python 代理这样做）：照样取出图、认出安全拦截与文字说明，
/// 不会把付过钱的图当成“没有图”。
#[tokio::test]
async fn a_proxy_answering_in_snake_case_is_understood() {
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let png = red_png();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    let proxy = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1beta/models/[^/]+:generateContent$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "candidates": [{"content": {"role": "model", "parts": [
                {"text": "草稿", "thought": true},
                {"inline_data": {"mime_type": "image/png", "data": "AAAA"}, "thought": true},
                {"text": "这是蛇形字段的回答"},
                {"inline_data": {"mime_type": "image/png", "data": b64}}
            ]}, "finish_reason": "STOP"}],
            "model_version": "snake-proxy"
        })))
        .expect(1)
        .mount(&proxy)
        .await;
    let ws = Workspace::new(&config_with_upstream(&proxy.uri()));
    let server = ws.serve().await;
    let res = v1_generate(&server, None, json!({"prompt": "蛇形字段"})).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let got = base64::engine::general_purpose::STANDARD
        .decode(body["data"][0]["b64_json"].as_str().unwrap())
        .unwrap();
    assert_eq!(got, png, "取到的是正式图，不是思考中的草图");
    assert_eq!(body["data"][0]["revised_prompt"], "这是蛇形字段的回答");
}

/// 以 snake_case 回答的代理没给图的三种情形：调用方看到的和 camelCase 时一样（tests/it/wire_fixtures.rs 的对应行）。
/// 字段名没认出来时结果会变：`finish_reason` 读不到就成了“只返回了文字”（502、再试一次），
/// `prompt_feedback` 读不到就成了“没有任何候选结果”（说明里没有拦截原因与上游的说明）。
#[tokio::test]
async fn a_snake_case_proxy_without_an_image_is_reported_like_camel_case() {
    // 生成后的安全拦截：400 content_policy_violation，说明里有拦截原因与上游的说明，不重试。
    let (status, body) = snake_case_reply(
        json!({"candidates": [{
            "content": {"role": "model", "parts": []},
            "finish_reason": "IMAGE_SAFETY",
            "finish_message": "蛇形的生成后拦截说明"
        }]}),
        1,
    )
    .await;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("content_policy_violation")),
        "snake_case 的 finish_reason: IMAGE_SAFETY 是安全拦截：{body}"
    );
    assert!(
        message.contains("安全策略拦截") && message.contains("IMAGE_SAFETY：蛇形的生成后拦截说明"),
        "说明里有拦截原因与上游的说明：{message}"
    );

    // 提示词阶段的拦截：400 content_policy_violation，说明里是 block_reason 与 block_reason_message。
    let (status, body) = snake_case_reply(
        json!({"prompt_feedback": {
            "block_reason": "BLOCKLIST",
            "block_reason_message": "蛇形的提示词拦截说明"
        }}),
        1,
    )
    .await;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("content_policy_violation")),
        "snake_case 的 prompt_feedback.block_reason 是安全拦截：{body}"
    );
    assert!(
        message.contains("BLOCKLIST：蛇形的提示词拦截说明"),
        "说明里有 block_reason 与上游的说明（不是“没有任何候选结果”）：{message}"
    );

    // 只回了文字、finish_reason 是 NO_IMAGE：不是安全拦截，整个请求再试一次（共 2 次），仍没有图则 502，
    // 说明里有 NO_IMAGE 与模型说的话。
    let (status, body) = snake_case_reply(
        json!({"candidates": [{
            "content": {"role": "model", "parts": [{"text": "这次只能用文字描述"}]},
            "finish_reason": "NO_IMAGE"
        }]}),
        2,
    )
    .await;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("upstream_error")),
        "snake_case 的 NO_IMAGE 是没有图：{body}"
    );
    assert!(
        message.contains("没有返回图像（NO_IMAGE）") && message.contains("这次只能用文字描述"),
        "说明里有 NO_IMAGE 与模型说的话：{message}"
    );
}

/// 一个每次都以 `body`（snake_case）回答 200 的 Gemini 代理，经 `/v1/images/generations` 请求一次，
/// 返回状态码与回答；代理应恰好被调用 `hits` 次。
async fn snake_case_reply(body: Value, hits: u64) -> (u16, Value) {
    use crate::common::in_process::App;
    use wiremock::matchers::{method, path_regex};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let proxy = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1beta/models/[^/]+:generateContent$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .expect(hits)
        .mount(&proxy)
        .await;
    let app = App::new(&config_with_upstreams(
        &[("蛇形代理", &proxy.uri())],
        "[retry]\nbase_delay_ms = 10\n",
    ))
    .await;
    let reply = app
        .post_json(
            "/v1/images/generations",
            json!({"prompt": "蛇形字段没有图"}),
        )
        .await;
    proxy.verify().await;
    reply
}
