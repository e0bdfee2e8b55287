//! 钱：价格、花费与预算都以“百万分之一美元”（micro-USD）的整数记，累加不会有浮点误差。
//! 显示时按配置的币种换算（`[usage] currency`：`USD` 或 `CNY`，人民币另配 `cny_per_usd` 汇率），
//! 换算也是整数运算（汇率同样按百万分之一记）。价格的来源见 `src/models.toml` 与 `crate::catalogue`。
//!
//! 两端共用：服务器记账、核对预算；浏览器在“生成”之前估算这次要花多少。

use serde::{Deserialize, Serialize};
use std::fmt;

/// 一百万：1 美元 = 1,000,000 micro-USD；汇率同样乘以一百万记。
pub const MICROS: i64 = 1_000_000;

/// 金额：百万分之一个单位（美元或显示币种，看上下文）。
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Micros(pub i64);

impl Micros {
    pub const ZERO: Micros = Micros(0);

    /// 配置与目录里写的小数（例如每张 0.134 美元）→ 整数；四舍五入到百万分之一。负数与非有限数当作 0。
    pub fn from_decimal(value: f64) -> Micros {
        if value.is_finite() && value > 0.0 {
            Micros((value * MICROS as f64).round() as i64)
        } else {
            Micros(0)
        }
    }

    /// 乘以张数。
    pub fn times(self, n: u64) -> Micros {
        Micros(self.0.saturating_mul(n as i64))
    }

    pub fn plus(self, other: Micros) -> Micros {
        Micros(self.0.saturating_add(other.0))
    }

    /// 十进制写法：至少两位小数，最多六位，去掉多余的 0（`0.134`、`3.84`、`0.00`）。
    pub fn decimal(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / MICROS as u64;
        let frac = format!("{:06}", abs % MICROS as u64);
        let trimmed = frac.trim_end_matches('0');
        let frac = if trimmed.len() < 2 {
            &frac[..2]
        } else {
            trimmed
        };
        format!("{sign}{whole}.{frac}")
    }
}

/// 显示的币种。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Currency {
    #[default]
    #[serde(rename = "USD")]
    Usd,
    #[serde(rename = "CNY")]
    Cny,
}

impl Currency {
    pub fn code(self) -> &'static str {
        match self {
            Currency::Usd => "USD",
            Currency::Cny => "CNY",
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Currency::Usd => "$",
            Currency::Cny => "¥",
        }
    }
}

/// 怎么把美元显示出来：币种与汇率（1 美元 = `rate` 个显示单位，百万分之一记；美元时为 1,000,000）。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pricing {
    pub currency: Currency,
    pub rate: Micros,
}

impl Default for Pricing {
    fn default() -> Self {
        Pricing {
            currency: Currency::Usd,
            rate: Micros(MICROS),
        }
    }
}

impl Pricing {
    /// 美元 → 显示币种（都是百万分之一）。
    pub fn to_display(self, usd: Micros) -> Micros {
        Micros((i128::from(usd.0) * i128::from(self.rate.0) / i128::from(MICROS)) as i64)
    }

    /// 显示币种 → 美元（预算写的是显示币种）。向下取整：预算只会更紧一点，不会更松。
    pub fn to_usd(self, display: Micros) -> Micros {
        if self.rate.0 <= 0 {
            return Micros(0);
        }
        Micros((i128::from(display.0) * i128::from(MICROS) / i128::from(self.rate.0)) as i64)
    }

    /// 带符号的金额，例如 `$3.84`、`¥27.65`。
    pub fn show(self, usd: Micros) -> String {
        format!(
            "{}{}",
            self.currency.symbol(),
            self.to_display(usd).decimal()
        )
    }
}

/// 一笔花费：已知的金额，加上价格未知的次数（未知的绝不当作 0）。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Spend {
    /// 价格已知的部分（美元，百万分之一）。
    pub usd: Micros,
    /// 计费了（或可能计费了）、价格却未知的次数。
    pub unpriced: u64,
}

impl Spend {
    pub fn add(&mut self, price: Option<Micros>) {
        match price {
            Some(p) => self.usd = self.usd.plus(p),
            None => self.unpriced += 1,
        }
    }

    pub fn merge(&mut self, other: Spend) {
        self.usd = self.usd.plus(other.usd);
        self.unpriced += other.unpriced;
    }

    /// 给人看的写法：`$0.27`；有未知价格时加上“另有 N 次价格未知”；全都未知时只说未知。
    pub fn show(self, pricing: Pricing) -> String {
        match (self.usd.0, self.unpriced) {
            (_, 0) => pricing.show(self.usd),
            (0, n) => format!("价格未知（{n} 次）"),
            (_, n) => format!("{}（另有 {n} 次价格未知）", pricing.show(self.usd)),
        }
    }
}

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.decimal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_round_to_millionths_and_print_without_drift() {
        assert_eq!(Micros::from_decimal(0.134), Micros(134_000));
        assert_eq!(Micros::from_decimal(0.0336), Micros(33_600));
        assert_eq!(Micros::from_decimal(-1.0), Micros(0));
        assert_eq!(Micros::from_decimal(f64::NAN), Micros(0));
        // 0.1 + 0.2 在浮点里不是 0.3；整数里是。
        let sum = Micros::from_decimal(0.1).plus(Micros::from_decimal(0.2));
        assert_eq!(sum.decimal(), "0.30");
        assert_eq!(Micros(134_000).times(16).decimal(), "2.144");
        assert_eq!(Micros(240_000).times(16).decimal(), "3.84");
        assert_eq!(Micros(0).decimal(), "0.00");
        assert_eq!(Micros(1).decimal(), "0.000001");
        assert_eq!(Micros(-500_000).decimal(), "-0.50");
    }

    #[test]
    fn display_currency_converts_both_ways_in_integers() {
        let cny = Pricing {
            currency: Currency::Cny,
            rate: Micros::from_decimal(7.2),
        };
        assert_eq!(cny.to_display(Micros(240_000)), Micros(1_728_000));
        assert_eq!(cny.show(Micros(240_000)), "¥1.728");
        assert_eq!(cny.to_usd(Micros(7_200_000)), Micros(1_000_000));
        assert_eq!(Pricing::default().show(Micros(3_840_000)), "$3.84");
        let mut spend = Spend::default();
        spend.add(Some(Micros(134_000)));
        spend.add(None);
        assert_eq!(
            spend.show(Pricing::default()),
            "$0.134（另有 1 次价格未知）"
        );
        assert_eq!(
            Spend {
                usd: Micros(0),
                unpriced: 2
            }
            .show(Pricing::default()),
            "价格未知（2 次）"
        );
    }
}
