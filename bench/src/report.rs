//! 把一次运行的结果写成 Markdown 表格与 SVG 图（延迟分布：本网关、直接调用、LiteLLM）。

use crate::cases::{PageFacts, Row};
use crate::faults::SoakReport;
use crate::floor::FloorRow;
use crate::memory::MemoryRow;
use crate::pages::{PageTiming, RATIO_GOAL, SLOW_DOWN_BPS, SLOW_RTT_MS};
use plotters::prelude::*;
use std::fmt::Write;
use std::path::Path;

/// 生成的文件里，这一行之后的内容是手写的（优化记录等），重新生成时原样保留。
pub const KEEP_MARKER: &str = "<!-- 以下为手写内容，重新生成时保留 -->";

pub struct Results {
    pub machine: String,
    pub command: String,
    pub overhead: Vec<Row>,
    /// 同一次运行、同一块盘上的落盘下限（a 节）。
    pub floor: Vec<FloorRow>,
    pub large: Vec<Row>,
    pub page: Option<PageFacts>,
    pub progress_ms: Vec<f64>,
    pub memory: Vec<MemoryRow>,
    pub cluster: Vec<Row>,
    pub soak: Option<SoakReport>,
    /// 只跑了其中几部分（`--only`）：写文件时只换掉这几节，其余各节保留上次的结果。
    pub partial: bool,
}

const DIRECT: &str = "直接调用演示上游";
const OURS: &str = "经本网关";
const LITELLM: &str = "经 LiteLLM";

fn find<'a>(rows: &'a [Row], target: &str, c: usize, gzip: bool) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.target == target && r.concurrency == c && r.gzip == gzip)
}

fn mb(kb: u64) -> String {
    format!("{:.0} MB", kb as f64 / 1024.0)
}

fn load_table(out: &mut String, rows: &[Row]) {
    out.push_str("| 并发 | gzip | 目标 | 成功/失败 | p50 ms | p90 ms | p99 ms | 请求/秒 | 每响应线上字节 | 被测进程 RSS 峰值 |\n");
    out.push_str("|---:|:---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {}/{} | {:.2} | {:.2} | {:.2} | {:.0} | {} | {} |",
            r.concurrency,
            if r.gzip { "是" } else { "否" },
            r.target,
            r.result.ok,
            r.result.failed,
            r.result.ms(50.0),
            r.result.ms(90.0),
            r.result.ms(99.0),
            r.result.rps(),
            r.result.wire_bytes / r.result.ok.max(1),
            r.peak_rss_kb.map(mb).unwrap_or_else(|| "—".into())
        );
    }
}

/// 每个并发（与 gzip 设置）下：本网关与 LiteLLM 相对直接调用多出的 p50/p99，以及两者之比。
fn overhead_table(out: &mut String, rows: &[Row]) {
    out.push_str("| 并发 | gzip | 本网关开销 p50 / p99 ms | LiteLLM 开销 p50 / p99 ms | p50 开销之比（LiteLLM ÷ 本网关） | 吞吐之比（本网关 ÷ LiteLLM） |\n");
    out.push_str("|---:|:---:|---:|---:|---:|---:|\n");
    let mut keys: Vec<(usize, bool)> = rows.iter().map(|r| (r.concurrency, r.gzip)).collect();
    keys.dedup();
    for (c, gzip) in keys {
        let Some(direct) = find(rows, DIRECT, c, gzip) else {
            continue;
        };
        let added = |r: &Row, q: f64| r.result.ms(q) - direct.result.ms(q);
        let ours = find(rows, OURS, c, gzip);
        let lite = find(rows, LITELLM, c, gzip);
        let fmt = |r: Option<&Row>| {
            r.map(|r| format!("{:.2} / {:.2}", added(r, 50.0), added(r, 99.0)))
                .unwrap_or_else(|| "—".into())
        };
        let ratio = match (ours, lite) {
            (Some(o), Some(l)) => format!("{:.1}×", added(l, 50.0) / added(o, 50.0).max(0.01)),
            _ => "—".into(),
        };
        let tput = match (ours, lite) {
            (Some(o), Some(l)) => format!("{:.1}×", o.result.rps() / l.result.rps().max(1e-9)),
            _ => "—".into(),
        };
        let _ = writeln!(
            out,
            "| {c} | {} | {} | {} | {ratio} | {tput} |",
            if gzip { "是" } else { "否" },
            fmt(ours),
            fmt(lite)
        );
    }
}

pub fn markdown(r: &Results) -> String {
    let mut out = String::new();
    out.push_str("# 基准测试结果\n\n");
    out.push_str("> 本文件由基准程序生成（命令见下）。数字是**同一次运行里**测得的，请看比值，不要当作绝对承诺：\n> 机器是共享的 2 核虚拟机，负载发生器与被测进程在同一台机器上抢 CPU。\n\n");
    let _ = writeln!(
        out,
        "## 机器与命令\n\n{}\n\n```\n{}\n```\n",
        r.machine, r.command
    );

    if !r.overhead.is_empty() {
        out.push_str("## a. 网关开销（小图）\n\n`POST /v1/images/generations`，演示上游延迟 0、应答 64×64 的小图（`--max-side 64`）。三方对着同一个演示上游：\n直接调用（Gemini 原生协议）、经本网关（OpenAI 协议，`b64_json`，**每张都原子写盘并写 SQLite 记录**）、经 LiteLLM 代理\n（原生 Gemini 提供方 `gemini/gemini-2.5-flash-image`，`api_base` 指向演示上游；一个 worker、默认设置；它不存图）。\n开销 = 该方的分位延迟 − 直接调用的同一分位延迟。\n\n");
        overhead_table(&mut out, &r.overhead);
        out.push('\n');
        if !r.floor.is_empty() {
            floor_tables(&mut out, &r.floor, &r.overhead);
        }
        load_table(&mut out, &r.overhead);
        out.push_str("\n![延迟分布](benchmarks.svg)\n\n");
    }
    if !r.large.is_empty() {
        out.push_str("## b. 16 个并发的大图\n\n演示上游的正式图换成约 8 MB 的噪点 PNG（base64 约 11 MB），16 个并发。分别以不声明与声明 `Accept-Encoding: gzip` 各跑一轮。\nRSS 峰值是每 20 ms 采样被测进程（LiteLLM 含子进程）得到的最大值。\n\n");
        overhead_table(&mut out, &r.large);
        out.push('\n');
        load_table(&mut out, &r.large);
        out.push('\n');
    }
    if let Some(p) = &r.page {
        let _ = writeln!(
            out,
            "## c. 页面与进程\n\n| 项目 | 数值 |\n|---|---:|\n| 工作台 `/` 服务端渲染（数据库 {} 张图；中位数 / p90） | {:.2} / {:.2} ms |\n| 图库 `/gallery` 服务端渲染（首屏 48 张；中位数 / p90） | {:.2} / {:.2} ms |\n| 站点的全部 `.wasm`（所有页面合计，主 WASM 与拆分出的块）原始 / gzip -9 | {} / {} 字节 |\n| 站点的全部 JS 原始 / gzip -9 | {} / {} 字节 |\n| 空闲 RSS（带 {} 张图启动后 2 秒） | {} |\n| 启动到 `/healthz` 就绪：空存储 / {} 张图 | {:.0} / {:.0} ms |\n| 服务器二进制 | {} 字节 |\n",
            p.images, p.studio_ms.0, p.studio_ms.1, p.gallery_ms.0, p.gallery_ms.1,
            p.wasm_bytes, p.wasm_gzip, p.js_bytes, p.js_gzip, p.images, mb(p.idle_rss_kb),
            p.images, p.startup_empty_ms, p.startup_full_ms, p.binary_bytes
        );
        if !p.pages.is_empty() {
            pages_table(&mut out, &p.pages);
        }
    }
    if !r.progress_ms.is_empty() {
        let v = &r.progress_ms;
        let _ = writeln!(
            out,
            "## d. 进度推送延迟\n\n任务的状态或阶段在服务器上变化（`changed_at_ms`）到 WebSocket 客户端收到的时间（同机时钟；5 批、每批 4 张，演示上游延迟 300–900 ms），{} 次转换：中位数 {:.0} ms，p90 {:.0} ms，最大 {:.0} ms。\n",
            v.len(),
            v[v.len() / 2],
            v[v.len() * 9 / 10],
            v[v.len() - 1]
        );
    }
    if !r.memory.is_empty() {
        memory_table(&mut out, &r.memory);
    }
    if !r.cluster.is_empty() {
        cluster_table(&mut out, &r.cluster);
    }
    if let Some(s) = &r.soak {
        out.push_str("## 故障浸泡\n\n经本服务器（两个上游：会出故障的 flaky 与健康的后备 healthy；单次尝试时限 2 秒、总时限 20 秒），\n演示上游按阶段注入故障。重试与改用后备的次数来自服务器的 `/metrics`。\n\n");
        out.push_str("| 阶段 | 请求 | 成功 | 失败 | 中断 | 成功率 | p99 ms | 最长 ms | 重试 | 改用后备 |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for p in &s.phases {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:.2}% | {:.0} | {:.0} | {} | {} |",
                p.name,
                p.requests,
                p.saved,
                p.failed,
                p.interrupted,
                100.0 * p.saved as f64 / p.requests.max(1) as f64,
                p.p99_ms,
                p.max_ms,
                p.retries,
                p.fallbacks
            );
        }
        out.push_str("\n失败原因举例：\n\n");
        for p in s.phases.iter().filter(|p| !p.sample_errors.is_empty()) {
            for e in &p.sample_errors {
                let _ = writeln!(out, "- {}：{}", p.name, e);
            }
        }
        let _ = writeln!(
            out,
            "\n存储核对（{} 条记录、{} 个文件）：{}\n",
            s.checked_rows,
            s.checked_files,
            if s.problems.is_empty() {
                "没有半成品文件、没有重复、每个成功的文件都在且完整、每个失败都有中文原因。"
                    .to_string()
            } else {
                format!(
                    "**发现 {} 个问题**：\n\n- {}",
                    s.problems.len(),
                    s.problems.join("\n- ")
                )
            }
        );
    }
    out
}

/// a 节的落盘下限与“本网关开销 = 下限 + x”。
fn floor_tables(out: &mut String, floor: &[FloorRow], overhead: &[Row]) {
    let bytes = floor[0].bytes;
    let _ = writeln!(
        out,
        "### 落盘下限（同一次运行、同一块盘）\n\n本网关每张图都持久化：同目录临时文件 → 写入 {bytes} 字节（与上面本网关存的图一样大）→ fsync → 改名 → \
         目录 fsync → SQLite 提交（WAL，synchronous=FULL）。这里不经 HTTP、不解析不编码，只做这几步（bench/src/floor.rs）；\
         并发 16 时目录 fsync 与事务按组提交，与服务器的做法相同。这是本网关在这块盘上的下限。\n"
    );
    out.push_str("| 并发 | 次数 | p50 ms | p99 ms | 每秒 |\n|---:|---:|---:|---:|---:|\n");
    for f in floor {
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {:.2} | {:.0} |",
            f.concurrency,
            f.ops,
            f.ms(50.0),
            f.ms(99.0),
            f.per_sec()
        );
    }
    out.push_str("\n本网关开销（p50，相对直接调用）写成“落盘下限 + x”：x 是 HTTP、鉴权、策略、编解码与排队，下限是这块盘。\n\n");
    out.push_str("| 并发 | 本网关开销 p50 ms | = 落盘下限 p50 ms + x ms | 本网关吞吐 ÷ 落盘下限的每秒次数 |\n|---:|---:|---:|---:|\n");
    for f in floor {
        let (Some(direct), Some(ours)) = (
            find(overhead, DIRECT, f.concurrency, false),
            find(overhead, OURS, f.concurrency, false),
        ) else {
            continue;
        };
        let added = ours.result.ms(50.0) - direct.result.ms(50.0);
        let _ = writeln!(
            out,
            "| {} | {:.2} | {:.2} + {:.2} | {:.2} |",
            f.concurrency,
            added,
            f.ms(50.0),
            added - f.ms(50.0),
            ours.result.rps() / f.per_sec().max(1e-9)
        );
    }
    out.push('\n');
}

/// c 节的每页表：第一次打开的线上字节、请求数、水合用时，与预算和目标比。
fn pages_table(out: &mut String, pages: &[PageTiming]) {
    let _ = writeln!(
        out,
        "### 每页第一次打开（Chromium，空库）\n\n无头 Chromium（`/usr/bin/chromium`，Playwright）逐页打开，每次一个新的浏览器上下文（空缓存），\
         等到页面的 island 水合完成（`site-budget.toml` 里每页的标志）。线上字节与请求数只算水合完成之前开始的请求\
         （CDP `Network.loadingFinished` 的 `encodedDataLength` 之和，含响应头）；预算也在 `site-budget.toml`。\
         Slow 4G 是 Lighthouse 的配置：往返 {SLOW_RTT_MS:.0} ms、下行 {:.1} Mbit/s、上行 0.75 Mbit/s（CDP `Network.emulateNetworkConditions`）。\
         下限 = 这页的 WASM 字节在 Slow 4G 上的传输时间 + 2 个往返；比值 = Slow 4G 上的水合用时 ÷ 下限，目标 ≤ {RATIO_GOAL}。\
         水合用时从导航开始计，各跑 3 次取中位数（bench/pages.mjs）。“再次打开”是同一上下文里再开一次时经网络下载的 WASM 字节。\n",
        SLOW_DOWN_BPS / 1e6
    );
    out.push_str("| 页面 | 请求 | 线上字节 | 预算 | 其中 WASM（文件数） | 压缩 | 水合 ms | Slow 4G 水合 ms | 下限 ms | 比值 | 再次打开下载的 WASM |\n");
    out.push_str("|---|---:|---:|---:|---:|:---:|---:|---:|---:|---:|---:|\n");
    for p in pages {
        let budget = if p.max_wire_bytes == 0 {
            "—".to_string()
        } else if p.within_budget() {
            format!("{}（达到）", p.max_wire_bytes)
        } else {
            format!("{}（**超出**）", p.max_wire_bytes)
        };
        let ratio = p.ratio();
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {budget} | {}（{}） | {} | {:.0} | {:.0} | {:.0} | {:.2}{} | {} 字节 |",
            p.path,
            p.requests,
            p.wire_bytes,
            p.wasm_bytes,
            p.wasm_files,
            p.encoding,
            p.fast_ms,
            p.slow_ms,
            p.floor_ms(),
            ratio,
            if ratio <= RATIO_GOAL { "" } else { "（未达到）" },
            p.repeat_wasm_bytes
        );
    }
    out.push('\n');
}

/// f. 多实例：每种部署一行；开销 = p50 − 直接调用的 p50，吞吐与“一个实例：PostgreSQL + S3”相比。
fn cluster_table(out: &mut String, rows: &[Row]) {
    use crate::cluster::{CONCURRENCY, DIRECT, ONE};
    let _ = writeln!(
        out,
        "## f. 多实例（PostgreSQL + S3）\n\n`POST /v1/images/generations`（小图，`b64_json`），{CONCURRENCY} 个并发，同一个演示上游。\n\
         “PostgreSQL + S3”：元数据在 PostgreSQL 15（本机，`fsync=off`），图片在 S3 兼容的对象存储（PyPI 的 moto 独立服务器，Python 写的、单进程），\n\
         `[cluster] shared_settings = true`；每个请求多一次库里的共用限流（GCRA），每张图是对象存储的一次 PUT。\n\
         两个实例时负载发生器把连接轮流分给两个（各 {} 个），相当于前面的负载均衡。\n\
         注意：这台机器只有 2 个核，PostgreSQL、moto、演示上游、负载发生器与一个或两个实例都在上面抢 CPU，\n\
         所以这里的“两个实例”量的是多实例的协调开销，不是加机器后的扩展能力（那要两台机器）。\n",
        CONCURRENCY / 2
    );
    out.push_str("| 部署 | 成功/失败 | p50 ms | p99 ms | 请求/秒 | p50 开销 ms | 吞吐 ÷ 一个实例（PostgreSQL + S3） |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    let direct = rows.iter().find(|r| r.target == DIRECT);
    let one = rows.iter().find(|r| r.target == ONE);
    for r in rows {
        let overhead = match direct {
            Some(d) if r.target != DIRECT => {
                format!("{:.2}", r.result.ms(50.0) - d.result.ms(50.0))
            }
            _ => "—".into(),
        };
        let ratio = match one {
            Some(o) if r.target != DIRECT => {
                format!("{:.2}×", r.result.rps() / o.result.rps().max(1e-9))
            }
            _ => "—".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {}/{} | {:.2} | {:.2} | {:.0} | {overhead} | {ratio} |",
            r.target,
            r.result.ok,
            r.result.failed,
            r.result.ms(50.0),
            r.result.ms(99.0),
            r.result.rps(),
        );
    }
    out.push('\n');
}

/// e. 大批次的内存：每种返回格式一行，带目标与是否达到。
fn memory_table(out: &mut String, rows: &[MemoryRow]) {
    let spec = rows[0].spec;
    let _ = writeln!(
        out,
        "## e. 大批次下的内存\n\n{} 个并发的 `POST /v1/images/generations`，每个 `n = {}`，演示上游每张回约 {} MB 的噪点 PNG（共 {} 张）。\n服务器用默认限额（全局并发 16）。峰值是每 20 ms 采样的 RSS，VmHWM 是内核记下的峰值，“之后”是最后一个响应之后 {} 秒的 RSS。\n目标：峰值 `url` ≤ 600 MB、`b64_json` ≤ 900 MB，之后 ≤ 100 MB。\n",
        spec.requests,
        spec.n,
        spec.png_bytes / 1_000_000,
        rows[0].images,
        spec.settle.as_secs()
    );
    out.push_str("| 格式 | 张数 | 用时 s | 空闲 RSS | RSS 峰值 | VmHWM | 之后 RSS | 目标 |\n|---|---:|---:|---:|---:|---:|---:|:---:|\n");
    for r in rows {
        let peak_target = if r.format == "url" { 600 } else { 900 } * 1024;
        let met = r.peak_kb.max(r.hwm_kb) <= peak_target && r.after_kb <= 100 * 1024;
        let _ = writeln!(
            out,
            "| `{}` | {} | {:.1} | {} | {} | {} | {} | {} |",
            r.format,
            r.images,
            r.seconds,
            mb(r.idle_kb),
            mb(r.peak_kb),
            mb(r.hwm_kb),
            mb(r.after_kb),
            if met { "达到" } else { "**未达到**" }
        );
    }
    out.push('\n');
}

/// 写出 Markdown（保留手写部分）与 SVG。
pub fn write(results: &Results, md: &Path) -> anyhow::Result<()> {
    let old = std::fs::read_to_string(md).unwrap_or_default();
    let (old_generated, kept) = old
        .split_once(KEEP_MARKER)
        .map(|(generated, tail)| (generated.to_string(), tail.to_string()))
        .unwrap_or_else(|| (String::new(), "\n".into()));
    let mut text = markdown(results);
    if results.partial && !old_generated.is_empty() {
        text = merge_sections(&old_generated, &text, &results.command);
    }
    text.push_str(KEEP_MARKER);
    text.push_str(&kept);
    if let Some(dir) = md.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(md, text)?;
    if !results.overhead.is_empty() {
        chart(&results.overhead, &md.with_extension("svg"))?;
    }
    Ok(())
}

/// 按 `## ` 标题切成几节（第一节是标题之前的开头）。
fn sections(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    for line in text.split_inclusive('\n') {
        if line.starts_with("## ") {
            out.push(String::new());
        }
        out.last_mut().expect("至少有开头一节").push_str(line);
    }
    out
}

/// 只跑了几部分时：新跑的各节换掉旧文件里同名的节（没有的追加在后面），并注明是哪条命令单独重跑的；
/// 开头、“机器与命令”与没有重跑的各节保留原样。
fn merge_sections(old: &str, new: &str, command: &str) -> String {
    let heading = |s: &str| s.lines().next().unwrap_or_default().to_string();
    let mut merged = sections(old);
    for section in sections(new).into_iter().skip(1) {
        let title = heading(&section);
        if title.starts_with("## 机器与命令") {
            continue;
        }
        let (first, rest) = section.split_once('\n').unwrap_or((&section, ""));
        let noted = format!("{first}\n\n> 这一节由 `{command}` 单独重跑（同一台机器）。\n{rest}");
        match merged.iter_mut().find(|s| heading(s) == title) {
            Some(old) => *old = noted,
            None => merged.push(noted),
        }
    }
    merged.concat()
}

/// 图里的一条线：名字、颜色、（分位序号，延迟 ms）。
type Series = (&'static str, RGBColor, Vec<(f64, f64)>);

const QUANTILES: [f64; 6] = [50.0, 75.0, 90.0, 95.0, 99.0, 99.9];

/// 每个并发一幅：横轴是分位，纵轴是延迟（对数）。
fn chart(rows: &[Row], path: &Path) -> anyhow::Result<()> {
    let mut concurrencies: Vec<usize> = rows.iter().map(|r| r.concurrency).collect();
    concurrencies.dedup();
    let width = 420 * concurrencies.len() as u32;
    let root = SVGBackend::new(path, (width.max(420), 360)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, concurrencies.len().max(1)));
    for (panel, c) in panels.iter().zip(&concurrencies) {
        let series: Vec<Series> = [
            (DIRECT, RGBColor(120, 120, 120)),
            (OURS, RGBColor(37, 99, 235)),
            (LITELLM, RGBColor(220, 38, 38)),
        ]
        .into_iter()
        .filter_map(|(name, color)| {
            let r = find(rows, name, *c, false)?;
            let points = QUANTILES
                .iter()
                .enumerate()
                .map(|(i, q)| (i as f64, r.result.ms(*q).max(0.01)))
                .collect();
            Some((name, color, points))
        })
        .collect();
        let max = series
            .iter()
            .flat_map(|s| s.2.iter().map(|p| p.1))
            .fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("并发 {c}：延迟（ms，对数）"), ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(
                -0.2f64..(QUANTILES.len() as f64 - 0.8),
                (0.05f64..max * 2.0).log_scale(),
            )?;
        chart
            .configure_mesh()
            .x_labels(QUANTILES.len())
            .x_label_formatter(&|x| {
                let i = x.round() as usize;
                QUANTILES
                    .get(i)
                    .map(|q| format!("p{q}"))
                    .unwrap_or_default()
            })
            .y_label_formatter(&|y| format!("{y}"))
            .draw()?;
        for (name, color, points) in series {
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
