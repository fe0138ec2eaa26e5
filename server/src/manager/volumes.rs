//! Volume mounts (`volumeMounts`): which volumes a sandbox has, opening each VM's volume
//! channel after it starts, and keeping the channel open while that VM runs.
//!
//! Invariants:
//! - A sandbox's mounts are fixed at create: they are stored with it, kept by pause and
//!   resume, and written into every image captured from it (`volumes.json`), so a sandbox
//!   made from such an image has them too (its guest memory already holds the mounts).
//! - A VM with mounts is handed out only once envd has mounted them all (the channel is
//!   open); if that fails the VM is killed and the create, resume or fork fails.
//! - The channel is re-opened whenever it drops while the same VM still runs (a restarted
//!   sandboxd re-opens it in `recover`); it is never served for a VM that is gone.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::Manager;
use crate::error::{ApiError, ApiResult};
use crate::store::SandboxState;
use crate::vm::VmInfo;
use crate::volumes::channel::{self, GuestMount, OpenError};
use crate::volumes::{VolumeMount, serve};

/// The file in an image directory listing the mounts its guest has.
const IMAGE_MOUNTS: &str = "volumes.json";
/// Paths a volume may not be mounted on or under: the guest's own kernel file systems.
const RESERVED: &[&str] = &["/proc", "/sys", "/dev", "/run"];

#[derive(serde::Deserialize)]
struct RequestedMount {
    name: Option<String>,
    path: Option<String>,
}

/// An absolute, normalised path other than `/` and outside [`RESERVED`].
fn check_path(path: &str) -> ApiResult<()> {
    let plain = path
        .strip_prefix('/')
        .is_some_and(|rest| rest.split('/').all(|c| !matches!(c, "" | "." | "..")) && !rest.contains('\0'));
    if !plain {
        return Err(ApiError::bad_request(format!(
            "invalid volume mount path {path:?}: it must be absolute, other than /, without '.', '..' or '//'"
        )));
    }
    if RESERVED.iter().any(|r| path == *r || path.starts_with(&format!("{r}/"))) {
        return Err(ApiError::bad_request(format!("volumes cannot be mounted at {path:?} (under {})", RESERVED.join(", "))));
    }
    Ok(())
}

/// One is the other or inside it.
fn nested(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}/")) || b.starts_with(&format!("{a}/"))
}

/// `base` plus `extra`, refusing two mounts on the same or nested paths (the same mount
/// twice is kept once).
pub(super) fn merge(base: Vec<VolumeMount>, extra: &[VolumeMount]) -> ApiResult<Vec<VolumeMount>> {
    let mut all = base;
    for m in extra {
        if all.contains(m) {
            continue;
        }
        if let Some(o) = all.iter().find(|o| nested(&o.path, &m.path)) {
            return Err(ApiError::bad_request(format!(
                "volume mount paths overlap: {:?} ({}) and {:?} ({})",
                o.path, o.name, m.path, m.name
            )));
        }
        all.push(m.clone());
    }
    Ok(all)
}

/// The mounts the guest of an image already has (none for images without `volumes.json`).
pub(super) fn image_mounts(image_dir: &Path) -> ApiResult<Vec<VolumeMount>> {
    match std::fs::read(image_dir.join(IMAGE_MOUNTS)) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| ApiError::internal(format!("{IMAGE_MOUNTS}: {e}"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Records `mounts` in an image being written (before it is fsynced and published).
pub(super) fn write_image_mounts(image_dir: &Path, mounts: &[VolumeMount]) -> std::io::Result<()> {
    if mounts.is_empty() {
        return Ok(());
    }
    std::fs::write(image_dir.join(IMAGE_MOUNTS), serde_json::to_vec(mounts).map_err(std::io::Error::other)?)
}

fn guest_mounts(mounts: &[VolumeMount]) -> Vec<GuestMount> {
    mounts.iter().map(|m| GuestMount { volume_id: m.volume_id.clone(), path: m.path.clone() }).collect()
}

impl Manager {
    /// Validates a create's `volumeMounts` (`[{name, path}]`) against the existing volumes.
    pub fn resolve_volume_mounts(&self, raw: &[serde_json::Value]) -> ApiResult<Vec<VolumeMount>> {
        if raw.is_empty() {
            return Ok(Vec::new());
        }
        if self.inner.cluster.is_some() {
            return Err(ApiError::bad_request(
                "volumeMounts are not available in cluster mode yet: a volume's files live on the node that created it",
            ));
        }
        let mut out = Vec::new();
        for v in raw {
            let m: RequestedMount = serde_json::from_value(v.clone())
                .map_err(|e| ApiError::bad_request(format!("invalid volumeMounts entry {v}: {e}")))?;
            let (Some(name), Some(path)) = (m.name, m.path) else {
                return Err(ApiError::bad_request(format!("volumeMounts entry {v} needs a name and a path")));
            };
            check_path(&path)?;
            let row = self
                .store()
                .find_volume_by_name(&name)?
                .ok_or_else(|| ApiError::bad_request(format!("volume \"{name}\" not found")))?;
            out = merge(out, &[VolumeMount { name, path, volume_id: row.id }])?;
        }
        Ok(out)
    }

    fn volume_roots(&self, mounts: &[VolumeMount]) -> Arc<serve::Roots> {
        let data = &self.inner.cfg.data_dir;
        Arc::new(mounts.iter().map(|m| (m.volume_id.clone(), crate::volumes::data_dir(data, &m.volume_id))).collect())
    }

    /// Opens the volume channel of sandbox `id`'s new VM: envd mounts what the guest lacks.
    /// Then serves it in the background for as long as that VM runs.
    pub(super) async fn attach_volumes(
        &self,
        id: &str,
        vm: &VmInfo,
        token: Option<&str>,
        mounts: &[VolumeMount],
    ) -> ApiResult<()> {
        if mounts.is_empty() {
            return Ok(());
        }
        let guest = guest_mounts(mounts);
        let io = channel::open(vm.envd_addr, token, &guest).await.map_err(|e| match e {
            OpenError::Refused(m) => ApiError::bad_request(format!("mounting volumes failed: {m}")),
            OpenError::Io(m) => ApiError::internal(format!("mounting volumes failed: {m}")),
        })?;
        info!(sandbox = %id, mounts = mounts.len(), "volumes mounted");
        let mgr = self.clone();
        let (id, vm, roots) = (id.to_string(), vm.clone(), self.volume_roots(mounts));
        tokio::spawn(async move { mgr.keep_serving(id, vm, guest, roots, io).await });
        Ok(())
    }

    /// The same VM is still this sandbox's and alive (the channel is worth re-opening).
    fn serves(&self, id: &str, vm: &VmInfo) -> Option<Option<String>> {
        let row = self.store().sandbox(id).ok()??;
        let same = row.state != SandboxState::Paused && row.vm.as_ref().is_some_and(|v| v.pid == vm.pid);
        (same && self.inner.runtime.is_alive(vm)).then_some(row.access_token)
    }

    async fn keep_serving(
        &self,
        id: String,
        vm: VmInfo,
        guest: Vec<GuestMount>,
        roots: Arc<serve::Roots>,
        first: channel::Upgraded,
    ) {
        let mut io = Some(first);
        let mut backoff = Duration::from_millis(100);
        loop {
            if let Some(conn) = io.take() {
                if let Err(e) = serve::serve(conn, roots.clone()).await {
                    warn!(sandbox = %id, error = %e, "volume channel broke");
                }
            }
            // A create still inserting its row: give it a moment before deciding.
            tokio::time::sleep(backoff).await;
            let Some(token) = self.serves(&id, &vm) else { return };
            match channel::open(vm.envd_addr, token.as_deref(), &guest).await {
                Ok(conn) => {
                    info!(sandbox = %id, "volume channel re-opened");
                    io = Some(conn);
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    warn!(sandbox = %id, error = %e, "re-opening the volume channel failed");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// After a restart: re-opens the channel of a running sandbox that has mounts.
    pub(super) fn reattach_volumes(&self, row: &crate::store::SandboxRow) {
        let Some(vm) = row.vm.clone() else { return };
        if row.volume_mounts.is_empty() {
            return;
        }
        let mgr = self.clone();
        let (id, token, mounts) = (row.id.clone(), row.access_token.clone(), row.volume_mounts.clone());
        tokio::spawn(async move {
            if let Err(e) = mgr.attach_volumes(&id, &vm, token.as_deref(), &mounts).await {
                warn!(sandbox = %id, error = %e.message, "re-opening the volume channel after a restart failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, path: &str) -> VolumeMount {
        VolumeMount { name: name.into(), path: path.into(), volume_id: format!("id-{name}") }
    }

    #[test]
    fn mount_paths_must_be_plain_and_outside_the_kernel_file_systems() {
        check_path("/mnt/data").unwrap();
        check_path("/home/user/work").unwrap();
        for bad in ["/", "", "mnt", "/mnt/", "/mnt//x", "/mnt/../etc", "/./mnt", "/proc", "/dev/shm", "/sys/x", "/run"] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn merging_keeps_repeats_once_and_refuses_overlaps() {
        let all = merge(vec![m("a", "/mnt/a")], &[m("a", "/mnt/a"), m("b", "/mnt/b")]).unwrap();
        assert_eq!(all, vec![m("a", "/mnt/a"), m("b", "/mnt/b")]);
        assert!(merge(vec![m("a", "/mnt/a")], &[m("b", "/mnt/a")]).is_err(), "same path, other volume");
        assert!(merge(vec![m("a", "/mnt")], &[m("b", "/mnt/b")]).is_err(), "nested");
        assert!(merge(vec![m("a", "/mnt/b")], &[m("b", "/mnt")]).is_err(), "nested the other way");
        assert!(merge(vec![m("a", "/mnt/a")], &[m("b", "/mnt/ab")]).is_ok(), "a shared prefix is not nesting");
    }
}
