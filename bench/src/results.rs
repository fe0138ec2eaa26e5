//! Everything one run measured, every sample kept: written to `results.json`, read back by the
//! report (`report.rs`) and the plots (`bench/plot.py`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Results {
    /// "quick" or "full".
    pub mode: String,
    /// The command that produced this file.
    pub command: String,
    pub started_utc: String,
    pub duration_s: f64,
    pub machine: Machine,
    pub systems: Vec<SystemStatus>,
    pub snapshot: Vec<SnapshotSeries>,
    pub restore: Vec<RestoreSeries>,
    pub concurrent: Vec<ConcurrentSeries>,
    pub pause_resume: Vec<PauseSeries>,
    pub api: Option<ApiResults>,
    pub create: Option<CreateResults>,
    /// `create` again, against a sandboxd with a warm pool of one VM (`SANDBOXD_POOL_SIZE=1`).
    #[serde(default)]
    pub create_pooled: Option<CreateResults>,
    /// Restores of one snapshot (the restore scenario's source) from a warm pool of one VM.
    #[serde(default)]
    pub restore_pooled: Option<CreateResults>,
    #[serde(default)]
    pub template: Option<TemplateResults>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub mem_gib: f64,
    pub os: String,
    pub kernel: String,
    pub qemu: String,
    pub accelerator: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SystemStatus {
    pub name: String,
    /// Why it could not run here (`None`: it ran).
    pub unavailable: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotSeries {
    pub system: String,
    pub dirty_mib: u32,
    /// What the system ran the workload in (ours: the guest size).
    pub guest: String,
    pub frozen_ms: Vec<f64>,
    pub durable_ms: Vec<f64>,
    pub size_mib: Vec<f64>,
    /// A clone of the last snapshot was restored and its state checked.
    pub restore_verified: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreSeries {
    pub system: String,
    pub dirty_mib: u32,
    pub guest: String,
    pub ready_ms: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConcurrentSeries {
    pub system: String,
    pub clones: usize,
    pub dirty_mib: u32,
    pub guest: String,
    /// One per batch.
    pub wall_ms: Vec<f64>,
    /// Clones that came up with the right state, summed over batches.
    pub succeeded: usize,
    pub attempted: usize,
    pub errors: Vec<String>,
    pub ready_ms: Vec<f64>,
    pub pss_mib: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PauseSeries {
    pub system: String,
    pub dirty_mib: u32,
    pub guest: String,
    /// Resume call → first command's output.
    pub resume_ms: Vec<f64>,
    /// Pause call → paused (only systems that report it).
    pub pause_ms: Vec<f64>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ApiResults {
    pub snapshots: usize,
    pub sources: usize,
    pub create_s: f64,
    /// Snapshot calls answered 409 (sandbox busy for a moment) and asked again.
    #[serde(default)]
    pub busy_retries: usize,
    pub limit: u32,
    pub pages: Vec<PageSeries>,
    pub throughput: Vec<Throughput>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageSeries {
    pub page: usize,
    pub ms: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Throughput {
    pub op: String,
    pub clients: usize,
    pub duration_s: f64,
    pub requests: usize,
    pub errors: usize,
    pub ms: Vec<f64>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct CreateResults {
    pub template: String,
    pub total_ms: Vec<f64>,
    pub create_ms: Vec<f64>,
    pub first_command_ms: Vec<f64>,
    pub pss_mib: Vec<f64>,
}

/// `template`: one small custom template, built cold and unchanged, then created from.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct TemplateResults {
    pub name: String,
    pub cold_build_s: f64,
    pub cached_build_s: f64,
    /// Layers the unchanged rebuild reported as cached.
    pub cached_layers: usize,
    pub create_first_command_ms: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub scenario: String,
    pub system: String,
    pub error: String,
}
