//! `Op`: one pending core call, run either blocking (`wait()`, for the sync `Sandbox`) or as an
//! awaitable (`awaitable()`, for `AsyncSandbox`). One async implementation serves both.
//!
//! `wait()` releases the GIL, blocks on core's shared runtime and polls `check_signals` every
//! 50 ms so Ctrl-C raises `KeyboardInterrupt` (the dropped future cancels the request).

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use pyo3::IntoPyObjectExt;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

use crate::error::to_py;

pub type PyFut = Pin<Box<dyn Future<Output = PyResult<Py<PyAny>>> + Send>>;

/// A pending operation: call `wait()` (blocking) or `awaitable()` (awaitable) once.
#[pyclass(module = "e2b._native", frozen)]
pub struct Op {
    fut: Mutex<Option<PyFut>>,
}

impl Op {
    /// Wrap a core future; its value is converted with `convert` under the GIL.
    pub fn map<F, T, C>(fut: F, convert: C) -> Op
    where
        F: Future<Output = e2b::Result<T>> + Send + 'static,
        T: Send + 'static,
        C: FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
    {
        Op::raw(async move {
            let v = fut.await;
            Python::attach(|py| match v {
                Ok(v) => convert(py, v),
                Err(e) => Err(to_py(py, e)),
            })
        })
    }

    /// Wrap a core future whose value converts to Python directly.
    pub fn new<F, T>(fut: F) -> Op
    where
        F: Future<Output = e2b::Result<T>> + Send + 'static,
        T: for<'py> IntoPyObject<'py> + Send + 'static,
    {
        Op::map(fut, |py, v| v.into_py_any(py))
    }

    pub fn raw(fut: impl Future<Output = PyResult<Py<PyAny>>> + Send + 'static) -> Op {
        Op { fut: Mutex::new(Some(Box::pin(fut))) }
    }

    fn take(&self) -> PyResult<PyFut> {
        self.fut
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("this operation was already run"))
    }
}

#[pymethods]
impl Op {
    /// Run to completion on this thread, with the GIL released; Ctrl-C interrupts.
    fn wait(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        block_on(py, self.take()?)
    }

    /// An awaitable (asyncio future) of the result.
    fn awaitable<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        pyo3_async_runtimes::tokio::future_into_py(py, self.take()?)
    }
}

pub fn block_on(py: Python<'_>, fut: PyFut) -> PyResult<Py<PyAny>> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(PyRuntimeError::new_err(
            "a blocking e2b call was made from inside the e2b runtime (e.g. an output callback); \
             use AsyncSandbox there",
        ));
    }
    py.detach(|| {
        e2b::runtime().block_on(async move {
            let mut fut = fut;
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tokio::select! {
                    r = &mut fut => return r,
                    _ = tick.tick() => Python::attach(|py| py.check_signals())?,
                }
            }
        })
    })
}
