//! 批量：变量展开（全部组合、按位组合、字面花括号）、每种错误什么都不留、批量改图（每张参考图一个任务）、
//! 预览不排队、暂停与继续、重试失败的、置顶、批次打包（图与清单）、模型说明。
//! 都经真实的 HTTP（服务器函数的 JSON），对着真实的二进制与演示上游；数据库直接读出来核对。

use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// 表里有几行（批次、任务）。
fn rows(ws: &Workspace) -> (i64, i64) {
    ws.db(|c| {
        let mut count = |table: &str| {
            c.query_one(&format!("SELECT COUNT(*) FROM {table}"), params![], |r| {
                r.get(0)
            })
        };
        Ok((count("batches")?, count("jobs")?))
    })
}

/// 一个批次里各任务（按序号）存下的提示词、参考图与变量值。
fn stored_jobs(
    ws: &Workspace,
    batch: &str,
) -> Vec<(String, Vec<String>, BTreeMap<String, String>)> {
    ws.db(|c| {
        c.query(
            "SELECT prompt, reference_ids, variables FROM jobs WHERE batch_id = ?1 ORDER BY idx",
            params![batch],
            |r| {
                Ok((
                    r.get::<String>(0)?,
                    serde_json::from_str(&r.get::<String>(1)?).unwrap(),
                    serde_json::from_str(&r.get::<String>(2)?).unwrap(),
                ))
            },
        )
    })
}

async fn submit(server: &Running, request: Value) -> (u16, Value) {
    call(server, "submit_jobs", json!({ "request": request })).await
}

fn batch_of(jobs: &Value) -> String {
    jobs[0]["batch_id"].as_str().unwrap().to_string()
}

/// 等批次里的任务都到终态，返回批次概况。
async fn wait_batch(server: &Running, batch: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, page) = call(server, "list_batches", json!({"limit": 100})).await;
        assert_eq!(status, 200, "{page}");
        let view = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == batch)
            .cloned()
            .unwrap_or_else(|| panic!("批次 {batch} 不在列表里：{page}"));
        if view["queued"] == 0 && view["running"] == 0 {
            return view;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "批次没有结束：{view}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn png(shade: u8) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(8, 8, image::Rgb([shade, 100, 200]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

#[tokio::test]
async fn variables_each_mode_zip_and_refusals_that_leave_nothing_behind() {
    let demo = demo_upstream(&["--max-side", "64"]).await;
    let ws = Workspace::new(&format!(
        "{}\n[limits]\nmax_batch_jobs = 20\n",
        config_with_upstream(&demo.url)
    ));
    let server = ws.serve().await;

    // 全部组合：2 × 2 个变量值 × 每条 2 张 = 8 个任务，存下的提示词恰好是 4 种展开各两次。
    let (status, jobs) = submit(
        &server,
        json!({"prompt": "{风格}风格的{季节}天小屋", "count": 2,
               "variables": {"风格": ["油画", "水彩"], "季节": ["春", "冬"]}}),
    )
    .await;
    assert_eq!(status, 200, "{jobs}");
    assert_eq!(jobs.as_array().unwrap().len(), 8);
    let cartesian = batch_of(&jobs);
    let stored = stored_jobs(&ws, &cartesian);
    let prompts: Vec<&str> = stored.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(
        prompts,
        [
            "油画风格的春天小屋",
            "油画风格的春天小屋",
            "油画风格的冬天小屋",
            "油画风格的冬天小屋",
            "水彩风格的春天小屋",
            "水彩风格的春天小屋",
            "水彩风格的冬天小屋",
            "水彩风格的冬天小屋"
        ]
    );
    assert_eq!(stored[2].2["季节"], "冬");
    assert_eq!(jobs[0]["batch_name"], "{风格}风格的{季节}天小屋");

    // 按位组合；`{{`、`}}` 是字面的花括号。
    let (status, jobs) = submit(
        &server,
        json!({"prompt": "{{标题}} {风格}的{季节}", "variable_mode": "zip", "name": "按位",
               "variables": {"风格": ["油画", "水彩"], "季节": ["春", "冬"]}}),
    )
    .await;
    assert_eq!(status, 200, "{jobs}");
    let zipped = stored_jobs(&ws, &batch_of(&jobs));
    let prompts: Vec<&str> = zipped.iter().map(|(p, _, _)| p.as_str()).collect();
    assert_eq!(prompts, ["{标题} 油画的春", "{标题} 水彩的冬"]);
    assert_eq!(jobs[0]["batch_name"], "按位");

    // 预览：展开但不排队。
    let before = rows(&ws);
    let (status, preview) = call(
        &server,
        "expand_prompt",
        json!({"request": {"prompts": ["一只{动物}", "两只{动物}"], "count": 3,
                           "variables": {"动物": ["猫", "狗"]}}}),
    )
    .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["total"], 12);
    assert_eq!(
        preview["prompts"],
        json!(["一只猫", "一只狗", "两只猫", "两只狗"])
    );
    assert_eq!(rows(&ws), before, "预览不产生批次与任务");

    // 每种错误：400、中文原因点名是哪个变量，批次与任务表都不变。
    let refusals = [
        (json!({"prompt": "{风格}的猫"}), "{风格} 没有给值"),
        (
            json!({"prompt": "猫", "variables": {"风格": ["油画"]}}),
            "变量“风格”没有出现在提示词里",
        ),
        (
            json!({"prompt": "{风格}的猫", "variables": {"风格": ["", "  "]}}),
            "变量“风格”没有值",
        ),
        (
            json!({"prompt": "{风格}{季节}", "variable_mode": "zip",
                   "variables": {"风格": ["a", "b"], "季节": ["c"]}}),
            "季节 有 1 个",
        ),
        (
            json!({"prompt": "{a}", "count": 16, "variables": {"a": ["1", "2"]}}),
            "这次会生成 32 张，超过了每次最多 20 张",
        ),
        (
            json!({"prompt": "改成水彩", "reference_mode": "each"}),
            "需要至少一张参考图",
        ),
    ];
    for (request, reason) in refusals {
        for endpoint in ["submit_jobs", "expand_prompt"] {
            let (status, body) = call(&server, endpoint, json!({ "request": request })).await;
            assert_eq!(status, 400, "{endpoint} {request}: {body}");
            let message = body["message"].as_str().unwrap_or_default();
            assert!(message.contains(reason), "{endpoint} {request}: {message}");
        }
        assert_eq!(rows(&ws), before, "被拒绝的提交什么都没留下：{request}");
    }

    // 批量改图：3 张参考图 → 3 个任务，每个只带它自己那一张。
    let refs = [
        upload(&server, "一.png", png(10)).await,
        upload(&server, "二.png", png(120)).await,
        upload(&server, "三.png", png(240)).await,
    ];
    let (status, jobs) = submit(
        &server,
        json!({"prompt": "改成水彩", "reference_mode": "each", "references": refs}),
    )
    .await;
    assert_eq!(status, 200, "{jobs}");
    let each = batch_of(&jobs);
    let stored = stored_jobs(&ws, &each);
    let references: Vec<Vec<String>> = stored.iter().map(|(_, r, _)| r.clone()).collect();
    assert_eq!(
        references,
        refs.iter().map(|r| vec![r.clone()]).collect::<Vec<_>>()
    );

    // 都完成后：图库里每张图记着自己的参考图与模型说明。
    let view = wait_batch(&server, &each).await;
    assert_eq!(
        (view["done"].clone(), view["total"].clone()),
        (json!(3), json!(3)),
        "{view}"
    );
    let (_, views) = call(&server, "list_batches", json!({})).await;
    assert!(views["items"].as_array().unwrap().len() >= 3);
    let image_id: String = ws.db(|c| {
        c.query_one(
            "SELECT image_id FROM jobs WHERE batch_id = ?1 AND idx = 2",
            params![each],
            |r| r.get(0),
        )
    });
    let (status, detail) = call(&server, "get_image", json!({"id": image_id})).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["reference_ids"], json!([refs[1]]));
    assert!(
        detail["model_text"]
            .as_str()
            .is_some_and(|t| t.contains("演示上游") && t.contains("改成水彩")),
        "{detail}"
    );

    // 打包本批：恰好 8 张完成的图，外加清单；清单的每一行与图对得上。
    wait_batch(&server, &cartesian).await;
    let res = reqwest::get(format!("{}/files/zip?batch={cartesian}", server.url))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut archive =
        zip::ZipArchive::new(std::io::Cursor::new(res.bytes().await.unwrap())).unwrap();
    let mut names: Vec<String> = (0..archive.len())
        .map(|i| archive.by_index(i).unwrap().name().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names.len(), 9, "{names:?}");
    assert!(
        names.contains(&"1-油画风格的春天小屋.png".to_string()),
        "{names:?}"
    );
    let mut manifest = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("manifest.csv").unwrap(), &mut manifest)
        .unwrap();
    let mut reader = csv::Reader::from_reader(manifest.trim_start_matches('\u{feff}').as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        [
            "序号",
            "提示词",
            "变量值",
            "参考图",
            "状态",
            "原因",
            "文件名"
        ]
    );
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 8);
    for (i, record) in records.iter().enumerate() {
        assert_eq!(&record[0], (i + 1).to_string());
        assert_eq!(record[1], stored_jobs(&ws, &cartesian)[i].0);
        assert_eq!(&record[4], "已完成");
        assert!(
            names.contains(&record[6].to_string()),
            "清单里的文件名在包里：{record:?}"
        );
        let bytes = {
            let mut entry = archive.by_name(&record[6]).unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
            data
        };
        assert!(bytes.starts_with(b"\x89PNG"), "{}", &record[6]);
    }
    assert_eq!(&records[2][2], "季节=冬; 风格=油画");
    let res = reqwest::get(format!("{}/files/zip?batch=nope", server.url))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

/// 演示上游的故障与延迟（运行中改）。
async fn demo_options(demo: &Running, options: Value) {
    let res = reqwest::Client::new()
        .post(format!("{}/_demo/options", demo.url))
        .json(&options)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
}

/// 各任务的（序号, 状态, 第几次运行, 开始时刻）。
fn job_states(ws: &Workspace, batch: &str) -> Vec<(u32, String, u32, Option<String>)> {
    ws.db(|c| {
        c.query(
            "SELECT idx, state, run, started_at FROM jobs WHERE batch_id = ?1 ORDER BY idx",
            params![batch],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
    })
}

#[tokio::test]
async fn pause_resume_prioritize_and_retry_only_the_failed() {
    let demo = demo_upstream(&["--max-side", "64", "--delay-ms", "400"]).await;
    let ws = Workspace::new(&format!(
        "{}\n[limits]\nmax_concurrent = 1\n",
        config_with_upstream(&demo.url)
    ));
    let server = ws.serve().await;

    // 暂停：排队中的不开始（运行中的那一张照常完成）；继续后全部完成。
    let (_, jobs) = submit(&server, json!({"prompt": "暂停的批次", "count": 3})).await;
    let paused = batch_of(&jobs);
    let (status, view) = call(&server, "pause_batch", json!({"batch_id": paused})).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["paused"], true);
    // 不是等一段时间看它没开始，而是让调度器当着它的面做一次选择：暂停之后再交一批（1 张），
    // 同时只生成 1 张、按先来后到——这张完成时，暂停的批次里排队的应当一张都没开始（被后来的越过了）。
    let (_, jobs) = submit(&server, json!({"prompt": "暂停期间的另一批", "count": 1})).await;
    let other = batch_of(&jobs);
    assert_eq!(wait_batch(&server, &other).await["done"], 1);
    let (_, page) = call(&server, "list_batches", json!({"limit": 100})).await;
    let view = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == paused.as_str())
        .unwrap_or_else(|| panic!("暂停的批次在列表里：{page}"));
    assert_eq!(view["running"], 0, "{view}");
    assert!(
        view["queued"].as_u64().unwrap() >= 2,
        "暂停后排队的没有开始：{view}"
    );

    let (status, _) = call(&server, "resume_batch", json!({"batch_id": paused})).await;
    assert_eq!(status, 200);
    let view = wait_batch(&server, &paused).await;
    assert_eq!(view["done"], 3, "{view}");
    assert_eq!(view["paused"], false);

    // 置顶：后提交的批次置顶后，先于前一批还在排队的任务开始。
    let (_, jobs) = submit(&server, json!({"prompt": "先来的批次", "count": 3})).await;
    let earlier = batch_of(&jobs);
    let (_, jobs) = submit(&server, json!({"prompt": "后来的批次", "count": 2})).await;
    let later = batch_of(&jobs);
    let (status, _) = call(&server, "prioritize_batch", json!({"batch_id": later})).await;
    assert_eq!(status, 200);
    wait_batch(&server, &earlier).await;
    wait_batch(&server, &later).await;
    let last_of_later = job_states(&ws, &later)
        .into_iter()
        .filter_map(|j| j.3)
        .max()
        .unwrap();
    let started_after: Vec<String> = job_states(&ws, &earlier)
        .into_iter()
        .filter_map(|j| j.3)
        .filter(|t| *t > last_of_later)
        .collect();
    assert_eq!(
        started_after.len(),
        2,
        "置顶的批次先跑完，前一批排队的两张才开始"
    );

    // 重试失败的：第一张完成后上游开始报错，之后的失败；只有失败的重跑，完成的不动。
    let (_, jobs) = submit(&server, json!({"prompt": "会失败的批次", "count": 3})).await;
    let flaky = batch_of(&jobs);
    let started = Instant::now();
    while !job_states(&ws, &flaky).iter().any(|j| j.1 == "done") {
        assert!(started.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    demo_options(&demo, json!({"error_rate": 1.0, "error_status": 400})).await;
    let view = wait_batch(&server, &flaky).await;
    assert!(view["failed"].as_u64().unwrap() >= 1, "{view}");
    demo_options(&demo, json!({"error_rate": 0.0})).await;
    let before = job_states(&ws, &flaky);
    let (status, _) = call(&server, "retry_failed", json!({"batch_id": flaky})).await;
    assert_eq!(status, 200);
    let view = wait_batch(&server, &flaky).await;
    assert_eq!(view["done"], 3, "{view}");
    let after = job_states(&ws, &flaky);
    for (b, a) in before.iter().zip(&after) {
        let expected_run = if b.1 == "failed" { b.2 + 1 } else { b.2 };
        assert_eq!(a.2, expected_run, "第 {} 张：之前 {b:?}，之后 {a:?}", b.0);
    }

    // 不存在的批次：404；移除后不再列出。
    let (status, _) = call(&server, "pause_batch", json!({"batch_id": "nope"})).await;
    assert_eq!(status, 404);
    let (status, _) = call(&server, "remove_batch", json!({"batch_id": flaky})).await;
    assert_eq!(status, 200);
    let (_, page) = call(&server, "list_batches", json!({})).await;
    assert!(page["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["id"] != flaky.as_str()));
}

/// #41 第 1 项：几条提示词各带自己的张数，其中一条按 id 取自提示词库；旧的纯文字写法照常；
/// id 不在库里、在回收站里、张数越界、text 与 prompt_id 同时给都是 400，什么都不排队。
#[tokio::test]
async fn prompts_with_their_own_counts_and_library_ids_make_one_batch() {
    let ws = Workspace::new("");
    let server = ws.serve().await;
    let (status, saved) = call(
        &server,
        "save_prompt",
        json!({ "prompt": { "title": "库里的", "content": "库里的一条：灯塔" } }),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();
    let before = rows(&ws);
    for (bad, says) in [
        (
            json!([{ "prompt_id": "不存在的" , "count": 2 }]),
            "提示词库里没有",
        ),
        (
            json!([{ "text": "甲", "prompt_id": id, "count": 2 }]),
            "只能给一个",
        ),
        (json!([{ "text": "甲", "count": 17 }]), "16"),
        (json!([{ "text": "甲", "count": 0 }]), "1"),
    ] {
        let (status, body) = submit(&server, json!({ "prompts": bad })).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains(says),
            "{bad}: {body}"
        );
    }
    // 引用的条数有上限：不为一次提交查几万次库。
    let many: Vec<Value> = (0..257)
        .map(|i| json!({ "prompt_id": format!("p{i}") }))
        .collect();
    let (status, body) = submit(&server, json!({ "prompts": many })).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("最多引用"),
        "{body}"
    );
    assert_eq!(rows(&ws), before, "被拒的提交什么都不留下");
    // 预览与提交一样算张数，但预览不记使用次数。
    let request = json!({
        "count": 1,
        "prompts": [ { "text": "甲：海边", "count": 2 }, { "prompt_id": id, "count": 3 }, "乙：旧写法的一条" ],
    });
    let (status, preview) = call(&server, "expand_prompt", json!({ "request": request })).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["total"], 6);
    let (status, jobs) = submit(&server, request).await;
    assert_eq!(status, 200, "{jobs}");
    let prompts: Vec<String> = stored_jobs(&ws, &batch_of(&jobs))
        .into_iter()
        .map(|(p, _, _)| p)
        .collect();
    assert_eq!(
        prompts,
        [
            "甲：海边",
            "甲：海边",
            "库里的一条：灯塔",
            "库里的一条：灯塔",
            "库里的一条：灯塔",
            "乙：旧写法的一条"
        ]
    );
    let (_, page) = call(&server, "list_prompts", json!({ "query": {} })).await;
    let saved = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(saved["use_count"], 1, "{saved}");
    // 在回收站里的不能用。
    let (status, _) = call(&server, "delete_prompt", json!({ "id": id })).await;
    assert_eq!(status, 200);
    let (status, body) = submit(&server, json!({ "prompts": [{ "prompt_id": id }] })).await;
    assert_eq!(status, 400, "{body}");
}
