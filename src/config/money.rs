//! 钱的配置项的校验：汇率（`usage.cny_per_usd`）与各花费上限（工作台、`/v1` 密钥、上游密钥）。
//! 金额在程序里是百万分之一的整数（`crate::types::money`），这里挡住取整后会变成 0 的数。

use super::{Config, ConfigError};

fn invalid(key: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

/// 汇率与各花费上限：汇率在 0.01–1000 之间；上限是 0（不限）或 0.01–10 亿。
/// 更小的数按百万分之一取整后可能成了 0：汇率 0 会让金额都显示为 0，上限 0 会变成不限——所以拒绝，而不是悄悄放开。
pub(super) fn validate(config: &Config) -> Result<(), ConfigError> {
    let rate = config.usage.cny_per_usd;
    if !(rate.is_finite() && (0.01..=1000.0).contains(&rate)) {
        return Err(invalid(
            "usage.cny_per_usd",
            "要在 0.01 到 1000 之间（1 美元折合多少人民币）",
        ));
    }
    let l = &config.limits;
    let mut amounts = vec![
        (
            "limits.studio_max_spend_per_day".to_string(),
            l.studio_max_spend_per_day,
        ),
        (
            "limits.studio_max_spend_per_month".to_string(),
            l.studio_max_spend_per_month,
        ),
    ];
    for (i, u) in config.upstreams.iter().enumerate() {
        amounts.push((
            format!("upstreams[{i}].key_max_spend_per_month"),
            u.key_max_spend_per_month,
        ));
    }
    for (i, k) in config.auth.keys.iter().enumerate() {
        amounts.push((
            format!("auth.keys[{i}].max_spend_per_day"),
            k.max_spend_per_day,
        ));
        amounts.push((
            format!("auth.keys[{i}].max_spend_per_month"),
            k.max_spend_per_month,
        ));
    }
    for (key, amount) in amounts {
        if !(amount.is_finite() && (amount == 0.0 || (0.01..=1e9).contains(&amount))) {
            return Err(invalid(&key, "要是 0（不限）或 0.01 到 10 亿之间的金额"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::load::parse;

    #[test]
    fn money_amounts_that_would_round_to_nothing_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (text, key) in [
            ("[usage]\ncny_per_usd = 0.0000001", "usage.cny_per_usd"),
            ("[usage]\ncny_per_usd = 0.0", "usage.cny_per_usd"),
            (
                "[limits]\nstudio_max_spend_per_day = 0.0000001",
                "limits.studio_max_spend_per_day",
            ),
            (
                "[limits]\nstudio_max_spend_per_month = -1.0",
                "limits.studio_max_spend_per_month",
            ),
            (
                "[limits]\nstudio_max_spend_per_day = nan",
                "limits.studio_max_spend_per_day",
            ),
        ] {
            let err = parse(text, dir.path()).unwrap_err().to_string();
            assert!(err.contains(key), "{text} → {err}");
        }
        let ok = parse(
            "[limits]\nstudio_max_spend_per_day = 0.5\n[usage]\ncurrency = \"CNY\"",
            dir.path(),
        )
        .unwrap();
        assert_eq!(
            ok.usage.to_usd(ok.limits.studio_max_spend_per_day).0,
            69_444
        );
    }
}
