//! 请求校验（一处写成，工作台、`/api/generate_image` 与 `/v1` 共用）：每种不合规的请求都得到中文原因的 400，
//! 什么都不保存、不排队。全部在进程内对路由发请求（不占端口），毫秒级。

use crate::common::in_process::{json_of, App};
use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};

const LONG: usize = drafting_factory::types::limits::MAX_PROMPT_CHARS + 1;

fn png() -> Vec<u8> {
    let img = image::RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

/// multipart 表单的一个字段：（字段名, 文件名（文本字段为空）, 内容）。
type Field = (&'static str, &'static str, Vec<u8>);

fn multipart(fields: &[Field]) -> Request<Body> {
    let boundary = "----drafting-factory-test";
    let mut body = Vec::new();
    for (name, file, data) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        if file.is_empty() {
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            );
        } else {
            body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: image/png\r\n\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Request::post("/v1/images/edits")
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap()
}

fn message(body: &Value) -> &str {
    body["error"]["message"]
        .as_str()
        .or(body["message"].as_str())
        .unwrap_or_else(|| panic!("没有错误说明：{body}"))
}

/// 存储里一张图、一份上传都没有。
fn nothing_saved(app: &App) {
    for dir in ["images", "uploads"] {
        let files = crate::common::files_under(&app.storage().join(dir));
        assert!(files.is_empty(), "{dir} 下不该有文件：{files:?}");
    }
}

#[tokio::test]
async fn v1_generations_refuses_bad_requests_with_a_chinese_reason() {
    let app = App::new("").await;
    let cases = [
        (json!({"prompt": "  "}), "prompt 不能为空"),
        (json!({"prompt": "字".repeat(LONG)}), "最多 8000 个字符"),
        (json!({"prompt": "p", "n": 17}), "n 必须在 1 到 16 之间"),
        (json!({"prompt": "p", "n": 0}), "n 必须在 1 到 16 之间"),
        (json!({"prompt": "p", "size": "big"}), "size 应为"),
        (
            json!({"prompt": "p", "response_format": "png"}),
            "response_format",
        ),
        (
            json!({"prompt": "p", "aspect_ratio": "7:3"}),
            "不支持的宽高比",
        ),
    ];
    for (body, expected) in cases {
        let (status, body) = app.post_json("/v1/images/generations", body).await;
        assert_eq!(status, 400, "{expected}：{body}");
        assert!(message(&body).contains(expected), "{expected}：{body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
    nothing_saved(&app);
}

#[tokio::test]
async fn v1_edits_refuses_mask_non_images_missing_images_and_too_many() {
    let app = App::new("").await;
    let image = || -> Field { ("image", "a.png", png()) };
    let text = |name: &'static str, value: &str| -> Field { (name, "", value.as_bytes().to_vec()) };
    let seventeen: Vec<_> = std::iter::once(text("prompt", "x"))
        .chain((0..17).map(|_| ("image[]", "a.png", png())))
        .collect();
    let cases: Vec<(Vec<Field>, &str)> = vec![
        (
            vec![text("prompt", "x"), image(), ("mask", "m.png", png())],
            "mask",
        ),
        (
            vec![text("prompt", "x"), ("image", "a.png", b"hello".to_vec())],
            "不是可识别的图片",
        ),
        (vec![text("prompt", "x")], "缺少参考图"),
        (
            vec![text("prompt", "x"), text("n", "many"), image()],
            "n 必须",
        ),
        (vec![text("prompt", ""), image()], "prompt 不能为空"),
        (seventeen, "参考图最多 16 张"),
    ];
    for (fields, expected) in cases {
        let (status, body) = json_of(app.send(multipart(&fields)).await).await;
        assert_eq!(status, 400, "{expected}：{body}");
        assert!(message(&body).contains(expected), "{expected}：{body}");
    }
    nothing_saved(&app);
}

#[tokio::test]
async fn studio_refuses_bad_submissions_and_queues_nothing() {
    let app = App::new("").await;
    let many_refs: Vec<String> = (0..17).map(|i| format!("{i:064x}")).collect();
    let cases = [
        (json!({"request": {"prompt": " "}}), "提示词不能为空"),
        (
            json!({"request": {"prompt": "字".repeat(LONG)}}),
            "最多 8000 个字符",
        ),
        (
            json!({"request": {"prompt": "p", "count": 17}}),
            "一次可以生成 1 到 16 张",
        ),
        (
            json!({"request": {"prompt": "p", "references": many_refs}}),
            "参考图最多 16 张",
        ),
        (
            json!({"request": {"prompt": "p", "references": ["abc"]}}),
            "不存在",
        ),
        (
            json!({"request": {"prompt": "p", "cuont": 4}}),
            "不认识的字段 cuont（可用的字段：prompt、",
        ),
    ];
    for (body, expected) in cases {
        let (status, body) = app.post_json("/api/submit_jobs", body).await;
        assert_eq!(status, 400, "{expected}：{body}");
        assert!(message(&body).contains(expected), "{expected}：{body}");
    }
    assert!(app.state.jobs.snapshot().is_empty(), "什么都不排队");
    let (status, body) = app
        .post_json("/api/generate_image", json!({"request": {"prompt": ""}}))
        .await;
    assert_eq!((status, message(&body)), (400, "提示词不能为空"));
    // 拼错字段名：400 说出是哪个字段，不会悄悄生成一张不带参考图（却照样付费）的图。
    let (status, body) = app
        .post_json(
            "/api/generate_image",
            json!({"request": {"prompt": "p", "reference_ids": ["abc"]}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        message(&body).contains(
            "不认识的字段 reference_ids（可用的字段：prompt、aspect_ratio、image_size、references"
        ),
        "{body}"
    );
    nothing_saved(&app);
}

/// 服务器函数自己读请求体：`/api/*` 另有 8 MB 的上限，超了 413，什么都不做。
#[tokio::test]
async fn oversized_api_bodies_are_refused() {
    let app = App::new("").await;
    let huge = format!("{{\"data\":\"{}\"}}", "x".repeat(9 << 20));
    let request = Request::post("/api/import_prompts")
        .header("content-type", "application/json")
        .header("content-length", huge.len().to_string())
        .body(Body::from(huge))
        .unwrap();
    let (status, body) = json_of(app.send(request).await).await;
    assert_eq!(status, 413, "{body}");
    assert!(message(&body).contains("/api 的上限 8 MB"), "{body}");
}

/// 方法不对：405，带 `Allow`，错误体是 OpenAI 的形状（中文说明），客户端照常能解析。
#[tokio::test]
async fn wrong_method_on_v1_is_a_405_with_an_openai_error() {
    let app = App::new("").await;
    for path in [
        "/v1/images/generations",
        "/v1/images/edits",
        "/v1/chat/completions",
    ] {
        for method in ["GET", "PUT", "DELETE"] {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            let response = app.send(request).await;
            let allow = response.headers().get("allow").cloned();
            let (status, body) = json_of(response).await;
            assert_eq!(status, 405, "{method} {path}");
            assert_eq!(allow.as_ref().and_then(|v| v.to_str().ok()), Some("POST"));
            assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
            assert_eq!(body["error"]["code"], "method_not_allowed");
            assert!(message(&body).contains("POST"), "{body}");
        }
    }
    let request = Request::post("/v1/models").body(Body::empty()).unwrap();
    let (status, body) = json_of(app.send(request).await).await;
    assert_eq!((status, message(&body)), (405, "这个接口只接受 GET 请求"));
}

/// 第一次打开：空的工作台有简短的上手提示，空的图库说“还没有图片”并指向工作台。
#[tokio::test]
async fn empty_pages_tell_a_new_user_what_to_do() {
    let app = App::new("").await;
    let app = &app;
    let page = |path: &'static str| async move {
        let response = app
            .send(Request::get(path).body(Body::empty()).unwrap())
            .await;
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    };
    let studio = page("/").await;
    assert!(
        studio.contains("studio-hint") && studio.contains("参考图"),
        "工作台的上手提示"
    );
    let gallery = page("/gallery").await;
    assert!(gallery.contains("还没有图片"), "空图库的提示");
    assert!(gallery.contains("去工作台生成第一张"));
}
