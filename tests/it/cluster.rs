//! 两个实例共用一个 PostgreSQL 与一个桶（moto）：排队的任务由先认领到的实例运行，不会跑两次；
//! 另一个实例上看得到它的结果；运行任务的实例被 SIGKILL 后，另一个实例在租约内把它的任务标为中断，
//! 在那里重试成功。上游（wiremock）收到的请求数与各任务的运行次数之和相等：没有哪一次是悄悄多跑的。

use crate::common::s3::S3;
use crate::common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// 每次都慢慢回一张图的上游（wiremock，数得出收到几个请求）。
async fn slow_upstream(delay: Duration) -> MockServer {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(gemini_ok_body())
                .set_delay(delay),
        )
        .mount(&upstream)
        .await;
    upstream
}

/// 第一个请求一分钟才回（测试不等它：看的是调用方有没有停下，停下了它的在途调用数就回到 0），
/// 之后的请求马上回一张图。
async fn first_request_hangs() -> MockServer {
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(gemini_ok_body())
                .set_delay(Duration::from_secs(60)),
        )
        .up_to_n_times(1)
        .mount(&upstream)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(gemini_ok_body()))
        .mount(&upstream)
        .await;
    upstream
}

/// 等上游收到 `n` 个请求。
async fn wait_for_hits(upstream: &MockServer, n: usize) {
    let started = Instant::now();
    loop {
        let hits = upstream.received_requests().await.unwrap().len();
        if hits >= n {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "上游只收到 {hits} 个请求，应为 {n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_instances_share_the_queue_and_take_over_a_killed_one_s_jobs() {
    let s3 = S3::start().await;
    let pg = postgres::database();
    let upstream = slow_upstream(Duration::from_secs(3)).await;
    let config = format!(
        "[storage]\nroot = \"s3://factory/c\"\ndatabase = \"{pg}\"\n\n[storage.s3]\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id = \"test\"\nsecret_access_key = \"test-secret\"\n\n[cluster]\nlease_s = 3\n\n[limits]\nmax_concurrent = 2\n\n[[upstreams]]\nname = \"替身\"\nkind = \"gemini\"\nbase_url = \"{}\"\n",
        s3.endpoint(),
        upstream.uri()
    );
    let (a_ws, b_ws) = (Workspace::new(&config), Workspace::new(&config));
    let mut a = a_ws.serve().await;

    // A 收下 6 张，同时最多 2 张：2 张生成中，4 张排队。
    let (status, jobs) = call(
        &a,
        "submit_jobs",
        json!({"request": {"prompt": "山", "count": 6}}),
    )
    .await;
    assert_eq!(status, 200, "{jobs}");
    let ids: Vec<String> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap().to_string())
        .collect();
    wait_for_hits(&upstream, 2).await;

    // B 启动：从共用的队列里认领排队的任务（A 还占满着），同时有 4 张在生成。
    let b = b_ws.serve().await;
    wait_for_hits(&upstream, 4).await;
    // A 的前两张完成后，A 去认领剩下的：B 已经拿走的认领不到，只拿到最后两张。
    wait_for_hits(&upstream, 6).await;
    // 等六张都被认领（库里没有排队的了）：这时每张都已开始运行，库里的运行次数之和与上游收到的请求数
    // 都应是 6——有哪张被两个实例各跑了一次，这两个数就对不上（后面还会在全部完成后再核对一次）。
    let deadline = Deadline::new(20, "六张任务都被认领");
    while postgres::query_text(
        &pg,
        "SELECT COUNT(*)::text FROM jobs WHERE state = 'queued'",
    )
    .as_deref()
        != Some("0")
    {
        deadline.tick().await;
    }
    assert_eq!(
        postgres::query_text(&pg, "SELECT SUM(run)::text FROM jobs").as_deref(),
        Some("6"),
        "每个任务只被认领一次"
    );
    assert_eq!(
        upstream.received_requests().await.unwrap().len(),
        6,
        "每个任务只被一个实例运行"
    );
    // A 在生成最后两张时被杀掉。
    a.child.kill().await.unwrap();
    let killed_at = Instant::now();

    // B 在租约（3 秒）内把 A 留下的两张标为中断；其余的（A 完成的两张、B 自己的两张）都完成，
    // B 上看到的与库里一样（A 完成的两张 B 启动时就载入了，结果从库里刷新过来）。
    let db_state = |id: &str| {
        postgres::query_text(&pg, &format!("SELECT state FROM jobs WHERE id = '{id}'")).unwrap()
    };
    let mut interrupted = Vec::new();
    for id in &ids {
        let state = loop {
            let state = db_state(id);
            if state != "running" {
                break state;
            }
            assert!(
                killed_at.elapsed() < Duration::from_secs(15),
                "{id} 一直是 running"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        match state.as_str() {
            "done" => {}
            "interrupted" => interrupted.push(id.clone()),
            other => panic!("{id} 是 {other}"),
        }
        wait_for_state(&b, id, &state).await;
    }
    assert_eq!(interrupted.len(), 2, "A 被杀时正在生成两张");
    assert!(
        killed_at.elapsed() < Duration::from_secs(3 + 3),
        "租约 3 秒，每秒检查一次：{:?}",
        killed_at.elapsed()
    );

    // 在 B 上重试：在 B 上生成并完成。
    for id in &interrupted {
        let (status, view) = call(&b, "retry_job", json!({"job_id": id})).await;
        assert_eq!(status, 200, "{view}");
    }
    for id in &interrupted {
        let view = wait_for_state(&b, id, "done").await;
        assert_eq!(view["run"], json!(2), "{view}");
    }
    let runs: i64 = postgres::query_text(
        &pg,
        &format!(
            "SELECT SUM(run)::text FROM jobs WHERE id IN ({})",
            ids.iter()
                .map(|id| format!("'{id}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .unwrap()
    .parse()
    .unwrap();
    let hits = upstream.received_requests().await.unwrap().len();
    assert_eq!(hits, 8, "6 张各一次，加上被杀时的两张各重试一次");
    assert_eq!(
        runs as usize, hits,
        "上游收到的请求数与各任务的运行次数之和相等"
    );
    let done: Vec<Value> = ids
        .iter()
        .map(|id| serde_json::from_str(&format!("\"{}\"", db_state(id))).unwrap())
        .collect();
    assert!(done.iter().all(|s| s == "done"), "{done:?}");
    drop(b);
}

/// 带着会话取工作台的一个接口，返回状态码。
async fn studio_status(server: &Running, cookie: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/api/list_batches", server.url))
        .header("cookie", cookie)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// 带幂等键生成一张，返回链接里的图片 id（签名里的期限随请求时刻变）。
async fn v1_with_key(base: &str, key: &str) -> String {
    let body: Value = reqwest::Client::new()
        .post(format!("{base}/v1/images/generations"))
        .bearer_auth("sk-cluster-test")
        .header("idempotency-key", key)
        .json(&json!({"prompt": "海", "response_format": "url"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = body["data"][0]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"));
    // 各实例按自己的地址拼链接：比的是图片 id。
    url.split('?')
        .next()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn sessions_and_idempotency_keys_hold_across_instances() {
    let s3 = S3::start().await;
    let pg = postgres::database();
    let upstream = slow_upstream(Duration::from_secs(2)).await;
    let hash = hash_password("cluster-共用的密码-123");
    let config = format!(
        "[auth]\nstudio_password_hash = \"{hash}\"\napi_keys = [\"sk-cluster-test\"]\n\n[storage]\nroot = \"s3://factory/s\"\ndatabase = \"{pg}\"\n\n[storage.s3]\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id = \"test\"\nsecret_access_key = \"test-secret\"\n\n[cluster]\nlease_s = 3\n\n[[upstreams]]\nname = \"替身\"\nkind = \"gemini\"\nbase_url = \"{}\"\n",
        s3.endpoint(),
        upstream.uri()
    );
    let (a_ws, b_ws) = (Workspace::new(&config), Workspace::new(&config));
    let a = a_ws.serve().await;
    let b = b_ws.serve().await;

    // 在 A 上登录的会话，B 也认；在 B 上退出，A 5 秒内也不再认。
    let cookie = session_cookie(&a, "cluster-共用的密码-123").await;
    assert_eq!(studio_status(&a, &cookie).await, 200);
    assert_eq!(studio_status(&b, &cookie).await, 200, "B 认得 A 发的会话");
    assert_eq!(studio_status(&b, "factory_session=forged").await, 401);
    let res = reqwest::Client::new()
        .post(format!("{}/logout", b.url))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(studio_status(&b, &cookie).await, 401);
    let started = Instant::now();
    while studio_status(&a, &cookie).await != 401 {
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "A 一直认得已退出的会话"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 同一个幂等键：A 正在生成时重发到 B，B 等 A 的结果，不再生成；完成后再发到 B，直接回放。
    let first = tokio::spawn({
        let base = a.url.clone();
        async move { v1_with_key(&base, "cross-instance-key").await }
    });
    wait_for_hits(&upstream, 1).await;
    let retried = v1_with_key(&b.url, "cross-instance-key").await;
    let first = first.await.unwrap();
    assert_eq!(first, retried);
    assert_eq!(v1_with_key(&b.url, "cross-instance-key").await, first);
    assert_eq!(
        upstream.received_requests().await.unwrap().len(),
        1,
        "同一个键只生成一次"
    );
}

/// 每分钟 4 次（突发 4）：两个实例合起来只放行 4 次，第 5、6 次 429 并带 `Retry-After`；
/// 一个实例新收下的批次在另一个实例的工作台上也看得到。
#[tokio::test]
async fn a_rate_limit_holds_across_instances() {
    let pg = postgres::database();
    let demo = demo_upstream(&[]).await;
    let config = format!(
        "[auth]\napi_keys = [\"sk-cluster-test\"]\n\n[limits]\nrequests_per_minute = 4\nburst = 4\n\n[storage]\nroot = \"storage\"\ndatabase = \"{pg}\"\n\n[[upstreams]]\nname = \"替身\"\nbase_url = \"{}\"\n",
        demo.url
    );
    let (a_ws, b_ws) = (Workspace::new(&config), Workspace::new(&config));
    let (a, b) = (a_ws.serve().await, b_ws.serve().await);
    let mut statuses = Vec::new();
    for server in [&a, &b, &a, &b, &a, &b] {
        let res = reqwest::Client::new()
            .get(format!("{}/v1/models", server.url))
            .bearer_auth("sk-cluster-test")
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            let wait: u64 = res.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=15).contains(&wait), "每 15 秒回一次：{wait}");
        }
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429, 429]);

    // B 启动之后 A 才收下的批次：B 的工作台上也有它（每秒从库里跟上），排队的由先认领到的实例生成，各生成一次。
    let (status, jobs) = call(
        &a,
        "submit_jobs",
        json!({"request": {"prompt": "云", "count": 3}}),
    )
    .await;
    assert_eq!(status, 200, "{jobs}");
    for job in jobs.as_array().unwrap() {
        let id = job["job_id"].as_str().unwrap();
        let seen_on_b = wait_for_state(&b, id, "done").await;
        assert_eq!(seen_on_b["run"], json!(1), "{seen_on_b}");
        wait_for_state(&a, id, "done").await;
    }
}

/// 在 B 上取消 A 正在生成的任务：库里记为取消，A 在一两秒内停下，A 晚到的结果（如果有）也不盖掉取消；
/// 之后在 B 上重试，由某一个实例重新生成并完成。
#[tokio::test]
async fn a_job_running_on_one_instance_can_be_cancelled_from_the_other() {
    let pg = postgres::database();
    let upstream = first_request_hangs().await;
    let config = format!(
        "[storage]\nroot = \"storage\"\ndatabase = \"{pg}\"\n\n[cluster]\nlease_s = 3\n\n[[upstreams]]\nname = \"替身\"\nkind = \"gemini\"\nbase_url = \"{}\"\n",
        upstream.uri()
    );
    let (a_ws, b_ws) = (Workspace::new(&config), Workspace::new(&config));
    let (a, b) = (a_ws.serve().await, b_ws.serve().await);
    let (status, jobs) = call(
        &a,
        "submit_jobs",
        json!({"request": {"prompt": "雨", "count": 1}}),
    )
    .await;
    assert_eq!(status, 200, "{jobs}");
    let id = jobs[0]["job_id"].as_str().unwrap().to_string();
    wait_for_hits(&upstream, 1).await;
    wait_for_in_flight(&a, 1.0).await;
    wait_for_state(&b, &id, "running").await;
    let (status, view) = call(&b, "cancel_job", json!({"job_id": id})).await;
    assert_eq!(status, 200, "{view}");
    wait_for_state(&a, &id, "cancelled").await;
    // A 停下了在上游的那次调用（上游一分钟才回：没停下的话在途数一直是 1），库里仍是取消。
    wait_for_metric(
        &a,
        "gateway_in_flight",
        |v| v == 0.0,
        "A 停下被别的实例取消的任务在上游的调用",
    )
    .await;
    let state = postgres::query_text(&pg, &format!("SELECT state FROM jobs WHERE id = '{id}'"));
    assert_eq!(state.as_deref(), Some("cancelled"));
    let (status, view) = call(&b, "retry_job", json!({"job_id": id})).await;
    assert_eq!(status, 200, "{view}");
    wait_for_state(&b, &id, "done").await;
    // A 上那张卡片也跟着重试的结果变成完成（不停在“已取消”）。
    wait_for_state(&a, &id, "done").await;
    assert_eq!(upstream.received_requests().await.unwrap().len(), 2);
}

/// A 上排着、被 B 认领去生成的任务：A 的任务表在一两秒内跟着显示“生成中”（不等 A 自己空出来去认领时才发现），
/// 也不再算在 A 的排队里。在 A 上取消它（A 看到的也许还是排队中）：取消对 B 上的那次运行生效——B 停下，
/// 库里一直是取消，不会 A 上显示取消、B 上照样生成完（付了钱、图也进了图库）。
#[tokio::test]
async fn a_job_the_other_instance_claimed_shows_there_and_cancelling_it_stops_it_there() {
    let pg = postgres::database();
    // 上游一分钟才回：A 的第一张一直占着 A，B 被取消的那张看的是 B 有没有停下。
    let upstream = slow_upstream(Duration::from_secs(60)).await;
    let config = format!(
        "[storage]\nroot = \"storage\"\ndatabase = \"{pg}\"\n\n[cluster]\nlease_s = 3\n\n[limits]\nmax_concurrent = 1\n\n[[upstreams]]\nname = \"替身\"\nkind = \"gemini\"\nbase_url = \"{}\"\n",
        upstream.uri()
    );
    let (a_ws, b_ws) = (Workspace::new(&config), Workspace::new(&config));
    let a = a_ws.serve().await;
    // A 同时只生成 1 张：一张在 A 上生成（一分钟），另一张在 A 上排队。
    let (status, jobs) = call(
        &a,
        "submit_jobs",
        json!({"request": {"prompt": "雪", "count": 2}}),
    )
    .await;
    assert_eq!(status, 200, "{jobs}");
    wait_for_hits(&upstream, 1).await;
    // B 启动，认领 A 那里排着的那张并开始生成。
    let b = b_ws.serve().await;
    wait_for_hits(&upstream, 2).await;
    let claimed_at = Instant::now();
    let second =
        postgres::query_text(&pg, "SELECT id FROM jobs ORDER BY started_at DESC LIMIT 1").unwrap();
    assert!(jobs.to_string().contains(&second));
    loop {
        if state_on(&a, &second).await == "running" {
            break;
        }
        assert!(
            claimed_at.elapsed() < Duration::from_secs(3),
            "B 认领了的任务，A 上 3 秒内应显示生成中（A 自己要一分钟后才空出来）"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let db_state = || {
        postgres::query_text(
            &pg,
            &format!("SELECT state || ' ' || run FROM jobs WHERE id = '{second}'"),
        )
        .unwrap()
    };
    assert_eq!(db_state(), "running 1");
    wait_for_in_flight(&b, 1.0).await;
    let (status, view) = call(&a, "cancel_job", json!({"job_id": second})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["state"], "cancelled", "{view}");
    wait_for_state(&b, &second, "cancelled").await;
    // B 停下了它在上游的那次调用（没停下的话在途数一分钟都是 1），库里仍是取消（run 仍是 B 的那一次），A 上也是取消。
    wait_for_metric(
        &b,
        "gateway_in_flight",
        |v| v == 0.0,
        "B 停下在 A 上被取消的任务在上游的调用",
    )
    .await;
    assert_eq!(db_state(), "cancelled 1");
    wait_for_state(&a, &second, "cancelled").await;
    assert_eq!(upstream.received_requests().await.unwrap().len(), 2);
}

/// 一个实例一段时间没报上平安（例如库一时连不上），别的实例就把它正在生成的任务标为中断；它其实还在生成：
/// 在没人重试之前它把任务收回（库里又是生成中，别处不会有人再付一次钱去重试），结果照常写入，上游只收到一个请求。
#[tokio::test]
async fn an_instance_wrongly_taken_for_dead_takes_its_running_job_back() {
    let pg = postgres::database();
    let upstream = slow_upstream(Duration::from_secs(5)).await;
    let ws = Workspace::new(&format!(
        "[storage]\nroot = \"storage\"\ndatabase = \"{pg}\"\n\n[[upstreams]]\nname = \"替身\"\nkind = \"gemini\"\nbase_url = \"{}\"\n",
        upstream.uri()
    ));
    let a = ws.serve().await;
    let (status, jobs) = call(
        &a,
        "submit_jobs",
        json!({"request": {"prompt": "雾", "count": 1}}),
    )
    .await;
    assert_eq!(status, 200, "{jobs}");
    let id = jobs[0]["job_id"].as_str().unwrap().to_string();
    wait_for_hits(&upstream, 1).await;
    // 像别的实例清理“停了的实例”那样把它标为中断。
    postgres::execute(
        &pg,
        &format!("UPDATE jobs SET state = 'interrupted', error = '服务器在生成过程中停止了，可以重试' WHERE id = '{id}'"),
    );
    let marked = Instant::now();
    let state =
        || postgres::query_text(&pg, &format!("SELECT state FROM jobs WHERE id = '{id}'")).unwrap();
    while state() != "running" {
        assert!(
            marked.elapsed() < Duration::from_secs(3),
            "A 应在一两秒内收回：库里是 {}",
            state()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_for_state(&a, &id, "done").await;
    assert_eq!(state(), "done");
    assert_eq!(upstream.received_requests().await.unwrap().len(), 1);
}

/// 任务此刻在某个实例的任务表里的状态（取 `/ws` 的快照）。
async fn state_on(server: &Running, id: &str) -> String {
    use futures::StreamExt;
    let (mut socket, _) =
        tokio_tungstenite::connect_async(server.url.replace("http://", "ws://") + "/ws")
            .await
            .unwrap();
    let first = socket.next().await.unwrap().unwrap();
    let snapshot: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    snapshot["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job_id"] == id)
        .map(|j| j["state"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// 工作台连着 B，批次在 A 上收下、在 A 上生成：B 推给页面的卡片有进度——百分比在涨（只增不减）、阶段、用时与上游，
/// 完成时 100%。（只读库里的状态时，B 上一直是“生成中 0%”。）
#[tokio::test]
async fn a_page_on_one_instance_sees_live_progress_of_a_job_running_on_the_other() {
    use futures::StreamExt;
    let pg = postgres::database();
    let upstream = slow_upstream(Duration::from_secs(6)).await;
    let config = format!(
        "[storage]\nroot = \"storage\"\ndatabase = \"{pg}\"\n\n[[upstreams]]\nname = \"替身\"\nkind = \"gemini\"\nbase_url = \"{}\"\n",
        upstream.uri()
    );
    let (a_ws, b_ws) = (Workspace::new(&config), Workspace::new(&config));
    let (a, b) = (a_ws.serve().await, b_ws.serve().await);
    let (mut page, _) = tokio_tungstenite::connect_async(b.url.replace("http://", "ws://") + "/ws")
        .await
        .unwrap();
    let (status, jobs) = call(
        &a,
        "submit_jobs",
        json!({"request": {"prompt": "云", "count": 1}}),
    )
    .await;
    assert_eq!(status, 200, "{jobs}");
    let id = jobs[0]["job_id"].clone();

    // 从 B 的页面连接上记下这张卡片的每一次样子，直到完成。
    let mut running = Vec::new();
    let done = loop {
        let message = tokio::time::timeout(Duration::from_secs(30), page.next())
            .await
            .expect("B 的页面 30 秒没收到消息")
            .unwrap()
            .unwrap();
        let message: Value = serde_json::from_str(message.to_text().unwrap()).unwrap();
        let cards = match message["type"].as_str() {
            Some("snapshot") => message["jobs"].as_array().cloned().unwrap_or_default(),
            Some("job") => vec![message.clone()],
            _ => continue,
        };
        let Some(card) = cards.into_iter().find(|c| c["job_id"] == id) else {
            continue;
        };
        match card["state"].as_str().unwrap() {
            "running" => running.push(card),
            "done" => break card,
            "queued" => {}
            other => panic!("B 上的卡片是 {other}：{card}"),
        }
    };
    let percents: Vec<u64> = running
        .iter()
        .map(|c| c["percent"].as_u64().unwrap())
        .collect();
    eprintln!("B 上看到的进度：{percents:?}");
    assert!(
        percents.windows(2).all(|w| w[0] <= w[1]),
        "进度只增不减：{percents:?}"
    );
    let moving: std::collections::BTreeSet<u64> =
        percents.iter().copied().filter(|p| *p > 0).collect();
    assert!(
        moving.len() >= 2 && moving.iter().all(|p| *p < 100),
        "生成中的 6 秒里，B 上的百分比应大于 0 且在涨：{percents:?}"
    );
    let last = running.last().unwrap();
    assert_eq!(last["phase"], json!("waiting"), "{last}");
    assert_eq!(last["upstream"], json!("替身"), "{last}");
    assert!(last["elapsed_ms"].as_u64().unwrap() >= 1000, "{last}");
    assert_eq!(done["percent"], json!(100), "{done}");
    assert_eq!(upstream.received_requests().await.unwrap().len(), 1);
    drop((a, b));
}

/// 设置页的整份提交体：`view` 里的设置，第一个上游改名为 `name`。
fn renamed(view: &Value, name: &str) -> Value {
    let mut upstreams = view["upstreams"].clone();
    upstreams[0]["name"] = json!(name);
    json!({"update": {
        "upstreams": upstreams,
        "storage_root": view["storage_root"],
        "numbers": view["numbers"],
        "flags": view["flags"],
        "listen": view["listen"],
        "shared_version": view["shared_version"],
    }})
}

/// `[cluster] shared_settings`：设置存在库里。B 启动时用库里的（不用自己本机文件里的）；在 A 上保存，
/// B 2 秒内生效，本机文件都不变；用旧表单保存被拒绝（不盖掉别人的改动）；改监听地址只改 A 自己（写进 A 的本机文件）。
#[tokio::test]
async fn settings_saved_on_one_instance_apply_on_the_other() {
    let pg = postgres::database();
    let demo = demo_upstream(&[]).await;
    let config = |name: &str, burst: u32| {
        format!(
            "[storage]\nroot = \"storage\"\ndatabase = \"{pg}\"\n\n[cluster]\nshared_settings = true\n\n[limits]\nburst = {burst}\n\n[[upstreams]]\nname = \"{name}\"\nkind = \"gemini\"\nbase_url = \"{}\"\n",
            demo.url
        )
    };
    let (a_ws, b_ws) = (
        Workspace::new(&config("甲", 7)),
        Workspace::new(&config("乙", 9)),
    );
    let a = a_ws.serve().await;
    let b = b_ws.serve().await;
    let a_file = a_ws.path().join("factory.toml");
    let (a_before, b_before) = (
        std::fs::read(&a_file).unwrap(),
        std::fs::read(b_ws.path().join("factory.toml")).unwrap(),
    );

    // A 先启动，它的配置成了库里的第 1 版；B 用库里的，不用本机文件里的“乙”与 burst = 9。
    let (_, view_b) = admin(&b, "get_settings", json!({})).await;
    assert_eq!(view_b["shared_version"], json!(1), "{view_b}");
    assert_eq!(view_b["upstreams"][0]["name"], json!("甲"));
    assert_eq!(view_b["numbers"]["limits.burst"], json!(7), "{view_b}");
    assert!(view_b["config_path"]
        .as_str()
        .unwrap()
        .ends_with("factory.toml"));

    // 在 A 上改名为“丙”：写进库里（第 2 版），A 立即生效，B 2 秒内生效。
    let (_, view_a) = admin(&a, "get_settings", json!({})).await;
    let (status, saved) = admin(&a, "save_settings", renamed(&view_a, "丙")).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["shared_version"], json!(2));
    let saved_at = Instant::now();
    let view_b2 = loop {
        let (_, view) = admin(&b, "get_settings", json!({})).await;
        if view["upstreams"][0]["name"] == json!("丙") {
            break view;
        }
        assert!(
            saved_at.elapsed() < Duration::from_secs(3),
            "B 一直没换上新设置：{view}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("B 在 {:?} 后换上了 A 保存的设置", saved_at.elapsed());
    assert_eq!(view_b2["shared_version"], json!(2));
    let text = postgres::query_text(&pg, "SELECT text FROM shared_config WHERE id = 1").unwrap();
    assert!(text.contains("丙"), "{text}");
    assert_eq!(
        std::fs::read(&a_file).unwrap(),
        a_before,
        "设置不写进本机文件"
    );

    // B 上那份第 1 版的旧表单：拒绝，说明原因，什么都不改。
    let (status, refused) = admin(&b, "save_settings", renamed(&view_b, "丁")).await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("另一个实例"),
        "{refused}"
    );
    let (_, view_a2) = admin(&a, "get_settings", json!({})).await;
    assert_eq!(view_a2["upstreams"][0]["name"], json!("丙"));
    assert_eq!(view_a2["shared_version"], json!(2));

    // 在 A 上改监听地址：只改 A（写进 A 的本机文件），库里的版本不变，B 照旧。
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut body = renamed(&view_a2, "丙");
    body["update"]["listen"] = json!(format!("127.0.0.1:{port}"));
    let (status, moved) = admin(&a, "save_settings", body).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["listen"], json!(format!("127.0.0.1:{port}")));
    assert_eq!(
        moved["shared_version"],
        json!(2),
        "只改本实例的几项不出新版本"
    );
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200, "A 在新端口上服务");
    let a_text = std::fs::read_to_string(&a_file).unwrap();
    assert!(
        a_text.contains(&format!("listen = \"127.0.0.1:{port}\"")),
        "{a_text}"
    );
    assert!(a_text.contains("甲"), "A 本机文件的其余内容不变：{a_text}");
    let (_, view_b3) = admin(&b, "get_settings", json!({})).await;
    assert_eq!(
        view_b3["listen"],
        json!(b.url.trim_start_matches("http://"))
    );
    assert_eq!(
        std::fs::read(b_ws.path().join("factory.toml")).unwrap(),
        b_before
    );
}

/// 熔断共用：A 上连续失败到熔断后，B 一两秒内也跳过这个上游，不必自己再失败几次（数上游收到的请求）。
#[tokio::test]
async fn an_upstream_opened_on_one_instance_is_skipped_on_the_other() {
    let pg = postgres::database();
    let upstream = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("坏了"))
        .mount(&upstream)
        .await;
    let config = format!(
        "[server]\nmetrics_public = true\n\n[storage]\nroot = \"storage\"\ndatabase = \"{pg}\"\n\n[retry]\nmax_attempts = 1\nbreaker_failures = 2\nbreaker_cooldown_s = 60\n\n[[upstreams]]\nname = \"替身\"\nkind = \"gemini\"\nbase_url = \"{}\"\n",
        upstream.uri()
    );
    let (a_ws, b_ws) = (Workspace::new(&config), Workspace::new(&config));
    let (a, b) = (a_ws.serve().await, b_ws.serve().await);
    let generate = |server: &Running| {
        reqwest::Client::new()
            .post(format!("{}/v1/images/generations", server.url))
            .json(&json!({"prompt": "熔断", "response_format": "url"}))
            .send()
    };
    for _ in 0..2 {
        let res = generate(&a).await.unwrap();
        assert!(!res.status().is_success(), "上游回 500");
    }
    assert_eq!(upstream.received_requests().await.unwrap().len(), 2);
    let open = |metrics: &str| {
        metrics.lines().any(|l| {
            l.starts_with("gateway_breaker_open{") && l.contains("替身") && l.ends_with(" 1")
        })
    };
    let metrics_of = metrics_text;
    assert!(open(&metrics_of(&a).await), "A 熔断了");
    let started = Instant::now();
    while !open(&metrics_of(&b).await) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "B 一直没跟着熔断"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let res = generate(&b).await.unwrap();
    let status = res.status();
    let body = res.text().await.unwrap();
    assert!(!status.is_success(), "{body}");
    assert!(body.contains("已暂停使用"), "{body}");
    assert_eq!(
        upstream.received_requests().await.unwrap().len(),
        2,
        "B 直接跳过熔断中的上游，没有再发请求"
    );
}
