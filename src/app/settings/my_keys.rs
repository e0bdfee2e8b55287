//! 成员自己的 `/v1` 密钥（#38）：登录了账号的人在设置页（成员看不到设置，只看到这一节）建、吊销自己的密钥。
//! 这些密钥属于他：用量与额度记在他的账号名下，账号停用时一起失效。接口在 `/api/*`（工作台会话即可）。

use crate::types::codec::JsonStr;
use crate::types::settings::{CreatedKey, KeyInfo};
use crate::types::AppError;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// 要登录了账号（共用密码的会话没有“自己”）。
#[cfg(feature = "ssr")]
async fn owner() -> Result<(crate::access::accounts::Viewer, String), crate::error::ApiError> {
    let viewer = crate::access::accounts::current().await;
    let name = viewer.0.as_ref().map(|p| p.name.clone()).ok_or_else(|| {
        crate::error::ApiError::Forbidden(
            "只有用自己的账号登录时才能建自己的 API 密钥（共用密码登录的请找管理员在设置页建）"
                .into(),
        )
    })?;
    Ok((viewer, name))
}

/// `POST /api/list_my_keys`，`{}`：自己的密钥（只有前缀）；没用账号登录时为 `null`（页面据此不显示这一节）。
#[server(prefix = "/api", endpoint = "list_my_keys", input = JsonStr, output = JsonStr)]
pub async fn list_my_keys() -> Result<Option<Vec<KeyInfo>>, AppError> {
    crate::state::with_state(|s| async move {
        let Ok((_, name)) = owner().await else {
            return Ok(None);
        };
        let config = s.config.load_full();
        Ok(Some(crate::admin::settings::key_infos_of(
            &s,
            &config,
            Some(&name),
        )))
    })
    .await
}

/// `POST /api/create_my_key`，`{"label":"…"}`：建一个属于自己的密钥，原文只在这次返回。
#[server(prefix = "/api", endpoint = "create_my_key", input = JsonStr, output = JsonStr)]
pub async fn create_my_key(label: String) -> Result<CreatedKey, AppError> {
    crate::state::with_state(|s| async move {
        let (viewer, name) = owner().await?;
        let limits = crate::types::settings::KeyLimits::default();
        crate::admin::settings::create_key(&s, &viewer, label, limits, name).await
    })
    .await
}

/// `POST /api/revoke_my_key`，`{"prefix":"…"}`：吊销自己的一个密钥（别人的按不存在处理）。
#[server(prefix = "/api", endpoint = "revoke_my_key", input = JsonStr, output = JsonStr)]
pub async fn revoke_my_key(prefix: String) -> Result<(), AppError> {
    crate::state::with_state(|s| async move {
        let (viewer, name) = owner().await?;
        crate::admin::settings::revoke_key(&s, &viewer, prefix, Some(name)).await
    })
    .await
}

/// “我的 API 密钥”：列表、新建（原文只显示一次）、吊销。没登录账号时什么都不显示。
#[component]
pub fn MyKeys() -> impl IntoView {
    let keys = RwSignal::new(None::<Vec<KeyInfo>>);
    let created = RwSignal::new(None::<CreatedKey>);
    let error = RwSignal::new(None::<String>);
    let label = RwSignal::new(String::new());
    let load = move || {
        spawn_local(async move {
            match list_my_keys().await {
                Ok(list) => keys.set(list),
                Err(e) => error.set(Some(e.message)),
            }
        })
    };
    Effect::new(move |_| load());
    let create = move || {
        let text = label.get_untracked();
        spawn_local(async move {
            match create_my_key(text).await {
                Ok(key) => {
                    created.set(Some(key));
                    error.set(None);
                    label.set(String::new());
                    load();
                }
                Err(e) => error.set(Some(e.message)),
            }
        });
    };
    let revoke = move |prefix: String| {
        spawn_local(async move {
            if let Err(e) = revoke_my_key(prefix).await {
                error.set(Some(e.message));
            }
            load();
        });
    };
    view! {
        <Show when=move || keys.with(Option::is_some)>
            <section class="my-keys" data-testid="my-keys">
                <h2>"我的 API 密钥（/v1）"</h2>
                <p class="hint">"用它调用 /v1 时，用量与额度都记在你的账号名下；你的账号停用时密钥一起失效。"</p>
                {move || created.get().map(|k| view! {
                    <div class="new-key" data-testid="new-key">
                        <p>"新密钥只显示这一次，请立即复制保存："</p>
                        <code>{k.key.clone()}</code>
                        <button type="button" on:click=move |_| super::browser::copy_text(&k.key)>"复制"</button>
                    </div>
                })}
                <ul>
                    {move || keys.get().unwrap_or_default().into_iter().map(|k| {
                        let prefix = k.prefix.clone();
                        view! {
                            <li>{k.label.clone()}" "<code>{format!("{}…", k.prefix)}</code>" "
                                <button type="button" class="danger" on:click=move |_| revoke(prefix.clone())>"吊销"</button>
                            </li>
                        }
                    }).collect_view()}
                </ul>
                <form class="create-key" on:submit=move |ev| {
                    ev.prevent_default();
                    create();
                }>
                    <label>"用途说明"
                        <input type="text" name="my_key_label" prop:value=move || label.get()
                            on:input=move |ev| label.set(event_target_value(&ev))/>
                    </label>
                    <button type="submit">"创建密钥"</button>
                </form>
                {move || error.get().map(|e| view! { <p class="error" role="alert">{e}</p> })}
            </section>
        </Show>
    }
}
