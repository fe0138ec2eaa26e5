//! The REST router: E2B's routes, JSON in and out, `X-API-KEY` on everything but `/health`.
//!
//! Invariants: handlers only translate HTTP into [`Manager`] calls and back; every rejection
//! (bad JSON, oversized body, unknown route, wrong method) is an [`ApiError`] JSON body;
//! request bodies are capped at [`MAX_BODY_BYTES`] (413 beyond, after draining: [`body_cap`]).

pub(crate) mod body_cap;
mod extract;
mod sandboxes;
mod secrets;
mod snapshots;
mod telemetry;
mod templates;
mod volumes;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};

use crate::auth::{Keys, require_api_key};
use crate::error::{ApiError, ApiResult};
use crate::manager::Manager;

pub use extract::parse_query;

/// REST request bodies are small JSON documents.
pub const MAX_BODY_BYTES: usize = 1 << 20;

#[derive(Clone)]
pub struct AppState {
    pub manager: Manager,
    pub keys: Keys,
    pub builds: crate::template::build::Builds,
    pub volumes: crate::volumes::Volumes,
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
    ("GET", "/sandboxes/metrics"),
    ("GET", "/sandboxes/{sandboxID}/metrics"),
    ("GET", "/sandboxes/{sandboxID}/logs"),
    ("GET", "/v2/sandboxes/{sandboxID}/logs"),
    ("POST", "/sandboxes/{sandboxID}/timeout"),
    ("POST", "/sandboxes/{sandboxID}/refreshes"),
    ("POST", "/sandboxes/{sandboxID}/pause"),
    ("PUT", "/sandboxes/{sandboxID}/network"),
    ("POST", "/sandboxes/{sandboxID}/resume"),
    ("POST", "/sandboxes/{sandboxID}/connect"),
    ("POST", "/v2/sandboxes/{sandboxID}/connect"),
    ("POST", "/sandboxes/{sandboxID}/fork"),
    ("POST", "/sandboxes/{sandboxID}/snapshots"),
    ("GET", "/snapshots"),
    ("DELETE", "/templates/{templateID}"),
    ("POST", "/v3/templates"),
    ("GET", "/templates"),
    ("GET", "/templates/{templateID}"),
    ("GET", "/templates/aliases/{alias}"),
    ("GET", "/templates/{templateID}/files/{hash}"),
    ("POST", "/v2/templates/{templateID}/builds/{buildID}"),
    ("GET", "/templates/{templateID}/builds/{buildID}/status"),
    ("GET", "/templates/{templateID}/builds/{buildID}/logs"),
    ("POST", "/templates/tags"),
    ("DELETE", "/templates/tags"),
    ("GET", "/templates/{templateID}/tags"),
    ("GET", "/secrets"),
    ("POST", "/secrets"),
    ("GET", "/secrets/{secretID}"),
    ("POST", "/secrets/{secretID}"),
    ("DELETE", "/secrets/{secretID}"),
    ("GET", "/volumes"),
    ("POST", "/volumes"),
    ("GET", "/volumes/{volumeID}"),
    ("DELETE", "/volumes/{volumeID}"),
];

pub fn router(state: AppState) -> Router {
    let authed = Router::new()
        .route("/sandboxes", post(sandboxes::create_v1).get(sandboxes::list_v1))
        .route("/v2/sandboxes", post(sandboxes::create_v2).get(sandboxes::list_v2))
        .route("/sandboxes/{sandboxID}", get(sandboxes::detail).delete(sandboxes::kill))
        .route("/sandboxes/metrics", get(telemetry::sandboxes_metrics))
        .route("/sandboxes/{sandboxID}/metrics", get(telemetry::sandbox_metrics))
        .route("/sandboxes/{sandboxID}/logs", get(telemetry::logs_v1))
        .route("/v2/sandboxes/{sandboxID}/logs", get(telemetry::logs_v2))
        .route("/sandboxes/{sandboxID}/timeout", post(sandboxes::set_timeout))
        .route("/sandboxes/{sandboxID}/refreshes", post(sandboxes::refresh))
        .route("/sandboxes/{sandboxID}/pause", post(sandboxes::pause))
        .route("/sandboxes/{sandboxID}/network", put(sandboxes::update_network))
        .route("/sandboxes/{sandboxID}/resume", post(sandboxes::resume))
        .route("/sandboxes/{sandboxID}/connect", post(sandboxes::connect))
        .route("/v2/sandboxes/{sandboxID}/connect", post(sandboxes::connect))
        .route("/sandboxes/{sandboxID}/fork", post(snapshots::fork))
        .route("/sandboxes/{sandboxID}/snapshots", post(snapshots::create))
        .route("/snapshots", get(snapshots::list))
        .route("/templates/{templateID}", delete(templates::delete).get(templates::get))
        .route("/v3/templates", post(templates::request_build))
        .route("/templates", get(templates::list))
        .route("/templates/aliases/{alias}", get(templates::alias))
        .route("/templates/{templateID}/files/{hash}", get(templates::file_link))
        .route("/v2/templates/{templateID}/builds/{buildID}", post(templates::start_build))
        .route("/templates/{templateID}/builds/{buildID}/status", get(templates::build_status))
        .route("/templates/{templateID}/builds/{buildID}/logs", get(templates::build_logs))
        .route("/templates/tags", post(templates::assign_tags).delete(templates::remove_tags))
        .route("/templates/{templateID}/tags", get(templates::tags))
        .route("/secrets", get(secrets::list).post(secrets::create))
        .route("/secrets/{secretID}", get(secrets::get).post(secrets::update).delete(secrets::destroy))
        .route("/volumes", get(volumes::list).post(volumes::create))
        .route("/volumes/{volumeID}", get(volumes::get).delete(volumes::delete))
        .route_layer(axum::middleware::from_fn_with_state(state.keys.clone(), require_api_key));
    authed
        .route("/health", get(health))
        // Workload identity: OpenID discovery of the token issuer (public, like any issuer's).
        .route("/.well-known/openid-configuration", get(identity_discovery))
        .route("/.well-known/jwks.json", get(identity_jwks))
        .fallback(|| async { ApiError::not_found("route not found") })
        .method_not_allowed_fallback(|| async { ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(body_cap::cap_body))
        .with_state(state.clone())
        // The signed upload URL of template build files: no API key (the URL is the
        // credential) and no REST body cap (build contexts are archives). The volume content
        // API likewise: its credential is the volume's token and its files stream.
        .merge(
            Router::new()
                .route("/templates/{templateID}/files/{hash}/upload", put(templates::upload))
                .route("/volumecontent/{volumeID}/file", get(volumes::read_file).put(volumes::write_file))
                .route("/volumecontent/{volumeID}/dir", get(volumes::list_dir).post(volumes::make_dir))
                .route(
                    "/volumecontent/{volumeID}/path",
                    get(volumes::stat).patch(volumes::update_metadata).delete(volumes::remove),
                )
                // Node to node (cluster mode only; the peer key is the credential).
                .route("/cluster/images/{imageID}/ram", get(crate::cluster::peer::ram))
                .route("/cluster/layers/{name}", get(crate::cluster::peer::layer))
                .layer(DefaultBodyLimit::disable())
                .with_state(state),
        )
}

async fn identity_discovery() -> ApiResult<axum::Json<serde_json::Value>> {
    let issuer = crate::network::identity::get().map_err(|e| ApiError::internal(format!("{e:#}")))?;
    Ok(axum::Json(issuer.discovery()))
}

async fn identity_jwks() -> ApiResult<axum::Json<serde_json::Value>> {
    let issuer = crate::network::identity::get().map_err(|e| ApiError::internal(format!("{e:#}")))?;
    Ok(axum::Json(issuer.jwks()))
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}
