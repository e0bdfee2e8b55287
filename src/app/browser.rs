//! 只在浏览器里运行的小件：任务推送的 WebSocket（gloo-net，断线按退避重连）、上传参考图（gloo-net 的 HTTP），
//! 以及 gloo 不管的剪贴板、当前时刻与跳转。服务端渲染时这些函数什么都不做。
//! 页面与服务器的其他往来一律是服务器函数（JSON）。

use crate::types::JobMessage;

/// 上传成功的一张参考图。
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Uploaded {
    pub id: String,
    pub url: String,
    #[serde(default)]
    pub filename: Option<String>,
}

/// 连接 `/ws`，每条消息交给 `on_message`；连上（收到第一条消息，即快照）/断开时调用 `on_status(true/false)`。
/// 断开后按 0.5、1、2、4…秒（最多 10 秒）重连；重连后服务器先发快照，页面据此整体同步。
#[cfg(feature = "hydrate")]
pub fn connect_jobs(on_message: impl Fn(JobMessage) + 'static, on_status: impl Fn(bool) + 'static) {
    use futures::StreamExt;
    use gloo_net::websocket::{futures::WebSocket, Message};
    leptos::task::spawn_local(async move {
        let mut failures = 0u32;
        loop {
            if let Ok(mut socket) = WebSocket::open(&socket_url()) {
                let mut connected = false;
                // 出错时先收到错误、再收到关闭事件，最后流结束；都等到结束再重连。
                while let Some(message) = socket.next().await {
                    let Ok(Message::Text(text)) = message else {
                        continue;
                    };
                    if !connected {
                        connected = true;
                        failures = 0;
                        on_status(true);
                    }
                    match JobMessage::from_text(&text) {
                        Ok(message) => on_message(message),
                        Err(e) => leptos::logging::warn!("无法解析任务消息：{e}"),
                    }
                }
                if connected {
                    on_status(false);
                }
            }
            let delay = (500u32 << failures.min(5)).min(10_000);
            failures += 1;
            gloo_timers::future::TimeoutFuture::new(delay).await;
        }
    });
}

#[cfg(not(feature = "hydrate"))]
pub fn connect_jobs(
    _on_message: impl Fn(JobMessage) + 'static,
    _on_status: impl Fn(bool) + 'static,
) {
}

/// 本页的 `/ws` 地址（https 页面用 wss）。
#[cfg(feature = "hydrate")]
fn socket_url() -> String {
    let location = web_sys::window().map(|w| w.location());
    let secure = location
        .as_ref()
        .and_then(|l| l.protocol().ok())
        .is_some_and(|p| p == "https:");
    let host = location.and_then(|l| l.host().ok()).unwrap_or_default();
    format!("{}://{host}/ws", if secure { "wss" } else { "ws" })
}

/// 把这些文件上传为参考图（`POST /uploads`，multipart）。失败时返回服务器给的中文原因。
#[cfg(feature = "hydrate")]
pub async fn upload(files: Vec<web_sys::File>) -> Result<Vec<Uploaded>, String> {
    let form = web_sys::FormData::new().map_err(|_| "浏览器不支持上传".to_string())?;
    for file in &files {
        form.append_with_blob_and_filename("file", file, &file.name())
            .map_err(|_| "无法读取所选文件".to_string())?;
    }
    send_uploads(form).await
}

/// 把浏览器里生成的一个文件（如局部修改的蒙版）上传到 `/uploads`，返回它的 id。
#[cfg(feature = "hydrate")]
pub async fn upload_blob(blob: &web_sys::Blob, name: &str) -> Result<Uploaded, String> {
    let form = web_sys::FormData::new().map_err(|_| "浏览器不支持上传".to_string())?;
    form.append_with_blob_and_filename("file", blob, name)
        .map_err(|_| "无法读取要上传的文件".to_string())?;
    send_uploads(form)
        .await?
        .pop()
        .ok_or_else(|| "上传失败：服务器没有返回文件".to_string())
}

#[cfg(not(feature = "hydrate"))]
pub async fn upload_blob(_blob: &web_sys::Blob, _name: &str) -> Result<Uploaded, String> {
    Err("只能在浏览器里上传".into())
}

#[cfg(feature = "hydrate")]
async fn send_uploads(form: web_sys::FormData) -> Result<Vec<Uploaded>, String> {
    let response = gloo_net::http::Request::post("/uploads")
        .body(form)
        .map_err(|_| "无法读取所选文件".to_string())?
        .send()
        .await
        .map_err(|_| "上传失败：无法连接服务器".to_string())?;
    let text = response.text().await.unwrap_or_default();
    if response.ok() {
        serde_json::from_str(&text).map_err(|e| format!("无法解析上传结果：{e}"))
    } else {
        Err(error_message(response.status(), &text))
    }
}

#[cfg(not(feature = "hydrate"))]
pub async fn upload(_files: Vec<web_sys::File>) -> Result<Vec<Uploaded>, String> {
    Err("只能在浏览器里上传".into())
}

/// 发一个 JSON 的 POST（同源，浏览器自动带上 Cookie 与 Origin），不关心响应体：
/// 2xx 为成功，否则返回服务器给的中文原因。用于不是服务器函数的少数接口（登录、登出）。
#[cfg(feature = "hydrate")]
pub async fn post_json(url: &str, body: &serde_json::Value) -> Result<(), String> {
    let response = gloo_net::http::Request::post(url)
        .json(body)
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(|_| "无法连接服务器".to_string())?;
    if response.ok() {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    Err(error_message(response.status(), &text))
}

#[cfg(not(feature = "hydrate"))]
pub async fn post_json(_url: &str, _body: &serde_json::Value) -> Result<(), String> {
    Err("只能在浏览器里调用".into())
}

/// 读用户选的文件的全部文字（UTF-8）。
#[cfg(feature = "hydrate")]
pub async fn read_text(file: &web_sys::File) -> Result<String, String> {
    wasm_bindgen_futures::JsFuture::from(file.text())
        .await
        .ok()
        .and_then(|v| v.as_string())
        .ok_or_else(|| "无法读取所选文件".to_string())
}

#[cfg(not(feature = "hydrate"))]
pub async fn read_text(_file: &web_sys::File) -> Result<String, String> {
    Err("只能在浏览器里读取文件".into())
}

/// 让浏览器把这段文字下载成文件 `name`。
#[cfg(feature = "hydrate")]
pub fn download_text(name: &str, mime: &str, text: &str) {
    use wasm_bindgen::JsCast;
    let href = format!(
        "data:{mime};charset=utf-8,{}",
        js_sys::encode_uri_component(text)
    );
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let Ok(a) = document.create_element("a") else {
        return;
    };
    let _ = a.set_attribute("href", &href);
    let _ = a.set_attribute("download", name);
    if let Ok(a) = a.dyn_into::<web_sys::HtmlElement>() {
        a.click();
    }
}

#[cfg(not(feature = "hydrate"))]
pub fn download_text(_name: &str, _mime: &str, _text: &str) {}

/// 错误体（OpenAI 形状 `{"error":{"message":…}}`）里的中文原因。
#[cfg(feature = "hydrate")]
fn error_message(status: u16, text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("请求失败（HTTP {status}）"))
}

/// 等 `ms` 毫秒（浏览器里；服务端渲染时立即返回）。
pub async fn sleep_ms(_ms: u32) {
    #[cfg(feature = "hydrate")]
    gloo_timers::future::TimeoutFuture::new(_ms).await;
}

/// 浏览器 localStorage 里的一项（没有或读不了时为空）。
pub fn stored(_key: &str) -> Option<String> {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()?
            .local_storage()
            .ok()??
            .get_item(_key)
            .ok()?
    }
    #[cfg(not(feature = "hydrate"))]
    {
        None
    }
}

/// 写 localStorage（写不了——例如隐私模式——就算了）。
pub fn store(_key: &str, _value: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(Ok(Some(storage))) = web_sys::window().map(|w| w.local_storage()) {
        let _ = storage.set_item(_key, _value);
    }
}

/// 当前时刻（Unix 毫秒）。
pub fn now_ms() -> u64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now() as u64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        0
    }
}

/// 把文字复制到剪贴板。
pub fn copy_text(_text: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.navigator().clipboard().write_text(_text);
    }
}

/// 跳到站内的另一个页面（整页加载）。
pub fn go_to(_path: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.location().set_href(_path);
    }
}

/// 监听地址换了之后跳过去：新地址是 0.0.0.0 / [::] 时沿用浏览器当前用的主机名，只换端口。
pub fn go_to_listen_address(_addr: &str, _path: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let location = window.location();
        let Ok(addr) = _addr.parse::<std::net::SocketAddr>() else {
            return;
        };
        let host = if addr.ip().is_unspecified() {
            location.hostname().unwrap_or_else(|_| "127.0.0.1".into())
        } else if addr.is_ipv6() {
            format!("[{}]", addr.ip())
        } else {
            addr.ip().to_string()
        };
        let scheme = location.protocol().unwrap_or_else(|_| "http:".into());
        let _ = location.set_href(&format!("{scheme}//{host}:{}{_path}", addr.port()));
    }
}
