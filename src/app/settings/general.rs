//! 设置页的“存储”“监听”与“工作台密码”三节。

use super::Page;
use crate::types::settings::S3Form;
use leptos::prelude::*;

fn format_bytes(b: u64) -> String {
    format!("{:.1} GB", b as f64 / 1_073_741_824.0)
}

/// 对象存储的连接：地址、区域、访问密钥 ID 与密钥（只写）。保存前服务器会真的写一个对象试试。
#[component]
fn ObjectStore(page: Page) -> impl IntoView {
    let field =
        move |label: &'static str, get: fn(&S3Form) -> String, set: fn(&mut S3Form, String)| {
            view! {
                <label>{label}
                    <input type="text" aria-label=label prop:value=move || page.s3.with(get)
                        on:change=move |ev| page.s3.update(|s| set(s, event_target_value(&ev)))/>
                </label>
            }
        };
    view! {
        <div class="object-store">
            {field("对象存储地址（AWS 留空）", |s| s.endpoint.clone(), |s, v| s.endpoint = v)}
            {field("区域", |s| s.region.clone(), |s, v| s.region = v)}
            {field("访问密钥 ID", |s| s.access_key_id.clone(), |s, v| s.access_key_id = v)}
            <label>{move || if page.saved.with(|v| v.s3.secret_set) { "密钥（已设置，留空不改）" } else { "密钥" }}
                <input type="password" autocomplete="off" aria-label="对象存储密钥"
                    prop:value=move || page.s3.with(|s| s.secret_access_key.clone())
                    on:input=move |ev| page.s3.update(|s| s.secret_access_key = event_target_value(&ev))/>
            </label>
        </div>
        <p class="hint">"留空的项取服务器的 AWS_* 环境变量。保存时会往桶里写一个小对象再删掉，写不进去就不保存。"</p>
    }
}

#[component]
pub fn StorageAndListen(page: Page) -> impl IntoView {
    view! {
        <h2>"存储"</h2>
        <label class="wide">"新图片写到"
            <input type="text" aria-label="存储目录" prop:value=move || page.root.get()
                on:change=move |ev| page.root.set(event_target_value(&ev))/>
        </label>
        <p class="hint">"改目录只影响之后的新图片；旧图片不移动，照常可看可下载。写成 s3://桶/前缀 即放进 S3 兼容的对象存储。数据库："{move || page.saved.with(|v| v.database.clone())}</p>
        <Show when=move || page.root.with(|r| r.trim().starts_with("s3://"))>
            <ObjectStore page=page/>
        </Show>
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
        <p class="hint">"保存时先在新地址上监听；不成功则原地址继续服务并说明原因。成功后页面跳到新地址，原地址处理完在途请求后关闭。"
            {move || page.saved.with(|v| v.shared_version.is_some()).then_some(
                "几个实例共用设置时，监听地址只改这个页面所在的实例（写进它本机的配置文件），其它实例不变。")}</p>

        <h2>"工作台密码"</h2>
        <p class="hint">{move || if page.saved.with(|v| v.studio_password_set) {
            "已设置：打开工作台、图库与图片要先登录。填新密码即更换。"
        } else {
            "未设置：能访问此端口的任何人都能使用工作台。给局域网或公网用时请设置。"
        }}</p>
        <div class="studio-password">
            <label>"新的工作台密码（至少 8 个字符，留空不改）"
                <input type="password" autocomplete="new-password" aria-label="新的工作台密码"
                    prop:value=move || page.studio_password.get()
                    on:input=move |ev| page.studio_password.set(event_target_value(&ev))/>
            </label>
            <Show when=move || page.saved.with(|v| v.studio_password_set)>
                <label class="flag">
                    <input type="checkbox" prop:checked=move || page.clear_studio_password.get()
                        on:change=move |ev| page.clear_studio_password.set(event_target_checked(&ev))/>
                    "清除工作台密码"
                </label>
            </Show>
        </div>
    }
}
