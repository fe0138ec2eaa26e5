//! Server configuration, resolved once by the CLI and then read-only.
//!
//! Invariant: every path here is absolute-or-relative as given by the user but never changes
//! while the server runs; the data directory layout is:
//! `<data>/sandboxd.db`, `<data>/api_key`, `<data>/snapshots/<image id>/`, plus whatever the
//! VM runtime keeps under `<data>/layers` and `<data>/run`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default listen address (`SANDBOXD_LISTEN`).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:49982";
/// Default maximum number of concurrently running sandboxes (`SANDBOXD_MAX_SANDBOXES`).
pub const DEFAULT_MAX_SANDBOXES: usize = 16;
/// Maximum sandbox lifetime accepted by the API, in seconds (24 h, E2B's Pro limit).
pub const MAX_TIMEOUT_SECS: i64 = 24 * 3600;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Where built templates live (`<templates_dir>/<name>/meta.json`).
    pub templates_dir: PathBuf,
    pub max_sandboxes: usize,
    /// Cap on the sum of guest memory of running sandboxes, in MiB (`SANDBOXD_MAX_MEMORY_MB`);
    /// `None`: 90% of the host's MemAvailable at start-up, plus what recovered sandboxes use.
    pub max_memory_mb: Option<u64>,
    /// `--domain` / `SANDBOXD_DOMAIN`: see [`sandbox_domain`].
    pub domain: Option<String>,
    /// Metrics sampling and retention (`SANDBOXD_METRICS_*`, see `telemetry`).
    pub telemetry: crate::telemetry::Settings,
    /// Warm pools (`SANDBOXD_POOL_*`, see `manager::pool`).
    pub pool: crate::manager::PoolSettings,
    /// `--database` / `SANDBOXD_DATABASE_URL`: a `postgres://` or `postgresql://` URL (a
    /// database several nodes can share), or `None` for SQLite at [`Config::db_path`].
    /// May hold a password: never log it.
    pub database: Option<String>,
    /// Cluster mode (see `cluster/`): `None` for a single machine.
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

impl Config {
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("sandboxd.db")
    }

    pub fn api_key_path(&self) -> PathBuf {
        self.data_dir.join("api_key")
    }

    /// Snapshot, pause and fork images: `<data>/snapshots/<image id>`.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.data_dir.join("store").join("snapshots")
    }

    /// Guest memory admission may hand out, in MiB, given `recovered_mb` already running
    /// (see [`Config::max_memory_mb`]).
    pub fn memory_limit_mb(&self, recovered_mb: u64) -> u64 {
        self.max_memory_mb.unwrap_or_else(|| host_mem_available_mb() / 10 * 9 + recovered_mb)
    }

    pub fn template_dir(&self, name: &str) -> PathBuf {
        self.templates_dir.join(name)
    }
}

/// The base domain of sandbox hosts (`--domain`), reported as `Sandbox.domain` so the SDKs
/// build `https://<port>-<id>.<domain>`. Set once at start-up.
static SANDBOX_DOMAIN: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

pub fn set_sandbox_domain(domain: Option<String>) {
    let _ = SANDBOX_DOMAIN.set(domain.filter(|d| !d.is_empty()));
}

pub fn sandbox_domain() -> Option<&'static str> {
    SANDBOX_DOMAIN.get().and_then(|d| d.as_deref())
}

/// `$XDG_DATA_HOME/sandboxd`, else `~/.local/share/sandboxd`, else `./sandboxd-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return Path::new(&xdg).join("sandboxd");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return Path::new(&home).join(".local/share/sandboxd");
    }
    PathBuf::from("sandboxd-data")
}

/// `MemAvailable` from `/proc/meminfo`, in MiB (`u64::MAX / 2` when unreadable: no limit).
pub fn host_mem_available_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemAvailable:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(u64::MAX / 2, |kib| kib >> 10)
}
