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

#[pymethods]
impl PySandbox {
    #[staticmethod]
    #[pyo3(signature = (template=None, timeout=None, metadata=None, envs=None, secure=true, allow_internet_access=None, opts=None))]
    fn create(
        template: Option<String>,
        timeout: Option<f64>,
        metadata: Option<HashMap<String, String>>,
        envs: Option<HashMap<String, String>>,
        secure: bool,
        allow_internet_access: Option<bool>,
        opts: Option<&ConnectionOpts>,
    ) -> PyResult<Op> {
        let o = e2b::CreateOptions {
            template,
            timeout: duration(timeout, "timeout")?,
            metadata: metadata.unwrap_or_default(),
            envs: envs.unwrap_or_default(),
            secure,
            allow_internet_access,
            connection: crate::config::opts(opts),
        };
        Ok(Op::map(e2b::Sandbox::create(o), wrap))
    }

    #[staticmethod]
    #[pyo3(signature = (sandbox_id, timeout=None, opts=None))]
    fn connect(sandbox_id: String, timeout: Option<f64>, opts: Option<&ConnectionOpts>) -> PyResult<Op> {
        let t = duration(timeout, "timeout")?;
        let o = crate::config::opts(opts);
        Ok(Op::map(async move { e2b::Sandbox::connect(&sandbox_id, t, &o).await }, wrap))
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
    #[pyo3(signature = (sandbox_id, keep_memory=true, opts=None))]
    fn pause_by_id(sandbox_id: String, keep_memory: bool, opts: Option<&ConnectionOpts>) -> Op {
        let o = crate::config::opts(opts);
        Op::new(async move { e2b::Sandbox::pause_by_id(&sandbox_id, keep_memory, &o).await })
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

    /// The connection options this handle was made with.
    #[getter]
    fn connection_opts(&self) -> ConnectionOpts {
        ConnectionOpts(self.0.connection_opts().clone())
    }

    fn get_host(&self, port: u16) -> String {
        self.0.get_host(port)
    }

    #[getter]
    fn commands(&self) -> Commands {
        Commands(self.0.commands())
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

    #[pyo3(signature = (keep_memory=true))]
    fn pause(&self, keep_memory: bool) -> Op {
        let s = self.0.clone();
        Op::new(async move { s.pause(keep_memory).await })
    }

    /// Connect again (resumes a paused sandbox); yields a new native handle.
    #[pyo3(signature = (timeout=None))]
    fn reconnect(&self, timeout: Option<f64>) -> PyResult<Op> {
        let s = self.0.clone();
        let t = duration(timeout, "timeout")?;
        Ok(Op::map(async move { s.reconnect(t).await }, wrap))
    }

    #[pyo3(signature = (timeout=None, count=None))]
    fn fork(&self, timeout: Option<f64>, count: Option<u32>) -> PyResult<Op> {
        let s = self.0.clone();
        let f = e2b::ForkOptions { timeout: duration(timeout, "timeout")?, count };
        Ok(Op::map(async move { s.fork(f).await }, forks))
    }

    #[pyo3(signature = (name=None))]
    fn create_snapshot(&self, name: Option<String>) -> Op {
        let s = self.0.clone();
        Op::map(async move { s.create_snapshot(name).await }, crate::snapshots::snapshot)
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
