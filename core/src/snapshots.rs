//! Persistent snapshots: `create_snapshot` (instance and by sandbox ID), `list_snapshots`
//! (instance-bound to its sandbox, or with any filter) and `delete_snapshot`.

use crate::api;
use crate::config::ConnectionOpts;
use crate::error::Result;
use crate::models::SnapshotInfo;
use crate::paginator::{SnapshotListOptions, SnapshotPaginator};
use crate::sandbox::{Sandbox, api_for};

impl Sandbox {
    /// Snapshot this sandbox (it keeps running); the ID works as a template for `create`.
    pub async fn create_snapshot(&self, name: Option<String>) -> Result<SnapshotInfo> {
        api::snapshots::create(self.api(), self.sandbox_id(), name).await
    }

    pub async fn create_snapshot_by_id(
        sandbox_id: &str,
        name: Option<String>,
        opts: &ConnectionOpts,
    ) -> Result<SnapshotInfo> {
        api::snapshots::create(&api_for(opts), sandbox_id, name).await
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
