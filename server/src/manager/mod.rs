//! The sandbox manager: every state transition of a sandbox goes through here.
//!
//! Invariants:
//! - Long operations on one sandbox (snapshot, pause, resume, kill, expiry) hold that
//!   sandbox's operation lock; snapshot, pause and fork only `try_lock` it, so a second one
//!   while another runs answers 409 instead of queueing.
//! - `routes` holds the envd address of every sandbox whose VM is up; the proxy reads only
//!   this map. `slots` counts VMs that are up plus launches in flight, never above
//!   `max_sandboxes`.
//! - The VM runtime is only called from this module tree; the store row is written after a
//!   VM exists (create/resume) and before it is destroyed (pause), see `lifecycle.rs`.
//! - Image directories and disk layers are only deleted by the garbage collector, which holds
//!   `gc_guard` for writing; captures and launches hold it for reading.

mod gc;
mod lifecycle;
mod reaper;
mod snapshots;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::Notify;

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::store::Store;
use crate::vm::Runtime;

pub use lifecycle::CreateParams;

/// Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct Manager {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: Config,
    store: Arc<Store>,
    runtime: Runtime,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    routes: RwLock<HashMap<String, SocketAddr>>,
    slots: Mutex<usize>,
    reaper: Notify,
    gc_guard: tokio::sync::RwLock<()>,
}

/// A reserved VM slot; released on drop unless [`Slot::commit`] handed it to a running VM.
struct Slot<'a> {
    mgr: &'a Manager,
    committed: bool,
}

impl Slot<'_> {
    fn commit(mut self) {
        self.committed = true;
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.mgr.release_slot();
        }
    }
}

/// A template reference after parsing `[namespace/]name[:tag]`.
pub(crate) struct TemplateRef<'a> {
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    pub tag: &'a str,
}

pub(crate) fn parse_ref(r: &str) -> TemplateRef<'_> {
    let (namespace, rest) = match r.split_once('/') {
        Some((ns, rest)) => (Some(ns), rest),
        None => (None, r),
    };
    let (name, tag) = match rest.split_once(':') {
        Some((name, tag)) => (name, tag),
        None => (rest, "default"),
    };
    TemplateRef { namespace, name, tag }
}

impl Manager {
    pub fn new(cfg: Config, store: Arc<Store>, runtime: Runtime) -> Self {
        Self {
            inner: Arc::new(Inner {
                cfg,
                store,
                runtime,
                locks: Mutex::default(),
                routes: RwLock::default(),
                slots: Mutex::new(0),
                reaper: Notify::new(),
                gc_guard: tokio::sync::RwLock::new(()),
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    /// Where envd of a running sandbox listens, for the proxy.
    pub fn envd_addr(&self, sandbox_id: &str) -> Option<SocketAddr> {
        self.inner.routes.read().unwrap_or_else(|p| p.into_inner()).get(sandbox_id).copied()
    }

    fn set_route(&self, id: &str, addr: Option<SocketAddr>) {
        let mut routes = self.inner.routes.write().unwrap_or_else(|p| p.into_inner());
        match addr {
            Some(addr) => routes.insert(id.to_string(), addr),
            None => routes.remove(id),
        };
    }

    fn op_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.inner.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.to_string()).or_default().clone()
    }

    fn forget_lock(&self, id: &str) {
        self.inner.locks.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    fn reserve_slot(&self) -> ApiResult<Slot<'_>> {
        let mut slots = self.inner.slots.lock().unwrap_or_else(|p| p.into_inner());
        if *slots >= self.inner.cfg.max_sandboxes {
            return Err(ApiError::capacity(self.inner.cfg.max_sandboxes));
        }
        *slots += 1;
        Ok(Slot { mgr: self, committed: false })
    }

    fn release_slot(&self) {
        let mut slots = self.inner.slots.lock().unwrap_or_else(|p| p.into_inner());
        *slots = slots.saturating_sub(1);
    }

    /// Resolves a `templateID` (a built template name or a snapshot ID) to an image directory,
    /// with the `templateID` and `alias` to report.
    pub fn resolve_template(&self, reference: &str) -> ApiResult<(PathBuf, String, Option<String>)> {
        let not_found = || ApiError::not_found(format!("template '{reference}' not found"));
        let r = parse_ref(reference.trim());
        if r.tag != "default" && r.tag != "latest" {
            return Err(not_found());
        }
        if r.namespace.is_some_and(|ns| ns != crate::store::NAMESPACE) {
            return Err(not_found());
        }
        if let Some(img) = self.store().find_snapshot(r.name)? {
            return Ok((img.dir.clone(), img.id.clone(), img.name.clone()));
        }
        if r.namespace.is_none() && crate::ids::valid_name(r.name) {
            let dir = self.inner.cfg.template_dir(r.name);
            if dir.join("meta.json").is_file() {
                return Ok((dir, r.name.to_string(), Some(r.name.to_string())));
            }
        }
        Err(not_found())
    }

    /// Wakes the reaper after an expiry changed.
    fn deadlines_changed(&self) {
        self.inner.reaper.notify_one();
    }
}
