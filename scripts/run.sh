#!/usr/bin/env bash
# 构建发布版并启动绘图工厂（缺少的工具会先自动安装）。参数原样传给服务器，例如：
#   bash scripts/run.sh --config /etc/factory.toml --listen 0.0.0.0:3000
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/install-tools.sh
cargo leptos build --release --split
exec target/release/drafting-factory "$@"
