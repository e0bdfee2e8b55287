//! 设置的读取、保存（整份校验 → 原子写文件 → 热更新）与“测试连接”。

use crate::app::settings_types::{
    CreatedKey, KeyInfo, Numbers, ProbeResult, RootInfo, SettingsUpdate, SettingsView, UpstreamForm,
};
use crate::config::{Config, UpstreamConfig, UpstreamKind};
use crate::error::ApiError;
use crate::openai::OpenAiJson;
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use std::path::PathBuf;
use std::sync::Arc;

fn kind_str(kind: UpstreamKind) -> &'static str {
    match kind {
        UpstreamKind::Gemini => "gemini",
        UpstreamKind::OpenaiImages => "openai-images",
        UpstreamKind::OpenaiChat => "openai-chat",
    }
}

fn parse_kind(index: usize, kind: &str) -> Result<UpstreamKind, ApiError> {
    match kind.trim() {
        "gemini" => Ok(UpstreamKind::Gemini),
        "openai-images" => Ok(UpstreamKind::OpenaiImages),
        "openai-chat" => Ok(UpstreamKind::OpenaiChat),
        other => Err(ApiError::InvalidRequest(format!(
            "第 {} 个上游的类型“{other}”未知，可选：gemini、openai-images、openai-chat",
            index + 1
        ))),
    }
}

fn numbers_of(c: &Config) -> Numbers {
    Numbers {
        requests_per_minute: c.limits.requests_per_minute,
        burst: c.limits.burst,
        max_concurrent: c.limits.max_concurrent,
        queue_size: c.limits.queue_size,
        max_attempts: c.retry.max_attempts,
        base_delay_ms: c.retry.base_delay_ms,
        max_delay_ms: c.retry.max_delay_ms,
        retry_maybe_billed: c.retry.retry_maybe_billed,
        breaker_failures: c.retry.breaker_failures,
        breaker_cooldown_s: c.retry.breaker_cooldown_s,
        connect_ms: c.timeouts.connect_ms,
        attempt_s: c.timeouts.attempt_s,
        total_s: c.timeouts.total_s,
        max_upload_mb: c.storage.max_upload_mb,
    }
}

async fn view(state: &AppState) -> Result<SettingsView, ApiError> {
    let config = state.config.load_full();
    let mut upstreams = config.upstreams.clone();
    upstreams.sort_by_key(|u| u.priority);
    let current_root = state.storage.root();
    let counts = state.storage.image_counts_by_root().await?;
    let mut roots: Vec<RootInfo> = counts
        .into_iter()
        .map(|(path, images)| RootInfo {
            free_bytes: free_bytes(&PathBuf::from(&path)),
            path,
            images,
        })
        .collect();
    if !roots
        .iter()
        .any(|r| std::path::Path::new(&r.path) == current_root)
    {
        roots.push(RootInfo {
            path: current_root.display().to_string(),
            images: 0,
            free_bytes: free_bytes(&current_root),
        });
    }
    Ok(SettingsView {
        upstreams: upstreams
            .iter()
            .map(|u| UpstreamForm {
                name: u.name.clone(),
                kind: kind_str(u.kind).into(),
                base_url: u.base_url.clone(),
                model: u.model.clone(),
                max_concurrent: u.max_concurrent,
                api_key_set: !u.api_key.is_empty(),
                api_key: String::new(),
                clear_api_key: false,
                previous_name: u.name.clone(),
            })
            .collect(),
        storage_root: config.storage.root.display().to_string(),
        database: config.storage.database_path().display().to_string(),
        roots,
        listen: state
            .listeners
            .current_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|| config.server.listen.clone()),
        numbers: numbers_of(&config),
        config_path: state.config_file.path.display().to_string(),
        admin_password_set: !config.auth.admin_password_hash.is_empty(),
        keys: config
            .auth
            .keys
            .iter()
            .map(|k| KeyInfo {
                label: k.label.clone(),
                prefix: k.prefix.clone(),
                created_at: k.created_at.clone(),
                last_used: state.key_usage.last_used(&k.sha256),
            })
            .collect(),
        plain_keys: config.auth.api_keys.len(),
    })
}

/// 所在文件系统的可用空间。
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    fs4::available_space(path).ok()
}

/// `GET /admin/api/settings`。密钥只给“是否已设置”。
pub async fn read(State(state): State<AppState>) -> Result<Json<SettingsView>, ApiError> {
    Ok(Json(view(&state).await?))
}

/// 表单里的上游 → 配置里的上游；密钥留空时沿用原来那个上游的。
fn upstream_of(
    current: &Config,
    index: usize,
    form: &UpstreamForm,
) -> Result<UpstreamConfig, ApiError> {
    let previous_key = current
        .upstreams
        .iter()
        .find(|u| !form.previous_name.is_empty() && u.name == form.previous_name)
        .map(|u| u.api_key.clone())
        .unwrap_or_default();
    let api_key = if form.clear_api_key {
        String::new()
    } else if !form.api_key.trim().is_empty() {
        form.api_key.trim().to_string()
    } else {
        previous_key
    };
    Ok(UpstreamConfig {
        name: form.name.trim().to_string(),
        kind: parse_kind(index, &form.kind)?,
        base_url: form.base_url.trim().to_string(),
        api_key,
        model: form.model.trim().to_string(),
        // 列表顺序即优先级。
        priority: index as i32,
        max_concurrent: form.max_concurrent,
    })
}

/// `PUT /admin/api/settings`：整份校验；通过则写入配置文件（旧的留作 .bak）并立即生效。
pub async fn update(
    State(state): State<AppState>,
    OpenAiJson(update): OpenAiJson<SettingsUpdate>,
) -> Result<Json<SettingsView>, ApiError> {
    let current = state.config.load_full();
    let mut next = (*current).clone();
    next.upstreams = update
        .upstreams
        .iter()
        .enumerate()
        .map(|(i, form)| upstream_of(&current, i, form))
        .collect::<Result<_, _>>()?;
    let root = update.storage_root.trim();
    if root.is_empty() {
        return Err(ApiError::InvalidRequest("存储目录不能为空".into()));
    }
    let root = PathBuf::from(root);
    if root != current.storage.root && current.storage.database.as_os_str().is_empty() {
        // 改根目录：数据库固定在原处，旧图片仍在图库里。
        next.storage.database = current.storage.database_path();
    }
    next.storage.root = root;
    let n = &update.numbers;
    next.limits.requests_per_minute = n.requests_per_minute;
    next.limits.burst = n.burst;
    next.limits.max_concurrent = n.max_concurrent;
    next.limits.queue_size = n.queue_size;
    next.retry.max_attempts = n.max_attempts;
    next.retry.base_delay_ms = n.base_delay_ms;
    next.retry.max_delay_ms = n.max_delay_ms;
    next.retry.retry_maybe_billed = n.retry_maybe_billed;
    next.retry.breaker_failures = n.breaker_failures;
    next.retry.breaker_cooldown_s = n.breaker_cooldown_s;
    next.timeouts.connect_ms = n.connect_ms;
    next.timeouts.attempt_s = n.attempt_s;
    next.timeouts.total_s = n.total_s;
    next.storage.max_upload_mb = n.max_upload_mb;
    next.server.listen = update.listen.trim().to_string();

    let file = state.config_file.clone();
    let checked = file.check(&next)?;
    let wanted = checked.config.listen_addr();
    // 监听地址变了：先绑定新地址；失败则什么都不改（旧地址照常服务）。
    let listener = if Some(wanted) != state.listeners.current_addr() {
        Some(tokio::net::TcpListener::bind(wanted).await.map_err(|e| {
            ApiError::InvalidRequest(format!(
                "无法监听 {wanted}：{e}（旧地址继续服务，设置未保存）"
            ))
        })?)
    } else {
        None
    };
    let saved = checked.write()?;
    state.storage.set_root(saved.storage.root.clone());
    state.config.store(Arc::new(saved));
    tracing::info!(path = %state.config_file.path.display(), "设置已保存并生效");
    let mut view = view(&state).await?;
    if let Some(listener) = listener {
        // 先组好响应，再切换：旧连接上的这个请求照常答完，旧地址随后排空关闭。
        let addr = state
            .listeners
            .serve(listener)
            .map_err(|e| ApiError::InvalidRequest(format!("无法在新地址上服务：{e}")))?;
        view.listen = addr.to_string();
    }
    Ok(Json(view))
}

/// 校验、写文件、换入：所有改配置的操作都走这里。
async fn save_and_apply(state: &AppState, next: Config) -> Result<(), ApiError> {
    let file = state.config_file.clone();
    let saved = tokio::task::spawn_blocking(move || file.save(&next))
        .await
        .map_err(|e| ApiError::InvalidRequest(format!("保存被中断：{e}")))??;
    state.storage.set_root(saved.storage.root.clone());
    state.config.store(Arc::new(saved));
    tracing::info!(path = %state.config_file.path.display(), "设置已保存并生效");
    Ok(())
}

#[derive(serde::Deserialize)]
pub struct NewKey {
    label: String,
}

/// `POST /admin/api/keys`，`{"label":"…"}`：创建一个 `/v1` 密钥。原文只在这次响应里出现，配置里只存 SHA-256。
pub async fn create_key(
    State(state): State<AppState>,
    OpenAiJson(req): OpenAiJson<NewKey>,
) -> Result<Json<CreatedKey>, ApiError> {
    use rand::distr::{Alphanumeric, SampleString};
    let label = req.label.trim().to_string();
    let key = format!("sk-df-{}", Alphanumeric.sample_string(&mut rand::rng(), 40));
    let prefix = key[..12].to_string();
    let mut next = (*state.config.load_full()).clone();
    next.auth.keys.push(crate::config::ApiKeyEntry {
        label: label.clone(),
        prefix: prefix.clone(),
        sha256: crate::openai::auth::sha256_hex(&key),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    save_and_apply(&state, next).await?;
    tracing::info!(%prefix, "已创建 API 密钥");
    Ok(Json(CreatedKey { key, prefix, label }))
}

/// `DELETE /admin/api/keys/{prefix}`：吊销，立即生效。
pub async fn revoke_key(
    State(state): State<AppState>,
    axum::extract::Path(prefix): axum::extract::Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    let mut next = (*state.config.load_full()).clone();
    let before = next.auth.keys.len();
    next.auth.keys.retain(|k| k.prefix != prefix);
    if next.auth.keys.len() == before {
        return Err(ApiError::NotFound);
    }
    save_and_apply(&state, next).await?;
    tracing::info!(%prefix, "已吊销 API 密钥");
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `POST /admin/api/list-models`，`{"upstream":{…}}`：该上游提供的模型名。
pub async fn list_models(
    State(state): State<AppState>,
    OpenAiJson(req): OpenAiJson<ProbeRequest>,
) -> Result<Json<Vec<String>>, ApiError> {
    let current = state.config.load_full();
    let upstream = upstream_of(&current, 0, &req.upstream)?;
    let models = state
        .gateway
        .list_models(&upstream)
        .await
        .map_err(|e| ApiError::InvalidRequest(format!("获取模型列表失败：{e}")))?;
    Ok(Json(models))
}

#[derive(serde::Deserialize)]
pub struct ProbeRequest {
    upstream: UpstreamForm,
}

/// `POST /admin/api/test-upstream`：对表单里的这个上游做一次真实的小请求。
pub async fn probe(
    State(state): State<AppState>,
    OpenAiJson(req): OpenAiJson<ProbeRequest>,
) -> Result<Json<ProbeResult>, ApiError> {
    let current = state.config.load_full();
    let upstream = upstream_of(&current, 0, &req.upstream)?;
    if url::Url::parse(&upstream.base_url)
        .map(|u| !matches!(u.scheme(), "http" | "https"))
        .unwrap_or(true)
    {
        return Err(ApiError::InvalidRequest(
            "上游地址必须是 http:// 或 https:// 开头的完整 URL".into(),
        ));
    }
    let result = match state.gateway.probe(&upstream).await {
        Ok(latency) => ProbeResult {
            ok: true,
            latency_ms: latency.as_millis() as u64,
            message: format!("连接正常，收到图片（{} ms）", latency.as_millis()),
        },
        Err(e) => ProbeResult {
            ok: false,
            latency_ms: 0,
            message: e.to_string(),
        },
    };
    Ok(Json(result))
}
