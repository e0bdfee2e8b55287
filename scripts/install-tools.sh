#!/usr/bin/env bash
# 安装构建（和可选的浏览器测试）所需的工具；已经装好的一律跳过，可以重复运行。
#   bash scripts/install-tools.sh            构建所需：wasm 目标、cargo-leptos、wasm-bindgen、wasm-opt
#   bash scripts/install-tools.sh --e2e      另加测试所需：Chromium、中文字体 fonts-noto-cjk、podman、runc、debootstrap、nginx（apt）、
#                                            end2end 的 npm 依赖（含官方 openai 包与 @axe-core/playwright）、
#                                            装有官方 openai Python 包与 moto（S3 服务）的虚拟环境 target/sdk-venv
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

CARGO_LEPTOS_VERSION=0.3.10   # 0.3.11 需要 rustc 1.96
BINARYEN_VERSION=132          # 不要用 Debian 的 binaryen 108：它的 wasm-opt 会破坏发布版的水合
OPENAI_PY_VERSION=3.54.0      # 客户端兼容性测试用的官方 Python SDK
GOOGLE_GENAI_VERSION=3.6.1    # 演示上游要读懂的 Google 官方 Python SDK
MOTO_VERSION=5.2.5            # 对象存储测试用的 S3 兼容服务（moto 的独立服务器，PyPI）
# wasm-bindgen-cli 必须与 Cargo.lock 里的 wasm-bindgen 版本完全一致。
WASM_BINDGEN_VERSION=$(awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)

step() { printf '\n==> %s\n' "$*"; }

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  step "安装 Rust 的 wasm32 目标"
  rustup target add wasm32-unknown-unknown
fi

# 这两个是构建用的辅助工具，它们自己跑得快慢无关紧要：以调试配置编译（--debug，且不带调试信息），
# 比发布配置快得多（2 核机器上 cargo-leptos 从约 22 分钟降到约 6 分钟，wasm-bindgen 从约 4 分钟降到 1 分钟）。
export CARGO_PROFILE_DEV_DEBUG=0
if ! cargo leptos --version 2>/dev/null | grep -qx "cargo-leptos $CARGO_LEPTOS_VERSION"; then
  step "安装 cargo-leptos $CARGO_LEPTOS_VERSION（调试配置，只需一次）"
  cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --debug
fi

# cargo-leptos 在 PATH 上找不到这两个工具时会去网上下载，这里的网络不允许，所以先装好。
if ! wasm-bindgen --version 2>/dev/null | grep -qx "wasm-bindgen $WASM_BINDGEN_VERSION"; then
  step "安装 wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  # 不加 --locked：它的锁文件里有本地索引没有的版本。
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --debug
fi

if ! wasm-opt --version 2>/dev/null | grep -q "version $BINARYEN_VERSION\b"; then
  step "安装 wasm-opt（npm 的 binaryen@$BINARYEN_VERSION）"
  npm install -g --no-audit --no-fund "binaryen@$BINARYEN_VERSION"
fi

if [ "${1:-}" = "--e2e" ]; then
  # Chromium 跑端到端测试；podman、runc、debootstrap 跑容器配方的启动测试（scripts/check-container.sh）；
  # PostgreSQL 的服务器跑“元数据放在 PostgreSQL”的集成测试（测试自己在回环端口上启动它，见 tests/it/common/postgres.rs）；
  # nginx 跑多实例部署的检查（scripts/check-cluster.sh 用 deploy/cluster/nginx.conf 在回环端口上启动它）。
  missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
  [ -x /usr/bin/podman ] || missing+=(podman)
  [ -x /usr/sbin/runc ] || missing+=(runc)
  [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
  [ -x /usr/sbin/nginx ] || missing+=(nginx)
  # 中文字体：布局与截图的测试（end2end/tests/layout.spec.ts）要量到用户看到的宽度，没有 CJK 字体时量的是替代字形。
  if ! fc-list 2>/dev/null | grep -qi 'Noto Sans CJK'; then
    missing+=(fonts-noto-cjk)
    command -v fc-list >/dev/null || missing+=(fontconfig)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    step "安装 ${missing[*]}（apt）"
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
  fi
  step "检查中文字体（Noto Sans CJK）"
  font=$(fc-list : family 2>/dev/null | grep -i 'Noto Sans CJK' | head -n 1 || true)
  if [ -z "$font" ]; then
    echo "没有找到 Noto Sans CJK 字体（apt 包 fonts-noto-cjk）：浏览器测试量到的不是用户看到的宽度" >&2
    exit 1
  fi
  echo "中文字体：$font"
  step "安装端到端测试的 npm 依赖"
  (cd end2end && npm ci --no-audit --no-fund)
  if ! target/sdk-venv/bin/python -c "
import sys, openai, importlib.metadata as m
sys.exit(openai.__version__ != '$OPENAI_PY_VERSION' or m.version('google-genai') != '$GOOGLE_GENAI_VERSION'
         or m.version('moto') != '$MOTO_VERSION')" 2>/dev/null; then
    step "创建装有 openai==$OPENAI_PY_VERSION、google-genai==$GOOGLE_GENAI_VERSION 与 moto[server]==$MOTO_VERSION（测试用的 S3 服务）的 Python 虚拟环境 target/sdk-venv"
    rm -rf target/sdk-venv
    python3 -m venv target/sdk-venv
    target/sdk-venv/bin/pip install --quiet --disable-pip-version-check \
      "openai==$OPENAI_PY_VERSION" "google-genai==$GOOGLE_GENAI_VERSION" "moto[server]==$MOTO_VERSION"
  fi
fi
