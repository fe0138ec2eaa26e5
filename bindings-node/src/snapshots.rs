//! Persistent snapshots: `createSnapshot` (instance, and static by sandbox ID), `listSnapshots`
//! (instance-bound to its sandbox, or static with filters) and `Sandbox.deleteSnapshot`.

use napi::bindgen_prelude::Result;
use napi_derive::napi;

use crate::config::{self, ConnectionOpts, with_connection_opts};
use crate::error::JsResult;
use crate::paginator::SnapshotPaginator;
use crate::sandbox::Sandbox;

/// A snapshot; its `snapshotId` works as a template in `Sandbox.create(snapshotId)`.
#[napi(object, object_from_js = false)]
pub struct SnapshotInfo {
    /// Snapshot ID: template ID with tag, or namespaced name with tag.
    pub snapshot_id: String,
    /// Full names of the snapshot.
    pub names: Vec<String>,
}

impl From<e2b::SnapshotInfo> for SnapshotInfo {
    fn from(s: e2b::SnapshotInfo) -> Self {
        SnapshotInfo {
            snapshot_id: s.snapshot_id,
            names: s.names,
        }
    }
}

with_connection_opts! {
    #[doc = " Options of `createSnapshot`."]
    pub struct CreateSnapshotOpts {
        #[doc = " Name of the snapshot; a new build is added when the name exists."]
        pub name: Option<String>,
    }
}

with_connection_opts! {
    #[doc = " Options of the instance `listSnapshots` (bound to the sandbox)."]
    pub struct SandboxSnapshotListOpts {
        #[doc = " Only snapshots with this name or ID (optionally `:tag`)."]
        pub name: Option<String>,
        #[doc = " Page size (default 100)."]
        pub limit: Option<u32>,
        #[doc = " Token of the page to start from."]
        pub next_token: Option<String>,
    }
}

with_connection_opts! {
    #[doc = " Options of `Sandbox.listSnapshots`."]
    pub struct SnapshotListOpts {
        #[doc = " Only snapshots taken from this sandbox."]
        pub sandbox_id: Option<String>,
        #[doc = " Only snapshots with this name or ID (optionally `:tag`)."]
        pub name: Option<String>,
        #[doc = " Page size (default 100)."]
        pub limit: Option<u32>,
        #[doc = " Token of the page to start from."]
        pub next_token: Option<String>,
    }
}

#[napi]
impl Sandbox {
    /// Snapshot the sandbox (filesystem and memory); it keeps running. The snapshot ID can be
    /// passed to `Sandbox.create`.
    #[napi]
    pub async fn create_snapshot(&self, opts: Option<CreateSnapshotOpts>) -> Result<SnapshotInfo> {
        let info = match opts {
            Some(o) => {
                let conn = self.merged(o.connection());
                e2b::Sandbox::create_snapshot_by_id(self.inner.sandbox_id(), o.name, &conn).await
            }
            None => self.inner.create_snapshot(None).await,
        };
        info.js().map(SnapshotInfo::from)
    }

    /// Snapshot a sandbox by ID.
    #[napi(js_name = "createSnapshot", configurable)]
    pub async fn create_snapshot_by_id(
        sandbox_id: String,
        opts: Option<CreateSnapshotOpts>,
    ) -> Result<SnapshotInfo> {
        let opts = opts.unwrap_or_default();
        e2b::Sandbox::create_snapshot_by_id(&sandbox_id, opts.name.clone(), &opts.connection())
            .await
            .js()
            .map(SnapshotInfo::from)
    }

    /// Snapshots taken from this sandbox, a page at a time. Synchronous.
    #[napi]
    pub fn list_snapshots(&self, opts: Option<SandboxSnapshotListOpts>) -> SnapshotPaginator {
        let opts = opts.unwrap_or_default();
        let list = e2b::SnapshotListOptions {
            sandbox_id: None,
            name: opts.name,
            limit: opts.limit,
            next_token: opts.next_token,
        };
        SnapshotPaginator::from(self.inner.list_own_snapshots(list))
    }

    /// All snapshots, optionally filtered by source sandbox or name, a page at a time:
    /// `while (p.hasNext) items.push(...await p.nextItems())`. Synchronous.
    #[napi(js_name = "listSnapshots", configurable)]
    pub fn list_all_snapshots(opts: Option<SnapshotListOpts>) -> SnapshotPaginator {
        let opts = opts.unwrap_or_default();
        let conn = opts.connection();
        let list = e2b::SnapshotListOptions {
            sandbox_id: opts.sandbox_id,
            name: opts.name,
            limit: opts.limit,
            next_token: opts.next_token,
        };
        SnapshotPaginator::from(e2b::Sandbox::list_snapshots(list, &conn))
    }

    /// Delete a snapshot: `true` if it was deleted, `false` if it was not found.
    #[napi(configurable)]
    pub async fn delete_snapshot(
        snapshot_id: String,
        opts: Option<ConnectionOpts>,
    ) -> Result<bool> {
        e2b::Sandbox::delete_snapshot(&snapshot_id, &config::connection(&opts))
            .await
            .js()
    }
}
