//! 访问控制与恶意浏览器防护：工作台密码守住每个工作台入口、签名图片链接、Host 白名单、同源、
//! 管理员接口、登录 Cookie 的属性、各种上限（排队、张数、连接、打包、请求体、上游响应）、不跟随重定向。

use crate::common::in_process::{json_of, App};
use crate::common::*;
use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const STUDIO_PASSWORD: &str = "工作台密码-123";

/// 测试放进临时站点目录的样式表的内容。
const SITE_CSS: &str = "/* 访问控制测试的样式表 */ body { color: rebeccapurple; }\n";

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// 以工作台密码启动、连着一个演示上游的服务器。
async fn locked_server(extra: &str) -> (Running, Workspace, Running) {
    locked_server_with_env(extra, &[]).await
}

/// 同上，另加环境变量。
async fn locked_server_with_env(
    extra: &str,
    env: &[(&str, &str)],
) -> (Running, Workspace, Running) {
    let demo = demo_upstream(&[]).await;
    let hash = hash_password(STUDIO_PASSWORD);
    let config = format!(
        "[auth]\nstudio_password_hash = \"{hash}\"\n{extra}\n[storage]\nroot = \"storage\"\n\n[[upstreams]]\nname = \"替身\"\nbase_url = \"{}\"\n",
        demo.url
    );
    let ws = Workspace::new(&config);
    let server = ws.serve_with_env(env).await;
    (demo, ws, server)
}

/// 登录工作台，返回会话 Cookie 的原样 `Set-Cookie` 与 `Cookie` 头用的 `名=值`。
async fn login(server: &Running, password: &str) -> (u16, Option<String>) {
    let res = http()
        .post(format!("{}/login", server.url))
        .json(&json!({ "password": password }))
        .send()
        .await
        .unwrap();
    let cookie = res
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_string());
    (res.status().as_u16(), cookie)
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// 每个工作台入口：没有会话时页面跳登录页、其他 401；有会话时照常；登出后立刻失效。
#[tokio::test]
async fn a_studio_password_guards_every_studio_surface() {
    // 页面的静态文件放在一个临时的站点目录里（LEPTOS_SITE_ROOT），内容已知：不依赖有没有构建过浏览器端。
    let site = tempfile::tempdir().unwrap();
    std::fs::create_dir(site.path().join("pkg")).unwrap();
    std::fs::write(site.path().join("pkg/drafting-factory.css"), SITE_CSS).unwrap();
    let (_demo, _ws, server) =
        locked_server_with_env("", &[("LEPTOS_SITE_ROOT", site.path().to_str().unwrap())]).await;
    let get = |path: &str, cookie: Option<&str>| {
        let mut req = http()
            .get(format!("{}{path}", server.url))
            .header("accept", "text/html");
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send()
    };
    let post = |path: &str, body: Value, cookie: Option<&str>| {
        let mut req = http().post(format!("{}{path}", server.url)).json(&body);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        req.send()
    };
    let fake_id = "0".repeat(32);

    // 没有会话。
    for page in ["/", "/gallery"] {
        let res = get(page, None).await.unwrap();
        assert_eq!(res.status(), 303, "{page}");
        let location = res.headers()["location"].to_str().unwrap();
        assert!(location.starts_with("/login?next="), "{location}");
    }
    for (path, body) in [
        ("/api/list_images", json!({"query": {}})),
        ("/api/submit_jobs", json!({"request": {"prompt": "没登录"}})),
        ("/api/empty_trash", json!({})),
    ] {
        let res = post(path, body, None).await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
    }
    for path in [
        format!("/files/{fake_id}"),
        format!("/files/{fake_id}/thumb"),
        format!("/files/zip?ids={fake_id}"),
        format!("/uploads/{}", "0".repeat(64)),
    ] {
        assert_eq!(get(&path, None).await.unwrap().status(), 401, "{path}");
    }
    let upload = http()
        .post(format!("{}/uploads", server.url))
        .multipart(reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(vec![1, 2, 3]).file_name("a.png"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 401);
    let ws_url = server.url.replace("http://", "ws://") + "/ws";
    let refused = tokio_tungstenite::connect_async(&ws_url).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401),
        "/ws 的握手应被拒绝：{refused:?}"
    );
    // 开放的：健康检查、登录页、页面的静态文件（没有会话也原样给出）。
    for path in ["/healthz", "/login"] {
        assert_eq!(get(path, None).await.unwrap().status(), 200, "{path}");
    }
    let css = get("/pkg/drafting-factory.css", None).await.unwrap();
    assert_eq!(css.status(), 200, "页面的样式表不需要登录");
    assert_eq!(
        css.text().await.unwrap(),
        SITE_CSS,
        "给出的是站点目录里的那个文件"
    );

    // 登录：错的密码至少 0.5 秒后 401，对的得到 HttpOnly、SameSite=Lax 的会话 Cookie。
    let started = Instant::now();
    assert_eq!(login(&server, "不对").await.0, 401);
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "失败的登录要放慢"
    );
    let (status, set_cookie) = login(&server, STUDIO_PASSWORD).await;
    assert_eq!(status, 204);
    let set_cookie = set_cookie.expect("登录后应设置会话 Cookie");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(
        !set_cookie.contains("Secure"),
        "直接经 http 访问时不加 Secure：{set_cookie}"
    );
    let cookie = cookie_pair(&set_cookie);

    // 有会话：都能用。
    assert_eq!(get("/", Some(&cookie)).await.unwrap().status(), 200);
    let res = post("/api/list_images", json!({"query": {}}), Some(&cookie))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            ws_url.as_str(),
        )
        .unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("有会话时可以连 /ws");
    use futures::StreamExt;
    let first = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.to_text().unwrap().contains("\"snapshot\""));
    let (status, saved) = {
        let res = post(
            "/api/generate_image",
            json!({"request": {"prompt": "登录之后"}}),
            Some(&cookie),
        )
        .await
        .unwrap();
        let status = res.status().as_u16();
        (status, res.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 200, "{saved}");
    let image = saved["url"].as_str().unwrap().to_string();
    assert_eq!(get(&image, Some(&cookie)).await.unwrap().status(), 200);
    assert_eq!(
        get(&image, None).await.unwrap().status(),
        401,
        "没有会话也没有签名"
    );

    // 登出：同一个 Cookie 立刻失效。
    let res = http()
        .post(format!("{}/logout", server.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(get("/", Some(&cookie)).await.unwrap().status(), 303);
    assert_eq!(get(&image, Some(&cookie)).await.unwrap().status(), 401);
}

/// `/v1` 给出的图片链接带签名：没有会话也能打开；改了签名或过了期限就 401。
#[tokio::test]
async fn signed_image_links_open_without_a_session_until_changed_or_expired() {
    let (_demo, ws, server) = locked_server("open_v1 = true").await;
    let res = v1_generate(
        &server,
        None,
        json!({"prompt": "签名链接", "response_format": "url"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let url = body["data"][0]["url"].as_str().unwrap().to_string();
    assert!(url.contains("?exp=") && url.contains("&sig="), "{url}");
    let png = http().get(&url).send().await.unwrap();
    assert_eq!(png.status(), 200);
    assert_eq!(png.headers()["content-type"], "image/png");

    // 改一位签名。
    let sig_at = url.find("sig=").unwrap() + 4;
    let mut tampered = url.clone();
    let c = if &url[sig_at..sig_at + 1] == "0" {
        "1"
    } else {
        "0"
    };
    tampered.replace_range(sig_at..sig_at + 1, c);
    assert_eq!(http().get(&tampered).send().await.unwrap().status(), 401);
    // 延长期限（签名不再对得上）。
    let exp: u64 = url
        .split("exp=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let extended = url.replace(&format!("exp={exp}"), &format!("exp={}", exp + 3600));
    assert_eq!(http().get(&extended).send().await.unwrap().status(), 401);
    // 用服务器的密钥给一个过去的期限签名：签名对，但已过期。
    // 密钥在数据库旁的文件里；元数据在 PostgreSQL 时在库里（各实例共用）。
    let key_hex = match &ws.postgres {
        None => std::fs::read_to_string(ws.storage().join("url-signing.key")).unwrap(),
        Some(_) => ws.db(|c| {
            c.query_one(
                "SELECT value FROM secrets WHERE name = 'url_signing'",
                params![],
                |r| r.get::<String>(0),
            )
        }),
    };
    let key: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&key_hex[i..i + 2], 16).unwrap())
        .collect();
    let id = url.split('?').next().unwrap().rsplit('/').next().unwrap();
    let past = 1_000_000u64;
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}:{past}").as_bytes());
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let expired = format!("{}/files/{id}?exp={past}&sig={sig}", server.url);
    assert_eq!(http().get(&expired).send().await.unwrap().status(), 401);
    // 同一把密钥、未来的期限：签名对就能打开（证明上面的 401 是因为过期，而不是算错了签名）。
    let future = exp + 60;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}:{future}").as_bytes());
    let sig: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let fresh = format!("{}/files/{id}?exp={future}&sig={sig}", server.url);
    assert_eq!(http().get(&fresh).send().await.unwrap().status(), 200);
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: Value) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let body = if body.is_null() {
        Body::empty()
    } else {
        Body::from(body.to_string())
    };
    builder.body(body).unwrap()
}

/// DNS 重绑定：别的域名的 Host 一律 421（页面、/api、/ws、设置接口）；IP 与 localhost 照常。
#[tokio::test]
async fn a_foreign_host_is_misdirected() {
    let app = App::new("").await;
    let evil = [
        ("host", "evil.example:3000"),
        ("content-type", "application/json"),
    ];
    for (method, path, body) in [
        ("GET", "/", Value::Null),
        ("GET", "/gallery", Value::Null),
        ("POST", "/api/list_images", json!({"query": {}})),
        ("GET", "/ws", Value::Null),
        ("POST", "/api/admin/get_settings", json!({})),
        ("GET", "/v1/models", Value::Null),
    ] {
        let response = app.send(request(method, path, &evil, body)).await;
        assert_eq!(response.status(), 421, "{method} {path}");
        // 守卫提前拒绝的响应也带安全头。
        assert_eq!(
            response.headers()["x-content-type-options"],
            "nosniff",
            "{method} {path}"
        );
    }
    let (status, body) = json_of(
        app.send(request(
            "POST",
            "/api/list_images",
            &evil,
            json!({"query": {}}),
        ))
        .await,
    )
    .await;
    assert_eq!(status, 421);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("server.allowed_hosts"),
        "{body}"
    );
    for host in ["localhost:3000", "127.0.0.1:3000", "[::1]:3000"] {
        let response = app
            .send(request("GET", "/healthz", &[("host", host)], Value::Null))
            .await;
        assert_eq!(response.status(), 200, "{host}");
    }
}

/// 跨站：别的网站的 Origin、跨站的 Sec-Fetch-Site、非 JSON 的 /api 请求都被拒绝，什么都没改变。
#[tokio::test]
async fn cross_site_requests_change_nothing() {
    let app = App::new("").await;
    let cases = [
        (
            vec![
                ("origin", "http://evil.example"),
                ("content-type", "application/json"),
            ],
            403,
        ),
        (
            vec![
                ("sec-fetch-site", "cross-site"),
                ("content-type", "application/json"),
            ],
            403,
        ),
        (vec![("content-type", "text/plain")], 415),
        (
            vec![("origin", "null"), ("content-type", "application/json")],
            403,
        ),
    ];
    for (headers, want) in cases {
        let response = app
            .send(request(
                "POST",
                "/api/submit_jobs",
                &headers,
                json!({"request": {"prompt": "跨站"}}),
            ))
            .await;
        assert_eq!(response.status(), want, "{headers:?}");
    }
    assert!(app.state.jobs.snapshot().is_empty(), "什么都没排队");
    // 本站页面的请求照常。
    let ok = app
        .send(request(
            "POST",
            "/api/list_images",
            &[
                ("origin", "http://127.0.0.1:3000"),
                ("content-type", "application/json"),
            ],
            json!({"query": {}}),
        ))
        .await;
    assert_eq!(ok.status(), 200);
}

/// 没设管理员密码时，“对端是本机”不再算管理员（本机上的反向代理、ssh -R、socat 让所有人都像本机）：
/// 设置页凭启动时打印的管理员登录链接进入；令牌不对 401；设置接口的改动请求必须带本站的 Origin。
#[tokio::test]
async fn settings_need_the_printed_admin_link_without_an_admin_password() {
    let app = App::new("").await;
    let call = |headers: Vec<(&'static str, String)>| {
        let mut r =
            Request::post("/api/admin/get_settings").header("content-type", "application/json");
        for (k, v) in headers {
            r = r.header(k, v);
        }
        r.body(Body::from("{}")).unwrap()
    };
    let origin = || ("origin", "http://127.0.0.1:3000".to_string());
    let (status, body) = json_of(app.send(call(vec![origin()])).await).await;
    assert_eq!(status, 403, "本机直接访问也要登录链接给的会话：{body}");
    assert!(
        body["message"].as_str().unwrap().contains("管理员登录链接"),
        "{body}"
    );
    let wrong = app
        .send(
            Request::get("/admin/token?token=不对的令牌")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(wrong.status(), 401);
    let cookie = app.admin_cookie().await.expect("登录链接给出管理员会话");
    let ok = app
        .send(call(vec![origin(), ("cookie", cookie.clone())]))
        .await;
    assert_eq!(ok.status(), 200);
    let remote = app
        .send_from(
            "192.168.1.20:5000".parse().unwrap(),
            call(vec![origin(), ("cookie", cookie.clone())]),
        )
        .await;
    assert_eq!(remote.status(), 200, "凭会话，与对端地址无关");
    let no_origin = app.send(call(vec![("cookie", cookie.clone())])).await;
    assert_eq!(no_origin.status(), 403, "管理员接口要明说来自本站");
    let foreign = app
        .send(call(vec![
            ("origin", "http://evil.example".into()),
            ("cookie", cookie),
        ]))
        .await;
    assert_eq!(foreign.status(), 403);
}

/// 端口可能被别人访问到（这里是配置了可信代理，说明前面有 nginx 之类）而没设管理员密码：
/// 设置页一律 403 并说明要先设密码，登录链接也不认——哪怕请求来自本机、不带任何代理头。
#[tokio::test]
async fn behind_a_proxy_settings_require_an_admin_password() {
    let app = App::new("[server]\ntrusted_proxies = [\"127.0.0.1\"]\n").await;
    assert_eq!(app.admin_cookie().await, None, "登录链接不认");
    let (status, body) = app.admin("get_settings", json!({})).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("必须先设管理员密码"),
        "{body}"
    );
}

/// 管理员的每个改动接口都拒绝外站或缺失的 Origin；管理员 Cookie 是 HttpOnly、SameSite=Strict，
/// 经可信代理的 https 访问时加 Secure；登录失败至少 0.5 秒。
#[tokio::test]
async fn admin_routes_demand_this_site_and_cookies_are_locked_down() {
    let hash = hash_password("管理员密码-456");
    let config = format!(
        "[auth]\nadmin_password_hash = \"{hash}\"\n[server]\ntrusted_proxies = [\"127.0.0.1\"]\n"
    );
    let app = App::new(&config).await;
    let json_headers = |origin: Option<&'static str>| {
        let mut h = vec![("content-type", "application/json")];
        if let Some(o) = origin {
            h.push(("origin", o));
        }
        h
    };
    for path in [
        "/admin/login",
        "/admin/logout",
        "/api/admin/save_settings",
        "/api/admin/create_api_key",
        "/api/admin/revoke_api_key",
        "/api/admin/test_upstream",
        "/api/admin/list_upstream_models",
        "/api/admin/get_settings",
    ] {
        for origin in [None, Some("http://evil.example")] {
            let response = app
                .send(request(
                    "POST",
                    path,
                    &json_headers(origin),
                    json!({"password": "x"}),
                ))
                .await;
            assert_eq!(response.status(), 403, "{path} {origin:?}");
        }
    }
    let started = Instant::now();
    let wrong = app
        .send(request(
            "POST",
            "/admin/login",
            &json_headers(Some("http://127.0.0.1:3000")),
            json!({"password": "错的"}),
        ))
        .await;
    assert_eq!(wrong.status(), 401);
    assert!(started.elapsed() >= Duration::from_millis(500));
    let mut headers = json_headers(Some("http://127.0.0.1:3000"));
    headers.push(("x-forwarded-proto", "https"));
    let ok = app
        .send(request(
            "POST",
            "/admin/login",
            &headers,
            json!({"password": "管理员密码-456"}),
        ))
        .await;
    assert_eq!(ok.status(), 204);
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie.contains(flag), "{flag}：{cookie}");
    }
    // 不是可信代理发来的 X-Forwarded-Proto 不算数。
    let untrusted = app
        .send_from(
            "127.0.0.2:40000".parse().unwrap(),
            request(
                "POST",
                "/admin/login",
                &headers,
                json!({"password": "管理员密码-456"}),
            ),
        )
        .await;
    let cookie = untrusted.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!cookie.contains("Secure"), "{cookie}");
}

/// 排队上限：超过每个客户端的份额就拒绝（中文原因），一个任务都不多；工作台按张数限流，16 张扣 16。
#[tokio::test]
async fn queue_caps_and_the_image_budget_refuse_whole_submissions() {
    let slow = demo_upstream(&["--delay-ms", "30000"]).await;
    let config = format!(
        "[limits]\nmax_concurrent = 1\nmax_queued_jobs = 8\nimages_per_minute = 20\n\n[[upstreams]]\nname = \"慢\"\nbase_url = \"{}\"\n",
        slow.url
    );
    let app = App::new(&config).await;
    let submit = |count: u32| {
        app.post_json(
            "/api/submit_jobs",
            json!({"request": {"prompt": "排队", "count": count}}),
        )
    };
    let (status, _) = submit(1).await; // 第一张在跑
    assert_eq!(status, 200);
    let (status, _) = submit(2).await; // 两张排队：每人的上限是 8 / 4 = 2
    assert_eq!(status, 200);
    let before = app.state.jobs.snapshot().len();
    let (status, body) = submit(1).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("每人 2 个"),
        "{body}"
    );
    assert_eq!(
        app.state.jobs.snapshot().len(),
        before,
        "被拒绝的提交一个任务都没留下"
    );

    // 张数限流：另一个实例，每分钟 20 张；16 张通过，再 16 张 429 带 Retry-After。
    let app = App::new(&config.replace("max_queued_jobs = 8", "max_queued_jobs = 512")).await;
    let request = |count: u32| {
        request(
            "POST",
            "/api/submit_jobs",
            &[("content-type", "application/json")],
            json!({"request": {"prompt": "限流", "count": count}}),
        )
    };
    assert_eq!(app.send(request(16)).await.status(), 200);
    let limited = app.send(request(16)).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    let (_, body) = json_of(limited).await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("每分钟最多生成 20 张"),
        "{body}"
    );
    assert_eq!(app.state.jobs.snapshot().len(), 16, "第二批一张都没排进去");
}

/// 网关排队的名额随请求一起归还：排队中的两个请求被放弃，下一个请求照样排队，而不是 503。
#[tokio::test]
async fn dropped_gateway_waiters_give_their_queue_slots_back() {
    let slow = demo_upstream(&["--delay-ms", "1500"]).await;
    let config = format!(
        "[limits]\nmax_concurrent = 1\nqueue_size = 2\n\n[[upstreams]]\nname = \"慢\"\nbase_url = \"{}\"\n",
        slow.url
    );
    let app = std::sync::Arc::new(App::new(&config).await);
    let generate = |app: std::sync::Arc<App>| async move {
        app.post_json("/v1/images/generations", json!({"prompt": "排队"}))
            .await
    };
    let first = tokio::spawn(generate(app.clone()));
    // 等第一个占住名额。
    let started = Instant::now();
    while metric(&app, "gateway_in_flight").await < 1.0 {
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // 两个排队的请求被调用方放弃（future 被丢弃）。
    for _ in 0..2 {
        let waiting = tokio::time::timeout(Duration::from_millis(200), generate(app.clone())).await;
        assert!(waiting.is_err(), "应当在排队");
    }
    // 下一个仍能排上（不是 503），并在第一个完成后得到图。
    let (status, body) = generate(app.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(first.await.unwrap().0, 200);
}

async fn metric(app: &App, name: &str) -> f64 {
    let cookie = app.admin_cookie().await.expect("管理员会话");
    let response = app
        .send(request(
            "GET",
            "/metrics",
            &[("cookie", &cookie)],
            Value::Null,
        ))
        .await;
    let text = String::from_utf8(
        axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// 上游回重定向：不跟随，密钥不会被带到重定向的目标；调用方得到说明原因的 502。
#[tokio::test]
async fn a_redirecting_upstream_never_hands_the_key_to_another_host() {
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let target = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
        .expect(0)
        .mount(&target)
        .await;
    let redirecting = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(302).insert_header(
            "location",
            format!("{}/v1beta/models/m:generateContent?key=leak", target.uri()),
        ))
        .mount(&redirecting)
        .await;
    let config = format!(
        "[[upstreams]]\nname = \"跳转\"\nbase_url = \"{}\"\napi_key = \"AIza-should-not-leak\"\n",
        redirecting.uri()
    );
    let app = App::new(&config).await;
    let (status, body) = app
        .post_json("/v1/images/generations", json!({"prompt": "跳转"}))
        .await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("重定向") && !message.contains("key=leak"),
        "{message}"
    );
    target.verify().await;
}

/// 上游的响应超过上限：不读完，得到说明上限的错误。
#[tokio::test]
async fn an_oversized_upstream_answer_is_refused() {
    use wiremock::matchers::any;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let huge = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b' '; 2 * 1024 * 1024]))
        .mount(&huge)
        .await;
    let config = format!(
        "[limits]\nmax_upstream_response_mb = 1\n\n[[upstreams]]\nname = \"太大\"\nbase_url = \"{}\"\n",
        huge.uri()
    );
    let app = App::new(&config).await;
    let (status, body) = app
        .post_json("/v1/images/generations", json!({"prompt": "大"}))
        .await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("1 MB"),
        "{body}"
    );
}

/// 打包下载最多 500 张；页面带 CSP、不许被嵌入、不许猜类型。
#[tokio::test]
async fn zip_size_cap_and_page_security_headers() {
    let app = App::new("").await;
    let ids = vec!["0".repeat(32); 501]
        .iter()
        .enumerate()
        .map(|(i, _)| format!("{i:032x}"))
        .collect::<Vec<_>>()
        .join(",");
    let (status, body) = json_of(
        app.send(request(
            "GET",
            &format!("/files/zip?ids={ids}"),
            &[],
            Value::Null,
        ))
        .await,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("500"),
        "{body}"
    );

    let page = app.send(request("GET", "/", &[], Value::Null)).await;
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("'nonce-"),
        "{csp}"
    );
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_string();
    let html = String::from_utf8(
        axum::body::to_bytes(page.into_body(), 1 << 22)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "页面的内联脚本带着同一个 nonce"
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["x-content-type-options"], "nosniff");
}

/// WebSocket：浏览器发来超过 4 KB 的消息，连接被关掉；每个 IP 最多 32 条连接。
#[tokio::test]
async fn websocket_frames_and_connections_are_bounded() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let ws = Workspace::new("[storage]\nroot = \"storage\"\n");
    let server = ws.serve().await;
    let url = server.url.replace("http://", "ws://") + "/ws";
    let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let _snapshot = socket.next().await.unwrap().unwrap();
    socket
        .send(Message::Text("x".repeat(8 * 1024).into()))
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return true,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert_eq!(closed, Ok(true), "超过 4 KB 的消息应让服务器关掉连接");

    let mut open = Vec::new();
    for _ in 0..32 {
        let (socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        open.push(socket);
    }
    let refused = tokio_tungstenite::connect_async(&url).await;
    assert!(
        matches!(&refused, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 503),
        "第 33 条应被拒绝：{refused:?}"
    );
    drop(open);
}

/// `/metrics`：管理员会话或 `/v1` 密钥才能看（本机直接访问不算）。
#[tokio::test]
async fn metrics_need_an_admin_or_a_v1_key() {
    let app = App::new("[auth]\napi_keys = [\"sk-metrics-1\"]\n").await;
    let get = |headers: &[(&str, &str)]| request("GET", "/metrics", headers, Value::Null);
    let remote: std::net::SocketAddr = "192.168.1.30:5000".parse().unwrap();
    assert_eq!(app.send(get(&[])).await.status(), 401, "本机直接访问也不算");
    let cookie = app.admin_cookie().await.unwrap();
    assert_eq!(app.send(get(&[("cookie", &cookie)])).await.status(), 200);
    assert_eq!(app.send_from(remote, get(&[])).await.status(), 401);
    let with_key = app
        .send_from(remote, get(&[("authorization", "Bearer sk-metrics-1")]))
        .await;
    assert_eq!(with_key.status(), 200);
    let wrong_key = app
        .send_from(remote, get(&[("authorization", "Bearer sk-nope")]))
        .await;
    assert_eq!(wrong_key.status(), 401);
}

/// 设置页设工作台密码（填明文，存哈希）：之后工作台要登录；改密码后已登录的会话作废；清除后又开放。
#[tokio::test]
async fn the_studio_password_is_set_changed_and_cleared_from_the_settings() {
    let app = App::new("").await;
    let (_, view) = app.admin("get_settings", json!({})).await;
    assert_eq!(view["studio_password_set"], false);
    let mut update = json!({
        "upstreams": view["upstreams"], "storage_root": view["storage_root"],
        "numbers": view["numbers"], "flags": view["flags"], "listen": "127.0.0.1:3000",
        "studio_password": "短"
    });
    let (status, err) = app
        .admin("save_settings", json!({ "update": update.clone() }))
        .await;
    assert_eq!(status, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("至少 8 个字符"));
    update["studio_password"] = json!("团队的工作台密码");
    let (status, view) = app
        .admin("save_settings", json!({ "update": update.clone() }))
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["studio_password_set"], true);
    let text = std::fs::read_to_string(app.path().join("factory.toml")).unwrap();
    assert!(
        text.contains("studio_password_hash = \"$argon2") && !text.contains("团队的工作台密码")
    );

    let list = || {
        request(
            "POST",
            "/api/list_images",
            &[("content-type", "application/json")],
            json!({"query": {}}),
        )
    };
    assert_eq!(app.send(list()).await.status(), 401);
    let login = app
        .send(request(
            "POST",
            "/login",
            &[("content-type", "application/json")],
            json!({"password": "团队的工作台密码"}),
        ))
        .await;
    assert_eq!(login.status(), 204);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let with_session = || {
        let mut r = list();
        r.headers_mut().insert("cookie", cookie.parse().unwrap());
        r
    };
    assert_eq!(app.send(with_session()).await.status(), 200);

    // 换一个密码：用旧密码登录的会话立即作废。
    update["studio_password"] = json!("换过的工作台密码");
    let (status, view) = app
        .admin("save_settings", json!({ "update": update.clone() }))
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        app.send(with_session()).await.status(),
        401,
        "改密码后旧会话作废"
    );

    update["studio_password"] = json!("");
    update["clear_studio_password"] = json!(true);
    let (status, view) = app
        .admin("save_settings", json!({ "update": update }))
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["studio_password_set"], false);
    assert_eq!(app.send(list()).await.status(), 200, "清除后工作台又开放");
}
