//! 上游一次返回几张正式图（#41 第 5 项）：像素最多的那张是结果，其余的也存进图库（付过钱的不丢）。
//! 上游是 wiremock：先给一张 128 × 96 的，再给一张 32 × 32 的（以前取最后一张，就会留下小的那张）。

use crate::common::*;
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn png_b64(w: u32, h: u32) -> String {
    use base64::Engine;
    let img = image::RgbImage::from_pixel(w, h, image::Rgb([10, 20, 200]));
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    base64::engine::general_purpose::STANDARD.encode(&png)
}

#[tokio::test]
async fn the_largest_candidate_is_the_result_and_the_others_are_kept_in_the_gallery() {
    let mock = MockServer::start().await;
    let body = json!({"candidates": [{"content": {"role": "model", "parts": [
        {"inlineData": {"mimeType": "image/png", "data": png_b64(32, 32)}, "thought": true},
        {"inlineData": {"mimeType": "image/png", "data": png_b64(128, 96)}},
        {"text": "两张"},
        {"inlineData": {"mimeType": "image/png", "data": png_b64(32, 32)}}
    ]}, "finishReason": "STOP"}]});
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(&mock)
        .await;
    let ws = Workspace::new(&config_with_upstream(&mock.uri()));
    let server = ws.serve().await;
    let (status, saved) = studio_generate(&server, "几张候选").await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(
        (saved["width"].as_u64(), saved["height"].as_u64()),
        (Some(128), Some(96))
    );
    let (status, page) = call(&server, "list_images", json!({ "query": {} })).await;
    assert_eq!(status, 200);
    let items: &Vec<Value> = page["items"].as_array().unwrap();
    let mut sizes: Vec<(u64, u64)> = items
        .iter()
        .map(|i| (i["width"].as_u64().unwrap(), i["height"].as_u64().unwrap()))
        .collect();
    sizes.sort();
    assert_eq!(
        sizes,
        vec![(32, 32), (128, 96)],
        "草图（thought）不存，另一张正式图存进图库"
    );
    let extra = items.iter().find(|i| i["width"] == 32).unwrap();
    let (_, detail) = call(&server, "get_image", json!({ "id": extra["id"] })).await;
    assert!(
        detail["model_text"].as_str().unwrap().contains("候选"),
        "{detail}"
    );
}
