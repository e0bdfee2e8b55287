#!/usr/bin/env bash
# 发布包的布局测试：解压到临时目录，从另一个工作目录启动（像 systemd 那样不 cd），
# 检查 /healthz、工作台页面与页面要加载的 WASM/JS 都能取到。用法：bash scripts/check-package.sh dist/xxx.tar.gz
set -euo pipefail
archive=$(realpath "$1")
work=$(mktemp -d)
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/unpacked" "$work/elsewhere"
tar -xzf "$archive" -C "$work/unpacked"
dir=$(find "$work/unpacked" -mindepth 1 -maxdepth 1 -type d)
for f in drafting-factory site/pkg factory.example.toml drafting-factory.service 部署.md; do
  [ -e "$dir/$f" ] || { echo "发布包里缺少 $f"; exit 1; }
done

# 从别的目录启动，端口由系统分配；启动行里有实际地址。
cd "$work/elsewhere"
"$dir/drafting-factory" --listen 127.0.0.1:0 > "$work/out.log" 2> "$work/err.log" &
pid=$!
url=""
for _ in $(seq 1 100); do
  # 标准输出的启动行“绘图工厂已启动：http://…”给出实际端口（日志在标准错误，里面还有内置演示上游的地址）。
  url=$(grep -o '已启动：http://127.0.0.1:[0-9]*' "$work/out.log" | sed 's/^已启动：//' | head -1 || true)
  [ -n "$url" ] && break
  sleep 0.2
done
[ -n "$url" ] || { echo "服务没有启动："; cat "$work/out.log" "$work/err.log"; exit 1; }

curl -fsS --max-time 10 "$url/healthz" | grep -q '"status":"ok"' || { echo "/healthz 不对"; exit 1; }
page=$(curl -fsS --max-time 10 "$url/")
echo "$page" | grep -q '绘图工厂' || { echo "工作台页面不对"; exit 1; }
# 页面引用的 JS 与 WASM 都能取到（程序在自身旁边的 site/ 里找到了它们）。
for asset in $(echo "$page" | grep -o '/pkg/[^"]*\.\(js\|wasm\|css\)' | sort -u); do
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$url$asset")
  [ "$code" = 200 ] || { echo "$asset 返回 $code"; exit 1; }
  echo "  $asset：200"
done
echo "$page" | grep -q '/pkg/drafting-factory.wasm' || { echo "页面没有引用 WASM"; exit 1; }
[ -d "$work/elsewhere/storage" ] && echo "  默认存储目录建在工作目录：$work/elsewhere/storage"
echo "发布包布局检查通过：$(basename "$archive")"
