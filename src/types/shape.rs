//! 图像的形状：宽高比、分辨率档位，以及它们对应的像素尺寸。

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Gemini 图像模型支持的宽高比。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum AspectRatio {
    #[default]
    #[serde(rename = "1:1")]
    Square,
    #[serde(rename = "2:3")]
    P2x3,
    #[serde(rename = "3:2")]
    L3x2,
    #[serde(rename = "3:4")]
    P3x4,
    #[serde(rename = "4:3")]
    L4x3,
    #[serde(rename = "4:5")]
    P4x5,
    #[serde(rename = "5:4")]
    L5x4,
    #[serde(rename = "9:16")]
    P9x16,
    #[serde(rename = "16:9")]
    L16x9,
    #[serde(rename = "21:9")]
    L21x9,
    #[serde(rename = "1:4")]
    P1x4,
    #[serde(rename = "4:1")]
    L4x1,
    #[serde(rename = "1:8")]
    P1x8,
    #[serde(rename = "8:1")]
    L8x1,
}

impl AspectRatio {
    pub const ALL: [AspectRatio; 14] = [
        Self::Square,
        Self::P2x3,
        Self::L3x2,
        Self::P3x4,
        Self::L4x3,
        Self::P4x5,
        Self::L5x4,
        Self::P9x16,
        Self::L16x9,
        Self::L21x9,
        Self::P1x4,
        Self::L4x1,
        Self::P1x8,
        Self::L8x1,
    ];

    /// 各个 Gemini 图像模型都支持的 10 种（`ALL` 的前 10 个；较新的 Flash 另有 1:4、4:1、1:8、8:1，见模型目录）。
    pub const CLASSIC: &'static [AspectRatio] = Self::ALL.split_at(10).0;

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Square => "1:1",
            Self::P2x3 => "2:3",
            Self::L3x2 => "3:2",
            Self::P3x4 => "3:4",
            Self::L4x3 => "4:3",
            Self::P4x5 => "4:5",
            Self::L5x4 => "5:4",
            Self::P9x16 => "9:16",
            Self::L16x9 => "16:9",
            Self::L21x9 => "21:9",
            Self::P1x4 => "1:4",
            Self::L4x1 => "4:1",
            Self::P1x8 => "1:8",
            Self::L8x1 => "8:1",
        }
    }

    /// 1K 档的像素尺寸（宽, 高），取自 Gemini 3 Pro Image 的官方尺寸表；2K、4K 分别乘 2、4。
    fn base_pixels(self) -> (u32, u32) {
        match self {
            Self::Square => (1024, 1024),
            Self::P2x3 => (848, 1264),
            Self::L3x2 => (1264, 848),
            Self::P3x4 => (896, 1200),
            Self::L4x3 => (1200, 896),
            Self::P4x5 => (928, 1152),
            Self::L5x4 => (1152, 928),
            Self::P9x16 => (768, 1376),
            Self::L16x9 => (1376, 768),
            Self::L21x9 => (1584, 672),
            // 较新的 Flash 的细长比例：与其他比例大约同样的像素数。
            Self::P1x4 => (512, 2048),
            Self::L4x1 => (2048, 512),
            Self::P1x8 => (360, 2880),
            Self::L8x1 => (2880, 360),
        }
    }
}

impl fmt::Display for AspectRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AspectRatio {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s.trim())
            .ok_or_else(|| {
                format!(
                    "不支持的宽高比“{s}”，可选：{}",
                    Self::ALL.map(|a| a.as_str()).join("、")
                )
            })
    }
}

/// 输出分辨率档位。Gemini 要求大写的 K。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ImageSize {
    /// 较小的预览档（只有部分 Flash 模型支持，见模型目录）。
    #[serde(rename = "512")]
    Half,
    #[default]
    #[serde(rename = "1K")]
    K1,
    #[serde(rename = "2K")]
    K2,
    #[serde(rename = "4K")]
    K4,
}

impl ImageSize {
    pub const ALL: [ImageSize; 4] = [Self::Half, Self::K1, Self::K2, Self::K4];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Half => "512",
            Self::K1 => "1K",
            Self::K2 => "2K",
            Self::K4 => "4K",
        }
    }

    /// 相对 1K 的倍数（分子, 分母）。
    fn scale(self) -> (u32, u32) {
        match self {
            Self::Half => (1, 2),
            Self::K1 => (1, 1),
            Self::K2 => (2, 1),
            Self::K4 => (4, 1),
        }
    }

    /// 这一档最长边的标称像素数（1K 为 1024）：尺寸核对用。
    pub fn nominal_long_side(self) -> u32 {
        let (n, d) = self.scale();
        1024 * n / d
    }
}

impl fmt::Display for ImageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ImageSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s.trim())
            .ok_or_else(|| format!("不支持的分辨率“{s}”，可选：512、1K、2K、4K"))
    }
}

impl AspectRatio {
    /// 与 `w`×`h` 最接近的宽高比（按对数比例的距离）。
    pub fn nearest(w: u32, h: u32) -> AspectRatio {
        Self::nearest_of(&Self::ALL, w, h)
    }

    /// `choices` 里与 `w`×`h` 最接近的宽高比。
    pub fn nearest_of(choices: &[AspectRatio], w: u32, h: u32) -> AspectRatio {
        let target = (w.max(1) as f64 / h.max(1) as f64).ln();
        let distance = |a: &AspectRatio| {
            let (aw, ah) = a.base_pixels();
            ((aw as f64 / ah as f64).ln() - target).abs()
        };
        choices
            .iter()
            .copied()
            .min_by(|a, b| distance(a).total_cmp(&distance(b)))
            .unwrap_or_default()
    }
}

impl ImageSize {
    /// 按最长边选档：≤1600 为 1K，≤3200 为 2K，更大为 4K。
    pub fn for_longest_side(longest: u32) -> ImageSize {
        match longest {
            0..=1600 => Self::K1,
            // （512 档只在明确要求时用：`image_size = "512"`。）
            1601..=3200 => Self::K2,
            _ => Self::K4,
        }
    }
}

/// 解析“宽x高”（如 `1024x1536`）为最接近的宽高比与分辨率档；`auto` 或空为 1:1、1K。
pub fn shape_from_size(size: Option<&str>) -> Result<(AspectRatio, ImageSize), String> {
    let size = match size.map(str::trim) {
        None | Some("") | Some("auto") => return Ok((AspectRatio::Square, ImageSize::K1)),
        Some(s) => s,
    };
    let bad = || format!("size 应为“宽x高”（例如 1024x1024）或 auto，收到“{size}”");
    let (w, h) = size.split_once(['x', 'X', '×']).ok_or_else(bad)?;
    let w: u32 = w.trim().parse().map_err(|_| bad())?;
    let h: u32 = h.trim().parse().map_err(|_| bad())?;
    if w == 0 || h == 0 || w > 16_384 || h > 16_384 {
        return Err(bad());
    }
    Ok((
        AspectRatio::nearest(w, h),
        ImageSize::for_longest_side(w.max(h)),
    ))
}

/// 给定宽高比与分辨率档位时，生成图像的像素尺寸（宽, 高）。
pub fn pixel_size(aspect: AspectRatio, size: ImageSize) -> (u32, u32) {
    let (w, h) = aspect.base_pixels();
    let (n, d) = size.scale();
    (w * n / d, h * n / d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_aspect_ratio_round_trips_and_matches_its_ratio() {
        for a in AspectRatio::ALL {
            assert_eq!(a.as_str().parse::<AspectRatio>().unwrap(), a);
            let (w, h) = pixel_size(a, ImageSize::K1);
            let (rw, rh) = a.as_str().split_once(':').unwrap();
            let want = rw.parse::<f64>().unwrap() / rh.parse::<f64>().unwrap();
            let got = w as f64 / h as f64;
            assert!((got - want).abs() / want < 0.03, "{a}: {w}x{h}");
        }
    }

    #[test]
    fn sizes_scale_with_resolution() {
        assert_eq!(
            pixel_size(AspectRatio::L16x9, ImageSize::K4),
            (1376 * 4, 768 * 4)
        );
        assert!("2k".parse::<ImageSize>().is_err());
        assert!("7:3".parse::<AspectRatio>().is_err());
    }
}
