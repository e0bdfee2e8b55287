//! 设置页（管理员）：上游、存储、监听地址、API 密钥、限流/重试/超时/并发。
//! 保存时服务器整份校验，通过才写入配置文件并立即生效；密钥只能写入，页面只知道“已设置”与否。
//!
//! 页面经服务器函数（`/api/admin/*`，JSON）读写设置，守卫（登录会话或本机、同源）在 `crate::admin`；
//! 登录与登出是普通的 `POST /admin/login`、`POST /admin/logout`（要设置、清除 Cookie）。
//!
//! - `mod.rs`（本文件）：服务器函数、页面的状态与动作、登录；
//! - `upstreams.rs`、`numbers.rs`、`keys.rs`、`general.rs`、`money.rs`：各一节的表单；
//! - `accounts.rs`：团队账号与操作记录（各自的服务器函数，不随“保存”一起提交）。

mod accounts;
mod general;
mod keys;
mod money;
mod my_keys;
mod numbers;
mod upstreams;

use super::browser;
use crate::types::account::{AccountChange, AccountsView, NewAccount};
use crate::types::codec::JsonStr;
use crate::types::settings::{
    CreatedKey, Flags, MoneyForm, Numbers, ProbeResult, S3Form, SettingsUpdate, SettingsView,
    UpstreamForm,
};
use crate::types::AppError;
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::collections::HashMap;

/// 设置页的服务器函数都经 `crate::state::with_state` 取状态（与别的页面一样）；谁能调用由访问守卫决定。
#[cfg(feature = "ssr")]
use crate::state::with_state;

/// `POST /api/admin/get_settings`，`{}`：当前设置。
#[server(prefix = "/api/admin", endpoint = "get_settings", input = JsonStr, output = JsonStr)]
pub async fn get_settings() -> Result<SettingsView, AppError> {
    with_state(|s| async move { crate::admin::settings::view(&s).await }).await
}

/// `POST /api/admin/save_settings`，`{"update":{…}}`：整份校验后保存并生效。
#[server(prefix = "/api/admin", endpoint = "save_settings", input = JsonStr, output = JsonStr)]
pub async fn save_settings(update: SettingsUpdate) -> Result<SettingsView, AppError> {
    with_state(|s| async move {
        let saved = crate::admin::settings::save(&s, update).await?;
        let viewer = crate::access::accounts::current().await;
        crate::admin::accounts::record(&s, &viewer, "保存设置", "设置页保存了设置").await;
        Ok(saved)
    })
    .await
}

/// `POST /api/admin/test_upstream`，`{"upstream":{…}}`：对这个上游做一次真实的小请求。
#[server(prefix = "/api/admin", endpoint = "test_upstream", input = JsonStr, output = JsonStr)]
pub async fn test_upstream(upstream: UpstreamForm) -> Result<ProbeResult, AppError> {
    with_state(|s| async move { crate::admin::settings::probe(&s, upstream).await }).await
}

/// `POST /api/admin/list_upstream_models`，`{"upstream":{…}}`：这个上游提供的模型名。
#[server(prefix = "/api/admin", endpoint = "list_upstream_models", input = JsonStr, output = JsonStr)]
pub async fn list_upstream_models(upstream: UpstreamForm) -> Result<Vec<String>, AppError> {
    with_state(|s| async move { crate::admin::settings::list_models(&s, upstream).await }).await
}

/// `POST /api/admin/create_api_key`，`{"label":"…","images_per_day":0,"max_concurrent":0,"max_spend_per_day":0,"max_spend_per_month":0}`
/// （label 之后的都可省略，0 为不限；花费按 `[usage] currency` 的币种）：
/// 创建 `/v1` 密钥，原文只在这次返回。
#[server(prefix = "/api/admin", endpoint = "create_api_key", input = JsonStr, output = JsonStr)]
pub async fn create_api_key(
    label: String,
    #[server(default)] images_per_day: u32,
    #[server(default)] max_concurrent: u32,
    #[server(default)] max_spend_per_day: f64,
    #[server(default)] max_spend_per_month: f64,
    #[server(default)] owner: String,
) -> Result<CreatedKey, AppError> {
    let limits = crate::types::settings::KeyLimits {
        images_per_day,
        max_concurrent,
        max_spend_per_day,
        max_spend_per_month,
    };
    with_state(|s| async move {
        let viewer = crate::access::accounts::current().await;
        crate::admin::settings::create_key(&s, &viewer, label, limits, owner).await
    })
    .await
}

/// `POST /api/admin/revoke_api_key`，`{"prefix":"…"}`：吊销，立即生效。
#[server(prefix = "/api/admin", endpoint = "revoke_api_key", input = JsonStr, output = JsonStr)]
pub async fn revoke_api_key(prefix: String) -> Result<(), AppError> {
    with_state(|s| async move {
        let viewer = crate::access::accounts::current().await;
        crate::admin::settings::revoke_key(&s, &viewer, prefix, None).await
    })
    .await
}

/// `POST /api/admin/get_accounts`，`{}`：账号列表（最近来过、本月用量）与最近的操作记录。
#[server(prefix = "/api/admin", endpoint = "get_accounts", input = JsonStr, output = JsonStr)]
pub async fn get_accounts() -> Result<AccountsView, AppError> {
    with_state(|s| async move { crate::admin::accounts::view(&s).await }).await
}

/// `POST /api/admin/create_account`，`{"account":{"name","display_name","password","role":"member","limits":{…}}}`。
#[server(prefix = "/api/admin", endpoint = "create_account", input = JsonStr, output = JsonStr)]
pub async fn create_account(account: NewAccount) -> Result<AccountsView, AppError> {
    with_state(|s| async move {
        let viewer = crate::access::accounts::current().await;
        crate::admin::accounts::create(&s, &viewer, account).await
    })
    .await
}

/// `POST /api/admin/update_account`，`{"change":{"name":"…","disabled":true}}`（给了的项才改：
/// `display_name`、`role`、`disabled`、`password`、`limits`）。停用与重设密码让它的会话立即作废。
#[server(prefix = "/api/admin", endpoint = "update_account", input = JsonStr, output = JsonStr)]
pub async fn update_account(change: AccountChange) -> Result<AccountsView, AppError> {
    with_state(|s| async move {
        let viewer = crate::access::accounts::current().await;
        crate::admin::accounts::change(&s, &viewer, change).await
    })
    .await
}

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

/// 设置页的全部状态（都是信号）与动作。
#[derive(Clone, Copy)]
struct Page {
    stage: RwSignal<Stage>,
    /// 服务器上此刻的设置（保存成功后更新）。
    saved: RwSignal<SettingsView>,
    upstreams: RwSignal<Vec<UpstreamForm>>,
    root: RwSignal<String>,
    /// 对象存储的连接（存储根是 s3:// 时才显示）；密钥一栏总是从空开始。
    s3: RwSignal<S3Form>,
    listen: RwSignal<String>,
    numbers: RwSignal<Numbers>,
    flags: RwSignal<Flags>,
    money: RwSignal<MoneyForm>,
    /// 页顶的提示：（成功？, 文字）。
    message: RwSignal<Option<(bool, String)>>,
    probes: RwSignal<HashMap<usize, ProbeResult>>,
    /// 新的工作台密码（空表示不改）与“清除工作台密码”。
    studio_password: RwSignal<String>,
    clear_studio_password: RwSignal<bool>,
    models: RwSignal<HashMap<usize, Result<Vec<String>, String>>>,
    created: RwSignal<Option<CreatedKey>>,
}

impl Page {
    fn new() -> Self {
        Self {
            stage: RwSignal::new(Stage::Loading),
            saved: RwSignal::new(SettingsView::default()),
            upstreams: RwSignal::new(Vec::new()),
            root: RwSignal::new(String::new()),
            s3: RwSignal::new(S3Form::default()),
            listen: RwSignal::new(String::new()),
            numbers: RwSignal::new(Numbers::new()),
            flags: RwSignal::new(Flags::new()),
            money: RwSignal::new(MoneyForm::default()),
            message: RwSignal::new(None),
            probes: RwSignal::new(HashMap::new()),
            studio_password: RwSignal::new(String::new()),
            clear_studio_password: RwSignal::new(false),
            models: RwSignal::new(HashMap::new()),
            created: RwSignal::new(None),
        }
    }

    /// 表单与服务器上保存的设置不一样（有未保存的更改）。
    fn dirty(self) -> bool {
        let saved = self.saved.get();
        self.upstreams.get() != saved.upstreams
            || self.root.get() != saved.storage_root
            || self.s3.get() != saved.s3
            || self.listen.get() != saved.listen
            || self.numbers.get() != saved.numbers
            || self.flags.get() != saved.flags
            || self.money.get() != saved.money
            || !self.studio_password.get().is_empty()
            || self.clear_studio_password.get()
    }

    fn show(self, v: SettingsView) {
        self.upstreams.set(v.upstreams.clone());
        self.root.set(v.storage_root.clone());
        self.s3.set(v.s3.clone());
        self.listen.set(v.listen.clone());
        self.numbers.set(v.numbers.clone());
        self.flags.set(v.flags.clone());
        self.money.set(v.money);
        self.saved.set(v);
        self.stage.set(Stage::Ready);
    }

    /// 服务器函数失败：401 去登录，403 说明为什么不让看，其他显示在页顶。
    fn failed(self, e: AppError) {
        match e.status {
            401 => self.stage.set(Stage::Login),
            403 => self.stage.set(Stage::Refused(e.message)),
            _ => self.message.set(Some((false, e.message))),
        }
    }

    fn load(self) {
        spawn_local(async move {
            match get_settings().await {
                Ok(v) => self.show(v),
                Err(e) => self.failed(e),
            }
        });
    }

    fn login(self, name: String, password: String) {
        spawn_local(async move {
            let body = serde_json::json!({ "name": name.trim(), "password": password });
            match browser::post_json("/admin/login", &body).await {
                Ok(()) => {
                    self.message.set(None);
                    self.load();
                }
                Err(reason) => self.message.set(Some((false, reason))),
            }
        });
    }

    fn logout(self) {
        spawn_local(async move {
            let _ = browser::post_json("/admin/logout", &serde_json::json!({})).await;
            self.stage.set(Stage::Login);
        });
    }

    fn save(self) {
        let update = SettingsUpdate {
            upstreams: self.upstreams.get_untracked(),
            storage_root: self.root.get_untracked(),
            s3: Some(self.s3.get_untracked()),
            numbers: self.numbers.get_untracked(),
            flags: self.flags.get_untracked(),
            money: Some(self.money.get_untracked()),
            listen: self.listen.get_untracked(),
            studio_password: self.studio_password.get_untracked(),
            clear_studio_password: self.clear_studio_password.get_untracked(),
            shared_version: self.saved.with_untracked(|v| v.shared_version),
        };
        let old_listen = self.saved.with_untracked(|v| v.listen.clone());
        self.message.set(None);
        spawn_local(async move {
            match save_settings(update).await {
                Ok(v) => {
                    let moved = (v.listen != old_listen).then(|| v.listen.clone());
                    let shared = v.shared_version.is_some();
                    self.studio_password.set(String::new());
                    self.clear_studio_password.set(false);
                    self.show(v);
                    match moved {
                        Some(addr) => {
                            let text = if shared {
                                format!("已保存进数据库，其它实例 2 秒内生效；监听地址只改了本实例，正在跳转到 {addr}……")
                            } else {
                                format!("已保存；正在跳转到新地址 {addr}……")
                            };
                            self.message.set(Some((true, text)));
                            browser::go_to_listen_address(&addr, "/settings");
                        }
                        None if shared => self.message.set(Some((
                            true,
                            "已保存进数据库，本实例已生效，其它实例 2 秒内生效".into(),
                        ))),
                        None => self.message.set(Some((true, "已保存，并已生效".into()))),
                    }
                }
                Err(e) => self.failed(e),
            }
        });
    }

    fn probe(self, i: usize) {
        let Some(form) = self.upstreams.with_untracked(|l| l.get(i).cloned()) else {
            return;
        };
        let result = |ok, message| ProbeResult {
            ok,
            latency_ms: 0,
            message,
        };
        self.probes.update(|p| {
            p.insert(i, result(false, "测试中……".into()));
        });
        spawn_local(async move {
            let r = test_upstream(form)
                .await
                .unwrap_or_else(|e| result(false, e.message));
            self.probes.update(|p| {
                p.insert(i, r);
            });
        });
    }

    fn fetch_models(self, i: usize) {
        let Some(form) = self.upstreams.with_untracked(|l| l.get(i).cloned()) else {
            return;
        };
        spawn_local(async move {
            let r = list_upstream_models(form).await.map_err(|e| e.message);
            self.models.update(|m| {
                m.insert(i, r);
            });
        });
    }

    fn create_key(self, label: String, l: crate::types::settings::KeyLimits, owner: String) {
        self.message.set(None);
        spawn_local(async move {
            let answer = create_api_key(
                label,
                l.images_per_day,
                l.max_concurrent,
                l.max_spend_per_day,
                l.max_spend_per_month,
                owner,
            );
            match answer.await {
                Ok(key) => {
                    self.created.set(Some(key));
                    self.load();
                }
                Err(e) => self.failed(e),
            }
        });
    }

    fn revoke_key(self, prefix: String) {
        spawn_local(async move {
            match revoke_api_key(prefix.clone()).await {
                Ok(()) => {
                    self.message.set(Some((true, format!("已吊销 {prefix}…"))));
                    self.load();
                }
                Err(e) => self.failed(e),
            }
        });
    }
}

#[island(lazy)]
fn Settings() -> impl IntoView {
    let page = Page::new();
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| {
        hydrated.set(true);
        page.load();
    });
    // 有未保存的更改时，离开页面（关闭、刷新、点别的链接）前让浏览器问一句。
    let _leave = window_event_listener(leptos::ev::beforeunload, move |ev| {
        if page.stage.get_untracked() == Stage::Ready && page.dirty() {
            ev.prevent_default();
            ev.set_return_value("");
        }
    });
    view! {
        <section class="settings" data-hydrated=move || hydrated.get().to_string()>
            <h1>"设置"</h1>
            {move || page.message.get().map(|(ok, text)| view! {
                <p class=if ok { "notice ok" } else { "notice error" } role="alert">{text}</p>
            })}
            {move || match page.stage.get() {
                Stage::Loading => view! { <p class="loading">"加载中……"</p> }.into_any(),
                // 成员进不了设置，但能管自己的 /v1 密钥。
                Stage::Refused(reason) => view! { <p class="error">{reason}</p><my_keys::MyKeys/> }.into_any(),
                Stage::Login => view! { <LoginForm page/> }.into_any(),
                Stage::Ready => view! { <SettingsBody page/> }.into_any(),
            }}
        </section>
    }
}

#[component]
fn LoginForm(page: Page) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    view! {
        <form class="login" on:submit=move |ev| {
            ev.prevent_default();
            page.login(name.get_untracked(), password.get_untracked());
            password.set(String::new());
        }>
            <label>"管理员账号（可空）"
                <input type="text" autocomplete="username"
                    prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev))/>
            </label>
            <label>"管理员密码（或账号的密码）"
                <input type="password" autocomplete="current-password"
                    prop:value=move || password.get()
                    on:input=move |ev| password.set(event_target_value(&ev))/>
            </label>
            <button type="submit">"登录"</button>
        </form>
    }
}

#[component]
fn SettingsBody(page: Page) -> impl IntoView {
    view! {
        <div class="settings-body">
            <p class="meta">
                {move || page.saved.with(|v| match v.shared_version {
                    Some(version) => format!(
                        "设置存在数据库里，几个实例共用（第 {version} 版）；本实例的监听地址与数据库连接在 {}",
                        v.config_path
                    ),
                    None => format!("配置文件：{}", v.config_path),
                })}
                {move || if page.saved.with(|v| v.admin_password_set) {
                    view! { <button type="button" on:click=move |_| page.logout()>"退出登录"</button> }.into_any()
                } else {
                    view! { <span class="hint">"未设置管理员密码：凭启动时终端里打印的管理员登录链接进入（端口只在本机可达时）。要给别人用，请运行 drafting-factory hash-password 生成哈希，填到 auth.admin_password_hash。"</span> }.into_any()
                }}
            </p>
            <upstreams::Upstreams page/>
            <general::StorageAndListen page/>
            <money::Money page/>
            <keys::ApiKeys page/>
            <accounts::Accounts page/>
            <numbers::NumbersEditor page/>
            <div class="save-bar" data-testid="save-bar">
                <button type="button" class="generate" on:click=move |_| page.save()>"保存"</button>
                <Show when=move || page.dirty()>
                    <span class="unsaved" data-testid="unsaved">"有未保存的更改"</span>
                </Show>
            </div>
        </div>
    }
}
