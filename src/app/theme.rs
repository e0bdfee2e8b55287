//! 浅色 / 深色主题：默认跟随系统（`prefers-color-scheme`）；页头的开关改成明确的选择，记在浏览器里（localStorage），
//! 以后每页都用它。
//!
//! 开关不是 island（不为它在每页多下载一块 WASM，`wasm-split.spec.ts` 核对每页只下载自己的 island）：
//! [`SCRIPT`] 是页头里的内联脚本，在页面画出来之前就把记下的选择写到 `<html data-theme>` 上（不闪一下浅色），
//! 并处理开关的点击（水合之前也能用）。CSS 用 `[data-theme="dark"]`，没选过时用 `prefers-color-scheme`。

use super::icon::{self, Icon};
use leptos::prelude::*;

/// localStorage 里的键；值是 `light` 或 `dark`（没有就跟随系统）。测试也用它。
pub const KEY: &str = "drafting-factory.theme";

/// 页头的内联脚本（见模块说明）。
pub const SCRIPT: &str = r#"(function(){
var KEY = 'drafting-factory.theme', root = document.documentElement;
var media = window.matchMedia ? window.matchMedia('(prefers-color-scheme: dark)') : null;
function stored() { try { return localStorage.getItem(KEY); } catch (e) { return null; } }
function current() {
  var t = root.getAttribute('data-theme');
  if (t === 'dark' || t === 'light') return t;
  return media && media.matches ? 'dark' : 'light';
}
function sync() {
  var dark = current() === 'dark';
  var buttons = document.querySelectorAll('[data-theme-toggle]');
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].setAttribute('aria-pressed', dark ? 'true' : 'false');
    buttons[i].setAttribute('title', dark ? '深色主题（点一下换成浅色）' : '浅色主题（点一下换成深色）');
  }
}
var saved = stored();
if (saved === 'dark' || saved === 'light') root.setAttribute('data-theme', saved);
document.addEventListener('DOMContentLoaded', sync);
if (media && media.addEventListener) media.addEventListener('change', sync);
document.addEventListener('click', function (ev) {
  var button = ev.target && ev.target.closest ? ev.target.closest('[data-theme-toggle]') : null;
  if (!button) return;
  var next = current() === 'dark' ? 'light' : 'dark';
  root.setAttribute('data-theme', next);
  try { localStorage.setItem(KEY, next); } catch (e) {}
  sync();
});
})();"#;

/// 页头的深色模式开关（按下 = 深色）。状态由 [`SCRIPT`] 维护。
#[component]
pub fn ThemeToggle() -> impl IntoView {
    view! {
        <button type="button" class="icon-button theme-toggle" data-theme-toggle="" data-testid="theme-toggle"
            aria-pressed="false" aria-label="深色主题" title="切换浅色 / 深色">
            <Icon d=icon::THEME/>
        </button>
    }
}
