//! 提示词库页面（`/prompts`）与它的服务器函数。做事的函数在 `crate::prompts`（只在服务端）。
//!
//! 服务器函数都以 JSON 收发，任何 HTTP 客户端都可以调用（见 README“提示词库”）。
//!
//! - `mod.rs`（本文件）：服务器函数与页面；
//! - `library.rs`：页面的交互部分（搜索、筛选、就地编辑、回收站、导入导出）；
//! - `form.rs`：编辑一条提示词的表单（库页面与工作台的“保存为提示词”共用）；
//! - `picker.rs`：工作台的“提示词库”选择框。

mod form;
mod library;
mod picker;

pub use form::SavePromptDialog;
pub use picker::PromptPicker;

use crate::types::codec::JsonStr;
use crate::types::prompt::{
    ImportResult, PromptDraft, PromptExport, PromptPage, PromptQuery, SavedPrompt,
};
use crate::types::AppError;
use leptos::prelude::*;
use library::PromptLibrary;

/// `POST /api/list_prompts`，请求体 `{"query":{"search","category","tag","favourite","sort","trash","cursor","limit"}}`
/// （都可省略）：一页提示词（收藏的在前）与 `next_cursor`。
#[server(prefix = "/api", endpoint = "list_prompts", input = JsonStr, output = JsonStr)]
pub async fn list_prompts(#[server(default)] query: PromptQuery) -> Result<PromptPage, AppError> {
    crate::state::with_state(|s| async move { crate::prompts::list(&s.storage, query).await }).await
}

/// `POST /api/save_prompt`，请求体 `{"prompt":{"id":null,"title","content","category","tags":[],"favourite":false,"variables":{}}}`：
/// 新建（`id` 为空）或更新，返回存好的一条。不合规时 400，原因点名字段，什么都不改。
#[server(prefix = "/api", endpoint = "save_prompt", input = JsonStr, output = JsonStr)]
pub async fn save_prompt(prompt: PromptDraft) -> Result<SavedPrompt, AppError> {
    crate::state::with_state(|s| async move {
        let owner = crate::access::accounts::current().await.owner();
        crate::prompts::save(&s.storage, prompt, owner).await
    })
    .await
}

/// `POST /api/delete_prompt`，请求体 `{"id":"…"}`：移入回收站。
#[server(prefix = "/api", endpoint = "delete_prompt", input = JsonStr, output = JsonStr)]
pub async fn delete_prompt(id: String) -> Result<SavedPrompt, AppError> {
    crate::state::with_state(|s| async move {
        let viewer = crate::access::accounts::current().await;
        crate::prompts::set_trashed(&s.storage, &viewer, id, true).await
    })
    .await
}

/// `POST /api/restore_prompt`，请求体 `{"id":"…"}`：从回收站恢复。
#[server(prefix = "/api", endpoint = "restore_prompt", input = JsonStr, output = JsonStr)]
pub async fn restore_prompt(id: String) -> Result<SavedPrompt, AppError> {
    crate::state::with_state(|s| async move {
        let viewer = crate::access::accounts::current().await;
        crate::prompts::set_trashed(&s.storage, &viewer, id, false).await
    })
    .await
}

/// `POST /api/use_prompt`，请求体 `{"id":"…"}`：用了一次（工作台提交库里的提示词时调用），次数加一。
#[server(prefix = "/api", endpoint = "use_prompt", input = JsonStr, output = JsonStr)]
pub async fn use_prompt(id: String) -> Result<SavedPrompt, AppError> {
    crate::state::with_state(|s| async move { crate::prompts::record_use(&s.storage, id).await })
        .await
}

/// `POST /api/export_prompts`，请求体 `{}`：`{"version":1,"prompts":[…]}`（不含回收站里的）。
#[server(prefix = "/api", endpoint = "export_prompts", input = JsonStr, output = JsonStr)]
pub async fn export_prompts() -> Result<PromptExport, AppError> {
    crate::state::with_state(|s| async move { crate::prompts::export(&s.storage).await }).await
}

/// `POST /api/import_prompts`，请求体 `{"data":<导出的对象>}`：`{"added":N,"merged":M}`。
/// 内容相同的合并，不重复；文件有一处不对就整份不导入，原因指出字段（如 `prompts[3].title`）。
#[server(prefix = "/api", endpoint = "import_prompts", input = JsonStr, output = JsonStr)]
pub async fn import_prompts(data: serde_json::Value) -> Result<ImportResult, AppError> {
    crate::state::with_state(|s| async move { crate::prompts::import(&s.storage, data).await })
        .await
}

/// `POST /api/suggest_prompts`，请求体 `{"text":"…","limit":8}`：输入时的候选（开头相同的在前，
/// 其次包含的；同样匹配时收藏的、用得多的在前）。
#[server(prefix = "/api", endpoint = "suggest_prompts", input = JsonStr, output = JsonStr)]
pub async fn suggest_prompts(
    text: String,
    #[server(default)] limit: Option<u32>,
) -> Result<Vec<SavedPrompt>, AppError> {
    crate::state::with_state(
        |s| async move { crate::prompts::suggest(&s.storage, text, limit).await },
    )
    .await
}

#[component]
pub fn PromptsPage() -> impl IntoView {
    let first = Resource::new(|| (), |_| list_prompts(PromptQuery::default()));
    view! {
        <Suspense fallback=|| view! { <p class="loading">"加载中……"</p> }>
            {move || Suspend::new(async move {
                match first.await {
                    Ok(initial) => view! { <PromptLibrary initial/> }.into_any(),
                    Err(e) => view! { <p class="error" role="alert">{e.message}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}
