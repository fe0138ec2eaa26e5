//! What the template builder (`template::build`) needs from the manager: hidden build VMs,
//! their images, and resolving built templates for `POST /sandboxes`.
//!
//! Invariants:
//! - A build VM is never a sandbox: it has no `sandboxes` row (so it is never listed, proxied
//!   or reaped as one), but it holds an admission slot like one, and its run directory keeps
//!   its disk layers alive for the garbage collector. A restart kills it (`reap_unknown`
//!   knows only sandboxes' VMs) and fails its build (`recover_builds`).
//! - Build images are published like snapshots (tmp dir, fsync, rename, then the row), as
//!   kind `build`.

use std::path::PathBuf;
use std::time::Instant;

use tracing::info;

use super::{Manager, TemplateRef};
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::store::{ImageKind, ImageRow, NAMESPACE};
use crate::vm::{GuestInit, LaunchSpec, VmInfo};

/// A running build VM (see the module invariants).
#[derive(Debug, Clone)]
pub struct BuildVm {
    pub id: String,
    pub vm: VmInfo,
}

impl Manager {
    /// Restores (or, for a filesystem-only image, cold-boots) `image_dir` as a hidden build VM
    /// with internet access.
    pub async fn launch_build_vm(&self, image_dir: PathBuf) -> ApiResult<BuildVm> {
        let meta = crate::vm::Runtime::read_meta(&image_dir)?;
        let slot = self.reserve_slot(meta.memory_mb)?;
        let id = format!("build-{}", &crate::vm::random_id()[..16]);
        let _gc = self.inner.gc_guard.read().await;
        let vm = self
            .inner
            .runtime
            .launch(LaunchSpec {
                sandbox_id: id.clone(),
                image_dir,
                allow_internet: true,
                egress: None,
                init: GuestInit::default(),
                cold_boot: false,
                ram_fill: None,
            })
            .await?;
        slot.commit(&id);
        Ok(BuildVm { id, vm })
    }

    pub async fn kill_build_vm(&self, b: &BuildVm) {
        if let Err(e) = self.inner.runtime.kill(&b.vm).await {
            tracing::warn!(vm = %b.id, error = %e, "killing a build VM failed");
        }
        self.release_slot(&b.id);
    }

    /// Memory + disk image of a build VM, published as a hidden `build` image. The VM keeps
    /// running.
    pub async fn capture_build_image(&self, b: &BuildVm) -> ApiResult<ImageRow> {
        let _gc = self.inner.gc_guard.read().await;
        let root = self.inner.cfg.snapshots_dir();
        let id = ids::image_id();
        let tmp = root.join(format!(".tmp-{id}"));
        let dest = root.join(&id);
        std::fs::create_dir_all(&tmp)?;
        let started = Instant::now();
        let meta = match self.inner.runtime.snapshot(&b.vm, &tmp).await {
            Ok(meta) => meta,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e.into());
            }
        };
        let (t, d) = (tmp.clone(), dest.clone());
        let published = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::rename(&t, &d)?;
            std::fs::File::open(d.parent().unwrap_or(&d))?.sync_all()
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
        if let Err(e) = published {
            let _ = std::fs::remove_dir_all(&tmp);
            let _ = std::fs::remove_dir_all(&dest);
            return Err(e.into());
        }
        let row = ImageRow {
            id,
            kind: ImageKind::Build,
            name: None,
            tag: "default".into(),
            source_sandbox_id: None,
            dir: dest,
            disk_layer: meta.disk_layer,
            created_at: ids::now_ns(),
            size_bytes: meta.size_bytes,
            deleted: false,
            node_id: self.store().node_id().to_string(),
            upload: self.upload_plan(ImageKind::Build),
        };
        if let Err(e) = self.store().insert_image(&row) {
            let _ = std::fs::remove_dir_all(&row.dir);
            return Err(e.into());
        }
        self.spawn_upload(&row);
        info!(image = %row.id, vm = %b.id, elapsed_ms = started.elapsed().as_millis() as u64, "build image captured");
        Ok(row)
    }

    /// Hides a build image nothing needs any more; the GC frees it.
    pub fn release_build_image(&self, image_id: &str) -> ApiResult<()> {
        if !self.store().build_image_in_use(image_id)? {
            self.store().soft_delete_image(image_id)?;
            self.spawn_gc();
        }
        Ok(())
    }

    /// Start-up: builds that were running when sandboxd stopped have failed (their VMs were
    /// reaped, their unpublished images are swept); a template left without a ready build is
    /// removed.
    pub(super) fn recover_builds(&self) -> anyhow::Result<()> {
        let reason = serde_json::json!({
            "message": "the build was interrupted: sandboxd stopped while it ran",
            "step": "base",
        })
        .to_string();
        for id in self.store().fail_unfinished_builds(&reason, ids::now_ns())? {
            if let Some(b) = self.store().build(&id)?
                && !self.store().template_ready(&b.template_id)?
                && !self.store().template_building(&b.template_id)?
            {
                self.store().delete_template(&b.template_id)?;
            }
            info!(build = %id, "template build interrupted by a restart: failed");
        }
        Ok(())
    }

    /// A built template by alias or ID, `[local/]name[:tag]`: its image, ID and alias.
    /// `Ok(None)` when no visible built template has that name.
    pub(super) fn resolve_built(&self, r: &TemplateRef<'_>) -> ApiResult<Option<(PathBuf, String, Option<String>)>> {
        if r.namespace.is_some_and(|ns| ns != NAMESPACE) {
            return Ok(None);
        }
        let store = self.store();
        let template_id = match store.template_by_alias(r.name)? {
            Some(id) => id,
            None => match store.template(r.name)? {
                Some(t) => t.id,
                None => return Ok(None),
            },
        };
        if !store.template_ready(&template_id)? {
            return Ok(None);
        }
        let tag = if r.tag == "latest" { "default" } else { r.tag };
        let reference = || format!("{}:{}", r.name, r.tag);
        let build_id = store
            .tag_build(&template_id, tag)?
            .ok_or_else(|| ApiError::not_found(format!("template '{}' not found: no tag '{tag}'", reference())))?;
        let image = store
            .build(&build_id)?
            .and_then(|b| b.image_id)
            .and_then(|i| store.image(&i).ok().flatten())
            .filter(|i| !i.deleted)
            .ok_or_else(|| ApiError::not_found(format!("template '{}' not found", reference())))?;
        let alias = store.aliases_of(&template_id)?.into_iter().next();
        Ok(Some((image.dir, template_id, alias)))
    }
}

/// `[namespace/]name[:tag]` split as given: `(namespace, name, tag)`, `None` where absent.
pub fn parse_ref_public(r: &str) -> (Option<&str>, &str, Option<&str>) {
    let (ns, rest) = match r.split_once('/') {
        Some((ns, rest)) => (Some(ns), rest),
        None => (None, r),
    };
    match rest.split_once(':') {
        Some((name, tag)) => (ns, name, Some(tag)),
        None => (ns, rest, None),
    }
}
