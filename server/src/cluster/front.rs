//! The cluster's front door, in front of the REST router and the envd proxy on every node:
//! requests about a sandbox go to the node that runs it, and creates are placed on a node
//! with room (see `store/nodes.rs` for how placement avoids overcommit).
//!
//! Invariant: a request is handled here at most once per node hop, and a forwarded request is
//! always handled by the node it reached (no forwarding loops; see `route.rs`).

use std::future::Future;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};

use super::route;
use crate::error::ApiError;
use crate::manager::Manager;

/// Largest create body read for placement (E2B's create bodies are small JSON).
const MAX_CREATE_BODY: usize = 1 << 20;
/// Nodes tried for one create before giving up.
const PLACEMENT_ATTEMPTS: usize = 3;

/// What the front door decided.
pub enum Routed {
    /// Answered (forwarded to its node, or placed).
    Done(Response),
    /// For this node: handle it as usual.
    Local(Request),
}

/// Sends requests about sandbox `id` to the node that runs it (or holds it paused), when that
/// node is another live node.
pub async fn to_owner(mgr: &Manager, id: &str, req: Request) -> Routed {
    let Some(cluster) = mgr.cluster() else { return Routed::Local(req) };
    if route::was_forwarded(&req) {
        return Routed::Local(req);
    }
    let id = crate::ids::short_sandbox_id(id);
    match mgr.store().sandbox_route(id) {
        Ok(Some((node, url))) => Routed::Done(cluster.forwarder.forward(&url, &node, req).await),
        // Ours, unknown (the handler answers 404), or on a dead node: a dead node's paused
        // sandboxes resume here (from the object store).
        _ => Routed::Local(req),
    }
}

pub fn is_create(req: &Request) -> bool {
    req.method() == Method::POST && matches!(req.uri().path(), "/sandboxes" | "/v2/sandboxes")
}

/// Places a create (`POST /sandboxes`, `/v2/sandboxes`) on a node with room, trying others
/// when a launch fails there. `local` runs the request on this node.
pub async fn place_create<F, Fut>(mgr: &Manager, req: Request, local: F) -> Routed
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let Some(cluster) = mgr.cluster() else { return Routed::Local(req) };
    if route::was_forwarded(&req) {
        return Routed::Local(req);
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_CREATE_BODY).await {
        Ok(b) => b,
        Err(_) => return Routed::Done(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response()),
    };
    let rebuild = |bytes: bytes::Bytes| {
        let mut r = Request::new(Body::from(bytes));
        *r.method_mut() = parts.method.clone();
        *r.uri_mut() = parts.uri.clone();
        *r.version_mut() = parts.version;
        *r.headers_mut() = parts.headers.clone();
        r
    };
    // Anything the local handler would refuse (bad JSON, unknown template) it refuses here.
    let template = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("templateID").and_then(|t| t.as_str()).map(str::to_string))
        .unwrap_or_else(|| "base".into());
    let Some((memory_mb, image_id)) = mgr.placement_need(&template).await else {
        return Routed::Local(rebuild(bytes));
    };
    let fresh_after = crate::ids::now_ns() / 1_000_000 - mgr.node_grace_ms();
    let mut excluded: Vec<String> = Vec::new();
    let mut last: Option<Response> = None;
    for _ in 0..PLACEMENT_ATTEMPTS {
        let placed = match mgr.store().place(&cluster.compat, memory_mb, image_id.as_deref(), fresh_after, &excluded) {
            Ok(p) => p,
            Err(e) => return Routed::Done(ApiError::from(e).into_response()),
        };
        let Some(placed) = placed else { break };
        let req = rebuild(bytes.clone());
        let resp = if placed.node.id == cluster.node_id() {
            local(req).await
        } else {
            cluster.forwarder.forward(&placed.node.advertise_url, &placed.node.id, req).await
        };
        // The sandbox row (if any) now counts its memory itself.
        let _ = mgr.store().release_placement(&placed.reservation);
        let retry = matches!(resp.status().as_u16(), 500 | 502 | 503 | 507);
        if !retry {
            return Routed::Done(resp);
        }
        tracing::warn!(node = %placed.node.id, status = resp.status().as_u16(), "create failed on the chosen node; trying another");
        excluded.push(placed.node.id);
        last = Some(resp);
    }
    Routed::Done(last.unwrap_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no node of the cluster has room for a sandbox with {memory_mb} MiB of memory"),
        )
        .into_response()
    }))
}
