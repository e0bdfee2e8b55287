//! 命令行的 `backup`、`restore` 与 `check [--repair]`（做事的是 `crate::storage::backup` 与 `crate::storage::repair`）。
//! 退出码：0 成功（`check`：没有新问题，或已修复）；1 失败或 `check` 发现了问题；2 参数或配置不对。

use crate::storage::{backup, repair};
use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct BackupArgs {
    /// 配置文件（取其中的数据库位置、存储根与对象存储的连接）。
    #[arg(long, default_value = "factory.toml")]
    config: PathBuf,
    /// 备份写到这个目录（不存在或空目录）。
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// 新机器的配置文件：图写进它的存储根，数据库写到它的 `storage.database`（两处都要是空的）。
    #[arg(long, default_value = "factory.toml")]
    config: PathBuf,
    /// `backup` 写出的目录。
    #[arg(long, value_name = "DIR")]
    from: PathBuf,
}

#[derive(Args)]
pub struct CheckArgs {
    /// 配置文件。
    #[arg(long, default_value = "factory.toml")]
    config: PathBuf,
    /// 修复：多余与不完整的文件挪到存储根的 quarantine/ 下，缺文件的记录标上“缺失 / 不完整”。不删任何东西。
    #[arg(long)]
    repair: bool,
}

type Outcome = Result<String, (u8, String)>;

fn load(path: &std::path::Path) -> Result<crate::config::Config, (u8, String)> {
    crate::config::load(path)
        .map(|loaded| loaded.config)
        .map_err(|e| (2, format!("配置文件 {} 有误：{e}", path.display())))
}

fn size(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_048_576.0)
}

/// 以下三个都是阻塞调用：`crate::cli` 在阻塞线程里调用并打印结果。
pub fn backup(args: BackupArgs) -> Outcome {
    {
        let config = load(&args.config)?;
        let storage = &config.storage;
        if storage.database_is_postgres() {
            return Err((2, "备份失败：元数据在 PostgreSQL 里——请用 pg_dump 备份数据库（图在对象存储里时用它自己的版本管理或复制）；这个命令备份单机的 SQLite 与它的图".into()));
        }
        let blobs = crate::storage::Blobs::new(storage.s3.clone());
        let m = backup::backup(&storage.database_path(), &blobs, &args.to)
            .map_err(|e| (1, format!("备份失败（什么都没留下）：{e}")))?;
        let mut text = format!(
            "备份完成：{}\n图片 {} 张、参考图 {} 份，共 {} 个文件 {}；签名密钥{}",
            args.to.display(),
            m.images,
            m.uploads,
            m.files.len(),
            size(m.total_bytes()),
            if m.url_signing_key {
                "已带上"
            } else {
                "没有（还没生成过签名链接）"
            }
        );
        if !m.missing.is_empty() {
            text += &format!(
                "\n注意：{} 条记录备份时就没有文件（清单的 missing 里有它们的 id）：{}",
                m.missing.len(),
                m.missing
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("、")
            );
        }
        Ok(text)
    }
}

pub fn restore(args: RestoreArgs) -> Outcome {
    {
        let config = load(&args.config)?;
        let storage = &config.storage;
        if storage.database_is_postgres() {
            return Err((2, "恢复失败：配置里的元数据在 PostgreSQL 里——先恢复成 SQLite（配置的 storage.database 写一个文件），再用 migrate --to-postgres 搬过去".into()));
        }
        let blobs = crate::storage::Blobs::new(storage.s3.clone());
        let root = storage.root.to_string_lossy().into_owned();
        let m = backup::restore(&args.from, &blobs, &root, &storage.database_path())
            .map_err(|e| (1, format!("恢复失败：{e}")))?;
        Ok(format!(
            "恢复完成：图片 {} 张、参考图 {} 份（{} 个文件，逐个核对过 SHA-256）写进 {root}；数据库 {}{}。现在可以启动服务了",
            m.images,
            m.uploads,
            m.files.len(),
            storage.database_path().display(),
            if m.url_signing_key { "，签名密钥已放回（旧的签名链接照常可用）" } else { "" }
        ))
    }
}

pub fn check(args: CheckArgs) -> Outcome {
    {
        let config = load(&args.config)?;
        let storage = &config.storage;
        let db = crate::storage::open_database(&storage.database_path().to_string_lossy())
            .map_err(|e| (1, format!("打不开元数据库：{e}")))?;
        let blobs = crate::storage::Blobs::new(storage.s3.clone());
        let root = storage.root.to_string_lossy().into_owned();
        let findings = db
            .run(|c| repair::check(c, &blobs, &root))
            .map_err(|e| (1, format!("核对失败：{e}")))?;
        if findings.is_clean() {
            return Ok(format!("核对完成，没有新问题：{findings}"));
        }
        if !args.repair {
            return Err((1, format!("核对发现问题：{findings}\n用 check --repair 修复（挪开文件、标记记录，不删任何东西）")));
        }
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let repaired = db
            .run(|c| repair::repair(c, &blobs, &findings, &stamp))
            .map_err(|e| (1, format!("修复失败：{e}")))?;
        let mut text = format!(
            "已修复：{findings}\n挪开 {} 个文件（在存储根的 quarantine/{stamp}/ 下，原来的相对路径不变），标记 {} 条记录",
            repaired.moved.len(),
            repaired.marked
        );
        for path in repaired.moved.iter().take(20) {
            text += &format!("\n  → {path}");
        }
        Ok(text)
    }
}
