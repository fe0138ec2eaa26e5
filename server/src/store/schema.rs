//! The schema, once per backend: SQLite's `MIGRATIONS` (keyed by `PRAGMA user_version`) and
//! Postgres' `PG_MIGRATIONS` (keyed by the `schema_migrations` table).
//!
//! Invariants:
//! - Both lists are append-only: an existing entry never changes (databases in the field have
//!   run it). Every schema change appends one entry to BOTH lists, describing the same tables,
//!   columns and indexes in each dialect.
//! - Postgres types mirror SQLite's affinities: BIGINT for every integer column (booleans
//!   too, stored 0/1), DOUBLE PRECISION for REAL, BYTEA for BLOB, and an identity column where
//!   SQLite has `INTEGER PRIMARY KEY`. So the same SQL reads the same values from both.
//! - Postgres migrations run one per transaction under a transaction-scoped advisory lock, and
//!   re-read the version under it: nodes starting at once migrate exactly once between them.

use super::db::{Db, Exec, Result, params};

pub(super) const MIGRATIONS: &[&str] = &[
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
    // v8: cluster mode (see `cluster/`): which node runs a sandbox and made an image (`local`
    // in the embedded default), whether an image is in the object store, the nodes, their
    // placement reservations and which images each keeps a local copy of.
    "ALTER TABLE sandboxes ADD COLUMN node_id TEXT NOT NULL DEFAULT 'local';
    CREATE INDEX sandboxes_node ON sandboxes (node_id);
    ALTER TABLE snapshots ADD COLUMN node_id TEXT NOT NULL DEFAULT 'local';
    ALTER TABLE snapshots ADD COLUMN upload TEXT NOT NULL DEFAULT 'none';
    CREATE TABLE nodes (
        id TEXT PRIMARY KEY,
        advertise_url TEXT NOT NULL,
        compat TEXT NOT NULL,
        vcpus INTEGER NOT NULL,
        memory_mb INTEGER NOT NULL,
        disk_mb INTEGER NOT NULL,
        max_sandboxes INTEGER NOT NULL,
        alive INTEGER NOT NULL,
        started_at INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL
    );
    CREATE TABLE placements (
        id TEXT PRIMARY KEY,
        node_id TEXT NOT NULL,
        memory_mb INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE node_images (
        node_id TEXT NOT NULL,
        image_id TEXT NOT NULL,
        PRIMARY KEY (node_id, image_id)
    );",
    // v9: the volumes mounted into a sandbox (JSON list of `{name, path, volumeID}`).
    "ALTER TABLE sandboxes ADD COLUMN volume_mounts TEXT;",
    // v10: the key nodes of a cluster show each other (see `cluster/peer.rs`); one row.
    "CREATE TABLE cluster_keys (id INTEGER PRIMARY KEY, secret TEXT NOT NULL);",
];

/// `PG_MIGRATIONS[0]` is SQLite's v1..v7 combined; entry `i` is Postgres schema version `i + 1`.
pub(super) const PG_MIGRATIONS: &[&str] = &[
    // v1 = SQLite v1..v7.
    "CREATE TABLE api_keys (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        hash BYTEA NOT NULL UNIQUE,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE sandboxes (
        id TEXT PRIMARY KEY,
        template_id TEXT NOT NULL,
        alias TEXT,
        image_dir TEXT NOT NULL,
        state TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        end_at BIGINT NOT NULL,
        metadata TEXT NOT NULL,
        env_vars TEXT NOT NULL,
        access_token TEXT,
        allow_internet BIGINT NOT NULL,
        auto_pause BIGINT NOT NULL,
        auto_resume BIGINT NOT NULL,
        vm TEXT,
        paused_image TEXT,
        disk_layer TEXT,
        cpu_count BIGINT NOT NULL,
        memory_mb BIGINT NOT NULL,
        disk_size_mb BIGINT NOT NULL,
        envd_version TEXT NOT NULL,
        network TEXT,
        traffic_access_token TEXT,
        auto_pause_memory BIGINT NOT NULL DEFAULT 1
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
        created_at BIGINT NOT NULL,
        size_bytes BIGINT NOT NULL,
        deleted BIGINT NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX snapshots_name ON snapshots (name) WHERE name IS NOT NULL;
    CREATE INDEX snapshots_created ON snapshots (created_at, id);
    CREATE TABLE sandbox_telemetry (
        sandbox_id TEXT PRIMARY KEY,
        console_pid BIGINT,
        console_offset BIGINT NOT NULL DEFAULT 0,
        console_read_ms BIGINT NOT NULL DEFAULT 0,
        last_log_ms BIGINT NOT NULL DEFAULT 0,
        ended_at BIGINT
    );
    CREATE TABLE sandbox_metrics (
        sandbox_id TEXT NOT NULL,
        ts BIGINT NOT NULL,
        cpu_count BIGINT NOT NULL,
        cpu_used_pct DOUBLE PRECISION NOT NULL,
        mem_used BIGINT NOT NULL,
        mem_total BIGINT NOT NULL,
        mem_cache BIGINT NOT NULL,
        disk_used BIGINT NOT NULL,
        disk_total BIGINT NOT NULL
    );
    CREATE INDEX sandbox_metrics_sandbox ON sandbox_metrics (sandbox_id, ts);
    CREATE INDEX sandbox_metrics_age ON sandbox_metrics (ts);
    CREATE TABLE sandbox_logs (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        sandbox_id TEXT NOT NULL,
        ts BIGINT NOT NULL,
        level BIGINT NOT NULL,
        message TEXT NOT NULL,
        fields TEXT NOT NULL,
        raw TEXT NOT NULL
    );
    CREATE INDEX sandbox_logs_sandbox ON sandbox_logs (sandbox_id, ts, id);
    CREATE INDEX sandbox_logs_age ON sandbox_logs (ts);
    CREATE TABLE templates (
        id TEXT PRIMARY KEY,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
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
        cpu_count BIGINT,
        memory_mb BIGINT,
        disk_size_mb BIGINT NOT NULL,
        image_id TEXT,
        config TEXT,
        tags TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        finished_at BIGINT
    );
    CREATE INDEX template_builds_template ON template_builds (template_id, created_at);
    CREATE TABLE template_tags (
        template_id TEXT NOT NULL,
        tag TEXT NOT NULL,
        build_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (template_id, tag)
    );
    CREATE TABLE template_build_logs (
        build_id TEXT NOT NULL,
        seq BIGINT NOT NULL,
        ts BIGINT NOT NULL,
        level TEXT NOT NULL,
        message TEXT NOT NULL,
        step TEXT,
        PRIMARY KEY (build_id, seq)
    );
    CREATE TABLE template_layers (
        hash TEXT PRIMARY KEY,
        image_id TEXT NOT NULL,
        state TEXT NOT NULL,
        size_bytes BIGINT NOT NULL,
        last_used BIGINT NOT NULL
    );
    CREATE TABLE secrets (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        current_version BIGINT NOT NULL,
        metadata TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX secrets_created ON secrets (created_at, id);
    CREATE TABLE secret_versions (
        secret_id TEXT NOT NULL,
        version BIGINT NOT NULL,
        value TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (secret_id, version)
    );
    CREATE TABLE volumes (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        token TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    -- SQLite's instr() (telemetry's log search), so that query is written once.
    CREATE FUNCTION instr(haystack TEXT, needle TEXT) RETURNS INTEGER
        LANGUAGE SQL IMMUTABLE RETURN strpos(haystack, needle);",
    // v2 = SQLite v8 (cluster mode).
    "ALTER TABLE sandboxes ADD COLUMN node_id TEXT NOT NULL DEFAULT 'local';
    CREATE INDEX sandboxes_node ON sandboxes (node_id);
    ALTER TABLE snapshots ADD COLUMN node_id TEXT NOT NULL DEFAULT 'local';
    ALTER TABLE snapshots ADD COLUMN upload TEXT NOT NULL DEFAULT 'none';
    CREATE TABLE nodes (
        id TEXT PRIMARY KEY,
        advertise_url TEXT NOT NULL,
        compat TEXT NOT NULL,
        vcpus BIGINT NOT NULL,
        memory_mb BIGINT NOT NULL,
        disk_mb BIGINT NOT NULL,
        max_sandboxes BIGINT NOT NULL,
        alive BIGINT NOT NULL,
        started_at BIGINT NOT NULL,
        heartbeat_at BIGINT NOT NULL
    );
    CREATE TABLE placements (
        id TEXT PRIMARY KEY,
        node_id TEXT NOT NULL,
        memory_mb BIGINT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE node_images (
        node_id TEXT NOT NULL,
        image_id TEXT NOT NULL,
        PRIMARY KEY (node_id, image_id)
    );",
    // v3 = SQLite v9 (volume mounts).
    "ALTER TABLE sandboxes ADD COLUMN volume_mounts TEXT;",
    // v4 = SQLite v10 (the nodes' peer key).
    "CREATE TABLE cluster_keys (id BIGINT PRIMARY KEY, secret TEXT NOT NULL);",
];

/// Applies the SQLite migrations past `PRAGMA user_version`, each in its own transaction.
pub(super) fn migrate_sqlite(conn: &mut rusqlite::Connection) -> rusqlite::Result<()> {
    let version: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", i + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// Key of the advisory lock Postgres migrations run under (any constant no one else uses:
/// "sandboxd" in ASCII).
const PG_MIGRATION_LOCK: i64 = 0x7361_6e64_626f_7864;

/// Applies the Postgres migrations not yet in `schema_migrations`; how many it applied.
pub(crate) fn migrate_postgres(db: &Db) -> Result<usize> {
    let mut applied = 0;
    loop {
        let more = db.transaction(|tx| {
            // Held until this transaction ends: a node starting at the same time waits here,
            // then finds the version moved on.
            tx.execute("SELECT pg_advisory_xact_lock(?1)", &params![PG_MIGRATION_LOCK])?;
            tx.batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )?;
            let version: i64 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])?.get(0)?;
            let Some(sql) = usize::try_from(version).ok().and_then(|v| PG_MIGRATIONS.get(v)) else {
                if version > PG_MIGRATIONS.len() as i64 {
                    tracing::warn!(
                        version,
                        known = PG_MIGRATIONS.len(),
                        "store: the database schema is newer than this sandboxd"
                    );
                }
                return Ok(false);
            };
            tx.batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                &params![version + 1, crate::ids::now_ns()],
            )?;
            Ok(true)
        })?;
        if !more {
            return Ok(applied);
        }
        applied += 1;
    }
}
