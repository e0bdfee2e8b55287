//! 读取、解析与校验配置文件。每个错误都用中文指出配置项的名字和原因。

use super::error::ConfigError;
use super::{AuthConfig, Config, S3Config, StorageConfig, UpstreamConfig};
use serde::Deserialize;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// 加载结果：校验过的配置，以及它来自哪个文件。
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    /// 配置文件路径（文件不存在时也记下，设置页保存时会创建它）。
    pub path: PathBuf,
    /// 文件是否存在；不存在时使用全部默认值。
    pub file_exists: bool,
    /// 来自环境变量 `FACTORY_API_KEYS` 的密钥（保存配置时不写进文件）。
    pub env_api_keys: Vec<String>,
    /// 读到的文件内容（文件不存在时为空）：监视文件的任务以它为起点，
    /// 启动之后才做的手工编辑（哪怕就在启动的同一瞬间）也会被看作改动。
    pub text: Option<String>,
}

/// 从 `path` 读取配置。文件不存在时使用全部默认值；`FACTORY_API_KEYS=a,b` 追加 API 密钥。
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let base_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let (text, file_exists) = match std::fs::read_to_string(path) {
        Ok(text) => (text, true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), false),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let mut config = parse(&text, &base_dir)?;
    let mut env_api_keys = Vec::new();
    if let Ok(keys) = std::env::var("FACTORY_API_KEYS") {
        for key in keys.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            config.auth.api_keys.push(key.to_string());
            env_api_keys.push(key.to_string());
        }
        validate_api_keys(&config.auth.api_keys)?;
    }
    Ok(LoadedConfig {
        config,
        path: path.to_path_buf(),
        file_exists,
        env_api_keys,
        text: file_exists.then_some(text),
    })
}

/// 解析并校验配置文本。相对的存储目录以 `base_dir` 为基准变成绝对路径。
pub fn parse(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(1);
        ConfigError::Syntax {
            line,
            message: e.message().to_string(),
        }
    })?;

    let mut unknown: Vec<String> = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let mut on_unknown = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
    let result = {
        let ignored = serde_ignored::Deserializer::new(toml::Value::Table(table), &mut on_unknown);
        Config::deserialize(serde_path_to_error::Deserializer::new(ignored, &mut track))
    };
    if let Some(key) = unknown.into_iter().next() {
        return Err(ConfigError::UnknownKey { key });
    }
    let mut config = result.map_err(|e| ConfigError::Type {
        key: track.path().to_string(),
        reason: explain_serde_error(&e.to_string()),
    })?;
    validate(&mut config, base_dir)?;
    Ok(config)
}

/// 把 serde 的英文错误说明归类成中文，保留原文作细节。
fn explain_serde_error(detail: &str) -> String {
    let kind = if detail.starts_with("unknown variant") {
        "不是可选值之一"
    } else if detail.starts_with("invalid type") {
        "类型不对"
    } else if detail.starts_with("invalid value") || detail.contains("out of range") {
        "超出允许的范围"
    } else {
        "无法解析"
    };
    format!("{kind}（{detail}）")
}

/// 校验整份配置；顺序即报错的先后：监听与集群、存储、密钥、数字范围、上游、备选模型。
/// 顺带把相对路径变成绝对路径、把 `models` 的第一个填进 `model`。
fn validate(config: &mut Config, base_dir: &Path) -> Result<(), ConfigError> {
    validate_server(config)?;
    validate_storage(&mut config.storage, base_dir)?;
    validate_auth(&config.auth)?;
    validate_numbers(config)?;
    validate_upstreams(&mut config.upstreams)?;
    validate_fallbacks(config)?;
    Ok(())
}

/// 校验监听地址、集群的租约与共用设置、对外地址、可信代理与允许的主机名。
fn validate_server(config: &Config) -> Result<(), ConfigError> {
    validate_listen("server.listen", &config.server.listen)?;
    if !(2..=3600).contains(&config.cluster.lease_s) {
        return Err(invalid("cluster.lease_s", "租约应在 2 到 3600 秒之间"));
    }
    if config.cluster.shared_settings && !config.storage.database_is_postgres() {
        return Err(invalid(
            "cluster.shared_settings",
            "共用设置存在数据库里，要求元数据在 PostgreSQL（storage.database = \"postgres://…\"）",
        ));
    }
    if !config.server.public_url.is_empty() {
        validate_http_url("server.public_url", &config.server.public_url)?;
    }
    for (i, proxy) in config.server.trusted_proxies.iter().enumerate() {
        let ok = proxy.parse::<ipnet::IpNet>().is_ok() || proxy.parse::<std::net::IpAddr>().is_ok();
        if !ok {
            return Err(invalid(
                format!("server.trusted_proxies[{i}]"),
                format!("“{proxy}”不是 IP 地址或网段（例如 10.0.0.1 或 10.0.0.0/8）"),
            ));
        }
    }
    for (i, host) in config.server.allowed_hosts.iter().enumerate() {
        let ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !ok {
            return Err(invalid(
                format!("server.allowed_hosts[{i}]"),
                format!(
                    "“{host}”不是主机名（例如 draw.example.com 或 nas.local，不带 http:// 与路径）"
                ),
            ));
        }
    }
    Ok(())
}

/// 校验存储：对象存储的连接文本、存储根（本机目录变成绝对路径）与元数据库（文件路径或连接串）。
fn validate_storage(storage: &mut StorageConfig, base_dir: &Path) -> Result<(), ConfigError> {
    validate_s3_texts(&storage.s3)?;
    if let Some(location) = storage.root.to_str().and_then(|r| r.strip_prefix("s3://")) {
        check_s3_location(location).map_err(|why| invalid("storage.root", why))?;
        if storage.database.as_os_str().is_empty() {
            return Err(invalid(
                "storage.database",
                "图片放在对象存储（s3://）时，要写明元数据库：本机 SQLite 文件的路径，或 postgres://… 连接串",
            ));
        }
        let endpoint = storage.s3.endpoint.trim();
        if !endpoint.is_empty() && url::Url::parse(endpoint).is_err() {
            return Err(invalid(
                "storage.s3.endpoint",
                format!("“{endpoint}”不是网址（例如 http://127.0.0.1:9000）"),
            ));
        }
    } else {
        storage.root = check_storage_root(&storage.root, base_dir)?;
    }
    if storage.database_is_postgres() {
        let text = storage.database.to_string_lossy().into_owned();
        if let Err(e) = text.parse::<postgres::Config>() {
            // 错误说明里不带连接串本身（其中可能有密码）。
            return Err(invalid(
                "storage.database",
                format!(
                    "PostgreSQL 连接串无法解析（应写成 postgres://用户:密码@主机:端口/库名）：{e}"
                ),
            ));
        }
    } else if !storage.database.as_os_str().is_empty() {
        storage.database = check_database_path(&storage.database, base_dir)?;
    }
    Ok(())
}

/// 对象存储的连接：每一项都是一行短文本（设置页也能填；坏值在这里拦下，不写进配置）。
fn validate_s3_texts(s3: &S3Config) -> Result<(), ConfigError> {
    for (key, value) in [
        ("endpoint", &s3.endpoint),
        ("region", &s3.region),
        ("access_key_id", &s3.access_key_id),
        ("secret_access_key", &s3.secret_access_key),
    ] {
        if value.chars().count() > 256 || value.chars().any(char::is_control) {
            return Err(invalid(
                format!("storage.s3.{key}"),
                "应为一行不超过 256 个字符的文本",
            ));
        }
    }
    Ok(())
}

/// 校验访问控制：明文的 API 密钥、设置页创建的密钥（用途、哈希、前缀不重复）与两个密码哈希。
fn validate_auth(auth: &AuthConfig) -> Result<(), ConfigError> {
    validate_api_keys(&auth.api_keys)?;
    let mut prefixes = HashSet::new();
    for (i, entry) in auth.keys.iter().enumerate() {
        let key = |field: &str| format!("auth.keys[{i}].{field}");
        if entry.label.trim().is_empty() || entry.label.chars().count() > 64 {
            return Err(invalid(key("label"), "用途说明不能为空，最多 64 个字符"));
        }
        if entry.sha256.len() != 64 || !entry.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(key("sha256"), "应为 64 位十六进制的 SHA-256"));
        }
        if entry.prefix.is_empty() || !prefixes.insert(entry.prefix.as_str()) {
            return Err(invalid(key("prefix"), "不能为空，也不能与其他密钥重复"));
        }
    }
    for (key, hash) in [
        ("auth.admin_password_hash", &auth.admin_password_hash),
        ("auth.studio_password_hash", &auth.studio_password_hash),
    ] {
        if !hash.is_empty() && !hash.starts_with("$argon2") {
            return Err(invalid(
                key,
                "必须是 argon2 哈希（以 $argon2 开头），不能填明文密码",
            ));
        }
    }
    Ok(())
}

/// 校验数字设置：先按设置表查范围，再查几对互相牵制的值（重试间隔、超时）。
fn validate_numbers(config: &Config) -> Result<(), ConfigError> {
    // 各数字设置的范围写在设置表里（`crate::types::settings::NUMBER_SETTINGS`），这里按表校验。
    super::table::check_ranges(config)?;
    let r = &config.retry;
    if r.base_delay_ms > r.max_delay_ms {
        return Err(invalid(
            "retry.base_delay_ms",
            format!("不能大于 retry.max_delay_ms（{}）", r.max_delay_ms),
        ));
    }
    let t = &config.timeouts;
    if t.total_s < t.attempt_s {
        return Err(invalid(
            "timeouts.total_s",
            format!("不能小于 timeouts.attempt_s（{}）", t.attempt_s),
        ));
    }
    super::money::validate(config)
}

/// 逐个校验上游（先把 `models` 的第一个填进 `model`），再查名称是否重复。
fn validate_upstreams(upstreams: &mut [UpstreamConfig]) -> Result<(), ConfigError> {
    let mut names = HashSet::new();
    for (i, up) in upstreams.iter_mut().enumerate() {
        // `models` 的第一个就是默认模型：两种写法统一成同一个样子。
        if let Some(first) = up.models.first() {
            up.model = first.clone();
        }
        validate_upstream(i, up)?;
    }
    for (i, up) in upstreams.iter().enumerate() {
        if !names.insert(up.name.as_str()) {
            return Err(invalid(
                format!("upstreams[{i}].name"),
                format!("名称“{}”重复了，每个上游的名称必须唯一", up.name),
            ));
        }
    }
    Ok(())
}

/// 备选模型：每个都要有上游提供（没有配置上游时是演示上游的默认模型）。
fn validate_fallbacks(config: &Config) -> Result<(), ConfigError> {
    let served: Vec<String> = if config.upstreams.is_empty() {
        vec![super::DEFAULT_MODEL.to_string()]
    } else {
        config
            .upstreams
            .iter()
            .flat_map(UpstreamConfig::served_models)
            .collect()
    };
    for (model, fallbacks) in &config.routing.model_fallbacks {
        for (j, fallback) in fallbacks.iter().enumerate() {
            if !served.contains(fallback) {
                return Err(invalid(
                    format!("routing.model_fallbacks.{model}[{j}]"),
                    format!(
                        "没有上游提供备选模型“{fallback}”（上游提供的模型：{}）",
                        served.join("、")
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn in_range<T: PartialOrd + std::fmt::Display>(
    key: &str,
    value: T,
    min: T,
    max: T,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(invalid(key, format!("{value} 超出允许的范围 {min}–{max}")));
    }
    Ok(())
}

/// 校验“IP:端口”形式的监听地址（端口 1–65535）。
pub fn validate_listen(key: &str, listen: &str) -> Result<SocketAddr, ConfigError> {
    let addr: SocketAddr = listen.trim().parse().map_err(|_| {
        let port_part = listen.rsplit(':').next().unwrap_or("");
        if port_part.parse::<u64>().is_ok_and(|p| p > 65_535) {
            invalid(
                key,
                format!("端口 {port_part} 超出范围，必须在 1–65535 之间"),
            )
        } else {
            invalid(
                key,
                format!("“{listen}”不是有效的“IP:端口”地址（例如 127.0.0.1:3000 或 0.0.0.0:3000）"),
            )
        }
    })?;
    if addr.port() == 0 {
        return Err(invalid(key, "端口必须在 1–65535 之间，不能为 0"));
    }
    Ok(addr)
}

fn validate_http_url(key: &str, value: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(value)
        .map_err(|e| invalid(key, format!("“{value}”不是有效的网址：{e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(
            key,
            format!("“{value}”必须以 http:// 或 https:// 开头"),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid(key, format!("“{value}”缺少主机名")));
    }
    Ok(url)
}

fn validate_api_keys(keys: &[String]) -> Result<(), ConfigError> {
    for (i, key) in keys.iter().enumerate() {
        if key.is_empty() || key.chars().any(char::is_whitespace) {
            return Err(invalid(
                format!("auth.api_keys[{i}]"),
                "API 密钥不能为空，也不能含空白字符",
            ));
        }
    }
    Ok(())
}

fn validate_upstream(i: usize, up: &UpstreamConfig) -> Result<(), ConfigError> {
    let key = |field: &str| format!("upstreams[{i}].{field}");
    if up.name.trim().is_empty() {
        return Err(invalid(key("name"), "上游名称不能为空"));
    }
    if up.base_url.is_empty() {
        return Err(invalid(key("base_url"), "必须填写上游地址"));
    }
    validate_http_url(&key("base_url"), &up.base_url)?;
    // 模型名会拼进上游 URL 的路径，只允许常见字符。
    let model_ok = |m: &str| {
        !m.is_empty()
            && m.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    in_range(&key("max_concurrent"), up.max_concurrent, 0, 1024)?;
    in_range(&key("weight"), up.weight, 1, 1000)?;
    if up.model.is_empty() && up.models.is_empty() {
        return Err(invalid(
            key("models"),
            "至少要有一个模型（第一个是默认模型）",
        ));
    }
    if !model_ok(&up.model) {
        return Err(invalid(
            key("model"),
            format!("“{}”不是有效的模型名（只能含字母、数字、- _ .）", up.model),
        ));
    }
    for (j, m) in up.models.iter().enumerate() {
        if !model_ok(m) {
            return Err(invalid(
                key(&format!("models[{j}]")),
                format!("“{m}”不是有效的模型名（只能含字母、数字、- _ .）"),
            ));
        }
    }
    for (j, k) in up.api_keys.iter().enumerate() {
        if k.is_empty() || k.chars().any(char::is_whitespace) {
            return Err(invalid(
                key(&format!("api_keys[{j}]")),
                "密钥不能为空，也不能含空白字符",
            ));
        }
    }
    if super::quota::parse_reset(&up.quota_reset).is_none() {
        return Err(invalid(
            key("quota_reset"),
            format!(
                "“{}”不是“时:分 时区”（例如 00:00 America/Los_Angeles 或 08:00 Asia/Shanghai）",
                up.quota_reset
            ),
        ));
    }
    Ok(())
}

/// 存储目录必须存在或可以创建，并且可写。返回绝对路径。
fn check_storage_root(root: &Path, base_dir: &Path) -> Result<PathBuf, ConfigError> {
    const KEY: &str = "storage.root";
    if root.as_os_str().is_empty() {
        return Err(invalid(KEY, "存储目录不能为空"));
    }
    let joined = if root.is_absolute() {
        root.to_path_buf()
    } else {
        if root
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(invalid(
                KEY,
                "相对路径不能用 .. 跳出配置文件所在的目录；要放到别处请写绝对路径",
            ));
        }
        base_dir.join(root)
    };
    std::fs::create_dir_all(&joined)
        .map_err(|e| invalid(KEY, format!("无法创建目录 {}：{e}", joined.display())))?;
    let absolute = std::fs::canonicalize(&joined)
        .map_err(|e| invalid(KEY, format!("无法访问目录 {}：{e}", joined.display())))?;
    // 真的写一个文件，才能确认可写（只读挂载、权限不足等都会在这里暴露）。
    tempfile::Builder::new()
        .prefix(".write-check-")
        .tempfile_in(&absolute)
        .map_err(|e| invalid(KEY, format!("目录 {} 不可写：{e}", absolute.display())))?;
    Ok(absolute)
}

/// 数据库文件所在目录必须存在或可以创建；返回绝对路径。文件本身不存在时会新建。
fn check_database_path(path: &Path, base_dir: &Path) -> Result<PathBuf, ConfigError> {
    const KEY: &str = "storage.database";
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    };
    if joined.is_dir() {
        return Err(invalid(
            KEY,
            format!(
                "{} 是目录，应填数据库文件的路径（例如 …/factory.db）",
                joined.display()
            ),
        ));
    }
    let dir = joined.parent().unwrap_or(base_dir);
    std::fs::create_dir_all(dir)
        .map_err(|e| invalid(KEY, format!("无法创建目录 {}：{e}", dir.display())))?;
    let dir = std::fs::canonicalize(dir)
        .map_err(|e| invalid(KEY, format!("无法访问目录 {}：{e}", dir.display())))?;
    Ok(dir.join(joined.file_name().unwrap_or_default()))
}

/// 检查 `s3://` 后面的“桶/前缀”：桶名按 S3 的规则（3–63 个小写字母、数字、`.`、`-`），
/// 前缀的每一段不能为空、不能是 `.` 或 `..`。
pub fn check_s3_location(location: &str) -> Result<(), String> {
    let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
    let bucket_ok = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket.starts_with(|c: char| c.is_ascii_alphanumeric());
    if !bucket_ok {
        return Err(format!(
            "“{bucket}”不是有效的桶名（3–63 个小写字母、数字、点或连字符），应写成 s3://桶/前缀"
        ));
    }
    let prefix = prefix.trim_end_matches('/');
    if !prefix.is_empty()
        && prefix
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == ".." || s.chars().any(char::is_control))
    {
        return Err(format!(
            "前缀“{prefix}”里有空段、. 或 ..，应写成 s3://桶/前缀"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in_tmp(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        parse(text, dir.path())
    }

    #[test]
    fn routing_keys_and_budgets_are_checked_with_the_key_named() {
        let up = |extra: &str| {
            format!("[[upstreams]]\nname = \"a\"\nbase_url = \"http://x\"\n{extra}\n")
        };
        let refused = [
            (up("model = \"\"\nmodels = []"), "upstreams[0].models"),
            (up("weight = 0"), "upstreams[0].weight"),
            (up("weight = 1001"), "upstreams[0].weight"),
            (up("models = [\"a b\"]"), "upstreams[0].model"),
            (up("api_keys = [\"k 1\"]"), "upstreams[0].api_keys[0]"),
            (up("quota_reset = \"midnight\""), "upstreams[0].quota_reset"),
            (format!("[routing]\nmodel_fallbacks = {{ \"gemini-3-pro-image\" = [\"nope\"] }}\n{}", up("")), "routing.model_fallbacks.gemini-3-pro-image[0]"),
            ("[[auth.keys]]\nlabel = \"a\"\nprefix = \"p\"\nsha256 = \"x\"\nimages_per_day = -1\n".to_string(), "auth.keys[0].images_per_day"),
            ("[limits]\nusage_keep_days = 0\n".to_string(), "limits.usage_keep_days"),
            ("[cluster]\nshared_settings = true\n".to_string(), "cluster.shared_settings"),
        ];
        for (text, key) in refused {
            let e = parse_in_tmp(&text).unwrap_err().to_string();
            assert!(e.contains(key), "{text}\n→ {e}");
        }
        // 两种写法：`models` 的第一个就是 `model`；密钥池与单个密钥。
        let c = parse_in_tmp(&up(
            "models = [\"m1\", \"m2\"]\napi_keys = [\"k1\", \"k2\"]\nweight = 3",
        ))
        .unwrap();
        assert_eq!(c.upstreams[0].model, "m1");
        assert_eq!(c.upstreams[0].served_models(), ["m1", "m2"]);
        assert_eq!(c.upstreams[0].key_pool(), ["k1", "k2"]);
    }

    /// 发布包里的示例配置列出了每一项及其默认值：它必须能解析，并且与空文件得到的配置完全一样。
    #[test]
    fn the_example_config_spells_out_exactly_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let example = include_str!("../../packaging/factory.example.toml");
        assert_eq!(
            parse(example, dir.path()).unwrap(),
            parse("", dir.path()).unwrap()
        );
        assert!(example.contains("# [[upstreams]]"), "示例里缺少上游的写法");
        // 每一节的每一项都写出来了（设置页创建的 auth.keys 除外）。
        let defaults = toml::Table::try_from(Config::default()).unwrap();
        for (section, table) in defaults
            .iter()
            .filter_map(|(s, t)| Some((s, t.as_table()?)))
        {
            assert!(
                example.contains(&format!("[{section}]")),
                "示例里缺少 [{section}]"
            );
            for (key, value) in table
                .iter()
                .filter(|(k, _)| !(section == "auth" && *k == "keys"))
            {
                match value.as_table() {
                    // 子表（例如 storage.s3）：写成 [storage.s3] 一节，每一项都写出来。
                    Some(sub) => {
                        assert!(
                            example.contains(&format!("[{section}.{key}]")),
                            "示例里缺少 [{section}.{key}]"
                        );
                        for sub_key in sub.keys() {
                            assert!(
                                example.contains(&format!("\n{sub_key} = ")),
                                "示例里缺少 {section}.{key}.{sub_key}"
                            );
                        }
                    }
                    None => assert!(
                        example.contains(&format!("\n{key} = ")),
                        "示例里缺少 {section}.{key}"
                    ),
                }
            }
        }
    }

    #[test]
    fn empty_file_gives_the_documented_defaults() {
        let c = parse_in_tmp("").unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:3000");
        assert_eq!(c.limits.requests_per_minute, 60);
        assert_eq!(c.timeouts.attempt_s, 300);
        assert!(c.demo_mode());
        assert!(c.storage.root.is_absolute());
    }

    #[test]
    fn unknown_key_is_named() {
        let e = parse_in_tmp("[server]\nlisten = \"127.0.0.1:3000\"\nlisen = 1\n").unwrap_err();
        assert!(
            matches!(&e, ConfigError::UnknownKey { key } if key == "server.lisen"),
            "{e}"
        );
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = parse_in_tmp("[limits]\nburst = \"many\"\n").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("limits.burst") && msg.contains("类型不对"),
            "{msg}"
        );
    }

    #[test]
    fn port_out_of_range_and_zero_are_refused() {
        for listen in ["127.0.0.1:70000", "127.0.0.1:0"] {
            let e = parse_in_tmp(&format!("[server]\nlisten = \"{listen}\"\n")).unwrap_err();
            assert!(e.to_string().contains("1–65535"), "{e}");
        }
    }

    #[test]
    fn non_http_upstream_url_is_refused() {
        let e = parse_in_tmp("[[upstreams]]\nname = \"a\"\nbase_url = \"ftp://example.com\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("upstreams[0].base_url"), "{e}");
    }

    #[test]
    fn unknown_upstream_kind_is_refused() {
        let e =
            parse_in_tmp("[[upstreams]]\nname = \"a\"\nkind = \"grok\"\nbase_url = \"http://x\"\n")
                .unwrap_err();
        assert!(
            e.to_string().contains("upstreams[0].kind") && e.to_string().contains("不是可选值之一"),
            "{e}"
        );
    }

    #[test]
    fn syntax_error_gives_the_line() {
        let e = parse_in_tmp("[server]\nlisten = \n").unwrap_err();
        assert!(matches!(e, ConfigError::Syntax { line: 2, .. }), "{e}");
    }

    #[test]
    fn object_store_settings_are_checked() {
        for (text, key) in [
            ("[storage.s3]\nregion = \"us\\neast\"\n", "storage.s3.region"),
            (&format!("[storage.s3]\naccess_key_id = \"{}\"\n", "k".repeat(257)), "storage.s3.access_key_id"),
            ("[storage]\nroot = \"s3://Bad_Bucket\"\ndatabase = \"f.db\"\n", "storage.root"),
            ("[storage]\nroot = \"s3://bkt/x\"\n", "storage.database"),
            ("[storage]\nroot = \"s3://bkt/x\"\ndatabase = \"f.db\"\n[storage.s3]\nendpoint = \"not a url\"\n", "storage.s3.endpoint"),
        ] {
            match parse_in_tmp(text) {
                Err(ConfigError::Invalid { key: got, .. }) => assert_eq!(got, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        let ok = parse_in_tmp("[storage]\nroot = \"s3://bkt/x\"\ndatabase = \"f.db\"\n[storage.s3]\nendpoint = \"http://127.0.0.1:9000\"\nregion = \"us-east-1\"\n").unwrap();
        assert_eq!(
            ok.storage.root.to_str(),
            Some("s3://bkt/x"),
            "对象存储的根原样保留"
        );
    }

    /// 多实例部署样例（deploy/cluster/）里的配置能解析：元数据在 PostgreSQL、图片在桶里。
    #[test]
    fn the_cluster_sample_config_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let c = parse(
            include_str!("../../deploy/cluster/factory.toml"),
            dir.path(),
        )
        .unwrap();
        assert!(c.storage.database_is_postgres());
        assert_eq!(c.storage.root.to_str(), Some("s3://huitu/factory"));
        assert!(!c.storage.database_display().contains("change-me"));
    }

    #[test]
    fn postgres_database_urls_are_checked_and_their_password_never_shown() {
        match parse_in_tmp("[storage]\ndatabase = \"postgres://u:pw@h:notaport/db\"\n") {
            Err(ConfigError::Invalid { key, reason }) => {
                assert_eq!(key, "storage.database");
                assert!(!reason.contains("pw"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let c = parse_in_tmp(
            "[storage]\nroot = \"s3://bkt/x\"\ndatabase = \"postgres://factory:pg-secret@10.0.0.5:5432/factory\"\n",
        )
        .unwrap();
        assert!(c.storage.database_is_postgres());
        assert_eq!(
            c.storage.database_display(),
            "postgres://factory:***@10.0.0.5:5432/factory"
        );
        assert!(!format!("{c:?}").contains("pg-secret"));
        let c = parse_in_tmp(
            "[storage]\ndatabase = \"postgres://factory@h/db?password=pg-secret&sslmode=disable\"\n",
        )
        .unwrap();
        assert_eq!(
            c.storage.database_display(),
            "postgres://factory@h/db?password=***&sslmode=disable"
        );
    }

    #[test]
    fn secrets_do_not_appear_in_debug_output() {
        let c = parse_in_tmp(
            "[storage.s3]\nsecret_access_key = \"s3-secret\"\n[auth]\napi_keys = [\"sk-secret-1\"]\n[[upstreams]]\nname = \"a\"\nbase_url = \"http://x\"\napi_key = \"AIza-secret\"\n",
        )
        .unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("secret"), "{debug}");
    }
}
