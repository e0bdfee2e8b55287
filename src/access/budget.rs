//! 工作台的用量上限：每分钟张数（按会话，否则按 IP；一次提交 16 张就用掉 16）与每个 IP 的 `/ws` 连接数。
//! `/v1` 的按请求数限流在 `crate::openai::rate_limit`（tower_governor）。

use super::ClientId;
use crate::config::{Config, Rebuilt};
use crate::error::ApiError;
use crate::types::money::{Micros, Pricing};
use chrono::{DateTime, Datelike, Utc};
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

/// 一个账号的每分钟限流器与建它时的每分钟张数。
type AccountLimiter = (u32, Arc<governor::DefaultDirectRateLimiter>);

/// 账号自己的每分钟张数（`AccountLimits::images_per_minute`）：每个账号一个 GCRA 限流器（governor），
/// 额度改了就换一个新的（计数从零开始）。0 为不限。
#[derive(Clone, Default)]
pub struct AccountMinutes {
    inner: Arc<Mutex<HashMap<String, AccountLimiter>>>,
}

impl AccountMinutes {
    /// 为账号 `account` 的这次提交用掉 `images` 张；不够时 429，什么都不扣。
    pub fn spend(&self, account: &str, per_minute: u32, images: u32) -> Result<(), ApiError> {
        if per_minute == 0 {
            return Ok(());
        }
        let limiter = {
            let mut all = self.inner.lock().expect("锁未被毒化");
            let entry = all.entry(account.to_string()).or_insert_with(|| {
                (
                    0,
                    Arc::new(RateLimiter::direct(Quota::per_hour(NonZeroU32::MIN))),
                )
            });
            if entry.0 != per_minute {
                let period = Duration::from_millis((60_000 / per_minute as u64).max(1));
                let quota = Quota::with_period(period)
                    .expect("周期大于 0")
                    .allow_burst(NonZeroU32::new(per_minute).expect("大于 0"));
                *entry = (per_minute, Arc::new(RateLimiter::direct(quota)));
            }
            entry.1.clone()
        };
        let n = NonZeroU32::new(images.max(1)).expect("大于 0");
        match limiter.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(ApiError::InsufficientQuota {
                    message: format!(
                        "账号“{account}”每分钟最多生成 {per_minute} 张，请 {} 秒后再试",
                        wait.as_secs_f64().ceil().max(1.0)
                    ),
                    retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
                })
            }
            Err(_) => Err(ApiError::InvalidRequest(format!(
                "账号“{account}”每分钟最多生成 {per_minute} 张，这次要 {images} 张"
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

/// 一个调用方的额度：每天几张、同时几个请求、每天与每月花多少（0 为不限）。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Budget {
    pub images_per_day: u32,
    pub max_concurrent: u32,
    /// 每天（UTC）与每个自然月（UTC）最多花多少（美元，百万分之一；0 为不限）。按目录价格算，可能已计费的也算。
    pub spend_per_day: Micros,
    pub spend_per_month: Micros,
    /// 拒绝时按哪种币种说。
    pub pricing: Pricing,
}

impl Budget {
    fn caps_spend(&self) -> bool {
        self.spend_per_day.0 > 0 || self.spend_per_month.0 > 0
    }
}

/// 调用方的每日张数、花费与同时请求数。张数与花费在请求进来时按要的张数与估价先记上，结束时按实际生成的张数与
/// 实际的花费改正（失败的不算张数；可能已计费的算花费）；某调用方当天（当月）第一次用到时，从用量表里接上今天
/// 已经生成的张数与今天、本月已经花的钱，所以重启不会清零。日界是 UTC 零点，月界是 UTC 每月 1 日零点。
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
    /// 今天与本月（`YYYY-MM`）已经花的与正在花的（已记上的估价），美元，百万分之一。
    spend_day: i64,
    month: String,
    spend_month: i64,
    in_flight: u32,
}

impl ClientCount {
    /// 换了日子（月份）就从 0 开始。
    fn roll(&mut self, day: &str) {
        if self.day != day {
            self.day = day.to_string();
            self.images = 0;
            self.spend_day = 0;
        }
        if self.month != day[..7] {
            self.month = day[..7].to_string();
            self.spend_month = 0;
        }
    }
}

/// 一次请求占着的额度：结束时调用 `settle` 按实际张数与花费改正；没有 `settle` 就被丢弃时（请求被取消）
/// 按一张都没生成、一分钱没花算。
pub struct BudgetTicket {
    budgets: ClientBudgets,
    client: String,
    day: String,
    reserved: u64,
    reserved_spend: i64,
    settled: bool,
    /// 同一次请求还占着的另一份额度（请求者账号的），一起结算。
    also: Option<Box<BudgetTicket>>,
}

impl BudgetTicket {
    /// 实际生成了 `produced` 张，花了 `spent`（美元，按目录价格，含可能已计费的）。
    pub fn settle(mut self, produced: u64, spent: Micros) {
        self.release(produced, spent.0);
        self.settled = true;
        if let Some(also) = self.also.take() {
            also.settle(produced, spent);
        }
    }

    /// 这次请求同时占着的另一份额度（请求者账号的），结算时一起。
    pub fn and(mut self, other: BudgetTicket) -> Self {
        self.also = Some(Box::new(other));
        self
    }

    /// 按占额度时的估价结算（批次在后台慢慢跑，不等结果）。
    pub fn settle_as_reserved(self) {
        let (produced, spent) = (self.reserved, Micros(self.reserved_spend));
        self.settle(produced, spent);
    }

    fn release(&self, produced: u64, spent: i64) {
        let mut all = self.budgets.inner.lock().expect("锁未被毒化");
        if let Some(count) = all.get_mut(&self.client) {
            count.in_flight = count.in_flight.saturating_sub(1);
            if count.day == self.day {
                count.images = count.images.saturating_sub(self.reserved) + produced;
                count.spend_day = count.spend_day - self.reserved_spend + spent;
            }
            if count.month == self.day[..7] {
                count.spend_month = count.spend_month - self.reserved_spend + spent;
            }
        }
    }
}

impl Drop for BudgetTicket {
    fn drop(&mut self) {
        if !self.settled {
            self.release(0, 0);
        }
    }
}

fn utc_day(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%d").to_string()
}

/// 明天 UTC 零点离 `now` 几秒，与它的写法。
fn next_utc_midnight(now: DateTime<Utc>) -> (u64, String) {
    let tomorrow = (now.date_naive() + chrono::Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .expect("零点总是有效的")
        .and_utc();
    let secs = (tomorrow - now).num_seconds().max(1) as u64;
    (secs, tomorrow.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// 下个月 1 日 UTC 零点离 `now` 几秒，与它的写法。
fn next_utc_month(now: DateTime<Utc>) -> (u64, String) {
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    let first = chrono::NaiveDate::from_ymd_opt(y, m, 1)
        .expect("每月都有 1 日")
        .and_hms_opt(0, 0, 0)
        .expect("零点总是有效的")
        .and_utc();
    let secs = (first - now).num_seconds().max(1) as u64;
    (secs, first.format("%Y-%m-%d %H:%M UTC").to_string())
}

impl ClientBudgets {
    /// 为 `client` 的一次请求（要 `images` 张，估价 `cost`）占额度；超出时 429 `insufficient_quota`，什么都不记。
    pub async fn admit(
        &self,
        storage: &crate::storage::Storage,
        client: &str,
        budget: Budget,
        images: u32,
        cost: Option<Micros>,
    ) -> Result<BudgetTicket, ApiError> {
        let scope = crate::usage::Scope::Client(client.to_string());
        self.prepare(storage, &scope, budget).await;
        self.admit_now(client, budget, images, cost)
    }

    /// 今天（本月）第一次用到这个调用方（或账号）时，从用量表接上今天已经生成的张数与今天、本月的花费
    /// （`admit_now` 之前调用；额度表里的键是 `scope.shown()`）。
    pub async fn prepare(
        &self,
        storage: &crate::storage::Storage,
        scope: &crate::usage::Scope,
        budget: Budget,
    ) {
        if budget.images_per_day == 0 && !budget.caps_spend() {
            return;
        }
        let client = scope.shown();
        let client = client.as_str();
        let day = utc_day(Utc::now());
        let known = {
            let all = self.inner.lock().expect("锁未被毒化");
            all.get(client).is_some_and(|c| c.day == day)
        };
        if known {
            return;
        }
        let used = crate::usage::images_since(storage, scope, format!("{day}T00")).await;
        let (spent_day, spent_month) = if budget.caps_spend() {
            (
                crate::usage::spend_since(storage, scope, format!("{day}T00")).await,
                crate::usage::spend_since(storage, scope, format!("{}-01", &day[..7])).await,
            )
        } else {
            (0, 0)
        };
        let mut all = self.inner.lock().expect("锁未被毒化");
        let count = all.entry(client.to_string()).or_default();
        if count.day != day {
            count.day = day.clone();
            count.images = used;
            count.spend_day = spent_day;
            count.month = day[..7].to_string();
            count.spend_month = spent_month;
        }
    }

    /// 不读库地占额度（今天的张数与花费已由 `prepare` 接上）。
    pub fn admit_now(
        &self,
        client: &str,
        budget: Budget,
        images: u32,
        cost: Option<Micros>,
    ) -> Result<BudgetTicket, ApiError> {
        self.admit_at(Utc::now(), client, budget, images, cost)
    }

    /// 同上，“现在”由调用方给（单元测试走过日界与月界）。
    fn admit_at(
        &self,
        now: DateTime<Utc>,
        client: &str,
        budget: Budget,
        images: u32,
        cost: Option<Micros>,
    ) -> Result<BudgetTicket, ApiError> {
        let day = utc_day(now);
        let mut all = self.inner.lock().expect("锁未被毒化");
        let count = all.entry(client.to_string()).or_default();
        count.roll(&day);
        if budget.images_per_day > 0 && count.images + images as u64 > budget.images_per_day as u64
        {
            let (secs, at) = next_utc_midnight(now);
            let left = (budget.images_per_day as u64).saturating_sub(count.images);
            return Err(ApiError::InsufficientQuota {
                message: format!(
                    "“{client}”每天最多生成 {} 张，今天还剩 {left} 张，这次要 {images} 张；额度在 {at} 重置",
                    budget.images_per_day
                ),
                retry_after_secs: secs,
            });
        }
        let cost = match (budget.caps_spend(), cost) {
            (false, cost) => cost.unwrap_or_default(),
            (true, Some(cost)) => cost,
            (true, None) => {
                return Err(ApiError::InvalidRequest(format!(
                    "“{client}”设了花费上限，而这次用的模型在这个分辨率下没有价格，无法核对花费，没有发出请求；\
                     请换一个有价格的模型或分辨率，或在配置的 [[models]] 里为它写上 prices"
                )))
            }
        };
        spend_check(count, client, budget, cost, now)?;
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
        count.spend_day += cost.0;
        count.spend_month += cost.0;
        count.in_flight += 1;
        Ok(BudgetTicket {
            budgets: self.clone(),
            client: client.to_string(),
            day,
            reserved: images as u64,
            reserved_spend: cost.0,
            settled: false,
            also: None,
        })
    }

    /// 各调用方今天已生成（含正在生成）的张数。
    pub fn today(&self) -> HashMap<String, u64> {
        let day = utc_day(Utc::now());
        self.inner
            .lock()
            .expect("锁未被毒化")
            .iter()
            .filter(|(_, c)| c.day == day)
            .map(|(k, c)| (k.clone(), c.images))
            .collect()
    }
}

/// 加上这次的估价会不会超过每天或每月的花费上限；超了说清上限、已花、这次估价与何时重置。
fn spend_check(
    count: &ClientCount,
    client: &str,
    budget: Budget,
    cost: Micros,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let show = |m: i64| budget.pricing.show(Micros(m));
    let periods = [
        (
            "每天",
            budget.spend_per_day,
            count.spend_day,
            next_utc_midnight(now),
        ),
        (
            "每月",
            budget.spend_per_month,
            count.spend_month,
            next_utc_month(now),
        ),
    ];
    for (period, cap, spent, (secs, at)) in periods {
        if cap.0 > 0 && spent + cost.0 > cap.0 {
            return Err(ApiError::InsufficientQuota {
                message: format!(
                    "“{client}”{period}最多花 {}，已花 {}，这次估计 {}，超过上限，没有发出请求；额度在 {at} 重置",
                    show(cap.0),
                    show(spent),
                    show(cost.0)
                ),
                retry_after_secs: secs,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod spend_tests {
    use super::*;
    use crate::types::money::Currency;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_daily_spend_cap_refuses_the_request_that_would_pass_it_and_resets_at_midnight() {
        let budgets = ClientBudgets::default();
        let cap = Budget {
            spend_per_day: Micros(500_000),
            pricing: Pricing::default(),
            ..Budget::default()
        };
        let price = Some(Micros(134_000));
        let day1 = at("2026-12-07T23:00:00Z");
        for _ in 0..3 {
            budgets
                .admit_at(day1, "脚本", cap, 1, price)
                .unwrap()
                .settle(1, Micros(134_000));
        }
        // 已花 0.402，再来一张 0.134 就是 0.536 > 0.50。
        let err = budgets
            .admit_at(day1, "脚本", cap, 1, price)
            .err()
            .expect("应当被拒");
        let text = err.to_string();
        assert!(text.contains("每天最多花 $0.50"), "{text}");
        assert!(text.contains("已花 $0.402"), "{text}");
        assert!(text.contains("2026-12-08 00:00 UTC"), "{text}");
        assert!(matches!(
            err,
            ApiError::InsufficientQuota {
                retry_after_secs: 3600,
                ..
            }
        ));
        // 被拒的什么都没记：同样的请求仍然被拒。
        assert!(budgets.admit_at(day1, "脚本", cap, 1, price).is_err());
        // 别人不受影响；过了 UTC 零点重新计。
        assert!(budgets.admit_at(day1, "别人", cap, 1, price).is_ok());
        let day2 = at("2026-12-08T00:00:01Z");
        budgets
            .admit_at(day2, "脚本", cap, 1, price)
            .unwrap()
            .settle(1, Micros(134_000));
    }

    #[test]
    fn a_monthly_cap_in_yuan_counts_maybe_billed_spend_and_resets_on_the_first() {
        let budgets = ClientBudgets::default();
        let cny = Pricing {
            currency: Currency::Cny,
            rate: Micros::from_decimal(7.2),
        };
        // 每月 ¥7.20 = $1.00。
        let cap = Budget {
            spend_per_month: cny.to_usd(Micros::from_decimal(7.2)),
            pricing: cny,
            ..Budget::default()
        };
        let t = at("2026-12-31T12:00:00Z");
        // 一次失败但可能已计费的 4K（$0.24 × 4 张的估价，实际花了 $0.96）。
        budgets
            .admit_at(t, "组", cap, 4, Some(Micros(960_000)))
            .unwrap()
            .settle(0, Micros(960_000));
        let err = budgets
            .admit_at(t, "组", cap, 1, Some(Micros(134_000)))
            .err()
            .expect("应当被拒");
        let text = err.to_string();
        assert!(text.contains("每月最多花 ¥7.20"), "{text}");
        assert!(text.contains("2027-01-01 00:00 UTC"), "{text}");
        assert!(budgets
            .admit_at(
                at("2027-01-01T00:00:00Z"),
                "组",
                cap,
                1,
                Some(Micros(134_000))
            )
            .is_ok());
        // 没有价格的模型：设了花费上限就不能放行（不当作 0 元）。
        let err = budgets
            .admit_at(t, "新组", cap, 1, None)
            .err()
            .expect("应当被拒");
        assert!(err.to_string().contains("没有价格"), "{err}");
        assert!(budgets
            .admit_at(t, "不设上限", Budget::default(), 1, None)
            .is_ok());
    }
}
