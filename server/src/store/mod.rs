//! Persistence: SQLite (`<data>/sandboxd.db`, WAL; the default) or PostgreSQL (`--database
//! postgres://…`, which several nodes can share), behind the one type [`Store`].
//!
//! Invariants:
//! - The database is the record of everything sandboxd has acknowledged: a sandbox row exists
//!   for every sandbox a client was told about, an image row for every image directory that
//!   is complete on disk (rows are inserted only after the directory was fsynced and renamed).
//! - Schema changes are append-only migrations, one list per backend (`schema.rs`).
//! - Every statement is written once for both backends, through [`db::Db`] (see its header
//!   for the SQL subset); no store module names a backend.
//! - One connection behind a mutex; every call is a short statement (or one transaction),
//!   never held across an `.await`.

pub mod db;
mod images;
mod nodes;
mod postgres;
mod sandboxes;
mod schema;
mod secrets;
mod templates;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
pub(crate) mod testing;
#[doc(hidden)]
pub mod test_db;
mod volumes;

pub use db::{Error, Result};
pub use images::{ImageKind, ImageRow, NAMESPACE, Upload};
pub use nodes::{NodeRow, Placement};
pub use sandboxes::{SandboxFilter, SandboxRow, SandboxState};
pub use secrets::SecretRow;
pub use templates::{BuildRow, LayerRow, LogRow, TemplateRow};
pub use volumes::VolumeRow;

use std::path::Path;

use db::{Db, Exec, params};

/// Refuses a `--database` URL that is not PostgreSQL's, naming only its scheme (a URL may
/// carry a password).
pub fn check_database_url(url: &str) -> anyhow::Result<()> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(());
    }
    anyhow::bail!(
        "unsupported --database URL (scheme {:?}): expected postgres://… or postgresql://…, or no --database \
         for SQLite in the data directory",
        url.split_once("://").map_or("none", |(scheme, _)| scheme)
    )
}

pub struct Store {
    db: Db,
    /// This node's ID: rows it creates carry it, and what only the node that runs a VM may do
    /// (recovery, expiry) reads only its rows. `local` outside a cluster.
    node_id: String,
}

/// The node ID of the embedded default (and of every row made before cluster mode existed).
pub const LOCAL_NODE: &str = "local";

impl Store {
    /// Opens (creating and migrating) the SQLite database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let mut conn = rusqlite::Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::migrate_sqlite(&mut conn)?;
        Ok(Self { db: Db::from_sqlite(conn), node_id: LOCAL_NODE.into() })
    }

    /// Connects to (and migrates) the PostgreSQL database at `url` (`postgres://…`).
    pub fn connect_postgres(url: &str) -> anyhow::Result<Self> {
        let db = Db::connect_postgres(url)?;
        schema::migrate_postgres(&db)?;
        Ok(Self { db, node_id: LOCAL_NODE.into() })
    }

    /// The store `--database` names: a `postgres://` or `postgresql://` URL, or, when absent,
    /// SQLite at `sqlite_path`. Any other URL is refused (see [`check_database_url`]).
    pub fn open_url(database: Option<&str>, sqlite_path: &Path) -> anyhow::Result<Self> {
        match database {
            None => Self::open(sqlite_path),
            Some(url) => {
                check_database_url(url)?;
                Self::connect_postgres(url)
            }
        }
    }

    /// Which backend this store runs on, for logs ("sqlite" or "postgres").
    pub fn backend(&self) -> &'static str {
        if self.db.is_postgres() { "postgres" } else { "sqlite" }
    }

    /// Makes this store act for node `id` (cluster mode), before it is shared.
    pub fn with_node_id(mut self, id: &str) -> Self {
        self.node_id = id.to_string();
        self
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    pub fn api_key_hashes(&self) -> Result<Vec<Vec<u8>>> {
        self.db.query("SELECT hash FROM api_keys", &[])?.iter().map(|r| r.get(0)).collect()
    }

    pub fn add_api_key_hash(&self, hash: &[u8]) -> Result<()> {
        self.db.execute(
            "INSERT INTO api_keys (hash, created_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            &params![hash, crate::ids::now_ns()],
        )?;
        Ok(())
    }
}
