#!/usr/bin/env python3
"""每个页面第一次打开时要下载的 JS、WASM 与样式表（按服务器即时压缩的 gzip 计），以及拆分结构与预算的核对。

用法（先 `cargo leptos build --release --split`）：
  python3 scripts/wasm-per-page.py [pkg 目录]                              每页的字节数（默认 target/site/pkg）
  python3 scripts/wasm-per-page.py --check site-budget.toml [pkg 目录]     同上，并核对结构与预算：超了以非零状态退出
  python3 scripts/wasm-per-page.py --structure site-budget.toml [pkg 目录] 只核对拆分的结构（调试版站点也适用，CI 用）

一页要下载的 = 主 JS + 拆分的加载器 JS + 主 WASM + 该页 island 的各个块（按拆分器写的 __wasm_split_manifest.json）+ 样式表。
清单的格式（cargo-leptos 0.3.10 的 src/wasm_split_tools/mod.rs 写出 wasm_split_cli_support 的 prefetch_map）：
  {"<island 的 snake_case>_loader_<哈希>": ["chunk_7", …, "split_<同一个键>"], …}
值是块的文件名（不带 .wasm，相对于 pkg 目录）。服务器按同一张表在页面的 <head> 里预加载这些块（src/web/preload.rs）。

字节数按 gzip 第 6 级（服务器即时压缩的默认级别；浏览器要 brotli 时服务器给 brotli，通常更小）计，
不含 HTML 与响应头——真正的“线上字节”由基准测试在 Chromium 里量（bash bench/run.sh 的 c 节），同一个预算文件。
"""
import gzip
import json
import os
import re
import sys
import tomllib

OUTPUT = "drafting-factory"
MANIFEST = "__wasm_split_manifest.json"
LOADER_JS = "__wasm_split.______________________.js"


def usage() -> int:
    print(__doc__, file=sys.stderr)
    return 2


def load_pages(budget_path: str) -> list[dict]:
    with open(budget_path, "rb") as f:
        pages = tomllib.load(f).get("page", [])
    for page in pages:
        for key in ("path", "island", "max_wire_bytes"):
            if key not in page:
                raise SystemExit(f"{budget_path}：页面 {page} 缺少 {key}")
    return pages


def default_pages() -> list[dict]:
    """没给预算文件时：用仓库里的那份（只取页面与 island）。"""
    here = os.path.dirname(os.path.abspath(__file__))
    return load_pages(os.path.join(here, "..", "site-budget.toml"))


def loader_key(manifest: dict, island: str) -> list[str]:
    """清单里 `island` 的加载函数的键（`<island>_loader_<数字>`）。"""
    pattern = re.compile(re.escape(island) + r"_loader_[0-9]+")
    return [k for k in manifest if pattern.fullmatch(k)]


def structure_problems(pkg: str, manifest: dict, pages: list[dict]) -> list[str]:
    """拆分结构的问题（调试版与发布版都适用）。"""
    problems = []
    for name in (f"{OUTPUT}.js", f"{OUTPUT}.wasm", LOADER_JS):
        if not os.path.isfile(os.path.join(pkg, name)):
            problems.append(f"缺少 {name}")
    loader_js = ""
    if os.path.isfile(os.path.join(pkg, LOADER_JS)):
        with open(os.path.join(pkg, LOADER_JS), encoding="utf-8") as f:
            loader_js = f.read()
    claimed = set()
    for page in pages:
        keys = loader_key(manifest, page["island"])
        if len(keys) != 1:
            problems.append(
                f"{page['path']}：清单里 {page['island']}_loader_<哈希> 有 {len(keys)} 个（应恰好 1 个；island 改名了？）"
            )
            continue
        key = keys[0]
        claimed.add(key)
        files = manifest[key]
        own = f"split_{key}"
        if own not in files:
            problems.append(f"{page['path']}：{key} 的文件里没有它自己的模块 {own}")
        for name in files:
            if not os.path.isfile(os.path.join(pkg, f"{name}.wasm")):
                problems.append(f"{page['path']}：清单列出的 {name}.wasm 不在 {pkg}")
            if name.startswith("split_") and name != own:
                problems.append(f"{page['path']}：要下载别的 island 的模块 {name}")
        if f"__wasm_split_load_{key}" not in loader_js:
            problems.append(f"{page['path']}：加载器 JS 里没有 __wasm_split_load_{key}")
    for key in manifest:
        if key not in claimed and re.fullmatch(r"[a-z0-9_]+_loader_[0-9]+", key):
            problems.append(f"清单里的 {key} 不属于预算文件里的任何页面（新 island 要在 site-budget.toml 加一页）")
    return problems


def main(argv: list[str]) -> int:
    mode, budget_path = "report", None
    args = list(argv)
    if args and args[0] in ("--check", "--structure"):
        if len(args) < 2:
            return usage()
        mode, budget_path = args[0][2:], args[1]
        args = args[2:]
    if len(args) > 1 or (args and args[0].startswith("-")):
        return usage()
    pkg = args[0] if args else "target/site/pkg"
    pages = load_pages(budget_path) if budget_path else default_pages()

    manifest_path = os.path.join(pkg, MANIFEST)
    if not os.path.exists(manifest_path):
        print(f"{manifest_path} 不存在：先用 --split 构建站点（cargo leptos build --release --split）", file=sys.stderr)
        return 1
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)

    problems = structure_problems(pkg, manifest, pages)
    if mode == "structure":
        for p in problems:
            print(f"拆分结构有问题：{p}", file=sys.stderr)
        if not problems:
            print(f"拆分结构正常：{len(pages)} 个页面各自恰好一个加载函数，清单列出的 {sum(len(v) for v in manifest.values())} 个文件都在")
        return 1 if problems else 0
    if problems:
        for p in problems:
            print(f"拆分结构有问题：{p}", file=sys.stderr)
        return 1

    cache: dict[str, int] = {}

    def wire(name: str) -> int:
        if name not in cache:
            path = os.path.join(pkg, name)
            with open(path, "rb") as f:
                cache[name] = len(gzip.compress(f.read(), 6, mtime=0))
        return cache[name]

    css = f"{OUTPUT}.css" if os.path.isfile(os.path.join(pkg, f"{OUTPUT}.css")) else None
    common = [f"{OUTPUT}.js", LOADER_JS, f"{OUTPUT}.wasm"] + ([css] if css else [])
    print(f"主 WASM {wire(f'{OUTPUT}.wasm'):,} B；主 JS + 加载器 JS {wire(f'{OUTPUT}.js') + wire(LOADER_JS):,} B"
          + (f"；样式表 {wire(css):,} B" if css else "") + "（gzip -6）")
    print(f"{'页面':<10} {'JS+WASM+CSS':>12} {'其中 WASM':>10} {'文件数':>6} {'预算':>9}")
    over = []
    for page in pages:
        key = loader_key(manifest, page["island"])[0]
        chunks = [f"{name}.wasm" for name in manifest[key]]
        files = common + chunks
        total = sum(wire(f) for f in files)
        wasm = sum(wire(f) for f in files if f.endswith(".wasm"))
        budget = int(page["max_wire_bytes"])
        mark = "" if total <= budget else "  超出预算"
        print(f"{page['path']:<10} {total:>12,} {wasm:>10,} {len(files):>6} {budget:>9,}{mark}")
        if total > budget:
            over.append(f"{page['path']}：{total:,} B > {budget:,} B")
    everything = sum(wire(f) for f in os.listdir(pkg) if f.endswith(".wasm"))
    print(f"全部 WASM（所有页面合计）：{everything:,} B")
    if mode == "check" and over:
        print("超出 site-budget.toml 的预算：\n- " + "\n- ".join(over), file=sys.stderr)
        return 1
    if mode == "check":
        print("每页都在预算之内（按文件估算；含 HTML 与响应头的线上字节见基准测试 c 节）")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
