//! 提示词库页面的交互部分：搜索、分类与标签筛选、排序、收藏的在前、就地编辑、回收站、导入与导出。
//! 列表是紧凑的：一条一行（收藏、标题、分类、内容的开头、用过几次、编辑 / 删除的图标按钮），点标题展开全文、
//! 变量与标签（#33）。水合之前填好的搜索与筛选不丢（#42，`EarlyQuery`）。

use super::form::PromptForm;
use super::{
    delete_prompt, export_prompts, import_prompts, list_prompts, restore_prompt, save_prompt,
};
use crate::app::early;
use crate::app::icon::{self, Icon};
use crate::app::star::Star;
use crate::types::prompt::{PromptDraft, PromptPage, PromptQuery, PromptSort, SavedPrompt};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// 页面的全部状态（都是信号，可复制）。
#[derive(Clone, Copy)]
struct Library {
    search: RwSignal<String>,
    category: RwSignal<String>,
    tag: RwSignal<String>,
    favourites: RwSignal<bool>,
    sort: RwSignal<PromptSort>,
    trash: RwSignal<bool>,
    items: RwSignal<Vec<SavedPrompt>>,
    next_cursor: RwSignal<Option<String>>,
    categories: RwSignal<Vec<String>>,
    tags: RwSignal<Vec<String>>,
    /// 正在编辑的那条的 id；`Some("")` 是新建。
    editing: RwSignal<Option<String>>,
    error: RwSignal<Option<String>>,
    notice: RwSignal<Option<String>>,
    /// 每次重新查询加一；过期查询的结果丢弃。
    generation: RwSignal<u64>,
    /// 搜索框每输入一次加一：停止输入 250 ms 后只有最后一次重新查询。
    search_generation: StoredValue<u64>,
}

impl Library {
    fn new(initial: PromptPage) -> Self {
        Self {
            search: RwSignal::new(String::new()),
            category: RwSignal::new(String::new()),
            tag: RwSignal::new(String::new()),
            favourites: RwSignal::new(false),
            sort: RwSignal::new(PromptSort::default()),
            trash: RwSignal::new(false),
            items: RwSignal::new(initial.items),
            next_cursor: RwSignal::new(initial.next_cursor),
            categories: RwSignal::new(initial.categories),
            tags: RwSignal::new(initial.tags),
            editing: RwSignal::new(None),
            error: RwSignal::new(None),
            notice: RwSignal::new(None),
            generation: RwSignal::new(0),
            search_generation: StoredValue::new(0),
        }
    }

    fn query(self, cursor: Option<String>) -> PromptQuery {
        let some = |s: String| Some(s).filter(|s| !s.is_empty());
        PromptQuery {
            search: self.search.get_untracked(),
            category: some(self.category.get_untracked()),
            tag: some(self.tag.get_untracked()),
            favourite: self.favourites.get_untracked().then_some(true),
            sort: self.sort.get_untracked(),
            trash: self.trash.get_untracked(),
            cursor,
            limit: None,
        }
    }

    /// 取一页：`cursor` 为空是重新查询（替换列表），否则接在后面。
    fn load(self, cursor: Option<String>) {
        let append = cursor.is_some();
        if !append {
            self.generation.update(|g| *g += 1);
        }
        let mine = self.generation.get_untracked();
        let query = self.query(cursor);
        spawn_local(async move {
            let result = list_prompts(query).await;
            if self.generation.get_untracked() != mine {
                return;
            }
            match result {
                Ok(page) => {
                    if append {
                        self.items.update(|l| l.extend(page.items));
                    } else {
                        self.items.set(page.items);
                    }
                    self.next_cursor.set(page.next_cursor);
                    self.categories.set(page.categories);
                    self.tags.set(page.tags);
                    self.error.set(None);
                }
                Err(e) => self.error.set(Some(e.message)),
            }
        });
    }

    fn reload(self) {
        self.load(None);
    }

    /// 搜索框里的文字变了：记下，停止输入 250 ms 后再查。
    fn search_later(self, text: String) {
        self.search.set(text);
        self.search_generation.update_value(|g| *g += 1);
        let mine = self.search_generation.get_value();
        spawn_local(async move {
            crate::app::browser::sleep_ms(250).await;
            if self.search_generation.get_value() == mine {
                self.reload();
            }
        });
    }

    /// 存好了一条：替换列表里的它（新建的放在最前）。
    fn saved(self, p: SavedPrompt) {
        self.editing.set(None);
        self.items
            .update(|list| match list.iter_mut().find(|x| x.id == p.id) {
                Some(x) => *x = p,
                None => list.insert(0, p),
            });
    }

    fn toggle_favourite(self, p: SavedPrompt, on: bool) {
        let draft = PromptDraft {
            favourite: on,
            ..PromptDraft::from(&p)
        };
        spawn_local(async move {
            match save_prompt(draft).await {
                Ok(saved) => self.saved(saved),
                Err(e) => self.error.set(Some(e.message)),
            }
        });
    }

    /// 移入回收站（`to_trash`）或恢复：从当前列表里拿掉。
    fn move_to_trash(self, id: String, to_trash: bool) {
        spawn_local(async move {
            let result = if to_trash {
                delete_prompt(id.clone()).await
            } else {
                restore_prompt(id.clone()).await
            };
            match result {
                Ok(p) => {
                    self.items.update(|l| l.retain(|x| x.id != id));
                    self.notice.set(Some(if to_trash {
                        format!("“{}”已移入回收站", p.title)
                    } else {
                        format!("“{}”已恢复", p.title)
                    }));
                }
                Err(e) => self.error.set(Some(e.message)),
            }
        });
    }

    /// 导出全部为 JSON 文件（浏览器下载）。
    fn export(self) {
        spawn_local(async move {
            match export_prompts().await {
                Ok(data) => {
                    let text = serde_json::to_string_pretty(&data).unwrap_or_default();
                    crate::app::browser::download_text("提示词库.json", "application/json", &text);
                    self.notice
                        .set(Some(format!("已导出 {} 条提示词", data.prompts.len())));
                }
                Err(e) => self.error.set(Some(e.message)),
            }
        });
    }

    /// 导入选中的 JSON 文件：读不懂的文件指出第几行第几列，服务器指出哪个字段；有错时什么都不导入。
    fn import(self, file: web_sys::File) {
        spawn_local(async move {
            let text = match crate::app::browser::read_text(&file).await {
                Ok(t) => t,
                Err(e) => return self.error.set(Some(e)),
            };
            let data: serde_json::Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) => {
                    return self.error.set(Some(format!(
                        "导入文件不是有效的 JSON（第 {} 行第 {} 列）：什么都没有导入",
                        e.line(),
                        e.column()
                    )))
                }
            };
            match import_prompts(data).await {
                Ok(r) => {
                    self.error.set(None);
                    self.notice.set(Some(format!(
                        "导入完成：新增 {} 条，合并 {} 条相同内容的",
                        r.added, r.merged
                    )));
                    self.reload();
                }
                Err(e) => self
                    .error
                    .set(Some(format!("{}（什么都没有导入）", e.message))),
            }
        });
    }
}

/// 水合之前用户在搜索与筛选里填好的（没动过的为空）。
#[derive(Debug, Clone, Default, PartialEq)]
struct EarlyQuery {
    search: Option<String>,
    category: Option<String>,
    tag: Option<String>,
    sort: Option<String>,
    favourites: Option<bool>,
}

impl EarlyQuery {
    /// 读工具栏里各控件此刻的值（在视图水合之前调用；服务端渲染时全是 `None`）。
    fn read() -> Self {
        let field = |tag: &str, name: &str, default: &str| {
            early::changed_value(
                &format!(".library-toolbar {tag}[name=\"{name}\"]"),
                name,
                default,
            )
        };
        Self {
            search: field("input", "search", ""),
            category: field("select", "category", ""),
            tag: field("select", "tag", ""),
            sort: field("select", "sort", "recent"),
            favourites: early::changed_checked(
                ".library-toolbar input[name=\"favourites\"]",
                "favourites",
                false,
            ),
        }
    }

    /// 放进页面的状态；填过任何一项时返回 `true`（要按它们重新查询）。
    fn apply(self, lib: Library) -> bool {
        let mut changed = false;
        for (value, signal) in [
            (self.search, lib.search),
            (self.category, lib.category),
            (self.tag, lib.tag),
        ] {
            if let Some(v) = value {
                signal.set(v);
                changed = true;
            }
        }
        if let Some(sort) = self.sort {
            lib.sort.set(parse_sort(&sort));
            changed = true;
        }
        if let Some(on) = self.favourites {
            lib.favourites.set(on);
            changed = true;
        }
        changed
    }
}

fn parse_sort(value: &str) -> PromptSort {
    match value {
        "uses" => PromptSort::Uses,
        "name" => PromptSort::Name,
        _ => PromptSort::Recent,
    }
}

#[island(lazy)]
pub fn PromptLibrary(initial: PromptPage) -> impl IntoView {
    let hydrated = RwSignal::new(false);
    // 水合之前填好的搜索与筛选：在视图水合之前读（水合会把搜索框等重设为信号的初值）。
    let mut early_query = Some(EarlyQuery::read());
    let lib = Library::new(initial);
    Effect::new(move |_| {
        hydrated.set(true);
        if let Some(query) = early_query.take() {
            untrack(|| {
                if query.apply(lib) {
                    lib.reload();
                }
            });
        }
    });

    view! {
        <section class="prompt-library" data-hydrated=move || hydrated.get().to_string()
            aria-busy=move || (!hydrated.get()).then_some("true")>
            <LibraryToolbar lib/>
            <datalist id="prompt-categories">
                <For each=move || lib.categories.get() key=|c| c.clone() let:c>
                    <option value=c/>
                </For>
            </datalist>
            <Show when=move || lib.error.get().is_some()>
                <p class="error" role="alert">{move || lib.error.get().unwrap_or_default()}</p>
            </Show>
            <Show when=move || lib.notice.get().is_some()>
                <p class="notice" role="status">{move || lib.notice.get().unwrap_or_default()}</p>
            </Show>
            <Show when=move || lib.editing.with(|e| e.as_deref() == Some(""))>
                <div class="prompt-item editing">
                    <PromptForm draft=PromptDraft::default()
                        on_saved=move |p| lib.saved(p)
                        on_cancel=move |_| lib.editing.set(None)/>
                </div>
            </Show>
            <PromptList lib/>
            <Show when=move || lib.next_cursor.with(Option::is_some)>
                <button type="button" class="load-more" on:click=move |_| lib.load(lib.next_cursor.get_untracked())>
                    "加载更多"
                </button>
            </Show>
        </section>
    }
}

/// 工具栏：提示词 / 回收站、搜索、分类、标签、排序、只看收藏、新建、导出与导入。
#[component]
fn LibraryToolbar(lib: Library) -> impl IntoView {
    view! {
        <div class="library-toolbar">
            <div class="tabs" role="tablist">
                <button type="button" role="tab" aria-selected=move || (!lib.trash.get()).to_string()
                    on:click=move |_| { lib.trash.set(false); lib.reload(); }>"提示词"</button>
                <button type="button" role="tab" aria-selected=move || lib.trash.get().to_string()
                    on:click=move |_| { lib.trash.set(true); lib.reload(); }>"回收站"</button>
            </div>
            <input type="search" name="search" placeholder="搜索标题、内容或标签" aria-label="搜索提示词库"
                prop:value=move || lib.search.get()
                on:input=move |ev| lib.search_later(event_target_value(&ev))/>
            <FilterSelect lib name="category" label="分类" all="全部分类" options=lib.categories value=lib.category/>
            <FilterSelect lib name="tag" label="标签" all="全部标签" options=lib.tags value=lib.tag/>
            <select name="sort" aria-label="排序" on:change=move |ev| {
                lib.sort.set(parse_sort(&event_target_value(&ev)));
                lib.reload();
            }>
                <option value="recent">"最近使用"</option>
                <option value="uses">"使用最多"</option>
                <option value="name">"按标题"</option>
            </select>
            <label class="check">
                <input type="checkbox" name="favourites" prop:checked=move || lib.favourites.get()
                    on:change=move |ev| { lib.favourites.set(event_target_checked(&ev)); lib.reload(); }/>
                "只看收藏"
            </label>
            <button type="button" class="primary" on:click=move |_| lib.editing.set(Some(String::new()))>
                "新建"
            </button>
            <ExportImport lib/>
        </div>
    }
}

/// 按分类或标签筛选的下拉框：第一项是“全部”，其余是库里现有的；选了就重新查询。
#[component]
fn FilterSelect(
    lib: Library,
    /// 表单里的名字（水合之前的值按它读，见 `EarlyQuery`）。
    name: &'static str,
    label: &'static str,
    /// 第一项（不筛选）的文字。
    all: &'static str,
    options: RwSignal<Vec<String>>,
    value: RwSignal<String>,
) -> impl IntoView {
    view! {
        <select name=name aria-label=label on:change=move |ev| {
            value.set(event_target_value(&ev));
            lib.reload();
        }>
            <option value="">{all}</option>
            <For each=move || options.get() key=|o| o.clone() let:o>
                <option value=o.clone() prop:selected={
                    let o = o.clone();
                    move || value.with(|x| *x == o)
                }>{o.clone()}</option>
            </For>
        </select>
    }
}

/// 导入选中的文件（选了之后清空选择，同一个文件可以再导入一次）。
fn import_chosen(lib: Library, ev: leptos::ev::Event) {
    let input: web_sys::HtmlInputElement = event_target(&ev);
    if let Some(file) = input.files().and_then(|f| f.get(0)) {
        lib.import(file);
    }
    input.set_value("");
}

/// “导出”与“导入”（导入点的是隐藏的文件选择框）。
#[component]
fn ExportImport(lib: Library) -> impl IntoView {
    let import_input = NodeRef::<leptos::html::Input>::new();
    view! {
        <button type="button" on:click=move |_| lib.export()>"导出"</button>
        <button type="button" on:click=move |_| {
            if let Some(input) = import_input.get_untracked() { input.click(); }
        }>"导入"</button>
        <input type="file" accept="application/json,.json" hidden node_ref=import_input
            data-testid="import-file"
            on:change=move |ev| import_chosen(lib, ev)/>
    }
}

/// 列表：一条一行；空的时候说为什么。
#[component]
fn PromptList(lib: Library) -> impl IntoView {
    view! {
        <ul class="prompt-list" data-testid="prompt-list">
            <Show when=move || lib.items.with(Vec::is_empty)>
                <li class="empty">{move || if lib.trash.get() {
                    "回收站是空的。"
                } else {
                    "没有符合条件的提示词。点“新建”，或在工作台的提示词栏点“保存为提示词”。"
                }}</li>
            </Show>
            <For each=move || lib.items.get() key=|p| (p.id.clone(), p.updated_at.clone(), p.use_count) let:p>
                <PromptItem p lib/>
            </For>
        </ul>
    }
}

/// 一条提示词：一行（收藏、标题与内容的开头、用过几次、编辑 / 删除）；点标题展开全文、变量与标签。
#[component]
fn PromptItem(p: SavedPrompt, lib: Library) -> impl IntoView {
    let id = p.id.clone();
    let editing = {
        let id = id.clone();
        move || lib.editing.with(|e| e.as_deref() == Some(id.as_str()))
    };
    let expanded = RwSignal::new(false);
    let draft = PromptDraft::from(&p);
    view! {
        <li class="prompt-item" data-testid="prompt-item" data-id=id.clone()
            class:expanded=move || expanded.get()>
            <Show when=editing.clone() fallback={
                let p = p.clone();
                move || view! { <PromptRow p=p.clone() lib expanded/> }
            }>
                <PromptForm draft=draft.clone()
                    on_saved=move |saved| lib.saved(saved)
                    on_cancel=move |_| lib.editing.set(None)/>
            </Show>
        </li>
    }
}

/// 一条提示词不在编辑时的样子。
#[component]
fn PromptRow(p: SavedPrompt, lib: Library, expanded: RwSignal<bool>) -> impl IntoView {
    let in_trash = p.deleted_at.is_some();
    let full_id = format!("prompt-{}-full", p.id);
    let variables = p
        .variables
        .iter()
        .map(|(k, v)| format!("{{{k}}}：{}", v.join(" / ")))
        .collect::<Vec<_>>()
        .join("；");
    let meta = format!(
        "用过 {} 次{}",
        p.use_count,
        p.last_used_at
            .as_deref()
            .map(|t| format!(" · 最近 {}", t.get(..10).unwrap_or(t)))
            .unwrap_or_default()
    );
    let for_star = p.clone();
    let (for_edit, for_trash) = (p.id.clone(), p.id.clone());
    let actions = if in_trash {
        view! {
            <button type="button" class="icon-button" aria-label="恢复" title="恢复"
                on:click=move |_| lib.move_to_trash(for_trash.clone(), false)>
                <Icon d=icon::RESTORE/>
            </button>
        }
        .into_any()
    } else {
        view! {
            <button type="button" class="icon-button" aria-label="编辑" title="编辑"
                on:click=move |_| lib.editing.set(Some(for_edit.clone()))>
                <Icon d=icon::EDIT/>
            </button>
            <button type="button" class="icon-button danger" aria-label="删除" title="删除（移入回收站）"
                on:click=move |_| lib.move_to_trash(for_trash.clone(), true)>
                <Icon d=icon::TRASH/>
            </button>
        }
        .into_any()
    };
    view! {
        <div class="prompt-row">
            <Star on=Signal::stored(p.favourite)
                on_toggle=move |on| lib.toggle_favourite(for_star.clone(), on)/>
            <button type="button" class="prompt-summary" aria-expanded=move || expanded.get().to_string()
                aria-controls=full_id.clone() title="展开全文"
                on:click=move |_| expanded.update(|e| *e = !*e)>
                <strong class="title">{p.title.clone()}</strong>
                {(!p.category.is_empty()).then(|| view! { <span class="category">{p.category.clone()}</span> })}
                {p.example.then(|| view! { <span class="badge">"示例"</span> })}
                {(!p.variables.is_empty()).then(|| view! { <span class="badge">"模板"</span> })}
                <span class="excerpt">{p.content.clone()}</span>
            </button>
            <span class="meta" data-testid="use-count">{meta}</span>
            <div class="row-actions">{actions}</div>
        </div>
        <div class="prompt-full" id=full_id hidden=move || !expanded.get()>
            <p class="content">{p.content.clone()}</p>
            {(!variables.is_empty()).then(|| view! { <p class="meta">{variables.clone()}</p> })}
            {(!p.tags.is_empty()).then(|| view! {
                <p class="tags">{p.tags.iter().map(|t| view! { <span class="tag">{t.clone()}</span> }).collect_view()}</p>
            })}
        </div>
    }
}
