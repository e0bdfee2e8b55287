//! 设置页的“上游”一节：每个上游一组字段（名称、类型、地址、模型、密钥），测试连接、获取模型列表、排序、删除。

use super::Page;
use crate::types::settings::{UpstreamForm, UpstreamKind};
use leptos::prelude::*;

/// 改第 `i` 个上游的一个字段。
fn edit(page: Page, i: usize, f: fn(&mut UpstreamForm, String), value: String) {
    page.upstreams.update(|l| {
        if let Some(u) = l.get_mut(i) {
            f(u, value);
        }
    });
}

#[component]
pub fn Upstreams(page: Page) -> impl IntoView {
    let add = move || {
        page.upstreams.update(|l| {
            l.push(UpstreamForm {
                name: format!("上游{}", l.len() + 1),
                kind: "gemini".into(),
                model: "gemini-3-pro-image".into(),
                weight: 1,
                ..Default::default()
            })
        })
    };
    view! {
        <h2>"上游"</h2>
        <p class="hint">"排在前面的先用；失败时按顺序切换到下一个（勾了“与上一个同级”的按权重分担）。请求某个模型时只用列出了它的上游。密钥只能写入：留空表示不改。"</p>
        <div class="upstreams">
            {move || page.upstreams.get().into_iter().enumerate().map(|(i, u)| view! {
                <UpstreamFields page i u/>
            }).collect_view()}
        </div>
        <button type="button" on:click=move |_| add()>"添加上游"</button>
        <p class="hint">"一个上游都没有时，使用内置的演示上游。"</p>
    }
}

#[component]
fn TextField(
    page: Page,
    i: usize,
    label: &'static str,
    value: String,
    set: fn(&mut UpstreamForm, String),
) -> impl IntoView {
    view! {
        <label>{label}
            <input type="text" value=value aria-label=label
                on:change=move |ev| edit(page, i, set, event_target_value(&ev))/>
        </label>
    }
}

#[component]
fn UpstreamFields(page: Page, i: usize, u: UpstreamForm) -> impl IntoView {
    let key_placeholder = if u.api_key_set {
        "已设置（留空不改）"
    } else {
        "未设置"
    };
    let kind = u.kind.clone();
    view! {
        <fieldset class="upstream" data-testid="upstream">
            <legend>{format!("第 {} 个", i + 1)}</legend>
            <TextField page i label="名称" value=u.name.clone() set=|u, v| u.name = v/>
            <label>"类型"
                <select aria-label="类型" on:change=move |ev| edit(page, i, |u, v| u.kind = v, event_target_value(&ev))>
                    {UpstreamKind::ALL.into_iter().map(|k| k.as_str()).map(|k| view! {
                        <option value=k selected=kind == k>{k}</option>
                    }).collect_view()}
                </select>
            </label>
            <TextField page i label="地址" value=u.base_url.clone() set=|u, v| u.base_url = v/>
            <TextField page i label="模型（多个用逗号分隔，第一个是默认）" value=u.model.clone() set=|u, v| u.model = v/>
            <label>"API 密钥（多个用逗号分隔，轮流使用）"
                <input type="password" autocomplete="off" placeholder=key_placeholder aria-label="API 密钥"
                    on:change=move |ev| edit(page, i, |u, v| u.api_key = v, event_target_value(&ev))/>
            </label>
            <label>"权重"
                <input type="number" min="1" max="1000" aria-label="权重" value=u.weight.to_string()
                    on:change=move |ev| edit(page, i, |u, v| u.weight = v.parse().unwrap_or(0), event_target_value(&ev))/>
            </label>
            {(i > 0).then(|| view! {
                <label class="check">
                    <input type="checkbox" aria-label="与上一个同级" checked=u.share_with_previous
                        on:change=move |ev| {
                            let on = event_target_checked(&ev);
                            page.upstreams.update(|l| l[i].share_with_previous = on);
                        }/>
                    "与上一个同级（按权重分担，而不是等它失败才用）"
                </label>
            })}
            {(!u.key_states.is_empty()).then(|| view! {
                <ul class="key-states" data-testid="key-states">
                    {u.key_states.iter().map(|k| view! {
                        <li data-state=k.state.clone()>
                            <code>{k.label.clone()}</code>" "{k.label_zh.clone()}
                            {k.last_error.clone().map(|e| view! { <span class="meta">{format!("（最近的错误：{e}）")}</span> })}
                        </li>
                    }).collect_view()}
                </ul>
            })}
            <div class="row-actions">
                <button type="button" on:click=move |_| page.probe(i)>"测试连接"</button>
                <button type="button" on:click=move |_| page.fetch_models(i)>"获取模型列表"</button>
                <button type="button" disabled=i == 0 on:click=move |_| page.upstreams.update(|l| l.swap(i - 1, i))>"上移"</button>
                <button type="button" on:click=move |_| page.upstreams.update(|l| { if i + 1 < l.len() { l.swap(i, i + 1) } })>"下移"</button>
                <button type="button" class="danger" on:click=move |_| page.upstreams.update(|l| { l.remove(i); })>"删除"</button>
                <span class="probe" data-testid="probe">{move || page.probes.with(|p| p.get(&i).map(|r| {
                    format!("{}{}", if r.ok { "✓ " } else { "✗ " }, r.message)
                }))}</span>
            </div>
            {move || page.models.with(|m| m.get(&i).cloned()).map(|r| match r {
                Ok(list) => view! {
                    <div class="model-list" data-testid="models">
                        {list.into_iter().map(|name| {
                            let pick = name.clone();
                            view! {
                                <button type="button" title="用这个模型"
                                    on:click=move |_| edit(page, i, |u, v| u.model = v, pick.clone())>{name}</button>
                            }
                        }).collect_view()}
                    </div>
                }.into_any(),
                Err(e) => view! { <p class="error">{e}</p> }.into_any(),
            })}
        </fieldset>
    }
}
