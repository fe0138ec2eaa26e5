//! The Postgres backend of [`super::db::Db`]: one connection, owned by a dedicated OS thread.
//!
//! Why a thread: store methods are synchronous and run inside tokio tasks (multi-thread and
//! current-thread runtimes), and the `postgres` client blocks on its own runtime, which panics
//! inside another one. So the client lives on a plain thread that executes requests received
//! over a std channel and answers each over its own sync channel; callers block on the answer
//! only, never on a runtime.
//!
//! Invariants:
//! - One connection per process (for now): the caller (`Db`) serializes requests under its
//!   mutex, and holds it from `BEGIN` to `COMMIT`/`ROLLBACK`, so a transaction's statements are
//!   never interleaved with anyone else's.
//! - A lost connection is re-opened before the next request, but never inside a transaction:
//!   its remaining statements fail, so nothing of a half-done transaction runs in autocommit.
//! - Columns are read by their Postgres type into [`Value`]s (integers and BOOL → `Int`); a
//!   type with no such mapping is an error naming it, never a guess.
//! - Parameters are encoded by the type Postgres inferred for them ([`PgParam`]).

use std::collections::HashMap;
use std::sync::mpsc;

use bytes::BytesMut;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls, Statement};

use super::db::{DbRow, Error, Result, Value, rewrite_placeholders};

/// Prepared statements kept per connection; the cache is dropped when it grows past this
/// (statements built from filters vary a little, never without bound in practice).
const STATEMENT_CACHE: usize = 256;

enum Op {
    Execute(String, Vec<Value>),
    Query(String, Vec<Value>),
    Batch(String),
    Begin,
    Commit,
    Rollback,
}

enum Reply {
    Count(u64),
    Rows(Vec<DbRow>),
    Done,
}

struct Request {
    op: Op,
    reply: mpsc::SyncSender<Result<Reply>>,
}

/// The caller's side of the connection thread.
pub(crate) struct PgConn {
    requests: mpsc::Sender<Request>,
}

impl PgConn {
    /// Connects (on the new thread) and returns once the connection is up.
    pub(crate) fn connect(url: &str) -> Result<Self> {
        let config: postgres::Config = url.parse().map_err(Error::from)?;
        let client = std::thread::scope(|s| {
            // Connecting blocks on the client's own runtime: not on the caller's thread.
            s.spawn(|| config.connect(NoTls)).join().map_err(|_| Error::Other("postgres connect panicked".into()))
        })??;
        let (requests, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("sandboxd-postgres".into())
            .spawn(move || Worker { config, client, statements: HashMap::new(), in_tx: false }.run(rx))
            .map_err(|e| Error::Other(format!("starting the postgres thread: {e}")))?;
        Ok(Self { requests })
    }

    fn call(&self, op: Op) -> Result<Reply> {
        let (reply, answer) = mpsc::sync_channel(1);
        let gone = || Error::Other("the postgres connection thread is gone".into());
        self.requests.send(Request { op, reply }).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }

    pub(crate) fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        match self.call(Op::Execute(rewrite_placeholders(sql)?, params.to_vec()))? {
            Reply::Count(n) => Ok(n),
            _ => Err(Error::Other("unexpected reply to execute".into())),
        }
    }

    pub(crate) fn query(&self, sql: &str, params: &[Value]) -> Result<Vec<DbRow>> {
        match self.call(Op::Query(rewrite_placeholders(sql)?, params.to_vec()))? {
            Reply::Rows(rows) => Ok(rows),
            _ => Err(Error::Other("unexpected reply to query".into())),
        }
    }

    pub(crate) fn batch(&self, sql: &str) -> Result<()> {
        self.call(Op::Batch(sql.to_string())).map(drop)
    }

    pub(crate) fn begin(&self) -> Result<()> {
        self.call(Op::Begin).map(drop)
    }

    pub(crate) fn commit(&self) -> Result<()> {
        self.call(Op::Commit).map(drop)
    }

    pub(crate) fn rollback(&self) -> Result<()> {
        self.call(Op::Rollback).map(drop)
    }
}

struct Worker {
    config: postgres::Config,
    client: Client,
    statements: HashMap<String, Statement>,
    in_tx: bool,
}

impl Worker {
    /// Serves requests until every `PgConn` is dropped.
    fn run(mut self, rx: mpsc::Receiver<Request>) {
        for Request { op, reply } in rx {
            let result = self.reconnect_if_closed().and_then(|()| self.handle(op));
            // The caller may have given up (panicked); nothing to do then.
            let _ = reply.send(result);
        }
    }

    fn reconnect_if_closed(&mut self) -> Result<()> {
        if !self.client.is_closed() || self.in_tx {
            return Ok(());
        }
        tracing::warn!("store: the postgres connection was lost; reconnecting");
        self.client = self.config.connect(NoTls)?;
        self.statements.clear();
        Ok(())
    }

    fn handle(&mut self, op: Op) -> Result<Reply> {
        match op {
            Op::Execute(sql, params) => {
                let stmt = self.prepare(&sql)?;
                let params = pg_params(&params);
                Ok(Reply::Count(self.client.execute(&stmt, &params_dyn(&params))?))
            }
            Op::Query(sql, params) => {
                let stmt = self.prepare(&sql)?;
                let params = pg_params(&params);
                let rows = self.client.query(&stmt, &params_dyn(&params))?;
                Ok(Reply::Rows(rows.iter().map(read_row).collect::<Result<_>>()?))
            }
            Op::Batch(sql) => {
                self.client.batch_execute(&sql)?;
                // A schema change can invalidate prepared statements' result types.
                self.statements.clear();
                Ok(Reply::Done)
            }
            Op::Begin => {
                self.client.batch_execute("BEGIN")?;
                self.in_tx = true;
                Ok(Reply::Done)
            }
            Op::Commit | Op::Rollback => {
                self.in_tx = false;
                let sql = if matches!(op, Op::Commit) { "COMMIT" } else { "ROLLBACK" };
                self.client.batch_execute(sql)?;
                Ok(Reply::Done)
            }
        }
    }

    fn prepare(&mut self, sql: &str) -> Result<Statement> {
        if let Some(stmt) = self.statements.get(sql) {
            return Ok(stmt.clone());
        }
        let stmt = self.client.prepare(sql)?;
        if self.statements.len() >= STATEMENT_CACHE {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }
}

fn pg_params(params: &[Value]) -> Vec<PgParam<'_>> {
    params.iter().map(PgParam).collect()
}

/// `Client::execute` and `query` take `&[&(dyn ToSql + Sync)]`.
fn params_dyn<'a>(params: &'a [PgParam<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

fn read_row(row: &postgres::Row) -> Result<DbRow> {
    (0..row.len()).map(|i| read_column(row, i)).collect::<Result<Vec<_>>>().map(DbRow)
}

fn read_column(row: &postgres::Row, i: usize) -> Result<Value> {
    let ty = row.columns()[i].type_();
    let v = if *ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)?.map(Value::Int)
    } else if *ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)?.map(|v| Value::Int(v.into()))
    } else if *ty == Type::INT2 {
        row.try_get::<_, Option<i16>>(i)?.map(|v| Value::Int(v.into()))
    } else if *ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(i)?.map(|v| Value::Int(v.into()))
    } else if *ty == Type::FLOAT8 {
        row.try_get::<_, Option<f64>>(i)?.map(Value::Real)
    } else if *ty == Type::FLOAT4 {
        row.try_get::<_, Option<f32>>(i)?.map(|v| Value::Real(v.into()))
    } else if [Type::TEXT, Type::VARCHAR, Type::NAME, Type::BPCHAR].contains(ty) {
        row.try_get::<_, Option<String>>(i)?.map(Value::Text)
    } else if *ty == Type::BYTEA {
        row.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob)
    } else {
        return Err(Error::Decode {
            index: i,
            message: format!(
                "column {:?} has Postgres type {ty}, which the store does not read (CAST it, e.g. SUM to BIGINT)",
                row.columns()[i].name()
            ),
        });
    };
    Ok(v.unwrap_or(Value::Null))
}

/// A [`Value`] bound to a parameter, encoded as the type Postgres inferred for it.
#[derive(Debug)]
pub(crate) struct PgParam<'a>(&'a Value);

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for PgParam<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
        let text_like = [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME, Type::UNKNOWN].contains(ty);
        match self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) if *ty == Type::INT8 => v.to_sql(ty, out),
            Value::Int(v) if *ty == Type::INT4 => {
                i32::try_from(*v).map_err(|_| format!("{v} is out of range for an INT4 parameter"))?.to_sql(ty, out)
            }
            Value::Int(v) if *ty == Type::INT2 => {
                i16::try_from(*v).map_err(|_| format!("{v} is out of range for an INT2 parameter"))?.to_sql(ty, out)
            }
            Value::Int(v) if *ty == Type::BOOL => (*v != 0).to_sql(ty, out),
            Value::Int(v) if *ty == Type::FLOAT8 => (*v as f64).to_sql(ty, out),
            Value::Real(v) if *ty == Type::FLOAT8 => v.to_sql(ty, out),
            Value::Real(v) if *ty == Type::FLOAT4 => (*v as f32).to_sql(ty, out),
            Value::Text(s) if text_like => s.as_str().to_sql(&Type::TEXT, out),
            Value::Blob(b) if *ty == Type::BYTEA => b.as_slice().to_sql(ty, out),
            v => Err(format!("cannot bind {} to a parameter of Postgres type {ty}", v.kind()).into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}
