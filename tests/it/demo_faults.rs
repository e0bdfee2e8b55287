//! 演示上游的每个故障开关在比例为 1.0 时，都准确产生那一种故障（直接用 HTTP 访问，不经网关）。

use crate::common::demo_upstream;
use serde_json::{json, Value};
use std::time::Duration;

fn request_body() -> Value {
    json!({
        "contents": [{"role": "user", "parts": [{"text": "一只橘猫"}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"aspectRatio": "3:4", "imageSize": "1K"}}
    })
}

async fn call(url: &str) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap()
        .post(format!(
            "{url}/v1beta/models/gemini-3-pro-image-preview:generateContent"
        ))
        .header("x-goog-api-key", "test")
        .json(&request_body())
        .send()
        .await
}

#[tokio::test]
async fn healthy_answer_is_real_gemini_format_with_thought_and_final_image() {
    let demo = demo_upstream(&[]).await;
    let body: Value = call(&demo.url).await.unwrap().json().await.unwrap();
    let parts = body["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    assert_eq!(body["candidates"][0]["finishReason"], "STOP");
    let images: Vec<&Value> = parts
        .iter()
        .filter(|p| p.get("inlineData").is_some())
        .collect();
    assert_eq!(images.len(), 2, "一张思考草图 + 一张正式图");
    assert_eq!(images[0]["thought"], true);
    let data = images[1]["inlineData"]["data"].as_str().unwrap();
    use base64::Engine;
    let png = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    let img = image::load_from_memory(&png).unwrap();
    assert_eq!((img.width(), img.height()), (896, 1200));
}

#[tokio::test]
async fn answers_on_v1_path_and_with_query_key() {
    let demo = demo_upstream(&["--api-key", "k1"]).await;
    let http = reqwest::Client::new();
    let ok = http
        .post(format!(
            "{}/v1/models/gemini-2.5-flash-image:generateContent?key=k1",
            demo.url
        ))
        .json(&request_body())
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let wrong = http
        .post(format!("{}/v1beta/models/m:generateContent", demo.url))
        .header("x-goog-api-key", "nope")
        .json(&request_body())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    let missing = http
        .post(format!("{}/v1beta/models/m:generateContent", demo.url))
        .json(&request_body())
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 403);
}

#[tokio::test]
async fn error_rate_gives_5xx_with_google_error_body() {
    let demo = demo_upstream(&["--error-rate", "1"]).await;
    let res = call(&demo.url).await.unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["status"], "UNAVAILABLE");
    let demo = demo_upstream(&["--error-rate", "1", "--error-status", "500"]).await;
    assert_eq!(call(&demo.url).await.unwrap().status(), 500);
}

#[tokio::test]
async fn rate_429_has_retry_after_and_retry_info() {
    let demo = demo_upstream(&["--rate-429", "1.0"]).await;
    let res = call(&demo.url).await.unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "1");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    let details = body["error"]["details"].as_array().unwrap();
    assert!(details.iter().any(|d| d["retryDelay"] == "1s"), "{body}");
}

#[tokio::test]
async fn quota_rate_is_a_daily_quota_429_without_retry() {
    let demo = demo_upstream(&["--quota-rate", "1"]).await;
    let res = call(&demo.url).await.unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().get("retry-after").is_none());
    let body: Value = res.json().await.unwrap();
    assert!(body.to_string().contains("PerDay"), "{body}");
}

#[tokio::test]
async fn hang_really_hangs() {
    let demo = demo_upstream(&["--hang-rate", "1"]).await;
    let started = std::time::Instant::now();
    let err = call(&demo.url).await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() >= Duration::from_secs(3));
}

#[tokio::test]
async fn truncate_cuts_the_body_mid_json() {
    let demo = demo_upstream(&["--truncate-rate", "1"]).await;
    let res = call(&demo.url).await.unwrap();
    assert_eq!(res.status(), 200, "头部已发出，随后连接中断");
    let err = res.bytes().await.unwrap_err();
    assert!(err.is_body() || err.is_decode(), "{err}");
}

#[tokio::test]
async fn malformed_is_invalid_json_with_200() {
    let demo = demo_upstream(&["--malformed-rate", "1"]).await;
    let res = call(&demo.url).await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");
}

#[tokio::test]
async fn safety_rate_blocks_without_image() {
    let demo = demo_upstream(&["--safety-rate", "1"]).await;
    let body: Value = call(&demo.url).await.unwrap().json().await.unwrap();
    assert_eq!(body["candidates"][0]["finishReason"], "IMAGE_SAFETY");
    assert!(!body.to_string().contains("inlineData"));
}

#[tokio::test]
async fn text_only_rate_returns_only_text() {
    let demo = demo_upstream(&["--text-only-rate", "1"]).await;
    let body: Value = call(&demo.url).await.unwrap().json().await.unwrap();
    let parts = body["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    assert!(
        !parts.is_empty()
            && parts
                .iter()
                .all(|p| p.get("text").is_some() && p.get("inlineData").is_none())
    );
}

#[tokio::test]
async fn delay_is_honoured() {
    let demo = demo_upstream(&["--delay-ms", "400-500"]).await;
    let started = std::time::Instant::now();
    assert_eq!(call(&demo.url).await.unwrap().status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn edit_is_derived_from_the_reference_image() {
    use base64::Engine;
    let demo = demo_upstream(&[]).await;
    let red = image::RgbImage::from_pixel(64, 64, image::Rgb([255, 0, 0]));
    let mut png = Vec::new();
    red.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut body = request_body();
    body["contents"][0]["parts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"inlineData": {"mimeType": "image/png", "data": b64.encode(&png)}}));
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/v1beta/models/m:generateContent", demo.url))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let parts = answer["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    let data = parts.last().unwrap()["inlineData"]["data"]
        .as_str()
        .unwrap();
    let img = image::load_from_memory(&b64.decode(data).unwrap())
        .unwrap()
        .to_rgb8();
    let mean_red = img.pixels().map(|p| p.0[0] as f64).sum::<f64>() / img.len() as f64 * 3.0;
    assert!(
        mean_red > 170.0,
        "以红色参考图为主体，平均红色应很高：{mean_red}"
    );
}

#[tokio::test]
async fn bad_parameters_get_gemini_400() {
    let demo = demo_upstream(&[]).await;
    let mut body = request_body();
    body["generationConfig"]["imageConfig"]["imageSize"] = json!("8K");
    let res = reqwest::Client::new()
        .post(format!("{}/v1beta/models/m:generateContent", demo.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["status"], "INVALID_ARGUMENT");
}

#[tokio::test]
async fn max_side_shrinks_the_image_keeping_its_ratio() {
    use base64::Engine;
    let demo = demo_upstream(&["--max-side", "64"]).await;
    let body: Value = call(&demo.url).await.unwrap().json().await.unwrap();
    let parts = body["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    let data = parts.last().unwrap()["inlineData"]["data"]
        .as_str()
        .unwrap();
    let img = image::load_from_memory(
        &base64::engine::general_purpose::STANDARD
            .decode(data)
            .unwrap(),
    )
    .unwrap();
    assert_eq!((img.width(), img.height()), (47, 64), "3:4 缩到最长边 64");
}
