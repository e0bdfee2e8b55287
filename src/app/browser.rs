//! 只在浏览器里运行的小工具：任务推送的 WebSocket（断线按退避重连）、上传参考图、复制到剪贴板。
//! 服务端渲染时这些函数什么都不做。

use super::types::JobMessage;

/// 上传成功的一张参考图。
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Uploaded {
    pub id: String,
    pub url: String,
}

/// 连接 `/ws`，每条消息交给 `on_message`；连上/断开时调用 `on_status(true/false)`。
/// 断开后按 0.5、1、2、4…秒（最多 10 秒）重连；重连后服务器先发快照，页面据此整体同步。
#[cfg(feature = "hydrate")]
pub fn connect_jobs(on_message: impl Fn(JobMessage) + 'static, on_status: impl Fn(bool) + 'static) {
    use std::rc::Rc;
    let handlers: Rc<Handlers> = Rc::new(Handlers {
        on_message: Box::new(on_message),
        on_status: Box::new(on_status),
        failures: std::cell::Cell::new(0),
    });
    open_socket(handlers);
}

#[cfg(not(feature = "hydrate"))]
pub fn connect_jobs(
    _on_message: impl Fn(JobMessage) + 'static,
    _on_status: impl Fn(bool) + 'static,
) {
}

#[cfg(feature = "hydrate")]
struct Handlers {
    on_message: Box<dyn Fn(JobMessage)>,
    on_status: Box<dyn Fn(bool)>,
    /// 连续失败次数，决定下次重连前等多久。
    failures: std::cell::Cell<u32>,
}

#[cfg(feature = "hydrate")]
fn open_socket(handlers: std::rc::Rc<Handlers>) {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;
    let Some(window) = web_sys::window() else {
        return;
    };
    let location = window.location();
    let scheme = if location.protocol().ok().as_deref() == Some("https:") {
        "wss"
    } else {
        "ws"
    };
    let host = location.host().unwrap_or_default();
    let retry = {
        let handlers = handlers.clone();
        move || {
            let n = handlers.failures.get();
            handlers.failures.set(n + 1);
            let delay = (500u64 << n.min(5)).min(10_000);
            let handlers = handlers.clone();
            leptos::prelude::set_timeout(
                move || open_socket(handlers),
                std::time::Duration::from_millis(delay),
            );
        }
    };
    let Ok(socket) = web_sys::WebSocket::new(&format!("{scheme}://{host}/ws")) else {
        retry();
        return;
    };
    let on_open = {
        let handlers = handlers.clone();
        Closure::<dyn FnMut()>::new(move || {
            handlers.failures.set(0);
            (handlers.on_status)(true);
        })
    };
    let on_message = {
        let handlers = handlers.clone();
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
            if let Some(text) = event.data().as_string() {
                match serde_json::from_str::<JobMessage>(&text) {
                    Ok(message) => (handlers.on_message)(message),
                    Err(e) => leptos::logging::warn!("无法解析任务消息：{e}"),
                }
            }
        })
    };
    let on_close = {
        let handlers = handlers.clone();
        Closure::<dyn FnMut()>::new(move || {
            (handlers.on_status)(false);
            retry();
        })
    };
    socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    // 这些回调与连接同生命周期；连接只在断线重连时新建，泄漏可以忽略。
    on_open.forget();
    on_message.forget();
    on_close.forget();
}

/// 把这些文件上传为参考图（`POST /uploads`）。失败时返回服务器给的中文原因。
#[cfg(feature = "hydrate")]
pub async fn upload(files: Vec<web_sys::File>) -> Result<Vec<Uploaded>, String> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let form = web_sys::FormData::new().map_err(|_| "浏览器不支持上传".to_string())?;
    for file in &files {
        form.append_with_blob_and_filename("file", file, &file.name())
            .map_err(|_| "无法读取所选文件".to_string())?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    init.set_body(&form);
    let window = web_sys::window().ok_or("没有浏览器窗口")?;
    let response: web_sys::Response =
        JsFuture::from(window.fetch_with_str_and_init("/uploads", &init))
            .await
            .map_err(|_| "上传失败：无法连接服务器".to_string())?
            .unchecked_into();
    let text = JsFuture::from(response.text().map_err(|_| "上传失败".to_string())?)
        .await
        .ok()
        .and_then(|t| t.as_string())
        .unwrap_or_default();
    if response.ok() {
        serde_json::from_str(&text).map_err(|e| format!("无法解析上传结果：{e}"))
    } else {
        // 错误体是 OpenAI 形状：{"error":{"message":"…"}}。
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("上传失败（HTTP {}）", response.status()));
        Err(message)
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

/// 发一个 JSON 请求（同源，浏览器自动带上 Cookie 与 Origin），返回状态码与响应文本。
#[cfg(feature = "hydrate")]
pub async fn fetch_json(
    method: &str,
    url: &str,
    body: Option<String>,
) -> Result<(u16, String), String> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    if let Some(body) = body {
        init.set_body(&wasm_bindgen::JsValue::from_str(&body));
        let headers = web_sys::Headers::new().map_err(|_| "浏览器不支持".to_string())?;
        let _ = headers.set("content-type", "application/json");
        init.set_headers(&headers);
    }
    let window = web_sys::window().ok_or("没有浏览器窗口")?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(|_| "无法连接服务器".to_string())?
        .unchecked_into();
    let text = match response.text() {
        Ok(promise) => JsFuture::from(promise)
            .await
            .ok()
            .and_then(|t| t.as_string())
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    Ok((response.status(), text))
}

/// 错误体（OpenAI 形状）里的中文原因。
pub fn error_message(status: u16, text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| format!("请求失败（HTTP {status}）"))
}

/// 服务端渲染时没有浏览器：不会被调用（只在 island 的事件与 Effect 里用）。
#[cfg(not(feature = "hydrate"))]
pub async fn fetch_json(
    _method: &str,
    _url: &str,
    _body: Option<String>,
) -> Result<(u16, String), String> {
    Err("只能在浏览器里调用".into())
}

/// `call_json` 的失败。
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    /// 401：需要登录。
    Unauthorized,
    /// 其他失败，附中文原因。
    Failed(String),
}

/// 发 JSON 请求并解析 JSON 响应；204 返回 `None`。
pub async fn call_json<T: serde::de::DeserializeOwned>(
    method: &str,
    url: &str,
    body: Option<String>,
) -> Result<Option<T>, CallError> {
    match fetch_json(method, url, body).await {
        Ok((204, _)) => Ok(None),
        Ok((200, text)) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| CallError::Failed(format!("无法解析服务器的响应：{e}"))),
        Ok((401, _)) if url != "/admin/login" => Err(CallError::Unauthorized),
        Ok((status, text)) => Err(CallError::Failed(error_message(status, &text))),
        Err(e) => Err(CallError::Failed(e)),
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
