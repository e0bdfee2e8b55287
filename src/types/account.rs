//! 团队账号（#38）：页面与服务器共用的类型（账号、额度、操作记录）与账号名的校验。
//! 谁能做什么在 `crate::access::accounts`；账号的表在 `crate::storage::accounts`。

use serde::{Deserialize, Serialize};

/// 账号的角色。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountRole {
    /// 管理员：能打开设置页、管理账号、删别人的图。
    Admin,
    /// 成员：用工作台、看图库、建自己的 `/v1` 密钥。
    #[default]
    Member,
}

impl AccountRole {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountRole::Admin => "admin",
            AccountRole::Member => "member",
        }
    }

    /// 库里的写法；认不出的按成员（权限小的一方）。
    pub fn parse(text: &str) -> Self {
        if text == "admin" {
            AccountRole::Admin
        } else {
            AccountRole::Member
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            AccountRole::Admin => "管理员",
            AccountRole::Member => "成员",
        }
    }
}

/// 一个账号的额度（0 为不限）：每分钟与每天的张数、同时进行的请求数、每天与每月的花费（显示币种）。
/// 工作台与这个账号的 `/v1` 密钥合起来算。
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountLimits {
    pub images_per_minute: u32,
    pub images_per_day: u32,
    pub max_concurrent: u32,
    pub max_spend_per_day: f64,
    pub max_spend_per_month: f64,
}

/// 设置页“账号”一节的一行。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountView {
    pub name: String,
    pub display_name: String,
    pub role: AccountRole,
    pub disabled: bool,
    pub created_at: String,
    pub last_seen_at: Option<String>,
    pub limits: AccountLimits,
    /// 本月（UTC）生成的张数与花费（已按显示币种写好）。
    pub month_images: u64,
    pub month_spend: String,
}

/// 一条操作记录（只追加）。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: String,
    /// 谁做的：账号名、“管理员密码”、“登录链接”或“命令行”。
    pub actor: String,
    pub action: String,
    pub detail: String,
}

/// 设置页“账号”一节的全部数据。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountsView {
    pub accounts: Vec<AccountView>,
    /// 最近的操作记录（新的在前）。
    pub audit: Vec<AuditEntry>,
    /// 额度里的花费用哪种币种（“美元”“人民币”）。
    pub currency: String,
}

/// 新建账号。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAccount {
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    pub password: String,
    #[serde(default)]
    pub role: AccountRole,
    #[serde(default)]
    pub limits: AccountLimits,
}

/// 改一个账号：给了的项才改。
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountChange {
    pub name: String,
    pub display_name: Option<String>,
    pub role: Option<AccountRole>,
    pub disabled: Option<bool>,
    /// 新密码（重设密码）：这个账号的会话全部作废。
    pub password: Option<String>,
    pub limits: Option<AccountLimits>,
}

/// 当前登录的人（页头与图库的“我的”用）。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub name: String,
    pub display_name: String,
    pub admin: bool,
}

/// 账号名：1–32 个字母、数字、`_`、`-`、`.`（可以是中文字）。
pub fn check_name(name: &str) -> Result<(), String> {
    let count = name.chars().count();
    if count == 0 || count > 32 {
        return Err("账号名要 1–32 个字符".into());
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(format!(
            "账号名“{name}”只能用字母、数字（可以是中文）与 _ - .，不能有空格或其他符号"
        ));
    }
    Ok(())
}

/// 显示名：不超过 40 个字符，不含控制字符；空的用账号名。
pub fn check_display_name(display: &str) -> Result<(), String> {
    if display.chars().count() > 40 || display.chars().any(char::is_control) {
        return Err("显示名最多 40 个字符，不能有换行等控制字符".into());
    }
    Ok(())
}

/// 密码：8–256 个字符。
pub fn check_password(password: &str) -> Result<(), String> {
    let count = password.chars().count();
    if !(8..=256).contains(&count) {
        return Err("密码要 8–256 个字符".into());
    }
    Ok(())
}

/// 额度：张数与同时数不超过 100 万，花费是 0 或 0.01–10 亿（与密钥的花费上限同一规则）。
pub fn check_limits(limits: &AccountLimits) -> Result<(), String> {
    for (value, what) in [
        (limits.images_per_minute, "每分钟张数"),
        (limits.images_per_day, "每天张数"),
        (limits.max_concurrent, "同时请求数"),
    ] {
        if value > 1_000_000 {
            return Err(format!("{what}最多 1000000（0 为不限）"));
        }
    }
    for (value, what) in [
        (limits.max_spend_per_day, "每天花费上限"),
        (limits.max_spend_per_month, "每月花费上限"),
    ] {
        if !value.is_finite() || value < 0.0 || (value > 0.0 && value < 0.01) || value > 1e9 {
            return Err(format!("{what}要是 0（不限）或 0.01–1000000000"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_words() {
        for ok in ["alice", "张三", "li.si", "dev-01", "a_b"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "a/b", "<x>", &"a".repeat(33), "a\n"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits_follow_the_key_rules() {
        assert!(check_limits(&AccountLimits::default()).is_ok());
        let tiny = AccountLimits {
            max_spend_per_day: 0.001,
            ..Default::default()
        };
        assert!(check_limits(&tiny).is_err());
        let nan = AccountLimits {
            max_spend_per_month: f64::NAN,
            ..Default::default()
        };
        assert!(check_limits(&nan).is_err());
    }
}
