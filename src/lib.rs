//! 绘图工厂：Gemini 图像工作台 + OpenAI 兼容图像网关。
//!
//! `app`（Leptos 组件）与 `types`（两端共用的数据类型）编译进服务端与 WASM；
//! 其余模块只在服务端（`ssr` 特性）编译，WASM 包只带界面。
//! 各模块管什么，见 README 的“代码布局”一节。

#![recursion_limit = "256"]
pub mod app;
pub mod types;

#[cfg(feature = "ssr")]
pub mod access;
#[cfg(feature = "ssr")]
pub mod admin;
#[cfg(feature = "ssr")]
pub mod admit;
#[cfg(feature = "ssr")]
pub mod atomic_file;
#[cfg(feature = "ssr")]
pub mod catalogue;
#[cfg(feature = "ssr")]
pub mod cli;
#[cfg(feature = "ssr")]
pub mod cli_backup;
#[cfg(feature = "ssr")]
pub mod cli_user;
#[cfg(feature = "ssr")]
pub mod cluster_breakers;
#[cfg(feature = "ssr")]
pub mod config;
#[cfg(feature = "ssr")]
pub mod decode;
#[cfg(feature = "ssr")]
pub mod demo;
#[cfg(feature = "ssr")]
pub mod error;
#[cfg(feature = "ssr")]
pub mod files;
#[cfg(feature = "ssr")]
pub mod gateway;
#[cfg(feature = "ssr")]
pub mod hash;
#[cfg(feature = "ssr")]
pub mod jobs;
#[cfg(feature = "ssr")]
pub mod listeners;
#[cfg(feature = "ssr")]
pub mod metrics;
#[cfg(feature = "ssr")]
pub mod openai;
#[cfg(feature = "ssr")]
pub mod produce;
#[cfg(feature = "ssr")]
pub mod prompts;
#[cfg(feature = "ssr")]
pub mod region;
#[cfg(feature = "ssr")]
pub mod server;
#[cfg(feature = "ssr")]
pub mod state;
#[cfg(feature = "ssr")]
pub mod storage;
#[cfg(feature = "ssr")]
pub mod usage;
#[cfg(feature = "ssr")]
pub mod web;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}
