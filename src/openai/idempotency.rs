//! 幂等键：客户端超时后带同一个 `Idempotency-Key` 重发时，24 小时内直接返回第一次的结果，
//! 不再生成（也不再付费）——服务器重启之后也一样，因为结果记在数据库里（表 `idempotency`）。
//!
//! - 同一个键配上不同的请求（参数或参考图不同）：409，什么都不生成；
//! - 并发的重复请求：第一个去生成，其余的等它，共用它的结果；
//! - 失败不记：重发会重新生成；有图没能存进图库（暂存）时也不记（记不下可以回放的 id）。
//!
//! 记录里只有图片 id（图片本身已在存储里），所以 16 张大图的结果也只占几百字节。

use crate::error::ApiError;
use crate::storage::sql::params;
use crate::storage::Storage;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// 记录的保留时间（秒）。
const TTL_SECS: i64 = 24 * 3600;

/// 已生成的一张图。`id` 为空表示它没能存进图库（只在第一次的响应里，`base64` 里是它）。
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Produced {
    pub id: Option<String>,
    pub revised_prompt: Option<String>,
    /// 实际提供这张图的模型（按模型路由、改用备选模型之后的；扩展字段）。
    #[serde(default)]
    pub model: Option<String>,
    /// 没能存进图库的图的 base64（只在第一次的响应里有，不进记录）；存下了的图从文件读。
    #[serde(skip)]
    pub base64: Option<String>,
}

/// 一个请求的幂等键：作用域（调用方|接口|客户端给的键）与请求内容的哈希。
#[derive(Debug, Clone)]
pub struct Key {
    pub scoped: String,
    pub request_hash: String,
}

type Shared = Arc<tokio::sync::OnceCell<Arc<Vec<Produced>>>>;

/// `run` 的结果：图，以及它们是不是这一次生成的（回放或等来的别人的结果不再计入额度）。
pub struct Ran {
    pub produced: Vec<Produced>,
    pub fresh: bool,
}

#[derive(Clone)]
pub struct Idempotency {
    storage: Storage,
    /// 正在生成的键：哈希与大家共用的结果格子。
    in_flight: Arc<Mutex<HashMap<String, (String, Shared)>>>,
}

impl Idempotency {
    pub fn new(storage: Storage) -> Self {
        Self {
            storage,
            in_flight: Arc::default(),
        }
    }

    fn conflict() -> ApiError {
        ApiError::Conflict(
            "这个 Idempotency-Key 已经用在另一个请求上了（参数或参考图不同）；换一个键，或者原样重发第一次的请求".into(),
        )
    }

    /// 这个键已经有完成的记录：返回第一次的结果（请求不同则 409）；没有记录时 None。
    /// 在占用额度之前先查它：已经付过钱的结果，额度用完了也照样取得回来。
    pub async fn replay(&self, key: Option<&Key>) -> Result<Option<Vec<Produced>>, ApiError> {
        let Some(key) = key else {
            return Ok(None);
        };
        match self.load(&key.scoped).await? {
            Some((hash, _)) if hash != key.request_hash => Err(Self::conflict()),
            Some((_, result)) => {
                tracing::info!("幂等键命中：返回第一次的结果，不再生成");
                Ok(Some(result))
            }
            None => Ok(None),
        }
    }

    /// 有幂等键时：有记录则返回第一次的结果（请求不同则 409），否则运行 `produce` 并记住成功的结果。
    /// 没有键时直接运行。
    pub async fn run<F, Fut>(&self, key: Option<Key>, produce: F) -> Result<Ran, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<Produced>, ApiError>>,
    {
        let Some(key) = key else {
            return Ok(Ran {
                produced: produce().await?,
                fresh: true,
            });
        };
        if let Some(produced) = self.replay(Some(&key)).await? {
            return Ok(Ran {
                produced,
                fresh: false,
            });
        }
        let cell = {
            let mut in_flight = self.in_flight.lock().expect("锁未被毒化");
            let (hash, cell) = in_flight
                .entry(key.scoped.clone())
                .or_insert_with(|| (key.request_hash.clone(), Shared::default()));
            if *hash != key.request_hash {
                return Err(Self::conflict());
            }
            cell.clone()
        };
        let mut ran_here = false;
        let result = cell
            .get_or_try_init(|| async {
                ran_here = true;
                let produced = produce().await?;
                let keep: Vec<Produced> = produced
                    .iter()
                    .map(|p| Produced {
                        base64: None,
                        ..p.clone()
                    })
                    .collect();
                if keep.iter().all(|p| p.id.is_some()) {
                    self.save(&key, &keep).await?;
                }
                // 第一个请求自己手里还有 base64；等着的请求拿到的是不带 base64 的那份。
                Ok::<_, ApiError>(Arc::new(produced))
            })
            .await;
        if ran_here || result.is_err() {
            self.in_flight
                .lock()
                .expect("锁未被毒化")
                .remove(&key.scoped);
        }
        let produced = result?;
        if !ran_here {
            tracing::info!("幂等键：等到了同一请求第一次的结果，不再生成");
        }
        Ok(Ran {
            produced: produced
                .iter()
                .map(|p| Produced {
                    base64: if ran_here { p.base64.clone() } else { None },
                    ..p.clone()
                })
                .collect(),
            fresh: ran_here,
        })
    }

    async fn load(&self, scoped: &str) -> Result<Option<(String, Vec<Produced>)>, ApiError> {
        let scoped = scoped.to_string();
        let since = chrono::Utc::now().timestamp() - TTL_SECS;
        let row = self
            .storage
            .with_db(move |c| {
                Ok(c.query_opt(
                    "SELECT request_hash, result FROM idempotency WHERE key = ?1 AND created_at > ?2",
                    params![scoped, since],
                    |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)),
                )?)
            })
            .await?;
        Ok(row.map(|(hash, result)| (hash, serde_json::from_str(&result).unwrap_or_default())))
    }

    async fn save(&self, key: &Key, produced: &[Produced]) -> Result<(), ApiError> {
        let (scoped, hash) = (key.scoped.clone(), key.request_hash.clone());
        let result = serde_json::to_string(produced).expect("结果总能序列化");
        let now = chrono::Utc::now().timestamp();
        self.storage
            .with_db(move |c| {
                c.execute(
                    "INSERT INTO idempotency (key, request_hash, result, created_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash,
                         result = excluded.result, created_at = excluded.created_at",
                    params![scoped, hash, result, now],
                )?;
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// 删掉过期的记录（每小时一次）。
    pub async fn clean(&self) -> Result<usize, ApiError> {
        let before = chrono::Utc::now().timestamp() - TTL_SECS;
        Ok(self
            .storage
            .with_db(move |c| {
                Ok(c.execute(
                    "DELETE FROM idempotency WHERE created_at <= ?1",
                    params![before],
                )?)
            })
            .await?)
    }
}
