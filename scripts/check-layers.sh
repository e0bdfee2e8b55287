#!/usr/bin/env bash
# 检查模块之间的箭头只往下指：服务端模块（网关、任务、存储、/v1、配置、演示上游、管理员……）
# 与两端共用的 `types` 都不引用界面模块 `crate::app`。只有界面自己、组装路由的 `server.rs` 与 `lib.rs` 可以。
set -euo pipefail
cd "$(dirname "$0")/.."
bad=$(grep -rn --include='*.rs' 'crate::app' src \
  | grep -v '^src/app/' | grep -v '^src/server.rs:' | grep -v '^src/lib.rs:' \
  | grep -v -E '^[^:]+:[0-9]+:\s*//' || true)
if [ -n "$bad" ]; then
  echo "这些服务端或共用模块引用了界面模块 crate::app（共用的类型请放进 src/types/）："
  echo "$bad"
  exit 1
fi
echo "模块分层检查通过：界面之外没有模块引用 crate::app"
