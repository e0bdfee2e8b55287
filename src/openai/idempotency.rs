//! 幂等键：客户端超时后带同一个 `Idempotency-Key` 重发时，24 小时内直接返回第一次的结果，
//! 不再生成（也不再付费）。并发的重复请求等第一个完成后共用它的结果；失败不缓存，重发会重新生成。
//!
//! 缓存里只存图片 id（图片本身已在存储里），所以 16 张大图的结果也只占几百字节。

use crate::error::ApiError;
use moka::future::Cache;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// 幂等结果的保留时间。
const TTL: Duration = Duration::from_secs(24 * 3600);

/// 已生成并保存的一张图。
#[derive(Debug, Clone)]
pub struct Produced {
    pub id: String,
    pub revised_prompt: Option<String>,
    /// 第一次请求时手里的图片 base64（不进缓存）。
    pub base64: Option<String>,
}

#[derive(Clone)]
pub struct IdempotencyCache {
    cache: Cache<String, Arc<Vec<Produced>>>,
}

impl Default for IdempotencyCache {
    fn default() -> Self {
        Self {
            cache: Cache::builder()
                .time_to_live(TTL)
                .max_capacity(100_000)
                .build(),
        }
    }
}

impl IdempotencyCache {
    /// 有幂等键时：命中则返回第一次的结果，否则运行 `produce` 并记住成功的结果。没有键时直接运行。
    pub async fn run<F, Fut>(
        &self,
        key: Option<String>,
        produce: F,
    ) -> Result<Vec<Produced>, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<Produced>, ApiError>>,
    {
        let Some(key) = key else {
            return produce().await;
        };
        let mut first = false;
        let result = self
            .cache
            .try_get_with(key, async {
                first = true;
                let produced = produce().await?;
                // 缓存里不放图片字节。
                let ids = produced
                    .iter()
                    .map(|p| Produced {
                        id: p.id.clone(),
                        revised_prompt: p.revised_prompt.clone(),
                        base64: None,
                    })
                    .collect();
                Ok::<_, ApiError>(Arc::new(ids))
            })
            .await;
        match result {
            Ok(produced) => {
                if !first {
                    tracing::info!("幂等键命中：返回第一次的结果，不再生成");
                }
                Ok(produced.as_ref().clone())
            }
            Err(e) => Err(ApiError::Shared(e)),
        }
    }
}
