//! The REST router: E2B's routes, JSON in and out, `X-API-KEY` on everything but `/health`.
//!
//! Invariants: handlers only translate HTTP into [`Manager`] calls and back; every rejection
//! (bad JSON, oversized body, unknown route, wrong method) is an [`ApiError`] JSON body;
//! request bodies are capped at [`MAX_BODY_BYTES`] (413 beyond).

mod extract;
mod sandboxes;
mod snapshots;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};

use crate::auth::{Keys, require_api_key};
use crate::error::ApiError;
use crate::manager::Manager;

pub use extract::parse_query;

/// REST request bodies are small JSON documents.
pub const MAX_BODY_BYTES: usize = 1 << 20;

#[derive(Clone)]
pub struct AppState {
    pub manager: Manager,
    pub keys: Keys,
}

/// Every authenticated route, as `(method, path)`; `server/openapi.yaml` documents exactly
/// these plus `GET /health` (checked by `tests/openapi.rs`).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/sandboxes"),
    ("GET", "/sandboxes"),
    ("POST", "/v2/sandboxes"),
    ("GET", "/v2/sandboxes"),
    ("GET", "/sandboxes/{sandboxID}"),
    ("DELETE", "/sandboxes/{sandboxID}"),
    ("GET", "/sandboxes/{sandboxID}/metrics"),
    ("POST", "/sandboxes/{sandboxID}/timeout"),
    ("POST", "/sandboxes/{sandboxID}/refreshes"),
    ("POST", "/sandboxes/{sandboxID}/pause"),
    ("POST", "/sandboxes/{sandboxID}/resume"),
    ("POST", "/sandboxes/{sandboxID}/connect"),
    ("POST", "/v2/sandboxes/{sandboxID}/connect"),
    ("POST", "/sandboxes/{sandboxID}/fork"),
    ("POST", "/sandboxes/{sandboxID}/snapshots"),
    ("GET", "/snapshots"),
    ("DELETE", "/templates/{templateID}"),
];

pub fn router(state: AppState) -> Router {
    let authed = Router::new()
        .route("/sandboxes", post(sandboxes::create_v1).get(sandboxes::list_v1))
        .route("/v2/sandboxes", post(sandboxes::create_v2).get(sandboxes::list_v2))
        .route("/sandboxes/{sandboxID}", get(sandboxes::detail).delete(sandboxes::kill))
        .route("/sandboxes/{sandboxID}/metrics", get(sandboxes::metrics))
        .route("/sandboxes/{sandboxID}/timeout", post(sandboxes::set_timeout))
        .route("/sandboxes/{sandboxID}/refreshes", post(sandboxes::refresh))
        .route("/sandboxes/{sandboxID}/pause", post(sandboxes::pause))
        .route("/sandboxes/{sandboxID}/resume", post(sandboxes::resume))
        .route("/sandboxes/{sandboxID}/connect", post(sandboxes::connect))
        .route("/v2/sandboxes/{sandboxID}/connect", post(sandboxes::connect))
        .route("/sandboxes/{sandboxID}/fork", post(snapshots::fork))
        .route("/sandboxes/{sandboxID}/snapshots", post(snapshots::create))
        .route("/snapshots", get(snapshots::list))
        .route("/templates/{templateID}", delete(snapshots::delete))
        .route_layer(axum::middleware::from_fn_with_state(state.keys.clone(), require_api_key));
    authed
        .route("/health", get(health))
        .fallback(|| async { ApiError::not_found("route not found") })
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}
