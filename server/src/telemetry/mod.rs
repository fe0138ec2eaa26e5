//! Sandbox metrics and logs, kept by sandboxd so they outlive the VM: E2B's
//! `GET /sandboxes/{id}/metrics`, `GET /sandboxes/metrics` and the two logs routes read them.
//!
//! - Metrics: every [`Settings::interval`] the sampler asks envd of each running sandbox for
//!   `GET /metrics` and stores one sample (host clock) in `sandbox_metrics`.
//! - Logs: envd runs as the guest's PID 1 and writes its log (JSON lines) to the serial
//!   console, which QEMU writes to `console.log` in the VM's run directory together with
//!   everything else the guest prints there (kernel). On every tick the sampler appends the
//!   console's new complete lines to `sandbox_logs`; the lifecycle calls
//!   [`Telemetry::collect_console`] once more right before it stops a VM (pause, kill), so
//!   nothing the guest printed is lost with its run directory.
//!
//! Invariants:
//! - Rows live in SQLite, so they carry on across pause/resume (no samples while paused),
//!   and survive a sandboxd restart; a sandbox's rows are deleted [`Settings::retention`]
//!   after it was killed; any row older than [`MAX_AGE_MS`] goes too, and a sandbox keeps at
//!   most [`MAX_LOG_LINES`] log lines (its newest).
//! - The console read position (`sandbox_telemetry`) is stored in the same transaction as the
//!   lines it covers and is tied to the QEMU pid, so a line is stored at most once, and a new
//!   VM (resume) is read from its start.
//! - Log timestamps never go backwards per sandbox, and stay between the previous read of the
//!   console and now (a restored guest logs with its snapshot-time clock until `/init`).
//! - No lock is held across an `.await`; the console lock covers only synchronous file and
//!   database work.

mod console;
mod db;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

pub use db::{Direction, Level, LogQuery, LogRecord, Sample};

use crate::store::{SandboxState, Store};
use crate::vm::VmInfo;

/// Oldest log line or sample kept even for a live sandbox (E2B's log query limit: 7 days).
pub const MAX_AGE_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long one `GET /metrics` may take (a guest under load on TCG is slow to answer).
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(3);
/// Log lines kept per sandbox (the oldest go first): a guest can print without end.
pub const MAX_LOG_LINES: i64 = 100_000;
/// How often killed sandboxes' rows and too old rows are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(30);

/// `SANDBOXD_METRICS_INTERVAL_SECS` (default 5, E2B's sampling period) and
/// `SANDBOXD_METRICS_RETENTION_SECS` (default 3600): how often sandboxes are sampled, and how
/// long a killed sandbox's metrics and logs stay readable.
#[derive(Debug, Clone)]
pub struct Settings {
    pub interval: Duration,
    pub retention: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self { interval: Duration::from_secs(5), retention: Duration::from_secs(3600) }
    }
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        let mut s = Self::default();
        let secs = |name: &str, min: u64| -> anyhow::Result<Option<u64>> {
            match std::env::var(name) {
                Err(_) => Ok(None),
                Ok(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n >= min => Ok(Some(n)),
                    _ => anyhow::bail!("{name} must be a whole number of seconds >= {min}, not {v:?}"),
                },
            }
        };
        if let Some(n) = secs("SANDBOXD_METRICS_INTERVAL_SECS", 1)? {
            s.interval = Duration::from_secs(n);
        }
        if let Some(n) = secs("SANDBOXD_METRICS_RETENTION_SECS", 0)? {
            s.retention = Duration::from_secs(n);
        }
        Ok(s)
    }
}

/// Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Telemetry {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    settings: Settings,
    client: Client<HttpConnector, Empty<Bytes>>,
    /// Serialises console reads: the sampler and a pause/kill may read the same console.
    console: Mutex<()>,
}

pub fn now_ms() -> i64 {
    crate::ids::now_ns() / 1_000_000
}

impl Telemetry {
    pub fn new(store: Arc<Store>, settings: Settings) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self { inner: Arc::new(Inner { store, settings, client, console: Mutex::new(()) }) }
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Starts the sampler: metrics and console lines of every running sandbox, every interval.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let t = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(t.inner.settings.interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_prune: Option<std::time::Instant> = None;
            loop {
                tick.tick().await;
                t.sample_all().await;
                if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                    last_prune = Some(std::time::Instant::now());
                    t.prune();
                }
            }
        })
    }

    async fn sample_all(&self) {
        let rows = match self.store().all_sandboxes() {
            Ok(rows) => rows,
            Err(e) => return tracing::warn!(error = %e, "telemetry: cannot list sandboxes"),
        };
        let running: Vec<_> = rows
            .into_iter()
            .filter(|r| r.state == SandboxState::Running)
            .filter_map(|r| r.vm.map(|vm| (r.id, vm, r.access_token)))
            .collect();
        let samples = futures::future::join_all(
            running.iter().map(|(_, vm, token)| self.fetch_sample(vm.envd_addr, token.as_deref())),
        )
        .await;
        let now = now_ms();
        for ((id, vm, _), sample) in running.iter().zip(samples) {
            // A pause or kill may have stopped this VM while its sample was on the way.
            if !self.is_current(id, vm.pid) {
                continue;
            }
            match sample {
                Ok(s) => {
                    if let Err(e) = self.store().insert_sample(id, now, &s) {
                        tracing::warn!(sandbox = %id, error = %e, "telemetry: storing a sample failed");
                    }
                }
                Err(e) => tracing::debug!(sandbox = %id, error = %e, "telemetry: no metrics sample"),
            }
            self.collect_console(id, vm, false);
        }
    }

    async fn fetch_sample(&self, addr: SocketAddr, token: Option<&str>) -> anyhow::Result<Sample> {
        let mut req = hyper::Request::get(format!("http://{addr}/metrics")).header("host", "envd");
        if let Some(token) = token {
            req = req.header("x-access-token", token);
        }
        let req = req.body(Empty::new())?;
        let call = async {
            let resp = self.inner.client.request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::ensure!(status.is_success(), "envd /metrics answered {status}");
            Ok(serde_json::from_slice::<Sample>(&body)?)
        };
        tokio::time::timeout(SAMPLE_TIMEOUT, call).await.map_err(|_| anyhow::anyhow!("envd /metrics timed out"))?
    }

    /// Appends the new lines of `vm`'s serial console to the sandbox's logs; `last` also takes
    /// an unterminated last line (the VM is about to stop). Synchronous and quick.
    pub fn collect_console(&self, id: &str, vm: &VmInfo, last: bool) {
        let _guard = self.inner.console.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = self.collect_console_locked(id, vm, last) {
            tracing::warn!(sandbox = %id, error = %e, "telemetry: reading the guest console failed");
        }
    }

    /// Whether `pid` is still the VM of sandbox `id` (until a pause or kill clears it).
    fn is_current(&self, id: &str, pid: u32) -> bool {
        matches!(self.store().sandbox(id), Ok(Some(row)) if row.vm.as_ref().is_some_and(|vm| vm.pid == pid))
    }

    fn collect_console_locked(&self, id: &str, vm: &VmInfo, last: bool) -> anyhow::Result<()> {
        // A stale VM's run directory may already hold the console of the next one (resume).
        if !self.is_current(id, vm.pid) {
            return Ok(());
        }
        let path = crate::vm::qemu::console_path(&vm.run_dir);
        let cursor = self.store().console_cursor(id)?;
        let same_vm = cursor.pid == Some(vm.pid);
        let offset = if same_vm { cursor.offset } else { 0 };
        let Some(chunk) = console::read_new(&path, offset, last)? else { return Ok(()) };
        let now = now_ms();
        // Lines in this chunk were printed after the previous read (or after the console
        // file was created, for a new VM).
        let since = if same_vm { cursor.read_ms } else { chunk.created_ms.unwrap_or(0) };
        let mut records: Vec<_> = chunk.lines().filter_map(|line| console::parse(&line, id)).collect();
        let last_ms = console::assign_times(&mut records, cursor.last_ms.max(since.min(now)), now);
        let records: Vec<LogRecord> = records.into_iter().map(|(_, r)| r).collect();
        self.store().append_logs(id, vm.pid, chunk.end_offset, now, last_ms, &records)?;
        Ok(())
    }

    /// `vm` ran before it became sandbox `id` (a warm-pool VM): what its console printed so far
    /// (restore, warm-up) is not the sandbox's, so its logs start at the last complete line now.
    pub fn start_console_now(&self, id: &str, vm: &VmInfo) {
        let _guard = self.inner.console.lock().unwrap_or_else(|p| p.into_inner());
        let path = crate::vm::qemu::console_path(&vm.run_dir);
        let offset = std::fs::read(&path).map_or(0, |b| b.iter().rposition(|c| *c == b'\n').map_or(0, |i| i + 1));
        let now = now_ms();
        if let Err(e) = self.store().append_logs(id, vm.pid, offset as u64, now, now, &[]) {
            tracing::warn!(sandbox = %id, error = %e, "telemetry: recording the console start failed");
        }
    }

    /// The sandbox is gone (killed, expired, died): its rows are kept for the retention.
    pub fn sandbox_ended(&self, id: &str) {
        if let Err(e) = self.store().mark_ended(id, now_ms()) {
            tracing::warn!(sandbox = %id, error = %e, "telemetry: recording the end failed");
        }
    }

    /// Whether metrics or logs of `id` are still kept (a live or recently killed sandbox).
    pub fn known(&self, id: &str) -> crate::store::Result<bool> {
        self.store().telemetry_known(id, now_ms() - self.retention_ms())
    }

    fn retention_ms(&self) -> i64 {
        i64::try_from(self.inner.settings.retention.as_millis()).unwrap_or(i64::MAX)
    }

    fn prune(&self) {
        let now = now_ms();
        let result = self
            .store()
            .mark_orphans_ended(now)
            .and_then(|_| self.store().prune_telemetry(now - self.retention_ms(), now - MAX_AGE_MS, MAX_LOG_LINES));
        match result {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "telemetry: pruned"),
            Err(e) => tracing::warn!(error = %e, "telemetry: pruning failed"),
        }
    }

    pub fn metrics(
        &self,
        id: &str,
        start_ms: i64,
        end_ms: i64,
        step_secs: i64,
    ) -> crate::store::Result<Vec<(i64, Sample)>> {
        self.store().metrics(id, start_ms, end_ms, step_secs)
    }

    pub fn metrics_range(&self, id: &str) -> crate::store::Result<Option<(i64, i64)>> {
        self.store().metrics_range(id)
    }

    pub fn latest_metric(&self, id: &str) -> crate::store::Result<Option<(i64, Sample)>> {
        self.store().latest_metric(id)
    }

    pub fn logs(&self, id: &str, q: &LogQuery) -> crate::store::Result<Vec<LogRecord>> {
        self.store().logs(id, q)
    }
}
