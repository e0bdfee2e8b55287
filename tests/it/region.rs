//! 局部修改（#40）：`/v1/images/edits` 带 OpenAI 的 `mask`。演示上游整张重画（整张挪动、换色调），
//! 所以存下的图里区域外的像素与原图逐字节相同，只能是贴回的原图；区域内是模型画的。
//! 蒙版不对（尺寸、格式、没有透明像素）时 400，上游一次都没被调用（wiremock 数得清）。

use crate::common::*;
use image::{Rgba, RgbaImage};
use serde_json::Value;
use std::time::Duration;

/// 原图：200 × 120，每个像素都不一样（挪动一下就看得出来）。
fn source_png() -> Vec<u8> {
    let img = RgbaImage::from_fn(200, 120, |x, y| {
        Rgba([
            (x * 5 % 256) as u8,
            (y * 7 % 256) as u8,
            ((x + y) % 256) as u8,
            255,
        ])
    });
    png(&img)
}

/// 蒙版：`hole`（x0, y0, x1, y1）里完全透明（要改），其余不透明。
fn mask_png(w: u32, h: u32, hole: (u32, u32, u32, u32)) -> Vec<u8> {
    let (x0, y0, x1, y1) = hole;
    png(&RgbaImage::from_fn(w, h, |x, y| {
        let inside = (x0..x1).contains(&x) && (y0..y1).contains(&y);
        Rgba([255, 255, 255, if inside { 0 } else { 255 }])
    }))
}

fn png(img: &RgbaImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// `POST /v1/images/edits`（multipart：image、mask、prompt、b64_json），返回状态码与 JSON。
async fn edit(server: &Running, image: Vec<u8>, mask: Vec<u8>) -> (u16, Value) {
    let part = |bytes: Vec<u8>, name: &str| {
        reqwest::multipart::Part::bytes(bytes)
            .file_name(name.to_string())
            .mime_str("image/png")
            .unwrap()
    };
    let form = reqwest::multipart::Form::new()
        .part("image", part(image, "image.png"))
        .part("mask", part(mask, "mask.png"))
        .text("prompt", "把中间改成一只猫")
        .text("response_format", "b64_json");
    let res = reqwest::Client::new()
        .post(format!("{}/v1/images/edits", server.url))
        .timeout(Duration::from_secs(60))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn pixels_outside_the_mask_are_the_originals_and_inside_is_the_models() {
    let ws = Workspace::new("[storage]\nroot = \"storage\"\n");
    let server = ws.serve().await;
    let hole = (60, 30, 140, 90);
    let (status, body) = edit(&server, source_png(), mask_png(200, 120, hole)).await;
    assert_eq!(status, 200, "{body}");
    let b64 = body["data"][0]["b64_json"].as_str().unwrap();
    let stored = base64_simd::STANDARD.decode_to_vec(b64).unwrap();
    assert!(stored.starts_with(b"\x89PNG"), "存下的是无损的 PNG");
    let out = image::load_from_memory(&stored).unwrap().to_rgba8();
    let src = image::load_from_memory(&source_png()).unwrap().to_rgba8();
    assert_eq!(
        out.dimensions(),
        (200, 120),
        "模型画的是 1024 × 1024，贴回原图的大小"
    );
    let (x0, y0, x1, y1) = hole;
    let (mut changed_inside, mut inside) = (0, 0);
    for (x, y, px) in out.enumerate_pixels() {
        if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
            inside += 1;
            changed_inside += usize::from(px != src.get_pixel(x, y));
        } else {
            assert_eq!(
                px,
                src.get_pixel(x, y),
                "({x},{y}) 在区域外：应与原图逐字节相同"
            );
        }
    }
    assert!(
        changed_inside * 10 > inside * 9,
        "区域内应是模型画的：{changed_inside}/{inside} 个像素变了"
    );
    // 模型原样画回来的图留在尝试记录里（上传区的 id），取得到、是整张重画的那张。
    let attempts: String =
        ws.db(|c| c.query_one("SELECT attempts FROM images", params![], |r| r.get(0)));
    let attempts: Value = serde_json::from_str(&attempts).unwrap();
    let raw = attempts[0]["raw_output"]
        .as_str()
        .expect("尝试记录里有模型原样的图");
    let res = reqwest::get(format!("{}/uploads/{raw}", server.url))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let raw = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!((raw.width(), raw.height()), (1024, 1024));
}

#[tokio::test]
async fn a_bad_mask_is_refused_before_any_upstream_call() {
    let mock = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
        .mount(&mock)
        .await;
    let ws = Workspace::new(&config_with_upstream(&mock.uri()));
    let server = ws.serve().await;
    let opaque = png(&RgbaImage::from_pixel(200, 120, Rgba([0, 0, 0, 255])));
    for (mask, needle) in [
        (mask_png(100, 60, (10, 10, 20, 20)), "100 × 60"),
        (opaque, "没有完全透明"),
        (b"not a png at all".to_vec(), "PNG"),
    ] {
        let (status, body) = edit(&server, source_png(), mask).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message}");
    }
    assert!(
        mock.received_requests().await.unwrap().is_empty(),
        "蒙版不对时一个请求都不该发给上游"
    );
}

#[tokio::test]
async fn a_studio_batch_with_a_mask_keeps_the_outside_and_its_retry_repeats_the_same_edit() {
    // 上游先全部失败（卡片失败），再恢复：重试按同一个蒙版改。
    let demo = demo_upstream(&["--error-rate", "1"]).await;
    let ws = Workspace::new(&(config_with_upstream(&demo.url) + "[retry]\nmax_attempts = 1\n"));
    let server = ws.serve().await;
    let source = upload(&server, "原图.png", source_png()).await;
    let hole = (20, 20, 80, 60);
    let mask = upload(&server, "蒙版.png", mask_png(200, 120, hole)).await;
    let (status, jobs) = call(
        &server,
        "submit_jobs",
        serde_json::json!({ "request": { "prompt": "换成晚霞", "references": [source], "mask": mask } }),
    )
    .await;
    assert_eq!(status, 200, "{jobs}");
    let job = jobs[0]["job_id"].as_str().unwrap().to_string();
    assert_eq!(jobs[0]["mask"], mask.as_str());
    wait_for_state(&server, &job, "failed").await;
    let res = reqwest::Client::new()
        .post(format!("{}/_demo/options", demo.url))
        .json(&serde_json::json!({ "error_rate": 0 }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (status, body) = call(&server, "retry_job", serde_json::json!({ "job_id": job })).await;
    assert_eq!(status, 200, "{body}");
    let done = wait_for_state(&server, &job, "done").await;
    let id = done["image"]["id"].as_str().unwrap().to_string();
    let stored = reqwest::get(format!("{}/files/{id}", server.url))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let out = image::load_from_memory(&stored).unwrap().to_rgba8();
    let src = image::load_from_memory(&source_png()).unwrap().to_rgba8();
    assert_eq!(out.dimensions(), (200, 120));
    let (x0, y0, x1, y1) = hole;
    let mut changed = 0;
    for (x, y, px) in out.enumerate_pixels() {
        if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
            changed += usize::from(px != src.get_pixel(x, y));
        } else {
            assert_eq!(px, src.get_pixel(x, y), "({x},{y}) 在区域外");
        }
    }
    assert!(changed > 60 * 40 * 9 / 10, "区域内是模型画的：{changed}");
    // 蒙版与参考图对不上：提交时就 400，什么都不排队。
    let small = upload(&server, "小蒙版.png", mask_png(10, 10, (0, 0, 5, 5))).await;
    let (status, body) = call(
        &server,
        "submit_jobs",
        serde_json::json!({ "request": { "prompt": "x", "references": [source], "mask": small } }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("10 × 10"),
        "{body}"
    );
}
