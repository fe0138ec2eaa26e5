//! `ConnectionOpts`: E2B's `ApiParams` (api_key, domain, api_url, sandbox_url, debug,
//! request_timeout in seconds, headers) as a native value.

use std::collections::HashMap;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

#[pyclass(module = "e2b._native", frozen)]
#[derive(Clone, Default)]
pub struct ConnectionOpts(pub e2b::ConnectionOpts);

pub fn duration(secs: Option<f64>, what: &str) -> PyResult<Option<Duration>> {
    match secs {
        None => Ok(None),
        Some(s) if s.is_finite() && s >= 0.0 => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(PyValueError::new_err(format!("{what} must be a non-negative number, got {s}"))),
    }
}

#[pymethods]
impl ConnectionOpts {
    #[new]
    #[pyo3(signature = (api_key=None, domain=None, api_url=None, sandbox_url=None, debug=None, request_timeout=None, headers=None))]
    fn new(
        api_key: Option<String>,
        domain: Option<String>,
        api_url: Option<String>,
        sandbox_url: Option<String>,
        debug: Option<bool>,
        request_timeout: Option<f64>,
        headers: Option<HashMap<String, String>>,
    ) -> PyResult<Self> {
        Ok(ConnectionOpts(e2b::ConnectionOpts {
            api_key,
            domain,
            api_url,
            sandbox_url,
            debug,
            request_timeout: duration(request_timeout, "request_timeout")?,
            headers: headers.unwrap_or_default(),
        }))
    }

    /// The REST base URL these options resolve to (after the environment and defaults).
    fn resolved_api_url(&self) -> String {
        e2b::ConnectionConfig::resolve(&self.0).api_url
    }

    /// These options resolved against the environment and defaults.
    fn resolve(&self) -> ConnectionConfig {
        ConnectionConfig(e2b::ConnectionConfig::resolve(&self.0))
    }

    /// Whether these options resolve to the embedded local sandboxd.
    fn is_embedded(&self) -> bool {
        e2b::ConnectionConfig::resolve(&self.0).embedded.is_some()
    }
}

/// The resolved configuration of a sandbox handle (E2B's `ConnectionConfig`), read-only.
#[pyclass(module = "e2b._native", frozen)]
pub struct ConnectionConfig(pub e2b::ConnectionConfig);

#[pymethods]
impl ConnectionConfig {
    #[getter]
    fn api_key(&self) -> Option<&str> {
        self.0.api_key.as_deref()
    }
    #[getter]
    fn domain(&self) -> &str {
        &self.0.domain
    }
    #[getter]
    fn api_url(&self) -> &str {
        &self.0.api_url
    }
    #[getter]
    fn sandbox_url(&self) -> Option<&str> {
        self.0.sandbox_url.as_deref()
    }
    #[getter]
    fn debug(&self) -> bool {
        self.0.debug
    }
    /// Seconds; `None` = no timeout.
    #[getter]
    fn request_timeout(&self) -> Option<f64> {
        self.0.request_timeout.map(|d| d.as_secs_f64())
    }
    #[getter]
    fn headers(&self) -> HashMap<String, String> {
        self.0.headers.clone()
    }
    /// Base URL of a sandbox's port (E2B's `get_sandbox_url`; envd's port by default). (Named
    /// apart: pyo3 derives the same symbol for it and the `sandbox_url` getter.)
    #[pyo3(signature = (sandbox_id, sandbox_domain=None, port=None))]
    fn sandbox_url_for(&self, sandbox_id: &str, sandbox_domain: Option<&str>, port: Option<u16>) -> String {
        self.0.sandbox_url_for(sandbox_id, sandbox_domain, port.unwrap_or(e2b::config::ENVD_PORT))
    }
    /// `<port>-<id>.<domain>` (`localhost:<port>` in debug), E2B's `get_host`.
    fn host_for(&self, sandbox_id: &str, sandbox_domain: Option<&str>, port: u16) -> String {
        self.0.host(sandbox_id, sandbox_domain, port)
    }
    fn __repr__(&self) -> String {
        format!("ConnectionConfig(api_url={:?}, domain={:?}, debug={})", self.0.api_url, self.0.domain, self.0.debug)
    }
}

pub fn opts(o: Option<&ConnectionOpts>) -> e2b::ConnectionOpts {
    o.map(|o| o.0.clone()).unwrap_or_default()
}
