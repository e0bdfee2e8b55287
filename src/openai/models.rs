//! `GET /v1/models`：列出已配置上游的模型。

use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let config = state.config.load();
    let mut seen = std::collections::HashSet::new();
    let data: Vec<Value> = state
        .gateway
        .upstreams(&config)
        .into_iter()
        .filter(|u| seen.insert(u.model.clone()))
        .map(|u| json!({"id": u.model, "object": "model", "created": 0, "owned_by": u.name}))
        .collect();
    Json(json!({"object": "list", "data": data}))
}
