//! 幂等键：客户端超时后带同一个 `Idempotency-Key` 重发时，24 小时内直接返回第一次的结果，
//! 不再生成（也不再付费）——服务器重启之后也一样，因为结果记在数据库里（表 `idempotency`）。
//!
//! - 同一个键配上不同的请求（参数或参考图不同）：409，什么都不生成；
//! - 并发的重复请求：第一个去生成，其余的等它，共用它的结果；
//! - 失败不记：重发会重新生成；有图没能存进图库（暂存）时也不记（记不下可以回放的 id）。
//!
//! 记录里只有图片 id（图片本身已在存储里），所以 16 张大图的结果也只占几百字节。
//!
//! 几个实例共用一个库时，生成之前先在库里占下这个键（记录的结果写成 `pending:实例 id`）：同一个键重发到
//! 另一个实例，它看到占着的记录就等第一次的结果（每 250 毫秒查一次库），不再生成；占着它的实例超过租约
//! 没报平安（停了）时接手重新生成。生成失败则删掉占位，重发会重新生成。

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
    /// 本实例的 id 与租约（毫秒）：库里占位的记录写着占它的实例，别的实例据租约判断它还在不在。
    instance: String,
    lease_ms: i64,
}

/// 库里这个键的记录。
enum Record {
    /// 第一次的结果（请求的哈希与结果）。
    Done(String, Vec<Produced>),
    /// 某个实例正在生成（请求的哈希、占位的实例、占位时刻）。
    Pending(String, String, i64),
}

const PENDING: &str = "pending:";

/// 交给这个请求的图：自己生成的带着没能存进图库的图的 base64；等来的（别人生成的）不带。
fn for_caller(produced: &[Produced], ran_here: bool) -> Vec<Produced> {
    produced
        .iter()
        .map(|p| Produced {
            base64: if ran_here { p.base64.clone() } else { None },
            ..p.clone()
        })
        .collect()
}

/// 生成途中被丢弃时（调用方断开）在后台删掉本实例的占位。
struct Placeholder {
    idem: Option<(Idempotency, Key)>,
}

impl Drop for Placeholder {
    fn drop(&mut self) {
        if let Some((idem, key)) = self.idem.take() {
            tokio::spawn(async move { idem.release(&key).await });
        }
    }
}

impl Idempotency {
    pub fn new(storage: Storage, instance: String, lease_ms: i64) -> Self {
        Self {
            storage,
            in_flight: Arc::default(),
            instance,
            lease_ms,
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
            Some(Record::Done(hash, _)) if hash != key.request_hash => Err(Self::conflict()),
            Some(Record::Done(_, result)) => {
                tracing::info!("幂等键命中：返回第一次的结果，不再生成");
                Ok(Some(result))
            }
            Some(Record::Pending(..)) | None => Ok(None),
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
        let cell = self.shared_cell(&key)?;
        let mut ran_here = false;
        let result = cell
            .get_or_try_init(|| async {
                // 别的实例已经完成或正在生成这个键：等它的结果。
                if let Some(theirs) = self.claim_or_wait(&key).await? {
                    return Ok(Arc::new(theirs));
                }
                ran_here = true;
                let produced = self.produce_and_keep(&key, produce).await?;
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
            produced: for_caller(produced, ran_here),
            fresh: ran_here,
        })
    }

    /// 本实例里同一个键的并发请求排成一个：取（没有就建）大家共用的结果格子。
    /// 同一个键正配着另一个请求在生成时 409。
    fn shared_cell(&self, key: &Key) -> Result<Shared, ApiError> {
        let mut in_flight = self.in_flight.lock().expect("锁未被毒化");
        let (hash, cell) = in_flight
            .entry(key.scoped.clone())
            .or_insert_with(|| (key.request_hash.clone(), Shared::default()));
        if *hash != key.request_hash {
            return Err(Self::conflict());
        }
        Ok(cell.clone())
    }

    /// 由本请求生成（库里已占下这个键）：成功且每张图都存进了图库时记住结果（不带 base64），
    /// 否则删掉占位；生成失败也删掉占位。返回的是带着 base64 的原样结果。
    async fn produce_and_keep<F, Fut>(
        &self,
        key: &Key,
        produce: F,
    ) -> Result<Vec<Produced>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<Produced>, ApiError>>,
    {
        // 调用方断开（这个 future 被丢弃）时也删掉占位：否则重发到别的实例会一直等它。
        let mut placeholder = Placeholder {
            idem: Some((self.clone(), key.clone())),
        };
        let produced = match produce().await {
            Ok(produced) => produced,
            Err(e) => {
                placeholder.idem = None;
                self.release(key).await;
                return Err(e);
            }
        };
        placeholder.idem = None;
        let keep: Vec<Produced> = produced
            .iter()
            .map(|p| Produced {
                base64: None,
                ..p.clone()
            })
            .collect();
        if keep.iter().all(|p| p.id.is_some()) {
            self.save(key, &keep).await?;
        } else {
            self.release(key).await;
        }
        // 第一个请求自己手里还有 base64；等着的请求拿到的是不带 base64 的那份。
        Ok(produced)
    }

    async fn load(&self, scoped: &str) -> Result<Option<Record>, ApiError> {
        let scoped = scoped.to_string();
        let since = chrono::Utc::now().timestamp() - TTL_SECS;
        let row = self
            .storage
            .with_db(move |c| {
                Ok(c.query_opt(
                    "SELECT request_hash, result, created_at FROM idempotency WHERE key = ?1 AND created_at > ?2",
                    params![scoped, since],
                    |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<i64>(2)?)),
                )?)
            })
            .await?;
        Ok(
            row.map(|(hash, result, at)| match result.strip_prefix(PENDING) {
                Some(owner) => Record::Pending(hash, owner.to_string(), at),
                None => Record::Done(hash, serde_json::from_str(&result).unwrap_or_default()),
            }),
        )
    }

    /// 在库里占下这个键（返回 None，由本请求生成），或等别的实例的结果（返回它）。
    /// 占着它的实例停了（超过租约没报平安）时接手。
    async fn claim_or_wait(&self, key: &Key) -> Result<Option<Vec<Produced>>, ApiError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20 * 60);
        loop {
            let (scoped, hash, me) = (
                key.scoped.clone(),
                key.request_hash.clone(),
                format!("{PENDING}{}", self.instance),
            );
            let now = chrono::Utc::now().timestamp();
            let since = now - TTL_SECS;
            let claimed = self
                .storage
                .with_db(move |c| {
                    // 过期的记录不算数：先删掉再占。
                    c.execute(
                        "DELETE FROM idempotency WHERE key = ?1 AND created_at <= ?2",
                        params![scoped, since],
                    )?;
                    Ok(c.execute(
                        "INSERT INTO idempotency (key, request_hash, result, created_at) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (key) DO NOTHING",
                        params![scoped, hash, me, now],
                    )? == 1)
                })
                .await?;
            if claimed {
                return Ok(None);
            }
            match self.load(&key.scoped).await? {
                None => continue,
                Some(Record::Done(hash, _)) | Some(Record::Pending(hash, _, _))
                    if hash != key.request_hash =>
                {
                    return Err(Self::conflict())
                }
                Some(Record::Done(_, result)) => {
                    tracing::info!("幂等键：别的实例已经生成过，返回它的结果");
                    return Ok(Some(result));
                }
                Some(Record::Pending(_, owner, at)) => {
                    // 本实例自己的占位只会是上次没收拾掉的（本实例里同一个键的并发请求已在内存里排成一个）。
                    if owner == self.instance || !self.alive(&owner).await? {
                        // 占位的实例停了：删掉它的占位（只删那一条），下一轮由本实例占下。
                        let (scoped, marker) = (key.scoped.clone(), format!("{PENDING}{owner}"));
                        self.storage
                            .with_db(move |c| {
                                Ok(c.execute(
                                    "DELETE FROM idempotency WHERE key = ?1 AND result = ?2 AND created_at = ?3",
                                    params![scoped, marker, at],
                                )?)
                            })
                            .await?;
                        tracing::warn!("幂等键：占着它的实例已经停了，由本实例重新生成");
                        continue;
                    }
                }
            }
            if std::time::Instant::now() > deadline {
                return Err(ApiError::Conflict(
                    "同一个 Idempotency-Key 的请求在另一个实例上生成了 20 分钟还没完成；稍后原样重发".into(),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// 这个实例还在（租约内报过平安）。
    /// 按数据库的钟比较；SQLite 只有本实例在用，别的实例一律算停了（上次运行留下的占位）。
    async fn alive(&self, instance: &str) -> Result<bool, ApiError> {
        let (id, lease) = (instance.to_string(), self.lease_ms);
        Ok(self
            .storage
            .with_db(move |c| {
                if c.dialect() == crate::storage::sql::Dialect::Sqlite {
                    return Ok(false);
                }
                let now = crate::storage::sql::now_ms(c.dialect());
                Ok(c.query_opt(
                    &format!(
                        "SELECT 1 FROM instances WHERE id = ?1 AND heartbeat_at >= {now} - {lease}"
                    ),
                    params![id],
                    |_| Ok(()),
                )?
                .is_some())
            })
            .await?)
    }

    /// 没有可记的结果（失败，或有图没能存进图库）：删掉本实例的占位，重发会重新生成。
    async fn release(&self, key: &Key) {
        let (scoped, me) = (key.scoped.clone(), format!("{PENDING}{}", self.instance));
        let removed = self
            .storage
            .with_db(move |c| {
                Ok(c.execute(
                    "DELETE FROM idempotency WHERE key = ?1 AND result = ?2",
                    params![scoped, me],
                )?)
            })
            .await;
        if let Err(e) = removed {
            tracing::warn!("删幂等键的占位失败：{e}");
        }
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
