//! 收下一个生成请求的唯一入口（admission）：工作台的提交与单张、`/v1` 的生成与编辑、`/v1` 的对话都经这里。
//!
//! 各入口只把自己的线上格式翻成 [`Order`]（或工作台批次的 `SubmitRequest`），这里依次做：
//! 1. 校验：提示词、张数、参考图数（`types::limits`；批次的展开见 `types::batch::plan`）；
//! 2. 模型目录：所选模型有上游提供，做得到这次的宽高比、分辨率、参考图数与联网搜索（`Gateway::check_request`）；
//! 3. 额度：调用方的每日张数与同时数（`access::budget::ClientBudgets`），工作台另按会话或 IP 计每分钟张数
//!    （`access::budget::ImageBudget`）；请求者有账号时再占这个账号的额度（工作台与他的 `/v1` 密钥合起来算，
//!    `AccountLimits`）；批次另查排队上限；
//! 4. 交给生产线的 `ImageRequest`（批次的任务在开始时由 `jobs` 建，见 `jobs::scheduler`）。
//!
//! 哪一步不通过都什么也不做、不占额度，返回中文原因（`ApiError`，HTTP 状态在 `crate::error` 里定）。

use crate::access::budget::{Budget, BudgetTicket};
use crate::access::ClientId;
use crate::error::ApiError;
use crate::gateway::ImageRequest;
use crate::produce::References;
use crate::state::AppState;
use crate::types::batch::{plan, ReferenceMode};
use crate::types::limits::{validate_request, Surface};
use crate::types::money::Micros;
use crate::types::usage::STUDIO_CLIENT;
use crate::types::{AspectRatio, ImageSize, JobView, SubmitRequest};

/// 谁在要图。`account` 是请求者的账号（工作台登录的账号、`/v1` 密钥的主人；没有时为空）：
/// 用量记在它名下，它的额度也要够。
pub enum Requester<'a> {
    /// 工作台：每分钟张数按会话或 IP（`ClientId`）计，每日张数按整个工作台计（`limits.studio_images_per_day`）。
    Studio {
        client: &'a ClientId,
        account: String,
    },
    /// `/v1` 的调用方：用量与额度记在它的名字下（密钥的用途说明，或“匿名”）。
    Api {
        label: String,
        budget: Budget,
        account: String,
    },
}

impl Requester<'_> {
    fn surface(&self) -> Surface {
        match self {
            Requester::Studio { .. } => Surface::Studio,
            Requester::Api { .. } => Surface::OpenAi,
        }
    }

    /// 用量记账里的名字。
    fn label(&self) -> String {
        match self {
            Requester::Studio { .. } => STUDIO_CLIENT.to_string(),
            Requester::Api { label, .. } => label.clone(),
        }
    }

    /// 请求者的账号（没有时为空）。
    pub fn account(&self) -> &str {
        match self {
            Requester::Studio { account, .. } | Requester::Api { account, .. } => account,
        }
    }
}

/// 一次请求要的东西（各入口从自己的线上格式翻过来的）。
pub struct Order<'a> {
    pub requester: Requester<'a>,
    pub prompt: &'a str,
    /// 几张（`/v1` 的 `n`）。
    pub count: u32,
    /// 几张参考图。
    pub references: usize,
    pub aspect_ratio: AspectRatio,
    pub image_size: ImageSize,
    /// 指定的模型；空为上游的默认模型。
    pub model: Option<String>,
    pub google_search: bool,
}

/// 校验过的请求（还没查模型、没占额度）：`/v1` 在这一步之后先看幂等键能不能回放，回放的不占额度。
pub struct Valid<'a> {
    order: Order<'a>,
    prompt: String,
}

impl<'a> Order<'a> {
    /// 校验提示词、张数与参考图数。
    pub fn validate(self) -> Result<Valid<'a>, ApiError> {
        let prompt = validate_request(
            self.requester.surface(),
            self.prompt,
            self.count,
            self.references,
        )?;
        Ok(Valid {
            order: self,
            prompt,
        })
    }
}

/// 收下了：交给生产线的请求，与占着的额度（结束时按实际张数 `settle`）。
pub struct Admitted {
    pub request: ImageRequest,
    pub ticket: BudgetTicket,
}

/// 校验、查模型目录、占额度，得到交给生产线的请求。
pub async fn admit(state: &AppState, order: Order<'_>) -> Result<Admitted, ApiError> {
    admit_valid(state, order.validate()?).await
}

/// 同上，请求已经校验过（见 [`Order::validate`]）。
pub async fn admit_valid(state: &AppState, valid: Valid<'_>) -> Result<Admitted, ApiError> {
    let Valid { order, prompt } = valid;
    state.gateway.check_request(
        &state.config.load(),
        order.model.as_deref(),
        order.aspect_ratio,
        order.image_size,
        order.references,
        order.google_search,
    )?;
    let cost = estimate(state, order.model.as_deref(), order.image_size, order.count);
    let ticket = charge(state, &order.requester, order.count, cost).await?;
    let request = ImageRequest::new(
        prompt,
        order.aspect_ratio,
        order.image_size,
        order.model,
        order.requester.label(),
    )
    .grounded(order.google_search)
    .on_behalf_of(order.requester.account().to_string());
    Ok(Admitted { request, ticket })
}

/// 这次要花多少（按目录价格：所选模型在这个分辨率下的每张价格 × 张数）；目录里没有价格时为空。
pub fn estimate(
    state: &AppState,
    model: Option<&str>,
    size: ImageSize,
    images: u32,
) -> Option<Micros> {
    let config = state.config.load();
    state
        .gateway
        .capabilities(&config, model)
        .price(size)
        .map(|p| p.times(u64::from(images)))
}

/// 占调用方的额度：每日张数、花费上限与同时数；工作台另扣每分钟张数（一次要 16 张就扣 16）。
/// 要么全部放行，要么整个拒绝。
async fn charge(
    state: &AppState,
    requester: &Requester<'_>,
    images: u32,
    cost: Option<Micros>,
) -> Result<BudgetTicket, ApiError> {
    // 先占账号的（成员的额度通常更紧）；调用方的不够时，账号那份随票据丢弃退回（每分钟张数除外：GCRA 不退）。
    let account = charge_account(state, requester.account(), images, cost).await?;
    let ticket = charge_caller(state, requester, images, cost).await?;
    Ok(match account {
        Some(account) => ticket.and(account),
        None => ticket,
    })
}

/// 请求者账号的额度（`AccountLimits`：每分钟与每天的张数、同时数、每天与每月的花费）；没有账号时不占。
async fn charge_account(
    state: &AppState,
    account: &str,
    images: u32,
    cost: Option<Micros>,
) -> Result<Option<BudgetTicket>, ApiError> {
    let Some(limits) = (!account.is_empty())
        .then(|| state.accounts.limits(account))
        .flatten()
    else {
        return Ok(None);
    };
    let config = state.config.load_full();
    let budget = Budget {
        images_per_day: limits.images_per_day,
        max_concurrent: limits.max_concurrent,
        spend_per_day: config.usage.to_usd(limits.max_spend_per_day),
        spend_per_month: config.usage.to_usd(limits.max_spend_per_month),
        pricing: config.usage.pricing(),
    };
    let scope = crate::usage::Scope::Account(account.to_string());
    let budgets = &state.client_budgets;
    budgets.prepare(&state.storage, &scope, budget).await;
    let ticket = budgets.admit_now(&scope.shown(), budget, images, cost)?;
    state
        .account_minutes
        .spend(account, limits.images_per_minute, images)?;
    Ok(Some(ticket))
}

/// 调用方自己的额度（工作台整体的与会话的，或 `/v1` 密钥的）。
async fn charge_caller(
    state: &AppState,
    requester: &Requester<'_>,
    images: u32,
    cost: Option<Micros>,
) -> Result<BudgetTicket, ApiError> {
    let config = state.config.load_full();
    match requester {
        Requester::Studio { client, .. } => {
            let daily = Budget {
                images_per_day: config.limits.studio_images_per_day,
                max_concurrent: 0,
                spend_per_day: config.usage.to_usd(config.limits.studio_max_spend_per_day),
                spend_per_month: config
                    .usage
                    .to_usd(config.limits.studio_max_spend_per_month),
                pricing: config.usage.pricing(),
            };
            let budgets = &state.client_budgets;
            let scope = crate::usage::Scope::Client(STUDIO_CLIENT.to_string());
            budgets.prepare(&state.storage, &scope, daily).await;
            let ticket = budgets.admit_now(STUDIO_CLIENT, daily, images, cost)?;
            state.image_budget.spend(&config, client, images)?;
            Ok(ticket)
        }
        Requester::Api { label, budget, .. } => {
            state
                .client_budgets
                .admit(&state.storage, label, *budget, images, cost)
                .await
        }
    }
}

/// 收下工作台的一批（或 `/v1` 的一个异步任务）并排进任务队列：展开变量、多条提示词与逐张改图
/// （`types::batch::plan`），参考图都在，所选模型做得到，排队上限还有余地，再占额度——都通过才写库排队。
/// `requester` 为空表示额度已由调用方占过（`/v1` 的异步任务：它的那次请求已经经 [`admit`] 收下）。
/// `client` 是提交者（排队上限按它计，`/v1` 的任务也只有它能查），`account` 是它的账号（批次与图记在它名下）。
pub async fn batch(
    state: &AppState,
    req: SubmitRequest,
    client: &str,
    account: &str,
    requester: Option<Requester<'_>>,
) -> Result<Vec<JobView>, ApiError> {
    let config = state.config.load_full();
    let mut req = req;
    crate::prompts::resolve_ids(&state.storage, &mut req, true).await?;
    let plan = plan(&req, config.limits.max_batch_jobs)?;
    // 先确认参考图都在，免得排了队才失败。
    References::check_exist(&state.storage, &req.references).await?;
    if let Some(mask) = &req.mask {
        // 局部修改：蒙版不对（尺寸、格式、没有透明像素）现在就 400，不排队。
        let first = References::load(&state.storage, &req.references[..1]).await?;
        crate::jobs::region_of(&state.storage, mask, &first).await?;
    }
    let model = req.model.trim().to_string();
    let per_job_references = match req.reference_mode {
        ReferenceMode::Together => req.references.len(),
        ReferenceMode::Each => req.references.len().min(1),
    };
    state.gateway.check_request(
        &config,
        Some(model.as_str()).filter(|m| !m.is_empty()),
        req.aspect_ratio,
        req.image_size,
        per_job_references,
        req.google_search,
    )?;
    let total = plan.jobs.len() as u32;
    state.jobs.check_queue_room(client, total as usize)?;
    if let Some(requester) = &requester {
        // 批次在后台慢慢跑：这里按要的张数与估价计入每日张数与花费（不等结果）。
        let model = Some(model.as_str()).filter(|m| !m.is_empty());
        let cost = estimate(state, model, req.image_size, total);
        charge(state, requester, total, cost)
            .await?
            .settle_as_reserved();
    }
    state.jobs.enqueue(&req, plan, model, client, account).await
}
