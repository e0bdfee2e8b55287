//! 设置页的“账号”一节（#38）：账号列表（角色、状态、最近来过、本月用量）、新建、停用/启用、重设密码、
//! 改角色与额度；下面是只追加的操作记录。数据经 `/api/admin/get_accounts` 等（见 `super`）。

use super::{create_account, get_accounts, update_account, Page};
use crate::types::account::{
    AccountChange, AccountLimits, AccountRole, AccountView, AccountsView, NewAccount,
};
use crate::types::AppError;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// 这一节的数据与动作。
#[derive(Clone, Copy)]
struct Section {
    page: Page,
    data: RwSignal<Option<AccountsView>>,
}

impl Section {
    fn load(self) {
        spawn_local(async move {
            match get_accounts().await {
                Ok(v) => self.data.set(Some(v)),
                Err(e) => self.page.failed(e),
            }
        });
    }

    /// 服务器回来的新列表换上，成功时页顶说一句。
    fn done(self, result: Result<AccountsView, AppError>, ok: String) {
        match result {
            Ok(v) => {
                self.data.set(Some(v));
                self.page.message.set(Some((true, ok)));
            }
            Err(e) => self.page.failed(e),
        }
    }

    fn create(self, new: NewAccount) {
        let ok = format!("已新建账号“{}”", new.name.trim());
        spawn_local(async move { self.done(create_account(new).await, ok) });
    }

    fn change(self, change: AccountChange, ok: String) {
        spawn_local(async move { self.done(update_account(change).await, ok) });
    }
}

#[component]
pub fn Accounts(page: Page) -> impl IntoView {
    let section = Section {
        page,
        data: RwSignal::new(None),
    };
    Effect::new(move |_| section.load());
    view! {
        <h2>"账号"</h2>
        <p class="hint">"每人用自己的账号登录：工作台只显示自己的批次，图库可选“我的 / 全部”，删别人的图要管理员。有账号后，共用的工作台密码照样能用——全员都有账号后，在上面清除工作台密码。命令行：drafting-factory user add --admin 名字。"</p>
        <AccountTable section/>
        <CreateAccount section/>
        <AuditLog section/>
    }
}

/// 账号列表。
#[component]
fn AccountTable(section: Section) -> impl IntoView {
    let rows = move || {
        section
            .data
            .with(|d| d.as_ref().map(|d| d.accounts.clone()).unwrap_or_default())
    };
    view! {
        <div class="table-scroll" role="region" aria-label="账号列表" tabindex="0"
            hidden=move || rows().is_empty()>
            <table class="accounts">
                <thead><tr><th>"账号"</th><th>"角色"</th><th>"状态"</th><th>"最近来过"</th><th>"本月"</th><th>"额度"</th><th><span class="sr-only">"操作"</span></th></tr></thead>
                <tbody>
                    {move || rows().into_iter().map(|a| view! { <AccountRow section a/> }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

/// 额度的一句话说明。
fn limits_text(l: &AccountLimits) -> String {
    let mut parts = Vec::new();
    for (n, what) in [
        (l.images_per_minute, "张/分钟"),
        (l.images_per_day, "张/天"),
        (l.max_concurrent, "个同时"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    for (n, what) in [(l.max_spend_per_day, "/天"), (l.max_spend_per_month, "/月")] {
        if n > 0.0 {
            parts.push(format!("{n}{what}"));
        }
    }
    if parts.is_empty() {
        "不限".into()
    } else {
        parts.join("，")
    }
}

/// 一个账号一行：角色、停用/启用、重设密码、额度。
#[component]
fn AccountRow(section: Section, a: AccountView) -> impl IntoView {
    let name = a.name.clone();
    let change = move |c: AccountChange, ok: String| section.change(c, ok);
    let role_name = name.clone();
    let toggle_name = name.clone();
    let disabled = a.disabled;
    let password = RwSignal::new(String::new());
    let pw_name = name.clone();
    let limits = RwSignal::new(a.limits);
    let limit_name = name.clone();
    view! {
        <tr data-testid="account-row" data-name=name.clone()>
            <td>{a.display_name.clone()}<br/><code>{name.clone()}</code></td>
            <td>
                <select aria-label=format!("“{name}”的角色") on:change=move |ev| {
                    let role = if event_target_value(&ev) == "admin" { AccountRole::Admin } else { AccountRole::Member };
                    change(AccountChange { name: role_name.clone(), role: Some(role), ..Default::default() },
                        format!("已把“{role_name}”改为{}", role.label()));
                }>
                    <option value="member" selected=a.role == AccountRole::Member>"成员"</option>
                    <option value="admin" selected=a.role == AccountRole::Admin>"管理员"</option>
                </select>
            </td>
            <td>{if disabled { "已停用" } else { "在用" }}</td>
            <td>{a.last_seen_at.clone().unwrap_or_else(|| "从未".into())}</td>
            <td>{format!("{} 张，{}", a.month_images, a.month_spend)}</td>
            <td>
                <details>
                    <summary>{limits_text(&a.limits)}</summary>
                    <LimitsEditor limits/>
                    <button type="button" on:click=move |_| change(
                        AccountChange { name: limit_name.clone(), limits: Some(limits.get_untracked()), ..Default::default() },
                        format!("已改“{limit_name}”的额度"))>"保存额度"</button>
                </details>
            </td>
            <td class="account-actions">
                <button type="button" class=if disabled { "" } else { "danger" } on:click=move |_| change(
                    AccountChange { name: toggle_name.clone(), disabled: Some(!disabled), ..Default::default() },
                    format!("已{}“{toggle_name}”", if disabled { "启用" } else { "停用" }))>
                    {if disabled { "启用" } else { "停用" }}
                </button>
                <input type="password" autocomplete="new-password" placeholder="新密码"
                    aria-label=format!("“{name}”的新密码") prop:value=move || password.get()
                    on:input=move |ev| password.set(event_target_value(&ev))/>
                <button type="button" on:click=move |_| {
                    let new = password.get_untracked();
                    password.set(String::new());
                    change(AccountChange { name: pw_name.clone(), password: Some(new), ..Default::default() },
                        format!("已重设“{pw_name}”的密码，它的会话全部作废"));
                }>"重设密码"</button>
            </td>
        </tr>
    }
}

/// 额度的五个数（0 为不限）。
#[component]
fn LimitsEditor(limits: RwSignal<AccountLimits>) -> impl IntoView {
    let count = |label: &'static str,
                 get: fn(&AccountLimits) -> u32,
                 set: fn(&mut AccountLimits, u32)| {
        view! {
            <label>{label}
                <input type="number" min="0" prop:value=move || limits.with(get).to_string()
                    on:input=move |ev| limits.update(|l| set(l, event_target_value(&ev).parse().unwrap_or(0)))/>
            </label>
        }
    };
    let money = |label: &'static str,
                 get: fn(&AccountLimits) -> f64,
                 set: fn(&mut AccountLimits, f64)| {
        view! {
            <label>{label}
                <input type="text" inputmode="decimal" prop:value=move || limits.with(get).to_string()
                    on:input=move |ev| limits.update(|l| set(l, super::money::amount(&event_target_value(&ev))))/>
            </label>
        }
    };
    view! {
        <div class="limits">
            {count("每分钟张数", |l| l.images_per_minute, |l, n| l.images_per_minute = n)}
            {count("每天张数", |l| l.images_per_day, |l, n| l.images_per_day = n)}
            {count("同时请求数", |l| l.max_concurrent, |l, n| l.max_concurrent = n)}
            {money("每天花费", |l| l.max_spend_per_day, |l, n| l.max_spend_per_day = n)}
            {money("每月花费", |l| l.max_spend_per_month, |l, n| l.max_spend_per_month = n)}
        </div>
    }
}

/// 新建账号的表单。
#[component]
fn CreateAccount(section: Section) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let display = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let admin = RwSignal::new(false);
    let limits = RwSignal::new(AccountLimits::default());
    view! {
        <form class="create-account" data-testid="create-account" on:submit=move |ev| {
            ev.prevent_default();
            section.create(NewAccount {
                name: name.get_untracked(),
                display_name: display.get_untracked(),
                password: password.get_untracked(),
                role: if admin.get_untracked() { AccountRole::Admin } else { AccountRole::Member },
                limits: limits.get_untracked(),
            });
            password.set(String::new());
        }>
            <label>"账号名"
                <input type="text" name="account_name" autocomplete="off" prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))/>
            </label>
            <label>"显示名（可空）"
                <input type="text" name="account_display" prop:value=move || display.get()
                    on:input=move |ev| display.set(event_target_value(&ev))/>
            </label>
            <label>"密码（8 个字符以上）"
                <input type="password" name="account_password" autocomplete="new-password" prop:value=move || password.get()
                    on:input=move |ev| password.set(event_target_value(&ev))/>
            </label>
            <label class="check">
                <input type="checkbox" name="account_admin" prop:checked=move || admin.get()
                    on:change=move |ev| admin.set(event_target_checked(&ev))/>
                "管理员"
            </label>
            <details>
                <summary>"额度（0 为不限）"</summary>
                <LimitsEditor limits/>
            </details>
            <button type="submit">"新建账号"</button>
        </form>
    }
}

/// 操作记录（只追加，新的在前）。
#[component]
fn AuditLog(section: Section) -> impl IntoView {
    let entries = move || {
        section
            .data
            .with(|d| d.as_ref().map(|d| d.audit.clone()).unwrap_or_default())
    };
    view! {
        <h3>"操作记录"</h3>
        <p class="hint" hidden=move || !entries().is_empty()>"还没有记录。"</p>
        <ol class="audit" data-testid="audit" hidden=move || entries().is_empty()>
            {move || entries().into_iter().map(|e| view! {
                <li><time>{e.at}</time>" "<strong>{e.actor}</strong>" "{e.action}"："{e.detail}</li>
            }).collect_view()}
        </ol>
    }
}
