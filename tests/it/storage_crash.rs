//! 崩溃安全：写图过程中多次在随机时刻 SIGKILL 服务器，重启后检查：
//! 每条记录的文件都存在且能解码；启动后没有临时文件；没有重复记录；启动核对报告没有缺文件的记录。

use crate::common::*;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn sigkill_while_writing_loses_nothing_and_leaves_no_half_files() {
    // 小图让每轮都有不少图写完，也有不少正写到一半。
    let demo = demo_upstream(&["--max-side", "512"]).await;
    let ws = Workspace::new(&config_with_upstream(&demo.url));
    // 每轮在不同的时刻杀掉（毫秒），覆盖“写文件中 / 改名后写记录前 / 写缩略图中”等时刻。
    for (round, kill_after_ms) in [420u64, 910, 260, 1330, 650, 1120, 180, 770]
        .into_iter()
        .enumerate()
    {
        let mut server = ws.serve().await;
        // 4 个客户端不停地发请求，直到服务器被杀（请求失败即停）。
        for i in 0..4 {
            let url = server.url.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for k in 0.. {
                    let sent = http
                        .post(format!("{url}/v1/images/generations"))
                        .json(&json!({"prompt": format!("第 {round} 轮 {i}-{k}"), "n": 2}))
                        .send()
                        .await;
                    if sent.is_err() {
                        break;
                    }
                }
            });
        }
        // 这里的等待不是在等某件事发生，它就是要测的东西本身：杀进程的时刻与写盘的哪一步重合是任意的，
        // 各轮取不同的时刻去碰“写文件中 / 改名后写记录前 / 写缩略图中”。换成等某个事件反而只会在那一处杀，
        // 覆盖面变窄；而不管在哪一刻杀，下面的检查都必须成立，所以这段等待不会让测试时好时坏。
        tokio::time::sleep(Duration::from_millis(kill_after_ms)).await;
        server.child.start_kill().unwrap();
        server.child.wait().await.unwrap();
    }

    let server = ws.serve().await;
    let health: Value = get_json(format!("{}/healthz", server.url)).await;
    assert_eq!(health["storage"]["missing_files"], 0, "{health}");

    let files: Vec<String> = ws
        .stored_files()
        .await
        .into_iter()
        .filter(|f| f.starts_with("images/"))
        .collect();
    assert!(
        !files
            .iter()
            .any(|p| p.rsplit('/').next().unwrap().starts_with(".partial-")),
        "启动后不应留下临时文件：{files:?}"
    );
    let (rows, distinct): (i64, i64) = ws.db(|c| {
        c.query_one(
            "SELECT COUNT(*), COUNT(DISTINCT rel_path) FROM images",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    });
    assert_eq!(rows, distinct, "不应有两条记录指向同一个文件");
    assert!(rows > 0, "八轮里总该有图写完");
    let rows: Vec<(String, String)> = ws.db(|c| {
        c.query("SELECT root, rel_path FROM images", params![], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
    });
    let root = rows[0].0.clone();
    for (root, rel) in &rows {
        let data = ws
            .read_stored(root, rel)
            .await
            .unwrap_or_else(|| panic!("{root} {rel} 没有文件"));
        image::load_from_memory(&data).unwrap_or_else(|e| panic!("{rel} 无法解码：{e}"));
    }
    // 没有记录的原图文件（杀在改名之后、写记录之前）也必须是完整的图。
    for file in files.iter().filter(|p| !p.ends_with(".thumb.jpg")) {
        let data = ws.read_stored(&root, file).await.unwrap();
        image::load_from_memory(&data).unwrap_or_else(|e| panic!("{file} 是半个文件：{e}"));
    }
    println!("{} 条记录，{} 个文件", rows.len(), files.len());
}
