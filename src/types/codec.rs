//! 服务器函数的编码：JSON，与 Leptos 自带的 `Json` 在网络上完全一样（POST、`application/json`），
//! 只是解码时先当作 UTF-8 文本再用 `serde_json::from_str`。
//!
//! 为什么：浏览器端的 WASM 里，`serde_json` 的反序列化代码按“读取器 × 类型”各生成一份。
//! island 的属性（Leptos 用 `from_str`）和 `/ws` 推送都按文本解析，而 Leptos 的 `Json` 用 `from_slice`，
//! 于是 `JobView` 等类型的解析代码有两份（实测约 100 KB 未压缩的 WASM）。所有服务器函数都用这里的
//! `JsonStr`，同一类型只剩一份。

use leptos::serde_json;
use leptos::server_fn::codec::Post;
use leptos::server_fn::{Bytes, ContentType, Decodes, Encodes, Format, FormatType};
use serde::de::{DeserializeOwned, Error as _};
use serde::Serialize;

/// JSON 文本编码（见模块说明）。
pub struct JsonText;

impl ContentType for JsonText {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for JsonText {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for JsonText {
    type Error = serde_json::Error;

    fn encode(value: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(value).map(Bytes::from)
    }
}

impl<T: DeserializeOwned> Decodes<T> for JsonText {
    type Error = serde_json::Error;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        let text = std::str::from_utf8(&bytes).map_err(serde_json::Error::custom)?;
        serde_json::from_str(text)
    }
}

/// 服务器函数的输入与输出协议：`#[server(…, input = JsonStr, output = JsonStr)]`。
pub type JsonStr = Post<JsonText>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_bytes() {
        let bytes = <JsonText as Encodes<Vec<String>>>::encode(&vec!["猫".to_string()]).unwrap();
        assert_eq!(&bytes[..], "[\"猫\"]".as_bytes());
        let back: Vec<String> = JsonText::decode(bytes).unwrap();
        assert_eq!(back, vec!["猫".to_string()]);
        let bad = <JsonText as Decodes<Vec<String>>>::decode(Bytes::from_static(b"[\"\xff\"]"));
        assert!(bad.is_err());
    }
}
