//! 工作台的用量上限：每分钟张数（按会话，否则按 IP；一次提交 16 张就用掉 16）与每个 IP 的 `/ws` 连接数。
//! `/v1` 的按请求数限流在 `crate::openai::rate_limit`（tower_governor）。

use super::ClientId;
use crate::config::{Config, Rebuilt};
use crate::error::ApiError;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// 按调用方计数的限流器（governor 的 DashMap 表），时钟为 `C`。
type KeyedLimiter<C> =
    RateLimiter<ClientId, DashMapStateStore<ClientId>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// 工作台的张数限流（GCRA）：每分钟 `limits.images_per_minute` 张，一分钟的量可以一次用完。
/// 设置页改了这个数，下一个请求起用新的限流器（计数从零开始）。
/// 时钟运行时是 governor 的默认时钟；单元测试换成手动走的时钟（`with_clock`），不必真的等。
#[derive(Clone)]
pub struct ImageBudget<C: Clock = DefaultClock> {
    current: Arc<Rebuilt<u32, KeyedLimiter<C>>>,
    clock: C,
}

impl Default for ImageBudget {
    fn default() -> Self {
        Self::with_clock(DefaultClock::default())
    }
}

impl<C: Clock + Clone> ImageBudget<C> {
    fn with_clock(clock: C) -> Self {
        Self {
            current: Arc::default(),
            clock,
        }
    }

    /// 为这次提交用掉 `images` 张；不够时 429（带多久后再试），什么都不扣。
    pub fn spend(&self, config: &Config, client: &ClientId, images: u32) -> Result<(), ApiError> {
        let per_minute = config.limits.images_per_minute.max(1);
        let limiter = self.current.get(per_minute, |per_minute| {
            let period = Duration::from_millis((60_000 / per_minute as u64).max(1));
            let quota = Quota::with_period(period)
                .expect("周期大于 0")
                .allow_burst(NonZeroU32::new(per_minute).expect("大于 0"));
            RateLimiter::dashmap_with_clock(quota, self.clock.clone())
        });
        let n = NonZeroU32::new(images.max(1)).expect("大于 0");
        match limiter.check_key_n(client, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(limiter.clock().now());
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

    /// 忘掉已经“回满”的会话与 IP，并收缩表（见 `RateLimiter::forget_idle`）。
    pub fn forget_idle(&self) {
        if let Some(limiter) = self.current.current() {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// 计数表里现在有几个会话或 IP。
    pub fn tracked(&self) -> usize {
        self.current.current().map_or(0, |l| l.len())
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
        let budget: ImageBudget = ImageBudget::default();
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
    fn idle_clients_are_forgotten_and_busy_ones_kept() {
        let mut config = Config::default();
        config.limits.images_per_minute = 600; // 每 100 毫秒回一张

        // 手动走的时钟：不对着真实时钟睡，机器再忙，“过了多久”也是确定的。
        let clock = governor::clock::FakeRelativeClock::default();
        let budget = ImageBudget::with_clock(clock.clone());
        for i in 0..500 {
            budget
                .spend(&config, &ClientId(format!("ip:{i}")), 1)
                .unwrap();
        }
        budget.forget_idle();
        assert_eq!(budget.tracked(), 500, "还没回满：都记着");
        // 用掉 1 张的，两个间隔（200 毫秒）后与没来过的没有区别；用满的那个要一分钟才回满，还记着。
        let busy = ClientId("ip:busy".into());
        budget.spend(&config, &busy, 600).unwrap();
        budget.forget_idle();
        assert_eq!(budget.tracked(), 501, "时钟没走：谁都没回满");
        clock.advance(Duration::from_millis(200));
        budget.forget_idle();
        assert_eq!(budget.tracked(), 1);
        assert!(
            budget.spend(&config, &busy, 10).is_err(),
            "忘掉别人不影响它的计数"
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

/// 一个调用方的额度：每天几张、同时几个请求（0 为不限）。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Budget {
    pub images_per_day: u32,
    pub max_concurrent: u32,
}

/// 调用方的每日张数与同时请求数。张数在请求进来时按要的张数先记上，结束时按实际生成的张数改正（失败的不算）；
/// 某调用方当天第一次用到时，从用量表里接上今天已经生成的张数，所以重启不会清零。日界是 UTC 零点。
#[derive(Clone, Default)]
pub struct ClientBudgets {
    inner: Arc<Mutex<HashMap<String, ClientCount>>>,
}

#[derive(Default)]
struct ClientCount {
    /// UTC 日期（`YYYY-MM-DD`）。
    day: String,
    /// 今天已经生成或正在生成（已记上）的张数。
    images: u64,
    in_flight: u32,
}

/// 一次请求占着的额度：结束时调用 `settle` 按实际张数改正；没有 `settle` 就被丢弃时（请求被取消）按一张都没生成算。
pub struct BudgetTicket {
    budgets: ClientBudgets,
    client: String,
    day: String,
    reserved: u64,
    settled: bool,
}

impl BudgetTicket {
    /// 实际生成了 `produced` 张。
    pub fn settle(mut self, produced: u64) {
        self.release(produced);
        self.settled = true;
    }

    fn release(&self, produced: u64) {
        let mut all = self.budgets.inner.lock().expect("锁未被毒化");
        if let Some(count) = all.get_mut(&self.client) {
            count.in_flight = count.in_flight.saturating_sub(1);
            if count.day == self.day {
                count.images = count.images.saturating_sub(self.reserved) + produced;
            }
        }
    }
}

impl Drop for BudgetTicket {
    fn drop(&mut self) {
        if !self.settled {
            self.release(0);
        }
    }
}

fn utc_day() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// 明天 UTC 零点离现在几秒，与它的写法。
fn next_utc_midnight() -> (u64, String) {
    let now = chrono::Utc::now();
    let tomorrow = (now.date_naive() + chrono::Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .expect("零点总是有效的")
        .and_utc();
    let secs = (tomorrow - now).num_seconds().max(1) as u64;
    (secs, tomorrow.format("%Y-%m-%d %H:%M UTC").to_string())
}

impl ClientBudgets {
    /// 为 `client` 的一次请求（要 `images` 张）占额度；超出时 429 `insufficient_quota`，什么都不记。
    pub async fn admit(
        &self,
        storage: &crate::storage::Storage,
        client: &str,
        budget: Budget,
        images: u32,
    ) -> Result<BudgetTicket, ApiError> {
        self.prepare(storage, client, budget).await;
        self.admit_now(client, budget, images)
    }

    /// 今天第一次用到这个调用方时，从用量表接上今天已经生成的张数（`admit_now` 之前调用）。
    pub async fn prepare(&self, storage: &crate::storage::Storage, client: &str, budget: Budget) {
        if budget.images_per_day == 0 {
            return;
        }
        let day = utc_day();
        let known = {
            let all = self.inner.lock().expect("锁未被毒化");
            all.get(client).is_some_and(|c| c.day == day)
        };
        if known {
            return;
        }
        let used =
            crate::usage::images_since(storage, client.to_string(), format!("{day}T00")).await;
        let mut all = self.inner.lock().expect("锁未被毒化");
        let count = all.entry(client.to_string()).or_default();
        if count.day != day {
            count.day = day;
            count.images = used;
        }
    }

    /// 不读库地占额度（今天的张数已由 `prepare` 接上）。
    pub fn admit_now(
        &self,
        client: &str,
        budget: Budget,
        images: u32,
    ) -> Result<BudgetTicket, ApiError> {
        let day = utc_day();
        let mut all = self.inner.lock().expect("锁未被毒化");
        let count = all.entry(client.to_string()).or_default();
        if count.day != day {
            count.day = day.clone();
            count.images = 0;
        }
        if budget.images_per_day > 0 && count.images + images as u64 > budget.images_per_day as u64
        {
            let (secs, at) = next_utc_midnight();
            let left = (budget.images_per_day as u64).saturating_sub(count.images);
            return Err(ApiError::InsufficientQuota {
                message: format!(
                    "“{client}”每天最多生成 {} 张，今天还剩 {left} 张，这次要 {images} 张；额度在 {at} 重置",
                    budget.images_per_day
                ),
                retry_after_secs: secs,
            });
        }
        if budget.max_concurrent > 0 && count.in_flight >= budget.max_concurrent {
            return Err(ApiError::InsufficientQuota {
                message: format!(
                    "“{client}”同时最多 {} 个请求在生成，请等前面的完成再提交",
                    budget.max_concurrent
                ),
                retry_after_secs: 1,
            });
        }
        count.images += images as u64;
        count.in_flight += 1;
        Ok(BudgetTicket {
            budgets: self.clone(),
            client: client.to_string(),
            day,
            reserved: images as u64,
            settled: false,
        })
    }

    /// 各调用方今天已生成（含正在生成）的张数。
    pub fn today(&self) -> HashMap<String, u64> {
        let day = utc_day();
        self.inner
            .lock()
            .expect("锁未被毒化")
            .iter()
            .filter(|(_, c)| c.day == day)
            .map(|(k, c)| (k.clone(), c.images))
            .collect()
    }
}
