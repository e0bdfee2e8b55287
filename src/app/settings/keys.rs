//! 设置页的“API 密钥（/v1）”一节：列表（只显示前缀）、创建（原文只显示一次，可填张数、同时请求数与花费的上限）、吊销。

use super::money::amount;
use super::{browser, Page};
use crate::types::settings::KeyLimits;
use leptos::prelude::*;

/// 张数与请求数的上限：0 为“不限”。
fn limit(n: u32) -> String {
    if n == 0 {
        "不限".to_string()
    } else {
        n.to_string()
    }
}

/// 花费的上限：0 为“不限”。
fn money(n: f64) -> String {
    if n == 0.0 {
        "不限".to_string()
    } else {
        n.to_string()
    }
}

#[component]
pub fn ApiKeys(page: Page) -> impl IntoView {
    let hint = move || {
        let plain = page.saved.with(|v| v.plain_keys);
        if plain > 0 {
            format!("另有 {plain} 个密钥写在配置文件或环境变量里（不在此显示）。")
        } else {
            "一个密钥都没有时，/v1 不要求密钥。".to_string()
        }
    };
    view! {
        <h2>"API 密钥（/v1）"</h2>
        <p class="hint">{hint}</p>
        {move || page.created.get().map(|k| view! {
            <div class="new-key" data-testid="new-key">
                <p>"新密钥只显示这一次，请立即复制保存："</p>
                <code>{k.key.clone()}</code>
                <button type="button" on:click=move |_| browser::copy_text(&k.key)>"复制"</button>
            </div>
        })}
        <KeyTable page/>
        <CreateKey page/>
    }
}

/// 密钥列表。窄屏上表格在自己的框里横向滚动，页面不横向滚动。一个密钥都没有时不画空表格（只有表头的表格对读屏软件没有意义）。
#[component]
fn KeyTable(page: Page) -> impl IntoView {
    view! {
        <div class="table-scroll" role="region" aria-label="API 密钥列表" tabindex="0"
            hidden=move || page.saved.with(|v| v.keys.is_empty())>
        <table class="keys">
            <thead><tr><th>"用途"</th><th>"所属账号"</th><th>"前缀"</th><th>"每天张数"</th><th>"同时请求"</th><th>"每天花费"</th><th>"每月花费"</th><th>"创建时间"</th><th>"最近使用"</th><th><span class="sr-only">"操作"</span></th></tr></thead>
            <tbody>
                {move || page.saved.with(|v| v.keys.clone()).into_iter().map(|k| {
                    let prefix = k.prefix.clone();
                    view! {
                        <tr data-testid="key-row">
                            <td>{k.label.clone()}</td>
                            <td>{if k.owner.is_empty() { "—".to_string() } else { k.owner.clone() }}</td>
                            <td><code>{format!("{}…", k.prefix)}</code></td>
                            <td>{limit(k.images_per_day)}</td>
                            <td>{limit(k.max_concurrent)}</td>
                            <td>{money(k.max_spend_per_day)}</td>
                            <td>{money(k.max_spend_per_month)}</td>
                            <td>{k.created_at.clone()}</td>
                            <td>{k.last_used.clone().unwrap_or_else(|| "从未".into())}</td>
                            <td><button type="button" class="danger" on:click=move |_| page.revoke_key(prefix.clone())>"吊销"</button></td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
        </div>
    }
}

/// 创建密钥的表单。
#[component]
fn CreateKey(page: Page) -> impl IntoView {
    let label = RwSignal::new(String::new());
    let per_day = RwSignal::new(0u32);
    let concurrent = RwSignal::new(0u32);
    let spend_day = RwSignal::new(String::new());
    let spend_month = RwSignal::new(String::new());
    let owner = RwSignal::new(String::new());
    let text_field = move |label: &'static str, name: &'static str, value: RwSignal<String>| {
        view! {
            <label>{label}
                <input type="text" inputmode="decimal" name=name prop:value=move || value.get()
                    on:input=move |ev| value.set(event_target_value(&ev))/>
            </label>
        }
    };
    view! {
        <form class="create-key" on:submit=move |ev| {
            ev.prevent_default();
            let limits = KeyLimits {
                images_per_day: per_day.get_untracked(),
                max_concurrent: concurrent.get_untracked(),
                max_spend_per_day: amount(&spend_day.get_untracked()),
                max_spend_per_month: amount(&spend_month.get_untracked()),
            };
            page.create_key(label.get_untracked(), limits, owner.get_untracked());
            label.set(String::new());
        }>
            <label>"用途说明"
                <input type="text" aria-label="用途说明" prop:value=move || label.get()
                    on:input=move |ev| label.set(event_target_value(&ev))/>
            </label>
            <label>"每天最多张数（0 不限）"
                <input type="number" min="0" name="images_per_day" prop:value=move || per_day.get().to_string()
                    on:input=move |ev| per_day.set(event_target_value(&ev).parse().unwrap_or(0))/>
            </label>
            <label>"同时请求数（0 不限）"
                <input type="number" min="0" name="key_max_concurrent" prop:value=move || concurrent.get().to_string()
                    on:input=move |ev| concurrent.set(event_target_value(&ev).parse().unwrap_or(0))/>
            </label>
            {text_field("每天最多花费（空为不限）", "key_max_spend_per_day", spend_day)}
            {text_field("每月最多花费（空为不限）", "key_max_spend_per_month", spend_month)}
            {text_field("所属账号（可空；用量与额度记在它名下）", "key_owner", owner)}
            <button type="submit">"创建密钥"</button>
        </form>
    }
}
