//! What the manager does as a node of a cluster (see `cluster/`): uploads the images it
//! captures, fetches images captured elsewhere before restoring them, keeps its heartbeat and
//! reports dead nodes. Outside a cluster every function here is a no-op.
//!
//! Invariants:
//! - An image is restorable on another node only once its row says `durable`; a restore that
//!   arrives earlier waits for the upload (or fails if it fails or its node dies), never
//!   restores a partial image.
//! - A node fetches an image once at a time (per-image lock); the directory appears complete
//!   or not at all (`cluster::download`). It asks a live node holding the image first and the
//!   bucket for whatever that node does not give (`cluster::peer`); every part is checked
//!   against the manifest's hashes either way.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::Manager;
use crate::cluster::Cluster;
use crate::cluster::direct::Direct;
use crate::cluster::download::{DownloadStats, LocalDirs};
use crate::cluster::peer::Peer;
use crate::error::{ApiError, ApiResult};
use crate::store::{ImageKind, ImageRow, NodeRow, Upload};

/// How often a node proves it is alive (`SANDBOXD_HEARTBEAT_MS`, default 1000).
fn heartbeat_every() -> Duration {
    Duration::from_millis(env_u64("SANDBOXD_HEARTBEAT_MS", 1000))
}

/// A node silent for this long is dead (`SANDBOXD_NODE_GRACE_MS`, default 10000).
pub(crate) fn node_grace() -> Duration {
    Duration::from_millis(env_u64("SANDBOXD_NODE_GRACE_MS", 10_000))
}

/// Objects no manifest names are deleted only this old (`SANDBOXD_OBJECTS_GC_GRACE_SECS`,
/// default 3600): a second line of defence behind [`OBJECTS_LOCK`].
fn objects_grace() -> Duration {
    Duration::from_secs(env_u64("SANDBOXD_OBJECTS_GC_GRACE_SECS", 3600))
}

/// How often a node tries to collect the bucket (`SANDBOXD_OBJECTS_GC_SECS`, default 600).
fn objects_gc_every() -> Duration {
    Duration::from_secs(env_u64("SANDBOXD_OBJECTS_GC_SECS", 600))
}

/// The cluster-wide lock between uploads (shared) and the bucket's garbage collection
/// (exclusive): an upload may reuse an object that no manifest names yet, so no collection
/// runs while any upload does.
const OBJECTS_LOCK: i64 = 0x7362_786f_626a_6563;

/// The longest a restore waits for another node's upload (`SANDBOXD_UPLOAD_WAIT_SECS`, 600).
fn upload_wait() -> Duration {
    Duration::from_secs(env_u64("SANDBOXD_UPLOAD_WAIT_SECS", 600))
}

/// How long after a direct restore this node fetches its own copy of the image: the restore's
/// guest and first commands go first.
const COPY_DELAY: Duration = Duration::from_secs(2);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

pub(crate) fn now_ms() -> i64 {
    crate::ids::now_ns() / 1_000_000
}

impl Manager {
    pub fn cluster(&self) -> Option<&Arc<Cluster>> {
        self.inner.cluster.as_ref()
    }

    /// Whether an image of `kind` goes to the object store: everything but fork images
    /// (their clones start on the node that captured them) when in a cluster.
    pub(super) fn upload_plan(&self, kind: ImageKind) -> Upload {
        match (&self.inner.cluster, kind) {
            (Some(_), ImageKind::Fork) | (None, _) => Upload::None,
            (Some(_), _) => Upload::Pending,
        }
    }

    /// Uploads a just-published image in the background (after the source VM resumed: the
    /// freeze is not made longer by it), then marks it durable (or failed).
    pub(super) fn spawn_upload(&self, img: &ImageRow) {
        let Some(cluster) = self.inner.cluster.clone() else { return };
        if img.upload != Upload::Pending {
            return;
        }
        let _ = self.store().add_node_image(&img.id);
        let (mgr, id, dir) = (self.clone(), img.id.clone(), img.dir.clone());
        tokio::spawn(async move {
            // Shared with every other upload, exclusive of a collection of the bucket, on this
            // node and on the others.
            let _local = cluster.uploads.read().await;
            loop {
                match mgr.store().try_cluster_lock(OBJECTS_LOCK, true) {
                    Ok(true) => break,
                    Ok(false) => tokio::time::sleep(Duration::from_millis(200)).await,
                    Err(e) => {
                        warn!(image = %id, error = %e, "could not take the upload lock; uploading anyway");
                        break;
                    }
                }
            }
            cluster.bucket.forget_known();
            let bases = mgr.local_dirs().chunk_sources;
            let mut attempt = 0;
            let outcome = loop {
                attempt += 1;
                match crate::cluster::upload::upload_image(&cluster.bucket, &id, &dir, &bases).await {
                    Ok(_) => break Upload::Durable,
                    Err(e) if attempt < 3 => {
                        warn!(image = %id, attempt, error = %format!("{e:#}"), "image upload failed; retrying");
                        tokio::time::sleep(Duration::from_secs(attempt)).await;
                    }
                    Err(e) => {
                        warn!(image = %id, error = %format!("{e:#}"), "image upload failed; the image stays on this node only");
                        break Upload::Failed;
                    }
                }
            };
            if let Err(e) = mgr.store().set_image_upload(&id, outcome) {
                warn!(image = %id, error = %e, "could not record the upload");
            }
            let _ = mgr.store().cluster_unlock(OBJECTS_LOCK, true);
        });
    }

    /// Deletes from the bucket what no image in the database needs (see `cluster::objects_gc`),
    /// unless another node is collecting or any node is uploading.
    pub(super) async fn collect_objects(&self) {
        let Some(cluster) = self.inner.cluster.clone() else { return };
        let Ok(_local) = cluster.uploads.try_write() else { return };
        match self.store().try_cluster_lock(OBJECTS_LOCK, false) {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => return warn!(error = %e, "could not take the object collection lock"),
        }
        let live = self.store().all_images().map(|imgs| imgs.into_iter().map(|i| i.id).collect());
        let result = match live {
            Ok(live) => crate::cluster::objects_gc::collect(&cluster.bucket, &live, objects_grace()).await,
            Err(e) => Err(e.into()),
        };
        let _ = self.store().cluster_unlock(OBJECTS_LOCK, false);
        match result {
            Ok(stats) if stats.objects_deleted + stats.manifests_deleted > 0 => info!(
                manifests = stats.manifests_deleted,
                objects = stats.objects_deleted,
                bytes = stats.bytes_freed,
                "object store collected"
            ),
            Ok(_) => {}
            Err(e) => warn!(error = %format!("{e:#}"), "object store collection failed"),
        }
    }

    fn local_dirs(&self) -> LocalDirs {
        let store = self.inner.runtime.layers_dir();
        LocalDirs {
            layers: store.clone(),
            layer_sources: vec![self.inner.cfg.templates_dir.join(".layers")],
            chunk_sources: vec![self.inner.cfg.snapshots_dir(), self.inner.cfg.templates_dir.clone()],
            boot: store.with_file_name("boot"),
        }
    }

    /// The local directory of image `dir` (a path as recorded by whichever node made it):
    /// itself when it is here, else this node's copy, fetched from the object store first if
    /// needed. Outside a cluster, `dir` unchanged.
    pub(super) async fn local_image(&self, dir: PathBuf) -> ApiResult<PathBuf> {
        self.fetch_image(dir, true).await
    }

    /// [`Self::local_image`]; `for_restore`: a restore waits for it (else it is the copy a
    /// direct restore left to fetch afterwards), which its log line says.
    async fn fetch_image(&self, dir: PathBuf, for_restore: bool) -> ApiResult<PathBuf> {
        let Some(cluster) = self.inner.cluster.clone() else { return Ok(dir) };
        let (id, local) = match self.held_copy(&dir) {
            Ok(held) => return Ok(held),
            Err(missing) => missing,
        };
        let row = self.image_row(&id, &dir)?;
        self.wait_durable(&row).await?;
        let lock = self.op_lock(&format!("fetch:{id}"));
        let _held = lock.lock().await;
        if !local.join("meta.json").is_file() {
            let _gc = self.inner.gc_guard.read().await;
            let peer = self.peer_for(&cluster, &row);
            let stats = crate::cluster::download::download_image(&cluster.bucket, &id, &local, &self.local_dirs(), peer.as_ref())
                .await
                .map_err(|e| ApiError::internal(format!("fetching image {id} from the object store: {e:#}")))?;
            match for_restore {
                true => info!(image = %id, ms = stats.ms, fetched_bytes = stats.fetched_bytes, peer_bytes = stats.peer_bytes, "image fetched for a restore"),
                false => info!(image = %id, ms = stats.ms, fetched_bytes = stats.fetched_bytes, peer_bytes = stats.peer_bytes, "image fetched for this node's store"),
            }
            let _ = self.store().add_node_image(&id);
        }
        Ok(local)
    }

    /// Image `dir` (a path as recorded by whichever node made it) when this node has it:
    /// itself, or this node's copy; else its ID and where this node's copy goes.
    fn held_copy(&self, dir: &Path) -> Result<PathBuf, (String, PathBuf)> {
        let snapshots = self.inner.cfg.snapshots_dir();
        // Only this node's own directories count: another node's path may well be readable
        // here (nodes sharing a host), but its files belong to that node.
        let ours = dir.starts_with(&snapshots) || dir.starts_with(&self.inner.cfg.templates_dir);
        if ours && dir.join("meta.json").is_file() {
            return Ok(dir.to_path_buf());
        }
        let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let local = snapshots.join(&id);
        match local.join("meta.json").is_file() {
            true => Ok(local),
            false => Err((id, local)),
        }
    }

    fn image_row(&self, id: &str, dir: &Path) -> ApiResult<ImageRow> {
        self.store().image(id)?.ok_or_else(|| {
            ApiError::not_found(format!(
                "image {} is not on this node (templates built with `sandboxd template build` are per node)",
                dir.display()
            ))
        })
    }

    /// For a create from image `dir`: the directory to restore and, for an image this node has
    /// never seen, what fetches its RAM straight into that restore ([`crate::cluster::direct`];
    /// the directory is then private to the restore, and this node's own copy is fetched
    /// afterwards). One such restore per image at a time: a concurrent one waits for a copy.
    pub(super) async fn image_for_create(&self, dir: PathBuf) -> ApiResult<(PathBuf, Option<Direct>)> {
        let Some(cluster) = self.inner.cluster.clone().filter(|_| crate::cluster::direct::enabled()) else {
            return Ok((self.local_image(dir).await?, None));
        };
        let (id, local) = match self.held_copy(&dir) {
            Ok(held) => return Ok((held, None)),
            Err(missing) => missing,
        };
        let row = self.image_row(&id, &dir)?;
        self.wait_durable(&row).await?;
        let Ok(one) = self.op_lock(&format!("direct:{id}")).try_lock_owned() else {
            return Ok((self.local_image(dir).await?, None));
        };
        let mgr = self.clone();
        let (image, recorded) = (id.clone(), local.clone());
        let on_done = move |stats: &DownloadStats| {
            info!(image = %image, ms = stats.ms, fetched_bytes = stats.fetched_bytes, peer_bytes = stats.peer_bytes, direct = true, "image fetched for a restore");
            drop(one);
            mgr.fetch_copy_later(recorded);
        };
        let peer = self.peer_for(&cluster, &row);
        let prepared =
            crate::cluster::direct::prepare(&cluster.bucket, &id, &self.inner.cfg.snapshots_dir(), &self.local_dirs(), peer, on_done)
                .await
                .map_err(|e| ApiError::internal(format!("fetching image {id} from the object store: {e:#}")))?;
        match prepared {
            Some(direct) => Ok((local, Some(direct))),
            None => Ok((self.local_image(dir).await?, None)),
        }
    }

    /// This node's copy of image `dir`, fetched in the background once the direct restore that
    /// needed it is under way (see [`crate::cluster::direct`]).
    fn fetch_copy_later(&self, dir: PathBuf) {
        let mgr = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(COPY_DELAY).await;
            if let Err(e) = mgr.fetch_image(dir.clone(), false).await {
                warn!(image = %dir.display(), error = %e.message, "fetching this node's copy of an image failed; the next restore fetches it");
            }
        });
    }

    /// A live node other than this one that holds image `row` (its maker first), to fetch it
    /// from before the bucket; `None` when there is none or `SANDBOXD_PEER_FETCH=0`.
    fn peer_for(&self, cluster: &Cluster, row: &ImageRow) -> Option<Peer> {
        if !crate::cluster::peer::enabled() {
            return None;
        }
        let fresh_after = now_ms() - self.node_grace_ms();
        let holders = self.store().image_holders(&row.id, &row.node_id, fresh_after).ok()?;
        let node = holders.first()?;
        Some(Peer::new(&node.advertise_url, &node.id, &row.id, &cluster.peer_key))
    }

    /// The directory of image `image_id` when this node holds it whole (made here, or fetched
    /// and published): what a peer may read from.
    pub fn held_image_dir(&self, image_id: &str) -> Option<PathBuf> {
        if !crate::cluster::manifest::safe_name(image_id) || image_id.starts_with('.') {
            return None;
        }
        let snapshots = self.inner.cfg.snapshots_dir();
        let made_here = self.store().image(image_id).ok().flatten().map(|row| row.dir).filter(|dir| {
            dir.starts_with(&snapshots) || dir.starts_with(&self.inner.cfg.templates_dir)
        });
        made_here.into_iter().chain([snapshots.join(image_id)]).find(|dir| dir.join("meta.json").is_file())
    }

    /// Disk layer `name` when this node holds it (a temporary `.` file never counts).
    pub fn held_layer(&self, name: &str) -> Option<PathBuf> {
        if !crate::cluster::manifest::safe_name(name) || name.starts_with('.') {
            return None;
        }
        self.local_dirs().find_layer(name)
    }

    /// Waits until another node's upload of `row` is durable.
    async fn wait_durable(&self, row: &ImageRow) -> ApiResult<()> {
        let deadline = tokio::time::Instant::now() + upload_wait();
        let mut row = row.clone();
        loop {
            match row.upload {
                Upload::Durable => return Ok(()),
                Upload::Pending => {}
                Upload::Failed | Upload::None => {
                    return Err(ApiError::new(
                        axum::http::StatusCode::CONFLICT,
                        format!("image {} is on node {} only (not in the object store)", row.id, row.node_id),
                    ));
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApiError::internal(format!("image {} is still being uploaded by node {}", row.id, row.node_id)));
            }
            // Polled: the upload finishes on another node, which has no way to notify this one.
            tokio::time::sleep(Duration::from_millis(100)).await;
            row = self.store().image(&row.id)?.ok_or_else(|| ApiError::not_found(format!("image {} was deleted", row.id)))?;
        }
    }

    pub fn node_grace_ms(&self) -> i64 {
        node_grace().as_millis() as i64
    }

    /// What placing a sandbox of `template` needs: its guest memory and the image ID nodes
    /// may keep a copy of. `None` when the template is unknown (the create then fails as usual).
    pub async fn placement_need(&self, template: &str) -> Option<(u64, Option<String>)> {
        let (dir, _, _) = self.resolve_template(template).ok()?;
        let image_id = dir.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Ok(meta) = crate::vm::Runtime::read_meta(&dir) {
            return Some((u64::from(meta.memory_mb), image_id));
        }
        let local = self.inner.cfg.snapshots_dir().join(image_id.as_deref()?);
        if let Ok(meta) = crate::vm::Runtime::read_meta(&local) {
            return Some((u64::from(meta.memory_mb), image_id));
        }
        let cluster = self.inner.cluster.as_ref()?;
        let manifest = crate::cluster::download::fetch_manifest(&cluster.bucket, image_id.as_deref()?).await.ok()??;
        Some((u64::from(manifest.memory_mb), image_id))
    }

    /// Registers this node, then keeps its heartbeat and reaps nodes that stopped theirs.
    pub fn spawn_heartbeat(&self) -> anyhow::Result<()> {
        let Some(cluster) = self.inner.cluster.clone() else { return Ok(()) };
        self.register_node(&cluster)?;
        let mgr = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(objects_gc_every());
            loop {
                tick.tick().await;
                mgr.collect_objects().await;
            }
        });
        let mgr = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(heartbeat_every());
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                mgr.beat(&cluster).await;
            }
        });
        Ok(())
    }

    fn register_node(&self, cluster: &Cluster) -> anyhow::Result<()> {
        let now = now_ms();
        let disk_mb = self.inner.runtime.store_free_bytes() >> 20;
        self.store().register_node(&NodeRow {
            id: cluster.node_id().to_string(),
            advertise_url: cluster.cfg.advertise_url.clone(),
            compat: cluster.compat.clone(),
            vcpus: crate::cluster::node::host_vcpus(),
            memory_mb: self.capacity().memory_limit_mb,
            disk_mb,
            max_sandboxes: self.inner.cfg.max_sandboxes as u64,
            alive: true,
            started_at: now,
            heartbeat_at: now,
        })?;
        info!(node = cluster.node_id(), compat = %cluster.compat, "node registered");
        Ok(())
    }

    async fn beat(&self, cluster: &Cluster) {
        match self.store().heartbeat(now_ms()) {
            Ok(true) => {}
            Ok(false) => {
                // Declared dead while alive (a long stall): our sandboxes were reported gone,
                // so their VMs go too, and the node joins again.
                warn!(node = cluster.node_id(), "this node was declared dead by the others; rejoining");
                self.drop_orphaned_vms().await;
                if let Err(e) = self.register_node(cluster) {
                    warn!(error = %e, "could not register the node again");
                }
            }
            Err(e) => warn!(error = %e, "heartbeat failed"),
        }
        let cutoff = now_ms() - node_grace().as_millis() as i64;
        match self.store().reap_dead_nodes(cutoff) {
            Ok(dead) => {
                for (node, sandboxes) in dead {
                    warn!(node = %node, sandboxes = sandboxes.len(), "node declared dead: its sandboxes are gone");
                    for id in sandboxes {
                        self.telemetry().sandbox_ended(&id);
                    }
                }
            }
            Err(e) => warn!(error = %e, "could not check for dead nodes"),
        }
        let _ = self.store().expire_placements(now_ms() - 300_000);
    }

    /// Kills local VMs whose sandbox rows are gone.
    async fn drop_orphaned_vms(&self) {
        let routed: Vec<String> = self.inner.routes.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        for id in routed {
            if matches!(self.store().sandbox(&id), Ok(None)) {
                if let Some(vm) = self.inner.runtime.recorded_vm(&id) {
                    let _ = self.inner.runtime.kill(&vm).await;
                }
                self.drop_route(&id);
                self.telemetry().sandbox_ended(&id);
                warn!(sandbox = %id, "VM stopped: its sandbox was reported gone while this node was unreachable");
            }
        }
    }
}
