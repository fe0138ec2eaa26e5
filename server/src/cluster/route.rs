//! Requests about a sandbox that runs on another node are forwarded there, so clients can use
//! any node (plain DNS or a load balancer in front of all of them).
//!
//! What is forwarded: REST calls under `/sandboxes/{id}` and `/v2/sandboxes/{id}`, and envd /
//! port traffic (the `E2b-Sandbox-Id` header, `<port>-<id>.<domain>` hosts, signed URLs).
//! Bodies stream both ways. A forwarded request carries [`FORWARDED_HEADER`]; a node never
//! forwards such a request again, so a stale view of where a sandbox runs cannot loop.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Uri, Version};
use axum::response::{IntoResponse, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::ApiError;

/// Set on a forwarded request to the node that forwarded it.
pub const FORWARDED_HEADER: &str = "x-sandboxd-forwarded-by";

/// The sandbox a REST path is about: `/sandboxes/{id}[/…]`, `/v2/sandboxes/{id}[/…]`.
pub fn rest_sandbox_id(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v2/sandboxes/").or_else(|| path.strip_prefix("/sandboxes/"))?;
    let id = rest.split('/').next()?;
    // `/sandboxes/metrics` lists metrics of many sandboxes.
    (!id.is_empty() && id != "metrics").then_some(id)
}

pub fn was_forwarded(req: &Request) -> bool {
    req.headers().contains_key(FORWARDED_HEADER)
}

#[derive(Clone)]
pub struct Forwarder {
    client: Client<HttpConnector, Body>,
    node_id: String,
}

impl Forwarder {
    pub fn new(node_id: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(std::time::Duration::from_secs(5)));
        connector.set_nodelay(true);
        Self { client: Client::builder(TokioExecutor::new()).build(connector), node_id: node_id.to_string() }
    }

    /// Sends `req` to the node at `base` (its advertised `http://host:port`) and streams its
    /// answer back. The `Host` header is kept: the other node routes envd traffic by it.
    pub async fn forward(&self, base: &str, node: &str, mut req: Request) -> Response {
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let uri: Uri = match format!("{}{path}", base.trim_end_matches('/')).parse() {
            Ok(uri) => uri,
            Err(e) => return ApiError::internal(format!("node {node} has an unusable address {base:?}: {e}")).into_response(),
        };
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        crate::proxy::strip_hop_by_hop(req.headers_mut());
        if let Ok(v) = HeaderValue::from_str(&self.node_id) {
            req.headers_mut().insert(FORWARDED_HEADER, v);
        }
        match self.client.request(req).await {
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                crate::proxy::strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, Body::new(body))
            }
            Err(e) => {
                tracing::warn!(node, error = %e, "node unreachable");
                ApiError::new(axum::http::StatusCode::BAD_GATEWAY, format!("the node running this sandbox ({node}) is unreachable")).into_response()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::rest_sandbox_id;

    #[test]
    fn only_paths_about_one_sandbox_name_it() {
        assert_eq!(rest_sandbox_id("/sandboxes/abc"), Some("abc"));
        assert_eq!(rest_sandbox_id("/sandboxes/abc/pause"), Some("abc"));
        assert_eq!(rest_sandbox_id("/v2/sandboxes/abc/logs"), Some("abc"));
        assert_eq!(rest_sandbox_id("/sandboxes"), None);
        assert_eq!(rest_sandbox_id("/v2/sandboxes"), None);
        assert_eq!(rest_sandbox_id("/sandboxes/"), None);
        assert_eq!(rest_sandbox_id("/sandboxes/metrics"), None);
        assert_eq!(rest_sandbox_id("/templates/abc"), None);
    }
}
