//! 图片放在 S3 兼容的对象存储里（`storage.root = "s3://桶/前缀"`），对着真的 S3 服务（moto）测：
//! 原图、缩略图、上传的参考图都进桶，取图、打包、回收站、启动核对、对象存储停机时不丢图。

use crate::common::s3::S3;
use crate::common::*;
use serde_json::{json, Value};
use std::io::Read;

async fn generate(server: &Running, body: Value) -> String {
    let res = reqwest::Client::new()
        .post(format!("{}/api/generate_image", server.url))
        .json(&json!({ "request": body }))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let saved: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{saved}");
    saved["id"].as_str().unwrap().to_string()
}

/// 生成、取图与缩略图、上传参考图再以它生成、打包下载：文件全在桶里，本机只有数据库。
#[tokio::test]
async fn images_thumbnails_and_uploads_live_in_the_bucket() {
    let s3 = S3::start().await;
    let ws = Workspace::new(&s3.config(""));
    let server = ws.serve().await;
    let http = reqwest::Client::new();

    let id = generate(&server, json!({"prompt": "桶里的猫"})).await;
    let key = s3.key_containing(&format!("{id}.png")).await;
    assert!(key.starts_with("team/images/"), "{key}");
    let res = http
        .get(format!("{}/files/{id}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.headers()["etag"], format!("\"{id}\""));
    let served = res.bytes().await.unwrap();
    assert_eq!(
        Some(served.clone()),
        s3.get(&key).await,
        "发出的就是桶里的对象"
    );

    let res = http
        .get(format!("{}/files/{id}/thumb", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    let thumb = image::load_from_memory(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(thumb.width().max(thumb.height()), 384);
    s3.key_containing(&format!("{id}.thumb.jpg")).await;
    let cached = http
        .get(format!("{}/files/{id}", server.url))
        .header("if-none-match", format!("\"{id}\""))
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);

    // 上传一张参考图：进桶；以它为参考再生成（参考图从桶里读出来交给上游）。
    let upload = upload(&server, "参考.png", served.to_vec()).await;
    let upload_key = s3.key_containing(&upload).await;
    assert!(upload_key.starts_with("team/uploads/"), "{upload_key}");
    assert_eq!(s3.get(&upload_key).await.unwrap(), served);
    let edited = generate(
        &server,
        json!({"prompt": "照着参考图画", "references": [upload]}),
    )
    .await;
    let (_, detail) = call(&server, "get_image", json!({"id": edited})).await;
    assert_eq!(detail["reference_ids"], json!([upload]), "{detail}");

    // 打包下载：zip 里的两张图与桶里的对象逐字节相同。
    let res = http
        .get(format!("{}/files/zip?ids={id},{edited}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(res.bytes().await.unwrap())).unwrap();
    assert_eq!(archive.len(), 2);
    let mut first = Vec::new();
    archive
        .by_index(0)
        .unwrap()
        .read_to_end(&mut first)
        .unwrap();
    assert_eq!(first, served);

    // `/v1` 的 b64_json：桶里的图边读边编码，解出来与对象逐字节相同。
    let before: std::collections::HashSet<String> = s3.keys().await.into_iter().collect();
    let res = v1_generate(&server, None, json!({"prompt": "要 base64 的"})).await;
    assert_eq!(res.status(), 200);
    let length = res.content_length();
    let body: Value = res.json().await.unwrap();
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(body["data"][0]["b64_json"].as_str().unwrap())
        .unwrap();
    let new_key = s3
        .keys()
        .await
        .into_iter()
        .find(|k| !before.contains(k) && k.ends_with(".png"))
        .expect("新图进了桶");
    assert!(
        s3.get(&new_key).await.unwrap() == decoded,
        "b64_json 就是桶里的那张图"
    );
    assert!(length.is_some(), "长度事先算得出（Content-Length）");

    // 本机只有数据库（与它旁边的签名密钥），没有图片目录。
    assert!(!ws.path().join("storage").exists());
    if ws.postgres.is_none() {
        assert!(ws.path().join("meta/factory.db").is_file());
    }
    let local_images: Vec<_> = files_under(ws.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
        .collect();
    assert!(local_images.is_empty(), "{local_images:?}");
}

/// 清空回收站删掉桶里的原图与缩略图；重启时的核对报告桶里的孤儿对象与缺失的对象，缺的图 404。
#[tokio::test]
async fn empty_trash_deletes_objects_and_startup_audit_checks_the_bucket() {
    let s3 = S3::start().await;
    let ws = Workspace::new(&s3.config(""));
    let server = ws.serve().await;
    let gone = generate(&server, json!({"prompt": "要删的"})).await;
    let lost = generate(&server, json!({"prompt": "对象会丢的"})).await;
    let thumb = reqwest::get(format!("{}/files/{gone}/thumb", server.url))
        .await
        .unwrap();
    assert_eq!(thumb.status(), 200);
    assert_eq!(
        s3.keys().await.iter().filter(|k| k.contains(&gone)).count(),
        2
    );

    let (_, n) = call(&server, "trash_images", json!({"ids": [gone]})).await;
    assert_eq!(n, 1);
    let (status, n) = call(&server, "empty_trash", json!({})).await;
    assert_eq!((status, n), (200, json!(1)));
    let left: Vec<String> = s3
        .keys()
        .await
        .into_iter()
        .filter(|k| k.contains(&gone))
        .collect();
    assert!(left.is_empty(), "原图与缩略图都应删除：{left:?}");

    drop(server);
    s3.put("team/images/2026-01-01/orphan.png", b"no row").await;
    s3.delete(&s3.key_containing(&format!("{lost}.png")).await)
        .await;
    let server = ws.serve().await;
    // 日志带终端颜色：去掉 ESC[…m 再比。
    let logs: String = server
        .logs
        .lock()
        .unwrap()
        .split('\x1b')
        .map(|part| match part.strip_prefix('[') {
            Some(rest) => rest.split_once('m').map_or(rest, |(_, after)| after),
            None => part,
        })
        .collect();
    assert!(
        logs.contains("存储核对") && logs.contains("missing=1") && logs.contains("orphans=1"),
        "{logs}"
    );
    assert!(
        logs.contains("orphan.png") && logs.contains(&lost),
        "{logs}"
    );
    let res = reqwest::get(format!("{}/files/{lost}", server.url))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

/// 对象存储停机：已付钱的图照样交给 `/v1` 调用方、工作台的卡片是“保存失败”，图在本机的暂存区；
/// 对象存储恢复后“重新保存”进桶。
#[tokio::test]
async fn a_paid_image_survives_an_object_store_outage() {
    let s3 = S3::start().await;
    let ws = Workspace::new(&s3.config(""));
    let server = ws.serve().await;
    let port = s3.stop().await;

    v1_unsaved(&server).await;

    let job_id = unsaved_card(&server, "卡片存不下").await;
    // 暂存区：SQLite 文件旁边；元数据在 PostgreSQL 时在配置文件所在的目录（容器里是 /data 卷，不在会被清掉的临时目录）。
    let spill = match ws.postgres {
        None => ws.path().join("meta/.spill"),
        Some(_) => ws.path().join(".spill"),
    };
    assert_eq!(files_under(&spill).len(), 2, "两张图都在本机的暂存区");

    let s3 = S3::start_at(port).await;
    let (status, view) = call(&server, "resave_job", json!({"job_id": job_id})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["state"], "done");
    let image_id = view["image"]["id"].as_str().unwrap().to_string();
    let key = s3.key_containing(&image_id).await;
    let served = reqwest::get(format!("{}/files/{image_id}", server.url))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(Some(served), s3.get(&key).await);
}

/// 配置错了或对象存储连不上：启动失败，说清是哪一项、哪里，什么都不改。
#[tokio::test]
async fn bad_or_unreachable_bucket_stops_startup_with_a_clear_reason() {
    let cases = [
        (
            "[storage]\nroot = \"s3://Bad_Bucket/x\"\ndatabase = \"f.db\"\n".to_string(),
            "不是有效的桶名",
        ),
        (
            "[storage]\nroot = \"s3://factory/x\"\n".to_string(),
            "storage.database",
        ),
        (
            format!(
                "[storage]\nroot = \"s3://factory/x\"\ndatabase = \"f.db\"\n[storage.s3]\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id = \"a\"\nsecret_access_key = \"never-printed\"\n",
                closed_port_url()
            ),
            "无法列出对象存储 s3://factory/x/images",
        ),
    ];
    for (config, reason) in cases {
        let ws = Workspace::sqlite(&config);
        let out = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            tokio::process::Command::new(BIN)
                .args(["--config", "factory.toml", "--listen", "127.0.0.1:0"])
                .current_dir(ws.path())
                .output(),
        )
        .await
        .expect("60 秒内应当退出")
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{config}");
        assert!(stderr.contains(reason), "{reason}：{stderr}");
        assert!(!stderr.contains("never-printed"), "{stderr}");
        assert!(
            !ws.path().join("f.db").exists() || reason.contains("列出"),
            "{config}"
        );
    }
}

/// 设置页把存储根换成桶：写不进去的不保存（配置文件不变）；能写的保存后新图进桶、旧图照常可取；
/// 密钥只写，读设置时拿不回来。
#[tokio::test]
async fn settings_switch_to_a_bucket_only_when_it_is_writable() {
    let s3 = S3::start().await;
    let ws = Workspace::new("[storage]\nroot = \"storage\"\n");
    let server = ws.serve().await;
    let before = generate(&server, json!({"prompt": "本地的"})).await;
    let file = ws.path().join("factory.toml");
    let (_, view) = admin(&server, "get_settings", json!({})).await;
    let form = |endpoint: String| {
        json!({"update": {
            "upstreams": view["upstreams"],
            "storage_root": "s3://factory/team",
            "s3": {"endpoint": endpoint, "region": "us-east-1", "access_key_id": "test",
                   "secret_access_key": "s3-secret-never-shown"},
            "numbers": view["numbers"],
            "flags": view["flags"],
            "listen": view["listen"],
        }})
    };

    // 写不进桶的保存：400，说“设置未保存”，配置文件逐字节不变。
    let refused_unchanged = |body: Value| {
        let (server, file) = (&server, &file);
        async move {
            let before = std::fs::read(file).unwrap();
            let (status, refused) = admin(server, "save_settings", body).await;
            assert_eq!(status, 400, "{refused}");
            assert!(refused.to_string().contains("设置未保存"), "{refused}");
            assert_eq!(std::fs::read(file).unwrap(), before, "配置文件不变");
        }
    };
    refused_unchanged(form(closed_port_url())).await;

    let (status, saved) = admin(&server, "save_settings", form(s3.endpoint())).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["storage_root"], "s3://factory/team");
    assert_eq!(saved["s3"]["secret_set"], true);
    assert!(
        !saved.to_string().contains("s3-secret-never-shown"),
        "{saved}"
    );
    assert!(s3.keys().await.is_empty(), "试写的对象已删掉");

    let after = generate(&server, json!({"prompt": "桶里的"})).await;
    s3.key_containing(&after).await;
    for id in [before, after] {
        let res = reqwest::get(format!("{}/files/{id}", server.url))
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{id}");
    }
    // 再保存一次、密钥留空：沿用原来的（文件里还是它）。
    let mut again = form(s3.endpoint());
    again["update"]["s3"]["secret_access_key"] = json!("");
    let (status, _) = admin(&server, "save_settings", again).await;
    assert_eq!(status, 200);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("s3-secret-never-shown"), "{text}");

    // 换回本地目录、同时把连接改坏：桶里还有旧图，新连接连不上它们 → 不保存。连接不变地换回本地 → 保存。
    let back = |endpoint: String| {
        let mut body = form(endpoint);
        body["update"]["storage_root"] = json!("storage");
        body
    };
    refused_unchanged(back(closed_port_url())).await;
    let (status, saved) = admin(&server, "save_settings", back(s3.endpoint())).await;
    assert_eq!(status, 200, "{saved}");
    assert!(saved["storage_root"].as_str().unwrap().ends_with("storage"));
}

/// `presign = true`：`/files/…` 回 307 到对象存储的预签名链接（浏览器直接取），页面的 CSP 放行对象存储的地址；
/// 下载（`?download=1`）仍由本服务发送，带文件名。
#[tokio::test]
async fn presigned_links_send_browsers_to_the_bucket() {
    let s3 = S3::start().await;
    let config = s3.config("").replace(
        "secret_access_key = \"test-secret\"\n",
        "secret_access_key = \"test-secret\"\npresign = true\n",
    );
    let ws = Workspace::new(&config);
    let server = ws.serve().await;
    let id = generate(&server, json!({"prompt": "直接取"})).await;
    let key = s3.key_containing(&format!("{id}.png")).await;
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = no_redirect
        .get(format!("{}/files/{id}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 307);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{}/factory/{key}?", s3.endpoint()))
            && location.contains("X-Amz-Signature=")
            && location.contains("X-Amz-Expires=900"),
        "{location}"
    );
    assert!(!location.contains("test-secret"), "{location}");
    let direct = reqwest::get(&location).await.unwrap();
    assert_eq!(direct.status(), 200);
    assert!(direct.bytes().await.unwrap() == s3.get(&key).await.unwrap());

    let download = no_redirect
        .get(format!("{}/files/{id}?download=1", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    assert!(download.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));

    let page = reqwest::get(format!("{}/gallery", server.url))
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains(&format!("img-src 'self' data: blob: {};", s3.endpoint())),
        "{csp}"
    );
}

/// 从对象存储换回本地目录之后，停用了的对象存储连不上也照常启动：新图写本地、照常可取，桶里的旧图暂时 404。
#[tokio::test]
async fn an_old_bucket_that_is_down_does_not_block_startup() {
    let s3 = S3::start().await;
    let ws = Workspace::new(&s3.config(""));
    let server = ws.serve().await;
    let in_bucket = generate(&server, json!({"prompt": "桶里的"})).await;
    drop(server);
    let local = s3
        .config("")
        .replace("root = \"s3://factory/team\"", "root = \"local\"");
    ws.write_config(&local);
    s3.stop().await;

    let server = ws.serve().await;
    let logs = server.logs.lock().unwrap().clone();
    assert!(
        logs.contains("启动核对跳过了旧的存储根 s3://factory/team"),
        "{logs}"
    );
    let here = generate(&server, json!({"prompt": "本地的"})).await;
    assert!(!files_under(&ws.path().join("local/images")).is_empty());
    for (id, status) in [(here, 200), (in_bucket, 404)] {
        let res = reqwest::get(format!("{}/files/{id}", server.url))
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{id}");
    }
}
