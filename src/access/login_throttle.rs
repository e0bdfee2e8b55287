//! 登录尝试的限速（放在状态里，登录的处理函数用它；单独一个模块，状态不必引用登录的处理函数）。
//!
//! 按客户端地址计：IPv4 按单个地址，IPv6 按 /64 网段（一台 IPv6 主机通常手握整个 /64，换个地址不能多试）。

use governor::{DefaultKeyedRateLimiter, Quota};
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::Arc;

/// 登录尝试的限速：每个地址（IPv6 每个 /64）每分钟 5 次（工作台、管理员与登录链接共用）。
#[derive(Clone)]
pub struct LoginThrottle(Arc<DefaultKeyedRateLimiter<IpAddr>>);

/// 限速的键：IPv4（含 IPv4 映射的 IPv6）为地址本身，IPv6 为它的 /64 网段。
fn throttle_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

impl LoginThrottle {
    /// 记一次尝试；还在限额内时为真。
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.0.check_key(&throttle_key(ip)).is_ok()
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_client_cannot_rotate_inside_its_64() {
        let throttle = LoginThrottle::default();
        for i in 0..5u16 {
            let ip: IpAddr = format!("2001:db8:1:2::{i:x}").parse().unwrap();
            assert!(throttle.allows(ip), "第 {i} 次");
        }
        let rotated: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(!throttle.allows(rotated), "同一个 /64 换地址");
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(throttle.allows(other), "别的 /64 照常");
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(throttle_key(mapped), v4);
        assert_ne!(throttle_key("192.0.2.2".parse().unwrap()), v4);
    }
}
