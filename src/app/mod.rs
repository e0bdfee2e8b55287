//! 页面（前后端共用）：外壳、路由与各页面。只有需要交互的部分是 island，其余都在服务端渲染。
//! 每个页面一个文件夹：服务器函数、页面与它的组件；两端共用的数据类型在 `crate::types`。

pub mod browser;
pub mod gallery;
pub mod settings;
pub mod studio;

use crate::types::PageInfo;
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::components::{FlatRoutes, Route, Router};
use leptos_router::StaticSegment;

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="zh-CN">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <HydrationScripts options islands=true/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

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
                    <Route path=StaticSegment("settings") view=settings::SettingsPage/>
                </FlatRoutes>
            </main>
        </Router>
    }
}

#[component]
fn Header() -> impl IntoView {
    let demo_mode = use_context::<PageInfo>().is_some_and(|p| p.demo_mode);
    let path = leptos_router::hooks::use_location().pathname;
    let current = move |href: &'static str| (path.get() == href).then_some("page");
    view! {
        <header class="top">
            <a class="brand" href="/">"绘图工厂"</a>
            <nav>
                <a href="/" aria-current=move || current("/")>"工作台"</a>
                <a href="/gallery" aria-current=move || current("/gallery")>"图库"</a>
                <a href="/settings" aria-current=move || current("/settings")>"设置"</a>
            </nav>
            <Show when=move || demo_mode>
                <span class="demo-badge" title="未配置上游，图像由内置演示上游绘制">"演示模式"</span>
            </Show>
        </header>
    }
}
