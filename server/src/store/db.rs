//! The database handle every store module talks to: one interface over SQLite (the default,
//! `<data>/sandboxd.db`) and PostgreSQL (`--database postgres://…`, shared by several nodes).
//!
//! Invariants:
//! - SQL is written once, in the common subset of both dialects, with `?1, ?2, …` placeholders
//!   (indices may repeat and come in any order). The Postgres backend rewrites them to `$N`;
//!   a statement never contains `?` inside a string literal (the rewrite refuses it).
//!   Not in the subset, so never used: `INSERT OR IGNORE/REPLACE` (use `ON CONFLICT`), `IFNULL`
//!   (use `COALESCE`), a bare `SUM` (NUMERIC in Postgres: `CAST(SUM(x) AS BIGINT)`), ordering
//!   by a nullable comparison (ascending, NULLs sort first in SQLite but last in Postgres:
//!   use `CASE`).
//!   Postgres infers each parameter's type from where it is used: one used only as
//!   `?N IS NULL` needs a `CAST(?N AS …)`.
//! - Values are dynamically typed like SQLite's: integers (booleans too) are `Int`, and a
//!   Postgres `BOOL` result (e.g. `EXISTS (…)`) reads back as `Int(0/1)`.
//! - Statements of one caller never interleave with another caller's transaction: a
//!   transaction holds the handle's lock from `BEGIN` to `COMMIT`/`ROLLBACK`; every other
//!   call is one short statement under the same lock, never held across an `.await`.
//! - [`Db::transaction`] commits when its closure returns `Ok` and rolls back on `Err`.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::types::{ToSqlOutput, ValueRef};

use super::postgres::PgConn;

/// Errors of the store, whichever backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    #[error("postgres: {}", pg_message(.0))]
    Postgres(postgres::Error),
    /// A unique or primary-key constraint refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// [`Exec::query_one`] found no row.
    #[error("no row returned")]
    NotFound,
    /// A column could not be read as the requested type.
    #[error("column {index}: {message}")]
    Decode { index: usize, message: String },
    /// Anything else (a Postgres connection thread gone, a malformed statement, …).
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// The client's message and its cause (some kinds, e.g. a parameter that failed to encode,
/// leave the cause out of their own message).
fn pg_message(e: &postgres::Error) -> String {
    let message = e.to_string();
    match std::error::Error::source(e).map(ToString::to_string) {
        Some(cause) if !message.contains(&cause) => format!("{message}: {cause}"),
        _ => message,
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi;
        match &e {
            rusqlite::Error::SqliteFailure(f, msg)
                if f.extended_code == ffi::SQLITE_CONSTRAINT_UNIQUE
                    || f.extended_code == ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
            {
                Self::Conflict(msg.clone().unwrap_or_else(|| e.to_string()))
            }
            _ => Self::Sqlite(e),
        }
    }
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Self {
        if e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION) {
            return Self::Conflict(e.to_string());
        }
        Self::Postgres(e)
    }
}

/// One SQL value, typed the way SQLite stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Value {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Null => "NULL",
            Self::Int(_) => "an integer",
            Self::Real(_) => "a real",
            Self::Text(_) => "text",
            Self::Blob(_) => "a blob",
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Self::Int(v.into())
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Self::Int(v.into())
    }
}
/// Clamped to `i64::MAX` (sizes and counters; nothing real comes near it).
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Self::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
/// Clamped to `i64::MAX`, as [`From<u64>`].
impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Self::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Int(v.into())
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::Real(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(v.to_string())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Self::Text(v.clone())
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Self::Blob(v.to_vec())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Self::Blob(v)
    }
}
/// Paths are stored as (lossy UTF-8) text.
impl From<&Path> for Value {
    fn from(v: &Path) -> Self {
        Self::Text(v.to_string_lossy().into_owned())
    }
}
impl From<&PathBuf> for Value {
    fn from(v: &PathBuf) -> Self {
        v.as_path().into()
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// `params![a, b, …]`: the arguments of one statement, as an array of [`Value`]s.
macro_rules! params {
    ($($v:expr),* $(,)?) => { [$($crate::store::db::Value::from($v)),*] };
}
pub(crate) use params;

/// A Rust type one column can be read as.
pub trait FromValue: Sized {
    fn from_value(v: &Value) -> std::result::Result<Self, String>;
}

fn mismatch<T>(v: &Value, want: &str) -> std::result::Result<T, String> {
    Err(format!("expected {want}, got {}", v.kind()))
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Int(i) => Ok(*i),
            _ => mismatch(v, "an integer"),
        }
    }
}
impl FromValue for i32 {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        let i = i64::from_value(v)?;
        i32::try_from(i).map_err(|_| format!("{i} is out of range for i32"))
    }
}
impl FromValue for u32 {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        let i = i64::from_value(v)?;
        u32::try_from(i).map_err(|_| format!("{i} is out of range for u32"))
    }
}
impl FromValue for u64 {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        let i = i64::from_value(v)?;
        u64::try_from(i).map_err(|_| format!("{i} is out of range for u64"))
    }
}
impl FromValue for bool {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        Ok(i64::from_value(v)? != 0)
    }
}
/// An integer reads as a real too (SQLite may hand back either for a REAL expression).
impl FromValue for f64 {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Real(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            _ => mismatch(v, "a real"),
        }
    }
}
impl FromValue for String {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            _ => mismatch(v, "text"),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Blob(b) => Ok(b.clone()),
            Value::Text(s) => Ok(s.as_bytes().to_vec()),
            _ => mismatch(v, "a blob"),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> std::result::Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub struct DbRow(pub Vec<Value>);

impl DbRow {
    pub fn get<T: FromValue>(&self, index: usize) -> Result<T> {
        let v = self
            .0
            .get(index)
            .ok_or_else(|| Error::Decode { index, message: format!("the row has only {} columns", self.0.len()) })?;
        T::from_value(v).map_err(|message| Error::Decode { index, message })
    }
}

/// What both [`Db`] and a transaction ([`Tx`]) can run.
pub trait Exec {
    /// Runs one statement; the number of rows it changed.
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64>;
    /// Runs one query; all its rows.
    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<DbRow>>;

    /// The first row, if any.
    fn query_opt(&self, sql: &str, params: &[Value]) -> Result<Option<DbRow>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The first row; [`Error::NotFound`] when there is none.
    fn query_one(&self, sql: &str, params: &[Value]) -> Result<DbRow> {
        self.query_opt(sql, params)?.ok_or(Error::NotFound)
    }
}

/// The database: SQLite or PostgreSQL.
pub struct Db(Backend);

enum Backend {
    Sqlite(Mutex<rusqlite::Connection>),
    Postgres(Mutex<PgConn>),
}

/// A transaction in progress; see [`Db::transaction`].
pub struct Tx<'a>(TxBackend<'a>);

enum TxBackend<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a PgConn),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Db {
    /// A handle on an open (and migrated) SQLite connection.
    pub(crate) fn from_sqlite(conn: rusqlite::Connection) -> Self {
        Self(Backend::Sqlite(Mutex::new(conn)))
    }

    /// A handle on a Postgres connection (not migrated yet: see `schema::migrate_postgres`).
    pub(crate) fn connect_postgres(url: &str) -> Result<Self> {
        Ok(Self(Backend::Postgres(Mutex::new(PgConn::connect(url)?))))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.0, Backend::Postgres(_))
    }

    /// Runs `f` in a transaction: committed when `f` returns `Ok`, rolled back on `Err`.
    pub fn transaction<T>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        match &self.0 {
            Backend::Sqlite(conn) => {
                let mut conn = lock(conn);
                let tx = conn.transaction()?;
                let out = f(&Tx(TxBackend::Sqlite(&tx)))?;
                tx.commit()?;
                Ok(out)
            }
            Backend::Postgres(pg) => {
                let pg = lock(pg);
                pg.begin()?;
                // Rolls back unless committed: on `Err`, and if `f` panics (the lock is then
                // poisoned, not kept, so the next caller must not find a transaction open).
                let mut guard = PgTxGuard { pg: &pg, open: true };
                let out = f(&Tx(TxBackend::Postgres(&pg)))?;
                guard.open = false;
                pg.commit()?;
                Ok(out)
            }
        }
    }
}

struct PgTxGuard<'a> {
    pg: &'a PgConn,
    open: bool,
}

impl Drop for PgTxGuard<'_> {
    fn drop(&mut self) {
        if self.open
            && let Err(e) = self.pg.rollback()
        {
            tracing::warn!(error = %e, "store: rolling back a failed transaction failed");
        }
    }
}

impl Tx<'_> {
    /// Several statements without parameters (Postgres migrations).
    pub(crate) fn batch(&self, sql: &str) -> Result<()> {
        match self.0 {
            TxBackend::Sqlite(conn) => Ok(conn.execute_batch(sql)?),
            TxBackend::Postgres(pg) => pg.batch(sql),
        }
    }
}

impl Exec for Db {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        match &self.0 {
            Backend::Sqlite(conn) => sqlite_execute(&lock(conn), sql, params),
            Backend::Postgres(pg) => lock(pg).execute(sql, params),
        }
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<DbRow>> {
        match &self.0 {
            Backend::Sqlite(conn) => sqlite_query(&lock(conn), sql, params),
            Backend::Postgres(pg) => lock(pg).query(sql, params),
        }
    }
}

impl Exec for Tx<'_> {
    fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        match self.0 {
            TxBackend::Sqlite(conn) => sqlite_execute(conn, sql, params),
            TxBackend::Postgres(pg) => pg.execute(sql, params),
        }
    }

    fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<DbRow>> {
        match self.0 {
            TxBackend::Sqlite(conn) => sqlite_query(conn, sql, params),
            TxBackend::Postgres(pg) => pg.query(sql, params),
        }
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Self::Null => ValueRef::Null,
            Self::Int(i) => ValueRef::Integer(*i),
            Self::Real(f) => ValueRef::Real(*f),
            Self::Text(s) => ValueRef::Text(s.as_bytes()),
            Self::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

fn sqlite_execute(conn: &rusqlite::Connection, sql: &str, params: &[Value]) -> Result<u64> {
    let mut stmt = conn.prepare_cached(sql)?;
    Ok(stmt.execute(rusqlite::params_from_iter(params))? as u64)
}

fn sqlite_query(conn: &rusqlite::Connection, sql: &str, params: &[Value]) -> Result<Vec<DbRow>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let columns = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut row = Vec::with_capacity(columns);
        for i in 0..columns {
            row.push(match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(i) => Value::Int(i),
                ValueRef::Real(f) => Value::Real(f),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            });
        }
        out.push(DbRow(row));
    }
    Ok(out)
}

/// `?N` → `$N` for Postgres. Refuses a `?` inside a quoted literal or identifier, and a `?`
/// without an index, rather than guess.
pub(crate) fn rewrite_placeholders(sql: &str) -> Result<String> {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), '?') => return Err(Error::Other(format!("'?' inside a quoted string in SQL: {sql}"))),
            (None, '\'' | '"') => quote = Some(c),
            (None, '?') => {
                if !chars.peek().is_some_and(char::is_ascii_digit) {
                    return Err(Error::Other(format!("'?' without an index in SQL: {sql}")));
                }
                out.push('$');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten_with_reused_and_out_of_order_indices() {
        let sql = "UPDATE t SET a = ?2, b = ?10 WHERE id = ?1 OR alias = ?1 OR x = '$1'";
        assert_eq!(
            rewrite_placeholders(sql).unwrap(),
            "UPDATE t SET a = $2, b = $10 WHERE id = $1 OR alias = $1 OR x = '$1'"
        );
        assert!(rewrite_placeholders("SELECT 'a?' FROM t").is_err());
        assert!(rewrite_placeholders("SELECT ? FROM t").is_err());
        assert_eq!(rewrite_placeholders("SELECT 'it''s', ?1").unwrap(), "SELECT 'it''s', $1");
    }

    #[test]
    fn values_convert_both_ways() {
        assert_eq!(Value::from(u64::MAX), Value::Int(i64::MAX));
        assert_eq!(Value::from(None::<&str>), Value::Null);
        assert_eq!(Value::from(Some(true)), Value::Int(1));
        let row = DbRow(vec![Value::Int(1), Value::Null, Value::Int(-1), Value::Text("x".into())]);
        assert!(row.get::<bool>(0).unwrap());
        assert_eq!(row.get::<Option<String>>(1).unwrap(), None);
        assert!(row.get::<u32>(2).is_err(), "out of range");
        assert!(row.get::<i64>(3).is_err(), "wrong type");
        assert!(row.get::<i64>(4).is_err(), "no such column");
        assert_eq!(row.get::<f64>(0).unwrap(), 1.0);
    }
}
