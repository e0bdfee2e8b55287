//! 工作台上的钱：提示词栏“生成”之前的估价、每张卡片花了多少、批次标题的已花 / 估计。
//! 价格来自服务器交给页面的模型目录（`StudioInit::models`，每个模型按分辨率的每张价格）与显示币种
//! （`StudioInit::pricing`）；金额的算法与服务器记账的一样（`types::money`、`types::attempt::spend_of`）。

use crate::types::attempt::spend_of;
use crate::types::catalogue::ModelInfo;
use crate::types::money::{Micros, Pricing};
use crate::types::{ImageSize, JobState, JobView};
use leptos::prelude::*;

/// 页面上的价格表（放在 island 的上下文里，卡片、批次标题与提示词栏都从这里取）。
#[derive(Clone, Copy)]
pub struct Prices {
    models: StoredValue<Vec<ModelInfo>>,
    pricing: Pricing,
}

impl Prices {
    /// 建好并放进上下文。
    pub fn provide(models: Vec<ModelInfo>, pricing: Pricing) {
        provide_context(Prices {
            models: StoredValue::new(models),
            pricing,
        });
    }

    /// 上下文里的价格表（没有时是空表：什么价格都未知）。
    pub fn get() -> Prices {
        use_context::<Prices>().unwrap_or_else(|| Prices {
            models: StoredValue::new(Vec::new()),
            pricing: Pricing::default(),
        })
    }

    /// 一张的价格：所选模型（空为第一个，即默认模型；旧 id 也认）在这个分辨率下；不知道时为空。
    pub fn each(&self, model: &str, size: ImageSize) -> Option<Micros> {
        self.models.with_value(|models| {
            let model = model.trim();
            let found = if model.is_empty() {
                models.first()
            } else {
                models
                    .iter()
                    .find(|m| m.id == model || m.aliases.iter().any(|a| a == model))
            };
            found?.price(size)
        })
    }

    /// 提示词栏上的估价：“约 $0.54”；价格未知时说“价格未知”。
    pub fn estimate(&self, model: &str, size: ImageSize, images: u32) -> String {
        match self.each(model, size) {
            Some(p) => format!("约 {}", self.pricing.show(p.times(u64::from(images)))),
            None => "价格未知".into(),
        }
    }

    /// 一张卡片花了多少：完成的“$0.134”，失败而可能已计费的“可能已计费 $0.134”；没花钱时为空。
    pub fn card(&self, job: &JobView) -> Option<String> {
        let (billed, maybe) = spend_of(&job.attempts);
        let mut parts = Vec::new();
        if billed != Default::default() {
            parts.push(billed.show(self.pricing));
        }
        if maybe != Default::default() {
            parts.push(format!("可能已计费 {}", maybe.show(self.pricing)));
        }
        (!parts.is_empty()).then(|| parts.join(" · "))
    }

    /// 一批的“已花 $0.40 / 估计 $0.54”：已花含可能已计费的；估计按每张的模型与分辨率（失败与取消的不算）。
    pub fn batch(&self, jobs: &[&JobView]) -> String {
        let mut spent = Micros::ZERO;
        let mut unknown = false;
        let mut estimate = Micros::ZERO;
        for job in jobs {
            let (billed, maybe) = spend_of(&job.attempts);
            spent = spent.plus(billed.usd).plus(maybe.usd);
            unknown |= billed.unpriced + maybe.unpriced > 0;
            if matches!(
                job.state,
                JobState::Failed | JobState::Cancelled | JobState::Interrupted
            ) {
                continue;
            }
            match self.each(&job.model, job.image_size) {
                Some(p) => estimate = estimate.plus(p),
                None => unknown = true,
            }
        }
        let mut text = format!(
            "已花 {} / 估计 {}",
            self.pricing.show(spent),
            self.pricing.show(estimate.max(spent))
        );
        if unknown {
            text.push_str("（有的价格未知）");
        }
        text
    }
}
