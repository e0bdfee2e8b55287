//! `GET /ws`：每个页面一条 WebSocket。先发全部任务的快照，之后推送变化；
//! 同一任务在 100 ms 内的多次变化合并成一条（每张卡片每秒最多约 10 次更新）。
//! 跟不上广播（落后太多）时重发快照，浏览器据此整体重建。

use super::{Change, JobManager};
use crate::app::types::JobMessage;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// 合并窗口。
const FLUSH_EVERY: Duration = Duration::from_millis(100);

pub async fn handler(ws: WebSocketUpgrade, State(jobs): State<JobManager>) -> Response {
    ws.on_upgrade(move |socket| serve(socket, jobs))
}

async fn send(socket: &mut WebSocket, message: &JobMessage) -> Result<(), axum::Error> {
    let text = serde_json::to_string(message).expect("任务消息总能序列化");
    socket.send(Message::Text(text.into())).await
}

async fn serve(mut socket: WebSocket, jobs: JobManager) {
    // 先订阅再取快照：两者之间发生的变化不会漏掉（最多重复一次）。
    let mut changes = jobs.subscribe();
    if send(
        &mut socket,
        &JobMessage::Snapshot {
            jobs: jobs.snapshot(),
        },
    )
    .await
    .is_err()
    {
        return;
    }
    let mut dirty: Vec<String> = Vec::new();
    let mut removed: Vec<String> = Vec::new();
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            change = changes.recv() => match change {
                Ok(Change::Job(id)) => {
                    if !dirty.contains(&id) {
                        dirty.push(id);
                    }
                }
                Ok(Change::Removed(id)) => {
                    dirty.retain(|d| *d != id);
                    removed.push(id);
                }
                Err(RecvError::Lagged(_)) => {
                    dirty.clear();
                    removed.clear();
                    if send(&mut socket, &JobMessage::Snapshot { jobs: jobs.snapshot() }).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                for id in dirty.drain(..) {
                    if let Some(view) = jobs.view(&id) {
                        if send(&mut socket, &JobMessage::Job(Box::new(view))).await.is_err() {
                            return;
                        }
                    }
                }
                for job_id in removed.drain(..) {
                    if send(&mut socket, &JobMessage::Removed { job_id }).await.is_err() {
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
