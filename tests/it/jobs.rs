//! 任务管理器：先来先服务、并发上限、/ws 推送（先快照、合并、进度只增）、取消、重试、重启恢复。
//! 都经真实的 HTTP 与 WebSocket，对着真实的二进制与演示上游。

use crate::common::*;
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn submit(server: &Running, prompt: &str, count: u32) -> Vec<String> {
    let (status, jobs) = call(
        server,
        "submit_jobs",
        json!({"request": {"prompt": prompt, "count": count}}),
    )
    .await;
    assert_eq!(status, 200, "{jobs}");
    // 返回的是本批各任务（序号倒序无所谓），按序号排好。
    let mut jobs = jobs.as_array().unwrap().clone();
    jobs.sort_by_key(|j| j["index"].as_u64());
    jobs.iter()
        .map(|j| j["job_id"].as_str().unwrap().to_string())
        .collect()
}

async fn connect(server: &Running) -> Socket {
    let url = format!("{}/ws", server.url.replacen("http://", "ws://", 1));
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

async fn next_message(socket: &mut Socket) -> Option<Value> {
    let msg = tokio::time::timeout(Duration::from_secs(60), socket.next())
        .await
        .expect("60 秒内应有推送")?
        .unwrap();
    match msg {
        Message::Text(text) => Some(serde_json::from_str(&text).unwrap()),
        _ => Some(Value::Null),
    }
}

/// 每个任务收到的全部更新（到达时刻、内容）。
#[derive(Default)]
struct Timeline {
    updates: HashMap<String, Vec<(Instant, Value)>>,
}

impl Timeline {
    fn push(&mut self, view: Value) {
        let id = view["job_id"].as_str().unwrap().to_string();
        self.updates
            .entry(id)
            .or_default()
            .push((Instant::now(), view));
    }

    fn last_state(&self, id: &str) -> String {
        self.updates[id].last().unwrap().1["state"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn first_time_in(&self, id: &str, state: &str) -> Option<Instant> {
        self.updates
            .get(id)?
            .iter()
            .find(|(_, v)| v["state"] == state)
            .map(|(t, _)| *t)
    }
}

/// 读推送，直到这些任务都到达某个终态。
async fn watch_until_finished(socket: &mut Socket, ids: &[String], timeline: &mut Timeline) {
    let done = |t: &Timeline| {
        ids.iter().all(|id| {
            t.updates.contains_key(id)
                && ["done", "failed", "cancelled", "interrupted"]
                    .contains(&t.last_state(id).as_str())
        })
    };
    while !done(timeline) {
        let msg = next_message(socket).await.expect("连接不应中断");
        match msg["type"].as_str() {
            Some("job") => timeline.push(msg),
            Some("snapshot") => {
                for view in msg["jobs"].as_array().unwrap() {
                    timeline.push(view.clone());
                }
            }
            _ => {}
        }
    }
}

fn config(demo: &Running, max_concurrent: u32) -> String {
    format!(
        "{}\n[limits]\nmax_concurrent = {max_concurrent}\n",
        config_with_upstream(&demo.url)
    )
}

#[tokio::test]
async fn batches_run_first_come_first_served_under_the_cap_with_monotonic_progress() {
    let demo = demo_upstream(&["--delay-ms", "600"]).await;
    let ws = Workspace::new(&config(&demo, 2));
    let server = ws.serve().await;
    let mut socket = connect(&server).await;
    let first = next_message(&mut socket).await.unwrap();
    assert_eq!(first["type"], "snapshot", "连接后第一条是快照");
    assert_eq!(first["jobs"], json!([]));

    let a = submit(&server, "第一批", 3).await;
    let b = submit(&server, "第二批", 2).await;
    let all: Vec<String> = a.iter().chain(&b).cloned().collect();
    let mut timeline = Timeline::default();
    watch_until_finished(&mut socket, &all, &mut timeline).await;

    for id in &all {
        assert_eq!(timeline.last_state(id), "done");
        let updates = &timeline.updates[id];
        // 进度只增不减；100 只出现在完成时，且那时已有图片。
        let percents: Vec<u64> = updates
            .iter()
            .map(|(_, v)| v["percent"].as_u64().unwrap())
            .collect();
        assert!(
            percents.windows(2).all(|w| w[0] <= w[1]),
            "{id}: {percents:?}"
        );
        for (_, v) in updates {
            assert_eq!(v["percent"] == 100, v["state"] == "done", "{v}");
        }
        let last = &updates.last().unwrap().1;
        assert!(last["image"]["url"]
            .as_str()
            .unwrap()
            .starts_with("/files/"));
        // 等上游时能看到阶段与估计的进度（600 ms 的延迟，250 ms 刷新一次）。
        assert!(
            updates
                .iter()
                .any(|(_, v)| v["phase"] == "waiting" && v["percent"].as_u64() > Some(0)),
            "{id} 应有“等待上游”的进度"
        );
        // 合并：进度更新每个任务每秒最多约 10 条；状态或阶段的每次转换另外立刻发一条。
        let (t0, t1) = (updates.first().unwrap().0, updates.last().unwrap().0);
        let secs = (t1 - t0).as_secs_f64().max(0.1);
        let transitions = updates
            .windows(2)
            .filter(|w| w[0].1["state"] != w[1].1["state"] || w[0].1["phase"] != w[1].1["phase"])
            .count();
        assert!(
            updates.len() as f64 <= secs * 10.0 + 3.0 + transitions as f64,
            "{id}: {} 条（其中转换 {transitions} 次）/ {secs:.2} 秒",
            updates.len()
        );
    }

    // 开始运行的先后 = 提交的先后。
    let mut by_start: Vec<&String> = all.iter().collect();
    by_start.sort_by_key(|id| timeline.first_time_in(id, "running").unwrap());
    assert_eq!(by_start, all.iter().collect::<Vec<_>>());

    // 任何时刻运行中的不超过 2 个：按每个任务的 [开始, 完成) 区间计算最大重叠。
    let mut edges: Vec<(Instant, i32)> = Vec::new();
    for id in &all {
        edges.push((timeline.first_time_in(id, "running").unwrap(), 1));
        edges.push((timeline.first_time_in(id, "done").unwrap(), -1));
    }
    edges.sort_by_key(|(t, delta)| (*t, *delta));
    let (mut now, mut peak) = (0, 0);
    for (_, delta) in edges {
        now += delta;
        peak = peak.max(now);
    }
    assert_eq!(peak, 2, "并发上限是 2，而且应当用满");
}

#[tokio::test]
async fn cancel_running_and_queued_then_retry() {
    let demo = demo_upstream(&["--delay-ms", "30000"]).await;
    let ws = Workspace::new(&config(&demo, 1));
    let server = ws.serve().await;
    let ids = submit(&server, "要取消的", 2).await;
    // 第一张在跑（等上游 30 秒），第二张在排队。
    let started = Instant::now();
    let (status, _) = call(&server, "cancel_job", json!({"job_id": "不存在"})).await;
    assert_eq!(status, 404);
    loop {
        let mut socket = connect(&server).await;
        let snap = next_message(&mut socket).await.unwrap();
        let state = |id: &str| {
            snap["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|j| j["job_id"] == id)
                .unwrap()["state"]
                .clone()
        };
        if state(&ids[0]) == "running" && state(&ids[1]) == "queued" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in &ids {
        let (status, view) = call(&server, "cancel_job", json!({"job_id": id})).await;
        assert_eq!(status, 200, "{view}");
        assert_eq!(view["state"], "cancelled");
    }
    // 取消即中止上游请求：网关的在途请求数很快回到 0（远不到上游的 30 秒）。
    // 中止是异步的：等这个条件成立（最多 5 秒），而不是立刻读一次。指标行必须存在（它刚才是 1）。
    loop {
        let metrics = metrics_text(&server).await;
        let in_flight = metrics
            .lines()
            .find(|l| l.starts_with("gateway_in_flight"))
            .expect("指标里应当有 gateway_in_flight")
            .to_string();
        if in_flight.ends_with(" 0") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "取消后在途数没有归零：{in_flight}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // 已取消的不能再取消。
    let (status, err) = call(&server, "cancel_job", json!({"job_id": ids[0]})).await;
    assert_eq!(status, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("已取消"));

    // 上游改快（演示上游运行中可调），再重试第二张。
    let res = reqwest::Client::new()
        .post(format!("{}/_demo/options", demo.url))
        .json(&json!({"delay_ms": "0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (status, view) = call(&server, "retry_job", json!({"job_id": ids[1]})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["state"], "queued");
    assert_eq!(view["percent"], 0);
    let mut socket = connect(&server).await;
    let mut timeline = Timeline::default();
    watch_until_finished(&mut socket, &ids[1..], &mut timeline).await;
    assert_eq!(timeline.last_state(&ids[1]), "done");
    assert_eq!(
        timeline.updates[&ids[1]].last().unwrap().1["run"],
        2,
        "重试是第二次运行"
    );
    let (status, _) = call(&server, "retry_job", json!({"job_id": ids[1]})).await;
    assert_eq!(status, 400, "已完成的不需要重试");
}

#[tokio::test]
async fn restart_mid_batch_loses_no_job() {
    let demo = demo_upstream(&["--delay-ms", "1500"]).await;
    let ws = Workspace::new(&config(&demo, 1));
    let mut server = ws.serve().await;
    let ids = submit(&server, "重启前提交的", 3).await;
    // 等到有一张正在等上游（快照里是 running、阶段是等待上游），记下是哪张，立刻 SIGKILL。
    // 只认刚开始等的（本次运行不到 800 ms，上游要等 1500 ms）：等了很久的那张可能在杀掉之前恰好完成。
    let started = Instant::now();
    let running = loop {
        let mut socket = connect(&server).await;
        let snap = next_message(&mut socket).await.unwrap();
        let waiting = snap["jobs"].as_array().unwrap().iter().find(|j| {
            j["state"] == "running"
                && j["phase"] == "waiting"
                && j["elapsed_ms"].as_u64().unwrap() < 800
        });
        if let Some(job) = waiting {
            break job["job_id"].as_str().unwrap().to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "没有任务开始等上游"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();

    let server = ws.serve().await;
    let mut socket = connect(&server).await;
    let mut timeline = Timeline::default();
    watch_until_finished(&mut socket, &ids, &mut timeline).await;
    assert_eq!(
        timeline.last_state(&running),
        "interrupted",
        "运行中被杀的显示中断"
    );
    assert!(timeline.updates[&running].last().unwrap().1["error"]
        .as_str()
        .unwrap()
        .contains("可以重试"));
    for id in ids.iter().filter(|id| **id != running) {
        assert_eq!(
            timeline.last_state(id),
            "done",
            "其余的（排队中或已完成的）重启后都是完成"
        );
    }
    // 中断的可以重试成功。
    let (status, _) = call(&server, "retry_job", json!({"job_id": running})).await;
    assert_eq!(status, 200);
    watch_until_finished(
        &mut socket,
        std::slice::from_ref(&running),
        &mut Timeline::default(),
    )
    .await;
    let mut socket = connect(&server).await;
    let snap = next_message(&mut socket).await.unwrap();
    let states: Vec<&str> = snap["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["done", "done", "done"]);

    // 再重启一次：从库里读出的已完成任务仍显示用时（上游每张要 1.5 秒），不是 0。
    // 推送里的“完成”先于写库（写库是后台按顺序做的）：等库里三张都是完成了再杀，否则杀得太快的那张重启后是中断。
    let deadline = Deadline::new(20, "库里三张任务都是完成");
    while ws.db(|c| {
        c.query_one(
            "SELECT COUNT(*) FROM jobs WHERE state = 'done'",
            params![],
            |r| r.get::<i64>(0),
        )
    }) < 3
    {
        deadline.tick().await;
    }
    drop(socket);
    let mut server = server;
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();
    let server = ws.serve().await;
    let snap = next_message(&mut connect(&server).await).await.unwrap();
    for job in snap["jobs"].as_array().unwrap() {
        let elapsed = job["elapsed_ms"].as_u64().unwrap();
        assert!(elapsed >= 1500, "重启后已完成的任务的用时：{elapsed} ms");
    }
    drop(demo);
}
