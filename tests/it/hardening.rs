//! 加固（第二轮）：对着真正的二进制，以不怀好意的调用方的做法——一个请求拿不走服务器的内存、花不了主人的额度；
//! 端口与别人共用时默认是安全的。内存看进程的峰值（VmHWM）：拒绝之前涨了多少。

use crate::common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// 峰值内存涨了多少 MB（从 `before` KB 算起）。
fn grown_mb(server: &Running, before: u64) -> u64 {
    peak_kb(server.child.id().unwrap()).saturating_sub(before) / 1024
}

/// 一个 43 字节的 GIF，声明 `w × h` 的画布（只有一个像素的数据）：不设上限解码要 `w × h × 4` 字节。
fn gif_bomb(w: u16, h: u16) -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&w.to_le_bytes());
    gif.extend_from_slice(&h.to_le_bytes());
    gif.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    gif.extend_from_slice(&[0x2C, 0, 0, 0, 0, 1, 0, 1, 0, 0]);
    gif.extend_from_slice(&[0x02, 0x02, 0x44, 0x01, 0x00, 0x3B]);
    gif
}

/// 变量展开的炸弹：2,666 个 `{a}`，值很长。以前先拼出整条提示词再查长度（1 MB 的值要 2.6 GB），
/// 现在先算长度、点名变量，立即 400；内存几乎不动。
#[tokio::test]
async fn an_expansion_bomb_is_refused_at_once_without_memory() {
    let ws = Workspace::new("");
    let server = ws.serve().await;
    let template = "{a}".repeat(2666);
    // 1. 一个 8,000 字的值（不超过单个值的上限）：填进去是两千多万字。
    // 2. 一个 1 MB 的值：单个值就超了上限。
    for (value, needle) in [
        ("字".repeat(8000), "填入变量“a”后提示词太长了"),
        ("x".repeat(1 << 20), "变量“a”的值太长了"),
    ] {
        let before = peak_kb(server.child.id().unwrap());
        let started = Instant::now();
        let (status, body) = call(
            &server,
            "expand_prompt",
            json!({"request": {"prompt": template, "variables": {"a": [value]}}}),
        )
        .await;
        let took = started.elapsed();
        let grown = grown_mb(&server, before);
        eprintln!("展开炸弹：{status}，{took:?}，峰值内存 +{grown} MB");
        assert_eq!(status, 400, "{body}");
        assert!(body["message"].as_str().unwrap().contains(needle), "{body}");
        assert!(grown < 40, "拒绝之前峰值内存涨了 {grown} MB");
    }
}

/// 设了工作台密码、没有 `/v1` 密钥：`/v1` 不再对能访问端口的人开放（401）；明写 `open_v1 = true` 才开放。
#[tokio::test]
async fn a_studio_password_without_v1_keys_closes_v1() {
    let demo = demo_upstream(&[]).await;
    let hash = hash_password("工作台密码-123");
    let config = |extra: &str| {
        format!(
            "[auth]\nstudio_password_hash = \"{hash}\"\n{extra}\n\n[[upstreams]]\nname = \"替身\"\nbase_url = \"{}\"\n",
            demo.url
        )
    };
    let ws = Workspace::new(&config(""));
    let server = ws.serve().await;
    let res = v1_generate(&server, None, json!({"prompt": "蹭额度"})).await;
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("还没有 API 密钥"),
        "{body}"
    );
    drop(server);
    let open = Workspace::new(&config("open_v1 = true"));
    let server = open.serve().await;
    let res = v1_generate(&server, None, json!({"prompt": "明写开放"})).await;
    assert_eq!(res.status(), 200);
}

/// 没设管理员密码时，经代理来的请求（带代理头，对端是本机）不再是管理员：没有会话 403（说明用登录链接）；
/// 配置了可信代理（前面有 nginx）时设置页一律 403、要先设密码；启动时打印的登录链接只在只有本机可达时给出、可用。
#[tokio::test]
async fn no_admin_password_means_no_admin_behind_a_proxy() {
    let ws = Workspace::new("");
    let server = ws.serve_with_env(&[("FACTORY_ADMIN_TOKEN", "")]).await;
    let settings = |headers: Vec<(&'static str, String)>| {
        let mut req = reqwest::Client::new()
            .post(format!("{}/api/admin/get_settings", server.url))
            .header("origin", &server.url)
            .timeout(Duration::from_secs(10))
            .json(&json!({}));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    for proxy in ["x-forwarded-for", "forwarded", "x-real-ip"] {
        let res = settings(vec![(proxy, "203.0.113.7".into())]).await.unwrap();
        assert_eq!(res.status(), 403, "{proxy}");
    }
    // 运维打开启动时终端里打印的那个链接（每次启动随机生成）。
    let started = Instant::now();
    let link = loop {
        let logs = server.logs.lock().unwrap().clone();
        if let Some(line) = logs.lines().find(|l| l.contains("/admin/token?token=")) {
            break line.trim().to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "没打印登录链接"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!link.contains(TEST_ADMIN_TOKEN), "令牌是随机的");
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&link)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/settings");
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let cookie = cookie.split(';').next().unwrap().to_string();
    let res = settings(vec![("cookie", cookie)]).await.unwrap();
    assert_eq!(res.status(), 200);
    drop(server);

    let proxied = Workspace::new("[server]\ntrusted_proxies = [\"127.0.0.1\"]\n");
    let server = proxied.serve().await;
    assert_eq!(
        admin_cookie(&server).await,
        None,
        "在代理之后，登录链接不认"
    );
    let (status, body) = admin(&server, "get_settings", json!({})).await;
    assert_eq!(status, 403, "{body}");
    let logs = server.logs.lock().unwrap().clone();
    assert!(
        !logs.contains("/admin/token?token="),
        "在代理之后不打印登录链接"
    );
}

/// 设置页把上游的地址改到别的主机、密钥留空：拒绝保存（400），存着的密钥一次也不会发到那个主机。
#[tokio::test]
async fn a_moved_upstream_never_carries_its_stored_key() {
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let demo = demo_upstream(&[]).await;
    let stranger = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
        .mount(&stranger)
        .await;
    let ws = Workspace::new(&format!(
        "[[upstreams]]\nname = \"替身\"\nbase_url = \"{}\"\napi_key = \"sk-stored-secret-77\"\n",
        demo.url
    ));
    let server = ws.serve().await;
    let (_, view) = admin(&server, "get_settings", json!({})).await;
    let mut upstreams = view["upstreams"].clone();
    upstreams[0]["base_url"] = json!(stranger.uri());
    let update = json!({"update": {"upstreams": upstreams, "storage_root": view["storage_root"],
        "numbers": view["numbers"], "flags": view["flags"], "listen": view["listen"]}});
    let file = ws.path().join("factory.toml");
    let before = std::fs::read(&file).unwrap();
    let (status, err) = admin(&server, "save_settings", update).await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("127.0.0.1"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
    let (status, _) = studio_generate(&server, "改地址之后").await;
    assert_eq!(status, 200);
    assert!(
        stranger.received_requests().await.unwrap().is_empty(),
        "新地址一个请求都没收到"
    );
}

/// 一个 43 字节、声明 11000 × 11000 画布的 GIF：解码之前就按尺寸拒绝（400），内存几乎不动；
/// 一个 200 MB 的表单字段：读到每张的上限就停（413），不整个读进内存。
#[tokio::test]
async fn image_bombs_and_huge_fields_are_refused_before_they_cost_memory() {
    let ws = Workspace::new("");
    let server = ws.serve().await;
    let bomb = gif_bomb(11_000, 11_000);
    assert!(bomb.len() <= 100);
    let before = peak_kb(server.child.id().unwrap());
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bomb).file_name("炸弹.gif"),
    );
    let res = reqwest::Client::new()
        .post(format!("{}/uploads", server.url))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("11000 × 11000"),
        "{body}"
    );
    let grown = grown_mb(&server, before);
    eprintln!("GIF 炸弹：峰值内存 +{grown} MB");
    assert!(grown < 10, "峰值内存涨了 {grown} MB");
    assert!(
        files_under(&ws.storage().join("uploads")).is_empty(),
        "什么都没存"
    );

    // 200 MB 的参考图字段，一块一块地发（测试进程也不占 200 MB）。
    const TOTAL: usize = 200 << 20;
    const CHUNK: usize = 1 << 20;
    let chunks = futures::stream::iter(
        (0..TOTAL / CHUNK).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; CHUNK]))),
    );
    let part = reqwest::multipart::Part::stream_with_length(
        reqwest::Body::wrap_stream(chunks),
        TOTAL as u64,
    )
    .file_name("大.png")
    .mime_str("image/png")
    .unwrap();
    let form = reqwest::multipart::Form::new()
        .text("prompt", "很大的参考图")
        .part("image", part);
    let before = peak_kb(server.child.id().unwrap());
    let send = reqwest::Client::new()
        .post(format!("{}/v1/images/edits", server.url))
        .multipart(form)
        .timeout(Duration::from_secs(120))
        .send();
    expect_413(&server, "/v1/images/edits", send).await;
    let grown = grown_mb(&server, before);
    eprintln!("200 MB 的字段：峰值内存 +{grown} MB");
    assert!(grown < 60, "峰值内存涨了 {grown} MB（每张上限 20 MB）");

    // JSON 的请求体有自己的上限（对话里的 data URL 参考图也算在内），超了 413，不先解析。
    let big = format!(
        "{{\"model\":\"x\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
        "字".repeat(12 << 20)
    );
    let send = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.url))
        .header("content-type", "application/json")
        .body(big)
        .timeout(Duration::from_secs(60))
        .send();
    expect_413(&server, "/v1/chat/completions", send).await;
}

/// 发一个太大的请求，要服务器回 413。服务器读到上限就回答并关掉连接，不读完剩下的（不为它花时间与内存），
/// 客户端还在写时可能只看到连接被断开：这时从服务器的 `/metrics` 确认它回的是 413。
async fn expect_413(
    server: &Running,
    route: &str,
    send: impl std::future::Future<Output = reqwest::Result<reqwest::Response>>,
) {
    let line = format!("http_requests_total{{route=\"{route}\",status=\"413\"}}");
    let before = metric(server, &line).await.unwrap_or(0.0);
    match send.await {
        Ok(res) => assert_eq!(res.status(), 413),
        Err(e) => {
            assert!(e.is_request() || e.is_body(), "{e}");
            let started = Instant::now();
            while metric(server, &line).await.unwrap_or(0.0) <= before {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "连接断了，服务器却没有回 413：{e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// 改工作台密码（真正的二进制，经配置文件手工改）：已登录的会话立即作废；登录页的 `next` 只跟本站的路径。
#[tokio::test]
async fn a_password_change_ends_open_sessions_and_next_stays_on_site() {
    let first = hash_password("第一个工作台密码");
    let ws = Workspace::new(&format!(
        "[server]\nmetrics_public = true\n\n[auth]\nstudio_password_hash = \"{first}\"\n"
    ));
    let server = ws.serve().await;
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{}/login", server.url))
        .json(&json!({"password": "第一个工作台密码"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let list = || {
        client
            .post(format!("{}/api/list_images", server.url))
            .header("cookie", &cookie)
            .json(&json!({"query": {}}))
            .send()
    };
    assert_eq!(list().await.unwrap().status(), 200);

    let before = config_reloads(&server, "applied").await;
    let second = hash_password("第二个工作台密码");
    ws.write_config(&format!(
        "[server]\nmetrics_public = true\n\n[auth]\nstudio_password_hash = \"{second}\"\n"
    ));
    wait_for_config_reload(&server, "applied", before).await;
    assert_eq!(list().await.unwrap().status(), 401, "旧会话作废");

    // 登录页：`next` 指向别的网站（`/\evil.example` 在浏览器里就是 `//evil.example`）时，登录后回首页。
    let page = client
        .get(format!("{}/login?next=/%5Cevil.example", server.url))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("登录绘图工厂"), "{page}");
    assert!(!page.contains("evil.example"), "页面里不带外站地址");
    let page = client
        .get(format!("{}/login?next=/gallery", server.url))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("/gallery"), "站内的照常");
}
