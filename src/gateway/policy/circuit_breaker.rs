//! 熔断器：某个上游连续失败 K 次后，在冷却期内跳过它；冷却期过后只放一个探测请求，
//! 探测成功即恢复，失败则再熔断一个冷却期。探测一个冷却期内没有结果（请求被取消、或还在进行）
//! 就再放一个——否则一个被取消的探测会让这个上游永远被跳过。

use crate::gateway::GatewayError;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// 冷却期已过，有一个探测请求在路上（`since` 起）。
    HalfOpen {
        since: Instant,
    },
}

#[derive(Default)]
pub struct CircuitBreakers {
    states: Mutex<HashMap<String, State>>,
}

/// 熔断器对外可见的状态（用于指标与健康显示）。
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitBreakers {
    /// 现在能不能向这个上游发请求。熔断中返回剩余冷却时间。
    pub fn try_acquire(&self, upstream: &str, cooldown: Duration) -> Result<(), Duration> {
        self.try_acquire_at(upstream, cooldown, Instant::now())
    }

    /// 同上，“现在”由调用方给出（单元测试用它走时间，不必真的等冷却期）。
    fn try_acquire_at(
        &self,
        upstream: &str,
        cooldown: Duration,
        now: Instant,
    ) -> Result<(), Duration> {
        let mut states = self.states.lock().expect("熔断器锁未被毒化");
        let state = states
            .entry(upstream.to_string())
            .or_insert(State::Closed { failures: 0 });
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { until } => {
                if now >= until {
                    *state = State::HalfOpen { since: now };
                    Ok(())
                } else {
                    Err(until - now)
                }
            }
            State::HalfOpen { since } => {
                let waited = now.saturating_duration_since(since);
                if waited >= cooldown {
                    // 上一个探测迟迟没有结果：再放一个。
                    *state = State::HalfOpen { since: now };
                    Ok(())
                } else {
                    // 已经有一个探测请求了，其他请求继续跳过。
                    Err((cooldown - waited).max(Duration::from_secs(1)))
                }
            }
        }
    }

    pub fn record_success(&self, upstream: &str) {
        let mut states = self.states.lock().expect("熔断器锁未被毒化");
        states.insert(upstream.to_string(), State::Closed { failures: 0 });
    }

    /// 记一次失败。只有说明上游“不健康”的失败才计数（连不上、超时、5xx、响应损坏）。
    /// 返回这次失败是否让它熔断了（给多实例共用：见 `crate::cluster_breakers`）。
    pub fn record_failure(
        &self,
        upstream: &str,
        err: &GatewayError,
        threshold: u32,
        cooldown: Duration,
    ) -> bool {
        self.record_failure_at(upstream, err, threshold, cooldown, Instant::now())
    }

    /// 同上，“现在”由调用方给出（单元测试用）。
    fn record_failure_at(
        &self,
        upstream: &str,
        err: &GatewayError,
        threshold: u32,
        cooldown: Duration,
        now: Instant,
    ) -> bool {
        if !counts_as_unhealthy(err) {
            // 请求本身的问题不说明上游坏了；但半开探测也算结束了。
            let mut states = self.states.lock().expect("熔断器锁未被毒化");
            if let Some(state @ State::HalfOpen { .. }) = states.get_mut(upstream) {
                *state = State::Closed { failures: 0 };
            }
            return false;
        }
        let mut states = self.states.lock().expect("熔断器锁未被毒化");
        let state = states
            .entry(upstream.to_string())
            .or_insert(State::Closed { failures: 0 });
        let failures = match *state {
            State::Closed { failures } => failures + 1,
            State::HalfOpen { .. } | State::Open { .. } => threshold,
        };
        let opened = failures >= threshold;
        *state = if opened {
            tracing::warn!(
                upstream,
                failures,
                cooldown_s = cooldown.as_secs(),
                "上游熔断"
            );
            State::Open {
                until: now + cooldown,
            }
        } else {
            State::Closed { failures }
        };
        opened
    }

    /// 别的实例熔断了这个上游，还剩 `remaining`：本实例没熔断的，也熔断到同一时刻
    /// （已经熔断或正在探测的不动）。返回是否改了。
    pub fn open_elsewhere(&self, upstream: &str, remaining: Duration) -> bool {
        let mut states = self.states.lock().expect("熔断器锁未被毒化");
        let state = states
            .entry(upstream.to_string())
            .or_insert(State::Closed { failures: 0 });
        if !matches!(state, State::Closed { .. }) {
            return false;
        }
        *state = State::Open {
            until: Instant::now() + remaining,
        };
        tracing::warn!(
            upstream,
            remaining_s = remaining.as_secs(),
            "另一个实例熔断了这个上游，本实例也跳过它"
        );
        true
    }

    pub fn state(&self, upstream: &str) -> BreakerState {
        match self.states.lock().expect("熔断器锁未被毒化").get(upstream) {
            None | Some(State::Closed { .. }) => BreakerState::Closed,
            Some(State::Open { .. }) => BreakerState::Open,
            Some(State::HalfOpen { .. }) => BreakerState::HalfOpen,
        }
    }
}

fn counts_as_unhealthy(err: &GatewayError) -> bool {
    match err {
        GatewayError::Connect { .. }
        | GatewayError::Timeout { .. }
        | GatewayError::BadResponse { .. } => true,
        GatewayError::Status { status, .. } => *status >= 500,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn down() -> GatewayError {
        GatewayError::Connect {
            upstream: "a".into(),
            detail: "refused".into(),
        }
    }

    /// 冷却期（30 秒）不用真的等：各步给出明确的“现在”。
    const COOLDOWN: Duration = Duration::from_secs(30);
    const JUST_BEFORE: Duration = Duration::from_millis(1);

    #[test]
    fn opens_after_k_failures_then_probes_once_and_recovers() {
        let b = CircuitBreakers::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(b.try_acquire_at("a", COOLDOWN, t0).is_ok());
            b.record_failure_at("a", &down(), 3, COOLDOWN, t0);
        }
        assert_eq!(b.state("a"), BreakerState::Open);
        assert!(b.try_acquire_at("a", COOLDOWN, t0).is_err());
        assert_eq!(
            b.try_acquire_at("a", COOLDOWN, t0 + COOLDOWN - JUST_BEFORE),
            Err(JUST_BEFORE),
            "冷却期的最后一刻仍跳过，并说出还剩多久"
        );
        assert!(
            b.try_acquire_at("other", COOLDOWN, t0).is_ok(),
            "熔断只影响出问题的上游"
        );
        let after = t0 + COOLDOWN;
        assert!(
            b.try_acquire_at("a", COOLDOWN, after).is_ok(),
            "冷却后放一个探测请求"
        );
        assert!(
            b.try_acquire_at("a", COOLDOWN, after).is_err(),
            "探测期间其他请求继续跳过"
        );
        b.record_success("a");
        assert_eq!(b.state("a"), BreakerState::Closed);
    }

    #[test]
    fn another_instance_s_opening_applies_only_to_a_closed_breaker() {
        let b = CircuitBreakers::default();
        assert!(b.open_elsewhere("a", Duration::from_secs(30)));
        assert_eq!(b.state("a"), BreakerState::Open);
        assert!(b.try_acquire("a", Duration::from_secs(30)).is_err());
        assert!(
            !b.open_elsewhere("a", Duration::from_secs(60)),
            "已经熔断的不动"
        );
        assert!(
            b.record_failure("b", &down(), 1, Duration::from_secs(30)),
            "这次失败让它熔断了"
        );
        assert!(!b.record_failure("c", &down(), 2, Duration::from_secs(30)));
    }

    #[test]
    fn a_probe_that_never_reports_does_not_block_the_upstream_forever() {
        let b = CircuitBreakers::default();
        let t0 = Instant::now();
        b.record_failure_at("a", &down(), 1, COOLDOWN, t0);
        let probe = t0 + COOLDOWN;
        assert!(b.try_acquire_at("a", COOLDOWN, probe).is_ok(), "第一个探测");
        // 这个探测被取消了：既不报成功也不报失败。
        assert!(b.try_acquire_at("a", COOLDOWN, probe).is_err());
        assert!(
            b.try_acquire_at("a", COOLDOWN, probe + COOLDOWN - JUST_BEFORE)
                .is_err(),
            "一个冷却期之内只有那一个探测"
        );
        assert!(
            b.try_acquire_at("a", COOLDOWN, probe + COOLDOWN).is_ok(),
            "过了一个冷却期再放一个探测"
        );
        assert!(b.try_acquire_at("a", COOLDOWN, probe + COOLDOWN).is_err());
    }

    #[test]
    fn failed_probe_reopens_and_safety_blocks_do_not_count() {
        let b = CircuitBreakers::default();
        let t0 = Instant::now();
        let safety = GatewayError::Safety {
            upstream: "a".into(),
            reason: "SAFETY".into(),
            before_generation: false,
        };
        for _ in 0..10 {
            b.record_failure_at("a", &safety, 2, COOLDOWN, t0);
        }
        assert_eq!(b.state("a"), BreakerState::Closed);
        b.record_failure_at("a", &down(), 2, COOLDOWN, t0);
        b.record_failure_at("a", &down(), 2, COOLDOWN, t0);
        let probe = t0 + COOLDOWN;
        assert!(b.try_acquire_at("a", COOLDOWN, probe).is_ok());
        b.record_failure_at("a", &down(), 2, COOLDOWN, probe);
        assert_eq!(b.state("a"), BreakerState::Open);
        assert!(
            b.try_acquire_at("a", COOLDOWN, probe + COOLDOWN - JUST_BEFORE)
                .is_err(),
            "探测失败：从那时起再熔断一个冷却期"
        );
        assert!(b.try_acquire_at("a", COOLDOWN, probe + COOLDOWN).is_ok());
    }
}
