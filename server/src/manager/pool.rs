//! Warm pools: VMs restored from an image ahead of time, initialised and warmed up, waiting to
//! be handed out by `create`.
//!
//! Under TCG most of a restore's cost is the guest re-translating the code paths its first
//! requests take (envd's `/init`, the first `bash -l`); a pooled VM has paid for both before a
//! create asks for it. Invariants:
//! - A pooled VM is restored with its final sandbox ID (so its run directory, which protects
//!   its disk layers from the GC, never moves), but is not in the store and has no route: it
//!   is not a sandbox until [`Manager::take_pooled`] hands it out, once (it leaves the pool
//!   under the pool's lock).
//! - The handout gives it the create's access token, env vars, the host's clock and fresh
//!   entropy (envd `/init`) before the create call returns; a VM that is dead or does not
//!   answer is killed, never handed out, and the create falls back to a plain restore.
//! - Pooled VMs count against the sandbox and memory caps (`Capacity::pooled`) and are the
//!   first to go when a real launch needs room ([`Manager::evict_pooled`]).
//! - Only creates with default networking take from a pool (a pooled VM was started with it).
//! - An image is pooled while it is wanted: listed in `SANDBOXD_POOL_TEMPLATES`, or created
//!   from twice or more, the last time within `SANDBOXD_POOL_IDLE_SECS`. A rebuilt or deleted image's VMs are
//!   evicted. Pooled VMs are killed on a clean stop, which first lets a fill in flight finish
//!   (≤ 60 s) and starts no new one; after a crash `reap_unknown` kills them (nothing in the
//!   store knows them).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::Manager;
use crate::ids;
use crate::vm::{GuestInit, ImageMeta, LaunchSpec, Runtime, VmInfo};

/// Pool sizing (`SANDBOXD_POOL_*`).
#[derive(Debug, Clone)]
pub struct Settings {
    /// VMs kept ready per wanted image (`SANDBOXD_POOL_SIZE`; default 1 on hosts with 2 or more
    /// CPUs and 4 GiB or more of memory, else 0: off). 0 turns pooling off.
    pub size: usize,
    /// How long an image stays pooled after its last create (`SANDBOXD_POOL_IDLE_SECS`, 600).
    pub idle: Duration,
    /// Templates kept warm from start-up on (`SANDBOXD_POOL_TEMPLATES`, comma-separated;
    /// default `base`).
    pub templates: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let big_enough = cpus >= 2 && host_memory_mib() >= 4096;
        Self { size: usize::from(big_enough), idle: Duration::from_secs(600), templates: vec!["base".into()] }
    }
}

/// `MemTotal` of `/proc/meminfo` in MiB (0 when unreadable).
fn host_memory_mib() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        let mut s = Self::default();
        let var = |name: &str| std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        if let Some(v) = var("SANDBOXD_POOL_SIZE") {
            s.size = v.parse().map_err(|_| anyhow::anyhow!("SANDBOXD_POOL_SIZE must be a whole number, got '{v}'"))?;
        }
        if let Some(v) = var("SANDBOXD_POOL_IDLE_SECS") {
            let secs: u64 =
                v.parse().map_err(|_| anyhow::anyhow!("SANDBOXD_POOL_IDLE_SECS must be a whole number, got '{v}'"))?;
            s.idle = Duration::from_secs(secs);
        }
        if let Ok(v) = std::env::var("SANDBOXD_POOL_TEMPLATES") {
            s.templates = v.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect();
        }
        Ok(s)
    }
}

/// A restored VM waiting for a create.
pub(super) struct Pooled {
    pub id: String,
    pub vm: VmInfo,
}

/// The VMs of one image.
struct ImagePool {
    /// The image's disk layer when its VMs were started: another one means it was rebuilt.
    stamp: PathBuf,
    ready: Vec<Pooled>,
    filling: usize,
    /// `None`: configured (always wanted); else wanted until then.
    wanted_until: Option<Instant>,
    /// Creates from this image while it was wanted: an image not configured is pooled from
    /// its second create on (one restore is not worth a VM kept ready).
    creates: u32,
    /// After a failed fill (full store, broken image), no new try before then.
    retry_at: Option<Instant>,
    /// Creates waiting for a fill in flight (see [`Manager::wait_for_fill`]).
    waiting: usize,
}

impl ImagePool {
    fn new(stamp: PathBuf, wanted_until: Option<Instant>) -> Self {
        Self { stamp, ready: Vec::new(), filling: 0, waiting: 0, wanted_until, creates: 0, retry_at: None }
    }
}

/// Shared pool state (in `Inner`).
#[derive(Default)]
pub(super) struct Pools {
    images: Mutex<HashMap<PathBuf, ImagePool>>,
    /// Wakes the filler.
    wake: Notify,
    /// Wakes creates waiting for a fill: a fill ended (ready or not).
    ready: Notify,
    /// Set by a clean stop: no fill starts any more.
    closing: AtomicBool,
    /// A fill is in flight (set with the images lock held, see `next_to_fill`).
    busy: AtomicBool,
    /// Wakes a stop waiting for the fill in flight.
    idle: Notify,
}

/// How often the filler looks at the pools without being woken.
const TICK: Duration = Duration::from_secs(2);
/// How long a create waits for a fill in flight before restoring a VM of its own.
const FILL_WAIT: Duration = Duration::from_secs(5);
/// How long a pool waits after a failed fill before it tries again.
const FILL_BACKOFF: Duration = Duration::from_secs(30);
/// How long a clean stop waits for a fill in flight.
const DRAIN_WAIT: Duration = Duration::from_secs(60);
/// How long a pooled VM may take to answer the handout's `/init`.
const HANDOUT_DEADLINE: Duration = Duration::from_secs(5);

impl Manager {
    fn pools(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, ImagePool>> {
        self.inner.pools.images.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pool_settings(&self) -> &Settings {
        &self.inner.cfg.pool
    }

    /// Takes a ready VM of `image_dir` for a create with `init` (and notes that the image is
    /// wanted). Returns the pooled VM, now a running VM owned by the caller with its share
    /// counted as running, or `None` (no pool, none ready, or the VM failed its handout).
    pub(super) async fn take_pooled(&self, image_dir: &Path, meta: &ImageMeta, init: &GuestInit) -> Option<Pooled> {
        if self.pool_settings().size == 0 || !meta.memory {
            return None;
        }
        let stamp = meta.disk_layer.clone();
        let wanted = Some(Instant::now() + self.pool_settings().idle);
        let mut taken = {
            let mut pools = self.pools();
            let pool = pools.entry(image_dir.to_path_buf()).or_insert_with(|| ImagePool::new(stamp.clone(), wanted));
            if pool.wanted_until.is_some() {
                pool.wanted_until = wanted;
            }
            pool.creates = pool.creates.saturating_add(1);
            if pool.stamp == stamp { pool.ready.pop() } else { None }
        };
        self.inner.pools.wake.notify_one();
        if taken.is_none() {
            taken = self.wait_for_fill(image_dir, &stamp).await;
        }
        let pooled = taken?;
        match self.inner.runtime.hand_out(&pooled.vm, init, HANDOUT_DEADLINE).await {
            Ok(()) => {
                let mut cap = self.capacity();
                if let Some(mb) = cap.pooled.remove(&pooled.id) {
                    cap.running.insert(pooled.id.clone(), mb);
                }
                info!(sandbox = %pooled.id, "handed out a pooled VM");
                Some(pooled)
            }
            Err(e) => {
                warn!(sandbox = %pooled.id, "a pooled VM failed its handout, restoring a new one instead: {e}");
                self.discard_pooled(pooled).await;
                None
            }
        }
    }

    /// A create that finds no ready VM while one of its image is being restored takes that one
    /// when it is ready (it started earlier than a new restore would, and a second restore
    /// would only compete with it for the CPU), waiting at most [`FILL_WAIT`]. One create waits
    /// per fill in flight; the others restore their own VM.
    async fn wait_for_fill(&self, image_dir: &Path, stamp: &Path) -> Option<Pooled> {
        {
            let mut pools = self.pools();
            let pool = pools.get_mut(image_dir).filter(|p| p.stamp == stamp)?;
            if pool.waiting >= pool.filling {
                return None;
            }
            pool.waiting += 1;
        }
        let deadline = Instant::now() + FILL_WAIT;
        let taken = loop {
            let notified = self.inner.pools.ready.notified();
            {
                let mut pools = self.pools();
                match pools.get_mut(image_dir).filter(|p| p.stamp == stamp) {
                    Some(pool) if !pool.ready.is_empty() => break pool.ready.pop(),
                    Some(pool) if pool.filling > 0 => {}
                    _ => break None,
                }
            }
            if tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), notified).await.is_err() {
                break None;
            }
        };
        if let Some(pool) = self.pools().get_mut(image_dir) {
            pool.waiting = pool.waiting.saturating_sub(1);
        }
        taken
    }

    /// Kills a pooled VM and frees its share.
    async fn discard_pooled(&self, pooled: Pooled) {
        let _ = self.inner.runtime.kill(&pooled.vm).await;
        self.capacity().pooled.remove(&pooled.id);
    }

    /// Makes room for a real launch: takes one ready VM out of the pools (its share is freed
    /// at once; it is killed in the background). False when no pool has one.
    pub(super) fn evict_pooled(&self) -> bool {
        let victim = {
            let mut pools = self.pools();
            pools.values_mut().find_map(|p| p.ready.pop())
        };
        let Some(victim) = victim else { return false };
        self.capacity().pooled.remove(&victim.id);
        let runtime = self.inner.runtime.clone();
        tokio::spawn(async move {
            let _ = runtime.kill(&victim.vm).await;
        });
        debug!("evicted a pooled VM to make room");
        true
    }

    /// Starts the filler: keeps every wanted image's pool at `size` ready VMs, one restore at
    /// a time, and drops pools of images no longer wanted, rebuilt or deleted.
    pub fn spawn_pool(&self) {
        if self.pool_settings().size == 0 {
            return;
        }
        info!(size = self.pool_settings().size, templates = ?self.pool_settings().templates, "warm pools on");
        let mgr = self.clone();
        tokio::spawn(async move {
            loop {
                mgr.want_configured();
                mgr.prune_pools().await;
                // Until every pool is full, or a fill finds no room or fails (then the next tick
                // tries again).
                while let Some(image_dir) = mgr.next_to_fill() {
                    let filled = mgr.fill_one(image_dir).await;
                    mgr.inner.pools.busy.store(false, Ordering::SeqCst);
                    mgr.inner.pools.idle.notify_waiters();
                    mgr.prune_pools().await;
                    if !filled {
                        break;
                    }
                }
                let _ = tokio::time::timeout(TICK, mgr.inner.pools.wake.notified()).await;
            }
        });
    }

    /// Registers the configured templates once they resolve (`base` may still be building).
    fn want_configured(&self) {
        for name in &self.pool_settings().templates {
            let Ok((dir, _, _)) = self.resolve_template(name) else { continue };
            let Some(stamp) = Runtime::read_meta(&dir).ok().filter(|m| m.memory).map(|m| m.disk_layer) else {
                continue;
            };
            let mut pools = self.pools();
            pools.entry(dir).or_insert_with(|| ImagePool::new(stamp, None)).wanted_until = None;
        }
    }

    /// Evicts VMs that died, of images rebuilt or gone, and pools no longer wanted.
    async fn prune_pools(&self) {
        let now = Instant::now();
        let mut doomed = Vec::new();
        {
            let mut pools = self.pools();
            pools.retain(|dir, pool| {
                let current = Runtime::read_meta(dir).ok().map(|m| m.disk_layer);
                let keep = current.as_ref() == Some(&pool.stamp) && pool.wanted_until.is_none_or(|t| t > now);
                if !keep {
                    doomed.append(&mut pool.ready);
                    return pool.filling > 0;
                }
                let (alive, dead): (Vec<_>, Vec<_>) =
                    pool.ready.drain(..).partition(|p| self.inner.runtime.is_alive(&p.vm));
                pool.ready = alive;
                doomed.extend(dead);
                true
            });
        }
        for pooled in doomed {
            debug!(sandbox = %pooled.id, "pooled VM evicted");
            self.discard_pooled(pooled).await;
        }
    }

    /// The image whose pool is furthest below its size, with its fill counted as started.
    fn next_to_fill(&self) -> Option<PathBuf> {
        let size = self.pool_settings().size;
        let mut pools = self.pools();
        if self.inner.pools.closing.load(Ordering::SeqCst) {
            return None;
        }
        let (dir, pool) = pools
            .iter_mut()
            .filter(|(_, p)| p.ready.len() + p.filling < size && (p.wanted_until.is_none() || p.creates >= 2))
            .filter(|(_, p)| p.retry_at.is_none_or(|t| t <= Instant::now()))
            .min_by_key(|(_, p)| p.ready.len() + p.filling)?;
        pool.filling += 1;
        self.inner.pools.busy.store(true, Ordering::SeqCst);
        Some(dir.clone())
    }

    /// Restores one VM of `image_dir` into its pool, if the caps leave room for it and for one
    /// more real sandbox besides.
    async fn fill_one(&self, image_dir: PathBuf) -> bool {
        let id = ids::sandbox_id();
        info!(sandbox = %id, image = %image_dir.display(), "filling the warm pool");
        let result = self.restore_pooled(&image_dir, &id).await;
        let filled = matches!(result, Ok(Some(_)));
        let mut leftover = None;
        {
            let mut pools = self.pools();
            match pools.get_mut(&image_dir) {
                Some(pool) => {
                    pool.filling -= 1;
                    match result {
                        Ok(Some(pooled)) => {
                            let fresh = Runtime::read_meta(&image_dir).ok().is_some_and(|m| m.disk_layer == pool.stamp);
                            if fresh { pool.ready.push(pooled) } else { leftover = Some(pooled) }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            pool.retry_at = Some(Instant::now() + FILL_BACKOFF);
                            warn!(image = %image_dir.display(), "could not fill the warm pool (next try in {} s): {e:#}", FILL_BACKOFF.as_secs());
                        }
                    }
                }
                None => leftover = result.ok().flatten(),
            }
        }
        self.inner.pools.ready.notify_waiters();
        if let Some(pooled) = leftover {
            self.discard_pooled(pooled).await;
        }
        filled
    }

    /// `Ok(None)`: no room (the pool waits for the next tick).
    async fn restore_pooled(&self, image_dir: &Path, id: &str) -> anyhow::Result<Option<Pooled>> {
        let _gc = self.inner.gc_guard.read().await;
        let meta = Runtime::read_meta(image_dir)?;
        {
            let mut cap = self.capacity();
            let mb = u64::from(meta.memory_mb);
            let room = cap.count() + 2 <= self.inner.cfg.max_sandboxes && cap.memory_mb() + 2 * mb <= cap.memory_limit_mb;
            if !room {
                return Ok(None);
            }
            cap.pooled.insert(id.to_string(), mb);
        }
        let launched = async {
            let egress = super::network::egress_spec(None, true).map_err(|e| anyhow::anyhow!("{}", e.message))?;
            let vm = self
                .inner
                .runtime
                .launch(LaunchSpec {
                    sandbox_id: id.to_string(),
                    image_dir: image_dir.to_path_buf(),
                    allow_internet: true,
                    egress,
                    init: GuestInit::default(),
                    cold_boot: false,
                    ram_fill: None,
                })
                .await?;
            // What every first command runs: a login shell. Its translated code stays in
            // this QEMU for the sandbox that gets the VM.
            if let Err(e) = self.inner.runtime.warm_up(&vm).await {
                let _ = self.inner.runtime.kill(&vm).await;
                return Err(e.into());
            }
            Ok::<_, anyhow::Error>(vm)
        }
        .await;
        match launched {
            Ok(vm) => {
                info!(sandbox = %id, image = %image_dir.display(), "pooled VM ready");
                Ok(Some(Pooled { id: id.to_string(), vm }))
            }
            Err(e) => {
                self.capacity().pooled.remove(id);
                Err(e)
            }
        }
    }

    /// Kills every pooled VM and spare QEMU (a clean stop; nothing else would ever hand them out).
    pub async fn drain_pools(&self) {
        // A fill in flight finishes first: its QEMU is already running, and a process that
        // exited under it would leave that VM behind.
        let deadline = tokio::time::Instant::now() + DRAIN_WAIT;
        loop {
            let idle = self.inner.pools.idle.notified();
            {
                let _images = self.pools();
                self.inner.pools.closing.store(true, Ordering::SeqCst);
                if !self.inner.pools.busy.load(Ordering::SeqCst) {
                    break;
                }
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                warn!("a warm-pool fill did not finish within {} s of the stop", DRAIN_WAIT.as_secs());
                break;
            }
        }
        let all: Vec<Pooled> = self.pools().drain().flat_map(|(_, p)| p.ready).collect();
        for pooled in all {
            self.discard_pooled(pooled).await;
        }
        // The runtime's spare QEMUs (no guest yet) go too.
        self.inner.runtime.drain_spares().await;
    }
}
