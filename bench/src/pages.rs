//! c 节的每页计时：在 Chromium 里逐页第一次打开（`bench/pages.mjs`：Playwright + CDP），量水合完成之前经网络收到的
//! 字节、请求数、水合用时（不限速与 Slow 4G），与预算文件 `site-budget.toml` 比。页面、水合完成的标志与预算都取自
//! 那个文件（服务器的预加载表与 `scripts/wasm-per-page.py` 也按它）。

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Slow 4G 的往返时间（毫秒）与下行带宽（比特/秒），与 bench/pages.mjs 里的一样。
pub const SLOW_RTT_MS: f64 = 150.0;
pub const SLOW_DOWN_BPS: f64 = 1_600_000.0;
/// 目标（issue #35）：Slow 4G 上每页在“它的 WASM 字节的传输时间 + 2 个往返”的 1.15 倍之内水合。
pub const RATIO_GOAL: f64 = 1.15;

/// 一个页面的结果（bench/pages.mjs 写出的 JSON，加上预算）。
#[derive(Debug, Deserialize)]
pub struct PageTiming {
    pub path: String,
    /// 水合完成之前开始的请求数。
    pub requests: u64,
    /// 这些请求在线上收到的字节（含响应头；CDP 的 encodedDataLength）。
    pub wire_bytes: u64,
    /// 其中 .wasm 的字节与文件数。
    pub wasm_bytes: u64,
    pub wasm_files: u64,
    /// WASM 的 Content-Encoding（br、gzip；没有压缩时为“无”）。
    pub encoding: String,
    /// 水合用时（导航开始到水合完成的标志出现），中位数，毫秒。
    pub fast_ms: f64,
    pub slow_ms: f64,
    /// 同一个浏览器上下文里再次打开时经网络下载的 WASM 字节（缓存命中与 304 不算）。
    pub repeat_wasm_bytes: u64,
    /// 预算（site-budget.toml 的 max_wire_bytes）。
    #[serde(default)]
    pub max_wire_bytes: u64,
}

impl PageTiming {
    /// Slow 4G 上这页的 WASM 字节传完要的时间加两个往返（毫秒）。
    pub fn floor_ms(&self) -> f64 {
        self.wasm_bytes as f64 * 8.0 / SLOW_DOWN_BPS * 1000.0 + 2.0 * SLOW_RTT_MS
    }

    /// Slow 4G 上的水合用时 ÷ 上面的下限。
    pub fn ratio(&self) -> f64 {
        self.slow_ms / self.floor_ms().max(1.0)
    }

    pub fn within_budget(&self) -> bool {
        self.max_wire_bytes == 0 || self.wire_bytes <= self.max_wire_bytes
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// 预算文件里的页面：（地址，水合完成的标志，预算）。
fn budget_pages() -> anyhow::Result<Vec<(String, String, u64)>> {
    let path = repo().join("site-budget.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("读不了 {}：{e}", path.display()))?;
    let table: toml::Table = text.parse()?;
    let pages = table
        .get("page")
        .and_then(|p| p.as_array())
        .ok_or_else(|| anyhow::anyhow!("{} 里没有 [[page]]", path.display()))?;
    pages
        .iter()
        .map(|p| {
            let field = |key: &str| p.get(key).and_then(|v| v.as_str()).map(str::to_string);
            let (Some(path), Some(ready)) = (field("path"), field("ready")) else {
                anyhow::bail!("site-budget.toml 的页面缺少 path 或 ready：{p}");
            };
            let max = p
                .get("max_wire_bytes")
                .and_then(|v| v.as_integer())
                .unwrap_or(0)
                .max(0) as u64;
            Ok((path, ready, max))
        })
        .collect()
}

/// 对着 `base`（一个正在运行的服务器）逐页计时。
pub async fn measure(base: &str) -> anyhow::Result<Vec<PageTiming>> {
    let pages = budget_pages()?;
    eprintln!(
        "  在 Chromium 里逐页第一次打开（{} 页，不限速与 Slow 4G）",
        pages.len()
    );
    let arg = serde_json::to_string(
        &pages
            .iter()
            .map(|(path, ready, _)| serde_json::json!({"path": path, "ready": ready}))
            .collect::<Vec<_>>(),
    )?;
    let out = tempfile::NamedTempFile::new()?;
    let status = tokio::process::Command::new("node")
        .arg(repo().join("bench/pages.mjs"))
        .arg(base)
        .arg(&arg)
        .arg(out.path())
        .status()
        .await
        .map_err(|e| {
            anyhow::anyhow!("无法运行 node：{e}（先运行 bash scripts/install-tools.sh --e2e）")
        })?;
    anyhow::ensure!(status.success(), "bench/pages.mjs 失败：{status}");
    let mut timings: Vec<PageTiming> = serde_json::from_slice(&std::fs::read(out.path())?)?;
    for timing in &mut timings {
        timing.max_wire_bytes = pages
            .iter()
            .find(|(path, _, _)| *path == timing.path)
            .map(|(_, _, max)| *max)
            .unwrap_or(0);
    }
    anyhow::ensure!(
        timings.len() == pages.len(),
        "bench/pages.mjs 只给出了 {} 页的结果（应为 {}）",
        timings.len(),
        pages.len()
    );
    Ok(timings)
}

/// 超出预算的页面（基准测试写完报告后以非零状态退出）。
pub fn over_budget(timings: &[PageTiming]) -> Vec<String> {
    timings
        .iter()
        .filter(|t| !t.within_budget())
        .map(|t| {
            format!(
                "{}：第一次打开线上 {} 字节，超出 site-budget.toml 的 {} 字节",
                t.path, t.wire_bytes, t.max_wire_bytes
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_the_wasm_transfer_time_plus_two_round_trips() {
        let page = PageTiming {
            path: "/".into(),
            requests: 20,
            wire_bytes: 330_000,
            wasm_bytes: 200_000,
            wasm_files: 12,
            encoding: "br".into(),
            fast_ms: 500.0,
            slow_ms: 1_495.0,
            repeat_wasm_bytes: 0,
            max_wire_bytes: 330_000,
        };
        // 200,000 字节 × 8 ÷ 1.6 Mbit/s = 1 秒，加两个 150 ms 的往返。
        assert!((page.floor_ms() - 1_300.0).abs() < 1e-9);
        assert!((page.ratio() - 1.15).abs() < 1e-9);
        assert!(page.within_budget());
        assert!(over_budget(&[page]).is_empty());
    }

    #[test]
    fn the_budget_file_names_every_page_with_a_ready_selector() {
        let pages = budget_pages().unwrap();
        assert!(pages.iter().any(|(path, _, _)| path == "/"));
        for (path, ready, max) in &pages {
            assert!(ready.contains("data-hydrated"), "{path}：{ready}");
            assert!(*max > 0, "{path}");
        }
    }
}
