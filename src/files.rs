//! 图片、参考图与打包下载的 HTTP 接口：`GET /files/{id}`、`/files/{id}/thumb`、`POST /uploads`、
//! `GET /uploads/{id}`、`GET /files/zip`。只按数据库里的 id 找文件，绝不使用请求里给出的路径。
//! 文件放在哪里、怎样打包，在 `crate::storage`；一个批次的清单在 `crate::jobs::archive`。

use crate::error::ApiError;
use crate::storage::{ImageRecord, Storage};
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Deserialize;
use tower::ServiceExt;
use tower_http::services::ServeFile;

pub fn router(config: crate::config::ConfigHandle) -> Router<crate::state::AppState> {
    Router::new()
        .route("/files/zip", get(serve_zip))
        .route("/files/{id}", get(serve_image))
        .route("/files/{id}/thumb", get(serve_thumbnail))
        .route(
            "/uploads",
            // 一次最多 MAX_UPLOAD_FILES 张，每张不超过上限：上限按运行中的配置。
            axum::routing::post(upload).layer((
                axum::extract::DefaultBodyLimit::disable(),
                axum::middleware::from_fn_with_state(config, crate::web::live_upload_limit),
            )),
        )
        .route("/uploads/{id}", get(serve_upload))
}

#[derive(Deserialize)]
struct ZipQuery {
    #[serde(default)]
    ids: String,
    batch: Option<String>,
}

/// `GET /files/zip?ids=a,b,c` 打包选中的图片；`?batch=<批次 id>` 打包一个批次（完成的图与清单）。
async fn serve_zip(
    State(jobs): State<crate::jobs::JobManager>,
    State(storage): State<Storage>,
    axum::Extension(client): axum::Extension<crate::access::ClientId>,
    Query(query): Query<ZipQuery>,
) -> Result<Response, ApiError> {
    match query.batch {
        Some(batch) => {
            let entries = jobs.batch_archive(&storage, &batch).await?;
            zip_response(&storage, entries, "batch", &client.0)
        }
        None => zip_of_ids(&storage, &query.ids, &client.0).await,
    }
}

/// 一次上传最多几张。
const MAX_UPLOAD_FILES: usize = crate::types::limits::MAX_REFERENCES;

/// 上传后返回给页面的一张参考图。
#[derive(serde::Serialize)]
struct Uploaded {
    id: String,
    url: String,
    mime: String,
    bytes: i64,
    /// 上传时的文件名（粘贴的图没有）；GIF 与 HEIC 已转成 PNG，名字仍是原来的。
    filename: Option<String>,
}

/// `POST /uploads`（multipart，字段 `file`，可多个）：保存参考图（按内容去重），返回它们的 id。
/// 任何一张不合格（不是图片、太大）则整个请求 400，一张都不保存。
async fn upload(
    State(storage): State<Storage>,
    State(config): State<crate::config::ConfigHandle>,
    State(budget): State<crate::access::budget::ImageBudget>,
    axum::Extension(client): axum::Extension<crate::access::ClientId>,
    mut multipart: axum::extract::Multipart,
) -> Result<axum::Json<Vec<Uploaded>>, ApiError> {
    let config = config.load_full();
    let max_bytes = (config.storage.max_upload_mb as usize) << 20;
    let mut images = Vec::new();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(crate::web::multipart_error)?
    {
        if field.name() != Some("file") {
            continue;
        }
        if images.len() == MAX_UPLOAD_FILES {
            return Err(ApiError::InvalidRequest(format!(
                "一次最多上传 {MAX_UPLOAD_FILES} 张参考图"
            )));
        }
        // 上传也按张数计入工作台每分钟的额度：读与解码之前先扣（超了的请求不再花内存与 CPU）。
        budget.spend(&config, &client, 1)?;
        let filename = field
            .file_name()
            .map(|n| {
                n.chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            })
            .filter(|n| !n.trim().is_empty());
        let index = images.len() + 1;
        let what = format!("第 {index} 张参考图");
        let data = crate::web::read_field_capped(&mut field, max_bytes, &what).await?;
        let image = crate::web::accept_image(data, max_bytes, index).await?;
        images.push((image, filename));
    }
    if images.is_empty() {
        return Err(ApiError::InvalidRequest(
            "没有收到图片（表单字段应为 file）".into(),
        ));
    }
    let mut saved = Vec::with_capacity(images.len());
    for (image, filename) in images {
        let record = storage
            .save_upload(image.data, image.mime, filename.clone())
            .await?;
        saved.push(Uploaded {
            url: format!("/uploads/{}", record.id),
            id: record.id,
            mime: record.mime,
            bytes: record.bytes,
            filename,
        });
    }
    Ok(axum::Json(saved))
}

/// `GET /uploads/{id}`：按数据库里的 id（内容哈希）取一张上传的参考图。
async fn serve_upload(
    State(storage): State<Storage>,
    State(config): State<crate::config::ConfigHandle>,
    State(accounts): State<crate::access::accounts::Directory>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::NotFound);
    }
    let record = storage.get_upload(id).await?.ok_or(ApiError::NotFound)?;
    let file = StoredFile {
        root: &record.root,
        rel: &record.rel_path,
        mime: &record.mime,
        etag: &format!("\"{}\"", record.id),
        cache: cache_policy(&config.load(), accounts.any()),
    };
    serve_file(&storage, file, None, request).await
}

/// 预签名链接的有效期（`storage.s3.presign`）。
const PRESIGN_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// 一次最多打包的图片数。
const MAX_ZIP_IMAGES: usize = 500;

/// `GET /files/zip?ids=a,b,c`：把这些图片流式打成一个 zip 下载。任何一个 id 无效或不存在，整个请求 404，不打半个包。
/// （路由在 `jobs::archive`：同一个地址带 `batch=` 时打包一个批次。）
async fn zip_of_ids(storage: &Storage, ids: &str, client: &str) -> Result<Response, ApiError> {
    // 去掉重复的 id（保持先后顺序）。
    let mut seen = std::collections::HashSet::new();
    let ids: Vec<&str> = ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && seen.insert(*s))
        .collect();
    if ids.is_empty() || ids.len() > MAX_ZIP_IMAGES {
        return Err(ApiError::InvalidRequest(format!(
            "请选择 1 到 {MAX_ZIP_IMAGES} 张图片再打包下载"
        )));
    }
    let mut entries = Vec::with_capacity(ids.len());
    for id in ids {
        entries.push(crate::storage::archive::Entry::image(
            &find(storage, id.to_string()).await?,
        ));
    }
    zip_response(storage, entries, "images", client)
}

/// 把这些项流式打成 zip 响应，文件名 `{stem}-{时刻}.zip`（`stem` 只含 ASCII）。
/// 调用方 `client` 自己同时打包的太多、或全服务器同时打包的人太多时 503。
fn zip_response(
    storage: &Storage,
    entries: Vec<crate::storage::archive::Entry>,
    stem: &str,
    client: &str,
) -> Result<Response, ApiError> {
    let slot = storage.zip_slot(client).ok_or_else(|| {
        ApiError::QueueFull(format!(
            "同时打包下载的太多了（每人最多 {} 个、全部最多 {} 个），请等手上的下载完成再试",
            crate::storage::archive::MAX_ZIPS_PER_CLIENT,
            crate::storage::archive::MAX_ZIPS
        ))
    })?;
    let name = format!("{stem}-{}.zip", chrono::Utc::now().format("%Y%m%d-%H%M%S"));
    let mut response = Response::new(Body::from_stream(crate::storage::archive::zip_stream(
        storage.blobs().clone(),
        entries,
        slot,
    )));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
            .map_err(|_| ApiError::Internal("打包的文件名不是 ASCII".into()))?,
    );
    Ok(response)
}

#[derive(Deserialize)]
struct FileQuery {
    download: Option<String>,
}

/// 图像 id 是 32 位十六进制（UUID v7 的 simple 形式）；其他一律当作不存在。
fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn find(storage: &Storage, id: String) -> Result<ImageRecord, ApiError> {
    if !valid_id(&id) {
        return Err(ApiError::NotFound);
    }
    storage.get(id).await?.ok_or(ApiError::NotFound)
}

async fn serve_image(
    State(storage): State<Storage>,
    State(config): State<crate::config::ConfigHandle>,
    State(accounts): State<crate::access::accounts::Directory>,
    Path(id): Path<String>,
    Query(query): Query<FileQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let record = find(&storage, id).await?;
    let download = query
        .download
        .is_some_and(|v| v != "0")
        .then(|| attachment(&record));
    let file = StoredFile {
        root: &record.root,
        rel: &record.rel_path,
        mime: &record.mime,
        etag: &format!("\"{}\"", record.id),
        cache: cache_policy(&config.load(), accounts.any()),
    };
    serve_file(&storage, file, download, request).await
}

async fn serve_thumbnail(
    State(storage): State<Storage>,
    State(config): State<crate::config::ConfigHandle>,
    State(accounts): State<crate::access::accounts::Directory>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let record = find(&storage, id).await?;
    let etag = format!("\"{}-thumb\"", record.id);
    let root = record.root.clone();
    let (rel, mime) = storage.ensure_thumbnail(record).await?;
    let file = StoredFile {
        root: &root,
        rel: &rel,
        mime: &mime,
        etag: &etag,
        cache: cache_policy(&config.load(), accounts.any()),
    };
    serve_file(&storage, file, None, request).await
}

/// 存储里要发送的一个文件。
struct StoredFile<'a> {
    root: &'a str,
    rel: &'a str,
    mime: &'a str,
    etag: &'a str,
    cache: HeaderValue,
}

/// 文件的缓存策略：内容不变，浏览器可以永久缓存。工作台开放（没设密码）时谁都能取，共享缓存（代理、CDN）也可以存；
/// 设了密码时图是凭会话或签名链接取的，只许取的人自己的浏览器缓存（`private`）——
/// 否则共享缓存会把它交给没有会话的人，签名链接过期了在那里也照样能取。
fn cache_policy(config: &crate::config::Config, accounts_exist: bool) -> HeaderValue {
    if !crate::access::exposure::studio_locked(config, accounts_exist) {
        HeaderValue::from_static("public, max-age=31536000, immutable")
    } else {
        HeaderValue::from_static("private, max-age=31536000, immutable")
    }
}

/// 发送存储里的一个文件：内容不变，所以 ETag 固定、可永久缓存（见 `cache_policy`）。
/// 本地文件由 `ServeFile` 发送（支持 Range）；对象存储里的边取边发。
async fn serve_file(
    storage: &Storage,
    file: StoredFile<'_>,
    disposition: Option<HeaderValue>,
    request: Request,
) -> Result<Response, ApiError> {
    let StoredFile {
        root,
        rel,
        mime,
        etag,
        cache,
    } = file;
    if request
        .headers()
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let parsed: mime::Mime = mime.parse().map_err(|_| ApiError::NotFound)?;
    let mut response = match crate::storage::Blobs::local_path(root, rel) {
        Some(path) => serve_local(&path, &parsed, request).await?,
        None => {
            if disposition.is_none() {
                let redirect = presigned_redirect(storage, root, rel).await?;
                if let Some(redirect) = redirect {
                    return Ok(redirect);
                }
            }
            stream_object(storage, root, rel, mime).await?
        }
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, cache);
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(etag).expect("id 只含十六进制"),
    );
    if let Some(value) = disposition {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// 本地文件由 `ServeFile` 发送（支持 Range）；记录在而文件不在时记一条错误、回 404。
async fn serve_local(
    path: &std::path::Path,
    mime: &mime::Mime,
    request: Request,
) -> Result<Response, ApiError> {
    let served = ServeFile::new_with_mime(path, mime)
        .oneshot(request)
        .await
        .map_err(|_| ApiError::NotFound)?;
    if served.status() == StatusCode::NOT_FOUND {
        tracing::error!(path = %path.display(), "记录存在但文件缺失");
        return Err(ApiError::NotFound);
    }
    Ok(served.map(Body::new))
}

/// 对象存储开了预签名时：回 307 到一个限时的直链（浏览器直接向对象存储取）；没开时返回 `None`。
async fn presigned_redirect(
    storage: &Storage,
    root: &str,
    rel: &str,
) -> Result<Option<Response>, ApiError> {
    let signed = storage
        .blobs()
        .presigned_get(root, rel, PRESIGN_TTL)
        .await
        .map_err(|e| {
            tracing::error!("{e}");
            ApiError::NotFound
        })?;
    let Some(url) = signed else {
        return Ok(None);
    };
    // 链接会过期：浏览器最多缓存它有效期的一半。
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::LOCATION,
        HeaderValue::from_str(&url).map_err(|_| ApiError::NotFound)?,
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=450"),
    );
    Ok(Some(response))
}

/// 对象存储里的文件边取边发（带类型与长度）；对象取不到时记一条错误、回 404。
async fn stream_object(
    storage: &Storage,
    root: &str,
    rel: &str,
    mime: &str,
) -> Result<Response, ApiError> {
    let (len, stream) = storage.blobs().get_stream(root, rel).await.map_err(|e| {
        tracing::error!("记录存在但对象取不到：{e}");
        ApiError::NotFound
    })?;
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(mime).map_err(|_| ApiError::NotFound)?,
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok(response)
}

/// `attachment; filename="ascii"; filename*=UTF-8''…`（RFC 6266），文件名为提示词摘要 + 日期。
fn attachment(record: &ImageRecord) -> HeaderValue {
    let excerpt = record.prompt_excerpt();
    let date = record.created_at.get(..10).unwrap_or("image");
    let ext = record.rel_path.rsplit('.').next().unwrap_or("png");
    let name = if excerpt.is_empty() {
        format!("{date}.{ext}")
    } else {
        format!("{excerpt}-{date}.{ext}")
    };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded = utf8_percent_encode(&name, NON_ALPHANUMERIC);
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"
    ))
    .expect("只含 ASCII")
}
