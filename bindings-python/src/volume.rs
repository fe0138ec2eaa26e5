//! Volumes (E2B's `Volume`): the native handle and the REST calls by ID. Entries travel as
//! tuples that `e2b.volume` turns into E2B's dataclasses; every request and error is the core's.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::config::{ConnectionOpts, duration, opts};
use crate::op::Op;

type Stat = (String, String, String, u64, u32, u32, u32, DateTime<Utc>, DateTime<Utc>, DateTime<Utc>, Option<String>);

fn stat(s: e2b::VolumeEntryStat) -> Stat {
    (s.name, s.kind, s.path, s.size, s.mode, s.uid, s.gid, s.atime, s.mtime, s.ctime, s.target)
}

fn meta(uid: Option<u32>, gid: Option<u32>, mode: Option<u32>) -> e2b::VolumeMetadata {
    e2b::VolumeMetadata { uid, gid, mode }
}

/// Options of a content API call (E2B's `VolumeApiParams`).
#[pyclass(module = "e2b._native", frozen)]
#[derive(Clone, Default)]
pub struct VolumeApiOpts(e2b::VolumeApiOpts);

#[pymethods]
impl VolumeApiOpts {
    #[new]
    #[pyo3(signature = (domain=None, debug=None, request_timeout=None, headers=None, token=None, api_url=None))]
    fn new(
        domain: Option<String>,
        debug: Option<bool>,
        request_timeout: Option<f64>,
        headers: Option<HashMap<String, String>>,
        token: Option<String>,
        api_url: Option<String>,
    ) -> PyResult<Self> {
        Ok(VolumeApiOpts(e2b::VolumeApiOpts {
            domain,
            debug,
            request_timeout: duration(request_timeout, "request_timeout")?,
            headers: headers.unwrap_or_default(),
            token,
            api_url,
        }))
    }
}

fn vopts(o: Option<&VolumeApiOpts>) -> e2b::VolumeApiOpts {
    o.map(|o| o.0.clone()).unwrap_or_default()
}

/// A handle on one volume.
#[pyclass(module = "e2b._native", frozen)]
pub struct VolumeHandle(e2b::Volume);

#[pymethods]
impl VolumeHandle {
    #[new]
    #[pyo3(signature = (volume_id, name, token=None, domain=None, debug=None))]
    fn new(volume_id: String, name: String, token: Option<String>, domain: Option<String>, debug: Option<bool>) -> Self {
        VolumeHandle(e2b::Volume::new(volume_id, name, token, domain, debug))
    }
    #[getter]
    fn volume_id(&self) -> &str {
        &self.0.volume_id
    }
    #[getter]
    fn name(&self) -> &str {
        &self.0.name
    }
    #[getter]
    fn token(&self) -> Option<&str> {
        self.0.token.as_deref()
    }
    #[getter]
    fn domain(&self) -> Option<&str> {
        self.0.domain.as_deref()
    }
    #[getter]
    fn debug(&self) -> Option<bool> {
        self.0.debug
    }

    /// The content API base URL a call with these options goes to.
    #[pyo3(signature = (o=None))]
    fn content_url(&self, o: Option<&VolumeApiOpts>) -> String {
        self.0.content_url(&vopts(o))
    }

    #[pyo3(signature = (path, depth=None, o=None))]
    fn list(&self, path: String, depth: Option<u32>, o: Option<&VolumeApiOpts>) -> Op {
        let (v, o) = (self.0.clone(), vopts(o));
        Op::new(async move { Ok(v.list(&path, depth, &o).await?.into_iter().map(stat).collect::<Vec<_>>()) })
    }

    #[pyo3(signature = (path, uid=None, gid=None, mode=None, force=None, o=None))]
    fn make_dir(&self, path: String, uid: Option<u32>, gid: Option<u32>, mode: Option<u32>, force: Option<bool>, o: Option<&VolumeApiOpts>) -> Op {
        let (v, o) = (self.0.clone(), vopts(o));
        Op::new(async move { v.make_dir(&path, meta(uid, gid, mode), force, &o).await.map(stat) })
    }

    #[pyo3(signature = (path, o=None))]
    fn get_info(&self, path: String, o: Option<&VolumeApiOpts>) -> Op {
        let (v, o) = (self.0.clone(), vopts(o));
        Op::new(async move { v.get_info(&path, &o).await.map(stat) })
    }

    #[pyo3(signature = (path, o=None))]
    fn exists(&self, path: String, o: Option<&VolumeApiOpts>) -> Op {
        let (v, o) = (self.0.clone(), vopts(o));
        Op::new(async move { v.exists(&path, &o).await })
    }

    #[pyo3(signature = (path, uid=None, gid=None, mode=None, o=None))]
    fn update_metadata(&self, path: String, uid: Option<u32>, gid: Option<u32>, mode: Option<u32>, o: Option<&VolumeApiOpts>) -> Op {
        let (v, o) = (self.0.clone(), vopts(o));
        Op::new(async move { v.update_metadata(&path, meta(uid, gid, mode), &o).await.map(stat) })
    }

    /// Yields `bytes`.
    #[pyo3(signature = (path, o=None))]
    fn read_file(&self, path: String, o: Option<&VolumeApiOpts>) -> Op {
        let (v, o) = (self.0.clone(), vopts(o));
        Op::map(async move { v.read_file(&path, &o).await }, |py, b| Ok(PyBytes::new(py, &b).into_any().unbind()))
    }

    #[pyo3(signature = (path, data, uid=None, gid=None, mode=None, force=None, o=None))]
    #[allow(clippy::too_many_arguments)]
    fn write_file(
        &self,
        path: String,
        data: Vec<u8>,
        uid: Option<u32>,
        gid: Option<u32>,
        mode: Option<u32>,
        force: Option<bool>,
        o: Option<&VolumeApiOpts>,
    ) -> Op {
        let (v, o) = (self.0.clone(), vopts(o));
        Op::new(async move { v.write_file(&path, data.into(), meta(uid, gid, mode), force, &o).await.map(stat) })
    }

    #[pyo3(signature = (path, o=None))]
    fn remove(&self, path: String, o: Option<&VolumeApiOpts>) -> Op {
        let (v, o) = (self.0.clone(), vopts(o));
        Op::new(async move { v.remove(&path, &o).await })
    }
}

fn handle(py: Python<'_>, v: e2b::Volume) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, VolumeHandle(v))?.into_any())
}

#[pyfunction]
#[pyo3(signature = (name, conn=None))]
pub fn volume_create(name: String, conn: Option<&ConnectionOpts>) -> Op {
    let o = opts(conn);
    Op::map(async move { e2b::Volume::create(&name, &o).await }, handle)
}

#[pyfunction]
#[pyo3(signature = (volume_id, conn=None))]
pub fn volume_connect(volume_id: String, conn: Option<&ConnectionOpts>) -> Op {
    let o = opts(conn);
    Op::map(async move { e2b::Volume::connect(&volume_id, &o).await }, handle)
}

/// Yields `(volume_id, name, token, domain)`.
#[pyfunction]
#[pyo3(signature = (volume_id, conn=None))]
pub fn volume_get_info(volume_id: String, conn: Option<&ConnectionOpts>) -> Op {
    let o = opts(conn);
    Op::new(async move {
        let v = e2b::volume::get_info(&volume_id, &o).await?;
        Ok((v.volume_id, v.name, v.token, v.domain))
    })
}

/// Yields `[(volume_id, name)]`.
#[pyfunction]
#[pyo3(signature = (conn=None))]
pub fn volume_list(conn: Option<&ConnectionOpts>) -> Op {
    let o = opts(conn);
    Op::new(async move { Ok(e2b::volume::list(&o).await?.into_iter().map(|v| (v.volume_id, v.name)).collect::<Vec<_>>()) })
}

#[pyfunction]
#[pyo3(signature = (volume_id, conn=None))]
pub fn volume_destroy(volume_id: String, conn: Option<&ConnectionOpts>) -> Op {
    let o = opts(conn);
    Op::new(async move { e2b::volume::destroy(&volume_id, &o).await })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<VolumeHandle>()?;
    m.add_class::<VolumeApiOpts>()?;
    m.add_function(wrap_pyfunction!(volume_create, m)?)?;
    m.add_function(wrap_pyfunction!(volume_connect, m)?)?;
    m.add_function(wrap_pyfunction!(volume_get_info, m)?)?;
    m.add_function(wrap_pyfunction!(volume_list, m)?)?;
    m.add_function(wrap_pyfunction!(volume_destroy, m)?)?;
    Ok(())
}
