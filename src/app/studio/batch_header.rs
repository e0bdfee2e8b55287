//! 一个批次的标题行：名称、已完成 x / 共 n、失败 k、整批进度条、这一批共同的提示词与模型说明（卡片上就不再重复），
//! 以及整批的操作（暂停/继续、置顶、全部取消、重试失败的、下载本批、移除）。数字由页面上这一批的卡片算出。

use super::cost::Prices;
use super::{
    cancel_batch, pause_batch, prioritize_batch, remove_batch, resume_batch, retry_failed,
};
use crate::types::{JobState, JobView};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// 页面上一个批次的概况。
#[derive(Debug, Clone, PartialEq, Default)]
struct Summary {
    name: String,
    total: u32,
    done: u32,
    failed: u32,
    active: u32,
    queued: u32,
    paused: bool,
    /// 整批的进度（0–100）：各卡片进度的平均，按本批任务数算。
    percent: u32,
    /// “已花 $0.40 / 估计 $0.54”。
    cost: String,
}

fn summarize(jobs: &[JobView], batch_id: &str, prices: &Prices) -> Summary {
    let mut s = Summary::default();
    let mut percent_sum = 0u32;
    let mine: Vec<&JobView> = jobs.iter().filter(|j| j.batch_id == batch_id).collect();
    s.cost = prices.batch(&mine);
    for j in mine {
        s.name = j.batch_name.clone();
        s.total = j.count;
        s.paused = j.batch_paused;
        match j.state {
            JobState::Done => s.done += 1,
            JobState::Failed | JobState::Interrupted | JobState::Unsaved => s.failed += 1,
            JobState::Queued => {
                s.active += 1;
                s.queued += 1;
            }
            JobState::Running => s.active += 1,
            JobState::Cancelled => {}
        }
        percent_sum += match j.state {
            JobState::Done => 100,
            JobState::Running => j.percent as u32,
            _ => 0,
        };
    }
    s.percent = percent_sum / s.total.max(1);
    s
}

/// 一批卡片共同的提示词与模型说明：在批次标题里显示一次，卡片上只显示与它不同的（#33）。
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Shared {
    /// 每张卡片的提示词都一样时是它（用了变量、多条时各不相同，为空）。
    pub prompt: Option<String>,
    /// 有模型说明的卡片说的都一样时是它。
    pub model_text: Option<String>,
}

/// 这一批卡片共同的提示词与模型说明。
pub fn shared(jobs: &[JobView], batch_id: &str) -> Shared {
    /// 都一样时是那一个（没有也算不一样）。
    fn common<'a>(mut values: impl Iterator<Item = &'a str>) -> Option<String> {
        let first = values.next()?;
        values.all(|v| v == first).then(|| first.to_string())
    }
    let batch = || jobs.iter().filter(|j| j.batch_id == batch_id);
    Shared {
        prompt: common(batch().map(|j| j.prompt.as_str())),
        model_text: common(batch().filter_map(|j| j.image.as_ref()?.model_text.as_deref())),
    }
}

/// 整批的操作。
#[derive(Clone, Copy)]
enum Action {
    Pause,
    Resume,
    Prioritize,
    Cancel,
    RetryFailed,
    Remove,
}

/// 对这一批执行操作（可复制，给各个按钮）：批次 id 与显示失败原因的地方。
#[derive(Clone, Copy)]
struct BatchOps {
    batch_id: StoredValue<String>,
    error: RwSignal<Option<String>>,
}

impl BatchOps {
    /// 执行一个整批的操作；结果经 `/ws` 推送回来，这里只显示失败的原因。
    fn run(self, action: Action) {
        let batch_id = self.batch_id.get_value();
        let error = self.error;
        error.set(None);
        spawn_local(async move {
            let result = match action {
                Action::Pause => pause_batch(batch_id).await.map(|_| ()),
                Action::Resume => resume_batch(batch_id).await.map(|_| ()),
                Action::Prioritize => prioritize_batch(batch_id).await.map(|_| ()),
                Action::Cancel => cancel_batch(batch_id).await.map(|_| ()),
                Action::RetryFailed => retry_failed(batch_id).await.map(|_| ()),
                Action::Remove => remove_batch(batch_id).await,
            };
            if let Err(e) = result {
                error.set(Some(e.message));
            }
        });
    }
}

#[component]
pub fn BatchHeader(
    batch_id: String,
    jobs: RwSignal<Vec<JobView>>,
    /// 这一批共同的提示词与模型说明。
    shared: Memo<Shared>,
    /// 页面已水合（之前按钮禁用）。
    hydrated: RwSignal<bool>,
) -> impl IntoView {
    let id = batch_id.clone();
    let prices = Prices::get();
    let summary = Memo::new(move |_| jobs.with(|list| summarize(list, &id, &prices)));
    let error = RwSignal::new(None::<String>);
    let ops = BatchOps {
        batch_id: StoredValue::new(batch_id.clone()),
        error,
    };
    view! {
        <header class="batch-header" data-testid="batch-header"
            data-paused=move || summary.with(|s| s.paused.to_string())>
            <BatchTitle summary/>
            <BatchShared shared summary/>
            <div class="progress batch-progress" role="progressbar" aria-label="本批进度"
                aria-valuemin="0" aria-valuemax="100" aria-valuenow=move || summary.with(|s| s.percent)>
                <div class="bar" style=move || summary.with(|s| format!("width: {}%", s.percent))></div>
            </div>
            <BatchActions batch_id ops summary hydrated/>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert">{move || error.get().unwrap_or_default()}</p>
            </Show>
        </header>
    }
}

/// 名称、已完成 x / 共 n、失败 k、“已暂停”。
#[component]
fn BatchTitle(summary: Memo<Summary>) -> impl IntoView {
    let field = move |f: fn(&Summary) -> String| move || summary.with(f);
    view! {
        <div class="batch-title">
            <strong class="batch-name" title=field(|s| s.name.clone())>{field(|s| s.name.clone())}</strong>
            <span class="batch-count" data-testid="batch-count">
                {field(|s| format!("已完成 {} / 共 {}", s.done, s.total))}
            </span>
            <span class="batch-cost" data-testid="batch-cost">{field(|s| s.cost.clone())}</span>
            <Show when=move || summary.with(|s| s.failed > 0)>
                <span class="batch-failed">{field(|s| format!("失败 {}", s.failed))}</span>
            </Show>
            <Show when=move || summary.with(|s| s.paused)>
                <span class="badge">"已暂停"</span>
            </Show>
        </div>
    }
}

/// 这一批共同的提示词与模型说明（没有就不显示）。
#[component]
fn BatchShared(shared: Memo<Shared>, summary: Memo<Summary>) -> impl IntoView {
    // 共同的提示词与批次名（默认就是提示词的开头）一样时不再写一遍。
    let prompt = move || {
        shared
            .with(|s| s.prompt.clone())
            .filter(|p| summary.with(|s| s.name != *p))
    };
    view! {
        {move || prompt().map(|p| view! {
            <p class="batch-prompt" data-testid="batch-prompt" title=p.clone()>{p.clone()}</p>
        })}
        {move || shared.with(|s| s.model_text.clone()).map(|t| view! {
            <p class="batch-model-text model-text" title=t.clone()><strong>"模型说明："</strong>{t.clone()}</p>
        })}
    }
}

/// 整批的操作：随状态出现的那几个，以及一直都在的“下载本批”与“移除”。
#[component]
fn BatchActions(
    batch_id: String,
    ops: BatchOps,
    summary: Memo<Summary>,
    hydrated: RwSignal<bool>,
) -> impl IntoView {
    let not_ready = move || !hydrated.get();
    view! {
        <div class="actions">
            <QueueActions ops summary hydrated/>
            <a class="button" href=format!("/files/zip?batch={batch_id}") download>"下载本批"</a>
            <button type="button" class="danger" title="移除这一批的卡片；已生成的图片移入图库的回收站"
                disabled=not_ready on:click=move |_| ops.run(Action::Remove)>"移除"</button>
        </div>
    }
}

/// 随状态出现的操作：暂停或继续、置顶（有排队中的）、全部取消（有没完成的）、重试失败的（有失败的）。
#[component]
fn QueueActions(ops: BatchOps, summary: Memo<Summary>, hydrated: RwSignal<bool>) -> impl IntoView {
    let not_ready = move || !hydrated.get();
    move || {
        let s = summary.get();
        // 一个按钮换字与动作（不用 `into_any`：每个擦除类型都给 WASM 加几 KB）。
        let (label, action) = if s.paused {
            ("继续", Action::Resume)
        } else {
            ("暂停", Action::Pause)
        };
        let pause = (s.queued > 0 || s.paused).then(|| {
            view! { <button type="button" disabled=not_ready on:click=move |_| ops.run(action)>{label}</button> }
        });
        let prioritize = (s.queued > 0).then(|| {
            view! { <button type="button" title="这一批排队中的任务先开始" disabled=not_ready on:click=move |_| ops.run(Action::Prioritize)>"置顶"</button> }
        });
        let cancel = (s.active > 0).then(|| {
            view! { <button type="button" disabled=not_ready on:click=move |_| ops.run(Action::Cancel)>"全部取消"</button> }
        });
        let retry = (s.failed > 0).then(|| {
            view! { <button type="button" disabled=not_ready on:click=move |_| ops.run(Action::RetryFailed)>"重试失败的"</button> }
        });
        view! { {pause} {prioritize} {cancel} {retry} }
    }
}
