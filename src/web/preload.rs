//! 每页的 WASM 预加载：页面的 island 都是 `#[island(lazy)]`，它的代码在拆分构建（`cargo leptos build --split`）
//! 产生的几个块里。浏览器本来要等主 WASM 下载、实例化、开始水合，才由加载器去要这些块——一页的字节分两段走完，
//! 慢网络上多等一轮往返与主 WASM 的下载时间。服务器知道每个路径是哪个 island：在 `<head>` 里给出
//! `<link rel="modulepreload">`（拆分的加载器 JS）与 `<link rel="preload" as="fetch" type="application/wasm" crossorigin>`
//! （这个 island 的每个块），让它们与主 WASM 一起下载。
//!
//! 清单 `site/pkg/__wasm_split_manifest.json` 由 cargo-leptos 的拆分器写出（cargo-leptos 0.3.10
//! `src/wasm_split_tools/mod.rs` 把 `wasm_split_cli_support` 0.2.3 的 `prefetch_map` 写成 JSON）：
//! `{ "<island 的 snake_case>_loader_<哈希>": ["chunk_7", "chunk_8", …, "split_<同一个键>"] }`——
//! 键是 island 的加载函数（`Studio` → `studio_loader_<哈希>`，哈希随源码位置变），值是这个 island 要的块的文件名
//! （不带 `.wasm`，相对于 pkg 目录；空块不列出）。加载器 JS 里 `fetch(new URL("./chunk_7.wasm", import.meta.url))`
//! 正是同一批文件：`fetch` 的默认模式是 cors、凭据 same-origin，与带 `crossorigin` 的 `as="fetch"` 预加载一致，
//! 浏览器直接用预加载的响应，不会再下载一次（端到端测试 `wasm-split.spec.ts` 核对）。
//!
//! 启动时读一次清单；没有清单（没有构建站点、或测试用的临时站点）时不加预加载。

use std::collections::HashMap;
use std::path::Path;

/// 拆分器写出的清单（见模块说明）。
pub const SPLIT_MANIFEST: &str = "__wasm_split_manifest.json";
/// 拆分器写出的加载器 JS（主 JS 静态导入它；文件名是 cargo-leptos 固定的，不开 hash-files 时不变）。
pub const SPLIT_LOADER_JS: &str = "__wasm_split.______________________.js";

/// 每个页面的路径与它的 island（函数名的 snake_case；拆分器按它给加载函数起名 `{island}_loader_{哈希}`）。
/// 与仓库根目录 `site-budget.toml` 的 `[[page]]` 一致（单元测试核对）；加页面时两处一起改。
pub const PAGE_ISLANDS: &[(&str, &str)] = &[
    ("/", "studio"),
    ("/gallery", "gallery"),
    ("/prompts", "prompt_library"),
    ("/settings", "settings"),
    ("/usage", "usage"),
    ("/login", "login_form"),
];

/// 一个页面要预加载的文件（站点内的绝对路径，例如 `/pkg/chunk_7.wasm`）。
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PagePreload {
    /// 拆分的加载器 JS。
    pub loader_js: String,
    /// 这个页面的 island 的各个 WASM 块（清单里的顺序）。
    pub wasm: Vec<String>,
}

/// 每个页面路径要预加载的文件（启动时由清单算好）。
#[derive(Debug, Clone, Default)]
pub struct Preloads {
    pages: HashMap<&'static str, PagePreload>,
}

impl Preloads {
    /// 读站点的清单。读不到（没有构建站点）或不是 JSON 时为空：页面照常，只是没有预加载（不是启动失败——
    /// 站点是不是拆分构建由 `server::check_site_is_split` 把关）。
    pub fn load(site_root: &Path, pkg_dir: &str) -> Self {
        let path = site_root.join(pkg_dir).join(SPLIT_MANIFEST);
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Self::default();
        };
        match serde_json::from_str::<HashMap<String, Vec<String>>>(&text) {
            Ok(manifest) => Self::from_manifest(&manifest, pkg_dir),
            Err(e) => {
                tracing::warn!(path = %path.display(), "拆分清单不是预期的格式，页面不加 WASM 预加载：{e}");
                Self::default()
            }
        }
    }

    /// 由清单算出每个页面的预加载。清单里找不到某个页面的 island（改了名而没改 `PAGE_ISLANDS`）时记一条警告，
    /// 那个页面不加预加载（照样能用，只是慢网络上慢一些）。
    pub fn from_manifest(manifest: &HashMap<String, Vec<String>>, pkg_dir: &str) -> Self {
        let pkg = pkg_dir.trim_matches('/');
        let mut pages = HashMap::new();
        for &(path, island) in PAGE_ISLANDS {
            let keys: Vec<&String> = manifest
                .keys()
                .filter(|k| is_loader_of(k, island))
                .collect();
            let [key] = keys.as_slice() else {
                tracing::warn!(
                    page = path,
                    island,
                    found = keys.len(),
                    "拆分清单里这个页面的 island 的加载函数不是恰好一个，这个页面不加 WASM 预加载"
                );
                continue;
            };
            pages.insert(
                path,
                PagePreload {
                    loader_js: format!("/{pkg}/{SPLIT_LOADER_JS}"),
                    wasm: manifest[*key]
                        .iter()
                        .map(|file| format!("/{pkg}/{file}.wasm"))
                        .collect(),
                },
            );
        }
        Self { pages }
    }

    /// 请求路径（不含查询串）对应的页面的预加载；末尾的 `/` 不计。
    pub fn for_path(&self, path: &str) -> Option<&PagePreload> {
        let trimmed = path.trim_end_matches('/');
        let path = if trimmed.is_empty() { "/" } else { trimmed };
        self.pages.get(path)
    }
}

/// 清单的键 `key` 是不是 `island` 的加载函数：`{island}_loader_` 之后全是数字（哈希）。
fn is_loader_of(key: &str, island: &str) -> bool {
    key.strip_prefix(island)
        .and_then(|rest| rest.strip_prefix("_loader_"))
        .is_some_and(|hash| !hash.is_empty() && hash.bytes().all(|b| b.is_ascii_digit()))
}

/// 路径为 `path` 的页面要预加载的链接，由外壳放进 `<head>`（不是页面的路径什么也不给）。
pub fn links(preloads: &Preloads, path: &str) -> impl leptos::IntoView {
    use leptos::prelude::*;
    preloads.for_path(path).cloned().map(|page| {
        let chunks = page
            .wasm
            .into_iter()
            .map(|href| {
                view! {
                    <link rel="preload" href=href r#as="fetch" r#type="application/wasm" crossorigin=""/>
                }
            })
            .collect_view();
        view! {
            <link rel="modulepreload" href=page.loader_js/>
            {chunks}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> HashMap<String, Vec<String>> {
        serde_json::from_str(
            r#"{
                "studio_loader_4489902858257860202": ["chunk_7", "chunk_8", "split_studio_loader_4489902858257860202"],
                "gallery_loader_16386924426426411846": ["chunk_7", "chunk_9", "split_gallery_loader_16386924426426411846"],
                "settings_loader_17637012498637314028": ["split_settings_loader_17637012498637314028"]
            }"#,
        )
        .unwrap()
    }

    #[test]
    fn each_page_preloads_only_its_own_island_s_chunks() {
        let preloads = Preloads::from_manifest(&manifest(), "pkg");
        let studio = preloads.for_path("/").unwrap();
        assert_eq!(studio.loader_js, format!("/pkg/{SPLIT_LOADER_JS}"));
        assert_eq!(
            studio.wasm,
            [
                "/pkg/chunk_7.wasm",
                "/pkg/chunk_8.wasm",
                "/pkg/split_studio_loader_4489902858257860202.wasm"
            ]
        );
        let gallery = preloads.for_path("/gallery/").unwrap();
        assert!(gallery.wasm.contains(&"/pkg/chunk_9.wasm".to_string()));
        assert!(!gallery.wasm.iter().any(|f| f.contains("studio")));
        // 清单里没有的 island：不加预加载；不是页面的路径也没有。
        assert!(preloads.for_path("/prompts").is_none());
        assert!(preloads.for_path("/files/abc").is_none());
    }

    #[test]
    fn a_loader_key_is_the_island_name_then_a_numeric_hash() {
        assert!(is_loader_of("studio_loader_123", "studio"));
        assert!(!is_loader_of("studio_loader_", "studio"));
        assert!(!is_loader_of("studio_loader_12x", "studio"));
        // `login_form` 的键不能算成别的 island 的。
        assert!(!is_loader_of("login_form_loader_1", "login"));
        assert!(!is_loader_of("prompt_library_loader_1", "library"));
    }

    #[test]
    fn no_manifest_means_no_preloads() {
        let dir = tempfile::tempdir().unwrap();
        let preloads = Preloads::load(dir.path(), "pkg");
        assert!(preloads.for_path("/").is_none());
    }

    /// `PAGE_ISLANDS` 与预算文件 site-budget.toml 的页面一一对应（脚本与基准测试按预算文件找页面与 island）。
    #[test]
    fn the_page_table_matches_the_budget_file() {
        let budget: toml::Table = include_str!("../../site-budget.toml").parse().unwrap();
        let listed: Vec<(String, String)> = budget["page"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["path"].as_str().unwrap().to_string(),
                    p["island"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let table: Vec<(String, String)> = PAGE_ISLANDS
            .iter()
            .map(|(p, i)| (p.to_string(), i.to_string()))
            .collect();
        assert_eq!(listed, table);
    }
}
