//! 记在浏览器里的选择（localStorage）：上次提交用的张数、宽高比、分辨率、模型与模式，下次打开时恢复。
//! 只在提交成功后记下；读不到或格式不对时用默认值。

use super::browser;
use super::draft::Prefs;

const KEY: &str = "drafting-factory.studio";

pub fn load() -> Option<Prefs> {
    serde_json::from_str(&browser::stored(KEY)?).ok()
}

pub fn save(prefs: &Prefs) {
    if let Ok(text) = serde_json::to_string(prefs) {
        browser::store(KEY, &text);
    }
}
