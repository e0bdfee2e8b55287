//! 设置页的“存储”与“监听”两节。

use super::Page;
use leptos::prelude::*;

fn format_bytes(b: u64) -> String {
    format!("{:.1} GB", b as f64 / 1_073_741_824.0)
}

#[component]
pub fn StorageAndListen(page: Page) -> impl IntoView {
    view! {
        <h2>"存储"</h2>
        <label class="wide">"新图片写到"
            <input type="text" aria-label="存储目录" prop:value=move || page.root.get()
                on:change=move |ev| page.root.set(event_target_value(&ev))/>
        </label>
        <p class="hint">"改目录只影响之后的新图片；旧图片不移动，照常可看可下载。数据库："{move || page.saved.with(|v| v.database.clone())}</p>
        <ul class="roots">
            {move || page.saved.with(|v| v.roots.clone()).into_iter().map(|r| view! {
                <li>{format!("{} — {} 张{}", r.path, r.images,
                    r.free_bytes.map(|b| format!("，可用 {}", format_bytes(b))).unwrap_or_default())}</li>
            }).collect_view()}
        </ul>

        <h2>"监听"</h2>
        <label class="wide">"地址与端口（IP:端口）"
            <input type="text" aria-label="监听地址" prop:value=move || page.listen.get()
                on:change=move |ev| page.listen.set(event_target_value(&ev))/>
        </label>
        <p class="hint">"保存时先在新地址上监听；不成功则原地址继续服务并说明原因。成功后页面跳到新地址，原地址处理完在途请求后关闭。"</p>
    }
}
