//! 用量表的 SQL（表结构见 `storage::db` 的迁移 11）。

use super::{AttemptEvent, LATENCY_BUCKETS_MS};
use crate::storage::sql::{params, Db, DbError, Dialect, Row};
use crate::types::attempt::Billing;
use crate::types::money::{Micros, Spend};
use std::collections::BTreeMap;

/// 表里的一行（读出来给用量页）。
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UsageRow {
    pub period: String,
    pub client: String,
    pub account: String,
    pub upstream: String,
    pub model: String,
    pub key_index: u32,
    pub requests: u64,
    pub images: u64,
    pub failures: BTreeMap<String, u64>,
    pub retries: u64,
    pub fallbacks: u64,
    pub latency: Vec<u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// 已计费的尝试按目录价格的花费（美元，百万分之一）。
    pub spend: i64,
    /// 可能已计费的尝试次数与它们按目录价格的花费。
    pub maybe_billed: u64,
    pub maybe_spend: i64,
    /// 已计费、价格却未知的次数，与可能已计费、价格未知的次数（都不当作 0 元）。
    pub unpriced: u64,
    pub maybe_unpriced: u64,
}

impl UsageRow {
    fn add(&mut self, other: &UsageRow) {
        self.requests += other.requests;
        self.images += other.images;
        for (class, n) in &other.failures {
            *self.failures.entry(class.clone()).or_default() += n;
        }
        self.retries += other.retries;
        self.fallbacks += other.fallbacks;
        self.latency.resize(LATENCY_BUCKETS_MS.len() + 1, 0);
        for (i, n) in other.latency.iter().enumerate().take(self.latency.len()) {
            self.latency[i] += n;
        }
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.spend += other.spend;
        self.maybe_billed += other.maybe_billed;
        self.maybe_spend += other.maybe_spend;
        self.unpriced += other.unpriced;
        self.maybe_unpriced += other.maybe_unpriced;
    }

    /// 这些行的花费：已计费的与可能已计费的（价格未知的记次数）。
    pub fn spend(&self) -> (Spend, Spend) {
        let billed = Spend {
            usd: Micros(self.spend),
            unpriced: self.unpriced,
        };
        let maybe = Spend {
            usd: Micros(self.maybe_spend),
            unpriced: self.maybe_unpriced,
        };
        (billed, maybe)
    }

    fn of_event(e: &AttemptEvent) -> UsageRow {
        let mut latency = vec![0; LATENCY_BUCKETS_MS.len() + 1];
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|&b| e.latency_ms <= b)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        latency[bucket] = 1;
        let charged = |b: Billing| {
            if e.billing == b {
                e.price.map_or(0, |p| p.0)
            } else {
                0
            }
        };
        UsageRow {
            period: e.hour.clone(),
            client: e.client.clone(),
            account: e.account.clone(),
            upstream: e.upstream.clone(),
            model: e.model.clone(),
            key_index: e.key_index,
            requests: 1,
            images: e.failure.is_none() as u64,
            failures: e.failure.iter().map(|c| (c.clone(), 1)).collect(),
            retries: e.retry as u64,
            fallbacks: e.fallback as u64,
            latency,
            bytes_in: e.bytes_in,
            bytes_out: e.bytes_out,
            spend: charged(Billing::Billed),
            maybe_billed: (e.billing == Billing::MaybeBilled) as u64,
            maybe_spend: charged(Billing::MaybeBilled),
            unpriced: (e.billing == Billing::Billed && e.price.is_none()) as u64,
            maybe_unpriced: (e.billing == Billing::MaybeBilled && e.price.is_none()) as u64,
        }
    }

    fn key(&self) -> (String, String, String, String, String, u32) {
        (
            self.period.clone(),
            self.client.clone(),
            self.account.clone(),
            self.upstream.clone(),
            self.model.clone(),
            self.key_index,
        )
    }
}

fn row_of(r: &Row) -> Result<UsageRow, DbError> {
    Ok(UsageRow {
        period: r.get("period")?,
        client: r.get("client")?,
        account: r.get("account")?,
        upstream: r.get("upstream")?,
        model: r.get("model")?,
        key_index: r.get("key_index")?,
        requests: r.get::<i64>("requests")? as u64,
        images: r.get::<i64>("images")? as u64,
        failures: serde_json::from_str(&r.get::<String>("failures")?).unwrap_or_default(),
        retries: r.get::<i64>("retries")? as u64,
        fallbacks: r.get::<i64>("fallbacks")? as u64,
        latency: serde_json::from_str(&r.get::<String>("latency")?).unwrap_or_default(),
        bytes_in: r.get::<i64>("bytes_in")? as u64,
        bytes_out: r.get::<i64>("bytes_out")? as u64,
        spend: r.get::<i64>("spend_micros")?,
        maybe_billed: r.get::<i64>("maybe_billed")? as u64,
        maybe_spend: r.get::<i64>("maybe_spend_micros")?,
        unpriced: r.get::<i64>("unpriced")? as u64,
        maybe_unpriced: r.get::<i64>("maybe_unpriced")? as u64,
    })
}

/// 把行加进表里（同键的累加）。要在事务里调用：先确保有这一行，再锁住它读出、加上、写回
/// （PostgreSQL 上几个实例同时累加同一行时不会丢数；SQLite 的事务本来就独占写）。
fn merge(conn: &mut Db<'_>, row: &UsageRow) -> Result<(), DbError> {
    let key = params![
        row.period,
        row.client,
        row.upstream,
        row.model,
        row.key_index,
        row.account
    ];
    conn.execute(
        "INSERT INTO usage (period, client, upstream, model, key_index, account) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (period, client, account, upstream, model, key_index) DO NOTHING",
        key,
    )?;
    let lock = match conn.dialect() {
        Dialect::Postgres => " FOR UPDATE",
        Dialect::Sqlite => "",
    };
    let mut total = conn.query_one(
        &format!("SELECT * FROM usage WHERE period = ?1 AND client = ?2 AND upstream = ?3 AND model = ?4 AND key_index = ?5 AND account = ?6{lock}"),
        key,
        row_of,
    )?;
    total.add(row);
    conn.execute(
        "UPDATE usage SET requests = ?6, images = ?7, failures = ?8, retries = ?9, fallbacks = ?10,
                          latency = ?11, bytes_in = ?12, bytes_out = ?13, spend_micros = ?14,
                          maybe_billed = ?15, maybe_spend_micros = ?16, unpriced = ?17, maybe_unpriced = ?18
         WHERE period = ?1 AND client = ?2 AND upstream = ?3 AND model = ?4 AND key_index = ?5 AND account = ?19",
        params![
            total.period,
            total.client,
            total.upstream,
            total.model,
            total.key_index,
            total.requests as i64,
            total.images as i64,
            serde_json::to_string(&total.failures).unwrap_or_else(|_| "{}".into()),
            total.retries as i64,
            total.fallbacks as i64,
            serde_json::to_string(&total.latency).unwrap_or_else(|_| "[]".into()),
            total.bytes_in as i64,
            total.bytes_out as i64,
            total.spend,
            total.maybe_billed as i64,
            total.maybe_spend,
            total.unpriced as i64,
            total.maybe_unpriced as i64,
            total.account
        ],
    )?;
    Ok(())
}

/// 一批事件：先在内存里按键合起来，再在一个事务里写。
pub fn add(conn: &mut Db<'_>, events: &[AttemptEvent]) -> Result<(), DbError> {
    let mut rows: BTreeMap<_, UsageRow> = BTreeMap::new();
    for e in events {
        let row = UsageRow::of_event(e);
        rows.entry(row.key())
            .and_modify(|r| r.add(&row))
            .or_insert(row);
    }
    conn.transaction(|tx| {
        for row in rows.values() {
            merge(tx, row)?;
        }
        Ok(())
    })
}

/// 从 `since`（含，`YYYY-MM-DD` 或 `YYYY-MM-DDTHH`）起的全部行。
pub fn since(conn: &mut Db<'_>, since: &str) -> Result<Vec<UsageRow>, DbError> {
    conn.query(
        "SELECT * FROM usage WHERE period >= ?1 ORDER BY period",
        params![since],
        row_of,
    )
}

/// `column`（`client` 或 `account`）为 `value` 的行从 `since_hour` 起生成的张数。
pub fn images_since(
    conn: &mut Db<'_>,
    column: &'static str,
    value: &str,
    since_hour: &str,
) -> Result<u64, DbError> {
    conn.query_one(
        &format!("SELECT CAST(COALESCE(SUM(images), 0) AS BIGINT) FROM usage WHERE {column} = ?1 AND period >= ?2"),
        params![value, since_hour],
        |r| r.get::<u64>(0),
    )
}

/// `column`（`client` 或 `account`）为 `value` 的行从 `since_hour` 起按目录价格的花费
/// （已计费加可能已计费，美元，百万分之一）。
pub fn spend_since(
    conn: &mut Db<'_>,
    column: &'static str,
    value: &str,
    since_hour: &str,
) -> Result<i64, DbError> {
    conn.query_one(
        &format!(
            "SELECT CAST(COALESCE(SUM(spend_micros + maybe_spend_micros), 0) AS BIGINT) FROM usage
             WHERE {column} = ?1 AND period >= ?2"
        ),
        params![value, since_hour],
        |r| r.get::<i64>(0),
    )
}

/// 从 `since` 起每个账号生成的张数与花费（已计费加可能已计费）。
pub fn by_account_since(
    conn: &mut Db<'_>,
    since: &str,
) -> Result<Vec<(String, u64, i64)>, DbError> {
    conn.query(
        "SELECT account, CAST(SUM(images) AS BIGINT) AS images,
                CAST(SUM(spend_micros + maybe_spend_micros) AS BIGINT) AS usd
         FROM usage WHERE period >= ?1 AND account <> '' GROUP BY account",
        params![since],
        |r| {
            Ok((
                r.get("account")?,
                r.get::<u64>("images")?,
                r.get::<i64>("usd")?,
            ))
        },
    )
}

/// 从 `since` 起每个上游的每个密钥的花费（已计费加可能已计费）。
pub fn key_spend_since(conn: &mut Db<'_>, since: &str) -> Result<Vec<(String, u32, i64)>, DbError> {
    conn.query(
        "SELECT upstream, key_index, CAST(SUM(spend_micros + maybe_spend_micros) AS BIGINT) AS usd
         FROM usage WHERE period >= ?1 AND key_index > 0 GROUP BY upstream, key_index",
        params![since],
        |r| {
            Ok((
                r.get("upstream")?,
                r.get("key_index")?,
                r.get::<i64>("usd")?,
            ))
        },
    )
}

/// 超过 `keep_days` 天的按小时的行合并成按天的行，返回合并掉的行数。
pub fn roll_up(conn: &mut Db<'_>, keep_days: u32) -> Result<usize, DbError> {
    let cutoff = (chrono::Utc::now() - chrono::Duration::days(keep_days as i64))
        .format("%Y-%m-%dT00")
        .to_string();
    conn.transaction(|tx| {
        let old: Vec<UsageRow> = tx.query(
            "DELETE FROM usage WHERE length(period) = 13 AND period < ?1 RETURNING *",
            params![cutoff],
            row_of,
        )?;
        for mut row in old.iter().cloned() {
            row.period.truncate(10);
            merge(tx, &row)?;
        }
        Ok(old.len())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(hour: &str, failure: Option<&str>, latency_ms: u64) -> AttemptEvent {
        AttemptEvent {
            hour: hour.into(),
            client: "工作台".into(),
            account: String::new(),
            upstream: "u".into(),
            model: "m".into(),
            key_index: 1,
            failure: failure.map(str::to_string),
            retry: failure.is_none(),
            fallback: false,
            latency_ms,
            bytes_in: 10,
            bytes_out: 1,
            billing: if failure.is_none() {
                Billing::Billed
            } else {
                Billing::Unbilled
            },
            price: Some(Micros(134_000)),
        }
    }

    #[test]
    fn events_add_up_and_old_hours_roll_up_into_days() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::storage::db::open(&dir.path().join("t.db")).unwrap();
        let mut conn = Db::Sqlite(&conn);
        add(
            &mut conn,
            &[
                event("2020-01-01T01", None, 700),
                event("2020-01-01T01", Some("timeout"), 300_000),
            ],
        )
        .unwrap();
        add(
            &mut conn,
            &[
                event("2020-01-01T02", Some("status"), 100),
                event("2020-01-01T01", None, 700),
            ],
        )
        .unwrap();
        let rows = since(&mut conn, "2020").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].requests, rows[0].images, rows[0].retries),
            (3, 2, 2)
        );
        assert_eq!(rows[0].failures, [("timeout".to_string(), 1)].into());
        assert_eq!(rows[0].latency[1], 2);
        assert_eq!(*rows[0].latency.last().unwrap(), 1);
        assert_eq!(rows[0].bytes_in, 30);
        // 两次成功按每张 0.134 美元记；失败的两次（未计费）不花钱。
        assert_eq!(
            (rows[0].spend, rows[0].maybe_spend, rows[0].unpriced),
            (268_000, 0, 0)
        );
        assert_eq!(
            spend_since(&mut conn, "client", "工作台", "2020-01-01T00").unwrap(),
            268_000
        );
        assert_eq!(
            spend_since(&mut conn, "client", "别人", "2020-01-01T00").unwrap(),
            0
        );
        assert_eq!(
            images_since(&mut conn, "client", "工作台", "2020-01-01T02").unwrap(),
            0
        );
        assert_eq!(
            images_since(&mut conn, "client", "工作台", "2020-01-01T00").unwrap(),
            2
        );

        assert_eq!(roll_up(&mut conn, 90).unwrap(), 2);
        let rows = since(&mut conn, "2020").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].period, "2020-01-01");
        assert_eq!((rows[0].requests, rows[0].images), (4, 2));
        assert_eq!(rows[0].spend, 268_000, "按天合并不丢花费");
        assert_eq!(rows[0].failures.len(), 2);
    }
}
