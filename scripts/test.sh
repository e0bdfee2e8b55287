#!/usr/bin/env bash
# 运行全部测试：先补装缺少的工具，再依次做格式检查、clippy（服务端与 WASM）、
# 单元与集成测试、构建站点、基准程序的快速正确性检查，最后用真实的 Chromium 跑端到端测试。
# 任何一步失败即停止。
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n==> %s\n' "$*"; }

bash scripts/install-tools.sh --e2e

step "格式检查"
cargo fmt --all -- --check

step "clippy：服务端"
cargo clippy --all-targets --features ssr -- -D warnings

step "clippy：浏览器端（WASM）"
cargo clippy --lib --target wasm32-unknown-unknown --no-default-features --features hydrate -- -D warnings

step "单元测试与集成测试"
cargo test --features ssr

step "构建站点（调试版）"
cargo leptos build

step "基准程序的正确性检查（小配置：每个响应都是完整的图、故障浸泡后的存储核对）"
# 完整基准是 bash bench/run.sh，不在这里跑。
cargo build --features ssr --example bench
target/debug/examples/bench quick

step "端到端测试（Playwright + Chromium）"
(cd end2end && npx playwright test)
