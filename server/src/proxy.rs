//! The envd reverse proxy, on the same port as the REST API.
//!
//! A request is for a sandbox when it carries `E2b-Sandbox-Id` (what the SDKs send when
//! `E2B_SANDBOX_URL` is set, with `E2b-Sandbox-Port`) or when its host is
//! `<port>-<sandboxID>.<anything>`; everything else goes to the REST router.
//!
//! envd's port is forwarded here; every other guest port goes through [`ports`].
//!
//! Invariants: bodies stream both ways without buffering (server-streaming RPCs stay live);
//! envd's internal routes are never reachable from outside (404); traffic for a paused sandbox
//! created with `autoResume` resumes it first; errors are E2B's client-proxy JSON
//! (`{sandboxId, message, code, port?}`): an unknown, paused or dead sandbox is a 502 whose
//! message contains "was not found" (the SDKs map that to "sandbox not running"), an
//! unreachable port a 502 with "port is not open", a missing/invalid traffic token a 403.

mod ports;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri, Version, header};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::ApiError;
use crate::manager::Manager;

/// The port envd listens on inside every sandbox (and the only one sandboxd forwards).
pub const ENVD_PORT: u16 = 49983;

/// envd routes the orchestrator uses around restores; never exposed to clients.
const INTERNAL_PATHS: &[&str] = &["/init", "/freeze", "/unfreeze", "/collapse", "/fsfreeze", "/fsthaw", "/upgrade"];

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

#[derive(Clone)]
pub struct EnvdProxy {
    client: Client<HttpConnector, Body>,
    manager: Manager,
    ports: ports::PortProxy,
}

/// E2B's proxy error bodies (`packages/shared/pkg/proxy/template`), as JSON.
pub(crate) struct ProxyError {
    status: StatusCode,
    body: serde_json::Value,
}

impl ProxyError {
    pub(crate) fn not_found(id: &str) -> Self {
        let body = serde_json::json!({"sandboxId": id, "message": "The sandbox was not found", "code": 502});
        Self { status: StatusCode::BAD_GATEWAY, body }
    }

    pub(crate) fn port_closed(id: &str, port: u16) -> Self {
        let body = serde_json::json!({
            "sandboxId": id, "message": "The sandbox is running but port is not open", "port": port, "code": 502,
        });
        Self { status: StatusCode::BAD_GATEWAY, body }
    }

    /// A missing (`invalid: false`) or wrong traffic access token.
    pub(crate) fn token(id: &str, invalid: bool) -> Self {
        let h = crate::network::TRAFFIC_TOKEN_HEADER;
        let message = if invalid {
            format!("Sandbox is secured with traffic access token. Provided token in header '{h}' is invalid")
        } else {
            format!("Sandbox is secured with traffic access token. Token header '{h}' is missing")
        };
        Self {
            status: StatusCode::FORBIDDEN,
            body: serde_json::json!({"sandboxId": id, "message": message, "code": 403}),
        }
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

/// Which sandbox and port a request is for, if it is envd traffic.
pub fn target(req: &Request) -> Option<(String, u16)> {
    let headers = req.headers();
    if let Some(id) = headers.get("e2b-sandbox-id").and_then(|v| v.to_str().ok()) {
        let port = headers
            .get("e2b-sandbox-port")
            .and_then(|v| v.to_str().ok())
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(ENVD_PORT);
        return Some((crate::ids::short_sandbox_id(id.trim()).to_string(), port));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))?;
    let (label, _) = host.split_once('.')?;
    let (port, id) = label.split_once('-')?;
    let port: u16 = port.parse().ok()?;
    let id = crate::ids::short_sandbox_id(id);
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())).then(|| (id.to_string(), port))
}

pub(crate) fn strip_hop_by_hop(headers: &mut axum::http::HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

impl EnvdProxy {
    pub fn new(manager: Manager) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self { client, manager, ports: ports::PortProxy::new() }
    }

    pub async fn forward(&self, id: String, port: u16, mut req: Request) -> Response {
        if port != ENVD_PORT {
            return self.ports.forward(&self.manager, id, port, req).await;
        }
        if INTERNAL_PATHS.contains(&req.uri().path().trim_end_matches('/')) {
            return ApiError::not_found("route not found").into_response();
        }
        let addr = match self.manager.envd_addr(&id) {
            Some(addr) => addr,
            None => match self.manager.auto_resume(&id).await {
                Some(addr) => addr,
                None => return ProxyError::not_found(&id).into_response(),
            },
        };
        // The guest's disk is a qcow2 layer in the store: an upload the store cannot hold would
        // stop the VM on a full disk, so it is refused here, before any byte reaches the guest.
        let upload = req.method() == axum::http::Method::POST && req.uri().path() == "/files";
        // An upload refused before its body was read leaves the rest of the body in flight: the
        // connection is closed after the answer, and says so, so no client pools it and sends
        // its next request into a closing socket.
        let close_on_error = upload && req.version() < Version::HTTP_2;
        if upload {
            let len = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
            if let Some(len) = len
                && let Err(e) = self.manager.ensure_store_space(len, "this upload")
            {
                // Read the body the client is still sending first: answering and closing with
                // unread data resets the connection, and the client sees a broken pipe, not 507.
                crate::api::body_cap::drain(req.into_body()).await;
                let mut resp = e.into_response();
                if close_on_error {
                    resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                return resp;
            }
        }
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let uri: Uri = match format!("http://{addr}{path}").parse() {
            Ok(uri) => uri,
            Err(e) => return ApiError::bad_request(format!("bad request path: {e}")).into_response(),
        };
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        strip_hop_by_hop(req.headers_mut());
        if let Ok(host) = HeaderValue::from_str(&addr.to_string()) {
            req.headers_mut().insert(header::HOST, host);
        }
        if upload {
            // envd may answer an upload (507, 400) before reading all of it; such a connection
            // must not go back to the pool.
            req.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        match self.client.request(req).await {
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                if close_on_error && !parts.status.is_success() {
                    parts.headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                Response::from_parts(parts, Body::new(body))
            }
            Err(e) => {
                tracing::debug!(sandbox = %id, error = %e, "envd unreachable");
                // A kill in progress holds the sandbox's lock: `reap_if_dead` waits for it, and the
                // route is gone afterwards. Either way the sandbox is gone, in E2B's words.
                let gone = self.manager.envd_addr(&id).is_none()
                    || self.manager.reap_if_dead(&id).await
                    || self.manager.envd_addr(&id).is_none();
                if gone {
                    ProxyError::not_found(&id).into_response()
                } else {
                    ProxyError::port_closed(&id, port).into_response()
                }
            }
        }
    }
}
