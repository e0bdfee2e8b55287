#!/usr/bin/env bash
# 图库与打包下载的测量（只访问 127.0.0.1）：
#   1. 数据库里有 1,000 张图时，图库页面（/gallery，服务端渲染首屏 48 张）与 list_images 的耗时；
#   2. 50 张 1K 图打包下载（/files/zip）的吞吐。
#   bash bench/gallery.sh
# 需要：发布版二进制（cargo build --release --features ssr）。
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/target/release/drafting-factory"
DEMO_PORT=18797
SERVER_PORT=18798
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
[ -x "$BIN" ] || { echo "缺少 $BIN：先运行 cargo build --release --features ssr" >&2; exit 1; }

start_server() { # $1 = 演示上游的额外参数
  "$BIN" demo-upstream --listen 127.0.0.1:$DEMO_PORT $1 >/dev/null 2>&1 &
  DEMO_PID=$!
  (cd "$WORK" && RUST_LOG=warn exec "$BIN" --config factory.toml --listen 127.0.0.1:$SERVER_PORT >/dev/null 2>&1) &
  SERVER_PID=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$SERVER_PORT/healthz >/dev/null && return; sleep 0.1; done
  echo "服务器没有启动" >&2; exit 1
}
stop_server() { kill $SERVER_PID $DEMO_PID 2>/dev/null || true; wait $SERVER_PID $DEMO_PID 2>/dev/null || true; }

cat > "$WORK/factory.toml" <<TOML
[storage]
root = "storage"
[limits]
requests_per_minute = 1000000
burst = 100000
[[upstreams]]
name = "demo"
base_url = "http://127.0.0.1:$DEMO_PORT"
TOML

# 中位数（毫秒）：对同一个 URL 请求 N 次。
median_ms() { # $1 = 次数, 其余 = curl 参数
  local n=$1; shift
  for _ in $(seq "$n"); do curl -s -o /dev/null -w '%{time_total}\n' "$@"; done |
    sort -n | awk '{a[NR]=$1} END {printf "%.2f", a[int((NR+1)/2)]*1000}'
}

echo "== 写入 1,000 张小图（演示上游 --max-side 64，经 /v1，8 个并发）"
start_server "--max-side 64"
t0=$(date +%s.%N)
seq 1000 | xargs -P 8 -I{} curl -sf -o /dev/null http://127.0.0.1:$SERVER_PORT/v1/images/generations \
  -H 'content-type: application/json' -d '{"prompt":"基准图 {} 号","response_format":"url"}'
t1=$(date +%s.%N)
echo "写入耗时 $(awk "BEGIN {printf \"%.1f\", $t1 - $t0}") 秒"
count=$(curl -s http://127.0.0.1:$SERVER_PORT/api/list_images -H 'content-type: application/json' \
  -d '{"query":{"limit":200}}' | grep -o '"id"' | wc -l)
echo "首页 200 条查询返回 $count 条"
curl -s -o /dev/null http://127.0.0.1:$SERVER_PORT/gallery   # 预热
echo "图库页面 /gallery SSR（1,000 张，中位数，20 次）：$(median_ms 20 http://127.0.0.1:$SERVER_PORT/gallery) ms"
echo "list_images 首页 48 条（中位数，20 次）：$(median_ms 20 http://127.0.0.1:$SERVER_PORT/api/list_images -H 'content-type: application/json' -d '{"query":{}}') ms"
echo "list_images 搜索“999”（全表 LIKE，中位数，20 次）：$(median_ms 20 http://127.0.0.1:$SERVER_PORT/api/list_images -H 'content-type: application/json' -d '{"query":{"search":"999"}}') ms"
echo "工作台页面 / SSR（对照，中位数，20 次）：$(median_ms 20 http://127.0.0.1:$SERVER_PORT/) ms"
stop_server

echo "== 50 张 1K 图打包下载"
rm -rf "$WORK/storage"
start_server ""
ids=$(seq 50 | xargs -P 4 -I{} curl -sf http://127.0.0.1:$SERVER_PORT/api/generate_image \
  -H 'content-type: application/json' -d '{"request":{"prompt":"打包 {}"}}' | grep -o '"id":"[0-9a-f]*"' | cut -d'"' -f4 | paste -sd, -)
rss_before=$(awk '/VmRSS/ {print $2}' /proc/$(pgrep -f "listen 127.0.0.1:$SERVER_PORT" | head -1)/status)
curl -s -o "$WORK/all.zip" -w '%{size_download} %{time_total}\n' "http://127.0.0.1:$SERVER_PORT/files/zip?ids=$ids" > "$WORK/zip.txt"
read -r size secs < "$WORK/zip.txt"
rss_after=$(awk '/VmRSS/ {print $2}' /proc/$(pgrep -f "listen 127.0.0.1:$SERVER_PORT" | head -1)/status)
echo "zip：$size 字节，$secs 秒，$(awk "BEGIN {printf \"%.1f\", $size / $secs / 1048576}") MB/s；服务器 RSS $rss_before → $rss_after KB"
stop_server
