//! `drafting-factory user …`：在命令行管理团队账号（#38）。服务运行时也能用：改动写进元数据库，
//! 运行中的服务 2 秒内跟上（停用、改密码的会话与 `/v1` 密钥随之失效，见 `crate::access::accounts`）。
//!
//! 密码：终端里输入两次（不回显）；标准输入不是终端时读第一行（脚本与测试用）。

use crate::admin::accounts as ops;
use crate::storage::accounts as rows;
use crate::types::account::{AccountChange, AccountRole, NewAccount};
use clap::{Args, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;

/// 操作记录里命令行的操作者。
const CLI_ACTOR: &str = "命令行";

#[derive(Args)]
pub struct UserArgs {
    /// 配置文件（取其中的元数据库位置）。
    #[arg(long, global = true, default_value = "factory.toml")]
    config: PathBuf,
    #[command(subcommand)]
    action: UserAction,
}

#[derive(Subcommand)]
enum UserAction {
    /// 新建账号（密码输入两次；标准输入不是终端时读第一行）。
    Add {
        /// 账号名（登录用）：字母、数字（可以是中文）与 _ - .，最多 32 个字符。
        name: String,
        /// 设为管理员（能打开设置页、管理账号）。
        #[arg(long)]
        admin: bool,
        /// 显示名（默认同账号名）。
        #[arg(long, default_value = "")]
        display: String,
    },
    /// 停用账号：它的会话与 /v1 密钥立即失效（运行中的服务 2 秒内）。
    Disable { name: String },
    /// 重新启用账号。
    Enable { name: String },
    /// 重设密码：它已有的会话全部作废。
    Passwd { name: String },
    /// 列出账号。
    List,
}

type Outcome = Result<String, (u8, String)>;

/// 做这个子命令（阻塞调用：`crate::cli` 在阻塞线程里调用它并打印结果）。
pub fn run(args: UserArgs) -> Outcome {
    let loaded = crate::config::load(&args.config)
        .map_err(|e| (2, format!("配置文件 {} 有误：{e}", args.config.display())))?;
    let database = loaded.config.storage.database_path();
    let db = crate::storage::open_database(&database.to_string_lossy())
        .map_err(|e| (1, format!("打不开元数据库：{e}")))?;
    let with_db = |work: DbWork| {
        db.run(|c| Ok::<_, crate::storage::sql::DbError>(work(c)))
            .map_err(|e| (1, format!("数据库错误：{e}")))?
    };
    match args.action {
        UserAction::Add {
            name,
            admin,
            display,
        } => {
            let password = read_password(&format!("为“{name}”设密码"))?;
            let new = NewAccount {
                name,
                display_name: display,
                password,
                role: if admin {
                    AccountRole::Admin
                } else {
                    AccountRole::Member
                },
                limits: Default::default(),
            };
            let row = ops::prepare_blocking(new).map_err(|e| (2, e.to_string()))?;
            with_db(Box::new(move |c| {
                if !ops::insert(c, &row).map_err(|e| (1, e.to_string()))? {
                    return Err((2, ops::taken(&row.name).to_string()));
                }
                let detail = format!("“{}”（{}）", row.name, row.role.label());
                record(c, "新建账号", &detail)?;
                Ok(format!("已新建账号“{}”（{}）", row.name, row.role.label()))
            }))
        }
        UserAction::Disable { name } => with_db(Box::new(move |c| switch(c, name, true))),
        UserAction::Enable { name } => with_db(Box::new(move |c| switch(c, name, false))),
        UserAction::Passwd { name } => {
            let password = read_password(&format!("为“{name}”设新密码"))?;
            crate::types::account::check_password(&password).map_err(|e| (2, e))?;
            let hash = crate::access::login::hash_password(&password).map_err(|e| (1, e))?;
            with_db(Box::new(move |c| {
                let current = rows::get(c, &name)
                    .map_err(|e| (1, e.to_string()))?
                    .ok_or_else(|| (2, format!("没有叫“{name}”的账号")))?;
                let (next, _) = ops::apply(current, &AccountChange::default(), Some(hash))
                    .map_err(|e| (2, e.to_string()))?;
                rows::update(c, &next).map_err(|e| (1, e.to_string()))?;
                record(c, "修改账号", &format!("“{name}”：重设了密码"))?;
                Ok(format!("已重设“{name}”的密码，它已有的会话全部作废"))
            }))
        }
        UserAction::List => with_db(Box::new(list)),
    }
}

/// 一件要在数据库连接上做的事。
type DbWork = Box<dyn FnOnce(&mut crate::storage::sql::Db<'_>) -> Outcome + Send>;

/// 列出账号。
fn list(c: &mut crate::storage::sql::Db<'_>) -> Outcome {
    let all = rows::all(c).map_err(|e| (1, e.to_string()))?;
    if all.is_empty() {
        return Ok("还没有账号（工作台用共用的工作台密码，或没有密码）".into());
    }
    Ok(all
        .iter()
        .map(|a| {
            format!(
                "{}\t{}\t{}\t{}",
                a.name,
                a.display_name,
                a.role.label(),
                if a.disabled { "已停用" } else { "在用" }
            )
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

/// 停用（`disabled`）或启用。
fn switch(c: &mut crate::storage::sql::Db<'_>, name: String, disabled: bool) -> Outcome {
    let current = rows::get(c, &name)
        .map_err(|e| (1, e.to_string()))?
        .ok_or_else(|| (2, format!("没有叫“{name}”的账号")))?;
    let all = rows::all(c).map_err(|e| (1, e.to_string()))?;
    let change = AccountChange {
        name: name.clone(),
        disabled: Some(disabled),
        ..Default::default()
    };
    let (next, what) = ops::apply(current, &change, None).map_err(|e| (2, e.to_string()))?;
    if what.is_empty() {
        return Ok(format!("“{name}”没有变化"));
    }
    ops::keeps_an_admin(&all, &next).map_err(|e| (2, e.to_string()))?;
    rows::update(c, &next).map_err(|e| (1, e.to_string()))?;
    record(c, "修改账号", &format!("“{name}”：{}", what.join("，")))?;
    Ok(format!(
        "“{name}”：{}（运行中的服务 2 秒内生效）",
        what.join("，")
    ))
}

fn record(
    c: &mut crate::storage::sql::Db<'_>,
    action: &str,
    detail: &str,
) -> Result<(), (u8, String)> {
    rows::record(c, CLI_ACTOR, action, detail).map_err(|e| (1, e.to_string()))
}

/// 读密码：终端里输入两次（不回显），不是终端时读标准输入的第一行。
fn read_password(prompt: &str) -> Result<String, (u8, String)> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("{prompt}（8 个字符以上）："))
            .map_err(|e| (2, format!("无法读取密码：{e}")))?;
        let second = rpassword::prompt_password("再输入一次：")
            .map_err(|e| (2, format!("无法读取密码：{e}")))?;
        if first != second {
            return Err((2, "两次输入的密码不一样，什么都没改".into()));
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| (2, format!("无法读取密码：{e}")))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
