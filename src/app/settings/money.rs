//! 设置页的“花费”一节：显示币种（美元或人民币）与汇率、工作台每天与每月的花费上限。
//! 价格本身来自模型目录（`src/models.toml`，可在配置的 `[[models]]` 里改写），这里不改价格。

use super::Page;
use crate::types::money::Currency;
use crate::types::settings::MoneyForm;
use leptos::prelude::*;

/// 金额输入框：空为 0（不限）；写错的交给服务器说（负数、不是数字都回中文原因）。
pub(super) fn amount(text: &str) -> f64 {
    let text = text.trim();
    if text.is_empty() {
        0.0
    } else {
        text.parse().unwrap_or(-1.0)
    }
}

/// 一个金额输入框，0 显示为空。
fn field(
    page: Page,
    label: &'static str,
    name: &'static str,
    get: fn(&MoneyForm) -> f64,
    set: fn(&mut MoneyForm, f64),
) -> impl IntoView {
    let shown = move || {
        let v = page.money.with(get);
        if v == 0.0 {
            String::new()
        } else {
            v.to_string()
        }
    };
    view! {
        <label>{label}
            <input type="text" inputmode="decimal" name=name prop:value=shown
                on:change=move |ev| page.money.update(|m| set(m, amount(&event_target_value(&ev))))/>
        </label>
    }
}

#[component]
pub fn Money(page: Page) -> impl IntoView {
    let cny = move || page.money.with(|m| m.currency == Currency::Cny);
    view! {
        <h2>"花费"</h2>
        <p class="hint">"每张的价格来自模型目录（美元）；用量页、提示词栏的估价与卡片都按这里的币种显示。金额空为不限。"</p>
        <div class="money">
            <label>"显示币种"
                <select name="currency" on:change=move |ev| {
                    let currency = if event_target_value(&ev) == "CNY" { Currency::Cny } else { Currency::Usd };
                    page.money.update(|m| m.currency = currency);
                }>
                    <option value="USD" selected=move || !cny()>"美元（USD）"</option>
                    <option value="CNY" selected=cny>"人民币（CNY）"</option>
                </select>
            </label>
            <Show when=cny>
                {field(page, "1 美元折合人民币", "cny_per_usd", |m| m.cny_per_usd, |m, v| m.cny_per_usd = v)}
            </Show>
            {field(page, "工作台每天最多花费", "studio_max_spend_per_day",
                |m| m.studio_max_spend_per_day, |m, v| m.studio_max_spend_per_day = v)}
            {field(page, "工作台每月最多花费", "studio_max_spend_per_month",
                |m| m.studio_max_spend_per_month, |m, v| m.studio_max_spend_per_month = v)}
        </div>
    }
}
