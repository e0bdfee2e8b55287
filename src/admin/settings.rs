//! 设置的读取、保存（整份校验 → 原子写文件 → 热更新，经 `ConfigStore`）、API 密钥与“测试连接”。
//! 设置页的服务器函数（`crate::app::settings`）调用这里；守卫（登录、本机、同源）是 `crate::access::guard`，在路由上对整个 `/api/admin` 生效。

use crate::config::table::{flags_of, numbers_of, with_settings};
use crate::config::{Config, S3Config, StorageConfig, UpstreamConfig, UpstreamKind};
use crate::error::ApiError;
use crate::state::AppState;
use crate::types::settings::{
    CreatedKey, KeyInfo, KeyLimits, MoneyForm, ProbeResult, RootInfo, S3Form, SettingsUpdate,
    SettingsView, UpstreamForm,
};
use std::path::PathBuf;

fn parse_kind(index: usize, kind: &str) -> Result<UpstreamKind, ApiError> {
    kind.parse()
        .map_err(|why| ApiError::InvalidRequest(format!("第 {} 个上游的{why}", index + 1)))
}

/// 设置页“花费”一节此刻的值。
fn money_form(config: &Config) -> MoneyForm {
    MoneyForm {
        currency: config.usage.currency,
        cny_per_usd: config.usage.cny_per_usd,
        studio_max_spend_per_day: config.limits.studio_max_spend_per_day,
        studio_max_spend_per_month: config.limits.studio_max_spend_per_month,
    }
}

/// 设置页创建的密钥（只有前缀）、它们的额度与最近一次使用。
fn key_infos(state: &AppState, config: &Config) -> Vec<KeyInfo> {
    key_infos_of(state, config, None)
}

/// 同上，`owner` 不为空时只要这个账号的（成员看自己的密钥）。
pub fn key_infos_of(state: &AppState, config: &Config, owner: Option<&str>) -> Vec<KeyInfo> {
    config
        .auth
        .keys
        .iter()
        .filter(|k| owner.is_none_or(|o| k.owner == o))
        .map(|k| KeyInfo {
            owner: k.owner.clone(),
            label: k.label.clone(),
            prefix: k.prefix.clone(),
            created_at: k.created_at.clone(),
            last_used: state.key_usage.last_used(&k.sha256),
            images_per_day: k.images_per_day,
            max_concurrent: k.max_concurrent,
            max_spend_per_day: k.max_spend_per_day,
            max_spend_per_month: k.max_spend_per_month,
        })
        .collect()
}

/// 设置页看到的设置。密钥只给“是否已设置”。
pub async fn view(state: &AppState) -> Result<SettingsView, ApiError> {
    let config = state.config.load_full();
    let mut upstreams = config.upstreams.clone();
    upstreams.sort_by_key(|u| u.priority);
    let current_root = state.storage.root();
    let counts = state.storage.image_counts_by_root().await?;
    let mut roots: Vec<RootInfo> = counts
        .into_iter()
        .map(|(path, images)| RootInfo {
            free_bytes: free_bytes(&path),
            path,
            images,
        })
        .collect();
    if !roots.iter().any(|r| r.path == current_root) {
        roots.push(RootInfo {
            free_bytes: free_bytes(&current_root),
            path: current_root,
            images: 0,
        });
    }
    Ok(SettingsView {
        upstreams: upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| UpstreamForm {
                share_with_previous: i > 0 && upstreams[i - 1].priority == u.priority,
                name: u.name.clone(),
                kind: u.kind.as_str().into(),
                base_url: u.base_url.clone(),
                model: u.served_models().join(", "),
                max_concurrent: u.max_concurrent,
                weight: u.weight,
                api_key_set: u.key_pool().iter().any(|k| !k.is_empty()),
                api_key_count: u.key_pool().iter().filter(|k| !k.is_empty()).count(),
                key_states: state.gateway.key_states(&config, u),
                api_key: String::new(),
                clear_api_key: false,
                previous_name: u.name.clone(),
            })
            .collect(),
        storage_root: config.storage.root.display().to_string(),
        s3: S3Form {
            endpoint: config.storage.s3.endpoint.clone(),
            region: config.storage.s3.region.clone(),
            access_key_id: config.storage.s3.access_key_id.clone(),
            secret_access_key: String::new(),
            secret_set: !config.storage.s3.secret_access_key.is_empty(),
        },
        database: config.storage.database_display(),
        roots,
        listen: state
            .listeners
            .current_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|| config.server.listen.clone()),
        numbers: numbers_of(&config),
        flags: flags_of(&config),
        config_path: state.config_store.file().path.display().to_string(),
        shared_version: state.config_store.shared_version(),
        admin_password_set: !config.auth.admin_password_hash.is_empty(),
        studio_password_set: !config.auth.studio_password_hash.is_empty(),
        money: money_form(&config),
        keys: key_infos(state, &config),
        plain_keys: config.auth.api_keys.len(),
    })
}

/// 所在文件系统的可用空间。
/// 本地目录所在磁盘的剩余空间；对象存储不显示。
fn free_bytes(root: &str) -> Option<u64> {
    if crate::storage::blobs::is_object_store(root) {
        return None;
    }
    fs4::available_space(root).ok()
}

/// 表单里的密钥留空时，原来那个上游存着的密钥怎么办。存着的密钥只发给原来的主机：
/// 免得有人把地址改成自己的服务器、点一下“测试连接”或保存后等下一次生成，就拿走存着的密钥。
#[derive(Clone, Copy, PartialEq)]
enum KeyReuse {
    /// 保存：地址的协议、主机与端口没变时沿用；变了而没重新填密钥的，拒绝保存（400）。
    SameOriginOrRefuse,
    /// 测试连接、获取模型列表：只在地址一字未改时沿用，否则不带密钥去试。
    SameAddressOnly,
}

/// 两个地址的协议、主机与端口（缺省端口按协议补上）是否相同；解析不了的算不同。
fn same_origin(a: &str, b: &str) -> bool {
    match (url::Url::parse(a.trim()), url::Url::parse(b.trim())) {
        (Ok(a), Ok(b)) => a.origin() == b.origin() && a.origin().is_tuple(),
        _ => false,
    }
}

/// 主机（给错误说明用；解析不了的原样）。
fn host_of(url: &str) -> String {
    url::Url::parse(url.trim())
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| url.trim().to_string())
}

/// 表单里的上游 → 配置里的上游；密钥留空时按 `reuse` 沿用原来那个上游的。
fn upstream_of(
    current: &Config,
    index: usize,
    form: &UpstreamForm,
    reuse: KeyReuse,
) -> Result<UpstreamConfig, ApiError> {
    let previous = current
        .upstreams
        .iter()
        .find(|u| !form.previous_name.is_empty() && u.name == form.previous_name);
    // 新密钥一行一个（也可用逗号分隔）；整个池换成这些。
    let typed: Vec<String> = form
        .api_key
        .split(['\n', ','])
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    let stored: Vec<String> = previous
        .map(|u| u.key_pool().into_iter().filter(|k| !k.is_empty()).collect())
        .unwrap_or_default();
    let previous_keys = match (previous, reuse) {
        (Some(u), KeyReuse::SameAddressOnly) if u.base_url.trim() == form.base_url.trim() => stored,
        (Some(u), KeyReuse::SameOriginOrRefuse) if same_origin(&u.base_url, &form.base_url) => {
            stored
        }
        // 新地址解析不了、或不是 http(s) 的：不带密钥（整份校验会指出地址的问题）。
        (Some(_), KeyReuse::SameOriginOrRefuse)
            if !stored.is_empty()
                && typed.is_empty()
                && !form.clear_api_key
                && url::Url::parse(form.base_url.trim())
                    .is_ok_and(|u| matches!(u.scheme(), "http" | "https")) =>
        {
            return Err(ApiError::InvalidRequest(format!(
                "第 {} 个上游“{}”的地址改到了 {}：请重新填写它的 API 密钥（原来的密钥不会发给新地址），或勾选清除密钥",
                index + 1,
                form.name.trim(),
                host_of(&form.base_url)
            )));
        }
        _ => Vec::new(),
    };
    let keys: Vec<String> = if form.clear_api_key {
        Vec::new()
    } else if !typed.is_empty() {
        typed
    } else {
        previous_keys
    };
    let models: Vec<String> = form
        .model
        .split([',', '，', ' ', '\n'])
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
        .collect();
    let (api_key, api_keys) = match keys.len() {
        0 => (String::new(), Vec::new()),
        1 => (keys[0].clone(), Vec::new()),
        _ => (String::new(), keys),
    };
    Ok(UpstreamConfig {
        name: form.name.trim().to_string(),
        kind: parse_kind(index, &form.kind)?,
        base_url: form.base_url.trim().to_string(),
        api_key,
        api_keys,
        model: models.first().cloned().unwrap_or_default(),
        models: if models.len() > 1 { models } else { Vec::new() },
        // 列表顺序即优先级。
        priority: index as i32,
        weight: form.weight,
        max_concurrent: form.max_concurrent,
        // 设置页不改配额重置时刻与密钥的每月花费上限：沿用原来的（新建的用默认）。
        quota_reset: previous
            .map(|u| u.quota_reset.clone())
            .unwrap_or_else(|| crate::config::DEFAULT_QUOTA_RESET.into()),
        on_size_mismatch: previous.map(|u| u.on_size_mismatch).unwrap_or_default(),
        key_max_spend_per_month: previous.map_or(0.0, |u| u.key_max_spend_per_month),
    })
}

/// 保存整份设置：整份校验；通过则写入配置文件（旧的留作 .bak）并立即生效。
/// 监听地址变了：先绑定新地址，失败则什么都不改（旧地址照常服务）。
pub async fn save(state: &AppState, update: SettingsUpdate) -> Result<SettingsView, ApiError> {
    let edit = state.config_store.edit().await;
    let current = edit.base.clone();
    let running = state.config_store.shared_version();
    if let (Some(form), Some(running)) = (update.shared_version, running) {
        if form != running {
            return Err(crate::config::ConfigError::Stale { current: running }.into());
        }
    }
    let mut next = with_settings(&current, &update.numbers, &update.flags)?;
    next.upstreams = upstreams_from_forms(&current, &update.upstreams)?;
    apply_storage_root(&mut next, &current, &update.storage_root)?;
    if let Some(form) = update.s3 {
        apply_s3_form(&mut next.storage.s3, &current.storage.s3, form)?;
    }
    if let Some(money) = update.money {
        next.usage.currency = money.currency;
        next.usage.cny_per_usd = money.cny_per_usd;
        next.limits.studio_max_spend_per_day = money.studio_max_spend_per_day;
        next.limits.studio_max_spend_per_month = money.studio_max_spend_per_month;
    }
    next.server.listen = update.listen.trim().to_string();
    // 集群模式下监听地址写进本机文件：表单里的就是正在服务的地址（例如由 --listen 指定的）时不算改动。
    let keep_listen =
        running.is_some() && update.listen.trim().parse().ok() == state.listeners.current_addr();
    if keep_listen {
        next.server.listen = current.server.listen.clone();
    }
    refuse_exposure_without_admin_password(state, &current, &next)?;
    if update.clear_studio_password {
        next.auth.studio_password_hash.clear();
    } else if !update.studio_password.is_empty() {
        next.auth.studio_password_hash = studio_password_hash(update.studio_password).await?;
    }

    let checked = edit.check(next).await?;
    check_buckets(state, &current, &checked.config.storage).await?;
    let listener = bind_if_moved(state, checked.config.listen_addr(), keep_listen).await?;
    edit.commit(checked).await?;
    let mut view = view(state).await?;
    if let Some(listener) = listener {
        // 先组好响应，再切换：旧连接上的这个请求照常答完，旧地址随后排空关闭。
        let addr = state
            .listeners
            .serve(listener)
            .map_err(|e| ApiError::InvalidRequest(format!("无法在新地址上服务：{e}")))?;
        view.listen = addr.to_string();
    }
    Ok(view)
}

/// 表单里的上游列表 → 配置里的上游。列表顺序即优先级；“与上一个同级”的沿用上一个的优先级（按权重分担）。
fn upstreams_from_forms(
    current: &Config,
    forms: &[UpstreamForm],
) -> Result<Vec<UpstreamConfig>, ApiError> {
    let mut upstreams = forms
        .iter()
        .enumerate()
        .map(|(i, form)| upstream_of(current, i, form, KeyReuse::SameOriginOrRefuse))
        .collect::<Result<Vec<_>, _>>()?;
    for i in 1..upstreams.len() {
        if forms[i].share_with_previous {
            upstreams[i].priority = upstreams[i - 1].priority;
        }
    }
    Ok(upstreams)
}

/// 按表单改存储根（不能为空）。原来没有单独写数据库位置时，改根目录把数据库固定在原处，旧图片仍在图库里。
fn apply_storage_root(next: &mut Config, current: &Config, root: &str) -> Result<(), ApiError> {
    let root = root.trim();
    if root.is_empty() {
        return Err(ApiError::InvalidRequest("存储目录不能为空".into()));
    }
    let root = PathBuf::from(root);
    if root != current.storage.root && current.storage.database.as_os_str().is_empty() {
        // 改根目录：数据库固定在原处，旧图片仍在图库里。
        next.storage.database = current.storage.database_path();
    }
    next.storage.root = root;
    Ok(())
}

/// 按表单改对象存储的连接（各项去掉首尾空白）。Secret 留空表示沿用原来的；
/// 但地址换到了别处时不沿用（原来的密钥不发给新地址），要求重新填写。
fn apply_s3_form(s3: &mut S3Config, current: &S3Config, form: S3Form) -> Result<(), ApiError> {
    s3.endpoint = form.endpoint.trim().to_string();
    s3.region = form.region.trim().to_string();
    s3.access_key_id = form.access_key_id.trim().to_string();
    if !form.secret_access_key.is_empty() {
        s3.secret_access_key = form.secret_access_key;
    } else if !s3.secret_access_key.is_empty()
        && !same_origin(&s3.endpoint, &current.endpoint)
        && s3.endpoint.trim() != current.endpoint.trim()
    {
        return Err(ApiError::InvalidRequest(format!(
            "对象存储的地址改到了 {}：请重新填写 Secret Access Key（原来的不会发给新地址）",
            host_of(&s3.endpoint)
        )));
    }
    Ok(())
}

/// 没有管理员密码时改成别人也能访问的地址：保存之后设置页就进不来了（见 `access::exposure`），先要设密码。
fn refuse_exposure_without_admin_password(
    state: &AppState,
    current: &Config,
    next: &Config,
) -> Result<(), ApiError> {
    if next.auth.admin_password_hash.is_empty() {
        if let Ok(addr) = next.server.listen.parse::<std::net::SocketAddr>() {
            if crate::access::exposure::admin_password_required(next, addr)
                && !crate::access::exposure::admin_password_required(current, state.listen_addr())
            {
                return Err(ApiError::InvalidRequest(format!(
                    "要监听 {addr}（别人也能访问到），请先设管理员密码：运行 drafting-factory hash-password，把输出填到配置的 auth.admin_password_hash，重启后再改"
                )));
            }
        }
    }
    Ok(())
}

/// 要用到对象存储的根：真的写一个对象再删掉，写不进去就不保存（与本地目录的“可写”检查一样）。
/// 新的存储根是 s3:// 时查它；连接改了时，还要查图库里记录着的每个 s3:// 根（旧图还在桶里，改坏了连接它们就取不到了）。
async fn check_buckets(
    state: &AppState,
    current: &Config,
    storage: &StorageConfig,
) -> Result<(), ApiError> {
    let mut buckets: Vec<String> = storage
        .root
        .to_str()
        .filter(|r| crate::storage::blobs::is_object_store(r))
        .map(str::to_string)
        .into_iter()
        .collect();
    if storage.s3 != current.storage.s3 {
        for (root, _) in state.storage.image_counts_by_root().await? {
            if crate::storage::blobs::is_object_store(&root) && !buckets.contains(&root) {
                buckets.push(root);
            }
        }
    }
    for root in buckets {
        crate::storage::blobs::check_writable(&root, storage.s3.clone())
            .await
            .map_err(|e| ApiError::InvalidRequest(format!("{e}（设置未保存）")))?;
    }
    Ok(())
}

/// 正在服务的地址与要的不同时，先绑定新地址（没有在服务的地址时——例如进程内的测试——无可切换）；
/// 绑定不上就报错，设置不保存，旧地址继续服务。
async fn bind_if_moved(
    state: &AppState,
    wanted: std::net::SocketAddr,
    keep_listen: bool,
) -> Result<Option<tokio::net::TcpListener>, ApiError> {
    Ok(match state.listeners.current_addr() {
        Some(current) if current != wanted && !keep_listen => {
            Some(tokio::net::TcpListener::bind(wanted).await.map_err(|e| {
                ApiError::InvalidRequest(format!(
                    "无法监听 {wanted}：{e}（旧地址继续服务，设置未保存）"
                ))
            })?)
        }
        _ => None,
    })
}

/// 设置页填的工作台密码 → argon2 哈希（慢是刻意的，放在阻塞线程里）。
async fn studio_password_hash(password: String) -> Result<String, ApiError> {
    if password.chars().count() < 8 {
        return Err(ApiError::InvalidRequest("工作台密码至少 8 个字符".into()));
    }
    crate::access::login::argon2_limited(move || crate::access::login::hash_password(&password))
        .await?
        .map_err(ApiError::Internal)
}

/// 创建一个 `/v1` 密钥。原文只在这次返回里出现，配置里只存 SHA-256。
/// `owner`：密钥属于哪个账号（空为不属于任何人）；要是一个在用的账号。
pub async fn create_key(
    state: &AppState,
    viewer: &crate::access::accounts::Viewer,
    label: String,
    limits: KeyLimits,
    owner: String,
) -> Result<CreatedKey, ApiError> {
    use rand::distr::{Alphanumeric, SampleString};
    let label = label.trim().to_string();
    let owner = owner.trim().to_string();
    if !owner.is_empty() && !state.accounts.enabled(&owner) {
        return Err(ApiError::InvalidRequest(format!(
            "没有叫“{owner}”的在用账号，密钥不能属于它"
        )));
    }
    let key = format!("sk-df-{}", Alphanumeric.sample_string(&mut rand::rng(), 40));
    let prefix = key[..12].to_string();
    let entry = crate::config::ApiKeyEntry {
        label: label.clone(),
        prefix: prefix.clone(),
        sha256: crate::web::sha256_hex(&key),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        images_per_day: limits.images_per_day,
        max_concurrent: limits.max_concurrent,
        max_spend_per_day: limits.max_spend_per_day,
        max_spend_per_month: limits.max_spend_per_month,
        owner: owner.clone(),
    };
    state
        .config_store
        .update(|next| {
            next.auth.keys.push(entry);
            Ok(())
        })
        .await?;
    tracing::info!(%prefix, "已创建 API 密钥");
    let whose = if owner.is_empty() {
        String::new()
    } else {
        format!("，属于“{owner}”")
    };
    let detail = format!("“{label}”（{prefix}…{whose}）");
    crate::admin::accounts::record(state, viewer, "创建 API 密钥", &detail).await;
    Ok(CreatedKey { key, prefix, label })
}

/// 吊销一个设置页创建的密钥（按前缀），立即生效。`only_owner` 不为空时只吊销这个账号的（成员吊销自己的）。
pub async fn revoke_key(
    state: &AppState,
    viewer: &crate::access::accounts::Viewer,
    prefix: String,
    only_owner: Option<String>,
) -> Result<(), ApiError> {
    let mut found = true;
    state
        .config_store
        .update(|next| {
            let before = next.auth.keys.len();
            next.auth.keys.retain(|k| {
                k.prefix != prefix || only_owner.as_ref().is_some_and(|o| *o != k.owner)
            });
            found = next.auth.keys.len() != before;
            Ok(())
        })
        .await?;
    if !found {
        return Err(ApiError::NotFound);
    }
    tracing::info!(%prefix, "已吊销 API 密钥");
    crate::admin::accounts::record(state, viewer, "吊销 API 密钥", &format!("{prefix}…")).await;
    Ok(())
}

/// 表单里这个上游提供的模型名。
pub async fn list_models(state: &AppState, form: UpstreamForm) -> Result<Vec<String>, ApiError> {
    let current = state.config.load_full();
    let upstream = upstream_of(&current, 0, &form, KeyReuse::SameAddressOnly)?;
    state
        .gateway
        .list_models(&upstream)
        .await
        .map_err(|e| ApiError::InvalidRequest(format!("获取模型列表失败：{e}")))
}

/// “测试连接”：对表单里的这个上游做一次真实的小请求。
pub async fn probe(state: &AppState, form: UpstreamForm) -> Result<ProbeResult, ApiError> {
    let current = state.config.load_full();
    let upstream = upstream_of(&current, 0, &form, KeyReuse::SameAddressOnly)?;
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
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_keys_follow_only_the_same_scheme_host_and_port() {
        assert!(same_origin(
            "https://proxy.example.com",
            "https://proxy.example.com:443/v1beta"
        ));
        assert!(!same_origin(
            "https://proxy.example.com",
            "http://proxy.example.com"
        ));
        assert!(!same_origin(
            "https://proxy.example.com",
            "https://proxy.example.com.evil.example"
        ));
        assert!(!same_origin(
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8081"
        ));
        assert!(!same_origin("不是地址", "不是地址"));
        assert_eq!(host_of("https://evil.example:9/x"), "evil.example");
    }
}
