//! `/v1` 的编辑与对话接口、以及响应压缩规则：真服务器 + 独立演示上游，真实 HTTP。

use crate::common::*;
use base64::Engine;
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

fn png(color: [u8; 3], w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(w, h, image::Rgb(color));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn file(bytes: Vec<u8>) -> Part {
    Part::bytes(bytes)
        .file_name("ref.png")
        .mime_str("image/png")
        .unwrap()
}

async fn setup() -> (Running, Workspace, Running) {
    let demo = demo_upstream(&[]).await;
    let ws = Workspace::new(&config_with_upstream(&demo.url));
    let server = ws.serve().await;
    (demo, ws, server)
}

async fn edit(server: &Running, form: Form) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/v1/images/edits", server.url))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

fn decode_b64_png(v: &Value) -> image::RgbImage {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap();
    image::load_from_memory(&bytes).unwrap().to_rgb8()
}

#[tokio::test]
async fn edit_with_one_and_with_two_images() {
    let (_demo, ws, server) = setup().await;
    let form = Form::new()
        .text("prompt", "改成夜景")
        .text("size", "1024x1024")
        .part("image", file(png([250, 0, 0], 64, 64)));
    let res = edit(&server, form).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let img = decode_b64_png(&body["data"][0]["b64_json"]);
    let mean_red =
        img.pixels().map(|p| p.0[0] as f64).sum::<f64>() / (img.width() * img.height()) as f64;
    assert!(mean_red > 150.0, "编辑结果应由红色参考图派生：{mean_red}");

    let form = Form::new()
        .text("prompt", "合成两张")
        .text("n", "2")
        .part("image[]", file(png([0, 0, 250], 32, 32)))
        .part("image[]", file(png([0, 250, 0], 32, 32)));
    let res = edit(&server, form).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert_eq!(originals_under(&ws.storage().join("images")).len(), 3);
}

#[tokio::test]
async fn chat_non_stream_returns_images_and_markdown() {
    let (_demo, _ws, server) = setup().await;
    // 纯红的参考图：演示上游以参考图为主体（七成）叠上提示词的色调（三成），结果应当整体偏红。
    let data_url = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png([250, 0, 0], 16, 16))
    );
    let body: Value = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.url))
        .json(&json!({"model": "gemini-3-pro-image", "messages": [
            {"role": "system", "content": "你是画师"},
            {"role": "user", "content": [{"type": "text", "text": "画成水彩"}, {"type": "image_url", "image_url": {"url": data_url}}]}
        ]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let message = &body["choices"][0]["message"];
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(message["role"], "assistant");
    let url = message["images"][0]["image_url"]["url"].as_str().unwrap();
    let b64 = url
        .strip_prefix("data:image/png;base64,")
        .unwrap_or_else(|| panic!("应是 PNG 的 data URL：{url:.80}"));
    assert!(message["content"]
        .as_str()
        .unwrap()
        .contains("![image](data:image/png;base64,"));
    // 参考图确实交给了上游：结果由红色参考图派生（没带上参考图时，颜色只由提示词的哈希决定）。
    let img = decode_b64_png(&json!(b64));
    let mean = |c: usize| {
        img.pixels().map(|p| p.0[c] as f64).sum::<f64>() / (img.width() * img.height()) as f64
    };
    let (red, green, blue) = (mean(0), mean(1), mean(2));
    assert!(
        red > 170.0 && green < 80.0 && blue < 80.0,
        "对话结果应由红色参考图派生：平均 RGB = ({red:.0}, {green:.0}, {blue:.0})"
    );
}

#[tokio::test]
async fn chat_stream_is_valid_sse_with_a_files_link_and_done() {
    let (_demo, _ws, server) = setup().await;
    let text = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.url))
        .json(&json!({"model": "gemini-3-pro-image", "stream": true, "messages": [{"role": "user", "content": "一只鲸鱼"}]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data.last(), Some(&"[DONE]"), "{text}");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk"));
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert!(
        content.contains(&format!("]({}/files/", server.url)),
        "{content}"
    );
    assert!(!text.contains("base64,"), "流里不应出现 data URL");
    assert!(text.lines().all(|l| l.len() < 4096), "SSE 行不应很长");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn chat_stream_reports_upstream_errors_inside_the_stream() {
    let demo = demo_upstream(&["--safety-rate", "1"]).await;
    let ws = Workspace::new(&config_with_upstream(&demo.url));
    let server = ws.serve().await;
    let text = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.url))
        .json(&json!({"stream": true, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("content_policy_violation"), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"));
}

#[tokio::test]
async fn images_are_not_gzipped_but_pages_are() {
    let (_demo, _ws, server) = setup().await;
    // reqwest 未开启 gzip 特性：不会自动解压，响应头原样可见。
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/v1/images/generations", server.url))
        .header("accept-encoding", "gzip")
        .json(&json!({"prompt": "不压缩", "image_size": "2K"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers().get("content-encoding").is_none(),
        "带 base64 图像的大 JSON 不压缩"
    );
    let page = http
        .get(&server.url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("gzip")
    );
}
