#!/usr/bin/env bash
# 完整基准测试：构建发布版、核对每页的字节预算（site-budget.toml）、准备 LiteLLM（target/litellm-venv）、
# 跑全部用例，结果写进 docs/benchmarks.md（整个生成部分重写，手写部分保留）。
#   bash bench/run.sh                 # 全部（先对发布版跑一遍端到端测试）
#   bash bench/run.sh --only overhead # 只跑某几部分（overhead,large,page,progress,memory,cluster,faults）
# 只访问 127.0.0.1；每一轮都有请求数与时长上限。全部跑完约 11 分钟，另加 c 节在 Chromium 里逐页计时的几分钟
# （不含构建与首次安装；新的总时间以 docs/benchmarks.md 里那次运行为准）。
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# 构建工具，另加 Chromium、Playwright（end2end/node_modules）：c 节在 Chromium 里逐页量线上字节与水合用时
# （bench/pages.mjs），端到端测试也要它们。已经装好的都跳过。
bash scripts/install-tools.sh --e2e
echo "== 构建发布版（服务器 + 站点 + 基准程序）"
cargo leptos build --release --split
cargo build --release --features ssr --example bench
echo "== 每页第一次打开要下载的 JS、WASM、CSS（按文件、gzip 估算），核对拆分结构与 site-budget.toml 的预算"
# 超了也先把基准跑完（c 节在 Chromium 里量真正的线上字节，同样按预算核对），最后再以非零状态退出。
budget=0
python3 scripts/wasm-per-page.py --check site-budget.toml target/site/pkg || budget=$?

LITELLM_VERSION=1.106.2
VENV=target/litellm-venv
if ! "$VENV/bin/pip" show litellm 2>/dev/null | grep -q "^Version: $LITELLM_VERSION$"; then
  echo "== 安装 LiteLLM $LITELLM_VERSION 到 $VENV（只在第一次）"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "litellm[proxy]==$LITELLM_VERSION"
fi

if [ $# -eq 0 ]; then
  # CI 只对调试版跑端到端；发布版（wasm-opt 之后的拆分站点 + 发布版服务器）在这里跑一遍，约 1.5 分钟。
  echo "== 端到端测试对着发布版"
  (cd end2end && E2E_BIN="$(pwd)/../target/release/drafting-factory" npx playwright test)
fi

target/release/examples/bench full --litellm "$VENV/bin/litellm" "$@"
if [ "$budget" -ne 0 ]; then
  echo "按文件估算的每页字节数超出了 site-budget.toml 的预算（见开头的表）" >&2
  exit "$budget"
fi
