//! 提示词库的 JSON 接口：示例提示词、新建与修改、每个上限点名字段且什么都不改、搜索与筛选、排序、翻页、
//! 回收站、使用次数、候选；导出 → 空库 → 导入还原同样的库，导入两次不重复，坏文件整份不导入；
//! 以及图片的收藏筛选。都经真实的 HTTP，对着真实的二进制。

use crate::common::*;
use serde_json::{json, Value};

/// 表里一共几行（含回收站）。
fn prompt_rows(ws: &Workspace) -> i64 {
    ws.db(|c| c.query_one("SELECT COUNT(*) FROM prompts", params![], |r| r.get(0)))
}

async fn list(server: &Running, query: Value) -> Value {
    let (status, page) = call(server, "list_prompts", json!({ "query": query })).await;
    assert_eq!(status, 200, "{query}: {page}");
    page
}

fn titles(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_string())
        .collect()
}

async fn save(server: &Running, prompt: Value) -> Value {
    let (status, saved) = call(server, "save_prompt", json!({ "prompt": prompt })).await;
    assert_eq!(status, 200, "{prompt}: {saved}");
    saved
}

async fn by_id(server: &Running, endpoint: &str, id: &Value) -> (u16, Value) {
    call(server, endpoint, json!({ "id": id })).await
}

#[tokio::test]
async fn library_crud_limits_search_sort_pages_trash_uses_and_suggestions() {
    let ws = Workspace::new("");
    let server = ws.serve().await;

    // 第一次启动：12 条示例，3 个分类，其中 2 条是带默认值的模板。
    let seeds = list(&server, json!({"limit": 200})).await;
    let items = seeds["items"].as_array().unwrap();
    assert_eq!(items.len(), 12, "{seeds}");
    assert!(items.iter().all(|p| p["example"] == true));
    assert_eq!(seeds["categories"], json!(["产品", "人像", "场景"]));
    let templates = items
        .iter()
        .filter(|p| !p["variables"].as_object().unwrap().is_empty())
        .count();
    assert_eq!(templates, 2);

    // 新建、修改（id 与创建时间不变，标签去重去空白）。
    let cat = save(
        &server,
        json!({"id": null, "title": "猫", "content": "一只橘猫在窗台上晒太阳", "category": "动物",
               "tags": ["猫", " 萌宠 ", "猫"], "favourite": false, "variables": {}}),
    )
    .await;
    assert_eq!(cat["use_count"], 0);
    assert_eq!(cat["tags"], json!(["猫", "萌宠"]));
    let mut edit = cat.clone();
    edit["title"] = json!("橘猫");
    edit["favourite"] = json!(true);
    let edited = save(&server, edit).await;
    assert_eq!(
        (&edited["id"], &edited["created_at"]),
        (&cat["id"], &cat["created_at"])
    );
    assert_eq!(
        (&edited["title"], &edited["favourite"]),
        (&json!("橘猫"), &json!(true))
    );
    let (status, _) = call(
        &server,
        "save_prompt",
        json!({"prompt": {"id": "0000", "content": "不存在的那条"}}),
    )
    .await;
    assert_eq!(status, 404);

    // 每个上限：400，中文原因点名字段，表里什么都没多、什么都没改。
    let before = prompt_rows(&ws);
    let refusals = [
        (json!({"content": ""}), "内容不能为空"),
        (
            json!({"content": "猫", "title": "题".repeat(101)}),
            "标题最多 100 个字符",
        ),
        (
            json!({"content": "字".repeat(8001)}),
            "内容最多 8000 个字符",
        ),
        (
            json!({"content": "猫", "tags": (0..21).map(|i| i.to_string()).collect::<Vec<_>>()}),
            "标签最多 20 个",
        ),
        (
            json!({"content": "猫", "tags": ["长".repeat(31)]}),
            "最多 30 个字符",
        ),
        (
            json!({"content": "猫", "category": "类".repeat(31)}),
            "分类最多 30 个字符",
        ),
        (
            json!({"content": "猫", "variables": {"季节": ["春"]}}),
            "模板变量“季节”没有出现在内容里",
        ),
        (
            json!({"id": cat["id"], "content": "猫", "title": "题".repeat(101)}),
            "标题最多 100 个字符",
        ),
    ];
    for (prompt, reason) in refusals {
        let (status, body) = call(&server, "save_prompt", json!({ "prompt": prompt })).await;
        assert_eq!(status, 400, "{prompt}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{prompt}: {message}");
    }
    assert_eq!(prompt_rows(&ws), before);
    let unchanged = list(&server, json!({"search": "橘猫"})).await;
    assert_eq!(titles(&unchanged), ["橘猫"], "被拒绝的修改没有改动那一条");

    // 搜索（标题、内容、标签）与筛选（分类、标签、收藏）。
    assert_eq!(
        titles(&list(&server, json!({"search": "猫在窗台"})).await),
        ["橘猫"]
    );
    assert_eq!(
        titles(&list(&server, json!({"search": "萌宠"})).await),
        ["橘猫"]
    );
    assert_eq!(
        titles(&list(&server, json!({"category": "动物"})).await),
        ["橘猫"]
    );
    assert_eq!(
        titles(&list(&server, json!({"tag": "萌宠"})).await),
        ["橘猫"]
    );
    assert_eq!(
        titles(&list(&server, json!({"favourite": true})).await),
        ["橘猫"]
    );
    assert_eq!(
        list(&server, json!({"search": "100%_不存在"})).await["items"],
        json!([])
    );
    let all = list(&server, json!({"limit": 200})).await;
    assert_eq!(all["items"][0]["title"], "橘猫", "收藏的在最前");

    // 排序：按标题、按次数、按最近使用。
    let mut ids = std::collections::HashMap::new();
    for title in ["b-title", "a-title", "c-title"] {
        let p = save(
            &server,
            json!({"title": title, "content": format!("{title} 的内容"), "category": "排序"}),
        )
        .await;
        ids.insert(title, p["id"].clone());
    }
    let q = |sort: &str| json!({"category": "排序", "sort": sort});
    assert_eq!(
        titles(&list(&server, q("name")).await),
        ["a-title", "b-title", "c-title"]
    );
    for title in ["c-title", "c-title", "a-title"] {
        let (status, used) = by_id(&server, "use_prompt", &ids[title]).await;
        assert_eq!(status, 200, "{used}");
        assert!(used["last_used_at"].is_string());
    }
    let (_, c) = by_id(&server, "use_prompt", &ids["c-title"]).await;
    assert_eq!(c["use_count"], 3);
    assert_eq!(
        titles(&list(&server, q("uses")).await),
        ["c-title", "a-title", "b-title"]
    );
    let (_, _) = by_id(&server, "use_prompt", &ids["a-title"]).await;
    assert_eq!(
        titles(&list(&server, q("recent")).await),
        ["a-title", "c-title", "b-title"]
    );

    // 翻页：每页 2 条，沿 next_cursor 到底；坏参数 400。
    let first = list(
        &server,
        json!({"category": "排序", "sort": "name", "limit": 2}),
    )
    .await;
    assert_eq!(titles(&first), ["a-title", "b-title"]);
    let second = list(
        &server,
        json!({"category": "排序", "sort": "name", "limit": 2, "cursor": first["next_cursor"]}),
    )
    .await;
    assert_eq!(titles(&second), ["c-title"]);
    assert!(second["next_cursor"].is_null());
    for bad in [
        json!({"limit": 0}),
        json!({"limit": 201}),
        json!({"cursor": "x"}),
        json!({"sort": "random"}),
    ] {
        let (status, body) = call(&server, "list_prompts", json!({ "query": bad })).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // 回收站：删了的不在列表里、不能再用；恢复后回来。
    let (status, trashed) = by_id(&server, "delete_prompt", &ids["b-title"]).await;
    assert_eq!(status, 200);
    assert!(trashed["deleted_at"].is_string());
    assert_eq!(
        titles(&list(&server, q("name")).await),
        ["a-title", "c-title"]
    );
    assert_eq!(
        titles(&list(&server, json!({"trash": true})).await),
        ["b-title"]
    );
    assert_eq!(by_id(&server, "use_prompt", &ids["b-title"]).await.0, 404);
    let (status, restored) = by_id(&server, "restore_prompt", &ids["b-title"]).await;
    assert_eq!(status, 200);
    assert!(restored["deleted_at"].is_null());
    assert_eq!(
        titles(&list(&server, q("name")).await),
        ["a-title", "b-title", "c-title"]
    );
    assert_eq!(by_id(&server, "delete_prompt", &json!("0000")).await.0, 404);

    // 候选：开头相同的在前，其次包含的；收藏的、用得多的在前；空的没有候选。
    save(
        &server,
        json!({"title": "内含", "content": "一张 c-title 的海报"}),
    )
    .await;
    let (status, suggestions) = call(&server, "suggest_prompts", json!({"text": "c-ti"})).await;
    assert_eq!(status, 200, "{suggestions}");
    let got: Vec<&str> = suggestions
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["c-title", "内含"]);
    let (_, suggestions) = call(
        &server,
        "suggest_prompts",
        json!({"text": "-title", "limit": 2}),
    )
    .await;
    let got: Vec<&str> = suggestions
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["c-title", "a-title"], "都只是包含：用得多的在前");
    let (_, none) = call(&server, "suggest_prompts", json!({"text": "  "})).await;
    assert_eq!(none, json!([]));
    let (status, body) = call(
        &server,
        "suggest_prompts",
        json!({"text": "字".repeat(8001)}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("text 最多 8000 个字符"));
    let (status, _) = call(
        &server,
        "list_prompts",
        json!({"query": {"search": "字".repeat(8001)}}),
    )
    .await;
    assert_eq!(status, 400);
}

/// 导出里的提示词，按内容排好（比较两个库是否相同）。
fn exported(data: &Value) -> Vec<Value> {
    let mut prompts = data["prompts"].as_array().unwrap().clone();
    prompts.sort_by_key(|p| p["content"].as_str().unwrap().to_string());
    prompts
}

#[tokio::test]
async fn export_import_roundtrip_merges_duplicates_and_refuses_broken_files() {
    let ws = Workspace::new("");
    let server = ws.serve().await;
    save(&server, json!({"title": "模板", "content": "{风格}的山", "category": "场景",
                         "tags": ["山"], "favourite": true, "variables": {"风格": ["水墨", "油画"]}})).await;
    let used = save(
        &server,
        json!({"title": "用过的", "content": "雨夜的霓虹街道", "tags": ["城市"]}),
    )
    .await;
    by_id(&server, "use_prompt", &used["id"]).await;
    by_id(&server, "use_prompt", &used["id"]).await;
    let gone = save(&server, json!({"content": "回收站里的不导出"})).await;
    by_id(&server, "delete_prompt", &gone["id"]).await;
    let (status, original) = call(&server, "export_prompts", json!({})).await;
    assert_eq!(status, 200, "{original}");
    assert_eq!(original["version"], 1);
    assert_eq!(original["prompts"].as_array().unwrap().len(), 14);
    assert!(!original.to_string().contains("回收站里的不导出"));

    // 新的空库（只有示例）导入：示例内容相同而合并，其余新增；再导出与原来的一模一样。
    let fresh = Workspace::new("");
    let other = fresh.serve().await;
    let (status, result) = call(&other, "import_prompts", json!({ "data": original })).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(result, json!({"added": 2, "merged": 12}));
    let (_, copy) = call(&other, "export_prompts", json!({})).await;
    assert_eq!(exported(&copy), exported(&original));
    let used_copy = list(&other, json!({"search": "霓虹"})).await;
    assert_eq!(used_copy["items"][0]["use_count"], 2);

    // 再导入一次：全部合并，一条都不多。
    let rows = prompt_rows(&fresh);
    let (_, again) = call(&other, "import_prompts", json!({ "data": original })).await;
    assert_eq!(again, json!({"added": 0, "merged": 14}));
    assert_eq!(prompt_rows(&fresh), rows);

    // 坏文件整份不导入：原因指出哪一条的哪个字段；前面好的那几条也没有进库。
    let good = json!({"title": "好的", "content": "一条全新的好提示词"});
    let broken = [
        (
            json!({"version": 1, "prompts": [good, {"title": 123, "content": "x"}]}),
            "prompts[1].title",
        ),
        (
            json!({"version": 1, "prompts": [good, {"title": "缺内容"}]}),
            "prompts[1]",
        ),
        (
            json!({"version": 1, "prompts": [good, {"content": "x", "color": "red"}]}),
            "prompts[1]",
        ),
        (
            json!({"version": 1, "prompts": [good, {"content": "x", "tags": ["长".repeat(31)]}]}),
            "prompts[1]：标签",
        ),
        (json!({"version": 2, "prompts": [good]}), "版本是 2"),
        (json!({"prompts": [good]}), "version"),
        (json!([good]), "格式不对"),
    ];
    for (data, reason) in broken {
        let (status, body) = call(&other, "import_prompts", json!({ "data": data })).await;
        assert_eq!(status, 400, "{data}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{data}: {message}");
    }
    assert_eq!(prompt_rows(&fresh), rows);
    assert_eq!(
        list(&other, json!({"search": "全新的好提示词"})).await["items"],
        json!([])
    );
}

#[tokio::test]
async fn images_can_be_starred_and_filtered_by_favourite() {
    let ws = Workspace::new("");
    let server = ws.serve().await;
    let mut ids = Vec::new();
    for prompt in ["收藏的", "没收藏的"] {
        let (status, saved) = studio_generate(&server, prompt).await;
        assert_eq!(status, 200, "{saved}");
        ids.push(saved["id"].clone());
    }
    let (status, on) = call(
        &server,
        "set_image_favourite",
        json!({"id": ids[0], "favourite": true}),
    )
    .await;
    assert_eq!((status, on), (200, json!(true)));
    let (_, starred) = call(
        &server,
        "list_images",
        json!({"query": {"favourite": true}}),
    )
    .await;
    let items = starred["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{starred}");
    assert_eq!(
        (&items[0]["id"], &items[0]["favourite"]),
        (&ids[0], &json!(true))
    );
    let (_, all) = call(&server, "list_images", json!({"query": {}})).await;
    let flags: Vec<(&Value, &Value)> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (&i["id"], &i["favourite"]))
        .collect();
    assert_eq!(flags, [(&ids[1], &json!(false)), (&ids[0], &json!(true))]);
    let (_, detail) = call(&server, "get_image", json!({"id": ids[0]})).await;
    assert_eq!(detail["favourite"], true);

    // 取消收藏；不存在的图 404。
    call(
        &server,
        "set_image_favourite",
        json!({"id": ids[0], "favourite": false}),
    )
    .await;
    let (_, starred) = call(
        &server,
        "list_images",
        json!({"query": {"favourite": true}}),
    )
    .await;
    assert_eq!(starred["items"], json!([]));
    let (status, _) = call(
        &server,
        "set_image_favourite",
        json!({"id": "0000", "favourite": true}),
    )
    .await;
    assert_eq!(status, 404);
}
