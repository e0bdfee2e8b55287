//! 账号表与操作记录表的读写（#38）。谁能做什么不在这里（在 `crate::access::accounts`）。

use super::sql::{params, Db, DbError, Row};
use crate::types::account::{AccountLimits, AccountRole, AuditEntry};

/// 库里的一个账号（含密码哈希，只在服务端用）。
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRow {
    pub name: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: AccountRole,
    pub disabled: bool,
    /// 改密码、停用时加一：会话记着建立时的值，对不上的作废。
    pub epoch: i64,
    pub limits: AccountLimits,
    pub created_at: String,
    pub last_seen_at: Option<String>,
}

fn row_of(r: &Row) -> Result<AccountRow, DbError> {
    let limits: String = r.get("limits")?;
    Ok(AccountRow {
        name: r.get("name")?,
        display_name: r.get("display_name")?,
        password_hash: r.get("password_hash")?,
        role: AccountRole::parse(&r.get::<String>("role")?),
        disabled: r.get::<i64>("disabled")? != 0,
        epoch: r.get("epoch")?,
        limits: serde_json::from_str(&limits).unwrap_or_default(),
        created_at: r.get("created_at")?,
        last_seen_at: r.get("last_seen_at")?,
    })
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// 全部账号（按名字）。
pub fn all(conn: &mut Db<'_>) -> Result<Vec<AccountRow>, DbError> {
    conn.query("SELECT * FROM accounts ORDER BY name", params![], row_of)
}

pub fn get(conn: &mut Db<'_>, name: &str) -> Result<Option<AccountRow>, DbError> {
    conn.query_opt(
        "SELECT * FROM accounts WHERE name = ?1",
        params![name],
        row_of,
    )
}

/// 新建账号；同名的已经有了时返回 `Ok(false)`。
pub fn insert(
    conn: &mut Db<'_>,
    name: &str,
    display_name: &str,
    password_hash: &str,
    role: AccountRole,
    limits: &AccountLimits,
) -> Result<bool, DbError> {
    let limits = serde_json::to_string(limits).unwrap_or_else(|_| "{}".into());
    let inserted = conn.execute(
        "INSERT INTO accounts (name, display_name, password_hash, role, limits, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name) DO NOTHING",
        params![
            name,
            display_name,
            password_hash,
            role.as_str(),
            limits,
            now()
        ],
    )?;
    Ok(inserted == 1)
}

/// 写回一个账号的可改项（`epoch` 由调用方决定加不加）；没有这个账号时返回 `Ok(false)`。
pub fn update(conn: &mut Db<'_>, a: &AccountRow) -> Result<bool, DbError> {
    let limits = serde_json::to_string(&a.limits).unwrap_or_else(|_| "{}".into());
    let changed = conn.execute(
        "UPDATE accounts SET display_name = ?2, password_hash = ?3, role = ?4, disabled = ?5, epoch = ?6,
             limits = ?7 WHERE name = ?1",
        params![
            a.name,
            a.display_name,
            a.password_hash,
            a.role.as_str(),
            a.disabled,
            a.epoch,
            limits
        ],
    )?;
    Ok(changed == 1)
}

/// 记下这些账号刚刚来过。
pub fn touch(conn: &mut Db<'_>, names: &[String]) -> Result<(), DbError> {
    let at = now();
    for name in names {
        conn.execute(
            "UPDATE accounts SET last_seen_at = ?2 WHERE name = ?1",
            params![name, at],
        )?;
    }
    Ok(())
}

/// 追加一条操作记录（只追加，从不改、不删）。
pub fn record(conn: &mut Db<'_>, actor: &str, action: &str, detail: &str) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO audit_log (id, at, actor, action, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            uuid::Uuid::now_v7().simple().to_string(),
            now(),
            actor,
            action,
            detail
        ],
    )?;
    Ok(())
}

/// 最近的 `limit` 条操作记录（新的在前）。
pub fn recent(conn: &mut Db<'_>, limit: u32) -> Result<Vec<AuditEntry>, DbError> {
    conn.query(
        "SELECT at, actor, action, detail FROM audit_log ORDER BY id DESC LIMIT ?1",
        params![limit],
        |r| {
            Ok(AuditEntry {
                at: r.get("at")?,
                actor: r.get("actor")?,
                action: r.get("action")?,
                detail: r.get("detail")?,
            })
        },
    )
}
