//! 设置页的“限流、重试、超时与并发”一节：行由设置表（`NUMBER_SETTINGS`、`FLAG_SETTINGS`）产生。

use super::Page;
use crate::types::settings::{FlagSetting, NumberSetting, FLAG_SETTINGS, NUMBER_SETTINGS};
use leptos::prelude::*;

#[component]
pub fn NumbersEditor(page: Page) -> impl IntoView {
    view! {
        <h2>"限流、重试、超时与并发"</h2>
        <div class="numbers">
            {NUMBER_SETTINGS.iter().map(|s| view! { <NumberRow page s=*s/> }).collect_view()}
            {FLAG_SETTINGS.iter().map(|s| view! { <FlagRow page s=*s/> }).collect_view()}
        </div>
    }
}

#[component]
fn NumberRow(page: Page, s: NumberSetting) -> impl IntoView {
    let label = if s.unit.is_empty() {
        s.label.to_string()
    } else {
        format!("{}（{}）", s.label, s.unit)
    };
    let key = s.key;
    view! {
        <label title=key>{label.clone()}
            <input type="number" min=s.min max=s.max aria-label=label.clone()
                prop:value=move || page.numbers.with(|n| n.get(key).map(u64::to_string).unwrap_or_default())
                on:change=move |ev| {
                    match event_target_value(&ev).trim().parse::<u64>() {
                        Ok(v) => page.numbers.update(|n| {
                            n.insert(key.to_string(), v);
                        }),
                        Err(_) => page.message.set(Some((false, format!("{label}（{key}）必须是不小于 0 的整数")))),
                    }
                }/>
        </label>
    }
}

#[component]
fn FlagRow(page: Page, s: FlagSetting) -> impl IntoView {
    let key = s.key;
    view! {
        <label class="flag" title=s.note>
            <input type="checkbox" prop:checked=move || page.flags.with(|f| f.get(key).copied().unwrap_or(false))
                on:change=move |ev| page.flags.update(|f| {
                    f.insert(key.to_string(), event_target_checked(&ev));
                })/>
            {s.label}
        </label>
    }
}
