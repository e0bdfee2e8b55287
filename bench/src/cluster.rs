//! f. 多实例（#19）：同一次运行里比较一个实例与两个实例（元数据在 PostgreSQL、图片在 S3 兼容的对象存储），
//! 并以单机默认（SQLite + 本地目录）作参照。负载发生器把连接轮流分给两个实例（相当于前面的负载均衡）。
//!
//! PostgreSQL 与 S3（PyPI 的 moto 独立服务器）用集成测试的同一套启动代码（`tests/it/common/`），
//! 由 `bash scripts/install-tools.sh --e2e` 装好。

#[allow(dead_code)]
#[path = "../../tests/it/common/postgres.rs"]
mod postgres;
#[allow(dead_code)]
#[path = "../../tests/it/common/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "../../tests/it/common/s3.rs"]
mod s3;

use crate::cases::{direct, measure, ours, Row};
use crate::load::Limit;
use crate::procs::{self, free_port};
use crate::Settings;
use std::path::Path;

/// 并发数（两个实例时各分一半连接）。
pub const CONCURRENCY: usize = 16;

pub const DIRECT: &str = "直接调用演示上游";
pub const SINGLE_LOCAL: &str = "一个实例：SQLite + 本地目录";
pub const PG_LOCAL: &str = "一个实例：PostgreSQL + 本地目录";
pub const ONE: &str = "一个实例：PostgreSQL + S3";
pub const TWO: &str = "两个实例：PostgreSQL + S3";

pub async fn run(settings: &Settings, work: &Path) -> anyhow::Result<Vec<Row>> {
    eprintln!("== f. 多实例（PostgreSQL + S3，并发 {CONCURRENCY}）");
    let work = work.join("cluster");
    let bucket = s3::S3::start().await;
    let pg = tokio::task::spawn_blocking(postgres::database).await?;
    let demo = procs::demo(&settings.bin, free_port(), &["--max-side", "64"]).await?;
    let limit = Limit {
        requests: settings.max_requests,
        duration: settings.duration,
    };
    let mut rows = vec![measure(&direct(&demo), None, CONCURRENCY, limit, false).await];

    let local = procs::server_config(&[("demo", &demo.url)], "");
    let server = procs::server(&settings.bin, &work.join("local"), free_port(), &local).await?;
    rows.push(labelled(
        measure(&ours(&server), Some(&server), CONCURRENCY, limit, false).await,
        SINGLE_LOCAL,
    ));
    drop(server);

    // 只把元数据换成 PostgreSQL（图片仍在本地目录）：分开看库与对象存储各占多少。
    let pg_only = tokio::task::spawn_blocking(postgres::database).await?;
    let pg_local = local.replace(
        "root = \"storage\"\n",
        &format!("root = \"storage\"\ndatabase = \"{pg_only}\"\n"),
    );
    let server = procs::server(
        &settings.bin,
        &work.join("pg-local"),
        free_port(),
        &pg_local,
    )
    .await?;
    rows.push(labelled(
        measure(&ours(&server), Some(&server), CONCURRENCY, limit, false).await,
        PG_LOCAL,
    ));
    drop(server);

    // 两个实例用同一个库、同一个桶、同一份配置（设置也共用）。
    let shared = procs::server_config(
        &[("demo", &demo.url)],
        &format!(
            "\n[storage.s3]\nendpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key_id = \"bench\"\nsecret_access_key = \"bench-secret\"\n\n[cluster]\nshared_settings = true\n",
            bucket.endpoint()
        ),
    )
    .replace(
        "root = \"storage\"\n",
        &format!("root = \"s3://{}/bench\"\ndatabase = \"{pg}\"\n", bucket.name),
    );
    let a = procs::server(&settings.bin, &work.join("a"), free_port(), &shared).await?;
    rows.push(labelled(
        measure(&ours(&a), Some(&a), CONCURRENCY, limit, false).await,
        ONE,
    ));
    let b = procs::server(&settings.bin, &work.join("b"), free_port(), &shared).await?;
    let mut both = ours(&a);
    both.mirrors = vec![format!("{}/v1/images/generations", b.url)];
    rows.push(labelled(
        measure(&both, Some(&a), CONCURRENCY, limit, false).await,
        TWO,
    ));
    Ok(rows)
}

fn labelled(mut row: Row, label: &str) -> Row {
    row.target = label.into();
    row
}
