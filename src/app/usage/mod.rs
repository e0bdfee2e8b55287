//! 用量页（`/usage`，管理员）：最近 30 天每天的张数（按上游叠起来）、最近 24 小时各上游的成功率与耗时、
//! 今天各调用方的张数与额度、各上游与密钥此刻的状态；可导出 CSV。图是 Leptos 组件画的 SVG（`charts.rs`）。
//!
//! 数据来自 `/api/admin/usage_report`（与设置页一样要管理员会话）。

mod charts;
mod spend;

use crate::types::codec::JsonStr;
use crate::types::usage::UsageReport;
use crate::types::AppError;
use charts::{ClientBars, DailyStack, LiveTable, UpstreamBars};
use leptos::prelude::*;
use leptos::task::spawn_local;
use spend::{SpendDaily, SpendTable};

/// `POST /api/admin/usage_report`，`{}` 或 `{"account":"alice"}`（只看这个账号的）：用量页的全部数据。
#[server(prefix = "/api/admin", endpoint = "usage_report", input = JsonStr, output = JsonStr)]
pub async fn get_usage_report(#[server(default)] account: String) -> Result<UsageReport, AppError> {
    crate::state::with_state(|s| async move {
        let config = s.config.load_full();
        let now = crate::usage::report::Now {
            storage: &s.storage,
            config: &config,
            live: s.gateway.live(&config),
            clients_today: s.client_budgets.today(),
            account: account.trim().to_string(),
        };
        Ok(crate::usage::report::build(now).await?)
    })
    .await
}

/// `POST /api/admin/usage_csv`，`{}`：最近 30 天的用量（每小时 × 调用方 × 上游 × 模型 × 密钥一行），CSV 文字。
#[server(prefix = "/api/admin", endpoint = "usage_csv", input = JsonStr, output = JsonStr)]
pub async fn export_usage_csv() -> Result<String, AppError> {
    crate::state::with_state(|s| async move {
        Ok(crate::usage::report::csv(&s.storage, &s.config.load()).await?)
    })
    .await
}

#[component]
pub fn UsagePage() -> impl IntoView {
    view! { <Usage/> }
}

/// 用量页的交互部分：水合后取数据（每 10 秒刷新一次），没登录时指向设置页。
#[island(lazy)]
fn Usage() -> impl IntoView {
    let report = RwSignal::new(None::<UsageReport>);
    let error = RwSignal::new(None::<(u16, String)>);
    // 水合完成的标志（与其他页面一样；基准测试按它计水合用时）。
    let hydrated = RwSignal::new(false);
    // 只看这个账号的（空为全部）。
    let account = RwSignal::new(String::new());
    let load = move || {
        spawn_local(async move {
            match get_usage_report(account.get_untracked()).await {
                Ok(r) => {
                    report.set(Some(r));
                    error.set(None);
                }
                Err(e) => error.set(Some((e.status, e.message))),
            }
        });
    };
    Effect::new(move |_| {
        hydrated.set(true);
        load();
        spawn_local(async move {
            loop {
                crate::app::browser::sleep_ms(10_000).await;
                // 没登录（或不许看）就不再刷新：登录后重新打开页面即可。
                if error.with_untracked(|e| matches!(e, Some((401 | 403, _)))) {
                    break;
                }
                load();
            }
        });
    });
    let export = move || {
        spawn_local(async move {
            match export_usage_csv().await {
                Ok(text) => crate::app::browser::download_text("用量.csv", "text/csv", &text),
                Err(e) => error.set(Some((e.status, e.message))),
            }
        });
    };
    view! {
        <section class="usage" data-hydrated=move || hydrated.get().to_string()
            data-loaded=move || report.with(Option::is_some).to_string()>
            <div class="usage-head">
                <h1>"用量"</h1>
                <button type="button" on:click=move |_| export()>"导出 CSV（最近 30 天）"</button>
            </div>
            <Show when=move || report.with(|r| r.as_ref().is_some_and(|r| !r.accounts.is_empty()))>
                <label class="usage-account">"账号"
                    <select data-testid="usage-account" on:change=move |ev| {
                        account.set(event_target_value(&ev));
                        load();
                    }>
                        <option value="">"全部"</option>
                        {move || report.with(|r| r.as_ref().map(|r| r.accounts.clone()).unwrap_or_default())
                            .into_iter()
                            .map(|a| view! { <option value=a.clone() selected=account.get_untracked() == a>{a.clone()}</option> })
                            .collect_view()}
                    </select>
                </label>
            </Show>
            {move || error.get().map(|(status, message)| if status == 401 || status == 403 {
                view! {
                    <p class="error" role="alert">{message}" "<a href="/settings">"去设置页登录管理员"</a></p>
                }.into_any()
            } else {
                view! { <p class="error" role="alert">{message}</p> }.into_any()
            })}
            {move || report.get().map(|r| view! {
                <h2>"最近 30 天每天的张数（按上游）"</h2>
                <DailyStack report=r.clone()/>
                <h2>"最近 24 小时各上游"</h2>
                <UpstreamBars stats=r.last_24h.clone()/>
                <h2>"今天各调用方的张数与每日额度"</h2>
                <ClientBars clients=r.clients_today.clone()/>
                <h2>"上游与密钥（此刻）"</h2>
                <LiveTable live=r.live.clone()/>
                <h2>"最近 30 天的花费（按模型目录的价格）"</h2>
                <SpendDaily spend=r.spend.clone() days=r.days.clone()/>
                <SpendTable caption="按模型" what="模型" lines=r.spend.by_model.clone() pricing=r.spend.pricing/>
                <SpendTable caption="按上游与密钥" what="上游 · 密钥" lines=r.spend.by_upstream_key.clone() pricing=r.spend.pricing/>
                <SpendTable caption="按调用方（/v1 密钥与工作台）" what="调用方" lines=r.spend.by_client.clone() pricing=r.spend.pricing/>
            })}
        </section>
    }
}
