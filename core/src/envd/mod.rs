//! The envd client: Connect RPC (JSON codec) for `process.Process` and `filesystem.Filesystem`,
//! and the `/files` and `/health` HTTP endpoints.
//!
//! The protocol types and the envelope codec are envd's own module (`envd/src/proto.rs`,
//! dependency-light), compiled into this crate too so both sides share one definition.

pub mod connect;
#[path = "../../../envd/src/proto.rs"]
pub mod proto;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::RequestBuilder;

use crate::api::http_client;
use crate::config::{ConnectionConfig, ENVD_PORT};
use crate::error::{Error, Result};

/// Connection to one sandbox's envd; cheap to clone.
#[derive(Debug, Clone)]
pub struct EnvdClient(Arc<EnvdInner>);

#[derive(Debug, Clone)]
struct EnvdInner {
    base_url: String,
    sandbox_id: String,
    access_token: Option<String>,
    request_timeout: Option<Duration>,
    headers: HashMap<String, String>,
}

impl EnvdClient {
    pub fn new(
        config: &ConnectionConfig,
        sandbox_id: &str,
        sandbox_domain: Option<&str>,
        access_token: Option<String>,
    ) -> Self {
        EnvdClient(Arc::new(EnvdInner {
            base_url: config.envd_url(sandbox_id, sandbox_domain),
            sandbox_id: sandbox_id.to_string(),
            access_token,
            request_timeout: config.request_timeout,
            headers: config.headers.clone(),
        }))
    }

    pub fn base_url(&self) -> &str {
        &self.0.base_url
    }

    pub fn access_token(&self) -> Option<&str> {
        self.0.access_token.as_deref()
    }

    pub(crate) fn request_timeout(&self) -> Option<Duration> {
        self.0.request_timeout
    }

    /// This client with a per-call request timeout (E2B's `request_timeout` /
    /// `requestTimeoutMs` argument): `None` keeps the configured one, zero disables it.
    pub fn with_request_timeout(&self, timeout: Option<Duration>) -> EnvdClient {
        match timeout {
            None => self.clone(),
            Some(t) => {
                let mut inner = (*self.0).clone();
                inner.request_timeout = (!t.is_zero()).then_some(t);
                EnvdClient(Arc::new(inner))
            }
        }
    }

    /// A request to `path` with the routing, auth and user headers set. `timeout` overrides the
    /// configured request timeout (`Some(None)` disables it, for streams).
    pub(crate) fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        user: Option<&str>,
        timeout: Option<Option<Duration>>,
    ) -> RequestBuilder {
        let i = &self.0;
        let mut b = http_client()
            .request(method, format!("{}{}", i.base_url, path))
            .header("E2b-Sandbox-Id", &i.sandbox_id)
            .header("E2b-Sandbox-Port", ENVD_PORT.to_string());
        if let Some(t) = &i.access_token {
            b = b.header("X-Access-Token", t);
        }
        if let Some(u) = user {
            use base64::Engine;
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{u}:"));
            b = b.header("Authorization", format!("Basic {basic}"));
        }
        for (k, v) in &i.headers {
            b = b.header(k, v);
        }
        if let Some(t) = timeout.unwrap_or(i.request_timeout) {
            b = b.timeout(t);
        }
        b
    }

    /// `GET /health`: true on 2xx, false when the sandbox is gone (502) or unreachable.
    pub async fn health(&self, timeout: Option<Duration>) -> Result<bool> {
        let t = timeout.or(Some(Duration::from_secs(5)));
        let r = self.request(reqwest::Method::GET, "/health", None, Some(t)).send().await;
        match r {
            Ok(r) if r.status().is_success() => Ok(true),
            Ok(r) if r.status().as_u16() == 502 || r.status().as_u16() == 404 => Ok(false),
            Ok(r) => {
                let status = r.status().as_u16();
                let body = r.bytes().await.unwrap_or_default();
                Err(Error::from_api_response(status, &body))
            }
            Err(e) if e.is_connect() => Ok(false),
            Err(e) => Err(Error::from_reqwest(e)),
        }
    }
}

/// Which family of calls failed: filesystem `not_found` means a missing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Domain {
    Process,
    Filesystem,
}

/// E2B's mapping of a Connect error code (spec §3.2).
pub(crate) fn map_connect_error(code: &str, message: &str, domain: Domain) -> Error {
    let m = message.to_string();
    match code {
        "invalid_argument" => Error::InvalidArgument(m),
        "unauthenticated" => Error::Authentication(m),
        "not_found" if domain == Domain::Filesystem => Error::FileNotFound(m),
        "not_found" => Error::NotFound(m),
        "resource_exhausted" => Error::RateLimit(m),
        "unavailable" => Error::Timeout(format!(
            "{m}: The sandbox was killed or reached its timeout. You can modify the sandbox timeout \
             by passing 'timeout' when starting the sandbox or calling '.set_timeout' on the \
             sandbox with the desired timeout."
        )),
        "canceled" => Error::Timeout(format!(
            "{m}: This error is likely due to exceeding 'request_timeout'. You can pass the request \
             timeout value as an option when making the request."
        )),
        "deadline_exceeded" => Error::Timeout(format!(
            "{m}: This error is likely due to exceeding 'timeout' — the total time a long running \
             request (like process or directory watch) can be active. It can be modified by \
             passing 'timeout' when making the request. Use '0' to disable the timeout."
        )),
        _ => Error::sandbox(format!("{code}: {m}")),
    }
}

/// Map a non-Connect HTTP failure from envd or the proxy in front of it.
pub(crate) fn map_http_error(status: u16, body: &[u8], domain: Domain) -> Error {
    if let Ok(e) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(code) = e.get("code").and_then(|c| c.as_str())
    {
        let msg = e.get("message").and_then(|m| m.as_str()).unwrap_or_default();
        return map_connect_error(code, msg, domain);
    }
    let text = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    match status {
        400 => Error::InvalidArgument(text),
        401 => Error::Authentication(text),
        404 if domain == Domain::Filesystem => Error::FileNotFound(text),
        404 => Error::NotFound(text),
        429 => Error::RateLimit(format!("{status}: Rate limit exceeded, please try again later.")),
        502 => Error::Timeout(format!(
            "{text}: This error is likely due to sandbox timeout. You can modify the sandbox \
             timeout by passing 'timeout' when starting the sandbox or calling '.set_timeout' on \
             the sandbox with the desired timeout."
        )),
        507 => Error::NotEnoughSpace(text),
        _ => Error::Sandbox { message: format!("{status}: {text}"), status: Some(status) },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn connect_codes() {
        let k = |c, d| map_connect_error(c, "m", d).kind();
        assert_eq!(k("not_found", Domain::Filesystem), ErrorKind::FileNotFound);
        assert_eq!(k("not_found", Domain::Process), ErrorKind::NotFound);
        assert_eq!(k("invalid_argument", Domain::Process), ErrorKind::InvalidArgument);
        assert_eq!(k("unauthenticated", Domain::Process), ErrorKind::Authentication);
        assert_eq!(k("unavailable", Domain::Process), ErrorKind::Timeout);
        assert_eq!(k("deadline_exceeded", Domain::Process), ErrorKind::Timeout);
        assert_eq!(k("resource_exhausted", Domain::Process), ErrorKind::RateLimit);
        assert_eq!(k("internal", Domain::Process), ErrorKind::Sandbox);
    }

    #[test]
    fn http_codes() {
        assert_eq!(map_http_error(507, b"full", Domain::Filesystem).kind(), ErrorKind::NotEnoughSpace);
        assert_eq!(map_http_error(404, b"{}", Domain::Filesystem).kind(), ErrorKind::FileNotFound);
        assert_eq!(map_http_error(502, b"", Domain::Process).kind(), ErrorKind::Timeout);
        let e = map_http_error(404, br#"{"code":"not_found","message":"no"}"#, Domain::Process);
        assert_eq!(e.kind(), ErrorKind::NotFound);
    }
}
