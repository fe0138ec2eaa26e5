//! Snapshot calls by ID (static variants), attached to the native `Sandbox` class.

use pyo3::prelude::*;

use crate::config::ConnectionOpts;
use crate::models::SnapshotInfo;
use crate::op::Op;
use crate::paginator::SnapshotPaginator;
use crate::sandbox::PySandbox;

pub fn snapshot(py: Python<'_>, s: e2b::SnapshotInfo) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, SnapshotInfo::from(s))?.into_any())
}

#[pymethods]
impl PySandbox {
    #[staticmethod]
    #[pyo3(signature = (sandbox_id, name=None, opts=None, mode=None))]
    fn create_snapshot_by_id(sandbox_id: String, name: Option<String>, opts: Option<&ConnectionOpts>, mode: Option<String>) -> Op {
        let o = crate::config::opts(opts);
        Op::map(async move { e2b::Sandbox::create_snapshot_by_id_with(&sandbox_id, name, mode.as_deref(), &o).await }, snapshot)
    }

    /// A paginator over snapshots (no request is made until `next_items`).
    #[staticmethod]
    #[pyo3(signature = (sandbox_id=None, limit=None, next_token=None, name=None, opts=None))]
    fn list_snapshots(
        sandbox_id: Option<String>,
        limit: Option<u32>,
        next_token: Option<String>,
        name: Option<String>,
        opts: Option<&ConnectionOpts>,
    ) -> SnapshotPaginator {
        let l = e2b::SnapshotListOptions { sandbox_id, name, limit, next_token };
        SnapshotPaginator(e2b::Sandbox::list_snapshots(l, &crate::config::opts(opts)))
    }

    /// True when deleted, False when not found.
    #[staticmethod]
    #[pyo3(signature = (snapshot_id, opts=None))]
    fn delete_snapshot(snapshot_id: String, opts: Option<&ConnectionOpts>) -> Op {
        let o = crate::config::opts(opts);
        Op::new(async move { e2b::Sandbox::delete_snapshot(&snapshot_id, &o).await })
    }
}
