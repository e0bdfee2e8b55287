//! 多实例共用熔断（元数据在 PostgreSQL 时）：一个实例熔断了某个上游，就把“熔断到何时”（库的钟）写进 `breakers` 表；
//! 每个实例每秒读一次，还在熔断期里的上游，本实例没熔断的也熔断到同一时刻——别的实例不必各自再失败 K 次才跳过它。
//! 恢复不共用：冷却期满后各实例各自放一个探测请求（与单机一样），所以一个上游恢复后最多一个冷却期各实例都用上它。

use crate::gateway::Gateway;
use crate::storage::sql::{now_ms, params, Db, DbError};
use crate::storage::Storage;
use std::time::Duration;

/// 剩余不到这么久的熔断不再传给别的实例（熔断了的实例自己也快探测了）。
const MIN_REMAINING_MS: i64 = 1000;

/// 一直运行：每秒把本实例新熔断的上游写进库里，再把库里仍在熔断期的上游用到本实例。
pub async fn follow(gateway: Gateway, storage: Storage) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unreachable = false;
    // 还没写进库里的熔断（写库失败时留到下一次，每个上游只留最近的一项）。
    let mut pending: Vec<(String, std::time::Instant)> = Vec::new();
    loop {
        tick.tick().await;
        let now = std::time::Instant::now();
        for (upstream, remaining) in gateway.take_opened() {
            pending.retain(|(u, _)| *u != upstream);
            pending.push((upstream, now + remaining));
        }
        let opened: Vec<(String, Duration)> = pending
            .iter()
            .map(|(u, until)| (u.clone(), until.saturating_duration_since(now)))
            .collect();
        match storage.with_db(move |db| Ok(exchange(db, &opened)?)).await {
            Ok(open) => {
                pending.clear();
                unreachable = false;
                for (upstream, remaining_ms) in open {
                    gateway.open_elsewhere(&upstream, Duration::from_millis(remaining_ms as u64));
                }
            }
            Err(e) => {
                if !unreachable {
                    tracing::warn!("无法与别的实例交换熔断状态（各实例暂时各管各的）：{e}");
                }
                unreachable = true;
            }
        }
    }
}

/// 写入本实例新熔断的上游，返回库里仍在熔断期（还剩至少 1 秒）的上游与剩余毫秒。
fn exchange(db: &mut Db<'_>, opened: &[(String, Duration)]) -> Result<Vec<(String, i64)>, DbError> {
    let now = now_ms(db.dialect());
    for (upstream, remaining) in opened {
        db.execute(
            &format!(
                "INSERT INTO breakers (upstream, open_until) VALUES (?1, {now} + CAST(?2 AS BIGINT))
                 ON CONFLICT (upstream) DO UPDATE SET open_until = excluded.open_until"
            ),
            params![upstream, remaining.as_millis() as i64],
        )?;
    }
    db.query(
        &format!(
            "SELECT upstream, open_until - {now} FROM breakers WHERE open_until - {now} >= ?1"
        ),
        params![MIN_REMAINING_MS],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}
