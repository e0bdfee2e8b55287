//! 设置页（管理员）：上游、存储、限流/重试/超时/并发。保存时服务器整份校验，通过才写入配置文件并立即生效。
//! 数据经 `/admin/api/*` 收发（见 `crate::admin`）；密钥只能写入，页面只知道“已设置”与否。

use super::browser::{self, CallError};
use super::settings_types::{
    CreatedKey, Numbers, ProbeResult, SettingsUpdate, SettingsView, UpstreamForm,
};
use leptos::prelude::*;
use leptos::task::spawn_local;

#[component]
pub fn SettingsPage() -> impl IntoView {
    view! { <Settings/> }
}

/// 页面处在哪一步。
#[derive(Clone, PartialEq)]
enum Stage {
    Loading,
    /// 需要登录。
    Login,
    /// 不允许（例如没设密码且不是从本机访问），附原因。
    Refused(String),
    Ready,
}

/// 数字项：标签、配置名、读、写。
type NumberField = (
    &'static str,
    &'static str,
    fn(&Numbers) -> u64,
    fn(&mut Numbers, u64),
);

const NUMBER_FIELDS: [NumberField; 13] = [
    (
        "每分钟请求数",
        "limits.requests_per_minute",
        |n| n.requests_per_minute as u64,
        |n, v| n.requests_per_minute = v as u32,
    ),
    (
        "突发",
        "limits.burst",
        |n| n.burst as u64,
        |n, v| n.burst = v as u32,
    ),
    (
        "全局并发上限",
        "limits.max_concurrent",
        |n| n.max_concurrent as u64,
        |n, v| n.max_concurrent = v as u32,
    ),
    (
        "排队上限",
        "limits.queue_size",
        |n| n.queue_size as u64,
        |n, v| n.queue_size = v as u32,
    ),
    (
        "每个上游最多尝试次数",
        "retry.max_attempts",
        |n| n.max_attempts as u64,
        |n, v| n.max_attempts = v as u32,
    ),
    (
        "重试基础间隔（毫秒）",
        "retry.base_delay_ms",
        |n| n.base_delay_ms,
        |n, v| n.base_delay_ms = v,
    ),
    (
        "重试最大间隔（毫秒）",
        "retry.max_delay_ms",
        |n| n.max_delay_ms,
        |n, v| n.max_delay_ms = v,
    ),
    (
        "熔断：连续失败次数",
        "retry.breaker_failures",
        |n| n.breaker_failures as u64,
        |n, v| n.breaker_failures = v as u32,
    ),
    (
        "熔断：暂停秒数",
        "retry.breaker_cooldown_s",
        |n| n.breaker_cooldown_s,
        |n, v| n.breaker_cooldown_s = v,
    ),
    (
        "连接超时（毫秒）",
        "timeouts.connect_ms",
        |n| n.connect_ms,
        |n, v| n.connect_ms = v,
    ),
    (
        "单次尝试超时（秒）",
        "timeouts.attempt_s",
        |n| n.attempt_s,
        |n, v| n.attempt_s = v,
    ),
    (
        "总时限（秒）",
        "timeouts.total_s",
        |n| n.total_s,
        |n, v| n.total_s = v,
    ),
    (
        "参考图大小上限（MB）",
        "storage.max_upload_mb",
        |n| n.max_upload_mb as u64,
        |n, v| n.max_upload_mb = v as u32,
    ),
];

fn reason(e: CallError) -> String {
    match e {
        CallError::Unauthorized => "请先登录（会话不存在或已过期）".into(),
        CallError::Failed(reason) => reason,
    }
}

fn format_bytes(b: u64) -> String {
    format!("{:.1} GB", b as f64 / 1_073_741_824.0)
}

#[island]
fn Settings() -> impl IntoView {
    let stage = RwSignal::new(Stage::Loading);
    let view_data = RwSignal::new(SettingsView::default());
    let upstreams = RwSignal::new(Vec::<UpstreamForm>::new());
    let root = RwSignal::new(String::new());
    let listen = RwSignal::new(String::new());
    let numbers = RwSignal::new(Numbers::default());
    let message = RwSignal::new(None::<(bool, String)>);
    let probes = RwSignal::new(std::collections::HashMap::<usize, ProbeResult>::new());
    let password = RwSignal::new(String::new());
    let hydrated = RwSignal::new(false);

    let apply_view = move |v: SettingsView| {
        upstreams.set(v.upstreams.clone());
        root.set(v.storage_root.clone());
        listen.set(v.listen.clone());
        numbers.set(v.numbers.clone());
        view_data.set(v);
        stage.set(Stage::Ready);
    };
    let load = move || {
        spawn_local(async move {
            match browser::call_json::<SettingsView>("GET", "/admin/api/settings", None).await {
                Ok(Some(v)) => apply_view(v),
                Ok(None) => {}
                Err(CallError::Unauthorized) => stage.set(Stage::Login),
                Err(CallError::Failed(reason)) => stage.set(Stage::Refused(reason)),
            }
        });
    };
    Effect::new(move |_| {
        hydrated.set(true);
        load();
    });

    let login = move || {
        let body = serde_json::json!({"password": password.get_untracked()}).to_string();
        spawn_local(async move {
            match browser::call_json::<()>("POST", "/admin/login", Some(body)).await {
                Ok(_) => {
                    password.set(String::new());
                    message.set(None);
                    load();
                }
                Err(e) => message.set(Some((false, reason(e)))),
            }
        });
    };
    let logout = move || {
        spawn_local(async move {
            let _ = browser::call_json::<()>("POST", "/admin/logout", None).await;
            stage.set(Stage::Login);
        });
    };
    let save = move || {
        let update = SettingsUpdate {
            upstreams: upstreams.get_untracked(),
            storage_root: root.get_untracked(),
            numbers: numbers.get_untracked(),
            listen: listen.get_untracked(),
        };
        let old_listen = view_data.with_untracked(|v| v.listen.clone());
        let body = serde_json::to_string(&update).unwrap_or_default();
        message.set(None);
        spawn_local(async move {
            match browser::call_json::<SettingsView>("PUT", "/admin/api/settings", Some(body)).await
            {
                Ok(v) => {
                    let moved = v
                        .as_ref()
                        .filter(|v| v.listen != old_listen)
                        .map(|v| v.listen.clone());
                    if let Some(v) = v {
                        apply_view(v);
                    }
                    match moved {
                        Some(addr) => {
                            message.set(Some((true, format!("已保存；正在跳转到新地址 {addr}……"))));
                            browser::go_to_listen_address(&addr, "/settings");
                        }
                        None => message.set(Some((true, "已保存，并已生效".into()))),
                    }
                }
                Err(CallError::Unauthorized) => stage.set(Stage::Login),
                Err(e) => message.set(Some((false, reason(e)))),
            }
        });
    };
    let probe = move |i: usize| {
        let Some(form) = upstreams.with_untracked(|l| l.get(i).cloned()) else {
            return;
        };
        let body = serde_json::json!({"upstream": form}).to_string();
        let failed = |message: String| ProbeResult {
            ok: false,
            latency_ms: 0,
            message,
        };
        probes.update(|p| {
            p.insert(i, failed("测试中……".into()));
        });
        spawn_local(async move {
            let result = match browser::call_json::<ProbeResult>(
                "POST",
                "/admin/api/test-upstream",
                Some(body),
            )
            .await
            {
                Ok(Some(r)) => r,
                Ok(None) => failed("没有结果".into()),
                Err(e) => failed(reason(e)),
            };
            probes.update(|p| {
                p.insert(i, result);
            });
        });
    };
    let new_key_label = RwSignal::new(String::new());
    let created = RwSignal::new(None::<CreatedKey>);
    let create_key = move || {
        let body = serde_json::json!({"label": new_key_label.get_untracked()}).to_string();
        message.set(None);
        spawn_local(async move {
            match browser::call_json::<CreatedKey>("POST", "/admin/api/keys", Some(body)).await {
                Ok(key) => {
                    created.set(key);
                    new_key_label.set(String::new());
                    load();
                }
                Err(CallError::Unauthorized) => stage.set(Stage::Login),
                Err(e) => message.set(Some((false, reason(e)))),
            }
        });
    };
    let revoke = move |prefix: String| {
        spawn_local(async move {
            let url = format!("/admin/api/keys/{prefix}");
            match browser::call_json::<()>("DELETE", &url, None).await {
                Ok(_) => {
                    message.set(Some((true, format!("已吊销 {prefix}…"))));
                    load();
                }
                Err(CallError::Unauthorized) => stage.set(Stage::Login),
                Err(e) => message.set(Some((false, reason(e)))),
            }
        });
    };
    let models = RwSignal::new(std::collections::HashMap::<
        usize,
        Result<Vec<String>, String>,
    >::new());
    let fetch_models = move |i: usize| {
        let Some(form) = upstreams.with_untracked(|l| l.get(i).cloned()) else {
            return;
        };
        let body = serde_json::json!({"upstream": form}).to_string();
        spawn_local(async move {
            let result = match browser::call_json::<Vec<String>>(
                "POST",
                "/admin/api/list-models",
                Some(body),
            )
            .await
            {
                Ok(list) => Ok(list.unwrap_or_default()),
                Err(e) => Err(reason(e)),
            };
            models.update(|m| {
                m.insert(i, result);
            });
        });
    };
    let edit = move |i: usize, f: fn(&mut UpstreamForm, String), value: String| {
        upstreams.update(|l| {
            if let Some(u) = l.get_mut(i) {
                f(u, value);
            }
        });
    };
    let text_field =
        move |i: usize, label: &'static str, value: String, f: fn(&mut UpstreamForm, String)| {
            view! {
                <label>{label}
                    <input type="text" value=value aria-label=label
                        on:change=move |ev| edit(i, f, event_target_value(&ev))/>
                </label>
            }
        };

    view! {
        <section class="settings" data-hydrated=move || hydrated.get().to_string()>
            <h1>"设置"</h1>
            {move || message.get().map(|(ok, text)| view! {
                <p class=if ok { "notice ok" } else { "notice error" } role="alert">{text}</p>
            })}
            {move || match stage.get() {
                Stage::Loading => view! { <p class="loading">"加载中……"</p> }.into_any(),
                Stage::Refused(reason) => view! { <p class="error">{reason}</p> }.into_any(),
                Stage::Login => view! {
                    <form class="login" on:submit=move |ev| { ev.prevent_default(); login(); }>
                        <label>"管理员密码"
                            <input type="password" autocomplete="current-password"
                                prop:value=move || password.get()
                                on:input=move |ev| password.set(event_target_value(&ev))/>
                        </label>
                        <button type="submit">"登录"</button>
                    </form>
                }.into_any(),
                Stage::Ready => view! {
                    <div class="settings-body">
                        <p class="meta">
                            {move || format!("配置文件：{}", view_data.with(|v| v.config_path.clone()))}
                            {move || if view_data.with(|v| v.admin_password_set) {
                                view! { <button type="button" on:click=move |_| logout()>"退出登录"</button> }.into_any()
                            } else {
                                view! { <span class="hint">"未设置管理员密码，仅本机可访问。运行 drafting-factory hash-password 生成哈希，填到 auth.admin_password_hash。"</span> }.into_any()
                            }}
                        </p>

                        <h2>"上游"</h2>
                        <p class="hint">"排在前面的先用；失败时按顺序切换到下一个。密钥只能写入：留空表示不改。"</p>
                        <div class="upstreams">
                            {move || upstreams.get().into_iter().enumerate().map(|(i, u)| {
                                let key_placeholder = if u.api_key_set { "已设置（留空不改）" } else { "未设置" };
                                let kind = u.kind.clone();
                                view! {
                                    <fieldset class="upstream" data-testid="upstream">
                                        <legend>{format!("第 {} 个", i + 1)}</legend>
                                        {text_field(i, "名称", u.name.clone(), |u, v| u.name = v)}
                                        <label>"类型"
                                            <select aria-label="类型" on:change=move |ev| edit(i, |u, v| u.kind = v, event_target_value(&ev))>
                                                {["gemini", "openai-images", "openai-chat"].into_iter().map(|k| view! {
                                                    <option value=k selected=kind == k>{k}</option>
                                                }).collect_view()}
                                            </select>
                                        </label>
                                        {text_field(i, "地址", u.base_url.clone(), |u, v| u.base_url = v)}
                                        {text_field(i, "模型", u.model.clone(), |u, v| u.model = v)}
                                        <label>"API 密钥"
                                            <input type="password" autocomplete="off" placeholder=key_placeholder aria-label="API 密钥"
                                                on:change=move |ev| edit(i, |u, v| u.api_key = v, event_target_value(&ev))/>
                                        </label>
                                        <div class="row-actions">
                                            <button type="button" on:click=move |_| probe(i)>"测试连接"</button>
                                            <button type="button" on:click=move |_| fetch_models(i)>"获取模型列表"</button>
                                            <button type="button" disabled=i == 0 on:click=move |_| upstreams.update(|l| l.swap(i - 1, i))>"上移"</button>
                                            <button type="button" on:click=move |_| upstreams.update(|l| { if i + 1 < l.len() { l.swap(i, i + 1) } })>"下移"</button>
                                            <button type="button" class="danger" on:click=move |_| upstreams.update(|l| { l.remove(i); })>"删除"</button>
                                            <span class="probe" data-testid="probe">{move || probes.with(|p| p.get(&i).map(|r| {
                                                format!("{}{}", if r.ok { "✓ " } else { "✗ " }, r.message)
                                            }))}</span>
                                        </div>
                                        {move || models.with(|m| m.get(&i).cloned()).map(|r| match r {
                                            Ok(list) => view! {
                                                <div class="model-list" data-testid="models">
                                                    {list.into_iter().map(|name| {
                                                        let pick = name.clone();
                                                        view! {
                                                            <button type="button" title="用这个模型"
                                                                on:click=move |_| edit(i, |u, v| u.model = v, pick.clone())>{name}</button>
                                                        }
                                                    }).collect_view()}
                                                </div>
                                            }.into_any(),
                                            Err(e) => view! { <p class="error">{e}</p> }.into_any(),
                                        })}
                                    </fieldset>
                                }
                            }).collect_view()}
                        </div>
                        <button type="button" on:click=move |_| upstreams.update(|l| l.push(UpstreamForm {
                            name: format!("上游{}", l.len() + 1),
                            kind: "gemini".into(),
                            model: "gemini-3-pro-image-preview".into(),
                            ..Default::default()
                        }))>"添加上游"</button>
                        <p class="hint">"一个上游都没有时，使用内置的演示上游。"</p>

                        <h2>"存储"</h2>
                        <label class="wide">"新图片写到"
                            <input type="text" aria-label="存储目录" prop:value=move || root.get()
                                on:change=move |ev| root.set(event_target_value(&ev))/>
                        </label>
                        <p class="hint">"改目录只影响之后的新图片；旧图片不移动，照常可看可下载。数据库："{move || view_data.with(|v| v.database.clone())}</p>
                        <ul class="roots">
                            {move || view_data.with(|v| v.roots.clone()).into_iter().map(|r| view! {
                                <li>{format!("{} — {} 张{}", r.path, r.images,
                                    r.free_bytes.map(|b| format!("，可用 {}", format_bytes(b))).unwrap_or_default())}</li>
                            }).collect_view()}
                        </ul>

                        <h2>"监听"</h2>
                        <label class="wide">"地址与端口（IP:端口）"
                            <input type="text" aria-label="监听地址" prop:value=move || listen.get()
                                on:change=move |ev| listen.set(event_target_value(&ev))/>
                        </label>
                        <p class="hint">"保存时先在新地址上监听；不成功则原地址继续服务并说明原因。成功后页面跳到新地址，原地址处理完在途请求后关闭。"</p>

                        <h2>"API 密钥（/v1）"</h2>
                        <p class="hint">{move || {
                            let plain = view_data.with(|v| v.plain_keys);
                            let mut hint = "一个密钥都没有时，/v1 不要求密钥。".to_string();
                            if plain > 0 {
                                hint = format!("另有 {plain} 个密钥写在配置文件或环境变量里（不在此显示）。");
                            }
                            hint
                        }}</p>
                        {move || created.get().map(|k| view! {
                            <div class="new-key" data-testid="new-key">
                                <p>"新密钥只显示这一次，请立即复制保存："</p>
                                <code>{k.key.clone()}</code>
                                <button type="button" on:click=move |_| browser::copy_text(&k.key)>"复制"</button>
                            </div>
                        })}
                        <table class="keys">
                            <thead><tr><th>"用途"</th><th>"前缀"</th><th>"创建时间"</th><th>"最近使用"</th><th></th></tr></thead>
                            <tbody>
                                {move || view_data.with(|v| v.keys.clone()).into_iter().map(|k| {
                                    let prefix = k.prefix.clone();
                                    view! {
                                        <tr data-testid="key-row">
                                            <td>{k.label.clone()}</td>
                                            <td><code>{format!("{}…", k.prefix)}</code></td>
                                            <td>{k.created_at.clone()}</td>
                                            <td>{k.last_used.clone().unwrap_or_else(|| "从未".into())}</td>
                                            <td><button type="button" class="danger" on:click=move |_| revoke(prefix.clone())>"吊销"</button></td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                        <form class="create-key" on:submit=move |ev| { ev.prevent_default(); create_key(); }>
                            <label>"用途说明"
                                <input type="text" aria-label="用途说明" prop:value=move || new_key_label.get()
                                    on:input=move |ev| new_key_label.set(event_target_value(&ev))/>
                            </label>
                            <button type="submit">"创建密钥"</button>
                        </form>

                        <h2>"限流、重试、超时与并发"</h2>
                        <div class="numbers">
                            {NUMBER_FIELDS.into_iter().map(|(label, key, get, set)| view! {
                                <label title=key>{label}
                                    <input type="number" min="0" aria-label=label
                                        prop:value=move || numbers.with(|n| get(n).to_string())
                                        on:change=move |ev| {
                                            match event_target_value(&ev).trim().parse::<u64>() {
                                                Ok(v) => numbers.update(|n| set(n, v)),
                                                Err(_) => message.set(Some((false, format!("{label}（{key}）必须是不小于 0 的整数")))),
                                            }
                                        }/>
                                </label>
                            }).collect_view()}
                            <label>"可能重复计费的失败也重试"
                                <input type="checkbox" prop:checked=move || numbers.with(|n| n.retry_maybe_billed)
                                    on:change=move |ev| numbers.update(|n| n.retry_maybe_billed = event_target_checked(&ev))/>
                            </label>
                        </div>

                        <div class="save-bar">
                            <button type="button" class="generate" on:click=move |_| save()>"保存"</button>
                        </div>
                    </div>
                }.into_any(),
            }}
        </section>
    }
}
