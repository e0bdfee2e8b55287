//! 提示词栏的输入候选：停止输入一会儿后问服务器 `/api/suggest_prompts`（开头相同的在前，其次包含的；
//! 收藏的、用得多的在前），列在输入框上方。↑/↓ 选择，Enter 采用选中的一条，Esc 关上；
//! 没有选中任何一条时 Enter 照常发送，不被候选拦下。

use crate::app::browser;
use crate::app::prompts::suggest_prompts;
use crate::types::prompt::SavedPrompt;
use leptos::prelude::*;
use leptos::task::spawn_local;

/// 停止输入多久后再问服务器。
const DEBOUNCE_MS: u32 = 120;
/// 最多列几条。
const SHOWN: u32 = 8;

/// 按键交给候选处理的结果。
pub enum Key {
    /// 候选没用这个键（Enter 照常发送）。
    Ignored,
    /// 候选用了这个键（移动选择、关上）。
    Handled,
    /// 采用这一条。
    Accept(Box<SavedPrompt>),
}

#[derive(Clone, Copy)]
pub struct Suggestions {
    items: RwSignal<Vec<SavedPrompt>>,
    highlighted: RwSignal<Option<usize>>,
    generation: StoredValue<u64>,
    /// 最近一次从按键到候选显示出来的毫秒数（含等待停止输入的时间；测试从 `data-latency-ms` 读）。
    latency_ms: RwSignal<Option<u64>>,
}

impl Suggestions {
    pub fn new() -> Self {
        Self {
            items: RwSignal::new(Vec::new()),
            highlighted: RwSignal::new(None),
            generation: StoredValue::new(0),
            latency_ms: RwSignal::new(None),
        }
    }

    /// 输入框的文字变了（用户输入时调用）。多行的文字不给候选。
    pub fn input(self, text: String) {
        self.generation.update_value(|g| *g += 1);
        let mine = self.generation.get_value();
        if text.trim().is_empty() || text.contains('\n') {
            self.close();
            return;
        }
        let started = browser::now_ms();
        spawn_local(async move {
            browser::sleep_ms(DEBOUNCE_MS).await;
            if self.generation.get_value() != mine {
                return;
            }
            let Ok(items) = suggest_prompts(text.clone(), Some(SHOWN)).await else {
                return;
            };
            if self.generation.get_value() != mine {
                return;
            }
            // 已经和输入一模一样的那条不必再提示。
            let items: Vec<SavedPrompt> = items.into_iter().filter(|p| p.content != text).collect();
            self.highlighted.set(None);
            self.latency_ms
                .set((!items.is_empty()).then(|| browser::now_ms().saturating_sub(started)));
            self.items.set(items);
        });
    }

    pub fn close(self) {
        self.generation.update_value(|g| *g += 1);
        self.items.set(Vec::new());
        self.highlighted.set(None);
    }

    /// 提示词栏的按键先交给候选。
    pub fn key(self, key: &str) -> Key {
        let n = self.items.with_untracked(Vec::len);
        if n == 0 {
            return Key::Ignored;
        }
        let current = self.highlighted.get_untracked();
        match key {
            "ArrowDown" => self
                .highlighted
                .set(Some(current.map_or(0, |i| (i + 1) % n))),
            "ArrowUp" => self
                .highlighted
                .set(Some(current.map_or(n - 1, |i| (i + n - 1) % n))),
            "Escape" => self.close(),
            "Enter" => {
                let Some(i) = current else {
                    return Key::Ignored;
                };
                let picked = self.items.with_untracked(|l| l.get(i).cloned());
                self.close();
                return picked.map_or(Key::Ignored, |p| Key::Accept(Box::new(p)));
            }
            _ => return Key::Ignored,
        }
        Key::Handled
    }
}

/// 候选列表（输入框上方）。点一条也是采用它。
#[component]
pub fn SuggestionList(
    s: Suggestions,
    #[prop(into)] on_pick: Callback<SavedPrompt>,
) -> impl IntoView {
    view! {
        <Show when=move || !s.items.with(Vec::is_empty)>
            <ul class="suggestions" role="listbox" aria-label="提示词库里的候选" data-testid="suggestions"
                data-latency-ms=move || s.latency_ms.get().map(|v| v.to_string())>
                <For each=move || s.items.get().into_iter().enumerate() key=|(i, p)| (*i, p.id.clone()) let:entry>
                    {
                        let (i, p) = entry;
                        let title = p.title.clone();
                        let content = p.content.clone();
                        view! {
                            <li role="option" aria-selected=move || (s.highlighted.get() == Some(i)).to_string()
                                // mousedown 而不是 click：不让输入框先失去焦点。
                                on:mousedown=move |ev| {
                                    ev.prevent_default();
                                    s.close();
                                    on_pick.run(p.clone());
                                }>
                                <strong>{title}</strong>
                                <span class="content">{content}</span>
                            </li>
                        }
                    }
                </For>
            </ul>
        </Show>
    }
}
