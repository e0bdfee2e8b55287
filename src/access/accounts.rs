//! 团队账号（#38）：谁登录了、能做什么。
//!
//! - [`Directory`]：全部账号的内存快照（没有密码哈希），每 2 秒从库里重读一次——命令行
//!   （`drafting-factory user disable …`）或集群里别的实例改了账号，这里 2 秒内跟上；本实例上改的立即重读。
//!   会话记着建立时账号的 `epoch`，账号停用、改了密码（`epoch` 加一）或被删掉，会话在下一个请求就不再认。
//! - [`Person`]：当前请求的人，守卫放进请求扩展（[`Viewer`]）。没有账号的会话（共用的工作台密码、管理员密码、
//!   登录链接）是 `Viewer(None)`：照以前的规则，什么都能看。
//! - 权限的判断都在这里：[`Viewer::may_touch`]（删、改别人的东西要管理员）、[`Viewer::gallery_owner`]（图库看谁的）。

use crate::storage::accounts::AccountRow;
use crate::storage::Storage;
use crate::types::account::{AccountLimits, AccountRole, Me};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// 多久从库里重读一次账号（命令行与别的实例的改动在这之内生效）。
pub const FOLLOW_EVERY: Duration = Duration::from_secs(2);
/// “最近来过”多久写一次库。
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// 快照里的一个账号。
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    pub display_name: String,
    pub role: AccountRole,
    pub disabled: bool,
    pub epoch: i64,
    pub limits: AccountLimits,
}

impl From<&AccountRow> for Known {
    fn from(a: &AccountRow) -> Self {
        Known {
            display_name: a.display_name.clone(),
            role: a.role,
            disabled: a.disabled,
            epoch: a.epoch,
            limits: a.limits,
        }
    }
}

/// 当前请求的人。
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub display_name: String,
    pub admin: bool,
}

/// 请求扩展：当前请求的人（没有账号的会话与没有会话时为空）。
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Viewer(pub Option<Person>);

impl Viewer {
    /// 记在批次、图片、提示词上的所属账号（没有账号时为空字符串）。
    pub fn owner(&self) -> String {
        self.0.as_ref().map(|p| p.name.clone()).unwrap_or_default()
    }

    /// 能不能删、改 `owner` 的东西：自己的、没有主人的（账号出现之前的）都能；别人的要管理员。
    /// 没有账号的会话（共用密码）照以前的规则，都能。
    pub fn may_touch(&self, owner: &str) -> bool {
        match &self.0 {
            None => true,
            Some(p) => p.admin || owner.is_empty() || owner == p.name,
        }
    }

    /// 图库只看谁的：`mine` 时看自己的；`private` 时成员只能看自己的（管理员照样看全部）。
    pub fn gallery_owner(&self, mine: bool, private: bool) -> Option<String> {
        let person = self.0.as_ref()?;
        (mine || (private && !person.admin)).then(|| person.name.clone())
    }

    /// 不能改动 `owner` 的东西时 403（`what` 如“个批次”“张图”）。
    pub fn check_touch(&self, owner: &str, what: &str) -> Result<(), crate::error::ApiError> {
        if self.may_touch(owner) {
            Ok(())
        } else {
            Err(crate::error::ApiError::Forbidden(format!(
                "这{what}是账号“{owner}”的：只有他自己或管理员能改动"
            )))
        }
    }

    pub fn me(&self) -> Option<Me> {
        self.0.as_ref().map(|p| Me {
            name: p.name.clone(),
            display_name: p.display_name.clone(),
            admin: p.admin,
        })
    }
}

/// 服务器函数里取当前请求的人（守卫放进请求扩展的；没有时为空）。
pub async fn current() -> Viewer {
    leptos_axum::extract::<axum::Extension<Viewer>>()
        .await
        .map(|axum::Extension(viewer)| viewer)
        .unwrap_or_default()
}

/// 全部账号的快照（见模块说明）。
#[derive(Clone, Default)]
pub struct Directory {
    known: Arc<ArcSwap<HashMap<String, Known>>>,
    /// 账号最近一次写“来过”的时刻。
    touched: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Directory {
    /// 有没有账号（停用的也算）：有账号时工作台一定要登录。
    pub fn any(&self) -> bool {
        !self.known.load().is_empty()
    }

    /// 这个账号能用（在、没停用）、会话记着的 `epoch` 对得上时，它是谁。
    pub fn active(&self, name: &str, epoch: i64) -> Option<Person> {
        let known = self.known.load();
        let k = known.get(name)?;
        (!k.disabled && k.epoch == epoch).then(|| Person {
            name: name.to_string(),
            display_name: k.display_name.clone(),
            admin: k.role == AccountRole::Admin,
        })
    }

    /// 这个账号能不能用（`/v1` 密钥的主人）。
    pub fn enabled(&self, name: &str) -> bool {
        self.known.load().get(name).is_some_and(|k| !k.disabled)
    }

    /// 这个账号的额度（没有这个账号时为空）。
    pub fn limits(&self, name: &str) -> Option<AccountLimits> {
        self.known.load().get(name).map(|k| k.limits)
    }

    /// 换上新读出的账号。
    pub fn replace(&self, rows: &[AccountRow]) {
        let fresh: HashMap<String, Known> = rows
            .iter()
            .map(|a| (a.name.clone(), Known::from(a)))
            .collect();
        if **self.known.load() != fresh {
            self.known.store(Arc::new(fresh));
        }
    }

    /// 从库里重读。读不出时照旧，记一行日志。
    pub async fn reload(&self, storage: &Storage) {
        match storage
            .with_db(|c| Ok(crate::storage::accounts::all(c)?))
            .await
        {
            Ok(rows) => self.replace(&rows),
            Err(e) => tracing::warn!("读不出账号表（照上次读到的）：{e}"),
        }
    }

    /// 一直跟着库（每 [`FOLLOW_EVERY`] 重读一次）。
    pub async fn follow(self, storage: Storage) {
        let mut tick = tokio::time::interval(FOLLOW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.reload(&storage).await;
        }
    }

    /// 记下这个人来过（同一个账号每分钟最多写一次库）。
    pub fn seen(&self, storage: &Storage, name: &str) {
        let now = Instant::now();
        {
            let mut touched = self.touched.lock().expect("锁未被毒化");
            if touched
                .get(name)
                .is_some_and(|at| now.duration_since(*at) < TOUCH_EVERY)
            {
                return;
            }
            touched.insert(name.to_string(), now);
        }
        let (storage, names) = (storage.clone(), vec![name.to_string()]);
        tokio::spawn(async move {
            if let Err(e) = storage
                .with_db(move |c| Ok(crate::storage::accounts::touch(c, &names)?))
                .await
            {
                tracing::warn!("记不下账号最近来过的时间：{e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, role: AccountRole, disabled: bool, epoch: i64) -> AccountRow {
        AccountRow {
            name: name.into(),
            display_name: name.into(),
            password_hash: String::new(),
            role,
            disabled,
            epoch,
            limits: AccountLimits::default(),
            created_at: String::new(),
            last_seen_at: None,
        }
    }

    #[test]
    fn a_session_counts_only_while_its_account_is_enabled_and_unchanged() {
        let dir = Directory::default();
        assert!(!dir.any());
        dir.replace(&[row("alice", AccountRole::Member, false, 0)]);
        assert!(dir.active("alice", 0).is_some());
        assert!(dir.active("bob", 0).is_none());
        dir.replace(&[row("alice", AccountRole::Member, false, 1)]);
        assert!(dir.active("alice", 0).is_none(), "改了密码：旧会话不认");
        dir.replace(&[row("alice", AccountRole::Member, true, 1)]);
        assert!(dir.active("alice", 1).is_none(), "停用了");
        assert!(dir.any(), "停用的账号也算有账号");
    }

    #[test]
    fn members_touch_only_their_own_things() {
        let member = Viewer(Some(Person {
            name: "alice".into(),
            display_name: "A".into(),
            admin: false,
        }));
        assert!(member.may_touch("alice") && member.may_touch(""));
        assert!(!member.may_touch("bob"));
        let admin = Viewer(Some(Person {
            name: "root".into(),
            display_name: "R".into(),
            admin: true,
        }));
        assert!(admin.may_touch("bob"));
        assert!(Viewer(None).may_touch("bob"));
        assert_eq!(member.gallery_owner(false, false), None);
        assert_eq!(member.gallery_owner(false, true), Some("alice".into()));
        assert_eq!(admin.gallery_owner(false, true), None);
        assert_eq!(admin.gallery_owner(true, true), Some("root".into()));
    }
}
