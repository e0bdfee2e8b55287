//! `GET /v1/models`：列出各上游提供的模型（并集）。

use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let config = state.config.load();
    let upstreams = state.gateway.upstreams(&config);
    // 全部上游提供的模型（并集）；`owned_by` 是第一个提供它的上游。
    let data: Vec<Value> = state
        .gateway
        .models(&config)
        .into_iter()
        .map(|m| {
            let owner = upstreams
                .iter()
                .find(|u| u.serves(&m))
                .map(|u| u.name.clone())
                .unwrap_or_default();
            // 扩展字段：模型目录里的能力（不认识的模型按最宽松的）。
            let caps = crate::catalogue::lookup(&config, &m);
            json!({"id": m, "object": "model", "created": 0, "owned_by": owner,
                   "name": caps.name, "family": caps.family,
                   "aspect_ratios": caps.aspect_ratios, "sizes": caps.sizes,
                   "max_references": caps.max_references, "google_search": caps.grounding,
                   "prices": caps.prices, "known": caps.known})
        })
        .collect();
    Json(json!({"object": "list", "data": data}))
}
