//! 页面（前后端共用）：外壳、路由与各页面。只有需要交互的部分是 island，其余都在服务端渲染。
//! 每个页面一个文件夹：服务器函数、页面与它的组件；两端共用的数据类型在 `crate::types`。

pub mod browser;
pub mod early;
pub mod gallery;
pub mod icon;
pub mod login;
pub mod prompts;
pub mod settings;
pub mod star;
pub mod studio;
pub mod theme;
pub mod usage;

use crate::types::PageInfo;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{FlatRoutes, Route, Router};
use leptos_router::StaticSegment;

pub fn shell(options: LeptosOptions) -> impl IntoView {
    // 页面的内容安全策略：内联脚本只认这次渲染的随机 nonce（leptos 给它自己的内联脚本都加上了）。
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) {
        // 图片由浏览器直接向对象存储取（storage.s3.presign）时，放行对象存储的地址。
        let images = use_context::<crate::state::AppState>()
            .and_then(|state| state.storage.blobs().image_origin())
            .map(|origin| format!(" {origin}"))
            .unwrap_or_default();
        let policy = crate::access::PAGE_CSP
            .replace("{nonce}", &nonce)
            .replace("{images}", &images);
        if let Ok(value) = axum::http::HeaderValue::from_str(&policy) {
            response.insert_header(axum::http::header::CONTENT_SECURITY_POLICY, value);
        }
    }
    let nonce = leptos::nonce::use_nonce();
    view! {
        <!DOCTYPE html>
        <html lang="zh-CN">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                // 画出页面之前：记下的主题写到 <html data-theme> 上；水合之前的输入与提交不丢（见 theme.rs、early.rs）。
                <script nonce=nonce.clone()>{theme::SCRIPT}</script>
                <script nonce=nonce>{early::SCRIPT}</script>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <HydrationScripts options islands=true/>
                {page_preloads()}
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// 本页 island 的 WASM 块与拆分加载器的预加载：与主 WASM 一起下载，不等水合开始才去要（见 `crate::web::preload`）。
#[cfg(feature = "ssr")]
fn page_preloads() -> impl IntoView {
    use_context::<crate::state::AppState>()
        .zip(use_context::<axum::http::request::Parts>())
        .map(|(state, parts)| crate::web::preload::links(&state.preloads, parts.uri.path()))
}

#[cfg(not(feature = "ssr"))]
fn page_preloads() -> impl IntoView {}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="leptos" href="/pkg/drafting-factory.css"/>
        <Title text="绘图工厂"/>
        <Router>
            <Header/>
            <main>
                <FlatRoutes fallback=|| view! { <p class="not-found">"页面不存在"</p> }>
                    <Route path=StaticSegment("") view=studio::StudioPage/>
                    <Route path=StaticSegment("gallery") view=gallery::GalleryPage/>
                    <Route path=StaticSegment("prompts") view=prompts::PromptsPage/>
                    <Route path=StaticSegment("settings") view=settings::SettingsPage/>
                    <Route path=StaticSegment("usage") view=usage::UsagePage/>
                    <Route path=StaticSegment("login") view=login::LoginPage/>
                </FlatRoutes>
            </main>
        </Router>
    }
}

/// 页头：名称、导航（工作台 / 图库 / 提示词库 / 设置 / 用量）、深色模式开关、演示模式标记与退出。
/// “用量”一项同时是上游状态的指示（前面的圆点按状态变色）。手机上名称不显示（“工作台”就是首页），
/// 导航项不换行（`white-space: nowrap`），一行放得下。
#[component]
fn Header() -> impl IntoView {
    let info = use_context::<PageInfo>();
    let demo_mode = info.as_ref().is_some_and(|p| p.demo_mode);
    let exposed = info.as_ref().is_some_and(|p| p.exposed);
    let studio_login = info.as_ref().is_some_and(|p| p.studio_login);
    let health = info.as_ref().map(|p| p.health).unwrap_or_default();
    // 登录的账号：页头写着是谁（管理员后面注明）。
    let me = info.as_ref().and_then(|p| p.me.clone()).map(|m| {
        let role = if m.admin { "（管理员）" } else { "" };
        view! { <span class="who" data-testid="me" title=format!("账号：{}", m.name)>{m.display_name}{role}</span> }
    });
    let path = leptos_router::hooks::use_location().pathname;
    let current = move |href: &'static str| (path.get() == href).then_some("page");
    view! {
        <header class="top">
            <a class="brand" href="/">"绘图工厂"</a>
            <nav class="main-nav" aria-label="主导航">
                <a href="/" aria-current=move || current("/")>"工作台"</a>
                <a href="/gallery" aria-current=move || current("/gallery")>"图库"</a>
                <a href="/prompts" aria-current=move || current("/prompts")>"提示词库"</a>
                <a href="/settings" aria-current=move || current("/settings")>"设置"</a>
                <a class="health" href="/usage" data-testid="health" aria-current=move || current("/usage")
                    data-health=format!("{health:?}").to_lowercase()
                    title=format!("上游状态：{}（点开看用量与上游状态）", health.label())
                    aria-label=format!("上游状态：{}，查看用量", health.label())>
                    <span class="dot" aria-hidden="true"></span>"用量"
                </a>
            </nav>
            <div class="header-tools">
                <Show when=move || demo_mode>
                    <span class="demo-badge" title="未配置上游，图像由内置演示上游绘制">"演示"<span class="long">"模式"</span></span>
                </Show>
                <theme::ThemeToggle/>
                {me}
                <Show when=move || studio_login>
                    <form class="logout" method="post" action="/logout">
                        <button type="submit" formaction="/logout">"退出"</button>
                    </form>
                </Show>
            </div>
        </header>
        <Show when=move || exposed>
            <p class="exposed-warning" role="alert" data-testid="exposed-warning">
                "任何能访问此端口的人都能用你的额度生成、查看和删除图片。请在配置里设置工作台密码（auth.studio_password_hash），/v1 只用 API 密钥开放。"
            </p>
        </Show>
    }
}
