//! 三种上游方言的适配器（gemini、openai-images、openai-chat）各自与演示上游往返：文生图尺寸正确，图生图由参考图派生。
#![cfg(feature = "ssr")]

mod common;

use base64::Engine;
use common::*;
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
