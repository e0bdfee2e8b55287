//! 全部集成测试编成一个测试程序（每个文件一个模块）：整个应用只链接一次，而不是每个文件各链接一次。
//! 它们启动真正的二进制（服务器与演示上游各占一个回环端口），需要精确应答序列时用 wiremock。
#![cfg(feature = "ssr")]

mod common;

mod access;
mod batches;
mod billing;
mod catalogue;
mod cluster;
mod config_errors;
mod demo_faults;
mod fuzz;
mod gallery_api;
mod gateway_policy;
mod hardening;
mod jobs;
mod leptos_config;
mod migrate;
mod openai_api;
mod openai_sdks;
mod prompts;
mod readme_claims;
mod routing;
mod settings;
mod storage_crash;
mod storage_files;
mod storage_s3;
mod storage_zip;
mod studio_generate;
mod upstream_dialects;
mod validation;
mod wire_fixtures;
