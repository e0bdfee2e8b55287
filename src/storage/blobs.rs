//! 图像文件放在哪里：本地目录（默认），或 S3 兼容的对象存储（`storage.root = "s3://桶/前缀"`）。
//!
//! 每条图片、上传记录都带着写入时的根（`root`）与相对路径（`rel_path`）；读、写、删、列都经由这里，
//! 按根找到后端：
//! - 本地目录：原子写（同目录临时文件 → fsync → 改名），见 `crate::atomic_file`；
//! - 对象存储：一次 PUT，返回时对象已完整存好（S3 不会出现半个对象），由 `object_store` 负责签名与重试。
//!
//! 两种后端都是“先存文件、后写数据库行”，所以不会有指向不存在文件的行。
//! 调用方多在阻塞线程里（保存、缩略图、打包、启动核对），所以接口是阻塞的；
//! 对象存储的请求交给打开存储时记下的 tokio 运行时执行。只有发送文件给浏览器的 `get_stream` 是异步的。

use super::StorageError;
use crate::atomic_file::Durability;
use crate::config::S3Config;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// 对象存储的根以它开头：`s3://桶/前缀`。
pub const S3_SCHEME: &str = "s3://";

pub use crate::config::check_s3_location;

/// 一个根对应的后端。
enum Backend {
    Local(PathBuf),
    S3 {
        store: Arc<AmazonS3>,
        /// 桶内的前缀（不带首尾的 `/`，可以为空）。
        prefix: String,
    },
}

impl Backend {
    fn object(prefix: &str, rel: &str) -> ObjectPath {
        if prefix.is_empty() {
            ObjectPath::from(rel)
        } else {
            ObjectPath::from(format!("{prefix}/{rel}"))
        }
    }
}

/// 按根读写图像文件。克隆很便宜（内部是 `Arc`）。
#[derive(Clone)]
pub struct Blobs {
    inner: Arc<Inner>,
}

struct Inner {
    s3: Mutex<S3Config>,
    /// 每个桶一个客户端（连接池在里面），连接设置改了就清空重建。
    stores: Mutex<HashMap<String, Arc<AmazonS3>>>,
    runtime: Option<tokio::runtime::Handle>,
}

/// 对象存储出错时的说明（不含密钥：object_store 的错误里只有桶、路径与状态码）。
fn object_error(context: String) -> impl FnOnce(object_store::Error) -> StorageError {
    move |e| StorageError::Io {
        context,
        source: std::io::Error::from(e),
    }
}

fn io_error(context: String) -> impl FnOnce(std::io::Error) -> StorageError {
    move |source| StorageError::Io { context, source }
}

/// 实际用的服务地址：配置里的，没写就是环境变量 `AWS_ENDPOINT`（或 `AWS_ENDPOINT_URL`）的，都没有为空（AWS 本身）。
fn effective_endpoint(s3: &S3Config) -> String {
    if !s3.endpoint.is_empty() {
        return s3.endpoint.clone();
    }
    std::env::var("AWS_ENDPOINT")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .unwrap_or_default()
}

/// `root` 是不是对象存储。
pub fn is_object_store(root: &str) -> bool {
    root.starts_with(S3_SCHEME)
}

impl Blobs {
    /// 在 tokio 运行时里调用（对象存储的请求交给当前运行时执行）。
    pub fn new(s3: S3Config) -> Self {
        Self {
            inner: Arc::new(Inner {
                s3: Mutex::new(s3),
                stores: Mutex::new(HashMap::new()),
                runtime: tokio::runtime::Handle::try_current().ok(),
            }),
        }
    }

    /// 设置页或配置文件改了对象存储的连接：之后的请求用新的。
    pub fn set_s3(&self, s3: S3Config) {
        let mut current = self.inner.s3.lock().expect("锁未被毒化");
        if *current != s3 {
            *current = s3;
            self.inner.stores.lock().expect("锁未被毒化").clear();
        }
    }

    fn backend(&self, root: &str) -> Result<Backend, StorageError> {
        let Some(location) = root.strip_prefix(S3_SCHEME) else {
            return Ok(Backend::Local(PathBuf::from(root)));
        };
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        let prefix = prefix.trim_matches('/').to_string();
        // 两把锁总是先 s3、后 stores（与 `set_s3` 同序，不会互相等死）；拿着 s3 建客户端，建好的不会是刚被换掉的旧连接。
        let s3 = self.inner.s3.lock().expect("锁未被毒化");
        let mut stores = self.inner.stores.lock().expect("锁未被毒化");
        if let Some(store) = stores.get(bucket) {
            return Ok(Backend::S3 {
                store: store.clone(),
                prefix,
            });
        }
        let endpoint = effective_endpoint(&s3);
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if !s3.endpoint.is_empty() {
            builder = builder.with_endpoint(&s3.endpoint);
        }
        if !s3.region.is_empty() {
            builder = builder.with_region(&s3.region);
        }
        if !s3.access_key_id.is_empty() {
            builder = builder.with_access_key_id(&s3.access_key_id);
        }
        if !s3.secret_access_key.is_empty() {
            builder = builder.with_secret_access_key(&s3.secret_access_key);
        }
        // 请求出错时重试几次就交给调用方（默认最长重试 3 分钟，生成图的请求等不了那么久）。
        let retry = object_store::RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
            ..Default::default()
        };
        let store = builder
            .with_retry(retry)
            .with_client_options(
                // 连接设置整个替换：明文 http 的许可也要写在这里（本机的 MinIO 之类）。
                object_store::ClientOptions::new()
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(60)),
            )
            .build()
            .map_err(object_error(format!("无法连接对象存储 {root}")))?;
        let store = Arc::new(store);
        stores.insert(bucket.to_string(), store.clone());
        Ok(Backend::S3 { store, prefix })
    }

    /// 在阻塞线程里执行一个对象存储请求。
    fn block_on<F: std::future::Future>(&self, future: F) -> Result<F::Output, StorageError> {
        let runtime = self.inner.runtime.as_ref().ok_or_else(|| {
            StorageError::Join("对象存储需要在 tokio 运行时里打开存储".to_string())
        })?;
        Ok(runtime.block_on(future))
    }

    /// 本地目录里的完整路径；对象存储返回 None。
    pub fn local_path(root: &str, rel: &str) -> Option<PathBuf> {
        (!is_object_store(root)).then(|| Path::new(root).join(rel))
    }

    /// 写一个文件（已存在则覆盖）。本地目录按 `durability` 落盘，文件权限 0644。阻塞调用。
    pub fn write(
        &self,
        root: &str,
        rel: &str,
        data: Bytes,
        durability: Durability,
    ) -> Result<(), StorageError> {
        match self.backend(root)? {
            Backend::Local(dir) => {
                let path = dir.join(rel);
                crate::atomic_file::write(&path, &data, durability, 0o644)
                    .map_err(io_error(format!("无法保存 {}", path.display())))
            }
            Backend::S3 { store, prefix } => {
                let object = Backend::object(&prefix, rel);
                self.block_on(store.put(&object, PutPayload::from(data)))?
                    .map(|_| ())
                    .map_err(object_error(format!("无法保存到对象存储 {root}/{rel}")))
            }
        }
    }

    /// 读一个文件的全部内容。阻塞调用。不存在时是 `NotFound` 的 IO 错误。
    pub fn read(&self, root: &str, rel: &str) -> Result<Bytes, StorageError> {
        match self.backend(root)? {
            Backend::Local(dir) => std::fs::read(dir.join(rel))
                .map(Bytes::from)
                .map_err(io_error(format!("无法读取 {}", dir.join(rel).display()))),
            Backend::S3 { store, prefix } => {
                let object = Backend::object(&prefix, rel);
                self.block_on(async { store.get(&object).await?.bytes().await })?
                    .map_err(object_error(format!("无法从对象存储读取 {root}/{rel}")))
            }
        }
    }

    /// 异步读全部内容（生成时读参考图、把图作为 base64 交回调用方时）。
    pub async fn read_async(&self, root: &str, rel: &str) -> Result<Bytes, StorageError> {
        match self.backend(root)? {
            Backend::Local(dir) => tokio::fs::read(dir.join(rel))
                .await
                .map(Bytes::from)
                .map_err(io_error(format!("无法读取 {}", dir.join(rel).display()))),
            Backend::S3 { store, prefix } => {
                let object = Backend::object(&prefix, rel);
                async { store.get(&object).await?.bytes().await }
                    .await
                    .map_err(object_error(format!("无法从对象存储读取 {root}/{rel}")))
            }
        }
    }

    /// 对象存储里的一个对象：大小与内容的字节流（发送给浏览器用；本地文件由 `ServeFile` 发送）。
    pub async fn get_stream(
        &self,
        root: &str,
        rel: &str,
    ) -> Result<
        (
            u64,
            futures::stream::BoxStream<'static, std::io::Result<Bytes>>,
        ),
        StorageError,
    > {
        let context = format!("无法从对象存储读取 {root}/{rel}");
        match self.backend(root)? {
            Backend::Local(dir) => {
                let path = dir.join(rel);
                let data = tokio::fs::read(&path).await.map_err(io_error(context))?;
                let len = data.len() as u64;
                Ok((
                    len,
                    futures::stream::once(async move { Ok(Bytes::from(data)) }).boxed(),
                ))
            }
            Backend::S3 { store, prefix } => {
                let object = Backend::object(&prefix, rel);
                let got = store.get(&object).await.map_err(object_error(context))?;
                let len = got.meta.size;
                Ok((len, got.into_stream().map_err(std::io::Error::from).boxed()))
            }
        }
    }

    /// 文件在不在（空文件算不在：不会是完整的图）。阻塞调用；对象存储出错时当作不在。
    pub fn exists(&self, root: &str, rel: &str) -> bool {
        match self.backend(root) {
            Ok(Backend::Local(dir)) => {
                std::fs::metadata(dir.join(rel)).is_ok_and(|m| m.is_file() && m.len() > 0)
            }
            Ok(Backend::S3 { store, prefix }) => {
                let object = Backend::object(&prefix, rel);
                self.block_on(store.head(&object))
                    .is_ok_and(|head| head.is_ok_and(|meta| meta.size > 0))
            }
            Err(_) => false,
        }
    }

    /// 对象存储的连接设了 `presign` 时，对象存储里的图的预签名 GET 链接（`ttl` 内有效）；
    /// 本地文件或没设 `presign` 时为 None。
    pub async fn presigned_get(
        &self,
        root: &str,
        rel: &str,
        ttl: Duration,
    ) -> Result<Option<String>, StorageError> {
        if !self.inner.s3.lock().expect("锁未被毒化").presign {
            return Ok(None);
        }
        let Backend::S3 { store, prefix } = self.backend(root)? else {
            return Ok(None);
        };
        use object_store::signer::Signer;
        let object = Backend::object(&prefix, rel);
        let url = store
            .signed_url(reqwest::Method::GET, &object, ttl)
            .await
            .map_err(object_error(format!("无法为 {root}/{rel} 生成预签名链接")))?;
        Ok(Some(url.to_string()))
    }

    /// 页面的 CSP 要放行的图片来源：设了 `presign` 时是对象存储的地址（协议 + 主机 + 端口），否则为空。
    pub fn image_origin(&self) -> Option<String> {
        let s3 = self.inner.s3.lock().expect("锁未被毒化");
        if !s3.presign {
            return None;
        }
        let endpoint = effective_endpoint(&s3);
        if endpoint.is_empty() {
            return Some("https://*.amazonaws.com".into());
        }
        let url = url::Url::parse(&endpoint).ok()?;
        let origin = url.origin();
        origin.is_tuple().then(|| origin.ascii_serialization())
    }

    /// 对象存储里这个对象在、内容与 `data` 相同。先看大小与 ETag（单次 PUT、没有 KMS/客户密钥加密时它就是内容的 MD5）；
    /// ETag 不是 MD5 的桶（例如 SSE-KMS）就把对象取回来逐字节比。迁移时用。阻塞调用。
    pub fn same_content(&self, root: &str, rel: &str, data: &[u8], md5: &str) -> bool {
        let Ok(Backend::S3 { store, prefix }) = self.backend(root) else {
            return false;
        };
        let object = Backend::object(&prefix, rel);
        let Ok(Ok(meta)) = self.block_on(store.head(&object)) else {
            return false;
        };
        if meta.size != data.len() as u64 {
            return false;
        }
        if meta.e_tag.as_deref().map(|t| t.trim_matches('"')) == Some(md5) {
            return true;
        }
        self.block_on(async { store.get(&object).await?.bytes().await })
            .is_ok_and(|got| got.is_ok_and(|got| got == data))
    }

    /// 删除一个文件；本来就不在不算错。阻塞调用。
    pub fn remove(&self, root: &str, rel: &str) -> Result<(), StorageError> {
        let result = match self.backend(root)? {
            Backend::Local(dir) => std::fs::remove_file(dir.join(rel)),
            Backend::S3 { store, prefix } => {
                let object = Backend::object(&prefix, rel);
                self.block_on(store.delete(&object))?
                    .map_err(std::io::Error::from)
            }
        };
        match result {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StorageError::Io {
                context: format!("无法删除 {root}/{rel}"),
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// 列出 `dir`（例如 `images`）下所有文件的相对路径（相对根，用 `/` 分隔）。目录不在时为空。阻塞调用。
    pub fn list(&self, root: &str, dir: &str) -> Result<Vec<String>, StorageError> {
        match self.backend(root)? {
            Backend::Local(base) => {
                let mut found = Vec::new();
                let mut stack = vec![dir.to_string()];
                while let Some(rel_dir) = stack.pop() {
                    let Ok(entries) = std::fs::read_dir(base.join(&rel_dir)) else {
                        continue;
                    };
                    for entry in entries.flatten() {
                        let rel = format!("{rel_dir}/{}", entry.file_name().to_string_lossy());
                        if entry.file_type().is_ok_and(|t| t.is_dir()) {
                            stack.push(rel);
                        } else {
                            found.push(rel);
                        }
                    }
                }
                Ok(found)
            }
            Backend::S3 { store, prefix } => {
                let under = Backend::object(&prefix, dir);
                let skip = if prefix.is_empty() {
                    0
                } else {
                    prefix.len() + 1
                };
                let listed: Vec<object_store::ObjectMeta> = self
                    .block_on(store.list(Some(&under)).try_collect())?
                    .map_err(object_error(format!("无法列出对象存储 {root}/{dir}")))?;
                Ok(listed
                    .into_iter()
                    .map(|meta| meta.location.as_ref()[skip..].to_string())
                    .collect())
            }
        }
    }
}

/// 用这组连接往 `root` 写一个小对象再删掉：连不上、没有权限、桶不存在都在这里暴露。
pub async fn check_writable(root: &str, s3: S3Config) -> Result<(), StorageError> {
    let root = root.to_string();
    tokio::task::spawn_blocking(move || {
        let blobs = Blobs::new(s3);
        let rel = format!(".write-check-{}", uuid::Uuid::new_v4().simple());
        blobs.write(
            &root,
            &rel,
            Bytes::from_static(b"ok"),
            Durability::Rebuildable,
        )?;
        blobs.remove(&root, &rel)
    })
    .await
    .map_err(|e| StorageError::Join(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_locations_are_checked() {
        for good in ["images", "my-bucket/factory", "a.b.c/x/y/", "bkt/"] {
            assert_eq!(check_s3_location(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "ab",
            "Upper/x",
            "-bucket",
            "bkt/../etc",
            "bkt/a//b",
            "bkt/./a",
            "b_k_t",
        ] {
            assert!(check_s3_location(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_files_are_written_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let blobs = Blobs::new(S3Config::default());
        blobs
            .write(
                root,
                "images/d/a.png",
                Bytes::from_static(b"png"),
                Durability::Durable,
            )
            .unwrap();
        assert!(blobs.exists(root, "images/d/a.png"));
        assert_eq!(blobs.read(root, "images/d/a.png").unwrap(), &b"png"[..]);
        assert_eq!(blobs.list(root, "images").unwrap(), ["images/d/a.png"]);
        blobs.remove(root, "images/d/a.png").unwrap();
        blobs.remove(root, "images/d/a.png").unwrap();
        assert!(!blobs.exists(root, "images/d/a.png"));
        assert!(blobs.list(root, "uploads").unwrap().is_empty());
    }
}
