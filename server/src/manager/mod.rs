//! The sandbox manager: every state transition of a sandbox goes through here.
//!
//! Invariants:
//! - Long operations on one sandbox (snapshot, pause, resume, kill, expiry) hold that
//!   sandbox's operation lock; snapshot, pause and fork only `try_lock` it, so a second one
//!   while another runs answers 409 instead of queueing.
//! - `routes` holds the envd address of every sandbox whose VM is up; the proxy reads only
//!   this map. `capacity` counts VMs that are up plus launches in flight, and their guest
//!   memory: admission keeps both under the configured caps (`max_sandboxes`, memory limit).
//!   A sandbox's share is released exactly once, when its route is dropped.
//! - The VM runtime is only called from this module tree; the store row is written after a
//!   VM exists (create/resume) and before it is destroyed (pause), see `lifecycle.rs`.
//! - Image directories and disk layers are only deleted by the garbage collector, which holds
//!   `gc_guard` for writing; captures and launches hold it for reading.

mod builds;
mod cluster;
mod gc;
mod lifecycle;
mod network;
mod pool;
mod reaper;
mod snapshots;
mod volumes;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::Notify;

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use crate::store::Store;
use crate::vm::Runtime;

pub use builds::{BuildVm, parse_ref_public};
pub use lifecycle::{CreateParams, Keep};
pub use pool::Settings as PoolSettings;

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
    capacity: Mutex<Capacity>,
    reaper: Notify,
    gc_guard: tokio::sync::RwLock<()>,
    telemetry: crate::telemetry::Telemetry,
    pools: pool::Pools,
    /// `Some` when this sandboxd is a node of a cluster (see `cluster.rs`).
    cluster: Option<Arc<crate::cluster::Cluster>>,
}

/// What admission control counts: launches in flight, and running VMs by sandbox ID.
#[derive(Default)]
struct Capacity {
    in_flight: usize,
    in_flight_mb: u64,
    running: HashMap<String, u64>,
    /// Warm-pool VMs (restored, not handed out yet), by their future sandbox ID.
    pooled: HashMap<String, u64>,
    memory_limit_mb: u64,
}

impl Capacity {
    fn count(&self) -> usize {
        self.in_flight + self.running.len() + self.pooled.len()
    }
    fn memory_mb(&self) -> u64 {
        self.in_flight_mb + self.running.values().sum::<u64>() + self.pooled.values().sum::<u64>()
    }
}

/// A reserved VM slot; released on drop unless [`Slot::commit`] handed it to a running VM.
struct Slot<'a> {
    mgr: &'a Manager,
    memory_mb: u64,
    committed: bool,
}

impl Slot<'_> {
    /// The launch succeeded: the share now belongs to the running sandbox `id`.
    fn commit(mut self, id: &str) {
        self.committed = true;
        let mut cap = self.mgr.capacity();
        cap.in_flight -= 1;
        cap.in_flight_mb -= self.memory_mb;
        cap.running.insert(id.to_string(), self.memory_mb);
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if !self.committed {
            let mut cap = self.mgr.capacity();
            cap.in_flight -= 1;
            cap.in_flight_mb -= self.memory_mb;
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
    pub fn new(cfg: Config, store: Arc<Store>, runtime: Runtime, cluster: Option<Arc<crate::cluster::Cluster>>) -> Self {
        // Until `recover` counts the VMs that survived a restart.
        let memory_limit_mb = cfg.memory_limit_mb(0);
        let telemetry = crate::telemetry::Telemetry::new(store.clone(), cfg.telemetry.clone());
        Self {
            inner: Arc::new(Inner {
                cfg,
                store,
                runtime,
                locks: Mutex::default(),
                routes: RwLock::default(),
                capacity: Mutex::new(Capacity { memory_limit_mb, ..Default::default() }),
                reaper: Notify::new(),
                gc_guard: tokio::sync::RwLock::new(()),
                telemetry,
                pools: pool::Pools::default(),
                cluster,
            }),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &Config {
        &self.inner.cfg
    }

    /// Metrics and logs of sandboxes (see `telemetry`).
    pub fn telemetry(&self) -> &crate::telemetry::Telemetry {
        &self.inner.telemetry
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

    fn capacity(&self) -> std::sync::MutexGuard<'_, Capacity> {
        self.inner.capacity.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admission: a slot for one more VM with `memory_mb` of guest memory, or 503. Warm-pool
    /// VMs make room first.
    fn reserve_slot(&self, memory_mb: u32) -> ApiResult<Slot<'_>> {
        let memory_mb = u64::from(memory_mb);
        loop {
            let refused = {
                let mut cap = self.capacity();
                let used = cap.memory_mb();
                if cap.count() >= self.inner.cfg.max_sandboxes {
                    ApiError::capacity(self.inner.cfg.max_sandboxes)
                } else if used + memory_mb > cap.memory_limit_mb {
                    ApiError::memory_capacity(cap.memory_limit_mb, used, memory_mb)
                } else {
                    cap.in_flight += 1;
                    cap.in_flight_mb += memory_mb;
                    return Ok(Slot { mgr: self, memory_mb, committed: false });
                }
            };
            if !self.evict_pooled() {
                return Err(refused);
            }
        }
    }

    /// Frees the share of a sandbox whose VM is gone (no-op if it had none).
    fn release_slot(&self, id: &str) {
        self.capacity().running.remove(id);
    }

    /// Counts a VM found running at start-up (see `recover`).
    fn adopt_slot(&self, id: &str, memory_mb: u32) {
        self.capacity().running.insert(id.to_string(), u64::from(memory_mb));
    }

    /// 507 unless the store has room for `bytes` more (plus a margin): checked before an
    /// upload reaches a guest, whose disk grows inside the store.
    pub fn ensure_store_space(&self, bytes: u64, what: &str) -> ApiResult<()> {
        Ok(self.inner.runtime.ensure_free(bytes, what)?)
    }

    /// Running sandboxes and the guest memory admission has handed out (MiB).
    pub fn usage(&self) -> (usize, u64) {
        let cap = self.capacity();
        (cap.in_flight + cap.running.len(), cap.in_flight_mb + cap.running.values().sum::<u64>())
    }

    /// Resolves a `templateID` (a template built through the API, a template in the templates
    /// directory, or a snapshot ID) to an image directory,
    /// with the `templateID` and `alias` to report.
    pub fn resolve_template(&self, reference: &str) -> ApiResult<(PathBuf, String, Option<String>)> {
        let not_found = || ApiError::not_found(format!("template '{reference}' not found"));
        let r = parse_ref(reference.trim());
        if let Some(built) = self.resolve_built(&r)? {
            return Ok(built);
        }
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
