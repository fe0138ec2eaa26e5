//! Native `Files`.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::models::{EntryInfo, WriteInfo};
use crate::op::Op;

#[pyclass(module = "e2b._native", frozen)]
pub struct Files(pub e2b::Files);

#[pymethods]
impl Files {
    /// Yields `str` (format "text") or `bytes` (format "bytes").
    #[pyo3(signature = (path, format="text", user=None))]
    fn read(&self, path: String, format: &str, user: Option<String>) -> PyResult<Op> {
        let f = self.0.clone();
        match format {
            "text" => Ok(Op::new(async move { f.read_text(&path, user.as_deref()).await })),
            "bytes" => Ok(Op::map(async move { f.read_bytes(&path, user.as_deref()).await }, |py, b| {
                Ok(PyBytes::new(py, &b).into_any().unbind())
            })),
            other => Err(pyo3::exceptions::PyValueError::new_err(format!(
                "format must be 'text' or 'bytes', got {other:?}"
            ))),
        }
    }

    #[pyo3(signature = (path, data, user=None))]
    fn write(&self, path: String, data: Vec<u8>, user: Option<String>) -> Op {
        let f = self.0.clone();
        Op::new(async move { Ok(WriteInfo::from(f.write(&path, data, user.as_deref()).await?)) })
    }

    #[pyo3(signature = (path, depth=1, user=None))]
    fn list(&self, path: String, depth: u32, user: Option<String>) -> Op {
        let f = self.0.clone();
        Op::new(async move {
            Ok(f.list(&path, depth, user.as_deref()).await?.into_iter().map(EntryInfo::from).collect::<Vec<_>>())
        })
    }

    #[pyo3(signature = (path, user=None))]
    fn exists(&self, path: String, user: Option<String>) -> Op {
        let f = self.0.clone();
        Op::new(async move { f.exists(&path, user.as_deref()).await })
    }

    #[pyo3(signature = (path, user=None))]
    fn get_info(&self, path: String, user: Option<String>) -> Op {
        let f = self.0.clone();
        Op::new(async move { Ok(EntryInfo::from(f.get_info(&path, user.as_deref()).await?)) })
    }

    #[pyo3(signature = (path, user=None))]
    fn remove(&self, path: String, user: Option<String>) -> Op {
        let f = self.0.clone();
        Op::new(async move { f.remove(&path, user.as_deref()).await })
    }

    #[pyo3(signature = (old_path, new_path, user=None))]
    fn rename(&self, old_path: String, new_path: String, user: Option<String>) -> Op {
        let f = self.0.clone();
        Op::new(async move { Ok(EntryInfo::from(f.rename(&old_path, &new_path, user.as_deref()).await?)) })
    }

    #[pyo3(signature = (path, user=None))]
    fn make_dir(&self, path: String, user: Option<String>) -> Op {
        let f = self.0.clone();
        Op::new(async move { f.make_dir(&path, user.as_deref()).await })
    }
}
