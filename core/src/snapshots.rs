//! Persistent snapshots: `create_snapshot` (instance and by sandbox ID), `list_snapshots`
//! (instance-bound to its sandbox, or with any filter) and `delete_snapshot`.

use crate::api;
use crate::api::models::SnapshotRequest;
use crate::config::ConnectionOpts;
use crate::error::Result;
use crate::models::SnapshotInfo;
use crate::paginator::{SnapshotListOptions, SnapshotPaginator};
use crate::sandbox::{Sandbox, api_for};

impl Sandbox {
    /// Snapshot this sandbox (it keeps running); the ID works as a template for `create`.
    pub async fn create_snapshot(&self, name: Option<String>) -> Result<SnapshotInfo> {
        self.create_snapshot_with(name, None).await
    }

    /// [`Sandbox::create_snapshot`] with a `mode` (`"full"` or `"filesystem"`; unset = the
    /// server's default, full).
    pub async fn create_snapshot_with(&self, name: Option<String>, mode: Option<&str>) -> Result<SnapshotInfo> {
        let body = snapshot_request(name, mode)?;
        api::snapshots::create(self.api(), self.sandbox_id(), &body).await
    }

    pub async fn create_snapshot_by_id(
        sandbox_id: &str,
        name: Option<String>,
        opts: &ConnectionOpts,
    ) -> Result<SnapshotInfo> {
        Sandbox::create_snapshot_by_id_with(sandbox_id, name, None, opts).await
    }

    pub async fn create_snapshot_by_id_with(
        sandbox_id: &str,
        name: Option<String>,
        mode: Option<&str>,
        opts: &ConnectionOpts,
    ) -> Result<SnapshotInfo> {
        let body = snapshot_request(name, mode)?;
        api::snapshots::create(&api_for(opts), sandbox_id, &body).await
    }

    /// Snapshots taken from this sandbox (`sandbox_id` in `list` is replaced by this one's).
    pub fn list_own_snapshots(&self, list: SnapshotListOptions) -> SnapshotPaginator {
        let list = SnapshotListOptions { sandbox_id: Some(self.sandbox_id().to_string()), ..list };
        SnapshotPaginator::new(self.api().clone(), list)
    }

    /// All snapshots, optionally filtered by source sandbox or name (no request until
    /// `next_items`).
    pub fn list_snapshots(list: SnapshotListOptions, opts: &ConnectionOpts) -> SnapshotPaginator {
        SnapshotPaginator::new(api_for(opts), list)
    }

    /// Delete a snapshot; false when it was not found.
    pub async fn delete_snapshot(snapshot_id: &str, opts: &ConnectionOpts) -> Result<bool> {
        api::snapshots::delete(&api_for(opts), snapshot_id).await
    }
}

/// E2B sends no name when it is empty.
fn snapshot_request(name: Option<String>, mode: Option<&str>) -> Result<SnapshotRequest> {
    Ok(SnapshotRequest {
        name: name.filter(|n| !n.is_empty()),
        memory: crate::options::snapshot_memory("mode", mode, None)?,
    })
}
