//! 元数据库的一层薄接口：同一句 SQL 在 SQLite（默认，嵌入）与 PostgreSQL（多实例）上都能执行。
//!
//! 各模块只经由 `Db` 读写，写 SQL 时守这几条就两边都能跑：
//! - 参数写成 `?1`、`?2`…（或不带序号的 `?`）；发给 PostgreSQL 时换成 `$1`、`$2`…。
//! - `LIKE` 两边都不区分大小写（SQLite 本来如此，PostgreSQL 换成 `ILIKE`）。
//! - 整数列一律当 64 位整数读写（PostgreSQL 的表用 `BIGINT`）；布尔值存 0/1。
//! - `SUM`、`AVG` 的结果要 `CAST(… AS BIGINT)` / `CAST(… AS DOUBLE PRECISION)`（PostgreSQL 默认给 numeric）。
//! - 覆盖写用 `INSERT … ON CONFLICT (…) DO UPDATE SET …`，不用 SQLite 独有的 `INSERT OR REPLACE`。
//! - 不用 `json_each` 等只有一边有的函数。
//! - 参数只出现在 `?N IS NULL` 这类看不出类型的地方时写明类型：`CAST(?3 AS TEXT) IS NULL`
//!   （PostgreSQL 要在执行前知道每个参数的类型）。
//!
//! 参数与取出的值都经过 `Value`：参数按数据库推断出的列类型转换（布尔、各种宽度的整数），
//! 取出的值按目标的 Rust 类型检查（不符时报错，不悄悄截断）。

use std::sync::Arc;

/// 数据库操作的错误（SQLite、PostgreSQL、连接池，或取出的值与期望的类型不符）。
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", postgres_message(.0))]
    Postgres(#[from] postgres::Error),
    #[error("数据库连接池：{0}")]
    Pool(#[from] r2d2::Error),
    #[error("列 {column} 的值 {found} 不能当作 {wanted}")]
    Type {
        column: String,
        found: String,
        wanted: &'static str,
    },
    #[error("没有列 {0}")]
    NoColumn(String),
    #[error("查询没有返回任何行")]
    NoRows,
    #[error("数据库的结构已迁移到第 {found} 版，这个程序只认得到第 {known} 版：请用新版程序")]
    TooNew { found: usize, known: usize },
}

/// PostgreSQL 错误的说明：服务器报的错（代码与原文），或连接层的错误连同其原因。
fn postgres_message(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("PostgreSQL {}：{}", db.code().code(), db.message());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push('：');
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl DbError {
    /// 违反唯一约束（主键重复等）。
    pub fn is_unique_violation(&self) -> bool {
        match self {
            DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::ConstraintViolation
            }
            DbError::Postgres(e) => e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }
}

/// 一个参数或一个取出的值。
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// 能当作 SQL 参数的 Rust 值（见 `params!`）。
pub trait ToValue {
    fn to_value(&self) -> Value;
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(*self as i64)
    }
}
impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}
impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}
macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                // 本项目的计数与时长都远小于 i64::MAX；真超了就存最大值，不回绕成负数。
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_to_value!(u8, i32, i64, u32, u64, usize);

/// SQL 参数表：`params![a, b, c]`，各项可以是 `ToValue` 的任何类型（引用也行）。
#[macro_export]
macro_rules! sql_params {
    () => { &[] as &[$crate::storage::sql::Value] };
    ($($e:expr),+ $(,)?) => {
        &[$($crate::storage::sql::ToValue::to_value(&$e)),+] as &[$crate::storage::sql::Value]
    };
}
pub use crate::sql_params as params;

/// 数据库此刻的 Unix 毫秒（SQL 表达式）。几个实例比较时刻（报平安、租约）时都用数据库的钟，各实例的钟不准也不要紧。
pub fn now_ms(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
        Dialect::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
    }
}

/// `IN (…)` 的参数：占位符（`?1, ?2, …`）与对应的值。
pub fn in_list(items: &[String]) -> (String, Vec<Value>) {
    let marks: Vec<String> = (1..=items.len()).map(|i| format!("?{i}")).collect();
    (
        marks.join(", "),
        items.iter().map(|s| Value::Text(s.clone())).collect(),
    )
}

/// 从一列取出的值转成 Rust 类型。
pub trait FromValue: Sized {
    const NAME: &'static str;
    fn from_value(v: Value) -> Option<Self>;
}

impl FromValue for i64 {
    const NAME: &'static str = "整数";
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }
}
macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            const NAME: &'static str = stringify!($t);
            fn from_value(v: Value) -> Option<Self> {
                i64::from_value(v).and_then(|i| <$t>::try_from(i).ok())
            }
        }
    )*};
}
int_from_value!(u8, i32, u32, u64, usize);

impl FromValue for bool {
    const NAME: &'static str = "布尔值";
    fn from_value(v: Value) -> Option<Self> {
        i64::from_value(v).map(|i| i != 0)
    }
}
impl FromValue for f64 {
    const NAME: &'static str = "小数";
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Real(f) => Some(f),
            Value::Int(i) => Some(i as f64),
            _ => None,
        }
    }
}
impl FromValue for String {
    const NAME: &'static str = "文字";
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}
impl FromValue for Vec<u8> {
    const NAME: &'static str = "字节";
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Blob(b) => Some(b),
            _ => None,
        }
    }
}
impl FromValue for Value {
    const NAME: &'static str = "值";
    fn from_value(v: Value) -> Option<Self> {
        Some(v)
    }
}
impl<T: FromValue> FromValue for Option<T> {
    const NAME: &'static str = T::NAME;
    fn from_value(v: Value) -> Option<Self> {
        match v {
            Value::Null => Some(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// 取列用的下标：序号（从 0 起）或列名。
pub trait ColumnIndex {
    fn index(&self, names: &[String]) -> Result<usize, DbError>;
}
impl ColumnIndex for usize {
    fn index(&self, names: &[String]) -> Result<usize, DbError> {
        if *self < names.len() {
            Ok(*self)
        } else {
            Err(DbError::NoColumn(self.to_string()))
        }
    }
}
impl ColumnIndex for &str {
    fn index(&self, names: &[String]) -> Result<usize, DbError> {
        names
            .iter()
            .position(|n| n == self)
            .ok_or_else(|| DbError::NoColumn((*self).to_owned()))
    }
}

/// 查询结果的一行（已从数据库取出，与连接无关）。
#[derive(Debug, Clone)]
pub struct Row {
    names: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    /// 取一列并转成 `T`；类型不符是错误。
    pub fn get<T: FromValue>(&self, column: impl ColumnIndex) -> Result<T, DbError> {
        let i = column.index(&self.names)?;
        let v = self.values[i].clone();
        let found = format!("{v:?}");
        T::from_value(v).ok_or_else(|| DbError::Type {
            column: self.names[i].clone(),
            found,
            wanted: T::NAME,
        })
    }

    /// 由列名与值拼出一行（迁移时改写某列用）。
    pub fn new(names: Vec<String>, values: Vec<Value>) -> Self {
        Self {
            names: names.into(),
            values,
        }
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn values(&self) -> &[Value] {
        &self.values
    }
}

/// 哪一种数据库。
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// 打开着的元数据库：一条 SQLite 连接（一次一个人用），或 PostgreSQL 的连接池。
pub enum Database {
    Sqlite(std::sync::Mutex<rusqlite::Connection>),
    Postgres(r2d2::Pool<r2d2_postgres::PostgresConnectionManager<postgres::NoTls>>),
}

impl Database {
    /// 拿一条连接做 `f`（会阻塞：在 `spawn_blocking` 里调用）。
    pub fn run<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&mut Db<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        match self {
            Database::Sqlite(conn) => {
                let conn = conn.lock().expect("数据库锁未被毒化");
                f(&mut Db::Sqlite(&conn))
            }
            Database::Postgres(pool) => {
                let mut client = pool.get().map_err(DbError::from)?;
                f(&mut Db::Postgres(&mut client))
            }
        }
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Database::Sqlite(_) => Dialect::Sqlite,
            Database::Postgres(_) => Dialect::Postgres,
        }
    }
}

/// 一条数据库连接（在阻塞线程里用，见 `Storage::with_db`）。
pub enum Db<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a mut postgres::Client),
}

impl Db<'_> {
    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// 执行一句不返回行的 SQL，返回改动的行数。
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<usize, DbError> {
        match self {
            Db::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(params.iter().map(to_sqlite)))?)
            }
            Db::Postgres(c) => {
                let sql = postgres_sql(sql);
                Ok(c.execute(sql.as_str(), &pg_params(params))? as usize)
            }
        }
    }

    /// 执行一句查询，每行交给 `f`。
    pub fn query<T>(
        &mut self,
        sql: &str,
        params: &[Value],
        mut f: impl FnMut(&Row) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        match self {
            Db::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let names: Arc<[String]> =
                    stmt.column_names().iter().map(|s| s.to_string()).collect();
                let mut rows =
                    stmt.query(rusqlite::params_from_iter(params.iter().map(to_sqlite)))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let values = (0..names.len())
                        .map(|i| r.get_ref(i).map(from_sqlite))
                        .collect::<Result<Vec<_>, _>>()?;
                    out.push(f(&Row {
                        names: names.clone(),
                        values,
                    })?);
                }
                Ok(out)
            }
            Db::Postgres(c) => {
                let sql = postgres_sql(sql);
                let rows = c.query(sql.as_str(), &pg_params(params))?;
                let Some(first) = rows.first() else {
                    return Ok(Vec::new());
                };
                let names: Arc<[String]> = first
                    .columns()
                    .iter()
                    .map(|c| c.name().to_owned())
                    .collect();
                let mut out = Vec::with_capacity(rows.len());
                for r in &rows {
                    let values = (0..names.len())
                        .map(|i| r.try_get::<_, Value>(i))
                        .collect::<Result<Vec<_>, _>>()?;
                    out.push(f(&Row {
                        names: names.clone(),
                        values,
                    })?);
                }
                Ok(out)
            }
        }
    }

    /// 查询第一行；没有行时为 `None`。
    pub fn query_opt<T>(
        &mut self,
        sql: &str,
        params: &[Value],
        f: impl FnMut(&Row) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        Ok(self.query(sql, params, f)?.into_iter().next())
    }

    /// 查询恰好一行（聚合查询等）；没有行是错误。
    pub fn query_one<T>(
        &mut self,
        sql: &str,
        params: &[Value],
        f: impl FnMut(&Row) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.query_opt(sql, params, f)?.ok_or(DbError::NoRows)
    }

    /// 执行多句 SQL（迁移脚本），不带参数。
    pub fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Db::Postgres(c) => Ok(c.batch_execute(sql)?),
        }
    }

    /// 在一个事务里做 `f`：返回 `Ok` 才提交，返回错误或中途 panic 都回滚。不能嵌套。
    pub fn transaction<T, E: From<DbError>>(
        &mut self,
        f: impl FnOnce(&mut Db<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        // SQLite 一开始就拿写锁：同一个库的另一个进程（migrate 读源库等）不会让事务中途因升级锁而失败。
        let begin = match self.dialect() {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        };
        self.batch(begin)?;
        let mut guard = Rollback {
            db: self,
            done: false,
        };
        let result = f(guard.db);
        match result {
            Ok(v) => {
                // 提交失败时 guard 照样回滚：连接不会停在半个事务里。
                guard.db.batch("COMMIT")?;
                guard.done = true;
                Ok(v)
            }
            Err(e) => Err(e), // guard 回滚
        }
    }
}

/// 事务没走到提交（出错或 panic）时回滚，连接不会带着半个事务回到池里。
struct Rollback<'r, 'a> {
    db: &'r mut Db<'a>,
    done: bool,
}

impl Drop for Rollback<'_, '_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.db.batch("ROLLBACK");
        }
    }
}

fn to_sqlite(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as S;
    match v {
        Value::Null => S::Null,
        Value::Int(i) => S::Integer(*i),
        Value::Real(f) => S::Real(*f),
        Value::Text(s) => S::Text(s.clone()),
        Value::Blob(b) => S::Blob(b.clone()),
    }
}

fn from_sqlite(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef as S;
    match v {
        S::Null => Value::Null,
        S::Integer(i) => Value::Int(i),
        S::Real(f) => Value::Real(f),
        S::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        S::Blob(b) => Value::Blob(b.to_vec()),
    }
}

fn pg_params(params: &[Value]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| p as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

/// 把本项目的 SQL 换成 PostgreSQL 的写法：`?N` → `$N`（不带序号的 `?` 依次编号），`LIKE` → `ILIKE`。
/// 引号里的内容原样保留。
pub fn postgres_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut next = 0u32;
    let mut quote: Option<char> = None;
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.eq_ignore_ascii_case("LIKE") {
            out.push_str("ILIKE");
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        flush(&mut word, &mut out);
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    next += 1;
                    digits = next.to_string();
                }
                out.push('$');
                out.push_str(&digits);
            }
            c => out.push(c),
        }
    }
    flush(&mut word, &mut out);
    out
}

mod pg {
    use super::Value;
    use bytes::BytesMut;
    use postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};
    use std::error::Error;

    type BoxError = Box<dyn Error + Sync + Send>;

    /// 参数按 PostgreSQL 推断出的类型写：整数可写进各种宽度的整数列与布尔列。
    impl ToSql for Value {
        fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
            match (self, ty) {
                (Value::Null, _) => Ok(IsNull::Yes),
                (Value::Int(i), &Type::INT8) => i.to_sql(ty, out),
                (Value::Int(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
                (Value::Int(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
                (Value::Int(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
                (Value::Int(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
                (Value::Int(i), &Type::TEXT | &Type::VARCHAR) => i.to_string().to_sql(ty, out),
                (Value::Real(f), &Type::FLOAT8) => f.to_sql(ty, out),
                (Value::Real(f), &Type::FLOAT4) => (*f as f32).to_sql(ty, out),
                (Value::Text(s), ty) if <String as ToSql>::accepts(ty) => s.to_sql(ty, out),
                (Value::Blob(b), &Type::BYTEA) => b.to_sql(ty, out),
                (v, ty) => Err(format!("参数 {v:?} 不能写进类型 {ty} 的位置").into()),
            }
        }

        fn accepts(_: &Type) -> bool {
            true
        }

        to_sql_checked!();
    }

    impl<'a> FromSql<'a> for Value {
        fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
            Ok(match *ty {
                Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
                Type::INT4 => Value::Int(i32::from_sql(ty, raw)?.into()),
                Type::INT2 => Value::Int(i16::from_sql(ty, raw)?.into()),
                Type::BOOL => Value::Int(bool::from_sql(ty, raw)?.into()),
                Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
                Type::FLOAT4 => Value::Real(f32::from_sql(ty, raw)?.into()),
                Type::BYTEA => Value::Blob(Vec::<u8>::from_sql(ty, raw)?),
                _ => Value::Text(String::from_sql(ty, raw)?),
            })
        }

        fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
            Ok(Value::Null)
        }

        fn accepts(ty: &Type) -> bool {
            *ty == Type::INT8
                || *ty == Type::INT4
                || *ty == Type::INT2
                || *ty == Type::BOOL
                || *ty == Type::FLOAT8
                || *ty == Type::FLOAT4
                || *ty == Type::BYTEA
                || <String as FromSql>::accepts(ty)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_like_become_postgres() {
        assert_eq!(
            postgres_sql("SELECT * FROM t WHERE a = ?1 AND b LIKE '%' || ?2 ESCAPE '\\' AND c = ?"),
            "SELECT * FROM t WHERE a = $1 AND b ILIKE '%' || $2 ESCAPE '\\' AND c = $1"
        );
        // 引号里的 ? 与 like 不动；列名里含 like 的不动。
        assert_eq!(
            postgres_sql("SELECT 'a?b like', likes FROM t WHERE x = ? AND y = ?"),
            "SELECT 'a?b like', likes FROM t WHERE x = $1 AND y = $2"
        );
    }

    #[test]
    fn sqlite_round_trip_and_type_checks() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let mut db = Db::Sqlite(&conn);
        db.batch("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, flag INTEGER, note TEXT)")
            .unwrap();
        let note: Option<String> = None;
        assert_eq!(
            db.execute(
                "INSERT INTO t VALUES (?1, ?2, ?3, ?4)",
                params!["a", 7u32, true, note]
            )
            .unwrap(),
            1
        );
        let err = db
            .execute("INSERT INTO t VALUES (?1, 1, 0, NULL)", params!["a"])
            .unwrap_err();
        assert!(err.is_unique_violation(), "{err}");
        let (n, flag, note): (u32, bool, Option<String>) = db
            .query_one(
                "SELECT n, flag, note FROM t WHERE id = ?1",
                params!["a"],
                |r| Ok((r.get(0)?, r.get("flag")?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!((n, flag, note), (7, true, None));
        // 文字不能当整数读。
        let bad = db.query_one("SELECT id FROM t", params![], |r| r.get::<i64>(0));
        assert!(matches!(bad, Err(DbError::Type { .. })), "{bad:?}");
        // 事务出错整体回滚。
        let r: Result<(), DbError> = db.transaction(|tx| {
            tx.execute("INSERT INTO t VALUES ('b', 1, 0, NULL)", params![])?;
            tx.execute("INSERT INTO t VALUES ('a', 1, 0, NULL)", params![])?;
            Ok(())
        });
        assert!(r.is_err());
        let count: i64 = db
            .query_one("SELECT COUNT(*) FROM t", params![], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 1);
    }
}
