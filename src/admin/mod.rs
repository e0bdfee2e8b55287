//! 管理员的设置：读取、整份校验后保存并热更新（经 `ConfigStore`）、API 密钥、测试连接与模型列表（`settings.rs`）；
//! 团队账号与操作记录（`accounts.rs`）。
//!
//! 设置页经服务器函数 `/api/admin/*`（见 `crate::app::settings`）调用这里；谁能调用由 `crate::access` 的守卫决定
//! （管理员会话：管理员密码登录，或没设密码、端口只在本机可达时凭启动时打印的登录链接；见 `crate::access::exposure`），
//! 登录与会话在 `crate::access::login` 与 `crate::access::sessions`。

pub mod accounts;
pub mod settings;
