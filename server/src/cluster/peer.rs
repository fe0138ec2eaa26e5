//! Node to node: a node restoring an image it has never seen asks a live node that holds the
//! image (its maker first, or one that fetched it) for the RAM chunks and disk layers it lacks,
//! before the object store. The object store stays the source of truth: everything a peer
//! sends is checked against the hashes in the image's manifest (read from the bucket), and
//! anything a peer cannot give (it died, deleted the image, answers garbage) comes from the
//! bucket instead, so a peer can make a restore faster but never break or corrupt it.
//!
//! Why: a peer reads the image from its page cache and sends it uncompressed on the cluster's
//! network; an object store serves the same bytes compressed, through its own HTTP stack and
//! disks (on the 2-core benchmark host, s3s-fs spent ~10 ms of CPU per MiB it served).
//!
//! The two routes (`GET /cluster/images/{id}/ram?offset=&len=`, `GET /cluster/layers/{name}`)
//! answer only requests that show the cluster's peer key (a random secret in the shared
//! database, [`crate::store::Store::peer_key`]) in [`KEY_HEADER`]; outside a cluster they do
//! not exist (404). `SANDBOXD_PEER_FETCH=0` makes a node fetch from the bucket only.

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::api::AppState;
use crate::error::{ApiError, ApiResult};

/// Carries the cluster's peer key on requests between nodes.
pub const KEY_HEADER: &str = "x-sandboxd-peer-key";
/// Largest RAM range one request may ask for.
pub const MAX_RANGE: u64 = 4 << 20;
/// A peer that does not answer in time is given up for the rest of the download.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether this node asks peers before the bucket (`SANDBOXD_PEER_FETCH`, default on).
pub fn enabled() -> bool {
    std::env::var("SANDBOXD_PEER_FETCH").map_or(true, |v| !matches!(v.trim(), "0" | "false" | "off" | "no"))
}

/// One node to fetch one image's parts from.
pub struct Peer {
    client: Client<HttpConnector, Empty<Bytes>>,
    base: String,
    node: String,
    image_id: String,
    key: String,
    /// Set at the first failure: every later part comes from the bucket.
    given_up: AtomicBool,
}

impl Peer {
    pub fn new(base: &str, node: &str, image_id: &str, key: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(std::time::Duration::from_secs(2)));
        connector.set_nodelay(true);
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            base: base.trim_end_matches('/').to_string(),
            node: node.to_string(),
            image_id: image_id.to_string(),
            key: key.to_string(),
            given_up: AtomicBool::new(false),
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Still worth asking.
    pub fn usable(&self) -> bool {
        !self.given_up.load(Ordering::Relaxed)
    }

    /// Stops asking this peer (logged once).
    pub fn give_up(&self, what: &str, e: &anyhow::Error) {
        if !self.given_up.swap(true, Ordering::Relaxed) {
            tracing::warn!(node = %self.node, image = %self.image_id, error = %format!("{e:#}"), "peer fetch of {what} failed; the rest comes from the object store");
        }
    }

    async fn get(&self, path_and_query: &str) -> anyhow::Result<hyper::body::Incoming> {
        let req = hyper::Request::get(format!("{}{path_and_query}", self.base))
            .header(KEY_HEADER, &self.key)
            .body(Empty::new())?;
        let resp = tokio::time::timeout(TIMEOUT, self.client.request(req)).await??;
        anyhow::ensure!(resp.status() == StatusCode::OK, "node {} answered {}", self.node, resp.status());
        Ok(resp.into_body())
    }

    /// `len` bytes of the image's RAM at `offset` (unchecked: the caller checks the hash).
    pub async fn ram(&self, offset: u64, len: usize) -> anyhow::Result<Vec<u8>> {
        let body = self.get(&format!("/cluster/images/{}/ram?offset={offset}&len={len}", self.image_id)).await?;
        let data = tokio::time::timeout(TIMEOUT, body.collect()).await??.to_bytes();
        anyhow::ensure!(data.len() == len, "node {} sent {} bytes of RAM, asked for {len}", self.node, data.len());
        // No copy when the body arrived as one buffer.
        Ok(Vec::from(data))
    }

    /// Disk layer `name`, as it is on the peer (unchecked: the caller checks the hash).
    pub async fn layer(&self, name: &str) -> anyhow::Result<impl Stream<Item = anyhow::Result<Bytes>> + use<>> {
        let body = self.get(&format!("/cluster/layers/{name}")).await?;
        Ok(body.into_data_stream().map_err(anyhow::Error::from))
    }
}

#[derive(serde::Deserialize)]
pub struct RamRange {
    offset: u64,
    len: u64,
}

/// The peer key check: 404 outside a cluster (the route does not exist there), 401 without
/// the right key.
fn check_key(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let Some(cluster) = state.manager.cluster() else { return Err(ApiError::not_found("route not found")) };
    let given = headers.get(KEY_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(given, cluster.peer_key.as_bytes())) {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "this route is for the cluster's nodes"));
    }
    Ok(())
}

/// `GET /cluster/images/{id}/ram?offset=&len=`: a range of a local image's RAM file.
pub async fn ram(
    State(state): State<AppState>,
    Path(image_id): Path<String>,
    Query(range): Query<RamRange>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    check_key(&state, &headers)?;
    if range.len == 0 || range.len > MAX_RANGE {
        return Err(ApiError::bad_request(format!("len must be 1..={MAX_RANGE}")));
    }
    let dir = state.manager.held_image_dir(&image_id).ok_or_else(|| ApiError::not_found(format!("image {image_id} is not on this node")))?;
    let data = tokio::task::spawn_blocking(move || -> std::io::Result<Option<Vec<u8>>> {
        let file = std::fs::File::open(dir.join("mem.ram"))?;
        let size = file.metadata()?.len();
        if range.offset.checked_add(range.len).is_none_or(|end| end > size) {
            return Ok(None);
        }
        let mut buf = vec![0u8; range.len as usize];
        file.read_exact_at(&mut buf, range.offset)?;
        Ok(Some(buf))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::internal(format!("reading image {image_id}: {e}")))?
    .ok_or_else(|| ApiError::new(StatusCode::RANGE_NOT_SATISFIABLE, "the range is past the end of the image's RAM"))?;
    Ok(data.into_response())
}

/// `GET /cluster/layers/{name}`: a disk layer this node holds, streamed.
pub async fn layer(State(state): State<AppState>, Path(name): Path<String>, headers: HeaderMap) -> ApiResult<Response> {
    check_key(&state, &headers)?;
    if !super::manifest::safe_name(&name) {
        return Err(ApiError::bad_request("not a layer name"));
    }
    let path: PathBuf =
        state.manager.held_layer(&name).ok_or_else(|| ApiError::not_found(format!("layer {name} is not on this node")))?;
    let file = tokio::fs::File::open(&path).await.map_err(|e| ApiError::internal(format!("opening layer {name}: {e}")))?;
    Ok(Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20)).into_response())
}
