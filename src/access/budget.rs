//! 工作台的用量上限：每分钟张数（按会话，否则按 IP；一次提交 16 张就用掉 16）与每个 IP 的 `/ws` 连接数。
//! `/v1` 的按请求数限流在 `crate::openai::rate_limit`（tower_governor）。

use super::ClientId;
use crate::config::{Config, Rebuilt};
use crate::error::ApiError;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// 工作台的张数限流（GCRA）：每分钟 `limits.images_per_minute` 张，一分钟的量可以一次用完。
/// 设置页改了这个数，下一个请求起用新的限流器（计数从零开始）。
#[derive(Clone, Default)]
pub struct ImageBudget {
    current: Arc<Rebuilt<u32, DefaultKeyedRateLimiter<ClientId>>>,
}

impl ImageBudget {
    /// 为这次提交用掉 `images` 张；不够时 429（带多久后再试），什么都不扣。
    pub fn spend(&self, config: &Config, client: &ClientId, images: u32) -> Result<(), ApiError> {
        let per_minute = config.limits.images_per_minute.max(1);
        let limiter = self.current.get(per_minute, |per_minute| {
            let period = Duration::from_millis((60_000 / per_minute as u64).max(1));
            let quota = Quota::with_period(period)
                .expect("周期大于 0")
                .allow_burst(NonZeroU32::new(per_minute).expect("大于 0"));
            DefaultKeyedRateLimiter::keyed(quota)
        });
        let n = NonZeroU32::new(images.max(1)).expect("大于 0");
        match limiter.check_key_n(client, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(ApiError::ImageBudget {
                    per_minute,
                    retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                })
            }
            Err(_) => Err(ApiError::InvalidRequest(format!(
                "一次最多提交 {per_minute} 张（工作台每分钟的上限 limits.images_per_minute），这次要 {images} 张"
            ))),
        }
    }
}

/// 每个 IP 同时打开的 `/ws` 连接数。
#[derive(Clone, Default)]
pub struct SocketCounts(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// 一个 IP 最多同时打开的 `/ws` 连接数。
pub const MAX_SOCKETS_PER_IP: usize = 32;

impl SocketCounts {
    /// 占一个名额；满了返回 None。名额随返回值的生命周期归还。
    pub fn open(&self, ip: IpAddr) -> Option<SocketSlot> {
        let mut counts = self.0.lock().expect("锁未被毒化");
        let n = counts.entry(ip).or_default();
        if *n >= MAX_SOCKETS_PER_IP {
            return None;
        }
        *n += 1;
        Some(SocketSlot {
            counts: self.clone(),
            ip,
        })
    }
}

/// 一条 `/ws` 连接占着的名额。
pub struct SocketSlot {
    counts: SocketCounts,
    ip: IpAddr,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.0.lock().expect("锁未被毒化");
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_big_submission_spends_its_whole_count() {
        let mut config = Config::default();
        config.limits.images_per_minute = 20;
        let budget = ImageBudget::default();
        let me = ClientId("ip:1".into());
        budget.spend(&config, &me, 16).unwrap();
        let err = budget.spend(&config, &me, 16).unwrap_err();
        assert!(
            matches!(err, ApiError::ImageBudget { retry_after_secs, .. } if retry_after_secs >= 1),
            "{err}"
        );
        budget
            .spend(&config, &ClientId("ip:2".into()), 16)
            .expect("别人的额度不受影响");
        assert!(
            budget.spend(&config, &me, 21).is_err(),
            "超过一分钟的量，永远不可能"
        );
    }

    #[test]
    fn socket_slots_are_counted_per_ip_and_given_back() {
        let counts = SocketCounts::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let slots: Vec<_> = (0..MAX_SOCKETS_PER_IP)
            .map(|_| counts.open(ip).unwrap())
            .collect();
        assert!(counts.open(ip).is_none());
        assert!(counts.open("10.0.0.2".parse().unwrap()).is_some());
        drop(slots);
        assert!(counts.open(ip).is_some());
    }
}
