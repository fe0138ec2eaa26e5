//! Result types as Python classes with E2B's field names (read-only attributes, `==`, `repr`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use pyo3::prelude::*;

/// A persistent snapshot; `snapshot_id` works as a template for `Sandbox.create`.
#[pyclass(module = "e2b._native", frozen, eq, from_py_object)]
#[derive(Clone, PartialEq)]
pub struct SnapshotInfo {
    #[pyo3(get)]
    pub snapshot_id: String,
    #[pyo3(get)]
    pub names: Vec<String>,
}

#[pymethods]
impl SnapshotInfo {
    #[new]
    #[pyo3(signature = (snapshot_id, names=None))]
    fn new(snapshot_id: String, names: Option<Vec<String>>) -> Self {
        SnapshotInfo { snapshot_id, names: names.unwrap_or_default() }
    }
    fn __repr__(&self) -> String {
        format!("SnapshotInfo(snapshot_id={:?}, names={:?})", self.snapshot_id, self.names)
    }
}

impl From<e2b::SnapshotInfo> for SnapshotInfo {
    fn from(s: e2b::SnapshotInfo) -> Self {
        SnapshotInfo { snapshot_id: s.snapshot_id, names: s.names }
    }
}

/// Sandbox details from `get_info` and `list`.
#[pyclass(module = "e2b._native", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct SandboxInfo {
    #[pyo3(get)]
    pub sandbox_id: String,
    #[pyo3(get)]
    pub sandbox_domain: Option<String>,
    #[pyo3(get)]
    pub template_id: String,
    #[pyo3(get)]
    pub name: Option<String>,
    #[pyo3(get)]
    pub metadata: HashMap<String, String>,
    #[pyo3(get)]
    pub started_at: DateTime<Utc>,
    #[pyo3(get)]
    pub end_at: DateTime<Utc>,
    pub state: String,
    #[pyo3(get)]
    pub cpu_count: u32,
    #[pyo3(get)]
    pub memory_mb: u32,
    #[pyo3(get)]
    pub envd_version: String,
    #[pyo3(get)]
    pub allow_internet_access: Option<bool>,
    lifecycle: Option<(String, bool)>,
    network: Option<e2b::models::NetworkInfo>,
    volume_mounts: Vec<(String, String)>,
    #[pyo3(get)]
    pub envd_unresponsive_at_pause: Option<bool>,
}

#[pymethods]
impl SandboxInfo {
    /// `{"on_timeout": "kill"|"pause", "auto_resume": bool}` or None.
    #[getter]
    fn lifecycle<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, pyo3::types::PyDict>>> {
        let Some((on_timeout, auto_resume)) = self.lifecycle.clone() else { return Ok(None) };
        let d = pyo3::types::PyDict::new(py);
        d.set_item("on_timeout", on_timeout)?;
        d.set_item("auto_resume", auto_resume)?;
        Ok(Some(d))
    }
    /// `SandboxState.RUNNING` / `SandboxState.PAUSED` (the string itself for an unknown state).
    #[getter]
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let enum_cls = py.import("e2b.models")?.getattr("SandboxState")?;
        match enum_cls.call1((self.state.as_str(),)) {
            Ok(v) => Ok(v),
            Err(_) => Ok(pyo3::types::PyString::new(py, &self.state).into_any()),
        }
    }

    /// `{"allow_out": [...], "deny_out": [...], ...}` with the keys the server reported, or None.
    #[getter]
    fn network<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, pyo3::types::PyDict>>> {
        let Some(n) = &self.network else { return Ok(None) };
        let d = pyo3::types::PyDict::new(py);
        if let Some(v) = &n.allow_out {
            d.set_item("allow_out", v)?;
        }
        if let Some(v) = &n.deny_out {
            d.set_item("deny_out", v)?;
        }
        if let Some(v) = &n.dns_servers {
            d.set_item("dns_servers", v)?;
        }
        if let Some(v) = n.allow_public_traffic {
            d.set_item("allow_public_traffic", v)?;
        }
        if let Some(v) = &n.mask_request_host {
            d.set_item("mask_request_host", v)?;
        }
        if let Some(v) = &n.https_ports {
            d.set_item("https_ports", v)?;
        }
        Ok(Some(d))
    }

    /// `[{"name": ..., "path": ...}]`.
    #[getter]
    fn volume_mounts<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, pyo3::types::PyList>> {
        let list = pyo3::types::PyList::empty(py);
        for (name, path) in &self.volume_mounts {
            let d = pyo3::types::PyDict::new(py);
            d.set_item("name", name)?;
            d.set_item("path", path)?;
            list.append(d)?;
        }
        Ok(list)
    }

    fn __repr__(&self) -> String {
        format!(
            "SandboxInfo(sandbox_id={:?}, template_id={:?}, state={:?}, started_at={}, end_at={})",
            self.sandbox_id, self.template_id, self.state, self.started_at, self.end_at
        )
    }
}

impl From<e2b::SandboxInfo> for SandboxInfo {
    fn from(s: e2b::SandboxInfo) -> Self {
        SandboxInfo {
            sandbox_id: s.sandbox_id,
            sandbox_domain: s.sandbox_domain,
            template_id: s.template_id,
            name: s.name,
            metadata: s.metadata,
            started_at: s.started_at,
            end_at: s.end_at,
            state: s.state,
            cpu_count: s.cpu_count,
            memory_mb: s.memory_mb,
            envd_version: s.envd_version,
            allow_internet_access: s.allow_internet_access,
            lifecycle: s.lifecycle.map(|l| (l.on_timeout, l.auto_resume)),
            network: s.network,
            volume_mounts: s.volume_mounts.into_iter().map(|v| (v.name, v.path)).collect(),
            envd_unresponsive_at_pause: s.envd_unresponsive_at_pause,
        }
    }
}

/// A finished command.
#[pyclass(module = "e2b._native", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct CommandResult {
    #[pyo3(get)]
    pub stdout: String,
    #[pyo3(get)]
    pub stderr: String,
    #[pyo3(get)]
    pub exit_code: i32,
    #[pyo3(get)]
    pub error: Option<String>,
}

#[pymethods]
impl CommandResult {
    #[new]
    #[pyo3(signature = (stdout, stderr, exit_code, error=None))]
    fn new(stdout: String, stderr: String, exit_code: i32, error: Option<String>) -> Self {
        CommandResult { stdout, stderr, exit_code, error }
    }
    fn __repr__(&self) -> String {
        format!(
            "CommandResult(stdout={:?}, stderr={:?}, exit_code={}, error={:?})",
            self.stdout, self.stderr, self.exit_code, self.error
        )
    }
}

impl From<e2b::CommandResult> for CommandResult {
    fn from(r: e2b::CommandResult) -> Self {
        CommandResult { stdout: r.stdout, stderr: r.stderr, exit_code: r.exit_code, error: r.error }
    }
}

/// A running process (`commands.list()`).
#[pyclass(module = "e2b._native", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct ProcessInfo {
    #[pyo3(get)]
    pub pid: u32,
    #[pyo3(get)]
    pub tag: Option<String>,
    #[pyo3(get)]
    pub cmd: String,
    #[pyo3(get)]
    pub args: Vec<String>,
    #[pyo3(get)]
    pub envs: HashMap<String, String>,
    #[pyo3(get)]
    pub cwd: Option<String>,
}

#[pymethods]
impl ProcessInfo {
    fn __repr__(&self) -> String {
        format!("ProcessInfo(pid={}, cmd={:?}, args={:?})", self.pid, self.cmd, self.args)
    }
}

impl From<e2b::ProcessInfo> for ProcessInfo {
    fn from(p: e2b::ProcessInfo) -> Self {
        ProcessInfo { pid: p.pid, tag: p.tag, cmd: p.cmd, args: p.args, envs: p.envs, cwd: p.cwd }
    }
}

/// A file or directory in the sandbox. `type` is `"file"`, `"dir"`, `"symlink"` or None
/// (compare with `e2b.FileType`, a `str` enum).
#[pyclass(module = "e2b._native", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct EntryInfo {
    #[pyo3(get)]
    pub name: String,
    #[pyo3(get, name = "type")]
    pub r#type: Option<&'static str>,
    #[pyo3(get)]
    pub path: String,
    #[pyo3(get)]
    pub size: i64,
    #[pyo3(get)]
    pub mode: u32,
    #[pyo3(get)]
    pub permissions: String,
    #[pyo3(get)]
    pub owner: String,
    #[pyo3(get)]
    pub group: String,
    #[pyo3(get)]
    pub modified_time: Option<DateTime<Utc>>,
    #[pyo3(get)]
    pub symlink_target: Option<String>,
    #[pyo3(get)]
    pub metadata: HashMap<String, String>,
}

#[pymethods]
impl EntryInfo {
    /// An `EntryInfo` from a dict with its fields (`name`, `path` required).
    #[classmethod]
    fn from_dict(_cls: &Bound<'_, pyo3::types::PyType>, payload: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(e2b::EntryInfo::from_json(&dict_to_json(payload)?).map_err(from_json_err)?.into())
    }

    fn __repr__(&self) -> String {
        format!("EntryInfo(name={:?}, type={:?}, path={:?}, size={})", self.name, self.r#type, self.path, self.size)
    }
}

impl From<e2b::EntryInfo> for EntryInfo {
    fn from(e: e2b::EntryInfo) -> Self {
        EntryInfo {
            name: e.name,
            r#type: e.r#type.map(|t| t.as_str()),
            path: e.path,
            size: e.size,
            mode: e.mode,
            permissions: e.permissions,
            owner: e.owner,
            group: e.group,
            modified_time: e.modified_time,
            symlink_target: e.symlink_target,
            metadata: e.metadata,
        }
    }
}

/// What `files.write` returns.
#[pyclass(module = "e2b._native", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct WriteInfo {
    #[pyo3(get)]
    pub name: String,
    #[pyo3(get, name = "type")]
    pub r#type: Option<&'static str>,
    #[pyo3(get)]
    pub path: String,
    #[pyo3(get)]
    pub metadata: HashMap<String, String>,
}

#[pymethods]
impl WriteInfo {
    /// Build a `WriteInfo` from a `/files` upload response entry.
    #[classmethod]
    fn from_dict(_cls: &Bound<'_, pyo3::types::PyType>, payload: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(e2b::WriteInfo::from_json(&dict_to_json(payload)?).map_err(from_json_err)?.into())
    }

    fn __repr__(&self) -> String {
        format!("WriteInfo(name={:?}, type={:?}, path={:?})", self.name, self.r#type, self.path)
    }
}

impl From<e2b::WriteInfo> for WriteInfo {
    fn from(w: e2b::WriteInfo) -> Self {
        WriteInfo { name: w.name, r#type: w.r#type.map(|t| t.as_str()), path: w.path, metadata: w.metadata }
    }
}

/// A Python mapping as JSON (dates as ISO 8601), for the core's `from_json` constructors.
fn dict_to_json(payload: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    let py = payload.py();
    if !payload.is_instance_of::<pyo3::types::PyDict>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "payload must be a dict, not {}",
            payload.get_type().name()?
        )));
    }
    let default = py.eval(c"lambda o: o.isoformat() if hasattr(o, 'isoformat') else str(o)", None, None)?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("default", default)?;
    let text: String = py.import("json")?.call_method("dumps", (payload,), Some(&kwargs))?.extract()?;
    serde_json::from_str(&text).map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
}

/// A missing key is a `KeyError`, as in the official SDK (`payload["name"]`).
fn from_json_err(e: e2b::FromJsonError) -> PyErr {
    match e {
        e2b::FromJsonError::Missing(key) => pyo3::exceptions::PyKeyError::new_err(key),
        e2b::FromJsonError::Invalid(m) => pyo3::exceptions::PyValueError::new_err(m),
    }
}
