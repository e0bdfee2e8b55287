//! 用量页的图：用 Leptos 组件直接画 SVG，不用图表库（WASM 不必多带一个库）。

use crate::types::usage::{ClientToday, UpstreamLive, UpstreamStats, UsageReport};
use leptos::prelude::*;

/// 上游的颜色（按序号循环）。
const COLORS: [&str; 8] = [
    "#3b6cf6", "#2e9d5b", "#e0a100", "#d9534f", "#8e44ad", "#16a5a5", "#f06292", "#7f8c8d",
];

fn color(i: usize) -> &'static str {
    COLORS[i % COLORS.len()]
}

/// 坐标轴上限：不小于最大值的“整”数（1、2、5 × 10 的幂）。
fn nice_max(max: u64) -> u64 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if m * step >= max.max(1) {
                return m * step;
            }
        }
        step *= 10;
    }
}

/// 最近 30 天每天的张数，每个上游一段，叠成一根柱子；没有图的那段不画。
#[component]
pub fn DailyStack(report: UsageReport) -> impl IntoView {
    let (w, h, left, bottom) = (760.0, 240.0, 40.0, 24.0);
    let days = report.days.len().max(1);
    let totals: Vec<u64> = (0..report.days.len())
        .map(|d| report.images_per_day.iter().map(|u| u[d]).sum())
        .collect();
    let top = nice_max(totals.iter().copied().max().unwrap_or(0));
    let slot = (w - left) / days as f64;
    let scale = (h - bottom - 8.0) / top as f64;
    let mut bars = Vec::new();
    for d in 0..report.days.len() {
        let mut y = h - bottom;
        for (u, series) in report.images_per_day.iter().enumerate() {
            let n = series[d];
            if n == 0 {
                continue;
            }
            let height = n as f64 * scale;
            y -= height;
            let title = format!("{} · {}：{n} 张", report.days[d], report.upstreams[u]);
            bars.push(view! {
                <rect data-bar="" x=format!("{:.1}", left + d as f64 * slot + 2.0) y=format!("{y:.1}")
                    width=format!("{:.1}", (slot - 4.0).max(1.0)) height=format!("{height:.1}") fill=color(u)>
                    <title>{title}</title>
                </rect>
            });
        }
    }
    let labels = report
        .days
        .iter()
        .enumerate()
        .filter(|(d, _)| d % 5 == 4 || *d == 0)
        .map(|(d, day)| {
            view! {
                <text x=format!("{:.1}", left + (d as f64 + 0.5) * slot) y=format!("{}", h - 6.0)
                    text-anchor="middle" class="axis">{day.get(5..).unwrap_or(day).to_string()}</text>
            }
        })
        .collect_view();
    let legend = report
        .upstreams
        .iter()
        .enumerate()
        .map(|(i, name)| view! { <span class="legend"><i style=format!("background:{}", color(i))></i>{name.clone()}</span> })
        .collect_view();
    view! {
        <figure class="chart">
            <svg data-testid="daily-chart" viewBox=format!("0 0 {w} {h}") role="img"
                aria-label="最近 30 天每天的张数，按上游叠起来">
                <line x1=left y1=h - bottom x2=w y2=h - bottom class="axis-line"/>
                <text x=left - 6.0 y="14" text-anchor="end" class="axis">{top.to_string()}</text>
                <text x=left - 6.0 y=h - bottom text-anchor="end" class="axis">"0"</text>
                {bars}
                {labels}
            </svg>
            <figcaption>{legend}{format!(" · 共 {} 张", totals.iter().sum::<u64>())}</figcaption>
        </figure>
    }
}

fn ms(v: Option<u64>) -> String {
    match v {
        Some(v) if v >= 1000 => format!("≤{:.0} 秒", v as f64 / 1000.0),
        Some(v) => format!("≤{v} 毫秒"),
        None => "—".into(),
    }
}

/// 最近 24 小时各上游：成功率（横条）、中位与 95 分位耗时、尝试、张数、失败、重试、回退。
#[component]
pub fn UpstreamBars(stats: Vec<UpstreamStats>) -> impl IntoView {
    if stats.is_empty() {
        return view! { <p class="empty">"最近 24 小时没有请求。"</p> }.into_any();
    }
    let (w, row) = (760.0, 28.0);
    let h = row * stats.len() as f64 + 8.0;
    let (left, bar_w) = (160.0, 300.0);
    let rows = stats
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let y = 4.0 + i as f64 * row;
            let rate = s.success_rate.unwrap_or(0.0);
            let failures: u64 = s.failures.values().sum();
            let fill = if rate >= 0.95 {
                "#2e9d5b"
            } else if rate >= 0.8 {
                "#e0a100"
            } else {
                "#d9534f"
            };
            let detail = format!(
                "{:.1}% · 中位 {} · 95% {} · 尝试 {} · {} 张 · 失败 {failures} · 重试 {} · 回退 {}",
                rate * 100.0,
                ms(s.p50_ms),
                ms(s.p95_ms),
                s.requests,
                s.images,
                s.retries,
                s.fallbacks
            );
            view! {
                <g data-upstream=s.name.clone()>
                    <text x=left - 8.0 y=y + 17.0 text-anchor="end">{s.name.clone()}</text>
                    <rect x=left y=y + 4.0 width=bar_w height=row - 10.0 class="track"/>
                    <rect data-point="" x=left y=y + 4.0 width=format!("{:.1}", bar_w * rate) height=row - 10.0
                        fill=fill/>
                    <text x=left + bar_w + 10.0 y=y + 17.0 class="axis">{detail}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <svg data-testid="upstream-chart" viewBox=format!("0 0 {w} {h}") role="img" aria-label="最近 24 小时各上游的成功率">
            {rows}
        </svg>
    }
    .into_any()
}

/// 今天各调用方的张数；设了每日额度的画出额度线。
#[component]
pub fn ClientBars(clients: Vec<ClientToday>) -> impl IntoView {
    if clients.is_empty() {
        return view! { <p class="empty">"今天还没有生成。"</p> }.into_any();
    }
    let (w, row, left, bar_w) = (760.0, 28.0, 160.0, 460.0);
    let h = row * clients.len() as f64 + 8.0;
    let top = nice_max(
        clients
            .iter()
            .map(|c| c.images.max(c.budget as u64))
            .max()
            .unwrap_or(0),
    ) as f64;
    let rows = clients
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let y = 4.0 + i as f64 * row;
            let width = bar_w * c.images as f64 / top;
            let label = if c.budget > 0 {
                format!("{} / {} 张", c.images, c.budget)
            } else {
                format!("{} 张（不限）", c.images)
            };
            let over = c.budget > 0 && c.images >= c.budget as u64;
            view! {
                <g data-client=c.client.clone()>
                    <text x=left - 8.0 y=y + 17.0 text-anchor="end">{c.client.clone()}</text>
                    <rect data-bar="" x=left y=y + 4.0 width=format!("{width:.1}") height=row - 10.0
                        fill={ if over { "#d9534f" } else { "#3b6cf6" } }/>
                    {(c.budget > 0).then(|| {
                        let x = left + bar_w * c.budget as f64 / top;
                        view! { <line x1=x y1=y + 1.0 x2=x y2=y + row - 3.0 class="budget-line"/> }
                    })}
                    <text x=left + bar_w + 10.0 y=y + 17.0 class="axis">{label}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <svg data-testid="client-chart" viewBox=format!("0 0 {w} {h}") role="img" aria-label="今天各调用方的张数与额度">
            {rows}
        </svg>
    }
    .into_any()
}

fn circuit_label(c: &str) -> &'static str {
    match c {
        "open" => "熔断中",
        "half_open" => "试探中",
        _ => "正常",
    }
}

/// 各上游与密钥此刻的状态。
#[component]
pub fn LiveTable(live: Vec<UpstreamLive>) -> impl IntoView {
    view! {
        <table class="live-table" data-testid="live-table">
            <thead><tr><th>"上游"</th><th>"模型"</th><th>"熔断"</th><th>"在途"</th><th>"密钥"</th><th>"最近的错误"</th></tr></thead>
            <tbody>
                {live.into_iter().map(|u| view! {
                    <tr data-circuit=u.circuit.clone()>
                        <td>{u.name.clone()}</td>
                        <td>{u.models.join("、")}</td>
                        <td>{circuit_label(&u.circuit)}</td>
                        <td>{u.in_flight}</td>
                        <td>{u.keys.iter().map(|k| view! {
                            <div data-state=k.state.clone()><code>{k.label.clone()}</code>" "{k.label_zh.clone()}</div>
                        }).collect_view()}</td>
                        <td class="meta">{u.last_error.clone().unwrap_or_default()}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}
