//! Leptos.toml（运行时读取）与 Cargo.toml 的 [package.metadata.leptos]（cargo-leptos 构建时读取）必须一致。

#[test]
fn leptos_toml_matches_cargo_metadata() {
    let cargo: toml::Table = include_str!("../../Cargo.toml").parse().unwrap();
    let runtime: toml::Table = include_str!("../../Leptos.toml").parse().unwrap();
    let build = &cargo["package"]["metadata"]["leptos"];
    for (key, value) in &runtime {
        if key == "env" {
            continue; // 运行环境由构建模式决定，不必一致
        }
        assert_eq!(
            Some(value),
            build.get(key),
            "Leptos.toml 的 {key} 与 Cargo.toml 不一致"
        );
    }
    assert!(runtime.contains_key("output-name") && runtime.contains_key("site-root"));
}

/// `.cargo/config.toml` 给所有构建的 LEPTOS_OUTPUT_NAME 与 cargo-leptos 的 output-name 一致，
/// 否则 `cargo test` 构建出的服务器（端到端测试用它）会去取一个不存在的 WASM 文件名。
#[test]
fn cargo_env_output_name_matches() {
    let cargo: toml::Table = include_str!("../../Cargo.toml").parse().unwrap();
    let env: toml::Table = include_str!("../../.cargo/config.toml").parse().unwrap();
    assert_eq!(
        env["env"]["LEPTOS_OUTPUT_NAME"],
        cargo["package"]["metadata"]["leptos"]["output-name"]
    );
    assert_eq!(
        option_env!("LEPTOS_OUTPUT_NAME"),
        cargo["package"]["metadata"]["leptos"]["output-name"].as_str(),
        "这次构建确实带上了它"
    );
}
