//! Leptos.toml（运行时读取）与 Cargo.toml 的 [package.metadata.leptos]（cargo-leptos 构建时读取）必须一致。

#[test]
fn leptos_toml_matches_cargo_metadata() {
    let cargo: toml::Table = include_str!("../Cargo.toml").parse().unwrap();
    let runtime: toml::Table = include_str!("../Leptos.toml").parse().unwrap();
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
