//! Native directory watchers: the streaming `WatchHandle` (async API) and the polling
//! `PollingWatcher` (sync API), with events as `FilesystemEvent` values.

use std::sync::Arc;

use pyo3::prelude::*;

use crate::config::duration;
use crate::error::to_py;
use crate::models::EntryInfo;
use crate::op::Op;

/// One change in a watched directory; `type` is E2B's lowercase name (`"create"`, ...).
#[pyclass(module = "e2b._native", name = "FilesystemEvent", frozen, get_all)]
pub struct FilesystemEvent {
    pub name: String,
    pub r#type: String,
    pub entry: Option<Py<EntryInfo>>,
}

fn event(py: Python<'_>, e: e2b::FilesystemEvent) -> PyResult<FilesystemEvent> {
    let entry = e.entry.map(|x| Py::new(py, EntryInfo::from(x))).transpose()?;
    Ok(FilesystemEvent { name: e.name, r#type: e.r#type.as_str().to_string(), entry })
}

#[pyclass(module = "e2b._native", frozen)]
pub struct WatchHandle(pub e2b::WatchHandle);

#[pymethods]
impl WatchHandle {
    fn stop(&self) {
        self.0.stop()
    }
}

#[pyclass(module = "e2b._native", frozen)]
pub struct PollingWatcher(pub e2b::PollingWatcher);

#[pymethods]
impl PollingWatcher {
    /// Yields the events since the last call.
    #[pyo3(signature = (request_timeout=None))]
    fn get_new_events(&self, request_timeout: Option<f64>) -> PyResult<Op> {
        let w = self.0.with_request_timeout(duration(request_timeout, "request_timeout")?);
        Ok(Op::map(async move { w.get_new_events().await }, |py, events| {
            let list: Vec<FilesystemEvent> = events.into_iter().map(|e| event(py, e)).collect::<PyResult<_>>()?;
            Ok(list.into_pyobject(py)?.into_any().unbind())
        }))
    }

    #[pyo3(signature = (request_timeout=None))]
    fn stop(&self, request_timeout: Option<f64>) -> PyResult<Op> {
        let w = self.0.with_request_timeout(duration(request_timeout, "request_timeout")?);
        Ok(Op::new(async move { w.stop().await }))
    }
}

/// The callbacks of a streaming watch (Python errors they raise are printed).
pub fn callbacks(on_event: Py<PyAny>, on_exit: Option<Py<PyAny>>) -> (e2b::watch::EventCallback, Option<e2b::watch::ExitCallback>) {
    let on_event: e2b::watch::EventCallback = Arc::new(move |e: e2b::FilesystemEvent| {
        Python::attach(|py| {
            let r = event(py, e).and_then(|ev| on_event.call1(py, (ev,)));
            if let Err(err) = r {
                err.print(py);
            }
        })
    });
    let on_exit = on_exit.map(|cb| -> e2b::watch::ExitCallback {
        Arc::new(move |err: Option<e2b::Error>| {
            Python::attach(|py| {
                let arg = err.map(|e| to_py(py, e).into_value(py).into_any());
                if let Err(e) = cb.call1(py, (arg,)) {
                    e.print(py);
                }
            })
        })
    });
    (on_event, on_exit)
}
