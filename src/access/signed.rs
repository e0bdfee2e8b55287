//! 签名的图片链接：`/v1` 返回的 `url` 与对话接口 Markdown 里的图片链接带 `?exp=…&sig=…`，
//! 在没有工作台会话的浏览器里（聊天软件显示图片时）也能打开；改了任何一个字或过了期限就是 401。
//!
//! 签名是 HMAC-SHA256（键为服务器密钥，内容为“图片 id:到期的 Unix 秒”），密钥在数据库旁的 `url-signing.key`
//! （第一次启动时随机生成，0600），重启后旧链接照常有效。元数据在 PostgreSQL 时密钥放在库里（`secrets` 表），
//! 共用这个库的各实例签出的链接彼此都认。

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

#[derive(Clone)]
pub struct UrlSigner {
    key: std::sync::Arc<[u8; 32]>,
}

/// 密钥文件名（在数据库文件所在的目录）。
use crate::storage::URL_KEY_FILE as KEY_FILE;

impl UrlSigner {
    /// 由 64 位十六进制的密钥构造（库里存的那一把，见 `Storage::shared_secret`）。
    pub fn from_hex(text: &str) -> Option<Self> {
        Some(Self {
            key: std::sync::Arc::new(decode_key(text.trim())?),
        })
    }

    /// 读出 `dir` 下的密钥；没有就生成一把并原子地写下（只有属主可读）。
    pub fn load_or_create(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(KEY_FILE);
        let key = match std::fs::read_to_string(&path) {
            Ok(text) => decode_key(text.trim()).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{} 不是 64 位十六进制的密钥", path.display()),
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let text = crate::storage::new_secret_hex();
                let key = decode_key(&text).expect("刚生成的密钥总能解码");
                crate::atomic_file::write(
                    &path,
                    text.as_bytes(),
                    crate::atomic_file::Durability::Durable,
                    0o600,
                )?;
                key
            }
            Err(e) => return Err(e),
        };
        Ok(Self {
            key: std::sync::Arc::new(key),
        })
    }

    fn mac(&self, id: &str, exp: u64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key[..]).expect("任意长度的键都可以");
        mac.update(format!("{id}:{exp}").as_bytes());
        mac
    }

    /// `id` 在 `exp` 之前有效的签名（十六进制）。
    fn sig_hex(&self, id: &str, exp: u64) -> String {
        self.mac(id, exp)
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// 图片 `id` 的签名链接（相对路径，调用方加上绝对前缀），`ttl_s` 秒后失效。
    pub fn sign(&self, id: &str, ttl_s: u64) -> String {
        let exp = now() + ttl_s;
        format!("/files/{id}?exp={exp}&sig={}", self.sig_hex(id, exp))
    }

    /// 链接的查询串（`exp=…&sig=…`）对图片 `id` 有效。
    pub fn verify_query(&self, id: &str, query: Option<&str>) -> bool {
        let mut exp = None;
        let mut sig = None;
        for (key, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*key {
                "exp" => exp = value.parse::<u64>().ok(),
                "sig" => sig = Some(value.into_owned()),
                _ => {}
            }
        }
        matches!((exp, sig), (Some(exp), Some(sig)) if self.verify(id, exp, &sig))
    }

    /// 签名对、没过期。比较是常数时间的。
    pub fn verify(&self, id: &str, exp: u64, sig: &str) -> bool {
        if exp < now() {
            return false;
        }
        let Some(sig) = decode_hex(sig) else {
            return false;
        };
        self.mac(id, exp).verify_slice(&sig).is_ok()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn decode_key(text: &str) -> Option<[u8; 32]> {
    decode_hex(text)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_survive_a_restart_and_any_change_breaks_them() {
        let dir = tempfile::tempdir().unwrap();
        let signer = UrlSigner::load_or_create(dir.path()).unwrap();
        let url = signer.sign("abc", 60);
        let query = url.split_once('?').unwrap().1;
        let (exp, sig) = query.split_once('&').unwrap();
        let exp: u64 = exp.strip_prefix("exp=").unwrap().parse().unwrap();
        let sig = sig.strip_prefix("sig=").unwrap();
        let again = UrlSigner::load_or_create(dir.path()).unwrap();
        assert!(again.verify("abc", exp, sig), "同一把密钥，重启后仍有效");
        assert!(!again.verify("abd", exp, sig), "换了图片");
        assert!(!again.verify("abc", exp + 1, sig), "改了期限");
        let mut bad = sig.to_string();
        bad.replace_range(0..1, if &sig[..1] == "0" { "1" } else { "0" });
        assert!(!again.verify("abc", exp, &bad), "改了签名");
        // 过期：签名本身是对的（为那个过去的时刻签的），只因为过了期限才无效。
        let past = now() - 10;
        assert!(
            !signer.verify("abc", past, &signer.sig_hex("abc", past)),
            "过期"
        );
        let future = now() + 60;
        assert!(signer.verify("abc", future, &signer.sig_hex("abc", future)));
        assert!(signer.verify_query("abc", url.split_once('?').map(|(_, q)| q)));
        assert!(!signer.verify_query("abc", None));
        assert!(!signer.verify_query("abd", url.split_once('?').map(|(_, q)| q)));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
