//! 登录尝试的限速（放在状态里，登录的处理函数用它；单独一个模块，状态不必引用登录的处理函数）。

use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

/// 登录尝试的限速：每个 IP 每分钟 5 次（工作台与管理员共用）。
#[derive(Clone)]
pub struct LoginThrottle(pub(super) Arc<DefaultKeyedRateLimiter<IpAddr>>);

impl LoginThrottle {
    /// 忘掉已经“回满”的 IP，并收缩表（见 `crate::openai::rate_limit::RateLimiter::forget_idle`）。
    pub fn forget_idle(&self) {
        self.0.retain_recent();
        self.0.shrink_to_fit();
    }
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self(Arc::new(DefaultKeyedRateLimiter::keyed(Quota::per_minute(
            NonZeroU32::new(5).expect("非零"),
        ))))
    }
}
