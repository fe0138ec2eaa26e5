//! SQLite persistence (`<data>/sandboxd.db`, WAL).
//!
//! Invariants:
//! - The database is the record of everything sandboxd has acknowledged: a sandbox row exists
//!   for every sandbox a client was told about, an image row for every image directory that
//!   is complete on disk (rows are inserted only after the directory was fsynced and renamed).
//! - Schema changes are append-only migrations keyed by `PRAGMA user_version`.
//! - One connection behind a mutex; every call is a short statement, never held across an
//!   `.await`.

mod images;
mod sandboxes;
mod secrets;
mod templates;
mod volumes;

pub use images::{ImageKind, ImageRow, NAMESPACE};
pub use sandboxes::{SandboxFilter, SandboxRow, SandboxState};
pub use secrets::{InsertError as SecretInsertError, SecretRow};
pub use templates::{BuildRow, LayerRow, LogRow, TemplateRow};
pub use volumes::VolumeRow;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // v1
    "CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        hash BLOB NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE sandboxes (
        id TEXT PRIMARY KEY,
        template_id TEXT NOT NULL,
        alias TEXT,
        image_dir TEXT NOT NULL,
        state TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        end_at INTEGER NOT NULL,
        metadata TEXT NOT NULL,
        env_vars TEXT NOT NULL,
        access_token TEXT,
        allow_internet INTEGER NOT NULL,
        auto_pause INTEGER NOT NULL,
        auto_resume INTEGER NOT NULL,
        vm TEXT,
        paused_image TEXT,
        disk_layer TEXT,
        cpu_count INTEGER NOT NULL,
        memory_mb INTEGER NOT NULL,
        disk_size_mb INTEGER NOT NULL,
        envd_version TEXT NOT NULL
    );
    CREATE INDEX sandboxes_started ON sandboxes (started_at, id);
    CREATE TABLE snapshots (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        name TEXT,
        tag TEXT NOT NULL,
        source_sandbox_id TEXT,
        dir TEXT NOT NULL,
        disk_layer TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        size_bytes INTEGER NOT NULL,
        deleted INTEGER NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX snapshots_name ON snapshots (name) WHERE name IS NOT NULL;
    CREATE INDEX snapshots_created ON snapshots (created_at, id);",
    // v2: a sandbox's network configuration (JSON `SandboxNetworkConfig`) and the token its
    // non-public ports require.
    "ALTER TABLE sandboxes ADD COLUMN network TEXT;
    ALTER TABLE sandboxes ADD COLUMN traffic_access_token TEXT;",
    // v3: what an auto-pause at timeout keeps (`autoPauseMemory`; 0 = filesystem only).
    "ALTER TABLE sandboxes ADD COLUMN auto_pause_memory INTEGER NOT NULL DEFAULT 1;",
    // v4: sandbox metrics and logs (see `telemetry/`); timestamps in unix milliseconds.
    "CREATE TABLE sandbox_telemetry (
        sandbox_id TEXT PRIMARY KEY,
        console_pid INTEGER,
        console_offset INTEGER NOT NULL DEFAULT 0,
        console_read_ms INTEGER NOT NULL DEFAULT 0,
        last_log_ms INTEGER NOT NULL DEFAULT 0,
        ended_at INTEGER
    );
    CREATE TABLE sandbox_metrics (
        sandbox_id TEXT NOT NULL,
        ts INTEGER NOT NULL,
        cpu_count INTEGER NOT NULL,
        cpu_used_pct REAL NOT NULL,
        mem_used INTEGER NOT NULL,
        mem_total INTEGER NOT NULL,
        mem_cache INTEGER NOT NULL,
        disk_used INTEGER NOT NULL,
        disk_total INTEGER NOT NULL
    );
    CREATE INDEX sandbox_metrics_sandbox ON sandbox_metrics (sandbox_id, ts);
    CREATE INDEX sandbox_metrics_age ON sandbox_metrics (ts);
    CREATE TABLE sandbox_logs (
        id INTEGER PRIMARY KEY,
        sandbox_id TEXT NOT NULL,
        ts INTEGER NOT NULL,
        level INTEGER NOT NULL,
        message TEXT NOT NULL,
        fields TEXT NOT NULL,
        raw TEXT NOT NULL
    );
    CREATE INDEX sandbox_logs_sandbox ON sandbox_logs (sandbox_id, ts, id);
    CREATE INDEX sandbox_logs_age ON sandbox_logs (ts);",
    // v5: custom templates built through the template API (see `store/templates.rs`); their
    // images are `snapshots` rows of kind `build`.
    "CREATE TABLE templates (
        id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE template_aliases (
        alias TEXT PRIMARY KEY,
        template_id TEXT NOT NULL
    );
    CREATE TABLE template_builds (
        id TEXT PRIMARY KEY,
        template_id TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        cpu_count INTEGER,
        memory_mb INTEGER,
        disk_size_mb INTEGER NOT NULL,
        image_id TEXT,
        config TEXT,
        tags TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        finished_at INTEGER
    );
    CREATE INDEX template_builds_template ON template_builds (template_id, created_at);
    CREATE TABLE template_tags (
        template_id TEXT NOT NULL,
        tag TEXT NOT NULL,
        build_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (template_id, tag)
    );
    CREATE TABLE template_build_logs (
        build_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        step TEXT,
        PRIMARY KEY (build_id, seq)
    );
    CREATE TABLE template_layers (
        hash TEXT PRIMARY KEY,
        image_id TEXT NOT NULL,
        state TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        last_used INTEGER NOT NULL
    );",
    // v6: secrets (see `store/secrets.rs`): metadata as JSON, every value as a version.
    "CREATE TABLE secrets (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        current_version INTEGER NOT NULL,
        metadata TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX secrets_created ON secrets (created_at, id);
    CREATE TABLE secret_versions (
        secret_id TEXT NOT NULL,
        version INTEGER NOT NULL,
        value TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (secret_id, version)
    );",
    // v7: volumes (see `store/volumes.rs`).
    "CREATE TABLE volumes (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        token TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );",
];

pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let store = Self { conn: Mutex::new(conn) };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> anyhow::Result<()> {
        let mut conn = self.conn();
        let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn api_key_hashes(&self) -> rusqlite::Result<Vec<Vec<u8>>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT hash FROM api_keys")?;
        stmt.query_map([], |r| r.get(0))?.collect()
    }

    pub fn add_api_key_hash(&self, hash: &[u8]) -> rusqlite::Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO api_keys (hash, created_at) VALUES (?1, ?2)",
            rusqlite::params![hash, crate::ids::now_ns()],
        )?;
        Ok(())
    }
}
