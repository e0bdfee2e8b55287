//! 异步的 `/v1` 图像任务（本服务的扩展，给慢的 4K 图用）：请求带 `Prefer: respond-async` 时，
//! `POST /v1/images/generations` 与 `/edits` 立即回 202 `{"id","object":"image.task","status":"queued"}`；
//! 之后 `GET /v1/images/tasks/{id}` 取状态，完成时带上与同步请求一样的 `data`（默认 `url`，
//! `?response_format=b64_json` 时给 base64）。
//!
//! 任务就是工作台任务表里的一个批次：一起排队、重启后照常继续（运行中的记为中断），工作台上也看得到；
//! 只有创建它的 API 密钥（没有密钥时是同一个 IP）能查到它，别人查是 404。
//!
//! `GET` 带 `Accept: text/event-stream` 时改为 SSE：先发一次此刻的状态，之后每次状态或完成张数变了发一条
//! （`event: status`），结束时（succeeded / failed / cancelled）发最后一条（成功时带 `data` 的图片链接）后关闭；
//! `DELETE` 取消任务：排队中的不再开始，正在等上游的停下（不存图），已经完成的图留着。

use super::auth::Caller;
use super::idempotency::{Key, Produced};
use super::images_response::{images_response_with, response_format};
use crate::error::ApiError;
use crate::gateway::{ImageRequest, InputImage};
use crate::produce::References;
use crate::state::AppState;
use crate::types::money::Micros;
use crate::types::{JobState, JobView, SubmitRequest};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

/// 一个要异步生成的请求（已校验）。
pub struct Order {
    pub request: ImageRequest,
    pub references: Vec<InputImage>,
    pub count: u32,
    /// 提交者（`Caller::rate_limit_key`）：只有它能查这个任务。
    pub caller: String,
    pub key: Option<Key>,
}

/// 排进任务队列，回 202 与任务 id。带幂等键时，重发得到同一个任务。
/// 异步任务按要的张数计入额度（任务在后台跑，这里不等它的结果）；重发得到同一个任务时不再计入。
pub async fn submit(
    state: &AppState,
    order: Order,
    ticket: crate::access::budget::BudgetTicket,
) -> Result<Response, ApiError> {
    let Order {
        request,
        references,
        count,
        caller,
        key,
    } = order;
    let ran = state
        .idempotency
        .run(key, || async {
            let references = References::store(&state.storage, references).await?;
            let submit = SubmitRequest {
                // `/v1` 的提示词里没有变量：花括号按字面。
                prompt: crate::types::batch::literal(&request.prompt),
                count,
                aspect_ratio: request.aspect_ratio,
                image_size: request.image_size,
                model: request.model.clone().unwrap_or_default(),
                references: references.ids,
                ..SubmitRequest::default()
            };
            // 额度已在这次请求收下时占过（见 `images::respond`）。
            let views = crate::admit::batch(state, submit, &caller, &request.account, None).await?;
            let id = views.first().map(|v| v.batch_id.clone());
            Ok(vec![Produced {
                id,
                revised_prompt: None,
                base64: None,
                model: None,
            }])
        })
        .await;
    // 任务在后台慢慢跑：按要的张数与收下时的估价结算（不等结果）。
    match &ran {
        Ok(ran) if ran.fresh => ticket.settle_as_reserved(),
        _ => ticket.settle(0, Micros::ZERO),
    }
    let id = ran?
        .produced
        .first()
        .and_then(|p| p.id.clone())
        .ok_or_else(|| ApiError::Internal("任务没有 id".into()))?;
    tracing::info!(task = %id, count, "已排入异步图像任务");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "id": id,
            "object": "image.task",
            "status": "queued",
            "created": chrono::Utc::now().timestamp(),
        })),
    )
        .into_response())
}

#[derive(serde::Deserialize)]
pub struct TaskQuery {
    response_format: Option<String>,
}

/// 任务的整体状态：有在排队或运行的就是 queued/running；都结束了，有图就是 succeeded（可能只成了几张），
/// 没有图而有被取消的是 cancelled，否则 failed。
fn status_of(jobs: &[JobView]) -> &'static str {
    if jobs.iter().any(|j| j.state == JobState::Running) {
        "running"
    } else if jobs.iter().any(|j| j.state == JobState::Queued) {
        "queued"
    } else if jobs.iter().any(|j| j.image.is_some()) {
        "succeeded"
    } else if jobs.iter().any(|j| j.state == JobState::Cancelled) {
        "cancelled"
    } else {
        "failed"
    }
}

/// 任务是这个调用方的：它的全部卡片；别人的任务和不存在一样（404）。
async fn own_task(state: &AppState, caller: &Caller, id: &str) -> Result<Vec<JobView>, ApiError> {
    let (owner, jobs) = state.jobs.batch(id).await?.ok_or(ApiError::NotFound)?;
    if owner != caller.rate_limit_key() {
        return Err(ApiError::NotFound);
    }
    Ok(jobs)
}

/// 状态的 JSON（不含图）：`id`、`object`、`status`、`total`、`done`，失败时带 `error`。
fn status_body(id: &str, jobs: &[JobView]) -> serde_json::Value {
    let status = status_of(jobs);
    let mut body = json!({
        "id": id,
        "object": "image.task",
        "status": status,
        "total": jobs.len(),
        "done": jobs.iter().filter(|j| j.image.is_some()).count(),
    });
    if status == "failed" {
        let reason = jobs
            .iter()
            .find_map(|j| j.error.clone())
            .unwrap_or_default();
        body["error"] = json!({"message": reason, "type": "server_error", "param": null, "code": "task_failed"});
    }
    body
}

/// `DELETE /v1/images/tasks/{id}`：取消，回此刻的状态（全部没有图时是 `cancelled`；已完成的图留着，照样是 `succeeded`）。
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    own_task(&state, &caller, &id).await?;
    state.jobs.cancel_batch(&id).await?;
    let jobs = own_task(&state, &caller, &id).await?;
    tracing::info!(task = %id, "已取消异步图像任务");
    Ok(Json(status_body(&id, &jobs)).into_response())
}

/// 请求要的是 SSE（`Accept: text/event-stream`）。
fn wants_events(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"))
}

/// SSE：先发此刻的状态，之后状态或完成张数每变一次发一条，结束时发最后一条（成功时带图片链接）后关闭。
/// 跟着任务管理器的变化通知走（不轮询）；保活注释的间隔与对话接口相同。
async fn events(state: AppState, id: String, jobs: Vec<JobView>, base_url: String) -> Response {
    use axum::response::sse::{Event, Sse};
    use futures::StreamExt;
    let ids: std::collections::HashSet<String> = jobs.iter().map(|j| j.job_id.clone()).collect();
    let changes = state.jobs.subscribe();
    let first = status_body(&id, &jobs);
    // （通知、上次发出的状态、结束了没有）
    let stream = futures::stream::unfold(
        (changes, Some(first), None::<serde_json::Value>, false),
        move |(mut changes, pending, last, ended)| {
            let (state, id, ids, base) = (state.clone(), id.clone(), ids.clone(), base_url.clone());
            async move {
                if ended {
                    return None;
                }
                // 先发此刻的状态；之后等到这个任务的卡片有变化、且状态或完成张数真的变了。
                let body = match pending {
                    Some(body) => body,
                    None => loop {
                        match changes.recv().await {
                            Ok(crate::jobs::Change::Job(job)) if ids.contains(&job) => {}
                            Ok(_) => continue,
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                        }
                        let Ok(Some((_, jobs))) = state.jobs.batch(&id).await else {
                            return None;
                        };
                        let body = status_body(&id, &jobs);
                        let same = last.as_ref().is_some_and(|l| {
                            l["status"] == body["status"] && l["done"] == body["done"]
                        });
                        if !same {
                            break body;
                        }
                    },
                };
                let done = body["status"] != "queued" && body["status"] != "running";
                let body = if done {
                    with_links(&state, &id, body, &base).await
                } else {
                    body
                };
                let event = Event::default().event("status").data(body.to_string());
                Some((event, (changes, None, Some(body), done)))
            }
        },
    )
    .map(Ok::<_, std::convert::Infallible>);
    Sse::new(stream)
        .keep_alive(super::sse::keep_alive())
        .into_response()
}

/// 结束的状态加上图片的签名链接（`data: [{"url"}]`，与同步请求的 `url` 格式一样）。
async fn with_links(
    state: &AppState,
    id: &str,
    mut body: serde_json::Value,
    base_url: &str,
) -> serde_json::Value {
    if body["status"] != "succeeded" {
        return body;
    }
    let ttl = state.config.load().server.file_url_ttl_s;
    if let Ok(Some((_, jobs))) = state.jobs.batch(id).await {
        let links: Vec<serde_json::Value> = jobs
            .iter()
            .filter_map(|j| j.image.as_ref())
            .map(|image| json!({ "url": format!("{base_url}{}", state.url_signer.sign(&image.id, ttl)) }))
            .collect();
        body["data"] = json!(links);
    }
    body
}

/// `GET /v1/images/tasks/{id}`
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(query): Query<TaskQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = response_format(Some(query.response_format.as_deref().unwrap_or("url")))?;
    let jobs = own_task(&state, &caller, &id).await?;
    if wants_events(&headers) {
        let base_url = super::images_response::public_base_url(&state, &headers);
        return Ok(events(state, id, jobs, base_url).await);
    }
    let body = status_body(&id, &jobs);
    if body["status"] != "succeeded" {
        return Ok(Json(body).into_response());
    }
    // 完成：与同步请求一样的图像响应，再加上任务的字段。
    let produced = jobs
        .iter()
        .filter_map(|j| j.image.as_ref())
        .map(|image| Produced {
            id: Some(image.id.clone()),
            revised_prompt: None,
            base64: None,
            model: None,
        })
        .collect();
    // 图照样从文件边读边编码（不把整个响应先读进内存再改）：任务的字段接在响应体的顶层。
    let extra = body.as_object().cloned().unwrap_or_default();
    images_response_with(&state, &headers, format, produced, &extra).await
}
