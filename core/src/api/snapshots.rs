//! Snapshot routes. Create and list live under `/sandboxes/{id}/snapshots` and `/snapshots`;
//! delete is `DELETE /templates/{snapshot ID as one percent-encoded segment}` (as in E2B).

use reqwest::Method;

use super::models::{SnapshotRequest, SnapshotWire};
use super::{ApiClient, encode_path_segment};
use crate::error::{Error, Result};
use crate::models::SnapshotInfo;

pub async fn create(api: &ApiClient, sandbox_id: &str, body: &SnapshotRequest) -> Result<SnapshotInfo> {
    let path = format!("/sandboxes/{}/snapshots", encode_path_segment(sandbox_id));
    let r = api.send(Method::POST, &path, &[], Some(body)).await?;
    if r.status == 404 {
        return Err(Error::SandboxNotFound(format!("Sandbox {sandbox_id} not found")));
    }
    if !r.is_success() {
        return Err(r.into_error());
    }
    let s: SnapshotWire = r.json()?;
    Ok(SnapshotInfo { snapshot_id: s.snapshot_id, names: s.names })
}

/// One page of `GET /snapshots`, with the next token.
pub async fn list_page(
    api: &ApiClient,
    query: &[(&str, Option<String>)],
) -> Result<(Vec<SnapshotInfo>, Option<String>)> {
    let r = api.send::<()>(Method::GET, "/snapshots", query, None).await?;
    if !r.is_success() {
        return Err(r.into_error());
    }
    let items: Vec<SnapshotWire> = r.json()?;
    let items = items
        .into_iter()
        .map(|s| SnapshotInfo { snapshot_id: s.snapshot_id, names: s.names })
        .collect();
    Ok((items, r.next_token()))
}

/// true when deleted, false when not found (404).
pub async fn delete(api: &ApiClient, snapshot_id: &str) -> Result<bool> {
    let path = format!("/templates/{}", encode_path_segment(snapshot_id));
    let r = api.send::<()>(Method::DELETE, &path, &[], None).await?;
    match r.status {
        404 => Ok(false),
        s if s >= 300 => Err(r.into_error()),
        _ => Ok(true),
    }
}
