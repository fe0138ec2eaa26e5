//! The telemetry tables (migration in `store/mod.rs`): `sandbox_metrics` (one row per
//! sample), `sandbox_logs` (one row per log line) and `sandbox_telemetry` (per sandbox: the
//! console read position, and when the sandbox ended). Timestamps are unix milliseconds.
//! Statements are written once for SQLite and Postgres (see `store/db.rs`).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::store::Store;
use crate::store::db::{DbRow, Exec, Result, params};

/// One sample, as envd's `GET /metrics` reports it (bytes, percent).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Sample {
    pub cpu_count: u32,
    pub cpu_used_pct: f64,
    pub mem_used: u64,
    pub mem_total: u64,
    pub mem_cache: u64,
    pub disk_used: u64,
    pub disk_total: u64,
}

/// E2B's `LogLevel`, ordered: a `level` filter keeps entries at or above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug = 0,
    Info = 1,
    Warn = 2,
    Error = 3,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }

    /// E2B's names, and tracing's (`TRACE`, `WARNING`...) case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "trace" | "debug" => Some(Self::Debug),
            "info" => Some(Self::Info),
            "warn" | "warning" => Some(Self::Warn),
            "error" | "fatal" | "panic" => Some(Self::Error),
            _ => None,
        }
    }

    fn from_i64(n: i64) -> Self {
        match n {
            0 => Self::Debug,
            2 => Self::Warn,
            3 => Self::Error,
            _ => Self::Info,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Forward,
    Backward,
}

/// One log line: `raw` is the line as the guest printed it, the rest is what was parsed.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub ts_ms: i64,
    pub level: Level,
    pub message: String,
    pub fields: BTreeMap<String, String>,
    pub raw: String,
}

/// Entries with `start_ms <= ts <= end_ms`, oldest first (forward) or newest first.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub start_ms: i64,
    pub end_ms: i64,
    pub limit: u32,
    pub direction: Direction,
    pub min_level: Option<Level>,
    /// Case-sensitive substring of the message.
    pub search: Option<String>,
}

/// Where the console of a sandbox's current VM was read up to.
pub struct ConsoleCursor {
    pub pid: Option<u32>,
    pub offset: u64,
    /// Timestamp of the newest stored line.
    pub last_ms: i64,
    /// When the console was last read.
    pub read_ms: i64,
}

const SAMPLE_COLUMNS: &str = "cpu_count, cpu_used_pct, mem_used, mem_total, mem_cache, disk_used, disk_total";

fn sample_at(r: &DbRow, i: usize) -> Result<Sample> {
    Ok(Sample {
        cpu_count: r.get(i)?,
        cpu_used_pct: r.get(i + 1)?,
        mem_used: r.get(i + 2)?,
        mem_total: r.get(i + 3)?,
        mem_cache: r.get(i + 4)?,
        disk_used: r.get(i + 5)?,
        disk_total: r.get(i + 6)?,
    })
}

impl Store {
    pub fn insert_sample(&self, id: &str, ts_ms: i64, s: &Sample) -> Result<()> {
        self.db().transaction(|tx| {
            tx.execute("INSERT INTO sandbox_telemetry (sandbox_id) VALUES (?1) ON CONFLICT DO NOTHING", &params![id])?;
            tx.execute(
                &format!(
                    "INSERT INTO sandbox_metrics (sandbox_id, ts, {SAMPLE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                // u64 values are clamped to i64::MAX by `Value::from`.
                &params![id, ts_ms, s.cpu_count, s.cpu_used_pct, s.mem_used, s.mem_total, s.mem_cache, s.disk_used, s.disk_total],
            )?;
            Ok(())
        })
    }

    /// Samples in `[start_ms, end_ms]`, grouped into `step_secs` buckets (the maximum of each
    /// value, like E2B), as `(bucket start in unix seconds, sample)`, oldest first.
    pub fn metrics(&self, id: &str, start_ms: i64, end_ms: i64, step_secs: i64) -> Result<Vec<(i64, Sample)>> {
        let rows = self.db().query(
            "SELECT (ts / 1000 / ?4) * ?4 AS bucket, MAX(cpu_count), MAX(cpu_used_pct), MAX(mem_used), MAX(mem_total), \
             MAX(mem_cache), MAX(disk_used), MAX(disk_total) FROM sandbox_metrics \
             WHERE sandbox_id = ?1 AND ts >= ?2 AND ts <= ?3 GROUP BY bucket ORDER BY bucket",
            &params![id, start_ms, end_ms, step_secs.max(1)],
        )?;
        rows.iter().map(|r| Ok((r.get(0)?, sample_at(r, 1)?))).collect()
    }

    /// Timestamps of the first and the last sample.
    pub fn metrics_range(&self, id: &str) -> Result<Option<(i64, i64)>> {
        let r =
            self.db().query_one("SELECT MIN(ts), MAX(ts) FROM sandbox_metrics WHERE sandbox_id = ?1", &params![id])?;
        Ok(r.get::<Option<i64>>(0)?.zip(r.get::<Option<i64>>(1)?))
    }

    pub fn latest_metric(&self, id: &str) -> Result<Option<(i64, Sample)>> {
        self.db()
            .query_opt(
                &format!(
                    "SELECT ts, {SAMPLE_COLUMNS} FROM sandbox_metrics WHERE sandbox_id = ?1 ORDER BY ts DESC LIMIT 1"
                ),
                &params![id],
            )?
            .map(|r| Ok((r.get(0)?, sample_at(&r, 1)?)))
            .transpose()
    }

    pub fn console_cursor(&self, id: &str) -> Result<ConsoleCursor> {
        let row = self.db().query_opt(
            "SELECT console_pid, console_offset, last_log_ms, console_read_ms FROM sandbox_telemetry WHERE sandbox_id = ?1",
            &params![id],
        )?;
        match row {
            Some(r) => Ok(ConsoleCursor { pid: r.get(0)?, offset: r.get(1)?, last_ms: r.get(2)?, read_ms: r.get(3)? }),
            None => Ok(ConsoleCursor { pid: None, offset: 0, last_ms: 0, read_ms: 0 }),
        }
    }

    /// Stores `records` and the console position after them, atomically.
    pub fn append_logs(
        &self,
        id: &str,
        pid: u32,
        offset: u64,
        read_ms: i64,
        last_ms: i64,
        records: &[super::LogRecord],
    ) -> Result<()> {
        self.db().transaction(|tx| {
            tx.execute(
                "INSERT INTO sandbox_telemetry (sandbox_id, console_pid, console_offset, last_log_ms, console_read_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (sandbox_id) DO UPDATE SET console_pid = excluded.console_pid, \
                 console_offset = excluded.console_offset, last_log_ms = excluded.last_log_ms, \
                 console_read_ms = excluded.console_read_ms",
                &params![id, pid, offset, last_ms, read_ms],
            )?;
            for r in records {
                let fields = serde_json::to_string(&r.fields).unwrap_or_else(|_| "{}".into());
                tx.execute(
                    "INSERT INTO sandbox_logs (sandbox_id, ts, level, message, fields, raw) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    &params![id, r.ts_ms, r.level as i64, &r.message, fields, &r.raw],
                )?;
            }
            Ok(())
        })
    }

    pub fn logs(&self, id: &str, q: &LogQuery) -> Result<Vec<LogRecord>> {
        let order = match q.direction {
            Direction::Forward => "ASC",
            Direction::Backward => "DESC",
        };
        // `instr` is SQLite's; the Postgres schema defines it (as `strpos`). The CAST tells
        // Postgres the parameter's type, which `IS NULL` alone does not.
        let sql = format!(
            "SELECT ts, level, message, fields, raw FROM sandbox_logs WHERE sandbox_id = ?1 AND ts >= ?2 AND ts <= ?3 \
             AND level >= ?4 AND (CAST(?5 AS TEXT) IS NULL OR instr(message, ?5) > 0) ORDER BY ts {order}, id {order} LIMIT ?6"
        );
        let min_level = q.min_level.map_or(0, |l| l as i64);
        let rows =
            self.db().query(&sql, &params![id, q.start_ms, q.end_ms, min_level, q.search.as_deref(), q.limit])?;
        rows.iter()
            .map(|r| {
                let fields: String = r.get(3)?;
                Ok(LogRecord {
                    ts_ms: r.get(0)?,
                    level: Level::from_i64(r.get(1)?),
                    message: r.get(2)?,
                    fields: serde_json::from_str(&fields).unwrap_or_default(),
                    raw: r.get(4)?,
                })
            })
            .collect()
    }

    /// Records that sandbox `id` ended (keeps the first end if called twice).
    pub fn mark_ended(&self, id: &str, now_ms: i64) -> Result<()> {
        self.db().execute(
            "INSERT INTO sandbox_telemetry (sandbox_id, ended_at) VALUES (?1, ?2) \
             ON CONFLICT (sandbox_id) DO UPDATE SET ended_at = COALESCE(sandbox_telemetry.ended_at, excluded.ended_at)",
            &params![id, now_ms],
        )?;
        Ok(())
    }

    /// Sandboxes that disappeared without [`Store::mark_ended`] (e.g. found dead at start-up).
    pub fn mark_orphans_ended(&self, now_ms: i64) -> Result<usize> {
        let n = self.db().execute(
            "UPDATE sandbox_telemetry SET ended_at = ?1 WHERE ended_at IS NULL \
             AND sandbox_id NOT IN (SELECT id FROM sandboxes)",
            &params![now_ms],
        )?;
        Ok(n as usize)
    }

    /// True while `id` is a sandbox, or ended after `ended_after_ms`.
    pub fn telemetry_known(&self, id: &str, ended_after_ms: i64) -> Result<bool> {
        let live: bool =
            self.db().query_one("SELECT EXISTS (SELECT 1 FROM sandboxes WHERE id = ?1)", &params![id])?.get(0)?;
        if live {
            return Ok(true);
        }
        self.db()
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM sandbox_telemetry WHERE sandbox_id = ?1 AND (ended_at IS NULL OR ended_at > ?2))",
                &params![id, ended_after_ms],
            )?
            .get(0)
    }

    /// Deletes everything of sandboxes that ended before `ended_before_ms`, rows older than
    /// `older_than_ms`, and the oldest log lines of a sandbox beyond `max_lines`. Returns how
    /// many rows went.
    pub fn prune_telemetry(&self, ended_before_ms: i64, older_than_ms: i64, max_lines: i64) -> Result<usize> {
        self.db().transaction(|tx| {
            let gone = "SELECT sandbox_id FROM sandbox_telemetry WHERE ended_at IS NOT NULL AND ended_at <= ?1";
            let ended = params![ended_before_ms];
            let mut n = tx.execute(&format!("DELETE FROM sandbox_metrics WHERE sandbox_id IN ({gone})"), &ended)?;
            n += tx.execute(&format!("DELETE FROM sandbox_logs WHERE sandbox_id IN ({gone})"), &ended)?;
            n += tx.execute("DELETE FROM sandbox_telemetry WHERE ended_at IS NOT NULL AND ended_at <= ?1", &ended)?;
            n += tx.execute("DELETE FROM sandbox_metrics WHERE ts < ?1", &params![older_than_ms])?;
            n += tx.execute("DELETE FROM sandbox_logs WHERE ts < ?1", &params![older_than_ms])?;
            // A guest flooding its console keeps only its newest lines.
            let over = tx.query(
                "SELECT sandbox_id, COUNT(*) - ?1 FROM sandbox_logs GROUP BY sandbox_id HAVING COUNT(*) > ?1",
                &params![max_lines],
            )?;
            for r in over {
                let (id, extra): (String, i64) = (r.get(0)?, r.get(1)?);
                n += tx.execute(
                    "DELETE FROM sandbox_logs WHERE id IN \
                     (SELECT id FROM sandbox_logs WHERE sandbox_id = ?1 ORDER BY ts, id LIMIT ?2)",
                    &params![id, extra],
                )?;
            }
            Ok(n as usize)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ts_ms: i64, level: Level, message: &str) -> LogRecord {
        LogRecord { ts_ms, level, message: message.into(), fields: BTreeMap::new(), raw: message.into() }
    }

    fn query(direction: Direction) -> LogQuery {
        LogQuery { start_ms: 0, end_ms: i64::MAX, limit: 1000, direction, min_level: None, search: None }
    }

    fn messages(store: &Store, id: &str, q: &LogQuery) -> Vec<String> {
        store.logs(id, q).unwrap().into_iter().map(|r| r.message).collect()
    }

    #[test]
    fn samples_are_bucketed_with_the_maximum_of_each_value() {
        for t in crate::store::testing::test_stores() {
            eprintln!("backend: {}", t.name);
            samples_are_bucketed_with_the_maximum_of_each_value_on(&t.store);
        }
    }

    fn samples_are_bucketed_with_the_maximum_of_each_value_on(store: &Store) {
        let s = |mem_used| Sample { cpu_count: 1, mem_used, ..Default::default() };
        for (ts, mem) in [(1_000, 5), (4_999, 7), (5_000, 3), (12_000, 1)] {
            store.insert_sample("a", ts, &s(mem)).unwrap();
        }
        store.insert_sample("b", 1_000, &s(99)).unwrap();
        let got: Vec<(i64, u64)> =
            store.metrics("a", 0, 10_999, 5).unwrap().into_iter().map(|(t, s)| (t, s.mem_used)).collect();
        assert_eq!(got, [(0, 7), (5, 3)]);
        assert_eq!(store.metrics_range("a").unwrap(), Some((1_000, 12_000)));
        assert_eq!(store.latest_metric("a").unwrap().map(|(t, s)| (t, s.mem_used)), Some((12_000, 1)));
        assert_eq!(store.metrics_range("nope").unwrap(), None);
    }

    #[test]
    fn logs_filter_page_and_expire() {
        for t in crate::store::testing::test_stores() {
            eprintln!("backend: {}", t.name);
            logs_filter_page_and_expire_on(&t.store);
        }
    }

    fn logs_filter_page_and_expire_on(store: &Store) {
        let lines = [rec(10, Level::Info, "one"), rec(20, Level::Warn, "Two"), rec(20, Level::Error, "three two")];
        store.append_logs("a", 42, 100, 25, 20, &lines).unwrap();
        let cursor = store.console_cursor("a").unwrap();
        assert_eq!((cursor.pid, cursor.offset, cursor.last_ms, cursor.read_ms), (Some(42), 100, 20, 25));

        assert_eq!(messages(store, "a", &query(Direction::Forward)), ["one", "Two", "three two"]);
        assert_eq!(messages(store, "a", &query(Direction::Backward)), ["three two", "Two", "one"]);
        let q = LogQuery { min_level: Some(Level::Warn), ..query(Direction::Forward) };
        assert_eq!(messages(store, "a", &q), ["Two", "three two"]);
        let q = LogQuery { search: Some("two".into()), ..query(Direction::Forward) };
        assert_eq!(messages(store, "a", &q), ["three two"]);
        let q = LogQuery { start_ms: 20, limit: 1, ..query(Direction::Forward) };
        assert_eq!(messages(store, "a", &q), ["Two"]);
        let q = LogQuery { end_ms: 10, ..query(Direction::Backward) };
        assert_eq!(messages(store, "a", &q), ["one"]);

        // Known while it exists in the telemetry table, until the retention after its end.
        assert!(store.telemetry_known("a", 0).unwrap());
        assert!(!store.telemetry_known("b", 0).unwrap());
        store.mark_ended("a", 1_000).unwrap();
        store.mark_ended("a", 5_000).unwrap();
        assert!(store.telemetry_known("a", 999).unwrap());
        assert!(!store.telemetry_known("a", 1_000).unwrap());
        assert_eq!(store.prune_telemetry(999, 0, 100).unwrap(), 0);
        assert!(store.prune_telemetry(1_000, 0, 100).unwrap() > 0);
        assert!(messages(store, "a", &query(Direction::Forward)).is_empty());
        assert!(!store.telemetry_known("a", 0).unwrap());
    }

    #[test]
    fn a_flood_keeps_the_newest_lines() {
        for t in crate::store::testing::test_stores() {
            eprintln!("backend: {}", t.name);
            a_flood_keeps_the_newest_lines_on(&t.store);
        }
    }

    fn a_flood_keeps_the_newest_lines_on(store: &Store) {
        let lines: Vec<_> = (0..10).map(|i| rec(i, Level::Info, &i.to_string())).collect();
        store.append_logs("a", 1, 10, 10, 9, &lines).unwrap();
        store.append_logs("b", 1, 1, 10, 0, &lines[..1]).unwrap();
        assert_eq!(store.prune_telemetry(0, 0, 3).unwrap(), 7);
        assert_eq!(messages(store, "a", &query(Direction::Forward)), ["7", "8", "9"]);
        assert_eq!(messages(store, "b", &query(Direction::Forward)), ["0"]);
    }
}
