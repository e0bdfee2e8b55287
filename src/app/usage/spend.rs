//! 用量页的花费部分：最近 30 天每天花了多少（柱状图：已计费与可能已计费叠起来）与总计，
//! 按模型、按上游与密钥、按调用方的表。金额按模型目录的价格算，显示币种由 `[usage]` 定（见 `types::money`）。

use crate::types::money::{Pricing, Spend};
use crate::types::usage::{SpendCell, SpendLine, SpendReport};
use leptos::prelude::*;

/// 柱状图的视图框（与张数的图一样，横向拉伸到容器宽度）。
const W: f64 = 300.0;
const H: f64 = 100.0;

fn money(spend: Spend, pricing: Pricing) -> String {
    if spend == Spend::default() {
        return "—".into();
    }
    spend.show(pricing)
}

/// 每天的花费与总计。
#[component]
pub fn SpendDaily(spend: SpendReport, days: Vec<String>) -> impl IntoView {
    let pricing = spend.pricing;
    let total = |c: &SpendCell| c.billed.usd.plus(c.maybe.usd).0.max(0) as f64;
    let top = spend.per_day.iter().map(total).fold(0.0, f64::max).max(1.0);
    let slot = W / spend.per_day.len().max(1) as f64;
    let bars = spend
        .per_day
        .iter()
        .enumerate()
        .flat_map(|(d, cell)| {
            let day = days.get(d).cloned().unwrap_or_default();
            let billed = cell.billed.usd.0.max(0) as f64 * (H - 2.0) / top;
            let maybe = cell.maybe.usd.0.max(0) as f64 * (H - 2.0) / top;
            let x = format!("{:.2}", d as f64 * slot + slot * 0.1);
            let width = format!("{:.2}", slot * 0.8);
            [
                (billed > 0.0).then(|| view! {
                    <rect data-spend="" x=x.clone() y=format!("{:.2}", H - billed) width=width.clone()
                        height=format!("{billed:.2}") class="spend-billed">
                        <title>{format!("{day}：已计费 {}", money(cell.billed, pricing))}</title>
                    </rect>
                }),
                (maybe > 0.0).then(|| view! {
                    <rect data-spend="" x=x y=format!("{:.2}", H - billed - maybe) width=width
                        height=format!("{maybe:.2}") class="spend-maybe">
                        <title>{format!("{day}：可能已计费 {}", money(cell.maybe, pricing))}</title>
                    </rect>
                }),
            ]
        })
        .flatten()
        .collect_view();
    view! {
        <figure class="chart daily spend">
            <div class="plot">
                <svg data-testid="spend-chart" viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none"
                    role="img" aria-label="最近 30 天每天的花费（已计费与可能已计费叠起来）">
                    <line x1="0" y1=H x2=W y2=H class="axis-line" vector-effect="non-scaling-stroke"/>
                    {bars}
                </svg>
            </div>
            <figcaption>
                <span class="legend"><i class="spend-billed"></i>"已计费"</span>
                <span class="legend"><i class="spend-maybe"></i>"可能已计费"</span>
                <span data-testid="spend-total">
                    {format!("共 {}", money(spend.total.billed, pricing))}
                    {(spend.total.maybe != Spend::default())
                        .then(|| format!("，另有可能已计费 {}", money(spend.total.maybe, pricing)))}
                </span>
            </figcaption>
        </figure>
    }
}

/// 一张花费表（按模型、按上游与密钥或按调用方）。
#[component]
pub fn SpendTable(
    caption: &'static str,
    what: &'static str,
    lines: Vec<SpendLine>,
    pricing: Pricing,
) -> impl IntoView {
    let rows = lines
        .into_iter()
        .map(|l| {
            view! {
                <tr>
                    <td>{l.name}</td>
                    <td class="num">{l.images.to_string()}</td>
                    <td class="num">{money(l.spend.billed, pricing)}</td>
                    <td class="num">{money(l.spend.maybe, pricing)}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-scroll">
            <table class="spend-table">
                <caption>{caption}</caption>
                <thead>
                    <tr>
                        <th scope="col">{what}</th>
                        <th scope="col">"张数"</th>
                        <th scope="col">{format!("已计费（{}）", pricing.currency.code())}</th>
                        <th scope="col">"可能已计费"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
}
