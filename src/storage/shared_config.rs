//! 集群模式下共用的配置存在元数据库的 `shared_config` 表里（只有一行）：`crate::config::shared::SharedConfig` 的实现。
//! 写入是条件更新：库里还是调用方以为的那一版才写，几个实例同时保存时只有一个成功，其余的得到“已被改过”。

use super::sql::{now_ms, params, Db, DbError};
use super::Storage;
use crate::config::shared::{SharedConfig, SharedText};

use futures::future::BoxFuture;

fn latest(db: &mut Db<'_>) -> Result<Option<SharedText>, DbError> {
    db.query_opt(
        "SELECT version, text FROM shared_config WHERE id = 1",
        params![],
        |r| {
            Ok(SharedText {
                version: r.get(0)?,
                text: r.get(1)?,
            })
        },
    )
}

fn replace(db: &mut Db<'_>, text: &str, expected: i64, by: &str) -> Result<Option<i64>, DbError> {
    let now = now_ms(db.dialect());
    let changed = if expected == 0 {
        db.execute(
            &format!(
                "INSERT INTO shared_config (id, version, text, saved_at, saved_by) VALUES (1, 1, ?1, {now}, ?2)
                 ON CONFLICT (id) DO NOTHING"
            ),
            params![text, by],
        )?
    } else {
        db.execute(
            &format!(
                "UPDATE shared_config SET version = version + 1, text = ?1, saved_at = {now}, saved_by = ?2
                 WHERE id = 1 AND version = ?3"
            ),
            params![text, by, expected],
        )?
    };
    Ok((changed == 1).then_some(expected + 1))
}

impl SharedConfig for Storage {
    fn latest(&self) -> BoxFuture<'_, Result<Option<SharedText>, String>> {
        Box::pin(async move {
            self.with_db(|db| Ok(latest(db)?))
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn version(&self) -> BoxFuture<'_, Result<i64, String>> {
        Box::pin(async move {
            self.with_db(|db| {
                Ok(db.query_one(
                    "SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM shared_config",
                    params![],
                    |r| r.get(0),
                )?)
            })
            .await
            .map_err(|e| e.to_string())
        })
    }

    fn replace(
        &self,
        text: String,
        expected: i64,
        by: String,
    ) -> BoxFuture<'_, Result<Option<i64>, String>> {
        Box::pin(async move {
            self.with_db(move |db| Ok(replace(db, &text, expected, &by)?))
                .await
                .map_err(|e| e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_expected_version_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let database =
            super::super::db::connect(dir.path().join("m.db").to_str().unwrap()).unwrap();
        database
            .run(|db| {
                assert_eq!(latest(db)?, None);
                assert_eq!(replace(db, "a", 0, "A")?, Some(1));
                assert_eq!(replace(db, "b", 0, "B")?, None, "第 1 版已经有了");
                assert_eq!(replace(db, "c", 1, "A")?, Some(2));
                assert_eq!(replace(db, "d", 1, "B")?, None, "B 以为还是第 1 版");
                assert_eq!(
                    latest(db)?,
                    Some(SharedText {
                        version: 2,
                        text: "c".into()
                    })
                );
                Ok::<_, DbError>(())
            })
            .unwrap();
    }
}
