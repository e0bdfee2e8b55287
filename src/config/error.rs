//! 配置的错误：每个都用中文指出是哪一项、为什么。读取、校验、设置表与保存共用。

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("无法读取配置文件 {path}：{source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("配置文件第 {line} 行不是有效的 TOML：{message}")]
    Syntax { line: usize, message: String },
    #[error("未知的配置项 `{key}`（拼写错误？可用的配置项见 README）")]
    UnknownKey { key: String },
    #[error("配置项 `{key}` 的值{reason}")]
    Type { key: String, reason: String },
    #[error("配置项 `{key}` 无效：{reason}")]
    Invalid { key: String, reason: String },
    #[error("无法写入配置文件 {path}：{source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// 集群模式：改动开始之后，别的实例已经把库里的配置改成了更新的版本。
    #[error("另一个实例刚保存了设置（库里已是第 {current} 版）；请刷新设置页，在最新的设置上再改（这次的改动未保存）")]
    Stale { current: i64 },
    /// 集群模式：库里的共用配置读不出或写不进。
    #[error("无法读写数据库里的共用配置：{0}")]
    Shared(String),
}
