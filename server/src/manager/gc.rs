//! Start-up recovery and garbage collection of images and disk layers.
//!
//! Invariants:
//! - An image directory is removed only when its row says it is no longer wanted (a deleted
//!   snapshot, or a pause/fork image) *and* no sandbox row refers to it (as the image its VM
//!   was restored from, or as its pause image).
//! - Disk layers are swept by the runtime, given as roots every remaining image's layer, every
//!   template's layer and the newest frozen layer of every running sandbox.
//! - GC holds `gc_guard` for writing, so it never runs while an image is being captured or a
//!   VM is being restored.

use std::collections::HashSet;
use std::path::PathBuf;

use tracing::{info, warn};

use super::Manager;
use crate::store::{ImageKind, SandboxState};
use crate::vm::Runtime;

impl Manager {
    /// Re-attaches the sandboxes whose VMs survived a restart, forgets the others (paused ones
    /// stay paused), removes half-written and unlisted image directories, then collects.
    pub async fn recover(&self) -> anyhow::Result<()> {
        let known: Vec<_> = self.store().all_sandboxes()?.into_iter().filter_map(|r| r.vm).collect();
        self.inner.runtime.reap_unknown(&known).await;
        for row in self.store().all_sandboxes()? {
            match (row.state, &row.vm) {
                (SandboxState::Paused, Some(vm)) => {
                    // Crashed between committing the pause and killing the old VM.
                    if self.inner.runtime.is_alive(vm) {
                        let _ = self.inner.runtime.kill(vm).await;
                    }
                    self.store().clear_vm(&row.id)?;
                }
                (SandboxState::Paused, None) => {}
                (_, Some(vm)) if self.inner.runtime.is_alive(vm) => {
                    if row.state != SandboxState::Running {
                        self.store().finish_snapshot(&row.id, None)?;
                    }
                    self.adopt_slot(&row.id, row.memory_mb);
                    self.set_route(&row.id, Some(vm.envd_addr));
                    self.reapply_network(&row);
                    self.watch_vm(&row.id, vm);
                    self.reattach_volumes(&row);
                    info!(sandbox = %row.id, "sandbox picked up again");
                }
                _ => {
                    self.store().delete_sandbox(&row.id)?;
                    if let Some(img) = &row.paused_image {
                        self.store().soft_delete_image(img)?;
                    }
                    info!(sandbox = %row.id, "sandbox is gone (its VM did not survive)");
                }
            }
        }
        let recovered_mb = self.usage().1;
        let limit = self.inner.cfg.memory_limit_mb(recovered_mb);
        self.capacity().memory_limit_mb = limit;
        info!(max_sandboxes = self.inner.cfg.max_sandboxes, max_memory_mb = limit, "capacity");
        self.recover_builds()?;
        self.sweep_image_dirs(true)?;
        self.collect_garbage().await;
        self.deadlines_changed();
        Ok(())
    }

    /// Removes image directories of `<data>/store/snapshots` that no row wants: half-written
    /// ones (`.tmp-*` from a capture, `.fetch-*` from a download) only at start-up
    /// (`unfinished`), unlisted ones always. Directories are named by image ID on every node
    /// (a copy fetched from the cluster's object store too).
    fn sweep_image_dirs(&self, unfinished: bool) -> anyhow::Result<()> {
        let root = self.inner.cfg.snapshots_dir();
        std::fs::create_dir_all(&root)?;
        let known: HashSet<String> = self.store().all_images()?.into_iter().map(|i| i.id).collect();
        for entry in std::fs::read_dir(&root)? {
            let path = entry?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let half_written = name.starts_with('.');
            // A fetched copy not yet synced when sandboxd stopped (maybe with the machine).
            let unsynced = unfinished && crate::vm::files::unsynced(&path);
            if (half_written && unfinished) || (!half_written && !known.contains(&name)) || unsynced {
                info!(path = %path.display(), "removing an unfinished or unlisted image");
                if let Err(e) = std::fs::remove_dir_all(&path) {
                    warn!(path = %path.display(), error = %e, "could not remove");
                }
            }
        }
        Ok(())
    }

    pub(super) fn spawn_gc(&self) {
        let mgr = self.clone();
        tokio::spawn(async move { mgr.collect_garbage().await });
    }

    pub async fn collect_garbage(&self) {
        let _gc = self.inner.gc_guard.write().await;
        let mgr = self.clone();
        match tokio::task::spawn_blocking(move || mgr.collect_blocking()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "garbage collection failed"),
            Err(e) => warn!(error = %e, "garbage collection panicked"),
        }
        drop(_gc);
        // Images this node just freed may leave objects nothing names in the cluster's bucket.
        self.collect_objects().await;
    }

    fn collect_blocking(&self) -> anyhow::Result<()> {
        // Every node's sandboxes: in a cluster an image another node restores from stays.
        let sandboxes = self.store().sandboxes_everywhere()?;
        let dir_id = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned());
        let mut used: HashSet<String> = sandboxes.iter().filter_map(|s| dir_id(&s.image_dir)).collect();
        used.extend(sandboxes.iter().filter_map(|s| s.paused_image.clone()));
        let mut live: Vec<PathBuf> = sandboxes.iter().filter_map(|s| s.disk_layer.clone()).collect();
        let local_root = self.inner.cfg.snapshots_dir();
        for img in self.store().all_images()? {
            let wanted = !img.deleted && matches!(img.kind, ImageKind::Snapshot | ImageKind::Build);
            if wanted || used.contains(&img.id) {
                live.push(img.disk_layer);
                continue;
            }
            // This node's directory of the image: the original or a fetched copy.
            let dir = local_root.join(&img.id);
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    warn!(image = %img.id, error = %e, "could not remove image directory");
                    live.push(img.disk_layer);
                    continue;
                }
            }
            crate::fault::point("gc.image_dir_removed");
            let _ = self.store().remove_node_image(&img.id);
            // Unused anywhere: the row goes (any node may do it); the other nodes' copies go at
            // their next collection (`sweep_image_dirs`), the bucket's objects with the next
            // collection of the bucket.
            self.store().hard_delete_image(&img.id)?;
            info!(image = %img.id, size_bytes = img.size_bytes, "image freed");
        }
        // Copies of images whose rows another node removed.
        self.sweep_image_dirs(false)?;
        // Layers of the images this node holds (fetched layers sit in its own store).
        for dir in [local_root, self.inner.cfg.templates_dir.clone()] {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    if let Ok(meta) = Runtime::read_meta(&entry.path()) {
                        live.push(meta.disk_layer);
                    }
                }
            }
        }
        let freed = self.inner.runtime.collect_garbage(&live)?;
        if freed > 0 {
            info!(bytes = freed, "disk layers freed");
        }
        Ok(())
    }
}
