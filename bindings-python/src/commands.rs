//! Native `Commands` and `CommandHandle`.

use std::collections::HashMap;
use std::sync::Arc;

use pyo3::prelude::*;

use crate::config::duration;
use crate::models::{CommandResult, ProcessInfo};
use crate::op::Op;

#[pyclass(module = "e2b._native", frozen)]
pub struct Commands(pub e2b::Commands);

#[pyclass(module = "e2b._native", frozen)]
pub struct CommandHandle(pub e2b::CommandHandle);

/// A Python callable as an output callback (errors it raises are printed, not propagated).
fn callback(cb: Option<Py<PyAny>>) -> Option<e2b::OutputCallback> {
    let cb = cb?;
    Some(Arc::new(move |chunk: String| {
        Python::attach(|py| {
            if let Err(e) = cb.call1(py, (chunk,)) {
                e.print(py);
            }
        })
    }))
}

fn result(py: Python<'_>, r: e2b::CommandResult) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, CommandResult::from(r))?.into_any())
}

#[pymethods]
impl Commands {
    /// Run a command; yields a `CommandResult`, or a `CommandHandle` when `background`.
    #[pyo3(signature = (cmd, background=false, envs=None, user=None, cwd=None, on_stdout=None, on_stderr=None, stdin=None, timeout=60.0))]
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        cmd: String,
        background: bool,
        envs: Option<HashMap<String, String>>,
        user: Option<String>,
        cwd: Option<String>,
        on_stdout: Option<Py<PyAny>>,
        on_stderr: Option<Py<PyAny>>,
        stdin: Option<bool>,
        timeout: Option<f64>,
    ) -> PyResult<Op> {
        let opts = e2b::RunOptions {
            envs: envs.unwrap_or_default(),
            user,
            cwd,
            // Python: None or 0 means no limit.
            timeout: Some(duration(timeout, "timeout")?.unwrap_or_default()),
            stdin,
            tag: None,
            on_stdout: callback(on_stdout),
            on_stderr: callback(on_stderr),
        };
        let c = self.0.clone();
        Ok(if background {
            Op::map(async move { c.run_background(&cmd, opts).await }, |py, h| {
                Ok(Py::new(py, CommandHandle(h))?.into_any())
            })
        } else {
            Op::map(async move { c.run(&cmd, opts).await }, result)
        })
    }

    /// Attach to a running process.
    #[pyo3(signature = (pid, timeout=60.0, on_stdout=None, on_stderr=None))]
    fn connect(&self, pid: u32, timeout: Option<f64>, on_stdout: Option<Py<PyAny>>, on_stderr: Option<Py<PyAny>>) -> PyResult<Op> {
        let opts = e2b::RunOptions {
            timeout: Some(duration(timeout, "timeout")?.unwrap_or_default()),
            on_stdout: callback(on_stdout),
            on_stderr: callback(on_stderr),
            ..Default::default()
        };
        let c = self.0.clone();
        Ok(Op::map(async move { c.connect(pid, opts).await }, |py, h| Ok(Py::new(py, CommandHandle(h))?.into_any())))
    }

    fn list(&self) -> Op {
        let c = self.0.clone();
        Op::new(async move { Ok(c.list().await?.into_iter().map(ProcessInfo::from).collect::<Vec<_>>()) })
    }

    /// SIGKILL; yields False when there was no such process.
    fn kill(&self, pid: u32) -> Op {
        let c = self.0.clone();
        Op::new(async move { c.kill(pid).await })
    }

    fn send_stdin(&self, pid: u32, data: Vec<u8>) -> Op {
        let c = self.0.clone();
        Op::new(async move { c.send_stdin(pid, data).await })
    }

    fn close_stdin(&self, pid: u32) -> Op {
        let c = self.0.clone();
        Op::new(async move { c.close_stdin(pid).await })
    }
}

#[pymethods]
impl CommandHandle {
    #[getter]
    fn pid(&self) -> u32 {
        self.0.pid()
    }

    /// Yields the `CommandResult`; raises `CommandExitException` on a non-zero exit.
    fn wait(&self) -> Op {
        let h = self.0.clone();
        Op::map(async move { h.wait().await }, result)
    }

    fn kill(&self) -> Op {
        let h = self.0.clone();
        Op::new(async move { h.kill().await })
    }

    fn disconnect(&self) {
        self.0.disconnect()
    }
}
