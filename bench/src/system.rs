//! One sandbox platform under test (ours, gVisor, CRIU), driven through the same workload so
//! that rows of a table compare like with like.
//!
//! The workload (the same for every system): a process that holds `dirty_mib` MiB of random
//! bytes in memory (never on disk) and increments a counter every 50 ms, next to a few files
//! written before the snapshot. Every restore is checked: the clone's process holds exactly
//! the bytes the source held (sha256), its counter continues from at least the source's value
//! at capture, and the pre-snapshot files are there.
//!
//! Definitions, host-side and identical for every system:
//! - `frozen_ms`: how long the source's workload could not run because of the snapshot
//!   (ours: QMP `stop` → `cont`; gVisor: `checkpoint` start → the source restored and running
//!   again under its new ID, since runsc 2022's `--leave-running` is checkpoint+restore anyway).
//! - `durable_ms`: snapshot call start → the snapshot is complete on disk and usable
//!   (ours: listed by `GET /snapshots`; gVisor/CRIU: the image directory is written and synced).
//! - `size_mib`: allocated bytes on disk of what the snapshot adds (st_blocks, not apparent size).
//! - `ready_ms`: restore start → the first command run inside the clone returned the expected
//!   output.
//! - `pss_mib`: proportional set size of everything the clone keeps on the host, measured with
//!   all clones of the batch alive.
//!
//! Methods are blocking; implementations that are async inside own their runtime.

/// A system's handle on a running sandbox (source or clone).
pub type SandboxRef = String;
/// A system's handle on a snapshot.
pub type SnapshotRef = String;

#[derive(Debug, Clone)]
pub struct SnapshotSample {
    pub snapshot: SnapshotRef,
    pub frozen_ms: f64,
    pub durable_ms: f64,
    pub size_mib: f64,
}

#[derive(Debug, Clone)]
pub struct CloneSample {
    pub sandbox: SandboxRef,
    pub ready_ms: f64,
    /// `None` only if the system gives no way to read it (the table then says so).
    pub pss_mib: Option<f64>,
}

/// The result of restoring `n` clones at once.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub wall_ms: f64,
    /// One entry per clone that came up and passed the state check.
    pub ok: Vec<CloneSample>,
    /// One message per clone that failed.
    pub errors: Vec<String>,
}

pub trait System {
    /// Short name for tables and plots: "sandboxd", "gVisor (runsc 2022)", "CRIU 3.17".
    fn name(&self) -> String;
    /// Starts a source sandbox running the workload with `dirty_mib` MiB of dirty memory and
    /// waits until the memory is filled.
    fn start_source(&mut self, dirty_mib: u32) -> anyhow::Result<SandboxRef>;
    /// Snapshots a running source (memory + filesystem); the source keeps running after it.
    fn snapshot(&mut self, source: &SandboxRef) -> anyhow::Result<SnapshotSample>;
    /// Restores `n` clones at once from `snapshot` and checks each one's state. The clones stay
    /// alive (PSS is read with all of them up) until `kill` is called on them.
    fn restore(&mut self, snapshot: &SnapshotRef, n: usize) -> anyhow::Result<Batch>;
    /// Pause (memory + filesystem kept), then resume and run a first command; returns ms from
    /// the resume call to the first command's correct output. The sandbox keeps its identity.
    fn pause_resume(&mut self, sandbox: &SandboxRef) -> anyhow::Result<f64>;
    /// How long the pause of the last `pause_resume` took (call start → paused, memory kept),
    /// for systems that can tell; the table shows "n/a" otherwise.
    fn last_pause_ms(&self) -> Option<f64> {
        None
    }
    /// Checks that the workload in `sandbox` still holds the source's memory and counts on.
    fn verify(&mut self, sandbox: &SandboxRef) -> anyhow::Result<()>;
    fn kill(&mut self, sandbox: &SandboxRef) -> anyhow::Result<()>;
    fn delete_snapshot(&mut self, snapshot: &SnapshotRef) -> anyhow::Result<()>;
}
