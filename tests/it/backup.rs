//! `backup` → 抹掉 → `restore` 在新机器上：图库与旧的签名链接照常；`check --repair` 挪开孤儿、半写与不完整的文件，
//! 标记缺文件的记录，什么都不删。

use crate::common::*;
use serde_json::{json, Value};
use std::path::Path;

const PASSWORD: &str = "backup-test-password";

/// 锁着的工作台（签名链接才有意义）、`/v1` 开放、图在 `root` 下。
fn locked_config(demo: &Running, root: &str) -> String {
    let hash = hash_password(PASSWORD);
    format!(
        "[auth]\nstudio_password_hash = \"{hash}\"\nopen_v1 = true\n\n[storage]\nroot = \"{root}\"\n\n[[upstreams]]\nname = \"替身\"\nbase_url = \"{}\"\n",
        demo.url
    )
}

/// 在工作区里跑 `backup --to DIR`。
async fn backup_to(ws: &Workspace, to: &Path) -> (bool, String) {
    let to = to.to_string_lossy();
    run_cli(ws, &["backup", "--config", "factory.toml", "--to", &to]).await
}

/// 在工作区里跑 `restore --from DIR`。
async fn restore_from(ws: &Workspace, from: &Path) -> (bool, String) {
    let from = from.to_string_lossy();
    run_cli(
        ws,
        &["restore", "--config", "factory.toml", "--from", &from],
    )
    .await
}

async fn signed_image(server: &Running, prompt: &str) -> String {
    let res = v1_generate(
        server,
        None,
        json!({"prompt": prompt, "response_format": "url"}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let url = body["data"][0]["url"].as_str().unwrap().to_string();
    assert!(url.contains("&sig="), "{url}");
    url
}

/// 签名链接的路径与参数（换了机器、端口也还是它）。
fn path_of(url: &str) -> &str {
    &url[url.find("/files/").unwrap()..]
}

#[tokio::test]
async fn backup_then_wipe_then_restore_brings_back_the_gallery_and_old_signed_links() {
    let demo = demo_upstream(&[]).await;
    let old = Workspace::sqlite(&locked_config(&demo, "storage"));
    let server = old.serve().await;
    let mut links = Vec::new();
    for prompt in ["备份的第一张", "备份的第二张"] {
        let url = signed_image(&server, prompt).await;
        let bytes = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
        links.push((path_of(&url).to_string(), bytes));
    }
    // 服务照常运行时备份（数据库是一个读事务里的快照）。
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("备份");
    let (ok, out) = backup_to(&old, &to).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("图片 2 张") && out.contains("签名密钥已带上"),
        "{out}"
    );
    // 不覆盖已有的备份。
    let (ok, out) = backup_to(&old, &to).await;
    assert!(!ok && out.contains("已存在且不是空目录"), "{out}");
    drop(server);
    drop(old); // 旧机器连同它的存储一起没了。

    // 新机器：存储根换了个名字。
    let new = Workspace::sqlite(&locked_config(&demo, "data"));
    let (ok, out) = restore_from(&new, &to).await;
    assert!(ok, "{out}");
    // 再恢复一次：数据库已在，拒绝，什么都不改。
    let db = new.path().join("data/factory.db");
    let before = std::fs::read(&db).unwrap();
    let (ok, out) = restore_from(&new, &to).await;
    assert!(!ok && out.contains("已存在"), "{out}");
    assert_eq!(std::fs::read(&db).unwrap(), before);

    let server = new.serve().await;
    for (path, bytes) in &links {
        // 旧的签名链接（签名密钥随备份回来了）：没有会话也打得开，内容一字不差。
        let res = reqwest::get(format!("{}{path}", server.url)).await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(&res.bytes().await.unwrap(), bytes);
        // 去掉签名就要会话：打得开靠的正是签名。
        let bare = path.split('?').next().unwrap();
        let res = reqwest::get(format!("{}{bare}", server.url)).await.unwrap();
        assert_eq!(res.status(), 401);
    }
    let cookie = session_cookie(&server, PASSWORD).await;
    let res = reqwest::Client::new()
        .post(format!("{}/api/list_images", server.url))
        .header("cookie", cookie)
        .header("origin", &server.url)
        .json(&json!({"query": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let page: Value = res.json().await.unwrap();
    let mut prompts: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["prompt"].as_str().unwrap())
        .collect();
    prompts.sort();
    assert_eq!(prompts, ["备份的第一张", "备份的第二张"]);
}

#[tokio::test]
async fn a_tampered_backup_is_refused_before_anything_is_written() {
    let demo = demo_upstream(&[]).await;
    let old = Workspace::sqlite(&config_with_upstream(&demo.url));
    let server = old.serve().await;
    let (status, body) = studio_generate(&server, "会被改坏的备份").await;
    assert_eq!(status, 200, "{body}");
    drop(server);
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("b");
    let (ok, out) = backup_to(&old, &to).await;
    assert!(ok, "{out}");
    // 改一个图片文件的一个字节。
    let image = files_under(&to.join("files/images"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "png"))
        .unwrap();
    let mut data = std::fs::read(&image).unwrap();
    data[100] ^= 1;
    std::fs::write(&image, data).unwrap();
    let new = Workspace::sqlite(&config_with_upstream(&demo.url));
    let (ok, out) = restore_from(&new, &to).await;
    assert!(!ok && out.contains("与清单不符"), "{out}");
    assert!(!new.path().join("storage/factory.db").exists());
    assert!(files_under(&new.path().join("storage")).is_empty());
}

/// 工作区存储里（相对存储根）的一个文件。
fn stored(ws: &Workspace, rel: &str) -> std::path::PathBuf {
    ws.storage().join(rel)
}

fn rel_paths(ws: &Workspace) -> Vec<(String, String)> {
    ws.db(|c| {
        c.query(
            "SELECT id, rel_path FROM images ORDER BY created_at",
            params![],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
    })
}

#[tokio::test]
async fn check_repair_moves_orphans_half_files_and_damaged_files_aside_and_marks_missing_ones() {
    let demo = demo_upstream(&[]).await;
    let ws = Workspace::sqlite(&config_with_upstream(&demo.url));
    let server = ws.serve().await;
    for prompt in ["好的", "被截断的", "丢了的"] {
        let (status, body) = studio_generate(&server, prompt).await;
        assert_eq!(status, 200, "{body}");
    }
    drop(server);
    let records = rel_paths(&ws);
    assert_eq!(records.len(), 3);
    let (good, cut, lost) = (&records[0], &records[1], &records[2]);
    let dir = Path::new(&good.1)
        .parent()
        .unwrap()
        .to_string_lossy()
        .to_string();
    // 一个孤儿、一个半写的临时文件、一个截断的、一个不见了的。
    std::fs::write(stored(&ws, &format!("{dir}/孤儿.png")), b"orphan").unwrap();
    std::fs::write(stored(&ws, &format!("{dir}/.partial-123")), b"half").unwrap();
    let cut_path = stored(&ws, &cut.1);
    let cut_len = std::fs::metadata(&cut_path).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&cut_path)
        .unwrap();
    file.set_len(cut_len / 2).unwrap();
    drop(file);
    std::fs::remove_file(stored(&ws, &lost.1)).unwrap();

    // 只核对：报告问题、退出码 1、什么都不动（SQLite 打开库时建的 -wal、-shm 不算）。
    let files = || -> Vec<_> {
        files_under(&ws.storage())
            .into_iter()
            .filter(|p| {
                !p.to_string_lossy().ends_with("-wal") && !p.to_string_lossy().ends_with("-shm")
            })
            .collect()
    };
    let before = files();
    let (ok, out) = run_cli(&ws, &["check", "--config", "factory.toml"]).await;
    assert!(!ok, "{out}");
    assert!(
        out.contains(
            "缺文件的记录 1 条、不完整的文件 1 个、半写的临时文件 1 个、没有记录的文件 1 个"
        ),
        "{out}"
    );
    assert_eq!(files(), before);

    let (ok, out) = run_cli(&ws, &["check", "--config", "factory.toml", "--repair"]).await;
    assert!(ok, "{out}");
    // 挪开，没删：孤儿、半写的与截断的都在 quarantine/<时刻>/ 下，原来的相对路径不变。
    let aside: Vec<String> = files_under(&ws.storage().join("quarantine"))
        .iter()
        .map(|p| p.to_string_lossy().to_string())
        .collect();
    for rel in [
        format!("{dir}/孤儿.png"),
        format!("{dir}/.partial-123"),
        cut.1.clone(),
    ] {
        assert!(
            aside.iter().any(|p| p.ends_with(&rel)),
            "{rel} 不在 {aside:?}"
        );
        assert!(!stored(&ws, &rel).exists(), "{rel} 应已挪走");
    }
    let cut_aside = aside.iter().find(|p| p.ends_with(&cut.1)).unwrap();
    assert_eq!(std::fs::metadata(cut_aside).unwrap().len(), cut_len / 2);
    assert!(stored(&ws, &good.1).exists());
    let marks: Vec<(String, Option<String>)> = ws.db(|c| {
        c.query(
            "SELECT id, file_problem FROM images ORDER BY created_at",
            params![],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
    });
    assert_eq!(
        marks,
        [
            (good.0.clone(), None),
            (cut.0.clone(), Some("不完整".to_string())),
            (lost.0.clone(), Some("缺失".to_string())),
        ]
    );
    // 再核对：没有新问题（标过的不再算）。
    let (ok, out) = run_cli(&ws, &["check", "--config", "factory.toml"]).await;
    assert!(
        ok && out.contains("没有新问题") && out.contains("以前已标记 2 条"),
        "{out}"
    );
    // 图库详情里看得到标记。
    let server = ws.serve().await;
    let (status, detail) = call(&server, "get_image", json!({ "id": lost.0 })).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["file_problem"], "缺失");
}
