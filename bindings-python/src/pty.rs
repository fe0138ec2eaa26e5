//! Native `Pty` (`sandbox.pty`). Terminal handles are `CommandHandle`s.

use std::collections::HashMap;

use pyo3::prelude::*;

use crate::commands::{CommandHandle, pty_callback};
use crate::config::duration;
use crate::op::Op;

#[pyclass(module = "e2b._native", frozen)]
pub struct Pty(pub e2b::Pty);

fn handle(py: Python<'_>, h: e2b::CommandHandle) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, CommandHandle(h))?.into_any())
}

impl Pty {
    fn timed(&self, request_timeout: Option<f64>) -> PyResult<e2b::Pty> {
        Ok(self.0.with_request_timeout(duration(request_timeout, "request_timeout")?))
    }
}

#[pymethods]
impl Pty {
    /// Start `/bin/bash -i -l` in a `cols` x `rows` terminal; yields its `CommandHandle`.
    #[pyo3(signature = (cols, rows, on_data=None, user=None, cwd=None, envs=None, timeout=60.0))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        &self,
        cols: u32,
        rows: u32,
        on_data: Option<Py<PyAny>>,
        user: Option<String>,
        cwd: Option<String>,
        envs: Option<HashMap<String, String>>,
        timeout: Option<f64>,
    ) -> PyResult<Op> {
        let opts = e2b::PtyOptions {
            user,
            cwd,
            envs: envs.unwrap_or_default(),
            timeout: Some(duration(timeout, "timeout")?.unwrap_or_default()),
            on_data: pty_callback(on_data),
        };
        let p = self.0.clone();
        Ok(Op::map(async move { p.create(e2b::PtySize { cols, rows }, opts).await }, handle))
    }

    #[pyo3(signature = (pid, on_data=None, timeout=60.0))]
    fn connect(&self, pid: u32, on_data: Option<Py<PyAny>>, timeout: Option<f64>) -> PyResult<Op> {
        let t = Some(duration(timeout, "timeout")?.unwrap_or_default());
        let p = self.0.clone();
        let cb = pty_callback(on_data);
        Ok(Op::map(async move { p.connect(pid, t, cb).await }, handle))
    }

    #[pyo3(signature = (pid, data, request_timeout=None))]
    fn send_stdin(&self, pid: u32, data: Vec<u8>, request_timeout: Option<f64>) -> PyResult<Op> {
        let p = self.timed(request_timeout)?;
        Ok(Op::new(async move { p.send_stdin(pid, data).await }))
    }

    #[pyo3(signature = (pid, cols, rows, request_timeout=None))]
    fn resize(&self, pid: u32, cols: u32, rows: u32, request_timeout: Option<f64>) -> PyResult<Op> {
        let p = self.timed(request_timeout)?;
        Ok(Op::new(async move { p.resize(pid, e2b::PtySize { cols, rows }).await }))
    }

    /// Open an ordered input stream to the terminal `pid`.
    #[pyo3(signature = (pid, timeout=60.0))]
    fn stream_input(&self, pid: u32, timeout: Option<f64>) -> PyResult<crate::commands::InputStream> {
        let t = Some(duration(timeout, "timeout")?.unwrap_or_default());
        Ok(crate::commands::open_input(|| self.0.stream_input(pid, t)))
    }

    #[pyo3(signature = (pid, request_timeout=None))]
    fn kill(&self, pid: u32, request_timeout: Option<f64>) -> PyResult<Op> {
        let p = self.timed(request_timeout)?;
        Ok(Op::new(async move { p.kill(pid).await }))
    }
}
