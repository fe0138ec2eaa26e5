//! Request and response bodies of the REST API, with E2B's wire names.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `POST /v2/sandboxes` (and the legacy `POST /sandboxes`, which also takes `secure`).
#[derive(Debug, Clone, Serialize)]
pub struct NewSandbox {
    #[serde(rename = "templateID")]
    pub template_id: String,
    /// Seconds; omitted = the server's default (300 s on v2, 15 s on the v1 route).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<HashMap<String, String>>,
    #[serde(rename = "envVars", skip_serializing_if = "Option::is_none")]
    pub env_vars: Option<HashMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure: Option<bool>,
    #[serde(rename = "allow_internet_access", skip_serializing_if = "Option::is_none")]
    pub allow_internet_access: Option<bool>,
    #[serde(rename = "autoPause", skip_serializing_if = "Option::is_none")]
    pub auto_pause: Option<bool>,
    #[serde(rename = "autoPauseMemory", skip_serializing_if = "Option::is_none")]
    pub auto_pause_memory: Option<bool>,
    #[serde(rename = "autoResume", skip_serializing_if = "Option::is_none")]
    pub auto_resume: Option<crate::options::AutoResume>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::options::NetworkBody>,
    /// MCP gateway servers (the SDK then starts the gateway, see `mcp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp: Option<serde_json::Value>,
    #[serde(rename = "volumeMounts", skip_serializing_if = "Option::is_none")]
    pub volume_mounts: Option<Vec<crate::models::VolumeMount>>,
    /// Workload identity (`{tokens: {name: {audience, tokenType}}}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iam: Option<serde_json::Value>,
}

/// `Sandbox`: the answer of create, connect and fork.
#[derive(Debug, Clone, Deserialize)]
pub struct SandboxResponse {
    #[serde(rename = "templateID")]
    pub template_id: String,
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    #[serde(rename = "envdVersion", default)]
    pub envd_version: String,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(rename = "envdAccessToken", default)]
    pub envd_access_token: Option<String>,
    #[serde(rename = "trafficAccessToken", default)]
    pub traffic_access_token: Option<String>,
    #[serde(default)]
    pub domain: Option<String>,
}

/// `SandboxDetail` (`GET /sandboxes/{id}`) and `ListedSandbox` (`GET /v2/sandboxes`).
#[derive(Debug, Clone, Deserialize)]
pub struct SandboxDetail {
    #[serde(rename = "templateID")]
    pub template_id: String,
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(rename = "startedAt")]
    pub started_at: DateTime<Utc>,
    #[serde(rename = "endAt")]
    pub end_at: DateTime<Utc>,
    #[serde(rename = "cpuCount", default)]
    pub cpu_count: u32,
    #[serde(rename = "memoryMB", default)]
    pub memory_mb: u32,
    #[serde(rename = "diskSizeMB", default)]
    pub disk_size_mb: Option<u32>,
    #[serde(default)]
    pub state: String,
    #[serde(rename = "envdVersion", default)]
    pub envd_version: String,
    #[serde(default)]
    pub metadata: Option<HashMap<String, String>>,
    #[serde(rename = "envdAccessToken", default)]
    pub envd_access_token: Option<String>,
    #[serde(rename = "allowInternetAccess", default)]
    pub allow_internet_access: Option<bool>,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub lifecycle: Option<Lifecycle>,
    #[serde(default)]
    pub network: Option<crate::models::NetworkInfo>,
    #[serde(rename = "volumeMounts", default)]
    pub volume_mounts: Option<Vec<crate::models::VolumeMount>>,
    #[serde(rename = "envdUnresponsiveAtPause", default)]
    pub envd_unresponsive_at_pause: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct Lifecycle {
    #[serde(rename = "autoResume")]
    pub auto_resume: bool,
    #[serde(rename = "onTimeout")]
    pub on_timeout: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimeoutRequest {
    pub timeout: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectRequest {
    /// Seconds; omitted = the server's default (required on the v1 route).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// `false` = cold-boot from disk (`on_resume="reboot"`); omitted = restore memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct PauseRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<bool>,
    /// `strict=True`: refuse the pause when envd does not answer.
    #[serde(rename = "requireHealthyGuest", skip_serializing_if = "Option::is_none")]
    pub require_healthy_guest: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct ForkRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

/// One entry of `POST /sandboxes/{id}/fork`: exactly one of the two is set.
#[derive(Debug, Clone, Deserialize)]
pub struct ForkResult {
    #[serde(default)]
    pub sandbox: Option<SandboxResponse>,
    #[serde(default)]
    pub error: Option<ApiError>,
}

/// The REST error body.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiError {
    #[serde(default)]
    pub code: u16,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct SnapshotRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<bool>,
}

/// `SnapshotInfo` on the wire.
#[derive(Debug, Clone, Deserialize)]
pub struct SnapshotWire {
    #[serde(rename = "snapshotID")]
    pub snapshot_id: String,
    #[serde(default)]
    pub names: Vec<String>,
}
