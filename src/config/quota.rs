//! 每日配额的重置时刻：`HH:MM[:SS] 时区`（IANA 时区名），例如 Gemini 的 `00:00 America/Los_Angeles`。

use std::time::{Duration, SystemTime};

/// `quota_reset`（`HH:MM[:SS] 时区`）之后的下一个重置时刻；写错了（加载配置时已校验）按一天后算。
pub fn next_reset(spec: &str) -> SystemTime {
    parse_reset(spec)
        .and_then(|(time, tz)| {
            let now = jiff::Timestamp::now().to_zoned(tz);
            let today = now
                .date()
                .to_datetime(time)
                .to_zoned(now.time_zone().clone())
                .ok()?;
            let next = if today.timestamp() > now.timestamp() {
                today
            } else {
                today.checked_add(jiff::Span::new().days(1)).ok()?
            };
            Some(SystemTime::from(next.timestamp()))
        })
        .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(24 * 3600))
}

/// 解析 `HH:MM[:SS] 时区`（时区为 IANA 名，例如 `America/Los_Angeles`、`Asia/Shanghai`、`UTC`）。
pub fn parse_reset(spec: &str) -> Option<(jiff::civil::Time, jiff::tz::TimeZone)> {
    let (time, zone) = spec.trim().split_once(char::is_whitespace)?;
    let time: jiff::civil::Time = time.parse().ok()?;
    let tz = jiff::tz::TimeZone::get(zone.trim()).ok()?;
    Some((time, tz))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_reset_is_the_next_occurrence_in_that_time_zone() {
        assert!(parse_reset("00:00 America/Los_Angeles").is_some());
        assert!(parse_reset("25:00 UTC").is_none());
        assert!(parse_reset("00:00 Mars/Olympus").is_none());
        assert!(parse_reset("00:00").is_none());
        let next = next_reset("00:00 America/Los_Angeles");
        let wait = next.duration_since(SystemTime::now()).unwrap();
        assert!(
            wait <= Duration::from_secs(25 * 3600) && wait > Duration::ZERO,
            "{wait:?}"
        );
        let at = jiff::Timestamp::try_from(next)
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::get("America/Los_Angeles").unwrap());
        assert_eq!((at.hour(), at.minute()), (0, 0));
    }
}
