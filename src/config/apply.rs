//! “换上新配置”的唯一入口：设置页保存、API 密钥的创建与吊销、配置文件被手工改动，都经 `ConfigStore`。
//!
//! - 一次只处理一个改动（异步锁）：两个同时的保存不会互相覆盖——后一个在前一个生效之后的配置上修改；
//! - 校验（会建目录、试写文件）与写文件都是阻塞操作，放在阻塞线程里做，不占异步线程；
//! - 换入运行中的配置后，调用登记的回调（例如存储根目录跟着变）。

use super::error::ConfigError;
use super::save::Checked;
use super::{Config, ConfigFile, ConfigHandle};
use std::sync::Arc;

/// 配置换入后要做的事（例如把存储的根目录换成新的）。
pub type OnApplied = Box<dyn Fn(&Config) + Send + Sync>;

pub struct ConfigStore {
    current: ConfigHandle,
    file: ConfigFile,
    lock: tokio::sync::Mutex<()>,
    on_applied: Vec<OnApplied>,
}

impl ConfigStore {
    pub fn new(current: ConfigHandle, file: ConfigFile, on_applied: Vec<OnApplied>) -> Self {
        Self {
            current,
            file,
            lock: tokio::sync::Mutex::new(()),
            on_applied,
        }
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
    pub async fn commit(self, checked: Checked) -> Result<Arc<Config>, ConfigError> {
        let saved = blocking(move || checked.write()).await?;
        tracing::info!(path = %self.store.file.path.display(), "配置已保存并生效");
        Ok(self.store.apply(saved))
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
