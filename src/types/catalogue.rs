//! 模型目录的类型：每个模型能做什么（宽高比、分辨率、参考图数、能否联网搜索）、每张的价格与它的旧名字。
//! 目录本身是数据（`src/models.toml`，编进程序；配置里的 `[[models]]` 可以改写或追加），见 `crate::catalogue`。

use super::{AspectRatio, ImageSize};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// 目录里没有的模型（私有部署的名字）按这些能力放行。
pub const PERMISSIVE_REFERENCES: u32 = 14;

/// 一个模型。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    pub id: String,
    /// 中文名字（下拉框里显示）。
    #[serde(default)]
    pub name: String,
    /// 提供方：`gemini` 或 `doubao`。
    #[serde(default = "gemini")]
    pub family: String,
    #[serde(default = "all_ratios")]
    pub aspect_ratios: Vec<AspectRatio>,
    #[serde(default = "classic_sizes")]
    pub sizes: Vec<ImageSize>,
    #[serde(default = "permissive_references")]
    pub max_references: u32,
    /// 支持 Google 搜索接地（`tools: [{"google_search": {}}]`）。
    #[serde(default)]
    pub grounding: bool,
    /// 每张的价格（美元），按分辨率档；用量页估算花费用，可在配置里改。
    #[serde(default)]
    pub prices: BTreeMap<String, f64>,
    /// 停用了的旧 id：请求它们时由这个模型来做，并告诉调用方一次。
    #[serde(default)]
    pub aliases: Vec<String>,
    /// 目录里有这个模型（false：不认识的名字，按最宽松的能力放行）。
    #[serde(default = "yes", skip_serializing)]
    pub known: bool,
}

fn gemini() -> String {
    "gemini".into()
}
fn all_ratios() -> Vec<AspectRatio> {
    AspectRatio::CLASSIC.to_vec()
}
fn classic_sizes() -> Vec<ImageSize> {
    vec![ImageSize::K1, ImageSize::K2, ImageSize::K4]
}
fn permissive_references() -> u32 {
    PERMISSIVE_REFERENCES
}
fn yes() -> bool {
    true
}

/// 所选模型做不到的请求（中文，说明它能做什么）。
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapabilityError {
    #[error("模型 {model} 不支持宽高比 {got}，可选：{allowed}")]
    AspectRatio {
        model: String,
        got: String,
        allowed: String,
    },
    #[error("模型 {model} 不支持分辨率 {got}，可选：{allowed}")]
    Size {
        model: String,
        got: String,
        allowed: String,
    },
    #[error("模型 {model} 最多接受 {max} 张参考图，这次有 {got} 张")]
    References { model: String, max: u32, got: usize },
    #[error("模型 {model} 不支持联网搜索")]
    Grounding { model: String },
}

impl ModelInfo {
    /// 不认识的模型：每种宽高比与分辨率、14 张参考图都放行（交给上游判断）。
    pub fn permissive(id: &str) -> ModelInfo {
        ModelInfo {
            id: id.to_string(),
            name: id.to_string(),
            family: gemini(),
            aspect_ratios: AspectRatio::ALL.to_vec(),
            sizes: ImageSize::ALL.to_vec(),
            max_references: PERMISSIVE_REFERENCES,
            grounding: true,
            prices: BTreeMap::new(),
            aliases: Vec::new(),
            known: false,
        }
    }

    /// 这个分辨率每张的价格（美元，百万分之一）；目录里没有写的为 `None`（价格未知，绝不当作 0）。
    pub fn price(&self, size: ImageSize) -> Option<super::money::Micros> {
        self.prices
            .get(size.as_str())
            .map(|p| super::money::Micros::from_decimal(*p))
    }

    /// 下拉框里的名字。
    pub fn label(&self) -> String {
        if self.name.is_empty() || self.name == self.id {
            self.id.clone()
        } else {
            format!("{}（{}）", self.name, self.id)
        }
    }

    /// 这个模型能不能做这样的请求。
    pub fn check(
        &self,
        aspect_ratio: AspectRatio,
        size: ImageSize,
        references: usize,
        grounding: bool,
    ) -> Result<(), CapabilityError> {
        let join = |items: Vec<&str>| items.join("、");
        if !self.aspect_ratios.contains(&aspect_ratio) {
            return Err(CapabilityError::AspectRatio {
                model: self.id.clone(),
                got: aspect_ratio.as_str().into(),
                allowed: join(self.aspect_ratios.iter().map(|a| a.as_str()).collect()),
            });
        }
        if !self.sizes.contains(&size) {
            return Err(CapabilityError::Size {
                model: self.id.clone(),
                got: size.as_str().into(),
                allowed: join(self.sizes.iter().map(|s| s.as_str()).collect()),
            });
        }
        if references > self.max_references as usize {
            return Err(CapabilityError::References {
                model: self.id.clone(),
                max: self.max_references,
                got: references,
            });
        }
        if grounding && !self.grounding {
            return Err(CapabilityError::Grounding {
                model: self.id.clone(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_name_what_the_model_can_do() {
        let lite = ModelInfo {
            sizes: vec![ImageSize::K1],
            max_references: 3,
            ..ModelInfo::permissive("lite")
        };
        assert!(lite
            .check(AspectRatio::Square, ImageSize::K1, 3, false)
            .is_ok());
        assert_eq!(
            lite.check(AspectRatio::Square, ImageSize::K4, 0, false)
                .unwrap_err()
                .to_string(),
            "模型 lite 不支持分辨率 4K，可选：1K"
        );
        assert!(lite
            .check(AspectRatio::Square, ImageSize::K1, 4, false)
            .unwrap_err()
            .to_string()
            .contains("最多接受 3 张参考图"));
        let classic = ModelInfo {
            aspect_ratios: AspectRatio::CLASSIC.to_vec(),
            grounding: false,
            ..ModelInfo::permissive("c")
        };
        assert!(classic
            .check(AspectRatio::P1x8, ImageSize::K1, 0, false)
            .unwrap_err()
            .to_string()
            .contains("不支持宽高比 1:8，可选：1:1、2:3"));
        assert!(classic
            .check(AspectRatio::Square, ImageSize::K1, 0, true)
            .is_err());
    }
}
