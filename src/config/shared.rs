//! 集群模式（`[cluster] shared_settings = true`，元数据在 PostgreSQL，几个实例共用一个库）：
//! 配置存在库里，不在各实例的本机文件里。
//!
//! - 本机文件只在启动时提供几项“本机的”设置：监听地址（`server.listen`）、元数据库（`storage.database`）
//!   与这个开关本身；
//!   其余各项以库里的为准。库里还没有配置时（第一个实例第一次启动），把本机文件的配置写进去作为第 1 版。
//! - 设置页保存：整份校验后写进库里（带版本号的条件更新：改动开始之后别的实例已经改过，就拒绝并说明，
//!   不会悄悄盖掉别人的改动），本实例立即换入；其它实例每秒查一次版本号，看到新版本即换入（2 秒内）。
//! - 监听地址只属于本实例：改它时写进本机文件（下次启动仍用它），不进库，别的实例不受影响。
//!
//! 库的读写由存储模块实现这里的 `SharedConfig`（配置模块不依赖存储模块）。

use super::error::ConfigError;
use super::load::parse;
use super::{Config, ConfigFile};
use futures::future::BoxFuture;

/// 库里的一版配置。
#[derive(Debug, Clone, PartialEq)]
pub struct SharedText {
    pub version: i64,
    /// 整份配置的 TOML 文本（与写进文件的格式相同）。
    pub text: String,
}

/// 存放共用配置的地方（元数据库里的一行）。错误是给人看的说明（不含连接串里的密码）。
pub trait SharedConfig: Send + Sync {
    /// 最新的一版；库里还没有时为 `None`。
    fn latest(&self) -> BoxFuture<'_, Result<Option<SharedText>, String>>;
    /// 最新一版的版本号（库里还没有时为 0）。每个实例每秒调一次，只取一个整数。
    fn version(&self) -> BoxFuture<'_, Result<i64, String>>;
    /// 库里还是第 `expected` 版（0 为还没有）时写入 `text` 成为下一版，返回新的版本号；
    /// 已经不是第 `expected` 版时不写，返回 `None`。`by` 记下是哪个实例写的。
    fn replace(
        &self,
        text: String,
        expected: i64,
        by: String,
    ) -> BoxFuture<'_, Result<Option<i64>, String>>;
}

/// 把库里的配置文本变成本实例运行的配置：按启动时完全相同的规则解析与校验，
/// 再换上本实例自己的监听地址、元数据库与来自环境变量的 API 密钥。
pub fn localize(text: &str, local: &Config, file: &ConfigFile) -> Result<Config, ConfigError> {
    let mut config = parse(text, &file.base_dir())?;
    keep_local(&mut config, local);
    config
        .auth
        .api_keys
        .retain(|k| !file.env_api_keys.contains(k));
    config
        .auth
        .api_keys
        .extend(file.env_api_keys.iter().cloned());
    Ok(config)
}

/// 启动时：库里已有配置就用它（换上本实例的几项），返回它与版本号；还没有就把本机文件的配置写进去作为第 1 版。
/// 几个实例同时第一次启动时只有一个写得进去，其余的用它写的那一版。
pub async fn adopt_shared(
    db: &dyn SharedConfig,
    local: &Config,
    file: &ConfigFile,
    instance: &str,
) -> Result<(Config, i64), ConfigError> {
    loop {
        if let Some(latest) = db.latest().await.map_err(ConfigError::Shared)? {
            let (text, local, file) = (latest.text, local.clone(), file.clone());
            let config = tokio::task::spawn_blocking(move || localize(&text, &local, &file))
                .await
                .map_err(|e| ConfigError::Shared(e.to_string()))?
                .map_err(|e| {
                    ConfigError::Shared(format!("库里的第 {} 版不能用：{e}", latest.version))
                })?;
            return Ok((config, latest.version));
        }
        let (first, checked_file) = (local.clone(), file.clone());
        let checked = tokio::task::spawn_blocking(move || checked_file.check(&first))
            .await
            .map_err(|e| ConfigError::Shared(e.to_string()))??;
        let written = db
            .replace(checked.text, 0, instance.to_string())
            .await
            .map_err(ConfigError::Shared)?;
        if let Some(version) = written {
            tracing::info!(version, "库里还没有共用配置：已把本机配置文件的内容写进去");
            return Ok((local.clone(), version));
        }
    }
}

/// 只属于本实例的几项（本机文件里的）：从 `local` 抄到 `config`。
pub fn keep_local(config: &mut Config, local: &Config) {
    config.server.listen = local.server.listen.clone();
    config.storage.database = local.storage.database.clone();
    config.cluster.shared_settings = local.cluster.shared_settings;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_text_keeps_this_instance_s_listen_database_and_env_keys() {
        let dir = tempfile::tempdir().unwrap();
        let file = ConfigFile {
            path: dir.path().join("factory.toml"),
            env_api_keys: vec!["sk-env-key-0000000000".into()],
        };
        let local = parse(
            "[server]\nlisten = \"127.0.0.1:4001\"\n[storage]\ndatabase = \"postgres://u:p@db/a\"\n",
            dir.path(),
        )
        .unwrap();
        let shared = "[server]\nlisten = \"0.0.0.0:9\"\n[storage]\ndatabase = \"postgres://u:p@elsewhere/b\"\n[limits]\nburst = 11\n[auth]\napi_keys = [\"sk-file-key-000000000\"]\n";
        let config = localize(shared, &local, &file).unwrap();
        assert_eq!(config.server.listen, "127.0.0.1:4001");
        assert_eq!(config.storage.database, local.storage.database);
        assert_eq!(config.limits.burst, 11, "其余各项以库里的为准");
        assert_eq!(
            config.auth.api_keys,
            ["sk-file-key-000000000", "sk-env-key-0000000000"]
        );
        // 库里的文本无效：说清是哪一项，不换入。
        let err = localize("[limits]\nburst = 0\n", &local, &file)
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.burst"), "{err}");
    }
}
