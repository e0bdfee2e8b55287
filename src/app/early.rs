//! 水合之前用户已经做了的事（#42）：页面由服务器渲染、看起来已经能用，WASM 却还要几秒才到（慢网络上 3 秒多）。
//!
//! - [`SCRIPT`] 是页头里的一小段内联脚本（带本次渲染的 CSP nonce），页面一开始就在运行，不等 WASM：
//!   记下水合前用户动过哪些控件（按 `name`）；水合前提交的表单（`form[data-early]`：点了提交按钮，或在带
//!   `data-early-enter` 的输入框里按 Enter）不让浏览器按原生方式提交（那会整页跳转、丢掉输入），而是记下来，
//!   并把表单里 `[data-early-hint]` 的文字换成“加载中…，稍后自动提交”这类说明；水合前拖进表单的文件也拦下
//!   （不让浏览器跳去打开那个文件），提示稍后再添加。
//! - 本文件其余的函数在 island 里读这些东西：**在视图水合之前**读控件此刻的值（水合会按信号的初值重设
//!   `prop:value`/`prop:checked`/`prop:selected`，读晚了就是默认值），水合之后再把它们放进信号（见各页的
//!   `apply_early`），最后取走水合前的提交、照常提交一次。
//!
//! “水合了没有”看 island 根元素的 `data-hydrated`（各 island 水合后在 Effect 里设为 `true`）。
//! 服务端渲染时这些函数什么都读不到（`None`/`false`）。

/// 页头的内联脚本（见模块说明）。只用 `addEventListener`，不用内联的 `on…` 属性（CSP 不允许）。
pub const SCRIPT: &str = r#"(function(){
var early = window.__dfEarly = { touched: {}, submits: {} };
function waiting(el) {
  var island = el && el.closest ? el.closest('[data-hydrated]') : null;
  return !!island && island.getAttribute('data-hydrated') !== 'true';
}
function hint(form, text) {
  var el = form.querySelector('[data-early-hint]');
  if (el) el.textContent = text || el.getAttribute('data-early-hint');
}
function mark(ev) {
  var el = ev.target;
  if (el && el.name && waiting(el)) early.touched[el.name] = true;
}
document.addEventListener('input', mark, true);
document.addEventListener('change', mark, true);
function queue(form, ev) {
  ev.preventDefault();
  early.submits[form.getAttribute('data-early')] = true;
  hint(form);
}
document.addEventListener('submit', function (ev) {
  var form = ev.target;
  if (form && form.hasAttribute && form.hasAttribute('data-early') && waiting(form)) queue(form, ev);
}, true);
document.addEventListener('keydown', function (ev) {
  var el = ev.target;
  if (ev.key !== 'Enter' || ev.shiftKey || ev.isComposing || !el || !el.hasAttribute || !el.hasAttribute('data-early-enter')) return;
  var form = el.form;
  if (form && form.hasAttribute('data-early') && waiting(form)) queue(form, ev);
}, true);
function dropTarget(ev) {
  var form = ev.target && ev.target.closest ? ev.target.closest('form[data-early]') : null;
  return form && waiting(form) ? form : null;
}
document.addEventListener('dragover', function (ev) { if (dropTarget(ev)) ev.preventDefault(); }, true);
document.addEventListener('drop', function (ev) {
  var form = dropTarget(ev);
  if (!form) return;
  ev.preventDefault();
  hint(form, '加载中…，请稍后再添加参考图');
}, true);
})();"#;

#[cfg(feature = "hydrate")]
mod dom {
    use wasm_bindgen::{JsCast, JsValue};

    fn document() -> Option<web_sys::Document> {
        web_sys::window()?.document()
    }

    pub fn element(selector: &str) -> Option<web_sys::Element> {
        document()?.query_selector(selector).ok()?
    }

    /// 元素的一个 JS 属性（`value`、`checked`……）。
    pub fn property(el: &web_sys::Element, key: &str) -> Option<JsValue> {
        let target: &JsValue = el;
        js_sys::Reflect::get(target, &JsValue::from_str(key)).ok()
    }

    /// `window.__dfEarly[group]`（内联脚本建的对象）。
    pub fn early(group: &str) -> Option<JsValue> {
        let window: JsValue = web_sys::window()?.into();
        let early = js_sys::Reflect::get(&window, &JsValue::from_str("__dfEarly")).ok()?;
        if early.is_undefined() || early.is_null() {
            return None;
        }
        js_sys::Reflect::get(&early, &JsValue::from_str(group)).ok()
    }

    /// `window.__dfEarly[group][key]` 是否为真。
    pub fn flag(group: &str, key: &str) -> bool {
        early(group)
            .filter(|g| g.is_object())
            .and_then(|g| js_sys::Reflect::get(&g, &JsValue::from_str(key)).ok())
            .is_some_and(|v| v.is_truthy())
    }

    /// 把 `window.__dfEarly[group][key]` 删掉（取走一次）。
    pub fn clear(group: &str, key: &str) {
        if let Some(g) = early(group).filter(|g| g.is_object()) {
            let _ = js_sys::Reflect::delete_property(
                g.unchecked_ref::<js_sys::Object>(),
                &JsValue::from_str(key),
            );
        }
    }

    /// 焦点是否在这个元素里面。
    pub fn focused_within(selector: &str) -> bool {
        let (Some(el), Some(active)) = (
            element(selector),
            document().and_then(|d| d.active_element()),
        ) else {
            return false;
        };
        let active: &web_sys::Node = &active;
        el.contains(Some(active))
    }
}

/// 水合前用户动过名为 `name` 的控件（内联脚本记下的 `input`/`change`）。
pub fn touched(_name: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        dom::flag("touched", _name)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        false
    }
}

/// `selector` 所指的输入框、文本框或下拉框此刻的 `value`（找不到时为空）。
pub fn value(_selector: &str) -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        let el = dom::element(_selector)?;
        dom::property(&el, "value")?.as_string()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        None
    }
}

/// `selector` 所指的复选框或单选框此刻是否选中（找不到时为空）。
pub fn checked(_selector: &str) -> Option<bool> {
    #[cfg(feature = "hydrate")]
    {
        let el = dom::element(_selector)?;
        dom::property(&el, "checked")?.as_bool()
    }
    #[cfg(not(feature = "hydrate"))]
    {
        None
    }
}

/// 页头的脚本在运行（`window.__dfEarly` 在）。
fn script_ran() -> bool {
    #[cfg(feature = "hydrate")]
    {
        dom::early("touched").is_some_and(|t| t.is_object())
    }
    #[cfg(not(feature = "hydrate"))]
    {
        false
    }
}

/// 水合前的值，只在用户动过这个控件时才算数；没动过的交给记在浏览器里的偏好或默认值。
/// 脚本在运行时只认它记下的“动过”（浏览器自己填回的值不算）；脚本没运行（例如被浏览器扩展拦下）时，
/// 退而看值是否已不是服务器渲染的默认值。`name` 是控件的 `name`，`default` 是服务器渲染的值。
pub fn changed_value(selector: &str, name: &str, default: &str) -> Option<String> {
    value(selector).filter(|v| {
        if script_ran() {
            touched(name)
        } else {
            v != default
        }
    })
}

/// 同 [`changed_value`]，用于复选框。
pub fn changed_checked(selector: &str, name: &str, default: bool) -> Option<bool> {
    checked(selector).filter(|v| {
        if script_ran() {
            touched(name)
        } else {
            *v != default
        }
    })
}

/// 取走水合前提交了的表单（`form[data-early="<form>"]`）：提交过就返回 `true`，只返回一次。
pub fn take_submit(_form: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        let submitted = dom::flag("submits", _form);
        dom::clear("submits", _form);
        submitted
    }
    #[cfg(not(feature = "hydrate"))]
    {
        false
    }
}

/// 焦点是否在 `selector` 所指的元素里（例如水合前用户正在提示词栏里打字）。
pub fn focused_within(_selector: &str) -> bool {
    #[cfg(feature = "hydrate")]
    {
        dom::focused_within(_selector)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        false
    }
}
