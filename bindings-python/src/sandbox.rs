//! The native `Sandbox` handle and its static (by-ID) variants. Every call returns an [`Op`].

use std::collections::HashMap;

use pyo3::prelude::*;

use crate::commands::Commands;
use crate::config::{ConnectionOpts, duration};
use crate::error::to_py;
use crate::files::Files;
use crate::models::SandboxInfo;
use crate::op::Op;
use crate::paginator::{SandboxPaginator, SnapshotPaginator};

#[pyclass(module = "e2b._native", name = "Sandbox", frozen)]
pub struct PySandbox(pub e2b::Sandbox);

fn wrap(py: Python<'_>, s: e2b::Sandbox) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, PySandbox(s))?.into_any())
}

fn info(py: Python<'_>, i: e2b::SandboxInfo) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, SandboxInfo::from(i))?.into_any())
}

/// Fork results: a `Sandbox` or an exception instance per fork.
fn forks(py: Python<'_>, v: Vec<e2b::Result<e2b::Sandbox>>) -> PyResult<Py<PyAny>> {
    let items: Vec<Py<PyAny>> = v
        .into_iter()
        .map(|r| match r {
            Ok(s) => wrap(py, s),
            Err(e) => Ok(to_py(py, e).into_value(py).into_any()),
        })
        .collect::<PyResult<_>>()?;
    Ok(items.into_pyobject(py)?.into_any().unbind())
}

/// Refuse an option of E2B's SDK that this SDK does not implement (never ignore it): returns the
/// core's `InvalidArgumentException` for it.
#[pyfunction]
pub fn unsupported_option(py: Python<'_>, name: &str) -> PyErr {
    to_py(py, e2b::options::unsupported(name))
}

/// Metrics samples as dicts (the Python layer makes `SandboxMetrics` of them).
fn metrics(py: Python<'_>, v: Vec<e2b::SandboxMetrics>) -> PyResult<Py<PyAny>> {
    let list = pyo3::types::PyList::empty(py);
    for m in v {
        let d = pyo3::types::PyDict::new(py);
        d.set_item("cpu_count", m.cpu_count)?;
        d.set_item("cpu_used_pct", m.cpu_used_pct)?;
        d.set_item("disk_total", m.disk_total)?;
        d.set_item("disk_used", m.disk_used)?;
        d.set_item("mem_total", m.mem_total)?;
        d.set_item("mem_used", m.mem_used)?;
        d.set_item("mem_cache", m.mem_cache)?;
        d.set_item("timestamp", m.timestamp)?;
        list.append(d)?;
    }
    Ok(list.into_any().unbind())
}

#[pymethods]
impl PySandbox {
    #[staticmethod]
    /// `lifecycle` and `network` are the user's dicts as JSON text (validated by the core).
    #[pyo3(signature = (template=None, timeout=None, metadata=None, envs=None, secure=true, allow_internet_access=None, opts=None, lifecycle=None, network=None, idempotency_key=None, mcp=None, volume_mounts=None, iam=None))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        template: Option<String>,
        timeout: Option<f64>,
        metadata: Option<HashMap<String, String>>,
        envs: Option<HashMap<String, String>>,
        secure: bool,
        allow_internet_access: Option<bool>,
        opts: Option<&ConnectionOpts>,
        lifecycle: Option<String>,
        network: Option<String>,
        idempotency_key: Option<String>,
        mcp: Option<String>,
        volume_mounts: Option<Vec<(String, String)>>,
        iam: Option<String>,
    ) -> PyResult<Op> {
        let lifecycle = e2b::options::lifecycle_from_json(lifecycle.as_deref()).map_err(|e| to_py(py, e))?;
        let mcp = mcp
            .map(|m| serde_json::from_str(&m))
            .transpose()
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("mcp: {e}")))?;
        let network = e2b::options::network_from_json(network.as_deref()).map_err(|e| to_py(py, e))?;
        let iam = iam
            .map(|t| serde_json::from_str::<serde_json::Value>(&t))
            .transpose()
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("iam: {e}")))?;
        let iam = e2b::options::iam_body(iam.as_ref()).map_err(|e| to_py(py, e))?;
        let o = e2b::CreateOptions {
            template,
            timeout: duration(timeout, "timeout")?,
            // E2B's Python SDK always sends both maps (`{}` when not given).
            metadata: Some(metadata.unwrap_or_default()),
            envs: Some(envs.unwrap_or_default()),
            secure,
            allow_internet_access,
            lifecycle,
            network,
            idempotency_key,
            mcp,
            volume_mounts: volume_mounts
                .unwrap_or_default()
                .into_iter()
                .map(|(path, name)| e2b::models::VolumeMount { name, path })
                .collect(),
            iam,
            connection: crate::config::opts(opts),
        };
        Ok(Op::map(e2b::Sandbox::create(o), wrap))
    }

    #[staticmethod]
    #[pyo3(signature = (sandbox_id, timeout=None, opts=None, on_resume=None))]
    fn connect(sandbox_id: String, timeout: Option<f64>, opts: Option<&ConnectionOpts>, on_resume: Option<String>) -> PyResult<Op> {
        let c = e2b::ConnectOptions { timeout: duration(timeout, "timeout")?, on_resume };
        let o = crate::config::opts(opts);
        Ok(Op::map(async move { e2b::Sandbox::connect_with(&sandbox_id, c, &o).await }, wrap))
    }

    #[staticmethod]
    #[pyo3(signature = (sandbox_id, opts=None))]
    fn kill_by_id(sandbox_id: String, opts: Option<&ConnectionOpts>) -> Op {
        let o = crate::config::opts(opts);
        Op::new(async move { e2b::Sandbox::kill_by_id(&sandbox_id, &o).await })
    }

    #[staticmethod]
    #[pyo3(signature = (sandbox_id, timeout, opts=None))]
    fn set_timeout_by_id(sandbox_id: String, timeout: f64, opts: Option<&ConnectionOpts>) -> PyResult<Op> {
        let t = duration(Some(timeout), "timeout")?.unwrap_or_default();
        let o = crate::config::opts(opts);
        Ok(Op::new(async move { e2b::Sandbox::set_timeout_by_id(&sandbox_id, t, &o).await }))
    }

    #[staticmethod]
    #[pyo3(signature = (sandbox_id, opts=None))]
    fn get_info_by_id(sandbox_id: String, opts: Option<&ConnectionOpts>) -> Op {
        let o = crate::config::opts(opts);
        Op::map(async move { e2b::Sandbox::get_info_by_id(&sandbox_id, &o).await }, info)
    }

    #[staticmethod]
    #[pyo3(signature = (sandbox_id, keep_memory=None, mode=None, strict=false, opts=None))]
    fn pause_by_id(sandbox_id: String, keep_memory: Option<bool>, mode: Option<String>, strict: bool, opts: Option<&ConnectionOpts>) -> Op {
        let o = crate::config::opts(opts);
        let p = e2b::PauseOptions { keep_memory, mode, strict };
        Op::new(async move { e2b::Sandbox::pause_by_id_with(&sandbox_id, p, &o).await })
    }

    #[staticmethod]
    #[pyo3(signature = (sandbox_id, timeout=None, count=None, opts=None))]
    fn fork_by_id(sandbox_id: String, timeout: Option<f64>, count: Option<u32>, opts: Option<&ConnectionOpts>) -> PyResult<Op> {
        let f = e2b::ForkOptions { timeout: duration(timeout, "timeout")?, count };
        let o = crate::config::opts(opts);
        Ok(Op::map(async move { e2b::Sandbox::fork_by_id(&sandbox_id, f, &o).await }, forks))
    }

    /// A paginator over sandboxes (no request is made until `next_items`).
    #[staticmethod]
    #[pyo3(signature = (metadata=None, state=None, started_after=None, template=None, limit=None, next_token=None, order=None, opts=None))]
    #[allow(clippy::too_many_arguments)]
    fn list(
        py: Python<'_>,
        metadata: Option<HashMap<String, String>>,
        state: Option<Vec<String>>,
        started_after: Option<chrono::DateTime<chrono::Utc>>,
        template: Option<String>,
        limit: Option<u32>,
        next_token: Option<String>,
        order: Option<String>,
        opts: Option<&ConnectionOpts>,
    ) -> PyResult<SandboxPaginator> {
        let l = e2b::SandboxListOptions {
            query: e2b::SandboxQuery {
                metadata: metadata.unwrap_or_default(),
                state: state.unwrap_or_default(),
                started_after,
                template,
            },
            limit,
            next_token,
            order,
        };
        let p = e2b::Sandbox::list(l, &crate::config::opts(opts)).map_err(|e| to_py(py, e))?;
        Ok(SandboxPaginator(p))
    }

    /// Metrics samples between `start` and `end` (Unix seconds).
    #[staticmethod]
    #[pyo3(signature = (sandbox_id, start=None, end=None, opts=None))]
    fn get_metrics_by_id(sandbox_id: String, start: Option<i64>, end: Option<i64>, opts: Option<&ConnectionOpts>) -> Op {
        let o = crate::config::opts(opts);
        Op::map(async move { e2b::Sandbox::get_metrics_by_id(&sandbox_id, start, end, &o).await }, metrics)
    }

    /// `network` is the user's dict as JSON text (validated by the core).
    #[staticmethod]
    #[pyo3(signature = (sandbox_id, network, opts=None))]
    fn update_network_by_id(py: Python<'_>, sandbox_id: String, network: &str, opts: Option<&ConnectionOpts>) -> PyResult<Op> {
        let body = e2b::metrics_network::network_update_from_json(network).map_err(|e| to_py(py, e))?;
        let o = crate::config::opts(opts);
        Ok(Op::new(async move { e2b::Sandbox::update_network_by_id(&sandbox_id, &body, &o).await }))
    }

    #[pyo3(signature = (start=None, end=None))]
    fn get_metrics(&self, start: Option<i64>, end: Option<i64>) -> Op {
        let s = self.0.clone();
        Op::map(async move { s.get_metrics(start, end).await }, metrics)
    }

    fn update_network(&self, py: Python<'_>, network: &str) -> PyResult<Op> {
        let body = e2b::metrics_network::network_update_from_json(network).map_err(|e| to_py(py, e))?;
        let s = self.0.clone();
        Ok(Op::new(async move { s.update_network(&body).await }))
    }

    #[getter]
    fn sandbox_id(&self) -> &str {
        self.0.sandbox_id()
    }

    #[getter]
    fn sandbox_domain(&self) -> Option<&str> {
        self.0.sandbox_domain()
    }

    #[getter]
    fn envd_version(&self) -> &str {
        self.0.envd_version()
    }

    #[getter]
    fn traffic_access_token(&self) -> Option<&str> {
        self.0.traffic_access_token()
    }

    /// envd's access token (sent as `X-Access-Token` to envd and guest servers that check it).
    #[getter]
    fn envd_access_token(&self) -> Option<&str> {
        self.0.envd_access_token()
    }

    /// The connection options this handle was made with.
    #[getter]
    fn connection_opts(&self) -> ConnectionOpts {
        ConnectionOpts(self.0.connection_opts().clone())
    }

    fn get_host(&self, port: u16) -> String {
        self.0.get_host(port)
    }

    #[getter]
    fn envd_api_url(&self) -> &str {
        self.0.envd_url()
    }

    #[getter]
    fn connection_config(&self) -> crate::config::ConnectionConfig {
        crate::config::ConnectionConfig(self.0.connection_config().clone())
    }

    #[pyo3(signature = (path, user=None, use_signature_expiration=None))]
    fn upload_url(&self, py: Python<'_>, path: &str, user: Option<&str>, use_signature_expiration: Option<i64>) -> PyResult<String> {
        self.0.upload_url(path, user, use_signature_expiration).map_err(|e| to_py(py, e))
    }

    #[pyo3(signature = (path, user=None, use_signature_expiration=None))]
    fn download_url(&self, py: Python<'_>, path: &str, user: Option<&str>, use_signature_expiration: Option<i64>) -> PyResult<String> {
        self.0.download_url(path, user, use_signature_expiration).map_err(|e| to_py(py, e))
    }

    #[getter]
    fn commands(&self) -> Commands {
        Commands(self.0.commands())
    }

    #[getter]
    fn git(&self) -> crate::git::Git {
        crate::git::Git(self.0.git())
    }

    #[getter]
    fn pty(&self) -> crate::pty::Pty {
        crate::pty::Pty(self.0.pty())
    }

    #[getter]
    fn files(&self) -> Files {
        Files(self.0.files())
    }

    #[pyo3(signature = (request_timeout=None))]
    fn is_running(&self, request_timeout: Option<f64>) -> PyResult<Op> {
        let s = self.0.clone();
        let t = duration(request_timeout, "request_timeout")?;
        Ok(Op::new(async move { s.is_running(t).await }))
    }

    fn kill(&self) -> Op {
        let s = self.0.clone();
        Op::new(async move { s.kill().await })
    }

    fn set_timeout(&self, timeout: f64) -> PyResult<Op> {
        let s = self.0.clone();
        let t = duration(Some(timeout), "timeout")?.unwrap_or_default();
        Ok(Op::new(async move { s.set_timeout(t).await }))
    }

    fn get_info(&self) -> Op {
        let s = self.0.clone();
        Op::map(async move { s.get_info().await }, info)
    }

    #[pyo3(signature = (keep_memory=None, mode=None, strict=false))]
    fn pause(&self, keep_memory: Option<bool>, mode: Option<String>, strict: bool) -> Op {
        let s = self.0.clone();
        let p = e2b::PauseOptions { keep_memory, mode, strict };
        Op::new(async move { s.pause_with(p).await })
    }

    /// Connect again (resumes a paused sandbox); yields a new native handle.
    #[pyo3(signature = (timeout=None, on_resume=None))]
    fn reconnect(&self, timeout: Option<f64>, on_resume: Option<String>) -> PyResult<Op> {
        let s = self.0.clone();
        let c = e2b::ConnectOptions { timeout: duration(timeout, "timeout")?, on_resume };
        Ok(Op::map(async move { e2b::Sandbox::connect_with(s.sandbox_id(), c, s.connection_opts()).await }, wrap))
    }

    #[pyo3(signature = (timeout=None, count=None))]
    fn fork(&self, timeout: Option<f64>, count: Option<u32>) -> PyResult<Op> {
        let s = self.0.clone();
        let f = e2b::ForkOptions { timeout: duration(timeout, "timeout")?, count };
        Ok(Op::map(async move { s.fork(f).await }, forks))
    }

    fn get_mcp_url(&self) -> String {
        self.0.get_mcp_url()
    }

    fn get_mcp_token(&self) -> Op {
        let s = self.0.clone();
        Op::new(async move { s.get_mcp_token().await })
    }

    #[pyo3(signature = (name=None, mode=None))]
    fn create_snapshot(&self, name: Option<String>, mode: Option<String>) -> Op {
        let s = self.0.clone();
        Op::map(async move { s.create_snapshot_with(name, mode.as_deref()).await }, crate::snapshots::snapshot)
    }

    /// Snapshots taken from this sandbox.
    #[pyo3(signature = (limit=None, next_token=None, name=None))]
    fn list_own_snapshots(&self, limit: Option<u32>, next_token: Option<String>, name: Option<String>) -> SnapshotPaginator {
        let l = e2b::SnapshotListOptions { sandbox_id: None, name, limit, next_token };
        SnapshotPaginator(self.0.list_own_snapshots(l))
    }

    fn __repr__(&self) -> String {
        format!("Sandbox(sandbox_id={:?})", self.0.sandbox_id())
    }
}
