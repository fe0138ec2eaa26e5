//! Native `Commands` and `CommandHandle`.

use std::collections::HashMap;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::config::duration;
use crate::models::{CommandResult, ProcessInfo};
use crate::op::Op;

#[pyclass(module = "e2b._native", frozen)]
pub struct Commands(pub e2b::Commands);

#[pyclass(module = "e2b._native", frozen)]
pub struct CommandHandle(pub e2b::CommandHandle);

/// An ordered input stream to a process (`stream_input`).
#[pyclass(module = "e2b._native", frozen)]
pub struct InputStream(pub e2b::InputStream);

#[pymethods]
impl InputStream {
    /// Queue a chunk (delivered in order); raises the stream's failure, if any.
    fn send(&self, py: Python<'_>, data: Vec<u8>) -> PyResult<()> {
        self.0.send(data).map_err(|e| crate::error::to_py(py, e))
    }

    /// End the stream; yields once every queued chunk was delivered.
    fn close(&self) -> Op {
        let s = self.0.clone();
        Op::new(async move { s.close().await })
    }
}

/// Open an input stream on core's runtime (its sending task lives there).
pub fn open_input(open: impl FnOnce() -> e2b::InputStream) -> InputStream {
    let _guard = e2b::runtime().enter();
    InputStream(open())
}

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

/// A Python callable receiving PTY output as `bytes`.
pub fn pty_callback(cb: Option<Py<PyAny>>) -> Option<e2b::PtyCallback> {
    let cb = cb?;
    Some(Arc::new(move |chunk: bytes::Bytes| {
        Python::attach(|py| {
            if let Err(e) = cb.call1(py, (PyBytes::new(py, &chunk),)) {
                e.print(py);
            }
        })
    }))
}

fn result(py: Python<'_>, r: e2b::CommandResult) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, CommandResult::from(r))?.into_any())
}

fn handle(py: Python<'_>, h: e2b::CommandHandle) -> PyResult<Py<PyAny>> {
    Ok(Py::new(py, CommandHandle(h))?.into_any())
}

impl Commands {
    /// These operations with the call's `request_timeout` (seconds; 0 disables it).
    fn timed(&self, request_timeout: Option<f64>) -> PyResult<e2b::Commands> {
        Ok(self.0.with_request_timeout(duration(request_timeout, "request_timeout")?))
    }
}

#[pymethods]
impl Commands {
    /// Run a command; yields a `CommandResult`, or a `CommandHandle` when `background`.
    #[pyo3(signature = (cmd, background=false, envs=None, user=None, cwd=None, on_stdout=None, on_stderr=None, stdin=None, timeout=60.0, request_timeout=None, retain_output=true))]
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
        request_timeout: Option<f64>,
        retain_output: bool,
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
            on_pty: None,
            discard_output: !retain_output,
        };
        let c = self.timed(request_timeout)?;
        Ok(if background {
            Op::map(async move { c.run_background(&cmd, opts).await }, handle)
        } else {
            Op::map(async move { c.run(&cmd, opts).await }, result)
        })
    }

    /// Attach to a running process.
    #[pyo3(signature = (pid, timeout=60.0, request_timeout=None, on_stdout=None, on_stderr=None, retain_output=true))]
    fn connect(
        &self,
        pid: u32,
        timeout: Option<f64>,
        request_timeout: Option<f64>,
        on_stdout: Option<Py<PyAny>>,
        on_stderr: Option<Py<PyAny>>,
        retain_output: bool,
    ) -> PyResult<Op> {
        let opts = e2b::RunOptions {
            timeout: Some(duration(timeout, "timeout")?.unwrap_or_default()),
            on_stdout: callback(on_stdout),
            on_stderr: callback(on_stderr),
            discard_output: !retain_output,
            ..Default::default()
        };
        let c = self.timed(request_timeout)?;
        Ok(Op::map(async move { c.connect(pid, opts).await }, handle))
    }

    #[pyo3(signature = (request_timeout=None))]
    fn list(&self, request_timeout: Option<f64>) -> PyResult<Op> {
        let c = self.timed(request_timeout)?;
        Ok(Op::new(async move { Ok(c.list().await?.into_iter().map(ProcessInfo::from).collect::<Vec<_>>()) }))
    }

    /// SIGKILL; yields False when there was no such process.
    #[pyo3(signature = (pid, request_timeout=None))]
    fn kill(&self, pid: u32, request_timeout: Option<f64>) -> PyResult<Op> {
        let c = self.timed(request_timeout)?;
        Ok(Op::new(async move { c.kill(pid).await }))
    }

    #[pyo3(signature = (pid, data, request_timeout=None))]
    fn send_stdin(&self, pid: u32, data: Vec<u8>, request_timeout: Option<f64>) -> PyResult<Op> {
        let c = self.timed(request_timeout)?;
        Ok(Op::new(async move { c.send_stdin(pid, data).await }))
    }

    #[pyo3(signature = (pid, request_timeout=None))]
    fn close_stdin(&self, pid: u32, request_timeout: Option<f64>) -> PyResult<Op> {
        let c = self.timed(request_timeout)?;
        Ok(Op::new(async move { c.close_stdin(pid).await }))
    }

    /// Open an ordered input stream to `pid`'s stdin (`timeout` seconds; 0 or None: unlimited).
    #[pyo3(signature = (pid, timeout=60.0))]
    fn stream_input(&self, pid: u32, timeout: Option<f64>) -> PyResult<InputStream> {
        let t = Some(duration(timeout, "timeout")?.unwrap_or_default());
        Ok(open_input(|| self.0.stream_input(pid, t)))
    }
}

#[pymethods]
impl CommandHandle {
    #[getter]
    fn pid(&self) -> u32 {
        self.0.pid()
    }

    /// Standard output received so far.
    #[getter]
    fn stdout(&self) -> String {
        self.0.stdout()
    }

    /// Standard error received so far.
    #[getter]
    fn stderr(&self) -> String {
        self.0.stderr()
    }

    /// The exit code once the command has ended, else None.
    #[getter]
    fn exit_code(&self) -> Option<i32> {
        self.0.exit_code()
    }

    #[getter]
    fn error(&self) -> Option<String> {
        self.0.error()
    }

    /// Yields the `CommandResult` after handing every output chunk (from the start) to the
    /// callbacks; raises `CommandExitException` on a non-zero exit.
    #[pyo3(signature = (on_stdout=None, on_stderr=None, on_pty=None))]
    fn wait(&self, on_stdout: Option<Py<PyAny>>, on_stderr: Option<Py<PyAny>>, on_pty: Option<Py<PyAny>>) -> Op {
        let h = self.0.clone();
        let (o, e, p) = (callback(on_stdout), callback(on_stderr), pty_callback(on_pty));
        Op::map(async move { h.wait_with(o, e, p).await }, result)
    }

    /// Yields the output chunk at `cursor` as `(stdout, stderr, pty)` with one of them set, or
    /// None after the last one.
    fn next_output(&self, cursor: usize) -> Op {
        let h = self.0.clone();
        Op::map(async move { h.next_output(cursor).await }, |py, chunk| {
            let none = || py.None();
            let t = match chunk {
                None => return Ok(py.None()),
                Some(e2b::OutputChunk::Stdout(s)) => (s.into_pyobject(py)?.into_any().unbind(), none(), none()),
                Some(e2b::OutputChunk::Stderr(s)) => (none(), s.into_pyobject(py)?.into_any().unbind(), none()),
                Some(e2b::OutputChunk::Pty(b)) => (none(), none(), PyBytes::new(py, &b).into_any().unbind()),
            };
            Ok(t.into_pyobject(py)?.into_any().unbind())
        })
    }

    fn kill(&self) -> Op {
        let h = self.0.clone();
        Op::new(async move { h.kill().await })
    }

    #[pyo3(signature = (data, request_timeout=None))]
    fn send_stdin(&self, data: Vec<u8>, request_timeout: Option<f64>) -> PyResult<Op> {
        let c = self.0.commands().with_request_timeout(duration(request_timeout, "request_timeout")?);
        let pid = self.0.pid();
        Ok(Op::new(async move { c.send_stdin(pid, data).await }))
    }

    #[pyo3(signature = (request_timeout=None))]
    fn close_stdin(&self, request_timeout: Option<f64>) -> PyResult<Op> {
        let c = self.0.commands().with_request_timeout(duration(request_timeout, "request_timeout")?);
        let pid = self.0.pid();
        Ok(Op::new(async move { c.close_stdin(pid).await }))
    }

    fn disconnect(&self) {
        self.0.disconnect()
    }
}
