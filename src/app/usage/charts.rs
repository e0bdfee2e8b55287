//! 用量页的图：用 Leptos 组件直接画 SVG，不用图表库（WASM 不必多带一个库）。
//!
//! 图随容器的宽度伸缩（#33）：SVG 里只有柱子与横条（`preserveAspectRatio="none"`，横向拉伸不影响什么），
//! 文字（日期、名称、数字）都是 HTML，按页面的字号排，窄屏上自动换行，不会被裁掉。

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

/// 柱状图的视图框：宽 `DAILY_W`、高 `DAILY_H`（用户单位；显示时拉伸到容器的宽度，高度由 CSS 定）。
const DAILY_W: f64 = 300.0;
const DAILY_H: f64 = 100.0;

/// 最近 30 天每天的张数，每个上游一段，叠成一根柱子；没有图的那段不画。
/// 日期标在图下（HTML）：第一天靠左、最后一天靠右，中间每 5 天一个。
#[component]
pub fn DailyStack(report: UsageReport) -> impl IntoView {
    let days = report.days.len().max(1);
    let totals: Vec<u64> = (0..report.days.len())
        .map(|d| report.images_per_day.iter().map(|u| u[d]).sum())
        .collect();
    let top = nice_max(totals.iter().copied().max().unwrap_or(0));
    let slot = DAILY_W / days as f64;
    let scale = (DAILY_H - 2.0) / top as f64;
    let mut bars = Vec::new();
    for d in 0..report.days.len() {
        let mut y = DAILY_H;
        for (u, series) in report.images_per_day.iter().enumerate() {
            let n = series[d];
            if n == 0 {
                continue;
            }
            let height = n as f64 * scale;
            y -= height;
            let title = format!("{} · {}：{n} 张", report.days[d], report.upstreams[u]);
            bars.push(view! {
                <rect data-bar="" x=format!("{:.2}", d as f64 * slot + slot * 0.1) y=format!("{y:.2}")
                    width=format!("{:.2}", slot * 0.8) height=format!("{height:.2}") fill=color(u)>
                    <title>{title}</title>
                </rect>
            });
        }
    }
    let last = report.days.len().saturating_sub(1);
    let labels = report
        .days
        .iter()
        .enumerate()
        .filter(|(d, _)| *d == 0 || *d == last || (d % 5 == 4 && last - d >= 3))
        .map(|(d, day)| {
            let place = if d == 0 {
                "first"
            } else if d == last {
                "last"
            } else {
                "middle"
            };
            let left = (d as f64 + 0.5) * 100.0 / days as f64;
            view! {
                <span class=place style=format!("left: {left:.2}%")>{day.get(5..).unwrap_or(day).to_string()}</span>
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
        <figure class="chart daily">
            <div class="plot">
                <span class="y-max" aria-hidden="true">{top.to_string()}</span>
                <svg data-testid="daily-chart" viewBox=format!("0 0 {DAILY_W} {DAILY_H}") preserveAspectRatio="none"
                    role="img" aria-label=format!("最近 30 天每天的张数，按上游叠起来；纵轴最高 {top} 张")>
                    <line x1="0" y1=DAILY_H x2=DAILY_W y2=DAILY_H class="axis-line" vector-effect="non-scaling-stroke"/>
                    {bars}
                </svg>
            </div>
            <div class="x-labels" aria-hidden="true">{labels}</div>
            <figcaption>{legend}<span>{format!("共 {} 张 · 纵轴最高 {top} 张", totals.iter().sum::<u64>())}</span></figcaption>
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

/// 一行横条：`fraction`（0–1）那么长，`marker` 是竖线的位置（额度，0–1）。
/// 成功率的条标 `data-point`，张数的条标 `data-bar`（测试按它们数）。
fn bar(
    fraction: f64,
    fill: &'static str,
    is_rate: bool,
    marker: Option<f64>,
    label: String,
) -> impl IntoView {
    let width = format!("{:.2}", fraction.clamp(0.0, 1.0) * 100.0);
    view! {
        <svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" role="img" aria-label=label>
            <rect x="0" y="0" width="100" height="10" class="track"/>
            {if is_rate {
                view! { <rect data-point="" x="0" y="0" width=width height="10" fill=fill/> }.into_any()
            } else {
                view! { <rect data-bar="" x="0" y="0" width=width height="10" fill=fill/> }.into_any()
            }}
            {marker.map(|m| {
                let x = format!("{:.2}", m.clamp(0.0, 1.0) * 100.0);
                view! { <line x1=x.clone() y1="0" x2=x y2="10" class="budget-line" vector-effect="non-scaling-stroke"/> }
            })}
        </svg>
    }
}

/// 最近 24 小时各上游：成功率（横条）、中位与 95 分位耗时、尝试、张数、失败、重试、回退。
/// 每个上游一行：名称、横条、百分比，数字在下一行（窄屏上自动换行）。
#[component]
pub fn UpstreamBars(stats: Vec<UpstreamStats>) -> impl IntoView {
    if stats.is_empty() {
        return view! { <p class="empty">"最近 24 小时没有请求。"</p> }.into_any();
    }
    let rows = stats
        .iter()
        .map(|s| {
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
                "中位 {} · 95% {} · 尝试 {} · {} 张 · 失败 {failures} · 重试 {} · 回退 {}",
                ms(s.p50_ms),
                ms(s.p95_ms),
                s.requests,
                s.images,
                s.retries,
                s.fallbacks
            );
            let percent = format!("{:.1}%", rate * 100.0);
            view! {
                <div class="bar-row" data-upstream=s.name.clone()>
                    <span class="name" title=s.name.clone()>{s.name.clone()}</span>
                    {bar(rate, fill, true, None, format!("{} 的成功率 {percent}", s.name))}
                    <span class="value">{percent.clone()}</span>
                    <span class="detail">{detail}</span>
                </div>
            }
        })
        .collect_view();
    view! {
        <div class="bar-rows" data-testid="upstream-chart">{rows}</div>
    }
    .into_any()
}

/// 今天各调用方的张数；设了每日额度的画出额度线。
#[component]
pub fn ClientBars(clients: Vec<ClientToday>) -> impl IntoView {
    if clients.is_empty() {
        return view! { <p class="empty">"今天还没有生成。"</p> }.into_any();
    }
    let top = nice_max(
        clients
            .iter()
            .map(|c| c.images.max(c.budget as u64))
            .max()
            .unwrap_or(0),
    ) as f64;
    let rows = clients
        .iter()
        .map(|c| {
            let label = if c.budget > 0 {
                format!("{} / {} 张", c.images, c.budget)
            } else {
                format!("{} 张（不限）", c.images)
            };
            let over = c.budget > 0 && c.images >= c.budget as u64;
            let marker = (c.budget > 0).then(|| c.budget as f64 / top);
            view! {
                <div class="bar-row" data-client=c.client.clone()>
                    <span class="name" title=c.client.clone()>{c.client.clone()}</span>
                    {bar(
                        c.images as f64 / top,
                        if over { "#d9534f" } else { "#3b6cf6" },
                        false,
                        marker,
                        format!("{}：{label}", c.client),
                    )}
                    <span class="value">{label.clone()}</span>
                </div>
            }
        })
        .collect_view();
    view! {
        <div class="bar-rows" data-testid="client-chart">{rows}</div>
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
    // 窄屏上表格在自己的框里横向滚动，页面不横向滚动。
    view! {
        <div class="table-scroll" role="region" aria-label="上游与密钥（此刻）" tabindex="0">
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
        </div>
    }
}
