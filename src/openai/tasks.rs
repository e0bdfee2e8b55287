//! 异步的 `/v1` 图像任务（本服务的扩展，给慢的 4K 图用）：请求带 `Prefer: respond-async` 时，
//! `POST /v1/images/generations` 与 `/edits` 立即回 202 `{"id","object":"image.task","status":"queued"}`；
//! 之后 `GET /v1/images/tasks/{id}` 取状态，完成时带上与同步请求一样的 `data`（默认 `url`，
//! `?response_format=b64_json` 时给 base64）。
//!
//! 任务就是工作台任务表里的一个批次：一起排队、重启后照常继续（运行中的记为中断），工作台上也看得到；
//! 只有创建它的 API 密钥（没有密钥时是同一个 IP）能查到它，别人查是 404。

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

/// 任务的整体状态：有在排队或运行的就是 queued/running；都结束了，有图就是 succeeded（可能只成了几张），否则 failed。
fn status_of(jobs: &[JobView]) -> &'static str {
    if jobs.iter().any(|j| j.state == JobState::Running) {
        "running"
    } else if jobs.iter().any(|j| j.state == JobState::Queued) {
        "queued"
    } else if jobs.iter().any(|j| j.image.is_some()) {
        "succeeded"
    } else {
        "failed"
    }
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
    let (owner, jobs) = state.jobs.batch(&id).await?.ok_or(ApiError::NotFound)?;
    if owner != caller.rate_limit_key() {
        // 别人的任务：和不存在一样。
        return Err(ApiError::NotFound);
    }
    let status = status_of(&jobs);
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
    if status != "succeeded" {
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
