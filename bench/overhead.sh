#!/usr/bin/env bash
# 网关开销的快速测量：同一个演示上游（延迟 0、小图），直接调用 vs 经本服务器的 /v1 调用，
# 并发 64，wrk 记录延迟分布。只访问 127.0.0.1；每轮时长有上限。
#   bash bench/overhead.sh [秒数，默认 15] [并发，默认 64]
# 需要：wrk（apt-get install -y wrk）与发布版二进制（cargo build --release --features ssr）。
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
CONNS=${2:-64}
THREADS=$(( CONNS < 2 ? 1 : 2 ))
BIN="$PWD/target/release/drafting-factory"
DEMO_PORT=18787
SERVER_PORT=18788
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

[ -x "$BIN" ] || { echo "缺少 $BIN：先运行 cargo build --release --features ssr" >&2; exit 1; }
command -v wrk >/dev/null || { echo "缺少 wrk：先运行 apt-get install -y wrk" >&2; exit 1; }

"$BIN" demo-upstream --listen 127.0.0.1:$DEMO_PORT --max-side 64 >/dev/null 2>&1 &
cat > "$WORK/factory.toml" <<TOML
[storage]
root = "storage"
[limits]
requests_per_minute = 1000000
burst = 100000
max_concurrent = 1024
queue_size = 100000
[[upstreams]]
name = "demo"
base_url = "http://127.0.0.1:$DEMO_PORT"
TOML
(cd "$WORK" && RUST_LOG=warn "$BIN" --config factory.toml --listen 127.0.0.1:$SERVER_PORT >/dev/null 2>&1) &
for _ in $(seq 50); do curl -sf http://127.0.0.1:$SERVER_PORT/healthz >/dev/null && break; sleep 0.2; done

cat > "$WORK/direct.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"contents":[{"role":"user","parts":[{"text":"bench"}]}],"generationConfig":{"responseModalities":["TEXT","IMAGE"],"imageConfig":{"aspectRatio":"1:1","imageSize":"1K"}}}'
LUA
cat > "$WORK/gateway.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"prompt":"bench","size":"1024x1024"}'
LUA

echo "== 直接调用演示上游（并发 $CONNS，$DURATION 秒）"
wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/direct.lua" \
  "http://127.0.0.1:$DEMO_PORT/v1beta/models/gemini-3-pro-image-preview:generateContent"
echo "== 经本服务器 /v1/images/generations（并发 $CONNS，$DURATION 秒）"
wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/gateway.lua" \
  "http://127.0.0.1:$SERVER_PORT/v1/images/generations"
