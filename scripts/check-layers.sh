#!/usr/bin/env bash
# 检查模块之间的箭头只往下指（一条规则一行，违反时列出是哪个文件的哪一行）：
# 1. 服务端模块与两端共用的 `types` 都不引用界面模块 `crate::app`（只有界面自己、组装路由的 `server.rs` 与 `lib.rs` 可以）；
# 2. 下层——`types`（两端共用）、`config`、`storage`、`usage`、`catalogue`——不引用上层：访问控制 `access`、HTTP 的小件 `web`、
#    `/v1` 的 `openai`、界面 `app`、共享状态 `state`、HTTP 错误 `error`、任务 `jobs`、网关 `gateway`、准入 `admit`、
#    HTTP 接口 `files`、管理员 `admin`、`server`；`types` 另外不引用任何服务端模块。
# 只看代码，不看注释；`use` 与 `crate::…::` 路径都算。
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0
# check 说明 目录或文件… -- 禁止的模块…
check() {
  local what=$1
  shift
  local places=()
  while [ "$1" != "--" ]; do
    places+=("$1")
    shift
  done
  shift
  local pattern
  pattern="crate::($(IFS='|'; echo "$*"))\\b"
  local bad
  bad=$(grep -rnE --include='*.rs' "$pattern" "${places[@]}" \
    | grep -vE '^[^:]+:[0-9]+:\s*//' || true)
  if [ -n "$bad" ]; then
    echo "$what："
    echo "$bad"
    failed=1
  fi
}

ui_users=$(grep -rln --include='*.rs' 'crate::app' src | grep -v '^src/app/' | grep -v '^src/server.rs$' | grep -v '^src/lib.rs$' || true)
if [ -n "$ui_users" ]; then
  check "这些服务端或共用模块引用了界面模块 crate::app（共用的类型请放进 src/types/）" $ui_users -- app
fi
upper=(access web openai app state error jobs gateway admit files admin server produce prompts demo cli cli_backup cli_user listeners region)
check "下层（config、storage、usage、catalogue）引用了上层（它们只拿普通的值，不拿状态、HTTP 错误与访问控制）" \
  src/config src/storage src/usage src/catalogue.rs -- "${upper[@]}"
check "两端共用的 types 引用了服务端模块" \
  src/types -- "${upper[@]}" config storage usage catalogue metrics decode hash atomic_file cluster_breakers

if [ "$failed" -ne 0 ]; then
  exit 1
fi
echo "模块分层检查通过：界面之外没有模块引用 crate::app；config、storage、usage、catalogue 与 types 不往上引用"
