//! `drafting-factory migrate --to-s3 … --to-database …`：500 张图的本地存储搬进对象存储（moto），
//! 数量与内容一致、源头不变、再跑一次什么都不复制、迁移后的服务从桶里取图、不覆盖已经在用的新库；
//! 再把同一份搬进 PostgreSQL（`--to-postgres … --to-s3 …`）：行数与内容一致、旧的签名密钥随库走、
//! 再跑一次结果一样、目标库多了行时整个回滚、用 PostgreSQL + 桶启动的服务看得到全部的图。

use crate::common::s3::S3;
use crate::common::*;
use drafting_factory::config::S3Config;
use drafting_factory::storage::{NewImage, Storage};
use futures::StreamExt;

const IMAGES: u32 = 500;

fn png(w: u32, h: u32, shade: u32) -> bytes::Bytes {
    let img = image::RgbImage::from_pixel(
        w,
        h,
        image::Rgb([(shade % 256) as u8, (shade / 256) as u8, 7]),
    );
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner().into()
}

fn new_image(data: bytes::Bytes, i: u32) -> NewImage {
    NewImage {
        data,
        prompt: format!("第 {i} 张"),
        mode: "text2img",
        model: "m".into(),
        aspect_ratio: "1:1".into(),
        image_size: "1K".into(),
        upstream: "u".into(),
        duration_ms: 1,
        attempts: Vec::new(),
        reference_ids: Vec::new(),
        model_text: None,
        sources: Vec::new(),
        size_note: None,
        account: String::new(),
    }
}

async fn migrate(ws: &Workspace, to_database: &str) -> (bool, String) {
    migrate_to(ws, &["--to-database", to_database]).await
}

async fn migrate_to(ws: &Workspace, target: &[&str]) -> (bool, String) {
    let base = [
        "migrate",
        "--config",
        "factory.toml",
        "--to-s3",
        "s3://factory/moved",
    ];
    run_cli(ws, &[&base[..], target].concat()).await
}

/// 源存储下的文件与各自的 SHA-256（不算 SQLite 读库时建的 -wal、-shm 协调文件）。
fn local_files(ws: &Workspace) -> Vec<(std::path::PathBuf, String)> {
    files_under(&ws.storage())
        .into_iter()
        .filter(|p| {
            !p.to_string_lossy().ends_with("-wal") && !p.to_string_lossy().ends_with("-shm")
        })
        .map(|p| {
            let hash = file_sha256(&p);
            (p, hash)
        })
        .collect()
}

fn file_sha256(path: &std::path::Path) -> String {
    drafting_factory::web::sha256_hex(std::fs::read(path).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrate_500_images_to_s3_verifies_resumes_and_changes_nothing_at_the_source() {
    let s3 = S3::start().await;
    let local_config = format!(
        "[storage]\nroot = \"storage\"\n\n[storage.s3]\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id = \"test\"\nsecret_access_key = \"test-secret\"\n",
        s3.endpoint()
    );
    let ws = Workspace::sqlite(&local_config);
    // 源：用存储模块本身写 500 张图（与服务器写的一样）、一张带缩略图的大图、两份上传。
    let source_db = ws.storage().join("factory.db");
    let storage = Storage::open(&ws.storage(), &source_db, S3Config::default(), None)
        .await
        .unwrap();
    let saved: Vec<_> = futures::stream::iter(0..IMAGES)
        .map(|i| {
            let storage = storage.clone();
            async move {
                let size = if i == 0 { 500 } else { 2 + i % 7 };
                storage
                    .save_image(new_image(png(size, size, i), i))
                    .await
                    .unwrap()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let big = saved.iter().find(|r| r.width == 500).unwrap().clone();
    storage.ensure_thumbnail(big.clone()).await.unwrap();
    for shade in [1, 2] {
        storage
            .save_upload(png(3, 3, 9000 + shade), "image/png".into(), None)
            .await
            .unwrap();
    }
    // 一张记录在、文件不在的图：保持原样并报告。
    let lost = &saved[7];
    std::fs::remove_file(lost.local_path().unwrap()).unwrap();
    drop(storage);
    // 之前就把存储根换到了这个桶：源库里已有一张图在桶里（迁移不复制它，核对时算上它）。
    let s3_config = S3Config {
        endpoint: s3.endpoint(),
        region: "us-east-1".into(),
        access_key_id: "test".into(),
        secret_access_key: "test-secret".into(),
        presign: false,
    };
    let early = Storage::open(
        std::path::Path::new("s3://factory/moved"),
        &source_db,
        s3_config,
        None,
    )
    .await
    .unwrap();
    early
        .save_image(new_image(png(5, 5, 8888), IMAGES + 1))
        .await
        .unwrap();
    drop(early);
    let source_before = file_sha256(&source_db);
    let local_before = local_files(&ws);

    let (ok, out) = migrate(&ws, "moved/factory.db").await;
    assert!(ok, "{out}");
    let objects = IMAGES as usize - 1 + 1 + 2; // 499 张原图 + 1 张缩略图 + 2 份上传
    assert!(
        out.contains(&format!("本次复制 {objects} 个对象，0 个已在桶里")),
        "{out}"
    );
    assert!(
        out.contains(&lost.id) && out.contains("1 条记录的文件本来就不在"),
        "{out}"
    );
    let keys = s3.keys().await;
    assert_eq!(keys.len(), objects + 1, "加上之前就在桶里的那张");
    assert!(keys.iter().all(|k| k.starts_with("moved/")), "{keys:?}");

    // 每个对象与本地文件逐字节相同。
    let mismatched: Vec<String> = futures::stream::iter(saved.iter().filter(|r| r.id != lost.id))
        .map(|r| async {
            let local = std::fs::read(r.local_path().unwrap()).unwrap();
            let remote = s3.get(&format!("moved/{}", r.rel_path)).await;
            (remote.as_deref() != Some(&local[..])).then(|| r.id.clone())
        })
        .buffer_unordered(16)
        .filter_map(|m| async { m })
        .collect()
        .await;
    assert!(mismatched.is_empty(), "内容不同：{mismatched:?}");

    // 新库：数量相同，搬好的指向桶，缺文件的那条不变；源头一点没动。
    let moved = rusqlite::Connection::open(ws.path().join("moved/factory.db")).unwrap();
    let count = |sql: &str| -> i64 { moved.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT COUNT(*) FROM images"), IMAGES as i64 + 1);
    assert_eq!(
        count("SELECT COUNT(*) FROM images WHERE root = 's3://factory/moved'"),
        IMAGES as i64 - 1 + 1
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM uploads WHERE root = 's3://factory/moved'"),
        2
    );
    drop(moved);
    assert_eq!(file_sha256(&source_db), source_before, "源数据库没变");
    assert!(local_files(&ws) == local_before, "本地文件没变");

    // 再跑一次：什么都不复制。
    let (ok, out) = migrate(&ws, "moved/factory.db").await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("本次复制 0 个对象，{objects} 个已在桶里")),
        "{out}"
    );

    // 两次之间源头多了一张图（服务还在运行时先迁一遍、停服后再迁一遍）：只补这一张，新库跟上。
    let storage = Storage::open(&ws.storage(), &source_db, S3Config::default(), None)
        .await
        .unwrap();
    storage
        .save_image(new_image(png(4, 4, 7777), IMAGES))
        .await
        .unwrap();
    drop(storage);
    let source_before = file_sha256(&source_db);
    let local_before = local_files(&ws);
    let (ok, out) = migrate(&ws, "moved/factory.db").await;
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!("本次复制 1 个对象，{objects} 个已在桶里")),
        "{out}"
    );
    let moved = rusqlite::Connection::open(ws.path().join("moved/factory.db")).unwrap();
    let in_bucket: i64 = moved
        .query_row(
            "SELECT COUNT(*) FROM images WHERE root = 's3://factory/moved'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        in_bucket,
        IMAGES as i64 + 1,
        "原来的 499 张、之前就在桶里的 1 张、新的 1 张"
    );
    drop(moved);

    // 用迁移后的配置启动：图从桶里来。
    let config = format!(
        "[storage]\nroot = \"s3://factory/moved\"\ndatabase = \"moved/factory.db\"\n\n[storage.s3]\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id = \"test\"\nsecret_access_key = \"test-secret\"\n",
        s3.endpoint()
    );
    std::fs::write(ws.path().join("factory.toml"), config).unwrap();
    let server = ws.serve().await;
    let served = reqwest::get(format!("{}/files/{}/thumb", server.url, big.id))
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    let thumb_key = format!("moved/{}", big.rel_path.replace(".png", ".thumb.jpg"));
    assert!(served.bytes().await.unwrap() == s3.get(&thumb_key).await.unwrap());
    let (_, page) = call(
        &server,
        "list_images",
        serde_json::json!({"query": {"limit": 5}}),
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    drop(server);
    std::fs::write(ws.path().join("factory.toml"), &local_config).unwrap();

    // 新库用过之后（这里：多了一次生成留下的行，或者少了一行），不再覆盖它；也不能把新库指到源库上。
    rusqlite::Connection::open(ws.path().join("moved/factory.db"))
        .unwrap()
        .execute("DELETE FROM images WHERE id = ?1", [&saved[3].id])
        .unwrap();
    let (ok, out) = migrate(&ws, "moved/factory.db").await;
    assert!(
        !ok && out.contains("已存在") && out.contains("不覆盖"),
        "{out}"
    );
    let (ok, out) = migrate(&ws, "storage/factory.db").await;
    assert!(!ok && out.contains("源数据库"), "{out}");
    assert_eq!(file_sha256(&source_db), source_before, "源数据库没变");
    assert!(local_files(&ws) == local_before, "本地文件没变");

    // 同一份源搬进 PostgreSQL：对象都已在桶里，各表一行不差（命令自己核对摘要，这里再独立数一遍）。
    // 单机时签名链接的密钥在数据库旁的文件里（服务器第一次启动时生成；这里的源库是直接写的，补一把）。
    let key_file = "ab".repeat(32);
    std::fs::write(ws.storage().join("url-signing.key"), &key_file).unwrap();
    let local_before = local_files(&ws);
    // 连接串里的密码（测试库不验证密码）不出现在输出里。
    let pg = postgres::database().replace("postgres@", "postgres:pw-secret@");
    let (ok, out) = migrate_to(&ws, &["--to-postgres", &pg]).await;
    assert!(ok, "{out}");
    assert!(
        out.contains("本次复制 0 个对象")
            && out.contains("images 502")
            && out.contains("uploads 2"),
        "{out}"
    );
    assert!(
        !out.contains("pw-secret") && out.contains("postgres:***@"),
        "{out}"
    );
    let pg_count = |sql: &str| postgres::query_text(&pg, sql).unwrap();
    assert_eq!(
        pg_count("SELECT COUNT(*)::text FROM images WHERE root = 's3://factory/moved'"),
        (IMAGES + 1).to_string()
    );
    assert_eq!(
        pg_count("SELECT value FROM secrets WHERE name = 'url_signing'"),
        key_file,
        "旧的签名密钥随库走"
    );
    // 再跑一次：结果一样。
    let (ok, out) = migrate_to(&ws, &["--to-postgres", &pg]).await;
    assert!(ok && out.contains("本次复制 0 个对象"), "{out}");
    // 目标库多了源库没有的行（像是正被一个实例用着）：整个回滚，目标库不变。
    postgres::execute(&pg, "INSERT INTO prompts (id, title, content, created_at, updated_at) VALUES ('x', 'x', 'x', 't', 't')");
    postgres::execute(
        &pg,
        "UPDATE images SET prompt = '改过' WHERE id = (SELECT MIN(id) FROM images)",
    );
    let (ok, out) = migrate_to(&ws, &["--to-postgres", &pg]).await;
    assert!(
        !ok && out.contains("prompts") && out.contains("回滚"),
        "{out}"
    );
    assert_eq!(
        pg_count("SELECT prompt FROM images WHERE id = (SELECT MIN(id) FROM images)"),
        "改过",
        "回滚了：这一次的改写一行也没留下"
    );
    postgres::execute(&pg, "DELETE FROM prompts WHERE id = 'x'");
    assert_eq!(file_sha256(&source_db), source_before, "源数据库没变");
    assert!(local_files(&ws) == local_before, "本地文件没变");

    // 用 PostgreSQL + 桶启动：图库里是全部的图，图从桶里来。
    ws.write_config(&format!(
        "[storage]\nroot = \"s3://factory/moved\"\ndatabase = \"{pg}\"\n\n[storage.s3]\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id = \"test\"\nsecret_access_key = \"test-secret\"\n",
        s3.endpoint()
    ));
    let server = ws.serve().await;
    let served = reqwest::get(format!("{}/files/{}/thumb", server.url, big.id))
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    assert!(served.bytes().await.unwrap() == s3.get(&thumb_key).await.unwrap());
    let mut listed = 0;
    let mut cursor: Option<String> = None;
    loop {
        let (status, page) = call(
            &server,
            "list_images",
            serde_json::json!({"query": {"limit": 200, "cursor": cursor}}),
        )
        .await;
        assert_eq!(status, 200, "{page}");
        listed += page["items"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(listed, IMAGES as usize + 2, "图库里是源库的全部图");
}
