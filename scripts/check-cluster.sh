#!/usr/bin/env bash
# 多实例部署（deploy/cluster/）的启动检查，不用容器：与 deploy/cluster/compose.yaml 同样的布局——
#   nginx：Debian 的 nginx，配置就是 deploy/cluster/nginx.conf，只把两个上游的地址与监听端口换成本机的
#          （外框与官方 nginx 镜像的 /etc/nginx/nginx.conf 一样：http 块里 include 它）；
#   两个实例：已构建的 target/debug/drafting-factory，配置就是 deploy/cluster/factory.toml，只换 PostgreSQL 的地址与
#          对象存储的端点（对象存储的密钥与 compose.yaml 一样从 AWS_* 环境变量给），每个实例一个自己的目录（容器里的 /data）；
#   PostgreSQL：Debian 的 initdb/postgres，回环端口（与 tests/it/common/postgres.rs 一样），库与用户照连接串建好；
#   对象存储：moto（target/sdk-venv，代替 MinIO），照配置建好桶。
# 配置文件末尾追加两项只为测试的设置：每个实例同时只生成 2 张（一批 8 张时两个实例上都有在生成的），
# 上游是一个每张要 2–3 秒的演示上游（`drafting-factory demo-upstream`），保证“生成中途”杀得到。
#
# 然后全部经 nginx：页面、页面的 WASM、/ws 都通；交一批 8 张 → 两个实例的工作台（页面与 /ws）上都有这 8 张卡片 →
# 两个实例都在生成时 kill -9 其中一个 → nginx 把请求交给活着的那个；租约（lease_s，配置里是 30 秒）过后，被杀的实例
# 手上的任务在活着的实例上显示“中断”→ 经 nginx 重试 → 8 张全部完成，每张图经 nginx 取得到、在桶里，运行次数 = 8 + 重试数
# （什么也没丢，也没有多生成）。约一分钟，大半是等租约。
#
#   bash scripts/check-cluster.sh
#
# 需要：target/debug/drafting-factory 与 target/site（scripts/test.sh 先构建好）；nginx、postgresql、target/sdk-venv
# （bash scripts/install-tools.sh --e2e）。
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"   # nginx 在 sbin 里
repo=$(pwd)
bin=$(realpath "${CLUSTER_BIN:-target/debug/drafting-factory}")
deploy=deploy/cluster

fail() { echo "多实例检查失败：$*" >&2; exit 1; }

[ -x "$bin" ] || fail "缺少 $bin：先构建（cargo test --features ssr --no-run 或 cargo build --features ssr）"
[ -d target/site/pkg ] || fail "缺少 target/site/pkg：先构建站点（cargo leptos build --frontend-only --split）"
nginx_bin=$(command -v nginx || true)
[ -n "$nginx_bin" ] || fail "找不到 nginx：先运行 bash scripts/install-tools.sh --e2e"
pg_bin=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -1 || true)
[ -n "$pg_bin" ] && [ -x "$pg_bin/initdb" ] || fail "找不到 PostgreSQL（/usr/lib/postgresql/*/bin/initdb）：先运行 bash scripts/install-tools.sh --e2e"
moto="$repo/target/sdk-venv/bin/moto_server"
[ -x "$moto" ] || fail "找不到 $moto：先运行 bash scripts/install-tools.sh --e2e"

work=$(mktemp -d /tmp/check-cluster.XXXXXX)
chmod 755 "$work"   # nginx 的工作进程（nobody）与 postgres 用户要能进到里面的目录
pids=()
pg_pid=""
cleanup() {
  local code=$?
  if [ "$code" -ne 0 ]; then
    echo "---- 各进程的日志（最后 25 行）----" >&2
    for log in "$work"/factory-*/stderr.log "$work"/nginx/error.log "$work"/demo.log "$work"/moto.log "$work"/pg/postgres.log; do
      [ -f "$log" ] || continue
      echo "== $log" >&2
      tail -25 "$log" >&2
    done
  fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$pg_pid" ]; then
    kill -INT "$pg_pid" 2>/dev/null || true
    for _ in $(seq 20); do kill -0 "$pg_pid" 2>/dev/null || break; sleep 0.25; done
  fi
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
  exit "$code"
}
trap cleanup EXIT

# 本机空闲的端口：PostgreSQL、moto、演示上游、两个实例、nginx。
read -r pg_port s3_port demo_port a_port b_port nginx_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
')

# ---- 配置：发出去的两份文件，只换地址 ----
shipped_db=$(sed -n 's/^database = "\(postgres:\/\/[^"]*\)"$/\1/p' "$deploy/factory.toml")
[ -n "$shipped_db" ] || fail "$deploy/factory.toml 里找不到 database = \"postgres://…\""
read -r db_user db_password db_name < <(python3 -c '
import sys, urllib.parse as u
p = u.urlparse(sys.argv[1])
print(p.username, p.password, p.path.lstrip("/"))
' "$shipped_db")
bucket=$(sed -n 's|^root = "s3://\([^/"]*\).*"$|\1|p' "$deploy/factory.toml")
[ -n "$bucket" ] || fail "$deploy/factory.toml 里找不到 root = \"s3://桶/…\""
lease_s=$(sed -n 's/^lease_s = \([0-9]*\).*/\1/p' "$deploy/factory.toml")
[ -n "$lease_s" ] || fail "$deploy/factory.toml 里找不到 [cluster] lease_s"
aws_key=$(sed -n 's/^ *AWS_ACCESS_KEY_ID: *//p' "$deploy/compose.yaml" | head -1)
aws_secret=$(sed -n 's/^ *AWS_SECRET_ACCESS_KEY: *//p' "$deploy/compose.yaml" | head -1)
[ -n "$aws_key" ] && [ -n "$aws_secret" ] || fail "$deploy/compose.yaml 里找不到实例的 AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"

sed -e "s|^database = \"postgres://\([^@]*\)@[^/]*/|database = \"postgres://\1@127.0.0.1:$pg_port/|" \
    -e "s|^endpoint = \"http://[^\"]*\"|endpoint = \"http://127.0.0.1:$s3_port\"|" \
    "$deploy/factory.toml" > "$work/factory.toml"
changed=$(diff "$deploy/factory.toml" "$work/factory.toml" | grep -c '^>' || true)
[ "$changed" = 2 ] || fail "改写 $deploy/factory.toml 时应恰好换掉 2 行（数据库地址、对象存储端点），实际 $changed 行：$(diff "$deploy/factory.toml" "$work/factory.toml" || true)"
cat >> "$work/factory.toml" <<EOF

# ---- 以下由 scripts/check-cluster.sh 追加，只为测试 ----
[limits]
# 每个实例同时只生成 2 张：一批 8 张时两个实例上都有在生成的，杀掉一个时它手上一定有没完成的。
max_concurrent = 2

[[upstreams]]
# 每张要 2–3 秒的演示上游（内置的演示上游随实例一起被杀，也太快）。
name = "检查用的演示上游"
kind = "gemini"
base_url = "http://127.0.0.1:$demo_port"
EOF

mkdir -p "$work/nginx/tmp"
chmod 777 "$work/nginx/tmp"
sed -e "s|server factory-1:3000 |server 127.0.0.1:$a_port |" \
    -e "s|server factory-2:3000 |server 127.0.0.1:$b_port |" \
    -e "s|^\( *\)listen 80;|\1listen 127.0.0.1:$nginx_port;|" \
    "$deploy/nginx.conf" > "$work/nginx/default.conf"
changed=$(diff "$deploy/nginx.conf" "$work/nginx/default.conf" | grep -c '^>' || true)
[ "$changed" = 3 ] || fail "改写 $deploy/nginx.conf 时应恰好换掉 3 行（两个上游、监听端口），实际 $changed 行：$(diff "$deploy/nginx.conf" "$work/nginx/default.conf" || true)"
cat > "$work/nginx/nginx.conf" <<EOF
# 与官方 nginx 镜像的 /etc/nginx/nginx.conf 一样的外框：http 块里 include 发出去的那份（compose 把它挂成 conf.d/default.conf）。
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log info;
events { worker_connections 1024; }
http {
    access_log $work/nginx/access.log;
    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;
    include $work/nginx/default.conf;
}
EOF
nginx_args=(-p "$work/nginx/" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log")
"$nginx_bin" -t -q "${nginx_args[@]}" || fail "nginx 不接受这份配置（见上）"

# ---- PostgreSQL ----
# 以 root 运行时（CI）换成 postgres 用户（PostgreSQL 拒绝以 root 运行）；setpriv 直接换身份再 exec，
# 所以后台启动的 $! 就是 postgres 本身，收尾时能把它停掉。
mkdir "$work/pg"
as_pg=()
if [ "$(id -u)" = 0 ]; then
  as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  chown postgres:postgres "$work/pg"
fi
"${as_pg[@]}" "$pg_bin/initdb" -D "$work/pg/data" -U postgres --auth=trust -E UTF8 --no-locale --no-sync \
  >"$work/pg/initdb.log" 2>&1 || { cat "$work/pg/initdb.log" >&2; fail "initdb 失败"; }
"${as_pg[@]}" "$pg_bin/postgres" -D "$work/pg/data" -p "$pg_port" -k "$work/pg" -c listen_addresses=127.0.0.1 \
  -c fsync=off -c synchronous_commit=off -c full_page_writes=off >"$work/pg/postgres.log" 2>&1 &
pg_pid=$!
psql_admin() { "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -X -Atq "$@"; }

# ---- moto（对象存储）与演示上游 ----
"$moto" -H 127.0.0.1 -p "$s3_port" >"$work/moto.log" 2>&1 &
pids+=($!)
"$bin" demo-upstream --listen "127.0.0.1:$demo_port" --delay-ms 2000-3000 >"$work/demo.log" 2>&1 &
pids+=($!)

ready=""
for _ in $(seq 150); do
  if psql_admin -c 'SELECT 1' >/dev/null 2>&1 && curl -s -o /dev/null "http://127.0.0.1:$s3_port/"; then
    ready=1
    break
  fi
  sleep 0.2
done
[ -n "$ready" ] || fail "PostgreSQL 或 moto 30 秒内没有起来"
psql_admin -c "CREATE ROLE \"$db_user\" LOGIN PASSWORD '$db_password'" -c "CREATE DATABASE \"$db_name\" OWNER \"$db_user\"" \
  || fail "建库失败"
s3_auth='Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0'
curl -fsS -X PUT -H "$s3_auth" "http://127.0.0.1:$s3_port/$bucket" >/dev/null || fail "建桶 $bucket 失败"

# ---- 两个实例（与 compose 一样同时启动），然后 nginx ----
start_instance() {
  local name=$1 port=$2
  mkdir -p "$work/$name"
  cp "$work/factory.toml" "$work/$name/factory.toml"
  (cd "$work/$name" && RUST_LOG=info AWS_ACCESS_KEY_ID="$aws_key" AWS_SECRET_ACCESS_KEY="$aws_secret" \
    exec "$bin" --config factory.toml --listen "127.0.0.1:$port" >stdout.log 2>stderr.log) &
  pids+=($!)
}
start_instance factory-1 "$a_port"
a_pid=$!
start_instance factory-2 "$b_port"
b_pid=$!
for instance in "1 $a_port $a_pid" "2 $b_port $b_pid"; do
  read -r n port pid <<<"$instance"
  up=""
  for _ in $(seq 300); do
    curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$port/healthz" 2>/dev/null && { up=1; break; }
    kill -0 "$pid" 2>/dev/null || fail "实例 $n 启动失败（见下面它的日志）"
    sleep 0.2
  done
  [ -n "$up" ] || fail "实例 $n（127.0.0.1:$port）60 秒内没有起来"
done
"$nginx_bin" "${nginx_args[@]}" -g 'daemon off;' &
pids+=($!)
up=""
for _ in $(seq 50); do
  curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$nginx_port/healthz" 2>/dev/null && { up=1; break; }
  sleep 0.2
done
[ -n "$up" ] || fail "nginx 10 秒内没有起来"
echo "布局已起来：nginx 127.0.0.1:$nginx_port → 实例 127.0.0.1:$a_port、127.0.0.1:$b_port；PostgreSQL :$pg_port；moto :$s3_port（桶 $bucket）"

# ---- 经 nginx 用它（见开头的说明）----
NGINX_PORT=$nginx_port A_PORT=$a_port B_PORT=$b_port A_PID=$a_pid LEASE_S=$lease_s \
PSQL="$pg_bin/psql" PG_PORT=$pg_port DB_USER=$db_user DB_NAME=$db_name \
S3_PORT=$s3_port BUCKET=$bucket S3_AUTH="$s3_auth" \
python3 - <<'PY'
import base64, json, os, signal, socket, subprocess, sys, time, urllib.error, urllib.request

NGINX, A, B = (int(os.environ[k]) for k in ("NGINX_PORT", "A_PORT", "B_PORT"))
A_PID, LEASE_S = int(os.environ["A_PID"]), int(os.environ["LEASE_S"])
started = time.monotonic()


def fail(message):
    sys.exit(f"多实例检查失败：{message}")


def log(message):
    print(f"  [{time.monotonic() - started:5.1f} 秒] {message}", flush=True)


def http(method, port, path, body=None, headers=None, timeout=15):
    """一个 HTTP 请求（不带 Origin：脚本调用，与 README 说的一样），返回（状态码，响应头，响应体）。"""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    if body is not None:
        req.add_header("content-type", "application/json")
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, {k.lower(): v for k, v in res.headers.items()}, res.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def api(port, endpoint, body):
    status, _, data = http("POST", port, f"/api/{endpoint}", body)
    if status != 200:
        fail(f"POST /api/{endpoint}（端口 {port}）返回 {status}：{data[:300]!r}")
    return json.loads(data)


def snapshot(port):
    """经 /ws 取一次任务快照（最小的 WebSocket 客户端：握手，读第一条 type = snapshot 的文字消息）。"""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("/ws 握手时连接被关闭")
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        status_line = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status_line + b" ":
            raise RuntimeError(f"/ws 没有升级：{status_line!r}")

        def need(n):
            nonlocal buf
            while len(buf) < n:
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("读 /ws 的消息时连接被关闭")
                buf += chunk
            out, buf = buf[:n], buf[n:]
            return out

        message = b""
        while True:
            b0, b1 = need(2)
            opcode, length = b0 & 0x0F, b1 & 0x7F
            if length == 126:
                length = int.from_bytes(need(2), "big")
            elif length == 127:
                length = int.from_bytes(need(8), "big")
            if b1 & 0x80:
                need(4)
            payload = need(length)
            if opcode == 0x8:
                raise RuntimeError("服务器关闭了 /ws")
            if opcode not in (0x0, 0x1):
                continue
            message += payload
            if b0 & 0x80:
                value = json.loads(message)
                if value.get("type") == "snapshot":
                    return {job["job_id"]: job for job in value["jobs"]}
                message = b""
    finally:
        sock.close()


def query(sql):
    out = subprocess.run(
        [os.environ["PSQL"], "-h", "127.0.0.1", "-p", os.environ["PG_PORT"], "-U", os.environ["DB_USER"],
         "-d", os.environ["DB_NAME"], "-X", "-Atq", "-F", "\t", "-c", sql],
        capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"psql：{out.stderr.strip()}")
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def wait(what, timeout, check):
    """等到 check() 返回真值（返回它）；期间的异常与假值都记下，超时就失败并说出最后一次看到的。"""
    end = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = check()
            if value:
                return value
            last = value
        except Exception as e:  # 连接被拒等：再试
            last = e
        if time.monotonic() > end:
            fail(f"{timeout} 秒内没有等到：{what}（最后一次：{last!r}）")
        time.sleep(0.2)


# 1. 经 nginx：健康检查、页面（带本页 WASM 块的预加载）、页面的 WASM、/ws 的升级。
status, _, page = http("GET", NGINX, "/", headers={"accept": "text/html"})
html = page.decode("utf-8", "replace")
if status != 200 or "绘图工厂" not in html:
    fail(f"经 nginx 取工作台页面：{status}")
if 'rel="modulepreload"' not in html or "__wasm_split." not in html:
    fail("经 nginx 取到的工作台页面没有拆分加载器的预加载（站点不是 --split 构建？）")
status, headers, _ = http("GET", NGINX, "/pkg/drafting-factory.wasm")
if status != 200 or headers.get("content-type") != "application/wasm":
    fail(f"经 nginx 取主 WASM：{status} {headers.get('content-type')}")
snapshot(NGINX)
log("经 nginx：页面、WASM（application/wasm）、/ws 的升级都通")

# 2. 经 nginx 交一批 8 张。
jobs = api(NGINX, "submit_jobs", {"request": {"prompt": f"多实例部署检查 {os.getpid()}", "count": 8}})
ids = [job["job_id"] for job in jobs]
if len(ids) != 8:
    fail(f"交了 8 张，收下 {len(ids)} 张：{jobs}")
in_list = ", ".join(f"'{i}'" for i in ids)
log(f"经 nginx 交了一批 8 张")

# 3. 两个实例的工作台上都有这 8 张卡片：/ws 的快照里有，服务端渲染的页面里也有。
for name, port in (("实例 1", A), ("实例 2", B)):
    wait(f"{name} 的 /ws 快照里有这 8 张", 20, lambda: all(i in snapshot(port) for i in ids))
    wait(f"{name} 的工作台页面里有这 8 张", 20,
         lambda: all(i in http("GET", port, "/", headers={"accept": "text/html"})[2].decode("utf-8", "replace")
                     for i in ids))
log("两个实例的工作台（页面与 /ws）上都有这 8 张卡片")

# 4. 两个实例都在生成（每个最多 2 张，生成中的多于 2 张就是两边都有）时，kill -9 实例 1。
def both_busy():
    rows = query(f"SELECT state, COUNT(*) FROM jobs WHERE id IN ({in_list}) GROUP BY state")
    counts = {state: int(n) for state, n in rows}
    return counts if counts.get("running", 0) >= 3 else None

counts = wait("两个实例都在生成", 30, both_busy)
os.kill(A_PID, signal.SIGKILL)
killed = time.monotonic()
log(f"两个实例都在生成（{counts}）时 kill -9 了实例 1")

# 5. nginx 把请求交给活着的实例：连着几个请求都成功（轮到被杀的那个时，连不上就交给另一个）。
for _ in range(6):
    status, _, _ = http("GET", NGINX, "/healthz")
    if status != 200:
        fail(f"实例 1 被杀后经 nginx 的 /healthz 返回 {status}")
log("实例 1 被杀后，经 nginx 的请求都由实例 2 应答")

# 6. 租约过后，实例 1 手上的任务被实例 2 标为中断；其余的（包括实例 1 排着没开始的）都由实例 2 完成。
def settled():
    rows = query(f"SELECT id, state FROM jobs WHERE id IN ({in_list})")
    states = dict(rows)
    if len(states) != 8 or any(s in ("queued", "running") for s in states.values()):
        return None
    return states

states = wait(f"实例 1 的任务在租约（{LEASE_S} 秒）后被标为中断、其余完成", LEASE_S * 2 + 30, settled)
others = {i: s for i, s in states.items() if s not in ("done", "interrupted")}
if others:
    fail(f"有任务既没完成也不是中断：{others}")
interrupted = [i for i, s in states.items() if s == "interrupted"]
if not interrupted:
    fail("实例 1 被杀时手上没有在生成的任务（杀得太晚？），这次检查没有测到“中途被杀”")
log(f"实例 1 被杀 {time.monotonic() - killed:.0f} 秒后：{8 - len(interrupted)} 张完成，{len(interrupted)} 张中断（实例 1 被杀时在生成的）")

# 7. 经 nginx 重试中断的（实例 2 上先看到它们是中断），全部完成。
wait("实例 2 的工作台上这几张显示中断", 15,
     lambda: all(snapshot(B).get(i, {}).get("state") == "interrupted" for i in interrupted))
for i in interrupted:
    view = api(NGINX, "retry_job", {"job_id": i})
    if view.get("state") not in ("queued", "running", "done"):
        fail(f"重试 {i} 后是 {view.get('state')}：{view}")
wait("8 张全部完成", 60,
     lambda: query(f"SELECT COUNT(*) FROM jobs WHERE id IN ({in_list}) AND state = 'done'") == [["8"]])
wait("实例 2 的工作台上 8 张都是完成", 15,
     lambda: all(snapshot(B).get(i, {}).get("state") == "done" for i in ids))
log(f"经 nginx 重试了 {len(interrupted)} 张，8 张全部完成")

# 8. 什么也没丢、也没有多生成：运行次数 = 8 + 重试数；每张图经 nginx 取得到（PNG），在桶里。
runs = query(f"SELECT SUM(run) FROM jobs WHERE id IN ({in_list})")[0][0]
if int(runs) != 8 + len(interrupted):
    fail(f"运行次数之和是 {runs}，应为 8 + {len(interrupted)}")
images = [row[0] for row in query(f"SELECT image_id FROM jobs WHERE id IN ({in_list})")]
if len(images) != 8 or not all(images) or len(set(images)) != 8:
    fail(f"8 张应各有一张不同的图：{images}")
bucket = urllib.request.Request(
    f"http://127.0.0.1:{os.environ['S3_PORT']}/{os.environ['BUCKET']}?list-type=2&max-keys=1000",
    headers={"Authorization": os.environ["S3_AUTH"].split(": ", 1)[1]})
with urllib.request.urlopen(bucket, timeout=15) as res:
    listing = res.read().decode()
for image in images:
    status, headers, body = http("GET", NGINX, f"/files/{image}")
    if status != 200 or headers.get("content-type") != "image/png" or not body.startswith(b"\x89PNG\r\n\x1a\n"):
        fail(f"经 nginx 取图 {image}：{status} {headers.get('content-type')}")
    if image not in listing:
        fail(f"桶里没有图 {image}")
log(f"运行次数 {runs} = 8 + {len(interrupted)}；8 张图都经 nginx 取得到，都在桶里")
print("多实例部署检查通过")
PY
