//! 浏览器与服务器共用的数据类型：请求、任务视图与推送消息、图库与设置的视图、上限与校验、
//! 服务器函数的错误。
//!
//! 这里的类型同时编译进服务端与 WASM，所以只能依赖两端都有的 crate（serde、thiserror、leptos）。
//! 服务端模块（网关、任务、存储……）从这里取类型，从不引用界面模块 `crate::app`。

pub mod account;
pub mod attempt;
pub mod batch;
pub mod catalogue;
pub mod codec;
pub mod error;
pub mod gallery;
pub mod job;
pub mod limits;
pub mod money;
pub mod prompt;
pub mod settings;
pub mod shape;
pub mod usage;

pub use attempt::{describe_attempt, AttemptInfo};
pub use batch::SubmitRequest;
pub use error::AppError;
pub use job::{GenerateRequest, JobImage, JobMessage, JobState, JobView, Phase, SavedImage};
pub use shape::{pixel_size, shape_from_size, AspectRatio, ImageSize};

use serde::{Deserialize, Serialize};

/// 可以放进页面链接的网址：只认 http(s)。上游给的联网搜索来源存库前与显示前都过一遍
/// （`javascript:`、`data:` 之类的链接点一下就在本站执行）。
pub fn is_web_link(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// 每次页面渲染时由服务器提供给页面的信息（只在服务端读取）。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageInfo {
    /// 未配置任何上游，正在使用内置演示上游。
    pub demo_mode: bool,
    /// 监听的不是本机地址，工作台或 `/v1` 却没有把关（见 `access::exposure::is_exposed`）：页面顶端显示红色警告。
    pub exposed: bool,
    /// 设了工作台密码（页头显示“退出”）。
    pub studio_login: bool,
    /// 页头的健康圆点。
    #[serde(default)]
    pub health: usage::Health,
    /// 登录的账号（没有账号时为空）：页头显示名字，图库有“我的”。
    #[serde(default)]
    pub me: Option<account::Me>,
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_http_links_are_web_links() {
        assert!(super::is_web_link("https://example.com/a"));
        assert!(super::is_web_link("HTTP://example.com"));
        for bad in [
            "javascript:alert(1)",
            " JavaScript:x",
            "data:text/html,x",
            "//evil",
            "",
        ] {
            assert!(!super::is_web_link(bad), "{bad}");
        }
    }
}
