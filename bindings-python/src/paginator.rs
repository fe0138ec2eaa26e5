//! Native paginators: `has_next` / `next_token` properties and `next_items()` → `Op`.

use pyo3::prelude::*;

use crate::models::{SandboxInfo, SnapshotInfo};
use crate::op::Op;

#[pyclass(module = "e2b._native", frozen)]
pub struct SandboxPaginator(pub e2b::SandboxPaginator);

#[pymethods]
impl SandboxPaginator {
    #[getter]
    fn has_next(&self) -> bool {
        self.0.has_next()
    }

    #[getter]
    fn next_token(&self) -> Option<String> {
        self.0.next_token()
    }

    fn next_items(&self) -> Op {
        let p = self.0.clone();
        Op::new(async move {
            Ok(p.next_items().await?.into_iter().map(SandboxInfo::from).collect::<Vec<_>>())
        })
    }
}

#[pyclass(module = "e2b._native", frozen)]
pub struct SnapshotPaginator(pub e2b::SnapshotPaginator);

#[pymethods]
impl SnapshotPaginator {
    #[getter]
    fn has_next(&self) -> bool {
        self.0.has_next()
    }

    #[getter]
    fn next_token(&self) -> Option<String> {
        self.0.next_token()
    }

    fn next_items(&self) -> Op {
        let p = self.0.clone();
        Op::new(async move {
            Ok(p.next_items().await?.into_iter().map(SnapshotInfo::from).collect::<Vec<_>>())
        })
    }
}
