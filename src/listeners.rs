//! 监听地址的切换：设置页改了地址，先绑定新地址（失败则旧的继续服务，页面说明原因）；
//! 成功后在新地址上开始服务，旧地址不再接新连接，等在途请求结束后关闭。进程不重启。

use axum::serve::ListenerExt;
use axum::Router;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// 正在服务的一个地址。
struct Serving {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

#[derive(Default)]
pub struct Listeners {
    router: OnceLock<Router>,
    current: Mutex<Option<Serving>>,
    /// 已经让出、正在排空的旧地址。
    draining: Mutex<Vec<JoinHandle<()>>>,
}

impl Listeners {
    /// 设置完整的路由（路由里的状态又引用着本对象，所以在建好路由之后再设）。
    pub fn set_router(&self, router: Router) {
        let _ = self.router.set(router);
    }

    /// 当前服务的地址。
    pub fn current_addr(&self) -> Option<SocketAddr> {
        self.current
            .lock()
            .expect("锁未被毒化")
            .as_ref()
            .map(|s| s.addr)
    }

    /// 在这个已绑定的监听上开始服务，取代之前的地址（之前的排空后关闭）。
    pub fn serve(&self, listener: TcpListener) -> std::io::Result<SocketAddr> {
        let addr = listener.local_addr()?;
        let router = self.router.get().expect("先 set_router 再 serve").clone();
        let (stop, stopped) = oneshot::channel::<()>();
        // 关掉 Nagle：页面是分块流式发出的，否则每个小块都可能等对方的延迟确认（约 40 ms）。
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("无法设置 TCP_NODELAY：{e}");
            }
        });
        let task = tokio::spawn(async move {
            let server = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = server.await {
                tracing::error!(%addr, "服务出错：{e}");
            }
        });
        let previous =
            self.current
                .lock()
                .expect("锁未被毒化")
                .replace(Serving { addr, stop, task });
        if let Some(old) = previous {
            tracing::info!(old = %old.addr, new = %addr, "监听地址已切换，旧地址排空在途请求后关闭");
            let _ = old.stop.send(());
            self.draining.lock().expect("锁未被毒化").push(old.task);
        }
        Ok(addr)
    }

    /// 切换到新地址：先绑定，绑定失败原样返回错误（旧地址照常服务）。
    pub async fn switch(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await?;
        self.serve(listener)
    }

    /// 进程退出：停止当前地址，等所有地址的在途请求结束。
    pub async fn shutdown(&self) {
        let current = self.current.lock().expect("锁未被毒化").take();
        let mut tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.draining.lock().expect("锁未被毒化"));
        if let Some(serving) = current {
            let _ = serving.stop.send(());
            tasks.push(serving.task);
        }
        for task in tasks {
            let _ = task.await;
        }
    }
}
