//! 设置表（`crate::types::settings::NUMBER_SETTINGS` 与 `FLAG_SETTINGS`）与配置结构之间的映射：
//! 按键（`节.名字`）读写配置里的值，并按表里的范围校验。表是这些数字唯一的清单，这里不再逐项列出。

use super::error::ConfigError;
use super::Config;
use crate::types::settings::{Flags, Numbers, FLAG_SETTINGS, NUMBER_SETTINGS};

/// 配置转成 TOML 值（按键取值、改值用）。
fn to_value(config: &Config) -> toml::Table {
    toml::Table::try_from(config).expect("配置总能表示成 TOML")
}

fn get<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let (section, name) = key.split_once('.')?;
    table.get(section)?.get(name)
}

fn set(table: &mut toml::Table, key: &str, value: toml::Value) {
    let (section, name) = key.split_once('.').expect("设置键形如 节.名字");
    if let Some(toml::Value::Table(t)) = table.get_mut(section) {
        t.insert(name.to_string(), value);
    }
}

/// 配置里各数字设置的当前值。
pub fn numbers_of(config: &Config) -> Numbers {
    let table = to_value(config);
    NUMBER_SETTINGS
        .iter()
        .filter_map(|s| {
            let v = get(&table, s.key)?.as_integer()?;
            Some((s.key.to_string(), u64::try_from(v).ok()?))
        })
        .collect()
}

/// 配置里各开关设置的当前值。
pub fn flags_of(config: &Config) -> Flags {
    let table = to_value(config);
    FLAG_SETTINGS
        .iter()
        .filter_map(|s| Some((s.key.to_string(), get(&table, s.key)?.as_bool()?)))
        .collect()
}

/// 把设置页提交的数字与开关写进配置（表里没有的键被拒绝，缺的键保持原值）。范围由 `check_ranges` 校验。
pub fn with_settings(
    config: &Config,
    numbers: &Numbers,
    flags: &Flags,
) -> Result<Config, ConfigError> {
    let mut table = to_value(config);
    for (key, value) in numbers {
        if !NUMBER_SETTINGS.iter().any(|s| s.key == key) {
            return Err(ConfigError::UnknownKey { key: key.clone() });
        }
        let value = i64::try_from(*value).map_err(|_| ConfigError::Invalid {
            key: key.clone(),
            reason: format!("{value} 太大了"),
        })?;
        set(&mut table, key, toml::Value::Integer(value));
    }
    for (key, value) in flags {
        if !FLAG_SETTINGS.iter().any(|s| s.key == key) {
            return Err(ConfigError::UnknownKey { key: key.clone() });
        }
        set(&mut table, key, toml::Value::Boolean(*value));
    }
    Config::deserialize_table(table)
}

/// 按表里的范围校验每个数字设置。
pub fn check_ranges(config: &Config) -> Result<(), ConfigError> {
    let numbers = numbers_of(config);
    for s in NUMBER_SETTINGS {
        let value = numbers.get(s.key).copied().unwrap_or_default();
        if value < s.min || value > s.max {
            return Err(ConfigError::Invalid {
                key: s.key.to_string(),
                reason: format!("{value} 超出允许的范围 {}–{}", s.min, s.max),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_matches_the_config_defaults() {
        let defaults = Config::default();
        let numbers = numbers_of(&defaults);
        for s in NUMBER_SETTINGS {
            assert_eq!(
                numbers.get(s.key),
                Some(&s.default),
                "{} 的默认值与表不一致",
                s.key
            );
        }
        let flags = flags_of(&defaults);
        for s in FLAG_SETTINGS {
            assert_eq!(
                flags.get(s.key),
                Some(&s.default),
                "{} 的默认值与表不一致",
                s.key
            );
        }
        assert!(check_ranges(&defaults).is_ok());
    }

    #[test]
    fn settings_round_trip_and_unknown_keys_are_refused() {
        let mut numbers = Numbers::new();
        numbers.insert("limits.burst".into(), 7);
        let mut flags = Flags::new();
        flags.insert("retry.retry_maybe_billed".into(), false);
        let next = with_settings(&Config::default(), &numbers, &flags).unwrap();
        assert_eq!(next.limits.burst, 7);
        assert!(!next.retry.retry_maybe_billed);
        assert_eq!(next.limits.requests_per_minute, 60, "没提交的键保持原值");
        numbers.insert("limits.nope".into(), 1);
        let err = with_settings(&Config::default(), &numbers, &flags).unwrap_err();
        assert!(err.to_string().contains("limits.nope"), "{err}");
        numbers.remove("limits.nope");
        numbers.insert("limits.burst".into(), 0);
        let zero = with_settings(&Config::default(), &numbers, &flags).unwrap();
        assert!(check_ranges(&zero)
            .unwrap_err()
            .to_string()
            .contains("limits.burst"));
    }
}
