//! 用量页的数据：从用量表与网关此刻的状态拼出 `UsageReport`；以及同一范围的 CSV。

use super::store::{self, UsageRow};
use super::LATENCY_BUCKETS_MS;
use crate::config::Config;
use crate::storage::{Storage, StorageError};
use crate::types::money::Micros;
use crate::types::usage::{
    ClientToday, Health, SpendCell, SpendLine, SpendReport, UpstreamLive, UpstreamStats,
    UsageReport,
};
use std::collections::BTreeMap;

/// 用量页显示最近几天。
pub const DAYS: i64 = 30;

/// 直方图的 q 分位（0–1）：落在哪个桶，就取那个桶的上界（最后一桶取它的下界）。
fn percentile(buckets: &[u64], q: f64) -> Option<u64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let target = (total as f64 * q).ceil() as u64;
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= target {
            return Some(
                LATENCY_BUCKETS_MS
                    .get(i)
                    .copied()
                    .unwrap_or(*LATENCY_BUCKETS_MS.last().expect("非空")),
            );
        }
    }
    None
}

/// 用量报告要用的、此刻的东西（由调用方从共享状态里取来）：用量表在 `storage` 里。
pub struct Now<'a> {
    pub storage: &'a Storage,
    pub config: &'a Config,
    /// 各上游此刻的状态与页头的圆点（`Gateway::live`）。
    pub live: (Vec<UpstreamLive>, Health),
    /// 今天各调用方用了几张（`ClientBudgets::today`）。
    pub clients_today: std::collections::HashMap<String, u64>,
    /// 只看这个账号的（空为全部）。
    pub account: String,
}

/// 报告出错：读不了用量表，或写不出 CSV。
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("写 CSV 失败：{0}")]
    Csv(String),
}

/// 最近 `DAYS` 天的行。
async fn recent_rows(storage: &Storage) -> Result<Vec<UsageRow>, StorageError> {
    let since = (chrono::Utc::now() - chrono::Duration::days(DAYS - 1))
        .format("%Y-%m-%d")
        .to_string();
    storage.with_db(move |c| Ok(store::since(c, &since)?)).await
}

/// 拼出用量页的全部数据。
pub async fn build(inputs: Now<'_>) -> Result<UsageReport, ReportError> {
    let mut rows = recent_rows(inputs.storage).await?;
    let mut accounts: Vec<String> = rows
        .iter()
        .map(|r| r.account.clone())
        .filter(|a| !a.is_empty())
        .collect();
    accounts.sort();
    accounts.dedup();
    if !inputs.account.is_empty() {
        rows.retain(|r| r.account == inputs.account);
    }
    let now = chrono::Utc::now();
    let days: Vec<String> = (0..DAYS)
        .rev()
        .map(|d| {
            (now - chrono::Duration::days(d))
                .format("%Y-%m-%d")
                .to_string()
        })
        .collect();
    let config = inputs.config;
    let (live, health) = inputs.live;
    let upstreams = upstream_names(&live, &rows);
    let images_per_day = count_images_per_day(&rows, &upstreams, &days);
    let last_24h = stats_last_24h(&rows, &upstreams, now);
    let clients_today = top_clients_today(&rows, inputs.clients_today, config, now);
    let spend = spend_report(&rows, &days, config);
    Ok(UsageReport {
        days,
        upstreams,
        images_per_day,
        last_24h,
        clients_today,
        live,
        health,
        spend,
        accounts,
        account: inputs.account,
    })
}

/// 花费：每天、按模型、按上游与密钥、按调用方（多的在前），与总计。
fn spend_report(rows: &[UsageRow], days: &[String], config: &Config) -> SpendReport {
    let mut per_day = vec![SpendCell::default(); days.len()];
    let mut by_model: BTreeMap<String, SpendLine> = BTreeMap::new();
    let mut by_upstream_key: BTreeMap<String, SpendLine> = BTreeMap::new();
    let mut by_client: BTreeMap<String, SpendLine> = BTreeMap::new();
    let mut total = SpendCell::default();
    for r in rows {
        let (billed, maybe) = r.spend();
        let cell = SpendCell { billed, maybe };
        if let Some(d) = days.iter().position(|x| r.period.starts_with(x.as_str())) {
            per_day[d].merge(cell);
        }
        let upstream_key = if r.key_index == 0 {
            r.upstream.clone()
        } else {
            format!("{} · 密钥 #{}", r.upstream, r.key_index)
        };
        for (table, name) in [
            (&mut by_model, &r.model),
            (&mut by_upstream_key, &upstream_key),
            (&mut by_client, &r.client),
        ] {
            let line = table.entry(name.clone()).or_insert_with(|| SpendLine {
                name: name.clone(),
                ..Default::default()
            });
            line.images += r.images;
            line.spend.merge(cell);
        }
        total.merge(cell);
    }
    let sorted = |table: BTreeMap<String, SpendLine>| {
        let mut lines: Vec<SpendLine> = table.into_values().collect();
        lines.sort_by_key(|l| std::cmp::Reverse(l.spend.billed.usd.plus(l.spend.maybe.usd)));
        lines
    };
    SpendReport {
        pricing: config.usage.pricing(),
        per_day,
        by_model: sorted(by_model),
        by_upstream_key: sorted(by_upstream_key),
        by_client: sorted(by_client),
        total,
    }
}

/// 报告里上游的顺序：配置里的（此刻的状态里有的）在前，之后是只在历史里出现的。
fn upstream_names(live: &[UpstreamLive], rows: &[UsageRow]) -> Vec<String> {
    let mut upstreams: Vec<String> = live.iter().map(|u| u.name.clone()).collect();
    for r in rows {
        if !upstreams.contains(&r.upstream) {
            upstreams.push(r.upstream.clone());
        }
    }
    upstreams
}

/// 每天每个上游的张数：外层按 `upstreams` 的顺序，内层按 `days` 的顺序。
fn count_images_per_day(rows: &[UsageRow], upstreams: &[String], days: &[String]) -> Vec<Vec<u64>> {
    let mut images_per_day = vec![vec![0u64; days.len()]; upstreams.len()];
    for r in rows {
        let (Some(u), Some(d)) = (
            upstreams.iter().position(|x| *x == r.upstream),
            days.iter().position(|x| r.period.starts_with(x.as_str())),
        ) else {
            continue;
        };
        images_per_day[u][d] += r.images;
    }
    images_per_day
}

/// 最近 24 小时各上游：按小时的行加起来，算出成功率与耗时的中位数、95 分位；
/// 按 `upstreams` 的顺序，只列有请求的。
fn stats_last_24h(
    rows: &[UsageRow],
    upstreams: &[String],
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<UpstreamStats> {
    let since_hour = (now - chrono::Duration::hours(23))
        .format("%Y-%m-%dT%H")
        .to_string();
    let mut stats: BTreeMap<String, (UpstreamStats, Vec<u64>)> = BTreeMap::new();
    for r in rows
        .iter()
        .filter(|r| r.period.len() == 13 && r.period >= since_hour)
    {
        let (s, buckets) = stats.entry(r.upstream.clone()).or_insert_with(|| {
            (
                UpstreamStats {
                    name: r.upstream.clone(),
                    ..Default::default()
                },
                vec![0; LATENCY_BUCKETS_MS.len() + 1],
            )
        });
        s.requests += r.requests;
        s.images += r.images;
        s.retries += r.retries;
        s.fallbacks += r.fallbacks;
        for (class, n) in &r.failures {
            *s.failures.entry(class.clone()).or_default() += n;
        }
        for (i, n) in r.latency.iter().enumerate().take(buckets.len()) {
            buckets[i] += n;
        }
    }
    let mut last_24h: Vec<UpstreamStats> = upstreams
        .iter()
        .filter_map(|name| stats.remove(name))
        .map(|(mut s, buckets)| {
            s.success_rate = (s.requests > 0).then(|| s.images as f64 / s.requests as f64);
            s.p50_ms = percentile(&buckets, 0.5);
            s.p95_ms = percentile(&buckets, 0.95);
            s
        })
        .collect();
    last_24h.retain(|s| s.requests > 0);
    last_24h
}

/// 今天各调用方用了几张（前 10 名，多的在前），附上各自的每日额度。
/// 用量表里的（已结束的）与额度计数 `counted` 里的（含正在生成的）取大。
fn top_clients_today(
    rows: &[UsageRow],
    counted: std::collections::HashMap<String, u64>,
    config: &Config,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<ClientToday> {
    let today = now.format("%Y-%m-%d").to_string();
    let mut clients: BTreeMap<String, u64> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.period.starts_with(&today)) {
        *clients.entry(r.client.clone()).or_default() += r.images;
    }
    for (client, n) in counted {
        let e = clients.entry(client).or_default();
        *e = (*e).max(n);
    }
    let budget_of = |client: &str| -> u32 {
        if client == crate::types::usage::STUDIO_CLIENT {
            return config.limits.studio_images_per_day;
        }
        config
            .auth
            .keys
            .iter()
            .find(|k| k.label == client)
            .map_or(0, |k| k.images_per_day)
    };
    let mut clients_today: Vec<ClientToday> = clients
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(client, images)| ClientToday {
            budget: budget_of(&client),
            client,
            images,
        })
        .collect();
    clients_today.sort_by_key(|c| std::cmp::Reverse(c.images));
    clients_today.truncate(10);
    clients_today
}

/// 最近 `DAYS` 天的原始行，CSV（UTF-8 带 BOM、CRLF，Excel 直接打开）。
pub async fn csv(storage: &Storage, config: &Config) -> Result<String, ReportError> {
    let rows = recent_rows(storage).await?;
    let pricing = config.usage.pricing();
    let code = pricing.currency.code();
    let money = |usd: i64| pricing.to_display(Micros(usd)).decimal();
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let header = [
        "时段(UTC)",
        "调用方",
        "上游",
        "模型",
        "密钥序号",
        "尝试次数",
        "张数",
        "失败次数",
        "失败分类",
        "重试",
        "回退",
        "中位耗时(ms)",
        "95分位耗时(ms)",
        "收到字节",
        "发出字节",
        &format!("已计费花费({code})"),
        "已计费价格未知次数",
        "可能已计费次数",
        &format!("可能已计费花费({code})"),
        "可能已计费价格未知次数",
        "账号",
    ];
    let internal = |e: csv::Error| ReportError::Csv(e.to_string());
    out.write_record(header).map_err(internal)?;
    for r in rows {
        let failures: u64 = r.failures.values().sum();
        let classes = r
            .failures
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        out.write_record([
            r.period,
            r.client,
            r.upstream,
            r.model,
            r.key_index.to_string(),
            r.requests.to_string(),
            r.images.to_string(),
            failures.to_string(),
            classes,
            r.retries.to_string(),
            r.fallbacks.to_string(),
            percentile(&r.latency, 0.5)
                .map(|v| v.to_string())
                .unwrap_or_default(),
            percentile(&r.latency, 0.95)
                .map(|v| v.to_string())
                .unwrap_or_default(),
            r.bytes_in.to_string(),
            r.bytes_out.to_string(),
            money(r.spend),
            r.unpriced.to_string(),
            r.maybe_billed.to_string(),
            money(r.maybe_spend),
            r.maybe_unpriced.to_string(),
            r.account,
        ])
        .map_err(internal)?;
    }
    let bytes = out
        .into_inner()
        .map_err(|e| ReportError::Csv(e.to_string()))?;
    Ok(format!("\u{feff}{}", String::from_utf8_lossy(&bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_bucket_bounds() {
        let mut b = vec![0; LATENCY_BUCKETS_MS.len() + 1];
        assert_eq!(percentile(&b, 0.5), None);
        b[0] = 5; // ≤ 0.5 秒
        b[3] = 4; // ≤ 5 秒
        b[9] = 1; // 更久
        assert_eq!(percentile(&b, 0.5), Some(500));
        assert_eq!(percentile(&b, 0.9), Some(5000));
        assert_eq!(percentile(&b, 0.95), Some(120_000));
    }
}
