#!/usr/bin/env python3
"""每个页面第一次打开时要下载的 WASM（gzip -9 之后的字节数）。

用法：先 `cargo leptos build --release --split`，再 `python3 scripts/wasm-per-page.py [target/site/pkg]`。
一页要下载的 = 主 WASM + 该页 island 的 loader + loader 用到的共用块（按拆分器写的 __wasm_split_manifest.json）。
"""
import gzip
import json
import os
import sys

PAGES = {
    "/": "studio_loader",
    "/gallery": "gallery_loader",
    "/prompts": "prompt_library_loader",
    "/settings": "settings_loader",
    "/usage": "usage_loader",
    "/login": "login_form_loader",
}


def main() -> int:
    pkg = sys.argv[1] if len(sys.argv) > 1 else "target/site/pkg"
    manifest_path = os.path.join(pkg, "__wasm_split_manifest.json")
    if not os.path.exists(manifest_path):
        print(f"{manifest_path} 不存在：先用 --split 构建站点", file=sys.stderr)
        return 1
    with open(manifest_path) as f:
        manifest = json.load(f)

    def gz(name: str) -> int:
        with open(os.path.join(pkg, name), "rb") as f:
            return len(gzip.compress(f.read(), 9))

    main_wasm = gz("drafting-factory.wasm")
    print(f"主 WASM：{main_wasm:,} B")
    for page, prefix in PAGES.items():
        loaders = [k for k in manifest if k.startswith(prefix)]
        if len(loaders) != 1:
            print(f"清单里找不到 {prefix}（island 改名了？）", file=sys.stderr)
            return 1
        files = [f"{chunk}.wasm" for chunk in manifest[loaders[0]]]
        total = main_wasm + sum(gz(f) for f in files)
        print(f"{page:<10} {total:>9,} B（{len(files) + 1} 个文件）")
    everything = sum(gz(f) for f in os.listdir(pkg) if f.endswith(".wasm"))
    print(f"全部 WASM：{everything:,} B")
    return 0


if __name__ == "__main__":
    sys.exit(main())
