//! Wire types of the REST API, with E2B's exact JSON names (camelCase, except
//! `allow_internet_access`). Requests ignore unknown fields, so newer SDKs keep working;
//! responses may carry extra fields (the generated SDK clients keep them aside).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::ids;
use crate::store::{ImageRow, SandboxRow};

/// `clientID` is deprecated in E2B but still required by the SDK models.
pub const CLIENT_ID: &str = "local";

/// `POST /sandboxes` (`NewSandbox`) and `POST /v2/sandboxes` (`NewSandboxV2`).
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct NewSandbox {
    #[serde(rename = "templateID")]
    pub template_id: Option<String>,
    pub timeout: Option<i64>,
    pub auto_pause: Option<bool>,
    pub auto_pause_memory: Option<bool>,
    pub auto_resume: Option<AutoResume>,
    pub secure: Option<bool>,
    #[serde(rename = "allow_internet_access")]
    pub allow_internet_access: Option<bool>,
    pub metadata: Option<BTreeMap<String, String>>,
    pub env_vars: Option<HashMap<String, String>>,
    pub network: Option<crate::network::NetworkRequest>,
    /// MCP gateway servers: as in E2B, the SDK starts the gateway in the sandbox after the
    /// create (`mcp-gateway --config …`, from the `mcp-gateway` template); the server only
    /// checks that it is an object.
    pub mcp: Option<serde_json::Value>,
    /// `[{name, path}]`: volumes to mount (see `manager/volumes.rs`).
    pub volume_mounts: Option<Vec<serde_json::Value>>,
    /// Workload identity tokens (`{tokens: {name: {audience, tokenType}}}`, see
    /// `network::identity`).
    pub iam: Option<serde_json::Value>,
}

impl NewSandbox {
    /// The first option this sandboxd cannot honour, if one was asked for: sandboxd refuses it
    /// rather than start a sandbox without it. Empty values (`null`, `[]`, `{}`) ask for nothing.
    pub fn unsupported(&self) -> Option<&'static str> {
        if !matches!(self.mcp, None | Some(serde_json::Value::Null) | Some(serde_json::Value::Object(_))) {
            Some("mcp must be an object of MCP server configurations")
        } else {
            None
        }
    }
}

#[derive(Debug, Deserialize, Default, Clone, Copy)]
pub struct AutoResume {
    #[serde(default)]
    pub enabled: bool,
}

/// `SandboxTimeoutRequest`, `ConnectSandbox`, `ResumedSandbox`, `SandboxForkRequest`,
/// `SandboxRefreshRequest` and `SandboxSnapshotRequest` share this shape.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TimeoutBody {
    pub timeout: Option<i64>,
    pub duration: Option<i64>,
    pub count: Option<i64>,
    pub name: Option<String>,
    /// Connect/resume: false cold-boots from disk; snapshot: false keeps the filesystem only.
    pub memory: Option<bool>,
}

/// `SandboxPauseRequest`.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PauseBody {
    /// False: keep only the filesystem (resume cold-boots). Absent or true: memory and disk.
    pub memory: Option<bool>,
    /// Refuse with 503 (sandbox keeps running) unless the guest agent answers.
    pub require_healthy_guest: Option<bool>,
}

/// `Sandbox`: returned by create, connect, resume and fork.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sandbox {
    #[serde(rename = "templateID")]
    pub template_id: String,
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    #[serde(rename = "clientID")]
    pub client_id: &'static str,
    pub envd_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envd_access_token: Option<String>,
    pub traffic_access_token: Option<String>,
    pub domain: Option<String>,
}

impl From<&SandboxRow> for Sandbox {
    fn from(s: &SandboxRow) -> Self {
        Self {
            template_id: s.template_id.clone(),
            sandbox_id: s.id.clone(),
            client_id: CLIENT_ID,
            envd_version: s.envd_version.clone(),
            alias: s.alias.clone(),
            envd_access_token: s.access_token.clone(),
            traffic_access_token: s.traffic_access_token.clone(),
            domain: crate::config::sandbox_domain().map(str::to_string),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    pub auto_resume: bool,
    pub on_timeout: &'static str,
}

/// `ListedSandbox` (list) and `SandboxDetail` (get): the detail adds the optional fields.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxDetail {
    #[serde(rename = "templateID")]
    pub template_id: String,
    #[serde(rename = "sandboxID")]
    pub sandbox_id: String,
    #[serde(rename = "clientID")]
    pub client_id: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    pub started_at: String,
    pub end_at: String,
    pub cpu_count: u32,
    #[serde(rename = "memoryMB")]
    pub memory_mb: u32,
    #[serde(rename = "diskSizeMB")]
    pub disk_size_mb: u32,
    pub state: &'static str,
    pub envd_version: String,
    pub metadata: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub envd_access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_internet_access: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<crate::network::NetworkConfig>,
    /// `SandboxVolumeMount`s: `{name, path}`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<serde_json::Value>,
}

impl SandboxDetail {
    /// `detailed` adds the fields only `GET /sandboxes/{id}` returns (tokens, lifecycle).
    pub fn new(s: &SandboxRow, detailed: bool) -> Self {
        Self {
            template_id: s.template_id.clone(),
            sandbox_id: s.id.clone(),
            client_id: CLIENT_ID,
            alias: s.alias.clone(),
            started_at: ids::ns_to_rfc3339(s.started_at),
            end_at: ids::ns_to_rfc3339(s.end_at),
            cpu_count: s.cpu_count,
            memory_mb: s.memory_mb,
            disk_size_mb: s.disk_size_mb,
            state: s.state.public(),
            envd_version: s.envd_version.clone(),
            metadata: s.metadata.clone(),
            envd_access_token: if detailed { s.access_token.clone() } else { None },
            allow_internet_access: detailed.then_some(s.allow_internet),
            lifecycle: detailed.then_some(Lifecycle {
                auto_resume: s.auto_resume,
                on_timeout: if s.auto_pause { "pause" } else { "kill" },
            }),
            domain: crate::config::sandbox_domain().map(str::to_string),
            // The iam tokens ride along in the stored configuration; `network` shows the rest.
            network: s
                .network
                .clone()
                .filter(|_| detailed)
                .map(|n| crate::network::NetworkConfig { iam_tokens: None, ..n })
                .filter(|n| *n != crate::network::NetworkConfig::default()),
            volume_mounts: s
                .volume_mounts
                .iter()
                .map(|m| serde_json::json!({"name": m.name, "path": m.path}))
                .collect(),
        }
    }
}

/// `SnapshotInfo`, plus sandboxd's extra `sizeBytes` and `createdAt`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotInfo {
    #[serde(rename = "snapshotID")]
    pub snapshot_id: String,
    pub names: Vec<String>,
    pub size_bytes: u64,
    pub created_at: String,
}

impl From<&ImageRow> for SnapshotInfo {
    fn from(img: &ImageRow) -> Self {
        Self {
            snapshot_id: img.snapshot_id(),
            names: img.names(),
            size_bytes: img.size_bytes,
            created_at: ids::ns_to_rfc3339(img.created_at),
        }
    }
}

/// One entry of `POST /sandboxes/{id}/fork`: exactly one of the two is set.
#[derive(Debug, Serialize)]
pub struct ForkResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<Sandbox>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
}
