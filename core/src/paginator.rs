//! Cursor paginators for `Sandbox::list` and `Sandbox::list_snapshots` (E2B's `PaginatorBase`).
//!
//! `has_next` starts true; each page stores the `X-Next-Token` response header as the next token
//! and sets `has_next` to whether there was one. Asking for a page after the last one fails with
//! [`Error::NoMoreItems`] ("No more items to fetch"). State sits behind a `std::sync::Mutex` that
//! is never held across an `.await`, so a paginator is `Send + Sync` and cheap to clone.

use std::sync::{Arc, Mutex};

use crate::api::{self, ApiClient};
use crate::error::{Error, Result};
use crate::models::{SandboxInfo, SandboxQuery, SnapshotInfo};

#[derive(Debug)]
struct PageState {
    has_next: bool,
    next_token: Option<String>,
}

/// The shared bookkeeping of every paginator (also `secret::SecretPaginator`).
#[derive(Debug)]
pub(crate) struct Cursor(Mutex<PageState>);

impl Cursor {
    pub(crate) fn new(next_token: Option<String>) -> Self {
        Cursor(Mutex::new(PageState { has_next: true, next_token }))
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, PageState> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub(crate) fn has_next(&self) -> bool {
        self.lock().has_next
    }
    pub(crate) fn next_token(&self) -> Option<String> {
        self.lock().next_token.clone()
    }
    /// The token to send for the next page, or `NoMoreItems`.
    pub(crate) fn begin(&self) -> Result<Option<String>> {
        let s = self.lock();
        if !s.has_next {
            return Err(Error::NoMoreItems);
        }
        Ok(s.next_token.clone())
    }
    pub(crate) fn update(&self, token: Option<String>) {
        let mut s = self.lock();
        s.has_next = token.is_some();
        s.next_token = token;
    }
}

/// Options of `Sandbox::list`.
#[derive(Debug, Clone, Default)]
pub struct SandboxListOptions {
    pub query: SandboxQuery,
    /// Page size (1..=100; the server defaults to 100).
    pub limit: Option<u32>,
    pub next_token: Option<String>,
    /// `asc` or `desc` by start time.
    pub order: Option<String>,
}

/// Pages through `GET /v2/sandboxes`.
#[derive(Debug, Clone)]
pub struct SandboxPaginator(Arc<SandboxPaginatorInner>);

#[derive(Debug)]
struct SandboxPaginatorInner {
    api: ApiClient,
    opts: SandboxListOptions,
    cursor: Cursor,
}

impl SandboxPaginator {
    pub(crate) fn new(api: ApiClient, opts: SandboxListOptions) -> Result<Self> {
        if let Some(o) = &opts.order
            && o != "asc"
            && o != "desc"
        {
            return Err(Error::InvalidArgument(format!("Invalid order {o:?}, expected 'asc' or 'desc'")));
        }
        let cursor = Cursor::new(opts.next_token.clone());
        Ok(SandboxPaginator(Arc::new(SandboxPaginatorInner { api, opts, cursor })))
    }

    pub fn has_next(&self) -> bool {
        self.0.cursor.has_next()
    }

    pub fn next_token(&self) -> Option<String> {
        self.0.cursor.next_token()
    }

    /// Fetch the next page.
    pub async fn next_items(&self) -> Result<Vec<SandboxInfo>> {
        let token = self.0.cursor.begin()?;
        let o = &self.0.opts;
        let q = api::sandboxes::list_query(&o.query, o.order.as_deref(), o.limit, token.as_deref());
        let (items, next) = api::sandboxes::list_page(&self.0.api, &q).await?;
        self.0.cursor.update(next);
        Ok(items)
    }
}

/// Options of `Sandbox::list_snapshots`.
#[derive(Debug, Clone, Default)]
pub struct SnapshotListOptions {
    /// Only snapshots taken from this sandbox.
    pub sandbox_id: Option<String>,
    /// Only snapshots with this name (or ID).
    pub name: Option<String>,
    pub limit: Option<u32>,
    pub next_token: Option<String>,
}

/// Pages through `GET /snapshots`.
#[derive(Debug, Clone)]
pub struct SnapshotPaginator(Arc<SnapshotPaginatorInner>);

#[derive(Debug)]
struct SnapshotPaginatorInner {
    api: ApiClient,
    opts: SnapshotListOptions,
    cursor: Cursor,
}

impl SnapshotPaginator {
    pub(crate) fn new(api: ApiClient, opts: SnapshotListOptions) -> Self {
        let cursor = Cursor::new(opts.next_token.clone());
        SnapshotPaginator(Arc::new(SnapshotPaginatorInner { api, opts, cursor }))
    }

    pub fn has_next(&self) -> bool {
        self.0.cursor.has_next()
    }

    pub fn next_token(&self) -> Option<String> {
        self.0.cursor.next_token()
    }

    /// Fetch the next page.
    pub async fn next_items(&self) -> Result<Vec<SnapshotInfo>> {
        let token = self.0.cursor.begin()?;
        let o = &self.0.opts;
        let q = vec![
            ("sandboxID", o.sandbox_id.clone()),
            ("name", o.name.clone()),
            ("limit", o.limit.map(|l| l.to_string())),
            ("nextToken", token),
        ];
        let (items, next) = api::snapshots::list_page(&self.0.api, &q).await?;
        self.0.cursor.update(next);
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_lifecycle() {
        let c = Cursor::new(None);
        assert!(c.has_next());
        assert_eq!(c.begin().unwrap(), None);
        c.update(Some("t1".into()));
        assert!(c.has_next());
        assert_eq!(c.next_token().as_deref(), Some("t1"));
        assert_eq!(c.begin().unwrap().as_deref(), Some("t1"));
        c.update(None);
        assert!(!c.has_next());
        let e = c.begin().unwrap_err();
        assert_eq!(e.to_string(), "No more items to fetch");
    }

    #[test]
    fn initial_token_is_sent() {
        let c = Cursor::new(Some("start".into()));
        assert_eq!(c.begin().unwrap().as_deref(), Some("start"));
    }
}
