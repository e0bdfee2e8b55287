//! 提示词栏里模型、宽高比、分辨率的下拉框与“联网搜索”：只列所选模型做得到的；换模型时原来的选择还行就保留，
//! 不行就换成它能做的。
//!
//! 每个 `<option>` 既有 `selected` 属性（服务端渲染出当前的选择，水合之前显示的就是它），
//! 又有 `prop:selected`（之后跟着信号走）。

use super::draft::Draft;
use crate::types::catalogue::ModelInfo;
use crate::types::{AspectRatio, ImageSize};
use leptos::prelude::*;

/// 所选模型（空为默认，即列表里的第一个）的能力。
fn chosen(models: &[ModelInfo], model: &str) -> ModelInfo {
    models
        .iter()
        .find(|m| m.id == model)
        .or_else(|| models.first())
        .cloned()
        .unwrap_or_else(|| ModelInfo::permissive(model))
}

/// 换了模型之后：它做不到的宽高比、分辨率换成它能做的（先选 1:1、1K），不支持联网搜索就关掉。
fn fit_to_model(draft: Draft, c: &ModelInfo) {
    if !c.aspect_ratios.contains(&draft.aspect.get_untracked()) {
        draft
            .aspect
            .set(if c.aspect_ratios.contains(&AspectRatio::Square) {
                AspectRatio::Square
            } else {
                c.aspect_ratios.first().copied().unwrap_or_default()
            });
    }
    if !c.sizes.contains(&draft.size.get_untracked()) {
        draft.size.set(if c.sizes.contains(&ImageSize::K1) {
            ImageSize::K1
        } else {
            c.sizes.first().copied().unwrap_or_default()
        });
    }
    if !c.grounding {
        draft.google_search.set(false);
    }
}

/// 模型、宽高比、分辨率的下拉框与“联网搜索”。
#[component]
pub fn ShapeSelectors(draft: Draft, models: Vec<ModelInfo>) -> impl IntoView {
    let caps = {
        let models = models.clone();
        Memo::new(move |_| draft.model.with(|m| chosen(&models, m)))
    };
    Effect::new(move |_| fit_to_model(draft, &caps.get()));
    view! {
        <ModelSelect draft models/>
        <AspectSelect draft caps/>
        <SizeSelect draft caps/>
        <Show when=move || caps.with(|c| c.grounding)>
            <label class="check" title="让模型先用 Google 搜索，再按搜到的资料作画（来源显示在卡片上）">
                <input type="checkbox" name="google_search" prop:checked=move || draft.google_search.get()
                    on:change=move |ev| draft.google_search.set(event_target_checked(&ev))/>
                "联网搜索"
            </label>
        </Show>
    }
}

/// 模型：“默认（列表里的第一个）”与各个模型。
#[component]
fn ModelSelect(draft: Draft, models: Vec<ModelInfo>) -> impl IntoView {
    view! {
        <label class="field model">
            <span>"模型"</span>
            <select name="model" on:change=move |ev| draft.model.set(event_target_value(&ev))>
                <option value="" selected=draft.model.with_untracked(String::is_empty)
                    prop:selected=move || draft.model.with(String::is_empty)>
                    {models.first().map(|m| format!("默认（{}）", m.label())).unwrap_or_else(|| "默认".into())}
                </option>
                {models.into_iter().map(|m| {
                    let current = m.id.clone();
                    view! {
                        <option value=m.id.clone() selected=draft.model.with_untracked(|x| *x == m.id)
                            prop:selected=move || draft.model.with(|x| *x == current)>{m.label()}</option>
                    }
                }).collect_view()}
            </select>
        </label>
    }
}

/// 宽高比：所选模型做得到的。
#[component]
fn AspectSelect(draft: Draft, caps: Memo<ModelInfo>) -> impl IntoView {
    view! {
        <label class="field">
            <span>"宽高比"</span>
            <select name="aspect_ratio"
                on:change=move |ev| {
                    draft.aspect.set(event_target_value(&ev).parse().unwrap_or_default())
                }>
                {move || caps.get().aspect_ratios
                    .into_iter()
                    .map(|a| view! {
                        <option value=a.as_str() selected={draft.aspect.get_untracked() == a}
                            prop:selected=move || draft.aspect.get() == a>{a.as_str()}</option>
                    })
                    .collect_view()}
            </select>
        </label>
    }
}

/// 分辨率：所选模型做得到的。
#[component]
fn SizeSelect(draft: Draft, caps: Memo<ModelInfo>) -> impl IntoView {
    view! {
        <label class="field">
            <span>"分辨率"</span>
            <select name="image_size"
                on:change=move |ev| {
                    draft.size.set(event_target_value(&ev).parse().unwrap_or_default())
                }>
                {move || caps.get().sizes
                    .into_iter()
                    .map(|s| view! {
                        <option value=s.as_str() selected={draft.size.get_untracked() == s}
                            prop:selected=move || draft.size.get() == s>{s.as_str()}</option>
                    })
                    .collect_view()}
            </select>
        </label>
    }
}
