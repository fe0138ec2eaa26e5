//! The paginators of `Sandbox.list` and `listSnapshots` (E2B's `Paginator`): `hasNext`,
//! `nextToken`, and `await nextItems()`, which rejects with "No more items to fetch" after the
//! last page. The core keeps the page state; these classes only hold its handle.

use napi::bindgen_prelude::Result;
use napi_derive::napi;

use crate::error::JsResult;
use crate::sandbox::SandboxInfo;
use crate::snapshots::SnapshotInfo;

/// Pages of `Sandbox.list`.
#[napi]
pub struct SandboxPaginator {
    inner: e2b::SandboxPaginator,
}

impl From<e2b::SandboxPaginator> for SandboxPaginator {
    fn from(inner: e2b::SandboxPaginator) -> Self {
        SandboxPaginator { inner }
    }
}

#[napi]
impl SandboxPaginator {
    /// Whether another page can be fetched (true before the first page).
    #[napi(getter)]
    pub fn has_next(&self) -> bool {
        self.inner.has_next()
    }

    /// Token of the next page.
    #[napi(getter)]
    pub fn next_token(&self) -> Option<String> {
        self.inner.next_token()
    }

    /// Fetch the next page. Rejects with "No more items to fetch" when `hasNext` is false.
    #[napi]
    pub async fn next_items(&self) -> Result<Vec<SandboxInfo>> {
        let items = self.inner.next_items().await.js()?;
        Ok(items.into_iter().map(SandboxInfo::from).collect())
    }
}

/// Pages of `listSnapshots`.
#[napi]
pub struct SnapshotPaginator {
    inner: e2b::SnapshotPaginator,
}

impl From<e2b::SnapshotPaginator> for SnapshotPaginator {
    fn from(inner: e2b::SnapshotPaginator) -> Self {
        SnapshotPaginator { inner }
    }
}

#[napi]
impl SnapshotPaginator {
    /// Whether another page can be fetched (true before the first page).
    #[napi(getter)]
    pub fn has_next(&self) -> bool {
        self.inner.has_next()
    }

    /// Token of the next page.
    #[napi(getter)]
    pub fn next_token(&self) -> Option<String> {
        self.inner.next_token()
    }

    /// Fetch the next page. Rejects with "No more items to fetch" when `hasNext` is false.
    #[napi]
    pub async fn next_items(&self) -> Result<Vec<SnapshotInfo>> {
        let items = self.inner.next_items().await.js()?;
        Ok(items.into_iter().map(SnapshotInfo::from).collect())
    }
}
