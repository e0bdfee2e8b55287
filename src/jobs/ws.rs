//! `GET /ws`：每个页面一条 WebSocket。先发全部任务的快照，之后推送变化：
//! 状态或阶段变了（开始、等待上游、完成、失败……）立刻发；只是进度数字在变时，
//! 同一任务 100 ms 内最多发一条，其余合并（每张卡片每秒约 10 次进度更新）。
//! 跟不上广播（落后太多）时重发快照，浏览器据此整体重建。

use super::{Change, JobManager};
use crate::access::budget::{SocketCounts, MAX_SOCKETS_PER_IP};
use crate::types::{JobMessage, JobState, JobView, Phase};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// 合并窗口：只是进度数字在变时，同一任务两条更新之间至少隔这么久。
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// 检查合并窗口是否已过的间隔。
const TICK: Duration = Duration::from_millis(20);

/// 浏览器发来的一帧（或一条消息）最多这么大：页面只收不发，不需要更多。
const MAX_INCOMING: usize = 4 * 1024;

pub async fn handler(
    ws: WebSocketUpgrade,
    State(jobs): State<JobManager>,
    State(sockets): State<SocketCounts>,
    State(config): State<crate::config::ConfigHandle>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    axum::Extension(viewer): axum::Extension<crate::access::accounts::Viewer>,
    headers: axum::http::HeaderMap,
) -> Response {
    // 每个客户端 IP（在可信代理之后按 X-Forwarded-For）同时最多 32 条连接（握手之前就拒绝）。
    // 同源与登录已由 `crate::access` 的守卫检查过。
    let ip = crate::web::client_ip(&config.load(), &headers, peer);
    let Some(slot) = sockets.open(ip) else {
        return crate::error::ApiError::QueueFull(format!(
            "这个地址打开的实时连接太多了（最多 {MAX_SOCKETS_PER_IP} 条），请关掉一些页面"
        ))
        .into_response();
    };
    ws.max_frame_size(MAX_INCOMING)
        .max_message_size(MAX_INCOMING)
        .on_upgrade(move |socket| async move {
            serve(socket, jobs, viewer.0.map(|p| p.name)).await;
            drop(slot);
        })
}

async fn send(socket: &mut WebSocket, message: &JobMessage) -> Result<(), axum::Error> {
    let text = serde_json::to_string(message).expect("任务消息总能序列化");
    socket.send(Message::Text(text.into())).await
}

/// `only`：登录了账号时只推这个账号的卡片（别人的批次不出现在他的工作台上）。
async fn serve(mut socket: WebSocket, jobs: JobManager, only: Option<String>) {
    let mine = |view: &JobView| only.as_ref().is_none_or(|name| view.owner == *name);
    // 先订阅再取快照：两者之间发生的变化不会漏掉（最多重复一次）。
    let mut changes = jobs.subscribe();
    if send(&mut socket, &snapshot(&jobs, &mine)).await.is_err() {
        return;
    }
    let mut sent: HashMap<String, Sent> = HashMap::new();
    let mut dirty: Vec<String> = Vec::new();
    // 排队顺序：变了就标记，最多每 100 ms 发一次（一批 256 张开始运行时不会每张都发一遍整个队列）。
    let mut queue_dirty = false;
    let mut queue_sent = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            change = changes.recv() => match change {
                Ok(Change::Job(id)) => {
                    let Some(view) = jobs.view(&id).filter(|v| mine(v)) else { continue };
                    let due = sent.get(&id).is_none_or(|s| s.state != view.state || s.phase != view.phase || s.at.elapsed() >= FLUSH_EVERY);
                    if due {
                        dirty.retain(|d| *d != id);
                        if push(&mut socket, &mut sent, view).await.is_err() {
                            return;
                        }
                    } else if !dirty.contains(&id) {
                        dirty.push(id);
                    }
                }
                Ok(Change::Removed(job_id)) => {
                    dirty.retain(|d| *d != job_id);
                    sent.remove(&job_id);
                    if send(&mut socket, &JobMessage::Removed { job_id }).await.is_err() {
                        return;
                    }
                }
                Ok(Change::Queue) => queue_dirty = true,
                Err(RecvError::Lagged(_)) => {
                    dirty.clear();
                    sent.clear();
                    queue_dirty = false;
                    if send(&mut socket, &snapshot(&jobs, &mine)).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                // 合并窗口已过的任务，发出它此刻的样子。
                let ready: Vec<String> = dirty
                    .iter()
                    .filter(|id| sent.get(*id).is_none_or(|s| s.at.elapsed() >= FLUSH_EVERY))
                    .cloned()
                    .collect();
                dirty.retain(|id| !ready.contains(id));
                for id in ready {
                    if let Some(view) = jobs.view(&id) {
                        if push(&mut socket, &mut sent, view).await.is_err() {
                            return;
                        }
                    }
                }
                if queue_dirty && queue_sent.elapsed() >= FLUSH_EVERY {
                    queue_dirty = false;
                    queue_sent = Instant::now();
                    let message = JobMessage::Queue { job_ids: jobs.queue_order() };
                    if send(&mut socket, &message).await.is_err() {
                        return;
                    }
                }
            },
            incoming = socket.recv() => match incoming {
                // 浏览器只收不发；关闭或出错即结束。
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

fn snapshot(jobs: &JobManager, mine: &impl Fn(&JobView) -> bool) -> JobMessage {
    JobMessage::Snapshot {
        jobs: jobs.snapshot().into_iter().filter(|v| mine(v)).collect(),
        queue: jobs.queue_order(),
    }
}

/// 这条连接上每个任务最近一次发出的状态与时刻。
struct Sent {
    state: JobState,
    phase: Option<Phase>,
    at: Instant,
}

async fn push(
    socket: &mut WebSocket,
    sent: &mut HashMap<String, Sent>,
    view: JobView,
) -> Result<(), axum::Error> {
    sent.insert(
        view.job_id.clone(),
        Sent {
            state: view.state,
            phase: view.phase,
            at: Instant::now(),
        },
    );
    send(socket, &JobMessage::Job(Box::new(view))).await
}
