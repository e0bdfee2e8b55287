//! 命令行：`drafting-factory [serve] [--config PATH] [--listen ADDR]` 与 `drafting-factory demo-upstream …`。

use crate::demo::{self, DemoOptions};
use crate::server;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "drafting-factory",
    version,
    about = "绘图工厂：Gemini 图像工作台与 OpenAI 兼容图像网关"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// 启动工作台与网关（默认）。
    Serve(ServeArgs),
    /// 单独启动演示上游（Gemini 替身），带故障开关，供测试与基准测试使用。
    DemoUpstream(DemoArgs),
    /// 从标准输入读一行密码，打印它的 argon2 哈希（填到配置的 auth.admin_password_hash）。
    HashPassword,
    /// 把本地目录里的图片、缩略图与参考图搬进 S3 兼容的对象存储，并写出指向它的新数据库。
    /// 源数据库与本地文件都不改；中断后再跑，已经搬好的不再复制。对象存储的连接取配置的 [storage.s3] 与 AWS_* 环境变量。
    Migrate(MigrateArgs),
    /// 备份：元数据库的一致快照、全部图与参考图、签名密钥，写进一个新目录（服务运行时也能备份）。
    Backup(crate::cli_backup::BackupArgs),
    /// 在新机器上从 backup 的目录恢复（先逐个核对；数据库或存储根已有数据时拒绝）。
    Restore(crate::cli_backup::RestoreArgs),
    /// 核对记录与文件；--repair 把多余、半写与不完整的文件挪到 quarantine/，缺文件的记录标上问题（不删任何东西）。
    Check(crate::cli_backup::CheckArgs),
    /// 管理团队账号：user add [--admin] 名字、user disable / enable / passwd 名字、user list（服务运行时也能用，2 秒内生效）。
    User(crate::cli_user::UserArgs),
    /// 检查本机上运行的服务是否健康（容器的 HEALTHCHECK 用）：`GET {url}/healthz` 返回 200 即退出码 0。
    Healthcheck {
        /// 服务的地址。
        #[arg(long, default_value = "http://127.0.0.1:3000")]
        url: String,
    },
}

#[derive(Args, Default)]
struct ServeArgs {
    /// 配置文件路径；文件不存在时使用全部默认值。
    #[arg(long, default_value = "factory.toml")]
    config: PathBuf,
    /// 覆盖配置里的监听地址，例如 127.0.0.1:3000；端口 0 表示由系统分配。
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    listen: Option<SocketAddr>,
}

#[derive(Args)]
struct MigrateArgs {
    /// 配置文件（取其中的数据库位置与对象存储的连接）。
    #[arg(long, default_value = "factory.toml")]
    config: PathBuf,
    /// 图片搬到哪里：s3://桶/前缀（不给则图片留在原处）。
    #[arg(long, value_name = "s3://桶/前缀")]
    to_s3: Option<String>,
    /// 新的 SQLite 数据库文件（不能是原来那个；要同时给 --to-s3）。
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "to_postgres",
        required_unless_present = "to_postgres"
    )]
    to_database: Option<PathBuf>,
    /// 元数据搬进 PostgreSQL：postgres://用户:密码@主机:端口/库名（库要已建好，表由本程序建）。
    #[arg(long, value_name = "postgres://…")]
    to_postgres: Option<String>,
}

#[derive(Args)]
struct DemoArgs {
    /// 监听地址；端口 0 表示由系统分配。
    #[arg(long, default_value = "127.0.0.1:8787", value_parser = parse_listen)]
    listen: SocketAddr,
    #[command(flatten)]
    options: DemoOptions,
}

/// `--listen` 的解析：错误用中文说明格式（命令行上允许端口 0，由系统分配）。
fn parse_listen(value: &str) -> Result<SocketAddr, String> {
    value.trim().parse().map_err(|_| {
        let port = value.rsplit(':').next().unwrap_or("");
        if port.parse::<u64>().is_ok_and(|p| p > 65_535) {
            format!("端口 {port} 超出范围，必须在 0–65535 之间")
        } else {
            format!("“{value}”不是有效的“IP:端口”地址（例如 127.0.0.1:3000 或 0.0.0.0:3000）")
        }
    })
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Some(Command::DemoUpstream(args)) => run_demo(args).await,
        Some(Command::HashPassword) => run_hash_password(),
        Some(Command::Healthcheck { url }) => run_healthcheck(&url).await,
        Some(Command::Migrate(args)) => run_migrate(args).await,
        Some(Command::User(args)) => blocking(move || crate::cli_user::run(args)).await,
        Some(Command::Backup(args)) => blocking(move || crate::cli_backup::backup(args)).await,
        Some(Command::Restore(args)) => blocking(move || crate::cli_backup::restore(args)).await,
        Some(Command::Check(args)) => blocking(move || crate::cli_backup::check(args)).await,
        Some(Command::Serve(args)) => run_serve(args).await,
        None => run_serve(cli.serve).await,
    }
}

/// 在阻塞线程里做一个子命令（元数据库的连接，含 PostgreSQL 的同步客户端，只在阻塞线程里开、用、关），
/// 成功时把它的话打印到标准输出、退出码 0；失败时打印到标准错误，退出码是它给的（1 失败，2 参数或配置不对）。
async fn blocking(
    work: impl FnOnce() -> Result<String, (u8, String)> + Send + 'static,
) -> ExitCode {
    let done = tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err((1, e.to_string())));
    match done {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err((code, message)) => {
            eprintln!("{message}");
            ExitCode::from(code)
        }
    }
}

async fn run_serve(args: ServeArgs) -> ExitCode {
    let loaded = match crate::config::load(&args.config) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("启动失败：配置文件 {} 有误：{e}", args.config.display());
            return ExitCode::from(2);
        }
    };
    match server::serve(loaded, args.listen).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("启动失败：{e}");
            ExitCode::from(1)
        }
    }
}

async fn run_migrate(args: MigrateArgs) -> ExitCode {
    let loaded = match crate::config::load(&args.config) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("迁移失败：配置文件 {} 有误：{e}", args.config.display());
            return ExitCode::from(2);
        }
    };
    let to_s3 = args
        .to_s3
        .as_deref()
        .map(|t| t.trim().trim_end_matches('/').to_string());
    if let Some(target) = &to_s3 {
        if let Err(why) = target
            .strip_prefix(crate::storage::blobs::S3_SCHEME)
            .ok_or_else(|| format!("“{target}”应写成 s3://桶/前缀"))
            .and_then(crate::storage::blobs::check_s3_location)
        {
            eprintln!("迁移失败：--to-s3 {why}");
            return ExitCode::from(2);
        }
    }
    let storage = &loaded.config.storage;
    if storage.database_is_postgres() {
        eprintln!("迁移失败：配置里的元数据已经在 PostgreSQL 里；migrate 搬的是单机的 SQLite 文件");
        return ExitCode::from(2);
    }
    let target = match (&args.to_postgres, &args.to_database) {
        (Some(url), _) => {
            if !crate::config::is_postgres_url(url) || url.parse::<postgres::Config>().is_err() {
                eprintln!("迁移失败：--to-postgres 应写成 postgres://用户:密码@主机:端口/库名");
                return ExitCode::from(2);
            }
            crate::storage::migrate::Target::Postgres(url.clone())
        }
        (None, Some(path)) => crate::storage::migrate::Target::Sqlite(path.clone()),
        (None, None) => unreachable!("clap 要求二者之一"),
    };
    // 给人看的新数据库位置（连接串去掉密码）。
    let shown_database = crate::config::StorageConfig {
        database: match &target {
            crate::storage::migrate::Target::Postgres(url) => PathBuf::from(url),
            crate::storage::migrate::Target::Sqlite(path) => path.clone(),
        },
        ..Default::default()
    }
    .database_display();
    let source_db = storage.database_path();
    let blobs = crate::storage::Blobs::new(storage.s3.clone());
    let to = to_s3.clone();
    let done = tokio::task::spawn_blocking(move || {
        crate::storage::migrate::run(&source_db, &blobs, to.as_deref(), &target)
    })
    .await;
    match done {
        Ok(Ok(report)) => {
            println!("迁移完成：{report}");
            let root = to_s3.unwrap_or_else(|| storage.root.display().to_string());
            println!(
                "新数据库：{shown_database}。停掉服务，把配置改成下面这样再启动（[storage.s3] 照旧；连接串照你给的写，这里隐去了密码）：\n[storage]\nroot = \"{root}\"\ndatabase = \"{shown_database}\""
            );
            ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("迁移失败：{e}（源数据库与本地文件没有改动，可以修好后再跑一次）");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("迁移失败：{e}");
            ExitCode::from(1)
        }
    }
}

fn run_hash_password() -> ExitCode {
    use std::io::BufRead;
    eprintln!("请输入管理员密码（输入后按 Enter）：");
    let mut line = String::new();
    if std::io::stdin().lock().read_line(&mut line).is_err() {
        eprintln!("无法读取密码");
        return ExitCode::from(2);
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.chars().count() < 8 {
        eprintln!("密码至少 8 个字符");
        return ExitCode::from(2);
    }
    match crate::access::login::hash_password(password) {
        Ok(hash) => {
            println!("{hash}");
            eprintln!("把上面这一行填到配置文件：[auth] admin_password_hash（管理员）或 studio_password_hash（工作台）= \"…\"");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

async fn run_healthcheck(url: &str) -> ExitCode {
    let url = format!("{}/healthz", url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .expect("HTTP 客户端的固定参数不会出错");
    match client.get(&url).send().await {
        Ok(res) if res.status().is_success() => ExitCode::SUCCESS,
        Ok(res) => {
            eprintln!("{url} 返回 {}", res.status());
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("无法访问 {url}：{e}");
            ExitCode::from(1)
        }
    }
}

async fn run_demo(args: DemoArgs) -> ExitCode {
    match demo::spawn(args.options, args.listen).await {
        Ok(addr) => {
            println!("演示上游已启动：http://{addr}");
            let _ = tokio::signal::ctrl_c().await;
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("启动失败：无法监听 {}：{e}", args.listen);
            ExitCode::from(1)
        }
    }
}
