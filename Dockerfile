# 绘图工厂的容器镜像（多阶段）：第一阶段用固定版本的工具链与工具构建发布版，第二阶段只带程序与页面文件。
#   docker build -t drafting-factory .      或者      docker compose up -d
# 容器内监听 0.0.0.0:3000；配置（/data/factory.toml）与图片（/data/storage）在 /data 卷里。
# 给别人用之前请设工作台密码与 API 密钥（见 部署.md），否则程序启动时会警告。

FROM rust:1.95-slim-bookworm AS builder
# nodejs/npm 只用来装 wasm-opt（npm 的 binaryen）；版本随 Debian bookworm。
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# 与 CI 相同的脚本装 wasm 目标、cargo-leptos、wasm-bindgen、wasm-opt（版本都固定在脚本与 Cargo.lock 里）。
# 符号表比程序本身还大：镜像里的程序去掉全部符号（要回溯里的函数名请用发布包的 .debug 文件）。
RUN bash scripts/install-tools.sh \
    && cargo leptos build --release --split \
    && strip --strip-all target/release/drafting-factory

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /data --create-home factory
COPY --from=builder /src/target/release/drafting-factory /app/drafting-factory
COPY --from=builder /src/target/site /app/site
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 3000
ENV RUST_LOG=info
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/app/drafting-factory", "healthcheck", "--url", "http://127.0.0.1:3000"]
ENTRYPOINT ["/app/drafting-factory", "--config", "/data/factory.toml", "--listen", "0.0.0.0:3000"]
