//! 团队账号（#38）：两个成员与一个管理员在真正的二进制上——各看各的批次、“全部”看得到两人的图、
//! 成员删不了别人的图也打不开设置接口（403）、成员的额度只挡住他自己、停用成员（命令行，服务运行中）
//! 5 秒内结束他的会话与他的 `/v1` 密钥、操作记录里有每一个管理员动作。账号用 `drafting-factory user add` 建
//! （和运维一样，密码从标准输入读）。`DF_TEST_METADATA=postgres` 时整个模块在 PostgreSQL 上再跑一遍。

use crate::common::*;
use serde_json::{json, Value};
use std::time::Duration;

const ROOT_PW: &str = "root-password-1";
const ALICE_PW: &str = "alice-password-1";
const BOB_PW: &str = "bob-password-11";

/// `drafting-factory user …`（在工作区里，`--config factory.toml`），密码从标准输入给；返回（成功？, 标准输出 + 标准错误）。
fn user_cli(ws: &Workspace, args: &[&str], password: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(BIN)
        .arg("user")
        .args(args)
        .args(["--config", "factory.toml"])
        .current_dir(ws.path())
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Some(pw) = password {
        writeln!(stdin, "{pw}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// 一个登录了的人：Cookie 头（工作台会话，管理员账号另有管理员会话）。
struct Person {
    cookie: String,
}

async fn login(server: &Running, name: &str, password: &str) -> Person {
    let res = reqwest::Client::new()
        .post(format!("{}/login", server.url))
        .json(&json!({ "name": name, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204, "{name} 应当能登录");
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("; ");
    Person { cookie }
}

impl Person {
    /// 以本站的 Origin 调用服务器函数（`/api/{path}`），返回状态码与 JSON。
    async fn call(&self, server: &Running, path: &str, body: Value) -> (u16, Value) {
        let res = reqwest::Client::new()
            .post(format!("{}/api/{path}", server.url))
            .header("origin", &server.url)
            .header("cookie", &self.cookie)
            .timeout(Duration::from_secs(60))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// 提交一张，等到它完成，返回图的 id。
    async fn generate(&self, server: &Running, prompt: &str) -> String {
        let (status, jobs) = self
            .call(
                server,
                "submit_jobs",
                json!({ "request": { "prompt": prompt, "count": 1 } }),
            )
            .await;
        assert_eq!(status, 200, "{jobs}");
        let batch = jobs[0]["batch_id"].as_str().unwrap().to_string();
        let deadline = Deadline::new(30, format!("“{prompt}”生成完"));
        loop {
            let (_, images) = self
                .call(
                    server,
                    "list_images",
                    json!({ "query": { "mine": true, "search": prompt } }),
                )
                .await;
            if let Some(id) = images["items"][0]["id"].as_str() {
                let (_, page) = self.call(server, "list_batches", json!({})).await;
                assert!(page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|b| b["id"] == batch));
                return id.to_string();
            }
            deadline.tick().await;
        }
    }

    async fn batch_names(&self, server: &Running) -> Vec<String> {
        let (status, page) = self.call(server, "list_batches", json!({})).await;
        assert_eq!(status, 200, "{page}");
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["name"].as_str().unwrap().to_string())
            .collect()
    }

    async fn gallery(&self, server: &Running, mine: bool) -> Vec<(String, String)> {
        let (status, page) = self
            .call(server, "list_images", json!({ "query": { "mine": mine } }))
            .await;
        assert_eq!(status, 200, "{page}");
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["prompt"].as_str().unwrap().to_string(),
                    i["owner"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// 建好三个账号（命令行）并启动服务器。
async fn team() -> (Workspace, Running) {
    let ws = Workspace::new("[storage]\nroot = \"storage\"\n");
    for (args, pw) in [
        (&["add", "--admin", "root"][..], ROOT_PW),
        (&["add", "alice", "--display", "小爱"][..], ALICE_PW),
        (&["add", "bob"][..], BOB_PW),
    ] {
        let (ok, out) = user_cli(&ws, args, Some(pw));
        assert!(ok, "{out}");
    }
    let server = ws.serve().await;
    (ws, server)
}

#[tokio::test]
async fn each_member_sees_their_own_batches_and_cannot_touch_the_others_images() {
    let (_ws, server) = team().await;
    // 有账号就要登录：不带会话的工作台请求 401。
    let (anonymous, _) = call(&server, "list_batches", json!({})).await;
    assert_eq!(anonymous, 401);
    let (alice, bob, root) = (
        login(&server, "alice", ALICE_PW).await,
        login(&server, "bob", BOB_PW).await,
        login(&server, "root", ROOT_PW).await,
    );
    let alices = alice.generate(&server, "爱丽丝的猫").await;
    let bobs = bob.generate(&server, "鲍勃的狗").await;

    assert_eq!(alice.batch_names(&server).await, vec!["爱丽丝的猫"]);
    assert_eq!(bob.batch_names(&server).await, vec!["鲍勃的狗"]);
    assert!(
        root.batch_names(&server).await.is_empty(),
        "管理员的工作台也只有自己的批次"
    );
    assert_eq!(
        alice.gallery(&server, true).await,
        vec![("爱丽丝的猫".to_string(), "alice".to_string())]
    );
    let mut everyone = alice.gallery(&server, false).await;
    everyone.sort();
    assert_eq!(
        everyone,
        vec![
            ("爱丽丝的猫".to_string(), "alice".to_string()),
            ("鲍勃的狗".to_string(), "bob".to_string())
        ],
        "“全部”看得到两人的图"
    );

    // 成员删不了别人的图（403，什么都没改），删得了自己的；管理员删得了别人的。
    let (status, body) = alice
        .call(
            &server,
            "trash_images",
            json!({ "ids": [bobs.clone(), alices.clone()] }),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("bob"), "{body}");
    assert_eq!(bob.gallery(&server, true).await.len(), 1, "鲍勃的图还在");
    assert_eq!(
        alice.gallery(&server, true).await.len(),
        1,
        "整个请求被拒绝：爱丽丝的也没动"
    );
    let (status, _) = alice
        .call(&server, "trash_images", json!({ "ids": [alices] }))
        .await;
    assert_eq!(status, 200);
    let (status, _) = root
        .call(&server, "trash_images", json!({ "ids": [bobs] }))
        .await;
    assert_eq!(status, 200);
    assert!(bob.gallery(&server, true).await.is_empty());

    // 成员打不开设置接口；别人的批次也动不了。
    let (status, body) = alice.call(&server, "admin/get_accounts", json!({})).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = alice.call(&server, "admin/get_settings", json!({})).await;
    assert_eq!(status, 403, "{body}");
    let (_, page) = bob.call(&server, "list_batches", json!({})).await;
    let bob_batch = page["items"][0]["id"].clone();
    let (status, _) = alice
        .call(&server, "remove_batch", json!({ "batch_id": bob_batch }))
        .await;
    assert_eq!(status, 403);

    // 管理员看得到每个人本月的用量（用量每秒写一次库：等它写进去）。
    let month = |view: &Value, name: &str| {
        view["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .map(|a| a["month_images"].as_u64().unwrap())
    };
    let deadline = Deadline::new(10, "用量记到账号名下");
    loop {
        let (status, view) = root.call(&server, "admin/get_accounts", json!({})).await;
        assert_eq!(status, 200, "{view}");
        if month(&view, "alice") == Some(1) && month(&view, "bob") == Some(1) {
            assert_eq!(month(&view, "root"), Some(0));
            break;
        }
        deadline.tick().await;
    }
}

#[tokio::test]
async fn a_members_budget_stops_only_that_member_and_the_audit_names_each_admin_action() {
    let (ws, server) = team().await;
    let (alice, bob, root) = (
        login(&server, "alice", ALICE_PW).await,
        login(&server, "bob", BOB_PW).await,
        login(&server, "root", ROOT_PW).await,
    );
    let (status, body) = root
        .call(
            &server,
            "admin/update_account",
            json!({ "change": { "name": "alice", "limits": { "images_per_day": 1 } } }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    alice.generate(&server, "第一张").await;
    let (status, body) = alice
        .call(
            &server,
            "submit_jobs",
            json!({ "request": { "prompt": "第二张", "count": 1 } }),
        )
        .await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("alice"),
        "{body}"
    );
    bob.generate(&server, "鲍勃照样能画").await;

    // 管理员的动作都进操作记录：新建账号、改账号、建与吊销密钥、清空回收站、保存设置；命令行的也在。
    let (status, body) = root
        .call(
            &server,
            "admin/create_account",
            json!({ "account": { "name": "carol", "password": "carol-password", "role": "member" } }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, duplicate) = root
        .call(
            &server,
            "admin/create_account",
            json!({ "account": { "name": "carol", "password": "carol-password" } }),
        )
        .await;
    assert_eq!(
        (status, duplicate["code"].as_str()),
        (409, Some("conflict")),
        "{duplicate}"
    );
    let (status, key) = root
        .call(
            &server,
            "admin/create_api_key",
            json!({ "label": "脚本", "owner": "bob" }),
        )
        .await;
    assert_eq!(status, 200, "{key}");
    let (status, _) = root
        .call(
            &server,
            "admin/revoke_api_key",
            json!({ "prefix": key["prefix"] }),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = root.call(&server, "empty_trash", json!({})).await;
    assert_eq!(status, 200);
    let (status, last_admin) = root
        .call(
            &server,
            "admin/update_account",
            json!({ "change": { "name": "root", "disabled": true } }),
        )
        .await;
    assert_eq!(status, 409, "最后一个管理员停用不了：{last_admin}");
    let (_, view) = root.call(&server, "admin/get_accounts", json!({})).await;
    let audit: Vec<(String, String, String)> = view["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap().to_string(),
                e["action"].as_str().unwrap().to_string(),
                e["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (actor, action, detail) in [
        ("root", "修改账号", "alice"),
        ("root", "新建账号", "carol"),
        ("root", "创建 API 密钥", "bob"),
        ("root", "吊销 API 密钥", ""),
        ("root", "清空回收站", ""),
        ("命令行", "新建账号", "alice"),
    ] {
        assert!(
            audit
                .iter()
                .any(|(a, x, d)| a == actor && x == action && d.contains(detail)),
            "操作记录里应当有 {actor} {action} {detail}：{audit:?}"
        );
    }
    assert_eq!(
        audit.iter().filter(|(_, x, _)| x == "新建账号").count(),
        4,
        "重名的那次没有记"
    );
    drop(ws);
}

#[tokio::test]
async fn disabling_a_member_ends_their_session_and_their_v1_key_within_five_seconds() {
    let (ws, server) = team().await;
    let alice = login(&server, "alice", ALICE_PW).await;
    let (status, key) = alice
        .call(&server, "create_my_key", json!({ "label": "我的脚本" }))
        .await;
    assert_eq!(status, 200, "{key}");
    let key = key["key"].as_str().unwrap().to_string();
    let models = |key: String| {
        let url = format!("{}/v1/models", server.url);
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(models(key.clone()).await, 200);
    // 用她的密钥生成：用量记到她的账号名下（她的密钥属于她）。
    let res = v1_generate(&server, Some(&key), json!({ "prompt": "用密钥画的" })).await;
    assert_eq!(res.status(), 200);
    assert_eq!(alice.gallery(&server, true).await[0].1, "alice");

    // 服务运行中，命令行停用她：5 秒内会话与密钥都失效。
    let (ok, out) = user_cli(&ws, &["disable", "alice"], None);
    assert!(ok, "{out}");
    let deadline = Deadline::new(5, "停用 alice 生效");
    loop {
        let session = alice.call(&server, "list_batches", json!({})).await.0;
        let v1 = models(key.clone()).await;
        if session == 401 && v1 == 401 {
            break;
        }
        deadline.tick().await;
    }
    let res = reqwest::Client::new()
        .post(format!("{}/login", server.url))
        .json(&json!({ "name": "alice", "password": ALICE_PW }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "停用的账号登录不了");
    // 别人不受影响。
    let bob = login(&server, "bob", BOB_PW).await;
    assert_eq!(bob.call(&server, "list_batches", json!({})).await.0, 200);
    // 重设密码也结束旧会话。
    let (ok, out) = user_cli(&ws, &["passwd", "bob"], Some("bob-new-password"));
    assert!(ok, "{out}");
    let deadline = Deadline::new(5, "重设 bob 的密码生效");
    while bob.call(&server, "list_batches", json!({})).await.0 != 401 {
        deadline.tick().await;
    }
    login(&server, "bob", "bob-new-password").await;
}

#[tokio::test]
async fn the_shared_password_keeps_working_until_it_is_cleared() {
    let hash = hash_password("shared-password-1");
    let ws = Workspace::new(&format!(
        "[storage]\nroot = \"storage\"\n[auth]\nstudio_password_hash = \"{hash}\"\n"
    ));
    let (ok, out) = user_cli(&ws, &["add", "--admin", "root"], Some(ROOT_PW));
    assert!(ok, "{out}");
    let server = ws.serve().await;
    let res = reqwest::Client::new()
        .post(format!("{}/login", server.url))
        .json(&json!({ "password": "shared-password-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204, "只给密码仍是共用的工作台密码");
    let (ok, list) = user_cli(&ws, &["list"], None);
    assert!(
        ok && list.contains("root") && list.contains("管理员"),
        "{list}"
    );
    let wrong = reqwest::Client::new()
        .post(format!("{}/login", server.url))
        .json(&json!({ "name": "nobody", "password": ROOT_PW }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
}
