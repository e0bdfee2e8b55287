//! 输入面的性质测试（proptest）：随机与变形的输入送进批量展开、`/v1` 与 `/api` 的 JSON 请求、multipart 表单、
//! 四种上游方言的响应解码、参考图的识别与解码。要求：
//! - 不崩：处理函数里的 panic 让测试失败；
//! - 每个拒绝都是有类型的错误：HTTP 状态在 400–599，响应体是 OpenAI 形状（`/v1`、`/uploads`）或服务器函数的形状（`/api`），
//!   带非空的中文说明；
//! - 有界：展开的任务数不超过上限、每条提示词不超过上限；解码出的图不超过边长上限。
//!
//! 每个目标跑 `PROPTEST_CASES` 个用例（默认 24，CI 里几秒）；基准命令 `bash bench/run.sh` 以 `PROPTEST_CASES=1000` 多跑。
//! 上游用 wiremock 回放 `tests/fixtures/wire/` 里取自各家公开材料的响应体（及其变形）。

use crate::common::in_process::{json_of, App};
use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Value};
use wiremock::matchers::any as any_request;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn config() -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(24),
        // 失败的用例不写进仓库里的文件（proptest 会打印最小的反例）。
        failure_persistence: None,
        ..Config::default()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// 任意的 JSON 值（深度与大小有限）。
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("有限", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        "[{}a-z_ 风格季节]{0,30}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("prompt".to_string()),
                    Just("n".to_string()),
                    Just("size".to_string()),
                    Just("model".to_string()),
                    Just("messages".to_string()),
                    Just("variables".to_string()),
                    Just("count".to_string()),
                    Just("references".to_string()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// 一个有类型的错误：状态 400–599，说明非空。`/v1` 与 `/uploads` 是 OpenAI 形状，`/api` 是服务器函数的形状。
fn typed_error(status: u16, body: &Value) -> Result<(), TestCaseError> {
    prop_assert!((400..600).contains(&status), "状态 {status}：{body}");
    let message = body["error"]["message"]
        .as_str()
        .or(body["message"].as_str())
        .unwrap_or("");
    prop_assert!(!message.trim().is_empty(), "没有说明：{status} {body}");
    if body.get("error").is_some() {
        prop_assert!(body["error"]["type"].is_string(), "{body}");
        prop_assert!(body["error"]["code"].is_string(), "{body}");
    }
    Ok(())
}

/// 回答一个小 PNG 的 Gemini 上游（JSON 与表单的测试不关心上游，只要它快）。
async fn quick_upstream() -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(any_request())
        .respond_with(ResponseTemplate::new(200).set_body_json(crate::common::gemini_ok_body()))
        .mount(&mock)
        .await;
    mock
}

fn app_config(kind: &str, url: &str) -> String {
    format!(
        "[retry]\nmax_attempts = 1\nretry_maybe_billed = false\nbreaker_failures = 1000\n\n\
         [timeouts]\nattempt_s = 10\ntotal_s = 20\n\n\
         [[upstreams]]\nname = \"上游\"\nkind = \"{kind}\"\nbase_url = \"{url}\"\napi_key = \"k\"\n"
    )
}

#[test]
fn batch_expansion_never_panics_and_stays_bounded() {
    use drafting_factory::types::batch::{plan, SubmitRequest, VariableMode};
    use drafting_factory::types::limits::MAX_PROMPT_CHARS;
    let piece = prop_oneof![
        "[a-z风格 ]{0,20}",
        Just("{a}".to_string()),
        Just("{风格}".to_string()),
        Just("{{".to_string()),
        Just("}}".to_string()),
        Just("{".to_string()),
        "\\{[a-z]{0,40}\\}",
    ];
    let template = prop::collection::vec(piece, 0..40).prop_map(|p| p.concat());
    let values = prop::collection::vec(
        prop_oneof!["[a-z春冬]{0,12}", "x{0,3000}".prop_map(|s: String| s)],
        0..6,
    );
    let strategy = (
        template,
        prop::collection::vec(prop::collection::btree_map("a|风格|b", values, 0..3), 0..1),
        any::<bool>(),
        1u32..20,
        1u32..300,
    );
    TestRunner::new(config())
        .run(&strategy, |(template, vars, zip, count, max_jobs)| {
            let req = SubmitRequest {
                prompt: template,
                variables: vars.into_iter().next().unwrap_or_default(),
                variable_mode: if zip {
                    VariableMode::Zip
                } else {
                    VariableMode::Cartesian
                },
                count,
                ..SubmitRequest::default()
            };
            match plan(&req, max_jobs) {
                Ok(planned) => {
                    prop_assert!(planned.jobs.len() as u32 <= max_jobs);
                    for job in &planned.jobs {
                        prop_assert!(job.prompt.chars().count() <= MAX_PROMPT_CHARS);
                        prop_assert!(!job.prompt.trim().is_empty());
                    }
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn json_requests_get_an_answer_or_a_typed_error() {
    let rt = runtime();
    let (app, _mock) = rt.block_on(async {
        let mock = quick_upstream().await;
        (App::new(&app_config("gemini", &mock.uri())).await, mock)
    });
    let paths = prop_oneof![
        Just("/v1/images/generations"),
        Just("/v1/chat/completions"),
        Just("/api/submit_jobs"),
        Just("/api/expand_prompt"),
    ];
    let body = prop_oneof![
        any_json().prop_map(|v| v.to_string().into_bytes()),
        any_json().prop_map(|v| json!({"request": v}).to_string().into_bytes()),
        prop::collection::vec(any::<u8>(), 0..200),
    ];
    TestRunner::new(config())
        .run(&(paths, body), |(path, body)| {
            rt.block_on(async {
                let request = Request::post(path)
                    .header("content-type", "application/json")
                    .body(Body::from(body))
                    .unwrap();
                let (status, answer) = json_of(app.send(request).await).await;
                if status >= 300 {
                    typed_error(status, &answer)?;
                }
                Ok(())
            })
        })
        .unwrap();
}

/// 一个 multipart 表单的一部分：字段名、可选的文件名、内容。
fn any_part() -> impl Strategy<Value = (String, Option<String>, Vec<u8>)> {
    let name = prop_oneof![
        Just("image".to_string()),
        Just("image[]".to_string()),
        Just("file".to_string()),
        Just("prompt".to_string()),
        Just("n".to_string()),
        Just("size".to_string()),
        Just("mask".to_string()),
        "[a-z_]{1,8}",
    ];
    let content = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        "[a-z0-9 风格]{0,40}".prop_map(String::into_bytes),
        image_bytes(),
    ];
    (
        name,
        prop::option::of("[a-z]{1,8}\\.(png|gif|jpg)"),
        content,
    )
}

/// 变形的图片字节：真图、改了尺寸的文件头、截断、翻转一个字节。
fn image_bytes() -> impl Strategy<Value = Vec<u8>> {
    let png = {
        let mut out = Vec::new();
        image::DynamicImage::ImageRgb8(image::RgbImage::new(4, 3))
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    };
    let gif = {
        let mut gif = b"GIF89a".to_vec();
        gif.extend_from_slice(&[4, 0, 3, 0, 0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
        gif.extend_from_slice(&[
            0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3B,
        ]);
        gif
    };
    (
        prop_oneof![Just(png), Just(gif)],
        any::<u16>(),
        any::<u16>(),
        0usize..200,
        any::<u8>(),
        0u8..4,
    )
        .prop_map(|(mut data, w, h, at, byte, how)| {
            match how {
                // 改文件头里的宽高（PNG 在 16..24，GIF 在 6..10）。
                0 if data.starts_with(b"GIF") => {
                    data[6..8].copy_from_slice(&w.to_le_bytes());
                    data[8..10].copy_from_slice(&h.to_le_bytes());
                }
                0 => {
                    data[16..20].copy_from_slice(&u32::from(w).to_be_bytes());
                    data[20..24].copy_from_slice(&u32::from(h).to_be_bytes());
                }
                1 => data.truncate(at.min(data.len())),
                2 => {
                    let i = at % data.len();
                    data[i] ^= byte;
                }
                _ => {}
            }
            data
        })
}

fn multipart(parts: &[(String, Option<String>, Vec<u8>)], boundary: &str, cut: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file, content) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let file = file
            .as_ref()
            .map(|f| format!("; filename=\"{f}\""))
            .unwrap_or_default();
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    // 有时截掉结尾（客户端发到一半）。
    if cut > 0 {
        body.truncate(body.len().saturating_sub(cut));
    }
    body
}

#[test]
fn multipart_forms_get_an_answer_or_a_typed_error() {
    let rt = runtime();
    let (app, _mock) = rt.block_on(async {
        let mock = quick_upstream().await;
        (App::new(&app_config("gemini", &mock.uri())).await, mock)
    });
    let strategy = (
        prop_oneof![Just("/v1/images/edits"), Just("/uploads")],
        prop::collection::vec(any_part(), 0..5),
        "[a-zA-Z0-9]{1,30}",
        prop_oneof![Just(0usize), 1usize..40],
    );
    TestRunner::new(config())
        .run(&strategy, |(path, parts, boundary, cut)| {
            rt.block_on(async {
                let request = Request::post(path)
                    .header(
                        "content-type",
                        format!("multipart/form-data; boundary={boundary}"),
                    )
                    .body(Body::from(multipart(&parts, &boundary, cut)))
                    .unwrap();
                let (status, answer) = json_of(app.send(request).await).await;
                if status >= 300 {
                    typed_error(status, &answer)?;
                }
                Ok(())
            })
        })
        .unwrap();
}

/// 一种方言的样例响应体（`tests/fixtures/wire/<目录>/`）与它们的 HTTP 状态（按文件名里的状态码，成功的是 200）。
fn fixtures(dir: &str) -> Vec<(u16, Vec<u8>)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wire");
    let mut all = Vec::new();
    for entry in std::fs::read_dir(root.join(dir)).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let status = name
            .strip_prefix("error_")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or(200);
        all.push((status, std::fs::read(&path).unwrap()));
    }
    assert!(!all.is_empty(), "{dir} 里没有样例");
    all
}

/// 把 JSON 里随便一个值换成别的（保持其余不变）。
fn replace_somewhere(value: &mut Value, pick: &mut usize, with: &Value) -> bool {
    if *pick == 0 {
        *value = with.clone();
        return true;
    }
    *pick -= 1;
    match value {
        Value::Array(items) => items.iter_mut().any(|v| replace_somewhere(v, pick, with)),
        Value::Object(map) => map.values_mut().any(|v| replace_somewhere(v, pick, with)),
        _ => false,
    }
}

#[test]
fn every_dialect_decodes_mutated_provider_answers_into_images_or_typed_errors() {
    let rt = runtime();
    for (kind, dir) in [
        ("gemini", "gemini"),
        ("openai-images", "openai"),
        ("openai-chat", "openai"),
        ("doubao", "ark"),
    ] {
        let samples = fixtures(dir);
        let (app, mock) = rt.block_on(async {
            let mock = MockServer::start().await;
            (App::new(&app_config(kind, &mock.uri())).await, mock)
        });
        let strategy = (
            0..samples.len(),
            prop_oneof![
                Just(None),
                prop_oneof![
                    Just(200u16),
                    Just(400),
                    Just(401),
                    Just(404),
                    Just(429),
                    Just(500),
                    Just(503)
                ]
                .prop_map(Some)
            ],
            0u8..5,
            any::<usize>(),
            any_json(),
            any::<u8>(),
        );
        TestRunner::new(config())
            .run(&strategy, |(i, status, how, at, value, byte)| {
                let (fixture_status, original) = &samples[i];
                let mut body = original.clone();
                match how {
                    0 => {}
                    1 => body.truncate(at % (body.len() + 1)),
                    2 => {
                        let j = at % body.len();
                        body[j] ^= byte.max(1);
                    }
                    3 => {
                        let mut parsed: Value = serde_json::from_slice(original).unwrap();
                        let mut pick = at % 64;
                        replace_somewhere(&mut parsed, &mut pick, &value);
                        body = parsed.to_string().into_bytes();
                    }
                    _ => body = value.to_string().into_bytes(),
                }
                let status = status.unwrap_or(*fixture_status);
                rt.block_on(async {
                    mock.reset().await;
                    Mock::given(any_request())
                        .respond_with(
                            ResponseTemplate::new(status)
                                .set_body_raw(body.clone(), "application/json"),
                        )
                        .mount(&mock)
                        .await;
                    let (code, answer) = app
                        .post_json(
                            "/v1/images/generations",
                            json!({"prompt": "变形的上游回答", "response_format": "b64_json"}),
                        )
                        .await;
                    if code == 200 {
                        prop_assert!(answer["data"].as_array().is_some_and(|d| !d.is_empty()));
                    } else {
                        typed_error(code, &answer)?;
                    }
                    Ok(())
                })
            })
            .unwrap_or_else(|e| panic!("{kind}：{e}"));
    }
}

#[test]
fn reference_images_are_sniffed_and_decoded_within_bounds() {
    use drafting_factory::decode::MAX_DECODE_SIDE;
    let rt = runtime();
    let strategy = prop_oneof![image_bytes(), prop::collection::vec(any::<u8>(), 0..400)];
    TestRunner::new(config())
        .run(&strategy, |data| {
            if let Ok(image) = drafting_factory::decode::decode(&data, None) {
                prop_assert!(image.width() <= MAX_DECODE_SIDE && image.height() <= MAX_DECODE_SIDE);
            }
            rt.block_on(async {
                match drafting_factory::web::accept_image(data.into(), 1 << 20, 1).await {
                    Ok(image) => prop_assert!(matches!(
                        image.mime.as_str(),
                        "image/png" | "image/jpeg" | "image/webp"
                    )),
                    Err(e) => prop_assert!(!e.to_string().is_empty()),
                }
                Ok(())
            })
        })
        .unwrap();
}
