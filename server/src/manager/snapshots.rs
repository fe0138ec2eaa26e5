//! Snapshots of running sandboxes, fork, and snapshot deletion.
//!
//! Invariant (atomic publication): an image is written into `<data>/snapshots/.tmp-<id>`,
//! every file and the directory are fsynced, the directory is renamed to
//! `<data>/snapshots/<id>` and the parent fsynced, and only then is the row committed. A crash
//! at any point leaves either a complete, listed image or an unlisted directory that the next
//! start removes. The source VM keeps running whatever happens (a full disk is a 507).

use std::fs::File;
use std::path::Path;
use std::time::Instant;

use tracing::{info, warn};

use super::lifecycle::Keep;
use super::{CreateParams, Manager, parse_ref};
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::pagination::Cursor;
use crate::store::{ImageKind, ImageRow, NAMESPACE, SandboxRow, SandboxState};
use crate::vm::VmInfo;

pub const MAX_FORKS: i64 = 100;

fn fsync_tree(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        if ty.is_dir() {
            fsync_tree(&entry.path())?;
        } else if ty.is_file() {
            File::open(entry.path())?.sync_all()?;
        }
    }
    File::open(dir)?.sync_all()
}

/// Validates a snapshot name: `name`, `local/name` or `local/name:default`.
fn snapshot_name(raw: &str) -> ApiResult<String> {
    let r = parse_ref(raw);
    if r.namespace.is_some_and(|ns| ns != NAMESPACE) {
        return Err(ApiError::bad_request(format!("namespace must be '{NAMESPACE}' (the only team of this server)")));
    }
    if r.tag != "default" {
        return Err(ApiError::bad_request("snapshot tags other than 'default' are not supported"));
    }
    if !ids::valid_name(r.name) {
        return Err(ApiError::bad_request(format!("invalid snapshot name {raw:?}: use lowercase letters, digits, '-' and '_'")));
    }
    Ok(r.name.to_string())
}

impl Manager {
    /// Writes an image of `vm`, the VM of sandbox `row`, and publishes it (see the module
    /// invariant): memory and disk, or with [`Keep::Filesystem`] the flushed disk alone.
    /// Callers hold the sandbox's operation lock and `gc_guard` for reading.
    pub(super) async fn capture(
        &self,
        row: &SandboxRow,
        vm: &VmInfo,
        kind: ImageKind,
        name: Option<String>,
        keep: Keep,
    ) -> ApiResult<ImageRow> {
        let source = row.id.as_str();
        let root = self.inner.cfg.snapshots_dir();
        let id = ids::image_id();
        let tmp = root.join(format!(".tmp-{id}"));
        let dest = root.join(&id);
        std::fs::create_dir_all(&tmp)?;
        let started = Instant::now();
        let captured = match keep {
            Keep::Full => self.inner.runtime.snapshot(vm, &tmp).await,
            Keep::Filesystem => self.inner.runtime.snapshot_disk(vm, &tmp, row.access_token.as_deref()).await,
        };
        let captured = captured.and_then(|meta| {
            super::volumes::write_image_mounts(&tmp, &row.volume_mounts).map_err(crate::vm::VmError::Io)?;
            Ok(meta)
        });
        let meta = match captured {
            Ok(meta) => meta,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e.into());
            }
        };
        let (t, d, r) = (tmp.clone(), dest.clone(), root.clone());
        let published = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            fsync_tree(&t)?;
            std::fs::rename(&t, &d)?;
            File::open(&r)?.sync_all()
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
        if let Err(e) = published {
            let _ = std::fs::remove_dir_all(&tmp);
            let _ = std::fs::remove_dir_all(&dest);
            return Err(e.into());
        }
        crate::fault::point("snapshot.image_renamed");
        let row = ImageRow {
            id,
            kind,
            name,
            tag: "default".into(),
            source_sandbox_id: Some(source.to_string()),
            dir: dest,
            disk_layer: meta.disk_layer,
            created_at: ids::now_ns(),
            size_bytes: meta.size_bytes,
            deleted: false,
            node_id: self.store().node_id().to_string(),
            upload: self.upload_plan(kind),
        };
        if let Err(e) = self.store().insert_image(&row) {
            let _ = std::fs::remove_dir_all(&row.dir);
            return Err(e.into());
        }
        self.spawn_upload(&row);
        info!(
            image = %row.snapshot_id(), kind = ?kind, sandbox = %source, size_bytes = row.size_bytes,
            elapsed_ms = started.elapsed().as_millis() as u64, "image captured"
        );
        Ok(row)
    }

    /// Runs `capture` on a running sandbox: `running → snapshotting → running`, same ID and
    /// expiry. 409 if another operation holds the sandbox or it is not running.
    async fn capture_running(
        &self,
        id: &str,
        kind: ImageKind,
        name: Option<String>,
        keep: Keep,
    ) -> ApiResult<(SandboxRow, ImageRow)> {
        let id = self.get(id)?.id;
        let lock = self.op_lock(&id);
        let Ok(_op) = lock.try_lock() else {
            return Err(ApiError::conflict(format!("sandbox {id} cannot be snapshotted while another snapshot or operation is in progress")));
        };
        let row = self.get(&id)?;
        if row.state != SandboxState::Running {
            return Err(ApiError::conflict(format!("sandbox {id} cannot be snapshotted while in '{}' state", row.state.as_str())));
        }
        let vm = row.vm.clone().ok_or_else(|| ApiError::internal("running sandbox without a VM"))?;
        self.store().set_state(&id, SandboxState::Snapshotting)?;
        match self.capture(&row, &vm, kind, name, keep).await {
            Ok(img) => {
                self.store().finish_snapshot(&id, Some(&img.disk_layer))?;
                Ok((row, img))
            }
            Err(e) => {
                if self.inner.runtime.is_alive(&vm) {
                    self.store().finish_snapshot(&id, None)?;
                } else {
                    warn!(sandbox = %id, "VM died while being snapshotted");
                    self.destroy(row).await;
                }
                Err(e)
            }
        }
    }

    /// `POST /sandboxes/{id}/snapshots`; sandboxes created from a [`Keep::Filesystem`]
    /// snapshot cold-boot over its disk.
    pub async fn snapshot(&self, id: &str, name: Option<&str>, keep: Keep) -> ApiResult<ImageRow> {
        let name = name.filter(|n| !n.is_empty()).map(snapshot_name).transpose()?;
        let _gc = self.inner.gc_guard.read().await;
        Ok(self.capture_running(id, ImageKind::Snapshot, name, keep).await?.1)
    }

    /// `POST /sandboxes/{id}/fork`: one capture, then `count` sandboxes from it. Each entry
    /// is the new sandbox or why it could not start.
    pub async fn fork(&self, id: &str, count: i64, timeout_secs: i64) -> ApiResult<Vec<ApiResult<SandboxRow>>> {
        if !(1..=MAX_FORKS).contains(&count) {
            return Err(ApiError::bad_request(format!("count must be between 1 and {MAX_FORKS}")));
        }
        super::lifecycle::validate_lifetime(timeout_secs)?;
        let _gc = self.inner.gc_guard.read().await;
        let (source, img) = self.capture_running(id, ImageKind::Fork, None, Keep::Full).await?;
        let params = CreateParams {
            template: source.template_id.clone(),
            timeout_secs,
            metadata: source.metadata.clone(),
            env_vars: source.env_vars.clone(),
            secure: source.access_token.is_some(),
            allow_internet: source.allow_internet,
            auto_pause: source.auto_pause,
            auto_pause_memory: source.auto_pause_memory,
            auto_resume: source.auto_resume,
            network: source.network.clone(),
            // The clones' guests have the source's mounts: they come with the image.
            volume_mounts: Vec::new(),
        };
        let launches = (0..count).map(|_| {
            self.launch_new(img.dir.clone(), source.template_id.clone(), source.alias.clone(), &params, false, None)
        });
        let results = futures::future::join_all(launches).await;
        // Hidden from now on; the directory stays while the clones run from it.
        self.store().soft_delete_image(&img.id)?;
        drop(_gc);
        self.spawn_gc();
        Ok(results)
    }

    /// `DELETE /templates/{id}` for a snapshot ID: hidden at once, files freed by the GC.
    pub fn delete_snapshot(&self, reference: &str) -> ApiResult<()> {
        let not_found = || ApiError::not_found(format!("snapshot '{reference}' not found"));
        let r = parse_ref(reference);
        if r.namespace.is_some_and(|ns| ns != NAMESPACE) || r.tag != "default" {
            return Err(not_found());
        }
        let img = self.store().find_snapshot(r.name)?.ok_or_else(not_found)?;
        if !self.store().soft_delete_image(&img.id)? {
            return Err(not_found());
        }
        info!(snapshot = %reference, "snapshot deleted");
        self.spawn_gc();
        Ok(())
    }

    /// `GET /snapshots`: one page (`limit + 1` rows), newest first.
    pub fn list_snapshots(
        &self,
        sandbox_id: Option<&str>,
        name: Option<&str>,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> ApiResult<Vec<ImageRow>> {
        let name = match name.map(parse_ref) {
            Some(r) if r.namespace.is_some_and(|ns| ns != NAMESPACE) || r.tag != "default" => return Ok(Vec::new()),
            Some(r) => Some(r.name),
            None => None,
        };
        let sandbox_id = sandbox_id.map(ids::short_sandbox_id);
        Ok(self.store().list_snapshots(sandbox_id, name, cursor, limit)?)
    }
}
