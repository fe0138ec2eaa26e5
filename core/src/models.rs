//! Public data types returned by the client (E2B's field names, snake_case in Rust).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

pub use crate::api::models::Lifecycle;

/// What `get_info` and `list` return about a sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxInfo {
    pub sandbox_id: String,
    pub sandbox_domain: Option<String>,
    pub template_id: String,
    /// The template alias, if any.
    pub name: Option<String>,
    pub metadata: HashMap<String, String>,
    pub started_at: DateTime<Utc>,
    pub end_at: DateTime<Utc>,
    /// `running` or `paused`.
    pub state: String,
    pub cpu_count: u32,
    pub memory_mb: u32,
    pub envd_version: String,
    pub allow_internet_access: Option<bool>,
    pub lifecycle: Option<Lifecycle>,
    /// The egress configuration, when the server reports one.
    pub network: Option<NetworkInfo>,
    pub volume_mounts: Vec<VolumeMount>,
    /// `Some(true)` when the sandbox was paused while envd did not answer (resume with reboot).
    pub envd_unresponsive_at_pause: Option<bool>,
}

/// A sandbox's egress configuration as reported by `get_info` (E2B's `SandboxNetworkInfo`,
/// the parts this SDK knows).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkInfo {
    pub allow_out: Option<Vec<String>>,
    pub deny_out: Option<Vec<String>>,
    pub dns_servers: Option<Vec<String>>,
    pub allow_public_traffic: Option<bool>,
    pub mask_request_host: Option<String>,
    pub https_ports: Option<Vec<u16>>,
}

/// A volume mounted into a sandbox (`volumeMounts` of a create and of `SandboxDetail`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct VolumeMount {
    pub name: String,
    pub path: String,
}

impl From<crate::api::models::SandboxDetail> for SandboxInfo {
    fn from(d: crate::api::models::SandboxDetail) -> Self {
        SandboxInfo {
            sandbox_id: d.sandbox_id,
            sandbox_domain: d.domain,
            template_id: d.template_id,
            name: d.alias,
            metadata: d.metadata.unwrap_or_default(),
            started_at: d.started_at,
            end_at: d.end_at,
            state: d.state,
            cpu_count: d.cpu_count,
            memory_mb: d.memory_mb,
            envd_version: d.envd_version,
            allow_internet_access: d.allow_internet_access,
            lifecycle: d.lifecycle,
            network: d.network,
            volume_mounts: d.volume_mounts.unwrap_or_default(),
            envd_unresponsive_at_pause: d.envd_unresponsive_at_pause.filter(|b| *b),
        }
    }
}

/// A persistent snapshot: its ID is usable as a template in `Sandbox::create`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotInfo {
    pub snapshot_id: String,
    /// Full names (`team-slug/name`, without tag).
    pub names: Vec<String>,
}

/// Filter for `Sandbox::list`.
#[derive(Debug, Clone, Default)]
pub struct SandboxQuery {
    pub metadata: HashMap<String, String>,
    /// `running` and/or `paused`; empty means both.
    pub state: Vec<String>,
    pub started_after: Option<DateTime<Utc>>,
    pub template: Option<String>,
}

/// The outcome of a finished command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandResult {
    pub stdout: String,
    pub stderr: String,
    pub exit_code: i32,
    pub error: Option<String>,
}

/// A running process in the sandbox (`commands.list`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: u32,
    pub tag: Option<String>,
    pub cmd: String,
    pub args: Vec<String>,
    pub envs: HashMap<String, String>,
    pub cwd: Option<String>,
}

/// File type as E2B names it: `file`, `dir` or `symlink`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    File,
    Dir,
    Symlink,
}

impl FileType {
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::File => "file",
            FileType::Dir => "dir",
            FileType::Symlink => "symlink",
        }
    }
}

/// A file or directory in the sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryInfo {
    pub name: String,
    pub r#type: Option<FileType>,
    pub path: String,
    pub size: i64,
    pub mode: u32,
    pub permissions: String,
    pub owner: String,
    pub group: String,
    pub modified_time: Option<DateTime<Utc>>,
    pub symlink_target: Option<String>,
    pub metadata: HashMap<String, String>,
}

/// What `files.write` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteInfo {
    pub name: String,
    pub r#type: Option<FileType>,
    pub path: String,
    pub metadata: HashMap<String, String>,
}

/// Why a JSON object is not a [`WriteInfo`] / [`EntryInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromJsonError {
    /// A required key is absent (the SDKs' `KeyError`).
    Missing(&'static str),
    /// A key holds a value of the wrong kind.
    Invalid(String),
}

impl std::fmt::Display for FromJsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FromJsonError::Missing(key) => write!(f, "missing key '{key}'"),
            FromJsonError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for FromJsonError {}

type Object = serde_json::Map<String, serde_json::Value>;

fn required_str(o: &Object, key: &'static str) -> std::result::Result<String, FromJsonError> {
    match o.get(key) {
        None => Err(FromJsonError::Missing(key)),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(FromJsonError::Invalid(format!("'{key}' must be a string, got {v}"))),
    }
}

fn optional_str(o: &Object, key: &str) -> Option<String> {
    o.get(key).and_then(|v| v.as_str()).map(String::from)
}

/// `metadata`: an object of strings; absent, null or empty is no metadata.
fn metadata_of(o: &Object) -> std::result::Result<HashMap<String, String>, FromJsonError> {
    match o.get("metadata") {
        None | Some(serde_json::Value::Null) => Ok(HashMap::new()),
        Some(serde_json::Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k.clone(), s.clone())),
                v => Err(FromJsonError::Invalid(format!("metadata '{k}' must be a string, got {v}"))),
            })
            .collect(),
        Some(v) => Err(FromJsonError::Invalid(format!("'metadata' must be an object, got {v}"))),
    }
}

impl FileType {
    /// The wire's `type` string (`file`, `dir`, `symlink`); anything else is unknown.
    pub fn parse(s: &str) -> Option<FileType> {
        match s {
            "file" => Some(FileType::File),
            "dir" | "directory" => Some(FileType::Dir),
            "symlink" => Some(FileType::Symlink),
            _ => None,
        }
    }
}

impl WriteInfo {
    /// From one entry of envd's `POST /files` answer (`name`, `path` required; `type`,
    /// `metadata` optional), as the official SDKs' `WriteInfo.from_dict`.
    pub fn from_json(v: &serde_json::Value) -> std::result::Result<WriteInfo, FromJsonError> {
        let o = v.as_object().ok_or_else(|| FromJsonError::Invalid(format!("expected an object, got {v}")))?;
        Ok(WriteInfo {
            name: required_str(o, "name")?,
            r#type: optional_str(o, "type").as_deref().and_then(FileType::parse),
            path: required_str(o, "path")?,
            metadata: metadata_of(o)?,
        })
    }
}

impl EntryInfo {
    /// From a JSON object with [`WriteInfo`]'s keys plus `size`, `mode`, `permissions`,
    /// `owner`, `group`, `modified_time` (RFC 3339) and `symlink_target` (all optional).
    pub fn from_json(v: &serde_json::Value) -> std::result::Result<EntryInfo, FromJsonError> {
        let w = WriteInfo::from_json(v)?;
        let o = v.as_object().expect("checked by WriteInfo::from_json");
        let int = |key: &str| o.get(key).and_then(|v| v.as_i64()).unwrap_or(0);
        let modified_time = match optional_str(o, "modified_time") {
            None => None,
            Some(t) => Some(
                DateTime::parse_from_rfc3339(&t)
                    .map_err(|e| FromJsonError::Invalid(format!("'modified_time' is not RFC 3339 ({t}): {e}")))?
                    .with_timezone(&Utc),
            ),
        };
        Ok(EntryInfo {
            name: w.name,
            r#type: w.r#type,
            path: w.path,
            size: int("size"),
            mode: u32::try_from(int("mode")).map_err(|_| FromJsonError::Invalid("'mode' is out of range".into()))?,
            permissions: optional_str(o, "permissions").unwrap_or_default(),
            owner: optional_str(o, "owner").unwrap_or_default(),
            group: optional_str(o, "group").unwrap_or_default(),
            modified_time,
            symlink_target: optional_str(o, "symlink_target"),
            metadata: w.metadata,
        })
    }
}
