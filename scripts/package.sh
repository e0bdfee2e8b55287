#!/usr/bin/env bash
# 打发布包：dist/drafting-factory-<版本>-x86_64-linux.tar.gz，内含
#   drafting-factory（去掉调试信息与符号；符号另存为 dist/<包名>.debug）、site/（页面的 JS、WASM、CSS）、
#   factory.example.toml（每一项都有中文说明）、drafting-factory.service（systemd）、部署.md。
# 解压到任意目录、从任意工作目录启动，程序都能在自身旁边找到 site/。
#
#   bash scripts/package.sh            构建发布版再打包
#   bash scripts/package.sh --debug    用已构建好的调试版打包（测试发布包的布局用，不重新构建）
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

profile=release
if [ "${1:-}" = "--debug" ]; then
  profile=debug
else
  bash scripts/install-tools.sh
  cargo leptos build --release --split
fi
for needed in "target/$profile/drafting-factory" target/site/pkg; do
  [ -e "$needed" ] || { echo "缺少 $needed：请先构建" >&2; exit 1; }
done
# 发出去的站点：发布版核对拆分结构与每页的字节预算（site-budget.toml），调试版只核对结构（字节数没有意义）。
if [ "$profile" = release ]; then
  python3 scripts/wasm-per-page.py --check site-budget.toml target/site/pkg
else
  python3 scripts/wasm-per-page.py --structure site-budget.toml target/site/pkg
fi

version=$(awk -F'"' '/^version = /{print $2; exit}' Cargo.toml)
name="drafting-factory-$version-x86_64-linux"
stage="target/package/$name"
rm -rf target/package
mkdir -p "$stage" dist
cp "target/$profile/drafting-factory" "$stage/"
# 发布版在构建时已去掉调试信息（Cargo.toml 的 profile.release），余下的符号表比程序本身还大（泛型多）：
# 把符号另存为 dist/<包名>.debug（放在程序旁边，回溯就又有函数名；gdb/addr2line 也认），包里的程序去掉全部符号。
# 调试版只去掉调试信息，包小一些。
if [ "$profile" = release ]; then
  objcopy --only-keep-debug "$stage/drafting-factory" "dist/$name.debug"
  strip --strip-all "$stage/drafting-factory"
  objcopy --add-gnu-debuglink="dist/$name.debug" "$stage/drafting-factory"
else
  strip --strip-debug "$stage/drafting-factory"
fi
cp -r target/site "$stage/site"
cp packaging/factory.example.toml packaging/drafting-factory.service packaging/部署.md "$stage/"
tar -C target/package -czf "dist/$name.tar.gz" "$name"
echo "已生成 dist/$name.tar.gz（$(du -h "dist/$name.tar.gz" | cut -f1)）"
if [ "$profile" = release ]; then
  echo "符号：dist/$name.debug（$(du -h "dist/$name.debug" | cut -f1)；要回溯里的函数名时放到程序旁边）"
fi
