//! 工作台登录页（`/login`）：设了工作台密码时，没有会话的页面请求都跳到这里，登录后回到原来要去的页面。

use super::browser;
use leptos::prelude::*;

/// 登录后跳去的地方只能是本站的路径，免得登录页被用来跳到别的网站：以一个 `/` 开头、第二个字符不是 `/` 或 `\`
/// （浏览器把 `\` 当作 `/`，`/\evil.example` 就是 `//evil.example`），也不含反斜杠与控制字符。
pub fn is_same_site_path(next: &str) -> bool {
    let mut chars = next.chars();
    chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && !next.chars().any(|c| c == '\\' || c.is_control())
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = leptos_router::hooks::use_query_map();
    let next = query
        .with_untracked(|q| q.get("next"))
        .filter(|n| is_same_site_path(n))
        .unwrap_or_else(|| "/".into());
    view! {
        <section class="login-page">
            <h1>"登录绘图工厂"</h1>
            <p class="hint">"有账号的填账号名与自己的密码；团队还在用共用密码的，账号名留空、填工作台密码。"</p>
            <LoginForm next/>
        </section>
    }
}

/// 登录表单。水合之前输入的密码不丢、按下的“登录”不丢（#42）：密码在视图水合之前读，
/// 水合前的提交由页头的脚本记下（`app/early.rs`），水合后照样登录一次。
#[island(lazy)]
fn LoginForm(next: String) -> impl IntoView {
    // 在视图水合之前读（水合会把密码框重设为信号的初值）。
    let mut early_password = Some(crate::app::early::value(
        "form.login input[name=\"password\"]",
    ));
    let mut early_name = Some(crate::app::early::value("form.login input[name=\"name\"]"));
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let hydrated = RwSignal::new(false);
    let submit = move || {
        let next = next.clone();
        let body = serde_json::json!({
            "name": name.get_untracked().trim(),
            "password": password.get_untracked(),
        });
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match browser::post_json("/login", &body).await {
                Ok(()) => browser::go_to(&next),
                Err(reason) => {
                    error.set(Some(reason));
                    busy.set(false);
                }
            }
        });
    };
    {
        let submit = submit.clone();
        Effect::new(move |_| {
            hydrated.set(true);
            let Some(early) = early_password.take() else {
                return;
            };
            untrack(|| {
                if let Some(text) = early_name.take().flatten().filter(|t| !t.is_empty()) {
                    name.set(text);
                }
                if let Some(text) = early.filter(|t| !t.is_empty()) {
                    password.set(text);
                }
                if crate::app::early::take_submit("login") {
                    submit();
                }
            });
        });
    }
    view! {
        <form class="login" data-early="login" data-hydrated=move || hydrated.get().to_string() on:submit=move |ev| {
            ev.prevent_default();
            submit();
        }>
            <label>"账号名（没有账号就留空）"
                <input type="text" name="name" autocomplete="username" autofocus
                    prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))/>
            </label>
            <label>"密码"
                <input type="password" name="password" autocomplete="current-password"
                    prop:value=move || password.get()
                    on:input=move |ev| password.set(event_target_value(&ev))/>
            </label>
            <button type="submit" disabled=move || busy.get()
                aria-busy=move || (!hydrated.get() || busy.get()).then_some("true")>"登录"</button>
            <Show when=move || !hydrated.get()>
                <p class="early-hint" role="status" data-early-hint="加载中…，稍后自动登录">"加载中…"</p>
            </Show>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
            </Show>
        </form>
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_same_site_paths_are_followed_after_login() {
        for ok in ["/", "/gallery?page=2", "/prompts#新"] {
            assert!(super::is_same_site_path(ok), "{ok}");
        }
        for bad in [
            "",
            "gallery",
            "//evil.example",
            "/\\evil.example",
            "/\\/evil.example",
            "/a\\b",
            "/\t/evil.example",
            "https://evil.example",
        ] {
            assert!(!super::is_same_site_path(bad), "{bad:?}");
        }
    }
}
