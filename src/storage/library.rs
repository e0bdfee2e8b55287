//! 图库：按 id 查、列出与计数、收藏、回收站（移入、恢复、清空）。

use super::{db, now_string, sql, ImageRecord, ListFilter, Storage, StorageError};

impl Storage {
    /// 这张图的文件在不在。
    pub async fn has_file(&self, record: &ImageRecord) -> bool {
        let (blobs, root, rel) = (
            self.inner.blobs.clone(),
            record.root.clone(),
            record.rel_path.clone(),
        );
        tokio::task::spawn_blocking(move || blobs.exists(&root, &rel))
            .await
            .unwrap_or(false)
    }

    /// 按 id 查记录（回收站里的也返回，见 `ImageRecord::deleted_at`）。
    pub async fn get(&self, id: String) -> Result<Option<ImageRecord>, StorageError> {
        self.with_db(move |c| Ok(db::get(c, &id)?)).await
    }

    /// 各存储根下（未删除的）图片数。
    pub async fn image_counts_by_root(&self) -> Result<Vec<(String, u64)>, StorageError> {
        self.with_db(|c| {
            Ok(c.query(
                "SELECT root, COUNT(*) FROM images WHERE deleted_at IS NULL GROUP BY root ORDER BY root",
                sql::params![],
                |r| Ok((r.get(0)?, r.get::<u64>(1)?)),
            )?)
        })
        .await
    }

    /// 图库查询。
    pub async fn list(&self, filter: ListFilter) -> Result<Vec<ImageRecord>, StorageError> {
        self.with_db(move |c| Ok(db::list(c, &filter)?)).await
    }

    /// 收藏或取消收藏，返回是否有这张图。
    pub async fn set_favourite(&self, id: String, favourite: bool) -> Result<bool, StorageError> {
        self.with_db(move |c| Ok(db::set_favourite(c, &id, favourite)? > 0))
            .await
    }

    /// 移入回收站，返回实际移入的条数。文件不动，可以恢复。
    pub async fn trash(&self, ids: Vec<String>) -> Result<usize, StorageError> {
        let now = now_string();
        self.with_db(move |c| Ok(db::trash(c, &ids, &now)?)).await
    }

    /// 从回收站恢复，返回实际恢复的条数。
    pub async fn restore(&self, ids: Vec<String>) -> Result<usize, StorageError> {
        self.with_db(move |c| Ok(db::restore(c, &ids)?)).await
    }

    /// 清空回收站：先删记录（一个事务），再删文件。删文件前崩溃最多留下孤儿文件（启动核对会报告），
    /// 不会留下指向缺失文件的记录。返回删除的张数。
    /// `only` 不为空时只删这个账号的。
    pub async fn empty_trash(&self, only: Option<String>) -> Result<usize, StorageError> {
        let removed = self
            .with_db(move |c| Ok(db::purge_trash(c, only.as_deref())?))
            .await?;
        // 删文件不占着数据库：对象存储的删除可能要几秒，别的保存与查询不必等它。
        let blobs = self.inner.blobs.clone();
        let count = removed.len();
        tokio::task::spawn_blocking(move || {
            for r in &removed {
                for rel in [r.rel_path.clone(), r.thumb_rel_path_for()] {
                    if let Err(e) = blobs.remove(&r.root, &rel) {
                        tracing::warn!("删除文件失败：{e}");
                    }
                }
            }
        })
        .await
        .map_err(|e| StorageError::Join(e.to_string()))?;
        Ok(count)
    }
}
