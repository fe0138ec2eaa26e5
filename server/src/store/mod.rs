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

pub use images::{ImageKind, ImageRow, NAMESPACE};
pub use sandboxes::{SandboxFilter, SandboxRow, SandboxState};

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
