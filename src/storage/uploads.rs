//! 参考图（上传）：按内容的 SHA-256 去重保存，按 id 取。

use super::{db, now_string, Storage, StorageError, UploadRecord};
use crate::atomic_file::Durability;

impl Storage {
    /// 保存一张上传的参考图：按内容的 SHA-256 去重，同样的图只存一份。返回它的记录。
    pub async fn save_upload(
        &self,
        data: bytes::Bytes,
        mime: String,
        filename: Option<String>,
    ) -> Result<UploadRecord, StorageError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.save_upload_blocking(data, &mime, filename))
            .await
            .map_err(|e| StorageError::Join(e.to_string()))?
    }

    fn save_upload_blocking(
        &self,
        data: bytes::Bytes,
        mime: &str,
        filename: Option<String>,
    ) -> Result<UploadRecord, StorageError> {
        use sha2::Digest;
        let id = format!("{:x}", sha2::Sha256::digest(&data));
        // 先取出来再判断：`if let` 的条件里的数据库锁会一直持有到整个块结束，块里再写库就自己锁死了。
        let existing = self.inner.db.run(|c| db::get_upload(c, &id))?;
        if let Some(mut existing) = existing {
            if self.inner.blobs.exists(&existing.root, &existing.rel_path) {
                // 同样的内容又传了一次：记下最近的文件名。
                if filename.is_some() && filename != existing.filename {
                    existing.filename = filename;
                    self.inner.db.run(|c| db::put_upload(c, &existing))?;
                }
                return Ok(existing);
            }
        }
        let ext = match mime {
            "image/png" => "png",
            "image/jpeg" => "jpg",
            "image/webp" => "webp",
            _ => "bin",
        };
        let root = self.root();
        let rel_path = format!("uploads/{}/{id}.{ext}", &id[..2]);
        let bytes = data.len() as i64;
        self.inner
            .blobs
            .write(&root, &rel_path, data, Durability::Durable)?;
        let record = UploadRecord {
            id,
            root,
            rel_path,
            mime: mime.to_string(),
            bytes,
            created_at: now_string(),
            filename,
        };
        self.inner.db.run(|c| db::put_upload(c, &record))?;
        Ok(record)
    }

    /// 按 id 取一份上传。
    pub async fn get_upload(&self, id: String) -> Result<Option<UploadRecord>, StorageError> {
        self.with_db(move |c| Ok(db::get_upload(c, &id)?)).await
    }
}
