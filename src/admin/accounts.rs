//! 设置页的“账号”一节（#38）：列出账号（最近来过、本月用量）、新建、停用/启用、重设密码、改角色与额度，
//! 以及只追加的操作记录。命令行的 `drafting-factory user …` 也经这里（见 `crate::cli`）。
//!
//! 改了账号之后立即重读账号快照（`Directory::reload`）：停用与改密码在本实例的下一个请求就生效，
//! 别的实例与命令行改的 2 秒内生效（见 `crate::access::accounts`）。

use crate::access::accounts::Viewer;
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::accounts::{self as rows, AccountRow};
use crate::storage::sql::Db;
use crate::storage::{Storage, StorageError};
use crate::types::account::{
    check_display_name, check_limits, check_name, check_password, AccountChange, AccountRole,
    AccountView, AccountsView, NewAccount,
};

/// 设置页显示最近几条操作记录。
const AUDIT_SHOWN: u32 = 200;

/// 谁做的（记进操作记录）：账号名，或没有账号的管理员会话。
pub fn actor(viewer: &Viewer) -> String {
    viewer
        .0
        .as_ref()
        .map(|p| p.name.clone())
        .unwrap_or_else(|| "管理员（管理员密码或登录链接）".into())
}

/// 追加一条操作记录；写不进去时记日志（不让操作本身失败：它已经做完了）。
pub async fn record(state: &AppState, viewer: &Viewer, action: &str, detail: &str) {
    record_as(&state.storage, &actor(viewer), action, detail).await;
}

/// 同上，操作者由调用方给（命令行）。
pub async fn record_as(storage: &Storage, actor: &str, action: &str, detail: &str) {
    let (actor, action, detail) = (actor.to_string(), action.to_string(), detail.to_string());
    let written = storage
        .with_db(move |c| Ok(rows::record(c, &actor, &action, &detail)?))
        .await;
    if let Err(e) = written {
        tracing::error!("操作记录写不进去：{e}");
    }
}

/// 设置页“账号”一节的数据。
pub async fn view(state: &AppState) -> Result<AccountsView, ApiError> {
    let (accounts, audit) = state
        .storage
        .with_db(|c| Ok((rows::all(c)?, rows::recent(c, AUDIT_SHOWN)?)))
        .await?;
    let month = chrono::Utc::now().format("%Y-%m-01").to_string();
    let used = crate::usage::by_account_since(&state.storage, month).await?;
    let config = state.config.load();
    let pricing = config.usage.pricing();
    let accounts = accounts
        .into_iter()
        .map(|a| {
            let (images, usd) = used
                .iter()
                .find(|(name, _, _)| *name == a.name)
                .map(|(_, images, usd)| (*images, *usd))
                .unwrap_or_default();
            AccountView {
                month_images: images,
                month_spend: pricing.show(crate::types::money::Micros(usd)),
                name: a.name,
                display_name: a.display_name,
                role: a.role,
                disabled: a.disabled,
                created_at: a.created_at,
                last_seen_at: a.last_seen_at,
                limits: a.limits,
            }
        })
        .collect();
    Ok(AccountsView {
        accounts,
        audit,
        currency: config.usage.currency.code().to_string(),
    })
}

/// 校验并算好新账号的行（密码的 argon2 在阻塞线程里，全服务器同时最多 2 个）。
pub async fn prepare(new: NewAccount) -> Result<AccountRow, ApiError> {
    let (mut row, password) = checked(new)?;
    row.password_hash = hash(password).await?;
    Ok(row)
}

/// 同上，在当前线程里算哈希（命令行用：它本来就在阻塞线程里，一次只建一个）。
pub fn prepare_blocking(new: NewAccount) -> Result<AccountRow, ApiError> {
    let (mut row, password) = checked(new)?;
    row.password_hash =
        crate::access::login::hash_password(&password).map_err(ApiError::Internal)?;
    Ok(row)
}

/// 校验新账号，返回还没有密码哈希的行与密码。
fn checked(new: NewAccount) -> Result<(AccountRow, String), ApiError> {
    let name = new.name.trim().to_string();
    check_name(&name).map_err(ApiError::InvalidRequest)?;
    let display = new.display_name.trim().to_string();
    check_display_name(&display).map_err(ApiError::InvalidRequest)?;
    check_password(&new.password).map_err(ApiError::InvalidRequest)?;
    check_limits(&new.limits).map_err(ApiError::InvalidRequest)?;
    let row = AccountRow {
        display_name: if display.is_empty() {
            name.clone()
        } else {
            display
        },
        name,
        password_hash: String::new(),
        role: new.role,
        disabled: false,
        epoch: 0,
        limits: new.limits,
        created_at: String::new(),
        last_seen_at: None,
    };
    Ok((row, new.password))
}

async fn hash(password: String) -> Result<String, ApiError> {
    crate::access::login::argon2_limited(move || crate::access::login::hash_password(&password))
        .await?
        .map_err(ApiError::Internal)
}

/// 写进新账号；同名的已有时返回 `Ok(false)`。
pub fn insert(conn: &mut Db<'_>, a: &AccountRow) -> Result<bool, StorageError> {
    Ok(rows::insert(
        conn,
        &a.name,
        &a.display_name,
        &a.password_hash,
        a.role,
        &a.limits,
    )?)
}

/// 同名的账号已经有了。
pub fn taken(name: &str) -> ApiError {
    ApiError::Clash(format!("已经有叫“{name}”的账号了"))
}

/// 新建账号（设置页）。
pub async fn create(
    state: &AppState,
    viewer: &Viewer,
    new: NewAccount,
) -> Result<AccountsView, ApiError> {
    let row = prepare(new).await?;
    let written = row.clone();
    if !state.storage.with_db(move |c| insert(c, &written)).await? {
        return Err(taken(&row.name));
    }
    state.accounts.reload(&state.storage).await;
    let detail = format!("“{}”（{}）", row.name, row.role.label());
    record(state, viewer, "新建账号", &detail).await;
    view(state).await
}

/// 改一个账号（设置页）：停用/启用、重设密码、改角色、改显示名与额度。停用与重设密码让它的会话立即作废。
pub async fn change(
    state: &AppState,
    viewer: &Viewer,
    change: AccountChange,
) -> Result<AccountsView, ApiError> {
    let name = change.name.trim().to_string();
    let current = state
        .storage
        .with_db({
            let name = name.clone();
            move |c| Ok(rows::get(c, &name)?)
        })
        .await?
        .ok_or(ApiError::NotFound)?;
    let new_hash = match change.password.clone() {
        Some(password) => {
            check_password(&password).map_err(ApiError::InvalidRequest)?;
            Some(hash(password).await?)
        }
        None => None,
    };
    let (next, what) = apply(current, &change, new_hash)?;
    if what.is_empty() {
        return view(state).await;
    }
    let all = state.storage.with_db(|c| Ok(rows::all(c)?)).await?;
    keeps_an_admin(&all, &next)?;
    let written = next.clone();
    let found = state
        .storage
        .with_db(move |c| Ok(rows::update(c, &written)?))
        .await?;
    if !found {
        return Err(ApiError::NotFound);
    }
    state.accounts.reload(&state.storage).await;
    record(
        state,
        viewer,
        "修改账号",
        &format!("“{name}”：{}", what.join("，")),
    )
    .await;
    view(state).await
}

/// 把改动用到账号上，返回新的样子与改了什么（给操作记录）。停用与改密码让 `epoch` 加一（旧会话作废）。
pub fn apply(
    mut a: AccountRow,
    change: &AccountChange,
    new_hash: Option<String>,
) -> Result<(AccountRow, Vec<String>), ApiError> {
    let mut what = Vec::new();
    if let Some(display) = &change.display_name {
        let display = display.trim();
        check_display_name(display).map_err(ApiError::InvalidRequest)?;
        let display = if display.is_empty() { &a.name } else { display }.to_string();
        if display != a.display_name {
            what.push(format!("显示名改为“{display}”"));
            a.display_name = display;
        }
    }
    if let Some(role) = change.role.filter(|r| *r != a.role) {
        what.push(format!("角色改为{}", role.label()));
        a.role = role;
    }
    if let Some(disabled) = change.disabled.filter(|d| *d != a.disabled) {
        what.push(if disabled { "停用" } else { "启用" }.to_string());
        a.disabled = disabled;
        a.epoch += 1;
    }
    if let Some(hash) = new_hash {
        what.push("重设了密码".into());
        a.password_hash = hash;
        a.epoch += 1;
    }
    if let Some(limits) = change.limits.filter(|l| *l != a.limits) {
        check_limits(&limits).map_err(ApiError::InvalidRequest)?;
        what.push("改了额度".into());
        a.limits = limits;
    }
    Ok((a, what))
}

/// 改动之后还要至少有一个能用的管理员账号（否则没人能管账号了）。
pub fn keeps_an_admin(all: &[AccountRow], next: &AccountRow) -> Result<(), ApiError> {
    let was_admin = all
        .iter()
        .any(|a| a.name == next.name && a.role == AccountRole::Admin && !a.disabled);
    let still_admin = next.role == AccountRole::Admin && !next.disabled;
    let others = all
        .iter()
        .filter(|a| a.name != next.name && a.role == AccountRole::Admin && !a.disabled)
        .count();
    if was_admin && !still_admin && others == 0 {
        return Err(ApiError::Clash(format!(
            "“{}”是最后一个能用的管理员账号：先把别的账号设为管理员，再停用它或把它改成成员",
            next.name
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, role: AccountRole) -> AccountRow {
        AccountRow {
            name: name.into(),
            display_name: name.into(),
            password_hash: "h".into(),
            role,
            disabled: false,
            epoch: 3,
            limits: Default::default(),
            created_at: String::new(),
            last_seen_at: None,
        }
    }

    #[test]
    fn disabling_and_new_passwords_end_sessions_other_changes_do_not() {
        let a = row("alice", AccountRole::Member);
        let (same, what) = apply(
            a.clone(),
            &AccountChange {
                role: Some(AccountRole::Admin),
                ..Default::default()
            },
            None,
        )
        .unwrap();
        assert_eq!((same.epoch, what.len()), (3, 1));
        let (off, _) = apply(
            a.clone(),
            &AccountChange {
                disabled: Some(true),
                ..Default::default()
            },
            None,
        )
        .unwrap();
        assert_eq!(off.epoch, 4);
        let (new_pw, _) = apply(a, &AccountChange::default(), Some("h2".into())).unwrap();
        assert_eq!((new_pw.epoch, new_pw.password_hash.as_str()), (4, "h2"));
    }

    #[test]
    fn the_last_admin_cannot_be_disabled_or_demoted() {
        let root = row("root", AccountRole::Admin);
        let all = vec![root.clone(), row("alice", AccountRole::Member)];
        let mut off = root.clone();
        off.disabled = true;
        assert!(keeps_an_admin(&all, &off).is_err());
        let mut demoted = root;
        demoted.role = AccountRole::Member;
        assert!(keeps_an_admin(&all, &demoted).is_err());
        let mut two = all.clone();
        two.push(row("bob", AccountRole::Admin));
        assert!(keeps_an_admin(&two, &off).is_ok());
    }
}
