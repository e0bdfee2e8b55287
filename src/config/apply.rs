//! “换上新配置”的唯一入口：设置页保存、API 密钥的创建与吊销、配置文件被手工改动，都经 `ConfigStore`。
//!
//! - 一次只处理一个改动（异步锁）：两个同时的保存不会互相覆盖——后一个在前一个生效之后的配置上修改；
//! - 校验（会建目录、试写文件）与写文件都是阻塞操作，放在阻塞线程里做，不占异步线程；
//! - 换入运行中的配置后，调用登记的回调（例如存储根目录跟着变）；
//! - 集群模式（见 `shared.rs`）下改动写进库里，别的实例保存的改动由 `follow_shared` 每秒查一次、换入。

use super::error::ConfigError;
use super::save::Checked;
use super::shared::{localize, SharedConfig};
use super::{Config, ConfigFile, ConfigHandle};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// 配置换入后要做的事（例如把存储的根目录换成新的）。
pub type OnApplied = Box<dyn Fn(&Config) + Send + Sync>;

pub struct ConfigStore {
    current: ConfigHandle,
    file: ConfigFile,
    lock: tokio::sync::Mutex<()>,
    on_applied: Vec<OnApplied>,
    /// 集群模式：配置在库里。
    cluster: Option<Cluster>,
}

/// 集群模式下配置所在的库，与本实例运行着的是第几版。
struct Cluster {
    db: Arc<dyn SharedConfig>,
    version: AtomicI64,
    instance: String,
}

impl ConfigStore {
    pub fn new(current: ConfigHandle, file: ConfigFile, on_applied: Vec<OnApplied>) -> Self {
        Self {
            current,
            file,
            lock: tokio::sync::Mutex::new(()),
            on_applied,
            cluster: None,
        }
    }

    /// 集群模式：运行中的配置是库里的第 `version` 版（由 `adopt_shared` 得到），之后的改动写进库里。
    pub fn shared(mut self, db: Arc<dyn SharedConfig>, version: i64, instance: String) -> Self {
        self.cluster = Some(Cluster {
            db,
            version: AtomicI64::new(version),
            instance,
        });
        self
    }

    /// 集群模式下运行着库里的第几版；单机模式为 `None`。
    pub fn shared_version(&self) -> Option<i64> {
        self.cluster
            .as_ref()
            .map(|c| c.version.load(Ordering::SeqCst))
    }

    /// 运行中的配置。
    pub fn current(&self) -> Arc<Config> {
        self.current.load_full()
    }

    /// 配置文件的位置与来自环境变量的密钥。
    pub fn file(&self) -> &ConfigFile {
        &self.file
    }

    /// 开始一次改动：拿到改动锁与此刻的配置。锁在 `Edit` 结束（提交或丢弃）时释放。
    pub async fn edit(&self) -> Edit<'_> {
        let guard = self.lock.lock().await;
        Edit {
            store: self,
            _guard: guard,
            base: self.current(),
        }
    }

    /// 一步完成的改动：在当前配置上执行 `change`，校验、写文件、换入。
    pub async fn update(
        &self,
        change: impl FnOnce(&mut Config) -> Result<(), ConfigError>,
    ) -> Result<Arc<Config>, ConfigError> {
        let edit = self.edit().await;
        let mut next = (*edit.base).clone();
        change(&mut next)?;
        let checked = edit.check(next).await?;
        edit.commit(checked).await
    }

    /// 配置文件被手工改了：读入并校验，与运行中的不同就换入（不回写文件）。
    /// 文件无效时返回错误，运行中的配置不变。返回是否换入了新配置。
    pub async fn reload_from_file(
        &self,
        accept: impl FnOnce(&Config, &Config) -> Result<(), String>,
    ) -> Result<bool, ConfigError> {
        let _guard = self.lock.lock().await;
        let path = self.file.path.clone();
        let loaded = blocking(move || super::load(&path)).await?;
        let current = self.current();
        if *current == loaded.config {
            return Ok(false);
        }
        accept(&current, &loaded.config).map_err(|reason| ConfigError::Invalid {
            key: "（整个文件）".into(),
            reason,
        })?;
        self.apply(loaded.config);
        Ok(true)
    }

    /// 集群模式：每秒查一次库里的版本号，别的实例保存了新版本就换入（保持本实例的监听地址与元数据库）。
    /// 库里的新版本无效（例如由更新版本的程序写的）时只警告一次，继续用运行中的配置。单机模式立即返回。
    pub async fn follow_shared(&self) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // 不采用的那一版（不反复警告）；库连不上时也只警告一次，恢复后再警告。
        let mut refused = 0;
        let mut unreachable = false;
        loop {
            tick.tick().await;
            match cluster.db.version().await {
                Ok(v) if v <= cluster.version.load(Ordering::SeqCst) || v == refused => {}
                Ok(_) => {
                    if let Err(version) = self.take_newer(cluster).await {
                        refused = version;
                    }
                }
                Err(e) if !unreachable => {
                    tracing::warn!("无法查看库里的共用配置有没有新版本（继续用运行中的配置）：{e}");
                    unreachable = true;
                    continue;
                }
                Err(_) => continue,
            }
            unreachable = false;
        }
    }

    /// 换入库里更新的一版。那一版无效时返回它的版本号。
    async fn take_newer(&self, cluster: &Cluster) -> Result<(), i64> {
        let _guard = self.lock.lock().await;
        let latest = match cluster.db.latest().await {
            Ok(Some(latest)) if latest.version > cluster.version.load(Ordering::SeqCst) => latest,
            Ok(_) => return Ok(()),
            Err(e) => {
                tracing::warn!("无法读取库里的共用配置：{e}");
                return Ok(());
            }
        };
        let (current, file, text) = (self.current(), self.file.clone(), latest.text);
        match blocking(move || localize(&text, &current, &file)).await {
            Ok(config) => {
                cluster.version.store(latest.version, Ordering::SeqCst);
                if *self.current() != config {
                    self.apply(config);
                }
                tracing::info!(
                    version = latest.version,
                    "另一个实例保存了设置，已在本实例生效"
                );
                Ok(())
            }
            Err(e) => {
                tracing::warn!(
                    version = latest.version,
                    "库里的共用配置有新版本，但不能在本实例使用，继续用运行中的配置：{e}"
                );
                Err(latest.version)
            }
        }
    }

    fn apply(&self, config: Config) -> Arc<Config> {
        let config = Arc::new(config);
        self.current.store(config.clone());
        for hook in &self.on_applied {
            hook(&config);
        }
        config
    }
}

/// 进行中的一次改动（持有改动锁）。
pub struct Edit<'a> {
    store: &'a ConfigStore,
    _guard: tokio::sync::MutexGuard<'a, ()>,
    /// 改动开始时的配置。
    pub base: Arc<Config>,
}

impl Edit<'_> {
    /// 整份校验（按启动时完全相同的规则），不写文件。
    pub async fn check(&self, next: Config) -> Result<Checked, ConfigError> {
        let file = self.store.file.clone();
        blocking(move || file.check(&next)).await
    }

    /// 写文件（旧的留作 `.bak`）并换入运行中的配置。
    /// 集群模式：写进库里（库里已经不是改动开始时那一版就拒绝）；监听地址改了的，还写进本机文件。
    pub async fn commit(self, checked: Checked) -> Result<Arc<Config>, ConfigError> {
        let Some(cluster) = &self.store.cluster else {
            let saved = blocking(move || checked.write()).await?;
            tracing::info!(path = %self.store.file.path.display(), "配置已保存并生效");
            return Ok(self.store.apply(saved));
        };
        // 监听地址只属于本实例：先写进本机文件（写不进就什么都不改），库里写不进时再改回去。
        let listen = checked.config.server.listen.clone();
        let local_before = if listen != self.base.server.listen {
            let file = self.store.file.clone();
            Some(blocking(move || file.save_listen(&listen)).await?)
        } else {
            None
        };
        let expected = cluster.version.load(Ordering::SeqCst);
        let mut shared_part = checked.config.clone();
        super::shared::keep_local(&mut shared_part, &self.base);
        if shared_part == *self.base {
            // 只改了本实例的几项：库里不用出新版本。
            tracing::info!("只改了本实例的监听地址，已写进本机配置文件");
            return Ok(self.store.apply(checked.config));
        }
        let written = cluster
            .db
            .replace(checked.text.clone(), expected, cluster.instance.clone())
            .await;
        let error = match written {
            Ok(Some(version)) => {
                cluster.version.store(version, Ordering::SeqCst);
                tracing::info!(
                    version,
                    "配置已保存进库里，并在本实例生效（其它实例 2 秒内生效）"
                );
                return Ok(self.store.apply(checked.config));
            }
            Ok(None) => ConfigError::Stale {
                current: cluster.db.version().await.unwrap_or(expected + 1),
            },
            Err(e) => ConfigError::Shared(e),
        };
        if let Some(before) = local_before {
            let file = self.store.file.clone();
            if let Err(e) = blocking(move || file.restore(before)).await {
                tracing::warn!("库里的配置没写成，本机文件里的监听地址也没能改回去：{e}");
            }
        }
        Err(error)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ConfigError> + Send + 'static,
) -> Result<T, ConfigError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(ConfigError::Invalid {
            key: "（整份配置）".into(),
            reason: format!("保存被中断：{e}"),
        })
    })
}
