//! `ConnectionConfig` (E2B's class): resolved connection settings, from options or from a
//! sandbox (`sandbox.connectionConfig`), with E2B's URL helpers. Resolution is the core's.

use std::collections::HashMap;

use napi::bindgen_prelude::{Either, Null};
use napi_derive::napi;

use crate::config::ConnectionOpts;

/// Where a sandbox port is reached: its domain and the port.
#[napi(object)]
pub struct SandboxUrlOpts {
    /// `null` or absent: the configured domain.
    #[napi(ts_type = "string | null")]
    pub sandbox_domain: Option<Either<String, Null>>,
    pub envd_port: u32,
}

fn domain(d: &Option<Either<String, Null>>) -> Option<&str> {
    match d {
        Some(Either::A(s)) => Some(s),
        _ => None,
    }
}

/// Resolved connection settings: options first, then the environment, then defaults.
#[napi]
pub struct ConnectionConfig {
    pub(crate) inner: e2b::ConnectionConfig,
}

fn port(p: u32) -> napi::Result<u16> {
    u16::try_from(p).map_err(|_| napi::Error::from_reason(format!("port {p} is out of range")))
}

#[napi]
impl ConnectionConfig {
    /// Resolve `opts` against the environment (`E2B_API_KEY`, `E2B_API_URL`, ...).
    #[napi(constructor)]
    pub fn new(opts: Option<ConnectionOpts>) -> Self {
        let o = crate::config::connection(&opts);
        ConnectionConfig { inner: e2b::ConnectionConfig::resolve(&o) }
    }

    #[napi(getter)]
    pub fn api_key(&self) -> Option<String> {
        self.inner.api_key.clone()
    }
    #[napi(getter)]
    pub fn domain(&self) -> String {
        self.inner.domain.clone()
    }
    #[napi(getter)]
    pub fn api_url(&self) -> String {
        self.inner.api_url.clone()
    }
    #[napi(getter)]
    pub fn sandbox_url(&self) -> Option<String> {
        self.inner.sandbox_url.clone()
    }
    #[napi(getter)]
    pub fn debug(&self) -> bool {
        self.inner.debug
    }
    /// Timeout of each request in milliseconds (0: none).
    #[napi(getter)]
    pub fn request_timeout_ms(&self) -> f64 {
        self.inner.request_timeout.map_or(0.0, |d| d.as_millis() as f64)
    }
    #[napi(getter)]
    pub fn headers(&self) -> HashMap<String, String> {
        self.inner.headers.clone()
    }
    /// Where requests come from (E2B's diagnostics tag); never set by this SDK.
    #[napi(getter)]
    pub fn request_source(&self) -> Option<String> {
        None
    }

    /// Base URL of a sandbox's port: `sandboxUrl` when set (requests then name the sandbox and
    /// port in `E2b-Sandbox-Id` / `E2b-Sandbox-Port`), else `https://<port>-<id>.<domain>`.
    #[napi]
    pub fn get_sandbox_url(&self, sandbox_id: String, opts: SandboxUrlOpts) -> napi::Result<String> {
        Ok(self.inner.sandbox_url_for(&sandbox_id, domain(&opts.sandbox_domain), port(opts.envd_port)?))
    }

    /// The same as `getSandboxUrl` (sandboxd has no shared sandbox domain to route through).
    #[napi]
    pub fn get_sandbox_direct_url(&self, sandbox_id: String, opts: SandboxUrlOpts) -> napi::Result<String> {
        self.get_sandbox_url(sandbox_id, opts)
    }

    /// `<port>-<id>.<domain>` (`localhost:<port>` in debug mode).
    #[napi]
    pub fn get_host(
        &self,
        sandbox_id: String,
        port: u32,
        #[napi(ts_arg_type = "string | null")] sandbox_domain: Option<Either<String, Null>>,
    ) -> napi::Result<String> {
        Ok(self.inner.host(&sandbox_id, domain(&sandbox_domain), self::port(port)?))
    }
}
