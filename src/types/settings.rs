//! 设置页与服务器之间交换的数据（两端共用）。密钥只进不出：服务器只告诉页面“已设置”与否。

use serde::{Deserialize, Serialize};

/// 页面看到的一个上游。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct UpstreamForm {
    pub name: String,
    /// `gemini`、`openai-images` 或 `openai-chat`。
    pub kind: String,
    pub base_url: String,
    pub model: String,
    pub max_concurrent: u32,
    /// 读取时：是否已设置密钥。
    #[serde(default)]
    pub api_key_set: bool,
    /// 保存时：新密钥。空表示不改（沿用 `previous_name` 那个上游原来的密钥）。
    #[serde(default)]
    pub api_key: String,
    /// 保存时：清除密钥。
    #[serde(default)]
    pub clear_api_key: bool,
    /// 这个上游修改前的名字（新建的为空），用来找回它原来的密钥。
    #[serde(default)]
    pub previous_name: String,
}

/// 限流、重试、超时与并发的各项数字（与配置文件同名）。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Numbers {
    pub requests_per_minute: u32,
    pub burst: u32,
    pub max_concurrent: u32,
    pub queue_size: u32,
    pub max_attempts: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    pub retry_maybe_billed: bool,
    pub breaker_failures: u32,
    pub breaker_cooldown_s: u64,
    pub connect_ms: u64,
    pub attempt_s: u64,
    pub total_s: u64,
    pub max_upload_mb: u32,
}

/// 一个在用的存储根。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootInfo {
    pub path: String,
    pub images: u64,
    /// 所在磁盘的可用空间（字节）；读不到时为空。
    pub free_bytes: Option<u64>,
}

/// `GET /admin/api/settings` 的结果。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SettingsView {
    /// 上游，按优先级排好（排在前面的先用）。
    pub upstreams: Vec<UpstreamForm>,
    pub storage_root: String,
    pub database: String,
    pub roots: Vec<RootInfo>,
    pub listen: String,
    pub numbers: Numbers,
    pub config_path: String,
    pub admin_password_set: bool,
    /// 设置页创建的 API 密钥（只有前缀）。
    pub keys: Vec<KeyInfo>,
    /// 配置文件或环境变量里明文写的密钥个数（不在页面上显示内容）。
    pub plain_keys: usize,
}

/// 列表里的一个 API 密钥。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub label: String,
    pub prefix: String,
    pub created_at: String,
    pub last_used: Option<String>,
}

/// 刚创建的密钥：原文只在这一次返回。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedKey {
    pub key: String,
    pub prefix: String,
    pub label: String,
}

/// `PUT /admin/api/settings` 的请求体：整份可编辑的设置。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingsUpdate {
    pub upstreams: Vec<UpstreamForm>,
    pub storage_root: String,
    pub numbers: Numbers,
    /// 监听地址“IP:端口”；与当前不同则切换（先绑新地址，成功才保存）。
    pub listen: String,
}

/// “测试连接”的结果。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub ok: bool,
    pub latency_ms: u64,
    pub message: String,
}
