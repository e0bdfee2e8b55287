#[cfg(feature = "ssr")]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    drafting_factory::cli::run().await
}

// 不带 ssr 特性时（WASM 构建只编译 lib），二进制没有用处。
#[cfg(not(feature = "ssr"))]
fn main() {}
