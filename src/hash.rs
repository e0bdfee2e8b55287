//! 内容的 SHA-256（小写十六进制）：密钥的摘要、图片与参考图的内容哈希。
//! 单独一个模块，网关（密钥状态按密钥摘要记）与 HTTP 层都能用，谁也不必向对方借。

use sha2::{Digest, Sha256};

/// 内容的 SHA-256（小写十六进制）。
pub fn sha256_hex(data: impl AsRef<[u8]>) -> String {
    Sha256::digest(data.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_digest() {
        assert_eq!(
            super::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
