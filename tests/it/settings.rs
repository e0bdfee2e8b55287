//! 设置与管理员：登录、会话、跨站防护、整份校验（文件不变）、热更新上游与存储根。

use crate::common::*;
use serde_json::{json, Value};
use std::time::Duration;

const PASSWORD: &str = "正确的密码-123";

fn config(upstream: &str, name: &str, hash: &str) -> String {
    format!(
        "[server]\nmetrics_public = true\n\n[storage]\nroot = \"storage\"\n\n[auth]\nadmin_password_hash = \"{hash}\"\n\n[[upstreams]]\nname = \"{name}\"\nbase_url = \"{upstream}\"\napi_key = \"sk-upstream-secret-42\"\n"
    )
}

struct Admin {
    http: reqwest::Client,
    url: String,
}

impl Admin {
    fn new(server: &Running) -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap(),
            url: server.url.clone(),
        }
    }

    async fn login(&self, password: &str) -> u16 {
        self.http
            .post(format!("{}/admin/login", self.url))
            .header("origin", &self.url)
            .json(&json!({"password": password}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// 调用设置页的一个服务器函数（`POST /api/admin/{name}`，JSON），`origin` 为空时不带 Origin 头。
    async fn call_with_origin(
        &self,
        name: &str,
        body: &Value,
        origin: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}/api/admin/{name}", self.url))
            .timeout(Duration::from_secs(60))
            .json(body);
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// 以本站的 Origin 调用设置页的服务器函数。
    async fn call(&self, name: &str, body: &Value) -> (u16, Value) {
        self.call_with_origin(name, body, Some(&self.url)).await
    }

    async fn settings(&self) -> (u16, Value) {
        self.call("get_settings", &json!({})).await
    }

    async fn put(&self, body: &Value, origin: Option<&str>) -> (u16, Value) {
        self.call_with_origin("save_settings", &json!({"update": body}), origin)
            .await
    }

    /// 当前设置改一处后的整份提交体。
    async fn edited(&self, edit: impl FnOnce(&mut Value)) -> Value {
        let (_, view) = self.settings().await;
        let mut body = json!({
            "upstreams": view["upstreams"],
            "storage_root": view["storage_root"],
            "numbers": view["numbers"],
            "flags": view["flags"],
            "listen": view["listen"],
        });
        edit(&mut body);
        body
    }
}

#[tokio::test]
async fn refusals_leave_the_config_file_unchanged() {
    let demo = demo_upstream(&[]).await;
    let hash = hash_password(PASSWORD);
    let ws = Workspace::new(&config(&demo.url, "甲", &hash));
    let server = ws
        .serve_with_env(&[("FACTORY_SESSION_TTL_SECS", "2")])
        .await;
    let file = ws.path().join("factory.toml");
    let original = std::fs::read(&file).unwrap();
    let admin = Admin::new(&server);

    // 没登录、密码不对 → 拒绝。
    assert_eq!(admin.settings().await.0, 401);
    assert_eq!(admin.login("不对的密码").await, 401);
    let body = json!({"upstreams": [], "storage_root": "x", "numbers": {}, "listen": ""});
    assert_eq!(admin.put(&body, Some(&server.url)).await.0, 401);

    // 登录后可读；密钥不出现在响应里。
    assert_eq!(admin.login(PASSWORD).await, 204);
    let (status, view) = admin.settings().await;
    assert_eq!(status, 200, "{view}");
    assert!(!view.to_string().contains("sk-upstream-secret-42"));
    assert_eq!(view["upstreams"][0]["api_key_set"], true);
    assert_eq!(view["admin_password_set"], true);

    // 跨站：没有 Origin，或 Origin 是别的站 → 403。
    let valid = admin
        .edited(|b| b["numbers"]["limits.burst"] = json!(33))
        .await;
    assert_eq!(admin.put(&valid, None).await.0, 403);
    assert_eq!(admin.put(&valid, Some("http://evil.example")).await.0, 403);

    // 各种无效值 → 400 + 中文原因。
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Edit, &str)> = vec![
        (
            Box::new(|b| b["upstreams"][0]["base_url"] = json!("ftp://x")),
            "http",
        ),
        (
            Box::new(|b| b["upstreams"][0]["kind"] = json!("dall-e")),
            "类型“dall-e”未知",
        ),
        (
            Box::new(|b| b["storage_root"] = json!("../外面")),
            "不能用 ..",
        ),
        (
            Box::new(|b| b["storage_root"] = json!("/proc/不可写")),
            "storage.root",
        ),
        (
            Box::new(|b| b["numbers"]["limits.burst"] = json!(0)),
            "limits.burst",
        ),
        (
            Box::new(|b| b["numbers"]["limits.burst"] = json!(-1)),
            "请求参数有误",
        ),
        (
            Box::new(|b| b["numbers"]["retry.max_attempts"] = json!(0)),
            "retry.max_attempts",
        ),
        (
            Box::new(|b| b["numbers"]["limits.nope"] = json!(1)),
            "limits.nope",
        ),
    ];
    for (edit, needle) in cases {
        let body = admin.edited(edit).await;
        let (status, err) = admin.put(&body, Some(&server.url)).await;
        assert_eq!(status, 400, "{body} → {err}");
        let message = err["message"].as_str().unwrap();
        assert!(message.contains(needle), "{message}（应提到 {needle}）");
    }
    assert_eq!(
        std::fs::read(&file).unwrap(),
        original,
        "被拒绝的修改不动配置文件"
    );
    let health = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "服务器照常工作");

    // 会话过期（测试把有效期设为 2 秒）：上面的请求都还认这个会话（400 而不是 401），等到它不再被认。
    let deadline = Deadline::new(20, "2 秒有效期的会话过期（设置页返回 401）");
    loop {
        let status = admin.settings().await.0;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200, "过期之前会话照常可用");
        deadline.tick().await;
    }
    assert_eq!(std::fs::read(&file).unwrap(), original);

    // 同一 IP 连续登录失败：每分钟 5 次之后 429（前面已用掉 2 次）。
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(admin.login("还是不对").await);
    }
    assert_eq!(statuses, [401, 401, 401, 429]);
}

#[tokio::test]
async fn upstream_change_applies_live_and_in_flight_requests_finish_on_the_old_one() {
    let slow_old = demo_upstream(&["--delay-ms", "1500"]).await;
    let new = demo_upstream(&[]).await;
    let hash = hash_password(PASSWORD);
    let ws = Workspace::new(&config(&slow_old.url, "旧上游", &hash));
    let server = ws.serve().await;
    let admin = Admin::new(&server);
    assert_eq!(admin.login(PASSWORD).await, 204);

    let in_flight = {
        let url = server.url.clone();
        tokio::spawn(async move {
            let res = reqwest::Client::new()
                .post(format!("{url}/api/generate_image"))
                .json(&json!({"request": {"prompt": "切换时在途的"}}))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap())
        })
    };
    // 在途请求真的到了旧上游（在途数为 1）之后再切换。
    wait_for_in_flight(&server, 1.0).await;
    // 换了地址（端口不同）而密钥留空：存着的密钥不会跟去新地址，拒绝保存（400），文件不变。
    let file = ws.path().join("factory.toml");
    let before = std::fs::read(&file).unwrap();
    let moved = admin
        .edited(|b| {
            b["upstreams"][0]["name"] = json!("新上游");
            b["upstreams"][0]["base_url"] = json!(new.url);
        })
        .await;
    let (status, err) = admin.put(&moved, Some(&server.url)).await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("请重新填写它的 API 密钥"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "配置文件一个字节都不变"
    );
    let mut body = moved.clone();
    body["upstreams"][0]["api_key"] = json!("新上游的密钥");
    let (status, view) = admin.put(&body, Some(&server.url)).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["upstreams"][0]["base_url"], json!(new.url));
    assert_eq!(view["upstreams"][0]["api_key_set"], true);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&new.url) && text.contains("新上游的密钥"));
    assert!(!text.contains("sk-upstream-secret-42"), "旧密钥不再用");
    assert!(ws.path().join("factory.toml.bak").is_file());

    // 限流的数字也立即生效：每分钟 1 次、突发 1 → 第二个 /v1 请求 429。
    let body = admin
        .edited(|b| {
            b["numbers"]["limits.requests_per_minute"] = json!(1);
            b["numbers"]["limits.burst"] = json!(1);
        })
        .await;
    assert_eq!(admin.put(&body, Some(&server.url)).await.0, 200);
    let models = format!("{}/v1/models", server.url);
    assert_eq!(reqwest::get(&models).await.unwrap().status(), 200);
    let limited = reqwest::get(&models).await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));

    let (status, saved) = studio_generate(&server, "切换后的").await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["upstream"], "新上游");
    let (status, old) = in_flight.await.unwrap();
    assert_eq!(status, 200, "{old}");
    assert_eq!(old["upstream"], "旧上游", "在途的请求在旧上游上完成");
}

#[tokio::test]
async fn storage_root_change_from_the_page() {
    let demo = demo_upstream(&[]).await;
    let hash = hash_password(PASSWORD);
    let ws = Workspace::new(&config(&demo.url, "甲", &hash));
    let server = ws.serve().await;
    let admin = Admin::new(&server);
    assert_eq!(admin.login(PASSWORD).await, 204);
    let (_, before) = studio_generate(&server, "旧根").await;

    let body = admin.edited(|b| b["storage_root"] = json!("新根")).await;
    let (status, view) = admin.put(&body, Some(&server.url)).await;
    assert_eq!(status, 200, "{view}");
    assert!(view["storage_root"].as_str().unwrap().ends_with("新根"));
    let (_, after) = studio_generate(&server, "新根").await;
    assert!(originals_under(&ws.path().join("新根"))
        .iter()
        .any(|p| p.to_string_lossy().contains(after["id"].as_str().unwrap())));
    for id in [&before["id"], &after["id"]] {
        let res = reqwest::get(format!("{}/files/{}", server.url, id.as_str().unwrap()))
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    // 数据库被固定在原处：重启后旧图仍在图库。
    let text = std::fs::read_to_string(ws.path().join("factory.toml")).unwrap();
    assert!(text.contains("database = "), "{text}");
    drop(server);
    let server = ws.serve().await;
    let res = reqwest::Client::new()
        .post(format!("{}/api/list_images", server.url))
        .json(&json!({"query": {}}))
        .send()
        .await
        .unwrap();
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    let (_, view) = {
        let admin = Admin::new(&server);
        assert_eq!(admin.login(PASSWORD).await, 204);
        admin.settings().await
    };
    assert_eq!(view["roots"].as_array().unwrap().len(), 2, "{view}");
}

/// 手工编辑配置文件：有效的改动几秒内生效；无效的被拒绝，服务照旧。
#[tokio::test]
async fn hand_edits_to_the_config_file_are_picked_up_and_invalid_ones_refused() {
    let demo = demo_upstream(&[]).await;
    let ws = Workspace::new(&config(&demo.url, "手改前", ""));
    let server = ws.serve().await;
    let file = ws.path().join("factory.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let applied = config_reloads(&server, "applied").await;
    std::fs::write(&file, text.replace("手改前", "手改后")).unwrap();
    // 服务器定时检查文件：等它报告采用了这次改动（最多 20 秒，机器忙时也够）。
    wait_for_config_reload(&server, "applied", applied).await;
    let (status, saved) = studio_generate(&server, "手改之后").await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["upstream"], "手改后", "手工改的上游名已生效");

    // 无效的改动：等服务器读到它并报告拒绝（只等一段时间的话，没读文件也会通过），原配置继续工作。
    let refused = config_reloads(&server, "refused").await;
    std::fs::write(&file, "[limits]\nburst = 0\n").unwrap();
    wait_for_config_reload(&server, "refused", refused).await;
    let (status, saved) = studio_generate(&server, "无效改动之后").await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["upstream"], "手改后");
}

/// 用官方 openai Python 包调用 `/v1/images/generations`，返回 "ok" 或异常类名。
fn python_sdk_generate(url: &str, key: &str) -> String {
    let python =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/sdk-venv/bin/python");
    assert!(
        python.exists(),
        "请先运行 bash scripts/install-tools.sh --e2e"
    );
    let script = r#"
import os, sys, openai
client = openai.OpenAI(base_url=os.environ["FACTORY_URL"] + "/v1", api_key=os.environ["FACTORY_KEY"], max_retries=0)
try:
    r = client.images.generate(prompt="密钥测试", n=1)
    print("ok" if r.data and r.data[0].b64_json else "empty")
except openai.APIStatusError as e:
    print(type(e).__name__, e.status_code)
"#;
    let out = std::process::Command::new(python)
        .args(["-c", script])
        .env("FACTORY_URL", url)
        .env("FACTORY_KEY", key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// 设置页创建的密钥：官方 SDK 可用，列表只显示前缀与最近使用时间；吊销后 401。
#[tokio::test]
async fn api_key_created_in_the_page_works_with_the_sdk_until_revoked() {
    let demo = demo_upstream(&[]).await;
    let hash = hash_password(PASSWORD);
    let ws = Workspace::new(&config(&demo.url, "甲", &hash));
    let server = ws.serve().await;
    let admin = Admin::new(&server);
    assert_eq!(admin.login(PASSWORD).await, 204);

    // 还没有任何密钥时 /v1 不要求密钥；用途说明为空被拒绝。
    let create = |label: &'static str| {
        let admin = &admin;
        async move {
            admin
                .call("create_api_key", &json!({ "label": label }))
                .await
        }
    };
    let (status, err) = create("").await;
    assert_eq!(status, 400, "{err}");
    let (status, created) = create("设计组脚本").await;
    assert_eq!(status, 200, "{created}");
    let key = created["key"].as_str().unwrap().to_string();
    let prefix = created["prefix"].as_str().unwrap().to_string();
    assert!(key.starts_with(&prefix) && key.len() > 40);
    let text = std::fs::read_to_string(ws.path().join("factory.toml")).unwrap();
    assert!(!text.contains(&key), "配置文件里只有摘要，没有密钥原文");

    let url = server.url.clone();
    let k = key.clone();
    let result = tokio::task::spawn_blocking(move || python_sdk_generate(&url, &k))
        .await
        .unwrap();
    assert_eq!(result, "ok");
    let (_, view) = admin.settings().await;
    assert!(!view.to_string().contains(&key), "设置页不再给出原文");
    assert_eq!(view["keys"][0]["prefix"], json!(prefix));
    assert!(view["keys"][0]["last_used"].is_string(), "{view}");

    // 再建一把，吊销第一把：第一把 401，第二把照常。
    let (_, second) = create("另一把").await;
    let second_key = second["key"].as_str().unwrap().to_string();
    let (status, _) = admin
        .call("revoke_api_key", &json!({ "prefix": prefix }))
        .await;
    assert_eq!(status, 200);
    let (status, _) = admin
        .call("revoke_api_key", &json!({ "prefix": prefix }))
        .await;
    assert_eq!(status, 404, "已经吊销的找不到");
    let url = server.url.clone();
    let (revoked, still) = tokio::task::spawn_blocking(move || {
        (
            python_sdk_generate(&url, &key),
            python_sdk_generate(&url, &second_key),
        )
    })
    .await
    .unwrap();
    assert_eq!(revoked, "AuthenticationError 401");
    assert_eq!(still, "ok");
    let (_, view) = admin.settings().await;
    assert_eq!(view["keys"].as_array().unwrap().len(), 1);
}

/// 改监听端口：先绑新端口；占用或无效则旧端口照常、文件不变；成功则新端口服务，
/// 切换时在途的请求在旧端口上完成，之后旧端口关闭。
#[tokio::test]
async fn listen_port_switch_binds_first_and_drains_the_old_one() {
    let slow = demo_upstream(&["--delay-ms", "1500"]).await;
    let hash = hash_password(PASSWORD);
    let ws = Workspace::new(&config(&slow.url, "甲", &hash));
    let server = ws.serve().await;
    let file = ws.path().join("factory.toml");
    let admin = Admin::new(&server);
    assert_eq!(admin.login(PASSWORD).await, 204);
    let original = std::fs::read(&file).unwrap();

    // 无效与被占用：400、中文原因、文件不变、旧端口照常。
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    for (listen, needle) in [
        ("127.0.0.1:0".to_string(), "不能为 0"),
        ("127.0.0.1:70000".to_string(), "超出范围"),
        (busy_addr, "无法监听"),
    ] {
        let body = admin.edited(|b| b["listen"] = json!(listen)).await;
        let (status, err) = admin.put(&body, Some(&server.url)).await;
        assert_eq!(status, 400, "{listen} → {err}");
        assert!(err["message"].as_str().unwrap().contains(needle), "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), original);
    }
    drop(busy);

    // 切换时有一个在途请求（上游要 1.5 秒）。
    let old_url = server.url.clone();
    let in_flight = tokio::spawn(async move {
        let res = reqwest::Client::new()
            .post(format!("{old_url}/api/generate_image"))
            .json(&json!({"request": {"prompt": "切换端口时在途"}}))
            .send()
            .await
            .unwrap();
        res.status().as_u16()
    });
    wait_for_in_flight(&server, 1.0).await;
    let port = crate::common::process::free_port();
    let body = admin
        .edited(|b| b["listen"] = json!(format!("127.0.0.1:{port}")))
        .await;
    let (status, view) = admin.put(&body, Some(&server.url)).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["listen"], json!(format!("127.0.0.1:{port}")));
    let new_url = format!("http://127.0.0.1:{port}");
    let health = reqwest::get(format!("{new_url}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "新端口在服务");
    assert_eq!(in_flight.await.unwrap(), 200, "在途请求在旧端口上完成");
    // 在途请求结束后旧端口关闭（最多等 5 秒）。
    let mut closed = false;
    for _ in 0..50 {
        if reqwest::get(format!("{}/healthz", server.url))
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed, "旧端口应当关闭");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(&format!("listen = \"127.0.0.1:{port}\"")),
        "{text}"
    );
}

/// “获取模型列表”：对真实的演示上游（Gemini 的 models.list 形状）。
#[tokio::test]
async fn list_models_of_an_upstream() {
    let demo = demo_upstream(&[]).await;
    let hash = hash_password(PASSWORD);
    let ws = Workspace::new(&config(&demo.url, "甲", &hash));
    let server = ws.serve().await;
    let admin = Admin::new(&server);
    assert_eq!(admin.login(PASSWORD).await, 204);
    for kind in ["gemini", "openai-images"] {
        let (status, models) = admin
            .call("list_upstream_models", &json!({"upstream": {"name": "甲", "kind": kind, "base_url": demo.url, "model": "x", "max_concurrent": 0, "previous_name": "甲"}}))
            .await;
        assert_eq!(status, 200, "{kind}: {models}");
        let models: Vec<String> = serde_json::from_value(models).unwrap();
        assert!(
            models.contains(&"gemini-3-pro-image".to_string()),
            "{kind}: {models:?}"
        );
    }
    let (status, err) = admin
        .call("list_upstream_models", &json!({"upstream": {"name": "坏", "kind": "gemini", "base_url": closed_port_url(), "model": "x", "max_concurrent": 0}}))
        .await;
    assert_eq!(status, 400);
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("获取模型列表失败"),
        "{err}"
    );
}
