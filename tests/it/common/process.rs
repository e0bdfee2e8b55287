//! 测试用的子进程小件：空闲端口，以及活过本测试程序的服务器由谁收尾。

use std::process::{Child, Command, Stdio};

/// 回环地址上一个此刻空闲的端口。
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// 看门：本测试程序退出后执行 `cleanup`（一段 sh），停掉活过本程序的服务器、删掉它的目录。
pub fn after_exit(cleanup: &str) -> Child {
    let watch = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; {cleanup}",
        me = std::process::id()
    );
    Command::new("sh")
        .args(["-c", &watch])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("可以启动看门进程")
}
