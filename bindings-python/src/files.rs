//! Native `Files`. Every method takes the call's `request_timeout` (seconds; 0 disables it).

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::config::duration;
use crate::models::{EntryInfo, WriteInfo};
use crate::op::Op;

#[pyclass(module = "e2b._native", frozen)]
pub struct Files(pub e2b::Files);

impl Files {
    fn timed(&self, request_timeout: Option<f64>) -> PyResult<e2b::Files> {
        Ok(self.0.with_request_timeout(duration(request_timeout, "request_timeout")?))
    }
}

#[pymethods]
impl Files {
    /// Yields `str` (format "text") or `bytes` (format "bytes").
    #[pyo3(signature = (path, format="text", user=None, request_timeout=None))]
    fn read(&self, path: String, format: &str, user: Option<String>, request_timeout: Option<f64>) -> PyResult<Op> {
        let f = self.timed(request_timeout)?;
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

    #[pyo3(signature = (path, data, user=None, request_timeout=None))]
    fn write(&self, path: String, data: Vec<u8>, user: Option<String>, request_timeout: Option<f64>) -> PyResult<Op> {
        let f = self.timed(request_timeout)?;
        Ok(Op::new(async move { Ok(WriteInfo::from(f.write(&path, data, user.as_deref()).await?)) }))
    }

    /// Write `(path, data)` pairs in order; yields their `WriteInfo`s.
    #[pyo3(signature = (files, user=None, request_timeout=None))]
    fn write_files(&self, files: Vec<(String, Vec<u8>)>, user: Option<String>, request_timeout: Option<f64>) -> PyResult<Op> {
        let f = self.timed(request_timeout)?;
        let files = files.into_iter().map(|(p, d)| (p, d.into())).collect();
        Ok(Op::new(async move {
            Ok(f.write_files(files, user.as_deref()).await?.into_iter().map(WriteInfo::from).collect::<Vec<_>>())
        }))
    }

    #[pyo3(signature = (path, depth=1, user=None, request_timeout=None))]
    fn list(&self, path: String, depth: u32, user: Option<String>, request_timeout: Option<f64>) -> PyResult<Op> {
        let f = self.timed(request_timeout)?;
        Ok(Op::new(async move {
            Ok(f.list(&path, depth, user.as_deref()).await?.into_iter().map(EntryInfo::from).collect::<Vec<_>>())
        }))
    }

    #[pyo3(signature = (path, user=None, request_timeout=None))]
    fn exists(&self, path: String, user: Option<String>, request_timeout: Option<f64>) -> PyResult<Op> {
        let f = self.timed(request_timeout)?;
        Ok(Op::new(async move { f.exists(&path, user.as_deref()).await }))
    }

    #[pyo3(signature = (path, user=None, request_timeout=None))]
    fn get_info(&self, path: String, user: Option<String>, request_timeout: Option<f64>) -> PyResult<Op> {
        let f = self.timed(request_timeout)?;
        Ok(Op::new(async move { Ok(EntryInfo::from(f.get_info(&path, user.as_deref()).await?)) }))
    }

    #[pyo3(signature = (path, user=None, request_timeout=None))]
    fn remove(&self, path: String, user: Option<String>, request_timeout: Option<f64>) -> PyResult<Op> {
        let f = self.timed(request_timeout)?;
        Ok(Op::new(async move { f.remove(&path, user.as_deref()).await }))
    }

    #[pyo3(signature = (old_path, new_path, user=None, request_timeout=None))]
    fn rename(&self, old_path: String, new_path: String, user: Option<String>, request_timeout: Option<f64>) -> PyResult<Op> {
        let f = self.timed(request_timeout)?;
        Ok(Op::new(async move { Ok(EntryInfo::from(f.rename(&old_path, &new_path, user.as_deref()).await?)) }))
    }

    /// Watch a directory, calling `on_event(FilesystemEvent)` per change (async API); yields a
    /// `WatchHandle` once the watch is in place.
    #[pyo3(signature = (path, on_event, on_exit=None, user=None, request_timeout=None, timeout=60.0, recursive=false, include_entry=false, allow_network_mounts=false))]
    #[allow(clippy::too_many_arguments)]
    fn watch_dir(
        &self,
        path: String,
        on_event: Py<PyAny>,
        on_exit: Option<Py<PyAny>>,
        user: Option<String>,
        request_timeout: Option<f64>,
        timeout: Option<f64>,
        recursive: bool,
        include_entry: bool,
        allow_network_mounts: bool,
    ) -> PyResult<Op> {
        let f = self.timed(request_timeout)?;
        let opts = e2b::WatchOptions {
            user,
            recursive,
            include_entry,
            allow_network_mounts,
            timeout: Some(duration(timeout, "timeout")?.unwrap_or_default()),
        };
        let (on_event, on_exit) = crate::watch::callbacks(on_event, on_exit);
        Ok(Op::map(async move { f.watch_dir(&path, opts, on_event, on_exit).await }, |py, h| {
            Ok(Py::new(py, crate::watch::WatchHandle(h))?.into_any())
        }))
    }

    /// Start a polling watcher (sync API); yields a `PollingWatcher`.
    #[pyo3(signature = (path, user=None, request_timeout=None, recursive=false, include_entry=false, allow_network_mounts=false))]
    fn create_watcher(
        &self,
        path: String,
        user: Option<String>,
        request_timeout: Option<f64>,
        recursive: bool,
        include_entry: bool,
        allow_network_mounts: bool,
    ) -> PyResult<Op> {
        let f = self.timed(request_timeout)?;
        let opts = e2b::WatchOptions { user, recursive, include_entry, allow_network_mounts, timeout: None };
        Ok(Op::map(async move { f.create_watcher(&path, opts).await }, |py, w| {
            Ok(Py::new(py, crate::watch::PollingWatcher(w))?.into_any())
        }))
    }

    #[pyo3(signature = (path, user=None, request_timeout=None))]
    fn make_dir(&self, path: String, user: Option<String>, request_timeout: Option<f64>) -> PyResult<Op> {
        let f = self.timed(request_timeout)?;
        Ok(Op::new(async move { f.make_dir(&path, user.as_deref()).await }))
    }
}
