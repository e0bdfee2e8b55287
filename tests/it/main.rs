//! 全部集成测试编成一个测试程序（每个文件一个模块）：整个应用只链接一次，而不是每个文件各链接一次。
//! 它们启动真正的二进制（服务器与演示上游各占一个回环端口），需要精确应答序列时用 wiremock。
//!
//! 除 `leptos_config`（只读两份配置文件）外都要服务端特性。不带它时（一个普通的 `cargo test`）这里只剩
//! `integration_tests_need_the_ssr_feature`，它失败并说出该用的命令，而不是跑 0 个测试报告通过。

#[cfg(feature = "ssr")]
mod common;

#[cfg(feature = "ssr")]
mod access;
#[cfg(feature = "ssr")]
mod accounts;
#[cfg(feature = "ssr")]
mod backup;
#[cfg(feature = "ssr")]
mod batches;
#[cfg(feature = "ssr")]
mod billing;
#[cfg(feature = "ssr")]
mod candidates;
#[cfg(feature = "ssr")]
mod catalogue;
#[cfg(feature = "ssr")]
mod cluster;
#[cfg(feature = "ssr")]
mod config_errors;
#[cfg(feature = "ssr")]
mod demo_faults;
#[cfg(feature = "ssr")]
mod fuzz;
#[cfg(feature = "ssr")]
mod gallery_api;
#[cfg(feature = "ssr")]
mod gateway_policy;
#[cfg(feature = "ssr")]
mod hardening;
#[cfg(feature = "ssr")]
mod jobs;
mod leptos_config;
#[cfg(feature = "ssr")]
mod migrate;
#[cfg(feature = "ssr")]
mod money;
#[cfg(feature = "ssr")]
mod openai_api;
#[cfg(feature = "ssr")]
mod openai_sdks;
#[cfg(feature = "ssr")]
mod prompts;
#[cfg(feature = "ssr")]
mod readme_claims;
#[cfg(feature = "ssr")]
mod region;
#[cfg(feature = "ssr")]
mod routing;
#[cfg(feature = "ssr")]
mod settings;
#[cfg(feature = "ssr")]
mod site;
#[cfg(feature = "ssr")]
mod storage_crash;
#[cfg(feature = "ssr")]
mod storage_files;
#[cfg(feature = "ssr")]
mod storage_s3;
#[cfg(feature = "ssr")]
mod storage_zip;
#[cfg(feature = "ssr")]
mod studio_generate;
#[cfg(feature = "ssr")]
mod task_events;
#[cfg(feature = "ssr")]
mod upstream_dialects;
#[cfg(feature = "ssr")]
mod validation;
#[cfg(feature = "ssr")]
mod wire_fixtures;

/// 不带服务端特性编译时，集成测试一个也没有编进来：让这次 `cargo test` 失败并说出正确的命令。
#[cfg(not(feature = "ssr"))]
#[test]
fn integration_tests_need_the_ssr_feature() {
    panic!("集成测试需要服务端特性：cargo test --features ssr（完整流程：bash scripts/test.sh）");
}
