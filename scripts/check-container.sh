#!/usr/bin/env bash
# 容器配方的启动测试（不从任何镜像仓库拉取）：用 podman 从发布包构建镜像，启动，等 HEALTHCHECK 变成 healthy，
# 再从宿主机取 /healthz 与工作台页面。
#   bash scripts/check-container.sh dist/drafting-factory-<版本>-x86_64-linux.tar.gz
#
# 这里的机器拉不到 Docker Hub，所以：
# - 基础镜像 debian:bookworm-slim 换成 debootstrap 从 Debian 软件源装出的 bookworm 最小系统（podman import）；
# - Dockerfile 第一阶段（在容器里编译）换成发布包里现成的程序与 site/；
# - 第二阶段（运行时）逐行取自仓库的 Dockerfile，只把 `COPY --from=builder` 两行换成从发布包复制，
#   所以用户、卷、端口、HEALTHCHECK、ENTRYPOINT 都是真正发出去的那份。
# HEALTHCHECK 只存在于 docker 格式的镜像里（OCI 格式会丢掉它），所以用 --format docker 构建。
# 需要 root、podman、runc 与 debootstrap（apt-get install podman runc debootstrap）。
#
# podman 在这台机器上不能用（没装、不能存镜像、不能运行任何容器）时**失败**：没有启动过容器的检查不能算通过。
# 确实要在不能运行容器的机器上跑其余的测试，显式设 FACTORY_SKIP_CONTAINER=1：这一步什么也不做，
# scripts/test.sh 在这一步的用时那一行标上 SKIPPED。
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"   # runc 与 debootstrap 在 sbin 里
if [ "${FACTORY_SKIP_CONTAINER:-}" = 1 ]; then
  echo "SKIPPED：设了 FACTORY_SKIP_CONTAINER=1，没有构建、也没有启动容器"
  exit 0
fi
archive=$(realpath "$1")
work=$(mktemp -d)
name="drafting-factory-check-$$"
port=${CHECK_CONTAINER_PORT:-38080}
cleanup() {
  podman rm -f "$name" >/dev/null 2>&1 || true
  podman volume rm -f "$name-data" >/dev/null 2>&1 || true
  podman rmi -f localhost/drafting-factory:check >/dev/null 2>&1 || true   # 每次 170 MB，不留
  rm -rf "$work"
}
trap cleanup EXIT

# 引擎本身在这台机器上不能用（与配方无关）时说明原因并失败：容器没有启动过，这一步就不能算通过。
engine_unusable() {
  echo "$1"; tail -3 "$2"
  echo "容器检查没有做成（这不是配方的问题，但也没有证明配方能用）。要在这台机器上跳过这一步，显式设 FACTORY_SKIP_CONTAINER=1。"
  exit 1
}
if ! podman info >"$work/info.log" 2>&1; then
  engine_unusable "这台机器上 podman 不能用：" "$work/info.log"
fi

base=localhost/debian:bookworm-slim
if ! podman image exists "$base"; then
  echo "==> 用 debootstrap 装 bookworm 最小系统，导入为 $base"
  rootfs=${ROOTFS_CACHE:-$work/rootfs}
  [ -x "$rootfs/bin/sh" ] || debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian
  if ! tar -C "$rootfs" -c . | podman import - "$base" >"$work/import.log" 2>&1; then
    engine_unusable "podman 不能在这台机器上存镜像（导入基础系统失败）：" "$work/import.log"
  fi
fi

echo "==> 构建镜像（运行时阶段取自 Dockerfile）"
mkdir -p "$work/ctx"
tar -xzf "$archive" -C "$work/ctx"
dir=$(find "$work/ctx" -mindepth 1 -maxdepth 1 -type d -printf '%f\n')
# 取最后一个 FROM 之后的部分，换掉基础镜像与两行 COPY --from=builder。
awk '/^FROM /{stage=$0; body=""} {body=body $0 "\n"} END{printf "%s", body}' Dockerfile \
  | sed -e "s|^FROM debian:bookworm-slim.*|FROM $base|" \
        -e "s|^COPY --from=builder /src/target/release/drafting-factory |COPY $dir/drafting-factory |" \
        -e "s|^COPY --from=builder /src/target/site |COPY $dir/site |" > "$work/ctx/Containerfile"
if grep -q -- '--from=builder' "$work/ctx/Containerfile"; then
  echo "Dockerfile 的运行时阶段里有没换掉的 COPY --from=builder："; cat "$work/ctx/Containerfile"; exit 1
fi
podman build -q --format docker --isolation chroot -t localhost/drafting-factory:check -f "$work/ctx/Containerfile" "$work/ctx"

echo "==> 启动容器，等健康检查"
# 这里的沙箱：crun 不支持混合 cgroup（先试 Debian 的 runc），podman 默认的 nofile/nproc 上限高于允许值（显式给小一些），
# 没有 systemd 给健康检查排定时器（关掉定时器，下面手动运行同一条 HEALTHCHECK 命令）。
run_flags=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=32768:32768)
# 先用基础镜像试一下这台机器能不能运行容器（与我们的镜像无关）；哪个运行时能用就用哪个。
runtime=""
candidates="${OCI_RUNTIME:-runc crun}"
for candidate in $candidates; do
  if podman run --rm --runtime "$candidate" "${run_flags[@]}" "$base" true >"$work/probe.log" 2>&1; then
    runtime=$candidate
    break
  fi
done
if [ -z "$runtime" ]; then
  # 镜像已经按 Dockerfile 构建出来了；只是这台机器的内核/cgroup 不让 podman 运行容器，这不是配方的问题——
  # 但容器没有启动过，健康检查、端口、卷、用户都没有验证。
  engine_unusable "这台机器上 podman 不能运行任何容器（试过的运行时：$candidates；连基础镜像里的 true 也不行）：" "$work/probe.log"
fi
podman run -d --runtime "$runtime" "${run_flags[@]}" \
  --health-interval=disable --name "$name" -p "127.0.0.1:$port:3000" -v "$name-data:/data" localhost/drafting-factory:check >/dev/null
status=""
for _ in $(seq 1 60); do
  podman healthcheck run "$name" >/dev/null 2>&1 && status=healthy && break
  sleep 1
done
[ "$status" = healthy ] || { echo "容器没有变成 healthy："; podman logs "$name"; exit 1; }
echo "  HEALTHCHECK：healthy"
curl -fsS --max-time 10 "http://127.0.0.1:$port/healthz" | grep -q '"status":"ok"' || { echo "/healthz 不对"; exit 1; }
curl -fsS --max-time 10 "http://127.0.0.1:$port/" | grep -q '绘图工厂' || { echo "工作台页面不对"; exit 1; }
echo "  宿主机取 /healthz 与 /：正常"
# 以非 root 用户运行，配置与数据写在 /data 卷里。
[ "$(podman exec "$name" id -u)" = 10001 ] || { echo "容器里不是以 10001 运行"; exit 1; }
podman exec "$name" test -w /data || { echo "/data 不可写"; exit 1; }
podman logs "$name" 2>&1 | grep -q '工作台密码' && echo "  启动日志里有工作台密码的提醒"
echo "容器检查通过"
