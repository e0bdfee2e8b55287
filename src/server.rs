//! 组装 axum 路由与中间件，并启动服务。

use crate::access::sessions::Sessions;
use crate::access::signed::UrlSigner;
use crate::app::{shell, App};
use crate::config::{Config, ConfigError, ConfigFile, ConfigHandle, ConfigStore, LoadedConfig};
use crate::demo::{self, DemoOptions};
use crate::gateway::Gateway;
use crate::jobs::JobManager;
use crate::produce::Producer;
use crate::state::AppState;
use crate::storage::{Storage, StorageError};
use crate::types::PageInfo;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use leptos::config::LeptosOptions;
use leptos::prelude::{provide_context, use_context};
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// 编译进二进制的运行时站点参数（见仓库根目录的 Leptos.toml）。
const LEPTOS_TOML: &str = include_str!("../Leptos.toml");

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("无法监听 {addr}：{}", bind_reason(source))]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("无法启动内置演示上游：{0}")]
    Demo(std::io::Error),
    #[error("无法打开存储：{0}")]
    Storage(#[from] StorageError),
    #[error("Leptos.toml 无效：{0}")]
    Site(String),
    #[error(
        "站点目录 {} 不是拆分构建（缺少 {missing}）：页面的 island 都是按需加载的（#[island(lazy)]），\
         它们的代码只在 --split 拆出的块里；不带 --split 构建的站点页面看得到、但永远不会水合（点不动）。\
         请用 `cargo leptos build --release --split` 重新构建（开发时 `cargo leptos watch --split`；bash scripts/run.sh 已带 --split）",
        pkg.display()
    )]
    UnsplitSite { pkg: PathBuf, missing: String },
    #[error("服务异常退出：{0}")]
    Serve(std::io::Error),
}

fn bind_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => "该地址已被占用（是否已有一个实例在运行？）".into(),
        std::io::ErrorKind::PermissionDenied => "没有权限（1024 以下的端口需要特权）".into(),
        std::io::ErrorKind::AddrNotAvailable => "本机没有这个地址".into(),
        _ => e.to_string(),
    }
}

/// 读取 Leptos.toml，环境变量 `LEPTOS_*` 可覆盖其中各项；站点目录解析成绝对路径，
/// 并确认它不是不带 `--split` 的构建（见 `check_site_is_split`）。
pub fn leptos_options() -> Result<LeptosOptions, StartError> {
    let text = format!("[package.metadata.leptos]\n{LEPTOS_TOML}");
    let mut options =
        leptos::config::get_config_from_str(&text).map_err(|e| StartError::Site(e.to_string()))?;
    let root = resolve_site_root(&options.site_root, &options.site_pkg_dir);
    check_site_is_split(&root, &options.site_pkg_dir, &options.output_name)?;
    options.site_root = root.to_string_lossy().as_ref().into();
    Ok(options)
}

/// 页面的 island 都是 `#[island(lazy)]`（本二进制总是这样编译的）：它们的代码只在拆分构建
/// （`cargo leptos build --split`）拆出的块里，由拆分器写出的加载器 JS 与清单找到。不带 `--split` 的构建
/// （每个 Leptos 开发者都会敲的 `cargo leptos build --release`）有主 WASM 与主 JS，而主 JS 导入的加载器不存在：
/// 页面照样显示，却永远不会水合。这样的站点让服务器拒绝启动，并说出该用的命令。
///
/// 只在站点目录里确有一次浏览器端构建（`pkg/<输出名>.wasm` 在）时检查：没有构建站点的（多数集成测试不设站点、
/// 或只放一个样式表的临时站点）照常启动——那样的页面本来就没有交互，也不会被误当作能用。
fn check_site_is_split(
    site_root: &Path,
    pkg_dir: &str,
    output_name: &str,
) -> Result<(), StartError> {
    use crate::web::preload::{SPLIT_LOADER_JS, SPLIT_MANIFEST};
    let pkg = site_root.join(pkg_dir);
    if !pkg.join(format!("{output_name}.wasm")).is_file() {
        return Ok(());
    }
    let missing: Vec<&str> = [SPLIT_MANIFEST, SPLIT_LOADER_JS]
        .into_iter()
        .filter(|file| !pkg.join(file).is_file())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StartError::UnsplitSite {
            pkg,
            missing: missing.join("、"),
        })
    }
}

/// 找到站点文件（pkg/ 下的 JS、WASM、CSS）所在目录，使二进制从任何工作目录启动都能工作。
///
/// 顺序：环境变量 `LEPTOS_SITE_ROOT` → 可执行文件旁的 `site/` → 可执行文件上一级的 `site/`
/// （cargo-leptos 的 `target/site` 与 `target/release/` 相邻）→ 相对当前目录的配置值。
fn resolve_site_root(configured: &str, pkg_dir: &str) -> PathBuf {
    let configured = Path::new(configured);
    if std::env::var_os("LEPTOS_SITE_ROOT").is_some() || configured.is_absolute() {
        return configured.to_path_buf();
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let candidates = exe_dir
        .iter()
        .flat_map(|d| [d.join("site"), d.join("../site")])
        .chain(std::iter::once(configured.to_path_buf()));
    for dir in candidates {
        if dir.join(pkg_dir).is_dir() {
            return std::fs::canonicalize(&dir).unwrap_or(dir);
        }
    }
    configured.to_path_buf()
}

/// 完整的路由。每个 `.layer()` 包住它之前的所有路由与中间件。
pub fn router(state: AppState) -> Router {
    let routes = generate_route_list(App);
    let context_state = state.clone();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(crate::metrics::render))
        .merge(crate::openai::router(&state))
        .merge(crate::files::router(state.config.clone()))
        .route("/ws", get(crate::jobs::ws::handler))
        .merge(crate::access::login::router())
        .leptos_routes_with_context(
            &state,
            routes,
            move || {
                provide_context(context_state.clone());
                let config = context_state.config.load();
                let listen = context_state.listeners.current_addr();
                provide_context(PageInfo {
                    demo_mode: config.demo_mode(),
                    exposed: listen.is_some_and(|addr| {
                        crate::access::exposure::is_exposed(
                            &config,
                            addr,
                            context_state.studio_locked(&config),
                        )
                    }),
                    studio_login: context_state.studio_locked(&config),
                    me: use_context::<axum::http::request::Parts>()
                        .and_then(|p| {
                            p.extensions
                                .get::<crate::access::accounts::Viewer>()
                                .cloned()
                        })
                        .and_then(|v| v.me()),
                    health: context_state.gateway.live(&config).1,
                });
            },
            {
                let options = state.leptos_options.clone();
                move || shell(options.clone())
            },
        )
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        // 服务器函数在我们的代码之前失败（参数解不开）时，HTTP 状态码与错误体一致。
        .layer(axum::middleware::from_fn(crate::error::server_fn_status))
        // 服务器函数的请求体上限（它们自己读请求体，axum 的提取器上限管不到）。
        .layer(axum::middleware::from_fn(crate::web::api_body_limit))
        // 访问控制：Host 白名单、同源、各去处的登录要求（见 crate::access）。它在最外面几层之内、
        // 所有路由之外，任何请求都先经过它。
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::access::guard,
        ))
        .layer(CompressionLayer::new().compress_when(SizeAbove::new(1024).and(Compressible)))
        .route_layer(axum::middleware::from_fn(crate::metrics::track_http))
        // 请求编号：外层先给没有 x-request-id 的请求生成一个，日志的 span 带上它，响应原样带回。
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// 手工编辑配置文件也会生效：每 250 ms 看一次文件内容，变了、并且 500 ms 内不再变（编辑器保存完了）之后，
/// 按启动时的规则重新加载（经 `ConfigStore`）。无效的文件被拒绝并记入日志，运行中的配置保持不变；
/// 空文件（常见于编辑器写到一半）与去掉了全部上游的文件（运行中的配置有上游时）也被拒绝——
/// 真要改用演示上游，请在设置页删除上游。监听地址的改动要重启才生效。
///
/// `loaded_text` 是启动时读到的文件内容（运行中的配置由它而来）：以它为起点，而不是任务开始时再读一次——
/// 那样的话，服务刚启动就改的文件会被当成起点，改动永远不生效。
async fn watch_config_file(store: Arc<ConfigStore>, loaded_text: Option<String>) {
    const POLL: std::time::Duration = std::time::Duration::from_millis(250);
    const STABLE: std::time::Duration = std::time::Duration::from_millis(500);
    let path = store.file().path.clone();
    let mut applied = loaded_text.map(String::into_bytes);
    // 最近看到的、还没处理的内容，与它出现的时刻。
    let mut pending: Option<(Option<Vec<u8>>, std::time::Instant)> = None;
    let mut tick = tokio::time::interval(POLL);
    loop {
        tick.tick().await;
        let now = tokio::fs::read(&path).await.ok();
        match &pending {
            _ if now == applied => {
                pending = None;
                continue;
            }
            Some((seen, since)) if *seen == now => {
                if since.elapsed() < STABLE {
                    continue;
                }
            }
            _ => {
                pending = Some((now, std::time::Instant::now()));
                continue;
            }
        }
        pending = None;
        applied = now.clone();
        let Some(text) = now else {
            tracing::warn!(path = %path.display(), "配置文件不见了，继续使用运行中的配置");
            continue;
        };
        if String::from_utf8_lossy(&text).trim().is_empty() {
            tracing::warn!(path = %path.display(), "配置文件是空的（可能正被保存到一半），不采用，继续使用运行中的配置");
            metrics::counter!("config_file_reloads_total", "result" => "refused").increment(1);
            continue;
        }
        let keep_upstreams = |current: &crate::config::Config, next: &crate::config::Config| {
            if !current.upstreams.is_empty() && next.upstreams.is_empty() {
                return Err(
                    "新的配置文件去掉了全部上游；若确实要改用内置演示上游，请在设置页删除上游"
                        .to_string(),
                );
            }
            Ok(())
        };
        let result = match store.reload_from_file(keep_upstreams).await {
            Ok(true) => {
                tracing::info!(path = %path.display(), "配置文件有改动，已重新加载并生效");
                "applied"
            }
            Ok(false) => "unchanged",
            Err(e) => {
                tracing::warn!(path = %path.display(), "配置文件有改动但不采用，继续使用原来的配置：{e}");
                "refused"
            }
        };
        metrics::counter!("config_file_reloads_total", "result" => result).increment(1);
    }
}

/// 每小时的维护：清理超过 24 小时的暂存图与幂等记录。
async fn maintenance(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let storage = state.storage.clone();
        let spilled = tokio::task::spawn_blocking(move || storage.clean_spill())
            .await
            .unwrap_or(0);
        let records = state.idempotency.clean().await.unwrap_or(0);
        if spilled + records > 0 {
            tracing::info!(spilled, records, "已清理过期的暂存图与幂等记录");
        }
    }
}

/// 每分钟忘掉限流计数表里已经“回满”的调用方（与从没来过的没有区别），免得陌生的 IP 与会话让表一直长。
async fn forget_idle_limits(state: AppState) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        state.v1_limits.forget_idle();
        state.image_budget.forget_idle();
        state.login_throttle.forget_idle();
        metrics::gauge!("limits_tracked_clients", "limiter" => "v1")
            .set(state.v1_limits.tracked() as f64);
        metrics::gauge!("limits_tracked_clients", "limiter" => "studio")
            .set(state.image_budget.tracked() as f64);
    }
}

/// 每个请求一个日志 span：方法、路径（不含查询串，以免记下 `?key=` 之类的密钥）与请求编号。
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("请求", method = %request.method(), path = %request.uri().path(), request_id)
}

/// 压缩哪些响应（DESIGN §8）：页面、JS、CSS、WASM 总是压缩；JSON 只压缩小的（≤ 256 KB）——
/// 带 base64 图像的大 JSON 压缩起来极耗 CPU 而收益很小；图像、SSE（压缩会缓冲事件）、zip 一律不压缩。
#[derive(Clone, Copy)]
struct Compressible;

impl Predicate for Compressible {
    fn should_compress<B>(&self, response: &axum::http::Response<B>) -> bool
    where
        B: axum::body::HttpBody,
    {
        const SMALL_JSON: u64 = 256 * 1024;
        let content_type = response
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if content_type.starts_with("application/json") {
            return response
                .body()
                .size_hint()
                .upper()
                .is_some_and(|n| n <= SMALL_JSON);
        }
        [
            "text/html",
            "text/css",
            "text/javascript",
            "application/javascript",
            "application/wasm",
            "image/svg+xml",
        ]
        .iter()
        .any(|t| content_type.starts_with(t))
    }
}

async fn healthz(State(state): State<AppState>) -> Json<serde_json::Value> {
    let audit = state.storage.audit();
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "demo_mode": state.config.load().demo_mode(),
        // 启动时的存储核对：有记录缺文件、有文件无记录的个数（只报告，不自动修复）。
        "storage": {
            "missing_files": audit.missing_files.len(),
            "orphan_files": audit.orphan_files.len(),
        },
    }))
}

/// 启动时告诉运维谁能用这个端口：暴露在外时大声警告；没设管理员密码、只在本机可达时打印管理员登录链接
/// （标准错误：测试与脚本从标准输出读监听地址）。
fn announce_access(
    config: &crate::config::Config,
    local: SocketAddr,
    token: &crate::access::admin_link::AdminToken,
    studio_locked: bool,
) {
    use crate::access::exposure;
    if exposure::is_exposed(config, local, studio_locked) {
        let line = "!".repeat(72);
        let open_v1 = config.auth.open_v1 && !config.auth.requires_key();
        tracing::warn!(open_v1, "监听 {local}：陌生人也能用这个端口");
        let what = if !studio_locked {
            "没有设置工作台密码（auth.studio_password_hash）：任何能访问此端口的人都能用你的额度生成、查看和删除图片"
        } else {
            "auth.open_v1 = true 而没有 /v1 的 API 密钥：任何能访问此端口的人都能经 /v1 用你的额度生成图片"
        };
        eprintln!(
            "\n{line}\n警告：正在监听 {local}，{what}。\n\
             用 drafting-factory hash-password 生成密码哈希填到配置里、在设置页建 /v1 密钥，或只监听 127.0.0.1。\n{line}\n"
        );
    }
    if config.auth.admin_password_hash.is_empty()
        && !exposure::admin_password_required(config, local)
    {
        let host = match local.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let link = token.link(&format!("http://{host}:{}", local.port()));
        eprintln!(
            "还没有设置管理员密码。打开设置页请用这个管理员登录链接（进程退出前有效，不要发给别人）：\n    {link}"
        );
    }
}

/// 启动服务：绑定端口、建好状态，然后一直运行到收到退出信号。
pub async fn serve(loaded: LoadedConfig, listen: Option<SocketAddr>) -> Result<(), StartError> {
    let addr = listen.unwrap_or_else(|| loaded.config.listen_addr());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(StartError::Serve)?;

    let state = build_state(&loaded).await?;
    announce_access(
        &state.config.load(),
        local,
        &state.admin_token,
        state.studio_locked(&state.config.load()),
    );
    tracing::info!(
        config = %loaded.path.display(),
        config_file_exists = loaded.file_exists,
        storage = %state.storage.root(),
        database = %state.config.load().storage.database_display(),
        site_root = %state.leptos_options.site_root,
        "配置已加载"
    );
    match state.config_store.shared_version() {
        // 集群模式：配置在库里，本机文件只在启动时提供监听地址与元数据库，不再监视。
        Some(version) => {
            tracing::info!(
                version,
                "集群模式：设置以数据库里共用的为准（设置页保存即写进库里，各实例 2 秒内生效）；本机配置文件只提供监听地址与元数据库"
            );
            let store = state.config_store.clone();
            tokio::spawn(async move { store.follow_shared().await });
        }
        None => {
            tokio::spawn(watch_config_file(
                state.config_store.clone(),
                loaded.text.clone(),
            ));
        }
    }
    if state.config.load().storage.database_is_postgres() {
        // 几个实例共用一个库：熔断也共用。
        tokio::spawn(crate::cluster_breakers::follow(
            state.gateway.clone(),
            state.storage.clone(),
        ));
    }
    tokio::spawn(state.accounts.clone().follow(state.storage.clone()));
    tokio::spawn(maintenance(state.clone()));
    tokio::spawn(forget_idle_limits(state.clone()));
    let listeners = state.listeners.clone();
    listeners.set_router(router(state));
    listeners.serve(listener).map_err(StartError::Serve)?;
    // 测试与脚本读取这一行来得知实际端口（--listen 可以是 :0）。
    println!("绘图工厂已启动：http://{local}");
    shutdown_signal().await;
    listeners.shutdown().await;
    Ok(())
}

/// 建好全部共享状态：打开存储、必要时启动内置演示上游、载入任务。不绑定端口，
/// 所以测试可以在进程内对 `router(state)` 直接发请求（`tower::ServiceExt::oneshot`）。
pub async fn build_state(loaded: &LoadedConfig) -> Result<AppState, StartError> {
    // 先看站点：不能用的站点（不带 --split 的构建）在打开存储、建任何文件之前就拒绝启动。
    let leptos_options = leptos_options()?;
    let preloads = Arc::new(crate::web::preload::Preloads::load(
        Path::new(&*leptos_options.site_root),
        &leptos_options.site_pkg_dir,
    ));
    let config = loaded.config.clone();
    crate::metrics::install();
    let storage = open_storage(loaded, &config).await?;
    let file = ConfigFile {
        path: loaded.path.clone(),
        env_api_keys: loaded.env_api_keys.clone(),
    };
    let saved_by = format!("{}#{}", config.server.listen, std::process::id());
    let (config, shared_version) =
        adopt_shared_settings(&storage, config, &file, &saved_by).await?;
    crate::prompts::seed_if_empty(&storage).await?;
    log_unknown_models(&config);
    let demo_base_url = spawn_demo_if_needed(&config).await?;
    let config: ConfigHandle = Arc::new(arc_swap::ArcSwap::from_pointee(config));
    let usage = crate::usage::spawn(storage.clone(), config.clone());
    let gateway = Gateway::new(config.clone(), demo_base_url, usage);
    adopt_key_spend(&storage, &gateway, &config.load()).await;
    let producer = Producer {
        gateway: gateway.clone(),
        storage: storage.clone(),
    };
    let jobs = JobManager::open(producer, config.clone()).await?;
    let url_signer = load_url_signer(loaded, &storage).await?;
    let idempotency = crate::openai::idempotency::Idempotency::new(
        storage.clone(),
        jobs.instance().to_string(),
        i64::from(config.load().cluster.lease_s) * 1000,
    );
    let accounts = crate::access::accounts::Directory::default();
    accounts.reload(&storage).await;
    let sessions = build_sessions(loaded, &storage).with_directory(accounts.clone());
    let config_store =
        build_config_store(&config, file, &storage, &sessions, shared_version, saved_by);
    let v1_limits = build_v1_limits(loaded, &storage);
    Ok(AppState {
        leptos_options,
        preloads,
        gateway,
        config,
        config_store,
        storage,
        idempotency,
        jobs,
        sessions,
        accounts,
        account_minutes: Default::default(),
        login_throttle: Default::default(),
        url_signer,
        v1_limits,
        image_budget: Default::default(),
        client_budgets: Default::default(),
        sockets: Default::default(),
        key_usage: Default::default(),
        listeners: Default::default(),
        admin_token: crate::access::admin_link::AdminToken::from_env(),
    })
}

/// 各上游密钥本月已花的从用量表接上（重启不清零，见 `key_max_spend_per_month`）。读不出时按 0 算并记日志。
async fn adopt_key_spend(storage: &Storage, gateway: &Gateway, config: &Config) {
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    match crate::usage::key_spend_since(storage, format!("{month}-01")).await {
        Ok(rows) => gateway.adopt_key_spend(config, &month, &rows),
        Err(e) => tracing::warn!("读不出各密钥本月的花费（按 0 算）：{e}"),
    }
}

/// 打开存储；相对路径的基准是配置文件所在的目录（配置文件不在某个目录里时用当前目录）。
async fn open_storage(loaded: &LoadedConfig, config: &Config) -> Result<Storage, StartError> {
    Ok(Storage::open(
        &config.storage.root,
        &config.storage.database_path(),
        config.storage.s3.clone(),
        Some(match loaded.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        }),
    )
    .await?)
}

/// 集群模式（`cluster.shared_settings`）：除了监听地址与元数据库，其余各项以库里共用的配置为准
/// （共用配置的存储根不同时，存储跟着换根）。返回生效的配置，以及集群模式下共用配置的版本。
async fn adopt_shared_settings(
    storage: &Storage,
    config: Config,
    file: &ConfigFile,
    saved_by: &str,
) -> Result<(Config, Option<i64>), StartError> {
    if !config.cluster.shared_settings {
        return Ok((config, None));
    }
    let (shared, version) =
        crate::config::shared::adopt_shared(storage, &config, file, saved_by).await?;
    if shared.storage.root != config.storage.root || shared.storage.s3 != config.storage.s3 {
        storage.set_root(&shared.storage.root, shared.storage.s3.clone());
    }
    Ok((shared, Some(version)))
}

/// 模型目录里没有的模型逐个记一行日志（照样可用，只是不做限制）。
fn log_unknown_models(config: &Config) {
    for model in crate::catalogue::unknown_models(config) {
        tracing::info!(
            model,
            "模型目录里没有这个模型：照样可用，宽高比、分辨率与参考图数不做限制（交给上游判断）"
        );
    }
}

/// 没有配置上游时启动内置演示上游，返回它的地址；配置了上游时返回 `None`。
async fn spawn_demo_if_needed(config: &Config) -> Result<Option<String>, StartError> {
    if !config.demo_mode() {
        return Ok(None);
    }
    let demo_addr = demo::spawn(DemoOptions::embedded(), ([127, 0, 0, 1], 0).into())
        .await
        .map_err(StartError::Demo)?;
    tracing::info!("未配置上游，使用内置演示上游 http://{demo_addr}");
    Ok(Some(format!("http://{demo_addr}")))
}

/// 取签名图片链接的密钥。密钥放在数据库旁边：改存储根目录不影响它，重启后旧链接照常有效。
/// 元数据在 PostgreSQL 时放在库里，共用这个库的实例用同一把。
async fn load_url_signer(
    loaded: &LoadedConfig,
    storage: &Storage,
) -> Result<UrlSigner, StartError> {
    if loaded.config.storage.database_is_postgres() {
        let hex = storage.shared_secret("url_signing").await?;
        UrlSigner::from_hex(&hex).ok_or_else(|| {
            StartError::Storage(StorageError::Unavailable(
                "库里的签名密钥不是 64 位十六进制".into(),
            ))
        })
    } else {
        let key_dir = loaded.config.storage.database_path();
        let key_dir = key_dir.parent().unwrap_or(std::path::Path::new("."));
        UrlSigner::load_or_create(key_dir).map_err(|e| {
            StartError::Storage(StorageError::Io {
                context: format!("无法读取或创建签名密钥（{}）", key_dir.display()),
                source: e,
            })
        })
    }
}

/// 登录会话。元数据在 PostgreSQL 时，会话记在库里，共用这个库的各实例都认。
fn build_sessions(loaded: &LoadedConfig, storage: &Storage) -> Sessions {
    let sessions = Sessions::from_env();
    if loaded.config.storage.database_is_postgres() {
        sessions.shared_through(storage.clone())
    } else {
        sessions
    }
}

/// `/v1` 的限流。元数据在 PostgreSQL 时，按各实例合起来计。
fn build_v1_limits(
    loaded: &LoadedConfig,
    storage: &Storage,
) -> crate::openai::rate_limit::RateLimiter {
    let v1_limits = crate::openai::rate_limit::RateLimiter::default();
    if loaded.config.storage.database_is_postgres() {
        v1_limits.shared_through(storage.clone())
    } else {
        v1_limits
    }
}

/// 建配置仓库：换入新配置后存储跟着换根、密码改了就作废那个身份的会话；
/// 集群模式（`shared_version` 为库里共用配置的版本）下保存进库里共用，`saved_by` 记下保存者。
fn build_config_store(
    config: &ConfigHandle,
    file: ConfigFile,
    storage: &Storage,
    sessions: &Sessions,
    shared_version: Option<i64>,
    saved_by: String,
) -> Arc<ConfigStore> {
    let root_storage = storage.clone();
    // 换入新配置后：新图片写到新的存储根（旧图片的记录里有它们自己的根，照常可取）。
    let follow_root: crate::config::OnApplied =
        Box::new(move |c| root_storage.set_root(&c.storage.root, c.storage.s3.clone()));
    // 工作台或管理员密码改了：那个身份的会话全部作废。
    let passwords = std::sync::Mutex::new({
        let auth = &config.load().auth;
        (
            auth.studio_password_hash.clone(),
            auth.admin_password_hash.clone(),
        )
    });
    let follow_sessions = sessions.clone();
    let follow_passwords: crate::config::OnApplied =
        Box::new(move |c| follow_sessions.follow_passwords(&passwords, &c.auth));
    let store = ConfigStore::new(config.clone(), file, vec![follow_root, follow_passwords]);
    Arc::new(match shared_version {
        Some(version) => store.shared(Arc::new(storage.clone()), version, saved_by),
        None => store,
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("可以注册 SIGTERM 处理");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
    tracing::info!("收到退出信号，正在停止");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 一个临时的站点目录：`pkg/` 里放给定的文件。
    fn site(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pkg")).unwrap();
        for file in files {
            std::fs::write(dir.path().join("pkg").join(file), b"x").unwrap();
        }
        dir
    }

    #[test]
    fn an_unsplit_site_is_refused_with_the_right_command() {
        use crate::web::preload::{SPLIT_LOADER_JS, SPLIT_MANIFEST};
        let check =
            |dir: &tempfile::TempDir| check_site_is_split(dir.path(), "pkg", "drafting-factory");

        // `cargo leptos build --release`（不带 --split）：主 WASM 与主 JS 在，清单与加载器不在。
        let unsplit = site(&[
            "drafting-factory.wasm",
            "drafting-factory.js",
            "drafting-factory.css",
        ]);
        let message = check(&unsplit).unwrap_err().to_string();
        assert!(
            message.contains("cargo leptos build --release --split"),
            "{message}"
        );
        assert!(message.contains(SPLIT_MANIFEST), "{message}");
        assert!(message.contains(SPLIT_LOADER_JS), "{message}");

        // 清单在、加载器不在（拷贝时漏了）也不行。
        let half = site(&["drafting-factory.wasm", SPLIT_MANIFEST]);
        let message = check(&half).unwrap_err().to_string();
        assert!(
            message.contains(SPLIT_LOADER_JS) && !message.contains(SPLIT_MANIFEST),
            "{message}"
        );

        // 拆分构建：通过。
        let split = site(&["drafting-factory.wasm", SPLIT_MANIFEST, SPLIT_LOADER_JS]);
        assert!(check(&split).is_ok());
    }

    #[test]
    fn a_missing_or_partial_site_is_not_checked() {
        // 没有构建站点（多数集成测试）、只有样式表的临时站点、站点目录不存在：都照常启动。
        assert!(check_site_is_split(site(&[]).path(), "pkg", "drafting-factory").is_ok());
        assert!(check_site_is_split(
            site(&["drafting-factory.css"]).path(),
            "pkg",
            "drafting-factory"
        )
        .is_ok());
        assert!(
            check_site_is_split(Path::new("/nonexistent-site"), "pkg", "drafting-factory").is_ok()
        );
    }
}
