//! Filesystem-only images: cold boots over an image's disk, and disk-only captures.
//!
//! Invariants:
//! - A cold-booted guest is handed out only once envd answered `/health` and then `/init`
//!   (clock, entropy, access token, env vars), exactly like a restored one.
//! - Its RAM file is reserved in full before QEMU starts, as for a restore: a full store fails
//!   the launch (507) instead of killing the guest later.
//! - A disk-only capture first flushes and freezes the guest's root filesystem (`sync`, then
//!   `fsfreeze`, through envd, which must answer): the frozen layer holds a clean filesystem
//!   with everything written before the capture, and writers block meanwhile. The guest is
//!   thawed once its disk is captured; the VM keeps running on a fresh top layer, like after a
//!   full snapshot. (Without `fsfreeze` in the image, `sync` alone leaves only writes racing
//!   the capture to ext4's journal recovery on the next boot.)

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{BOOT_DEADLINE, INIT_DEADLINE, Runtime, abandon_launch};
use crate::vm::qemu::{self, Boot};
use crate::vm::qmp::Qmp;
use crate::vm::{BootSpec, ImageMeta, LaunchSpec, Result, VmError, VmInfo, files, guest};

/// How long the guest's `sync` may take before a filesystem-only capture gives up.
const FLUSH_DEADLINE: Duration = Duration::from_secs(60);

fn boot_of(boot: Option<&BootSpec>, what: &str) -> Result<BootSpec> {
    boot.filter(|b| b.usable()).cloned().ok_or_else(|| {
        VmError::Unsupported(format!(
            "{what} has no kernel recorded for a cold boot (its template predates filesystem-only \
             snapshots): rebuild the template with `sandboxd template build`"
        ))
    })
}

impl Runtime {
    /// Boots the kernel of `meta.boot` over a fresh layer on the image's disk.
    pub(super) async fn launch_cold(&self, spec: &LaunchSpec, meta: &ImageMeta) -> Result<VmInfo> {
        let boot = boot_of(meta.boot.as_ref(), "this image")?;
        let started = Instant::now();
        let run = self.prepare_run_dir(&spec.sandbox_id)?;
        match self.cold_boot_in(&run, spec, meta, &boot).await {
            Ok(vm) => {
                tracing::info!(sandbox = %spec.sandbox_id, ms = started.elapsed().as_millis() as u64, "vm cold-booted");
                Ok(vm)
            }
            Err(e) => {
                self.cleanup_run_dir(&run).await;
                Err(e)
            }
        }
    }

    async fn cold_boot_in(&self, run: &Path, spec: &LaunchSpec, meta: &ImageMeta, boot: &BootSpec) -> Result<VmInfo> {
        let ram = qemu::ram_path(run);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&ram)
            .map_err(|e| files::io_err("create guest RAM", e))?;
        f.set_len(u64::from(meta.memory_mb) << 20).map_err(|e| files::io_err("set_len", e))?;
        files::reserve_blocks(&f)?;
        drop(f);
        let disk = self.new_layer(&meta.disk_layer).await?;
        std::os::unix::fs::symlink(&disk, run.join("disk"))?;
        let qmp_path = self.qmp_path(run);
        let kernel = Boot::Kernel { kernel: &boot.kernel, initrd: &boot.initrd, cmdline: &boot.cmdline };
        let (pid, envd_addr) =
            self.spawn_vm(run, &qmp_path, meta.memory_mb, meta.vcpus, Some(&disk), spec.allow_internet, &kernel).await?;
        let vm = VmInfo {
            pid,
            envd_addr,
            run_dir: run.to_path_buf(),
            memory_mb: meta.memory_mb,
            vcpus: meta.vcpus,
            disk_size_mb: meta.disk_size_mb,
            boot: Some(boot.clone()),
        };
        files::write_atomic(&run.join("vm.json"), &serde_json::to_vec(&vm).expect("json"))?;
        let up = async {
            let t0 = Instant::now();
            guest::wait_healthy(envd_addr, BOOT_DEADLINE, || qemu::is_our_qemu(pid, &qmp_path) && !qemu::guest_panicked(run))
                .await?;
            let boot_ms = t0.elapsed().as_millis() as u64;
            guest::init(envd_addr, &spec.init, INIT_DEADLINE).await?;
            tracing::debug!(boot_ms, "cold boot phases");
            Ok::<(), VmError>(())
        };
        if let Err(e) = up.await {
            return Err(abandon_launch(pid, &qmp_path, envd_addr, run, &spec.sandbox_id, "cold boot", e).await);
        }
        Ok(vm)
    }

    /// Best effort before a full-memory pause: writes the guest's dirty page cache to its disk,
    /// so a later reboot (`memory: false`) of that pause still finds the files.
    pub async fn sync_guest(&self, vm: &VmInfo, token: Option<&str>) {
        if let Err(e) = guest::run(vm.envd_addr, token, "/bin/sync", &[], Duration::from_secs(10)).await {
            tracing::warn!("could not sync the guest before pausing it (continuing): {e}");
        }
    }

    /// Captures only the disk of a running VM into `dest` (an empty directory): flushes the
    /// guest, freezes its top layer and writes `meta.json` with `memory: false`. The VM keeps
    /// running. `token` is the sandbox's envd access token.
    pub async fn snapshot_disk(&self, vm: &VmInfo, dest: &Path, token: Option<&str>) -> Result<ImageMeta> {
        let started = Instant::now();
        let boot = boot_of(vm.boot.as_ref(), "this sandbox")?;
        let freeze = "sync && if command -v fsfreeze >/dev/null; then fsfreeze --freeze /; fi";
        guest::run(vm.envd_addr, token, "/bin/sh", &["-c", freeze], FLUSH_DEADLINE)
            .await
            .map_err(|e| VmError::Unresponsive(format!("could not flush the guest's filesystem: {e}")))?;
        let captured = async {
            let mut qmp = Qmp::connect(&self.qmp_path(&vm.run_dir), Duration::from_secs(5)).await?;
            let swap = self.prepare_swap(vm, &mut qmp).await?;
            qmp.execute("stop", json!({})).await?;
            let frozen_at = Instant::now();
            let swapped = self.swap_top_layer(vm, &mut qmp, &swap).await;
            let resumed = qmp.execute("cont", json!({})).await;
            let frozen_ms = frozen_at.elapsed().as_millis() as u64;
            swapped?;
            resumed?;
            Ok::<_, VmError>((swap, frozen_ms))
        }
        .await;
        // Whatever happened, the guest's writers run again (a no-op error without fsfreeze).
        let thaw = "if command -v fsfreeze >/dev/null; then fsfreeze --unfreeze /; fi";
        if let Err(e) = guest::run(vm.envd_addr, token, "/bin/sh", &["-c", thaw], FLUSH_DEADLINE).await {
            tracing::warn!("could not thaw the guest's filesystem after a disk capture: {e}");
        }
        let (swap, frozen_ms) = captured?;
        files::fsync_path(&swap.frozen)?;
        let meta = ImageMeta {
            memory_mb: vm.memory_mb,
            vcpus: vm.vcpus,
            disk_size_mb: vm.disk_size_mb,
            disk_layer: swap.frozen.clone(),
            envd_version: crate::vm::ENVD_VERSION.to_string(),
            size_bytes: files::allocated_bytes(&swap.frozen),
            frozen_ms,
            capture_ms: started.elapsed().as_millis() as u64,
            memory: false,
            boot: Some(boot),
        };
        files::write_atomic(&dest.join("meta.json"), &serde_json::to_vec_pretty(&meta).expect("json"))?;
        files::fsync_path(dest)?;
        tracing::info!(frozen_ms, size_kib = meta.size_bytes >> 10, "filesystem-only image captured into {}", dest.display());
        Ok(meta)
    }
}
