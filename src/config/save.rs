//! 保存配置（设置页用）：整份校验 → 原子写入（旧文件留作 `.bak`；两者都是 0600，里面有上游密钥）→ 返回解析后的配置。
//!
//! 写入的文本会先按启动时完全相同的规则重新解析一遍：能写进文件的，下次启动一定能读。
//! 这些都是阻塞调用；运行中的服务经 `ConfigStore`（`apply.rs`）在阻塞线程里调用它们，一次一个。

use super::error::ConfigError;
use super::load::parse;
use super::Config;
use std::path::{Path, PathBuf};

/// 运行中的配置来自哪个文件。
#[derive(Debug, Clone)]
pub struct ConfigFile {
    pub path: PathBuf,
    /// 来自环境变量 `FACTORY_API_KEYS` 的密钥：生效，但不写进文件。
    pub env_api_keys: Vec<String>,
}

impl ConfigFile {
    pub fn base_dir(&self) -> PathBuf {
        self.path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// 校验并保存 `config`，返回重新解析后的配置（调用方把它换入运行中的配置）。任何一步失败，文件都不变。
    pub fn save(&self, config: &Config) -> Result<Config, ConfigError> {
        self.check(config)?.write()
    }

    /// 只校验、不写：返回可写入的结果。
    pub fn check(&self, config: &Config) -> Result<Checked, ConfigError> {
        let mut to_write = config.clone();
        to_write
            .auth
            .api_keys
            .retain(|k| !self.env_api_keys.contains(k));
        let body = toml::to_string_pretty(&to_write).map_err(|e| ConfigError::Invalid {
            key: "（整份配置）".into(),
            reason: format!("无法写成 TOML：{e}"),
        })?;
        let text = format!(
            "# 绘图工厂的配置。由设置页保存于 {}；也可以手工编辑（各项说明见 README）。\n\n{body}",
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
        );
        let mut parsed = parse(&text, &self.base_dir())?;
        parsed
            .auth
            .api_keys
            .extend(self.env_api_keys.iter().cloned());
        Ok(Checked {
            file: self.clone(),
            text,
            config: parsed,
        })
    }

    /// 集群模式：只把监听地址写进本机文件，其余内容原样保留（文件不存在则新建一个只有它的）。
    /// 写之前按启动时的规则解析一遍新内容。返回原来的内容（给 `restore`）。
    pub fn save_listen(&self, listen: &str) -> Result<Option<Vec<u8>>, ConfigError> {
        let before = match std::fs::read(&self.path) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(ConfigError::Read {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        let old_text = String::from_utf8_lossy(before.as_deref().unwrap_or_default()).into_owned();
        let mut table: toml::Table =
            old_text
                .parse()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    key: "（本机配置文件）".into(),
                    reason: e.message().to_string(),
                })?;
        let server = table
            .entry("server")
            .or_insert_with(|| toml::Value::Table(Default::default()));
        let Some(server) = server.as_table_mut() else {
            return Err(ConfigError::Invalid {
                key: "server".into(),
                reason: "本机配置文件里的 server 不是一个表".into(),
            });
        };
        server.insert("listen".into(), toml::Value::String(listen.into()));
        let text = toml::to_string_pretty(&table).map_err(|e| ConfigError::Invalid {
            key: "（本机配置文件）".into(),
            reason: format!("无法写成 TOML：{e}"),
        })?;
        parse(&text, &self.base_dir())?;
        self.write_atomically(&text)
            .map_err(|source| ConfigError::Write {
                path: self.path.clone(),
                source,
            })?;
        Ok(before)
    }

    /// 把 `save_listen` 之前的内容写回去（原来没有文件就删掉）。
    pub fn restore(&self, before: Option<Vec<u8>>) -> Result<(), ConfigError> {
        let result = match before {
            Some(bytes) => crate::atomic_file::write(
                &self.path,
                &bytes,
                crate::atomic_file::Durability::Durable,
                0o600,
            ),
            None => std::fs::remove_file(&self.path),
        };
        result.map_err(|source| ConfigError::Write {
            path: self.path.clone(),
            source,
        })
    }

    /// 先把旧文件原样存为 `.bak`，再原子地写入新文件；两者都只有属主可读写（0600）。
    fn write_atomically(&self, text: &str) -> std::io::Result<()> {
        use crate::atomic_file::{write, Durability};
        match std::fs::read(&self.path) {
            Ok(old) => {
                let mut backup = self.path.clone().into_os_string();
                backup.push(".bak");
                write(Path::new(&backup), &old, Durability::Durable, 0o600)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        write(&self.path, text.as_bytes(), Durability::Durable, 0o600)
    }
}

/// 校验通过、尚未写入的配置。
pub struct Checked {
    file: ConfigFile,
    pub(super) text: String,
    pub config: Config,
}

impl Checked {
    /// 写入文件，返回配置。
    pub fn write(self) -> Result<Config, ConfigError> {
        self.file
            .write_atomically(&self.text)
            .map_err(|source| ConfigError::Write {
                path: self.file.path.clone(),
                source,
            })?;
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_atomically_keeps_a_backup_and_leaves_the_file_alone_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("factory.toml");
        std::fs::write(&path, "[limits]\nburst = 7\n").unwrap();
        let file = ConfigFile {
            path: path.clone(),
            env_api_keys: vec!["env-key".into()],
        };
        let mut config = parse("[limits]\nburst = 7\n", dir.path()).unwrap();
        config.limits.burst = 9;
        config.auth.api_keys = vec!["file-key".into(), "env-key".into()];
        let saved = file.save(&config).unwrap();
        assert_eq!(saved.limits.burst, 9);
        assert_eq!(saved.auth.api_keys, ["file-key", "env-key"]);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("burst = 9"), "{text}");
        assert!(!text.contains("env-key"), "环境变量里的密钥不写进文件");
        let backup = std::fs::read_to_string(dir.path().join("factory.toml.bak")).unwrap();
        assert_eq!(backup, "[limits]\nburst = 7\n");
        use std::os::unix::fs::PermissionsExt;
        for name in ["factory.toml", "factory.toml.bak"] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name} 里有密钥，只有属主可读写");
        }

        // 无效的值：返回中文原因，文件一个字节都不变。
        let before = std::fs::read(&path).unwrap();
        config.limits.burst = 0;
        let err = file.save(&config).unwrap_err().to_string();
        assert!(err.contains("limits.burst"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}
