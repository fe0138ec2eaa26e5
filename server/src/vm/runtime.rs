//! [`Runtime`]: launching VMs from images, snapshotting them while they keep running,
//! killing them, and sweeping disk layers nothing references.
//!
//! Layout under the data directory:
//! - `layers/<uuid>.qcow2`: every disk layer; a VM writes to its own top layer, whose
//!   backing chain ends in the template's rootfs. Layers are never moved or rewritten once
//!   frozen, so backing paths recorded in qcow2 headers stay valid.
//! - `run/<sandbox id>/`: the VM's RAM file (`mem.ram`, shared mapping), console log,
//!   pid file and a `disk` symlink to its current top layer.
//! - QMP sockets live in a short directory (`/tmp/sandboxd-<hash>/`) because unix socket
//!   paths are limited to 108 bytes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::qemu::{self, Boot, MachineSpec};
use super::qmp::Qmp;
use super::{BootSpec, GuestInit, ImageMeta, LaunchSpec, Result, VmError, VmInfo, files, guest, net};

mod cold;
mod spare;

pub use spare::check as check_spare_vms;

/// The QEMU runtime. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    /// `<data>/store`: layers, run directories and snapshot images (see `store.rs`).
    store: PathBuf,
    accel: &'static str,
    sock_dir: PathBuf,
    /// QEMUs started ahead of restores (none for a scratch runtime: nothing would stop them).
    spares: spare::Spares,
}

/// Kept free in the store beyond what an operation needs (qcow2 growth, metadata).
pub const SPACE_MARGIN: u64 = 64 << 20;
/// How long a restored guest may take to answer `/init` (TCG on a busy host is slow).
const INIT_DEADLINE: Duration = Duration::from_secs(60);
/// How long a cold boot (template build) may take to bring envd up.
const BOOT_DEADLINE: Duration = Duration::from_secs(300);

impl Runtime {
    /// Probes the accelerator (KVM only when it really runs a guest, else TCG) and prepares
    /// `<data>/layers`, `<data>/run`.
    pub async fn new(data_dir: &Path) -> Result<Self> {
        Self::open(data_dir, true).await
    }

    /// A runtime for throwaway work (template builds): never mounts a store image.
    pub async fn scratch(data_dir: &Path) -> Result<Self> {
        Self::open(data_dir, false).await
    }

    async fn open(data_dir: &Path, mount_store: bool) -> Result<Self> {
        let data_dir = std::path::absolute(data_dir)?;
        let store = if mount_store { super::store::prepare(&data_dir)? } else { data_dir.join("store") };
        for d in ["layers", "run", "snapshots", "spare"] {
            std::fs::create_dir_all(store.join(d))?;
        }
        let accel = super::accel::detect().await;
        let hash = {
            use sha2::Digest;
            hex::encode(&sha2::Sha256::digest(data_dir.as_os_str().as_encoded_bytes())[..6])
        };
        let sock_dir = std::env::temp_dir().join(format!("sandboxd-{hash}"));
        std::fs::create_dir_all(&sock_dir)?;
        let spares = spare::Spares::new(mount_store);
        Ok(Self { inner: Arc::new(Inner { data_dir, store, accel, sock_dir, spares }) })
    }

    /// `"kvm"` or `"tcg"`.
    pub fn accel(&self) -> &'static str {
        self.inner.accel
    }

    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Where snapshot images must be written (same filesystem as the VMs' RAM files, so
    /// they can be reflinked): `<data>/store/snapshots`.
    pub fn images_dir(&self) -> PathBuf {
        self.inner.store.join("snapshots")
    }

    pub fn read_meta(image_dir: &Path) -> Result<ImageMeta> {
        let raw = std::fs::read(image_dir.join("meta.json"))
            .map_err(|e| VmError::BadImage(format!("{}: {e}", image_dir.display())))?;
        serde_json::from_slice(&raw).map_err(|e| VmError::BadImage(e.to_string()))
    }

    pub fn layers_dir(&self) -> PathBuf {
        self.inner.store.join("layers")
    }

    fn run_dir(&self, sandbox_id: &str) -> PathBuf {
        self.inner.store.join("run").join(sandbox_id)
    }

    fn qmp_path(&self, run_dir: &Path) -> PathBuf {
        // A VM started as a spare keeps the socket it was started with.
        if let Ok(path) = std::fs::read_link(run_dir.join("qmp")) {
            return path;
        }
        let name = run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        self.inner.sock_dir.join(format!("{name}.qmp"))
    }

    /// A new, empty qcow2 layer on top of `backing` (or a fresh base copy of a raw image).
    pub async fn new_layer(&self, backing: &Path) -> Result<PathBuf> {
        let path = self.layers_dir().join(format!("{}.qcow2", random_id()));
        let out = tokio::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(backing)
            .arg(&path)
            .output()
            .await?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("No space left") {
                return Err(VmError::NoSpace(err.trim().to_string()));
            }
            return Err(VmError::Failed(format!("qemu-img create: {}", err.trim())));
        }
        Ok(path)
    }

    /// Refuses work that could leave a running guest without disk for its RAM file. Guest RAM
    /// is a sparse file in the store: if the store fills up, the guest's next write to a new
    /// page kills QEMU (SIGBUS). So launches and snapshots check for room first and fail
    /// cleanly with `NoSpace` (the API's 507) while everything keeps running.
    pub fn ensure_free(&self, needed: u64, what: &str) -> Result<()> {
        let stat = nix::sys::statvfs::statvfs(&self.inner.store).map_err(|e| VmError::Io(e.into()))?;
        let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
        if free < needed + SPACE_MARGIN {
            return Err(VmError::NoSpace(format!(
                "{what} needs {} MiB free in {}, {} MiB left",
                (needed + SPACE_MARGIN) >> 20,
                self.inner.store.display(),
                free >> 20
            )));
        }
        Ok(())
    }

    fn prepare_run_dir(&self, sandbox_id: &str) -> Result<PathBuf> {
        let run = self.run_dir(sandbox_id);
        if run.exists() {
            return Err(VmError::Failed(format!("a VM for {sandbox_id} already exists")));
        }
        std::fs::create_dir_all(&run).map_err(|e| files::io_err("create run dir", e))?;
        Ok(run)
    }

    /// Restores `spec.image_dir` into a new VM and initialises the guest.
    pub async fn launch(&self, spec: LaunchSpec) -> Result<VmInfo> {
        let started = Instant::now();
        let meta = Self::read_meta(&spec.image_dir)?;
        // The guest may dirty all of its RAM.
        self.ensure_free((meta.memory_mb as u64) << 20, "a new sandbox")?;
        if !meta.memory || spec.cold_boot {
            return self.launch_cold(&spec, &meta).await;
        }
        let mut spec = spec;
        if !super::store::same_device(&spec.image_dir, &self.inner.store) {
            let (store, dir) = (self.inner.store.clone(), spec.image_dir.clone());
            spec.image_dir =
                tokio::task::spawn_blocking(move || super::store::import_image(&store, &dir)).await.expect("join")?;
        }
        let shape = spare::Shape {
            memory_mb: meta.memory_mb,
            vcpus: meta.vcpus,
            internet: spec.allow_internet || spec.egress.is_some(),
        };
        let ram_fill = spec.ram_fill.take();
        let ram_len = match &ram_fill {
            Some(f) => f.len,
            None => std::fs::metadata(spec.image_dir.join("mem.ram")).map(|m| m.len()).unwrap_or(0),
        };
        let wanted = self.run_dir(&spec.sandbox_id);
        let spare = if wanted.exists() { None } else { self.take_spare(shape, ram_len, &wanted) };
        let spare_proc = spare.as_ref().map(|s| (s.pid, s.envd_addr));
        let run = match spare {
            Some(_) => wanted,
            None => self.prepare_run_dir(&spec.sandbox_id)?,
        };
        let result = self.launch_in(&run, &spec, &meta, spare, ram_fill).await;
        if result.is_err()
            && let Some((pid, envd_addr)) = spare_proc
        {
            // Whichever step failed, the spare's QEMU goes with the run directory (a no-op if
            // it was stopped already, or replaced by a new QEMU).
            stop_vm(pid, &self.qmp_path(&run), envd_addr).await;
        }
        self.refill_spares(shape);
        match result {
            Ok(vm) => {
                tracing::info!(sandbox = %spec.sandbox_id, ms = started.elapsed().as_millis() as u64, "vm restored");
                Ok(vm)
            }
            Err(e) => {
                self.cleanup_run_dir(&run).await;
                Err(e)
            }
        }
    }

    /// Restores into run directory `run`: a new QEMU, or `spare` (already moved to `run`); its
    /// RAM from `ram_fill`, else from the image's `mem.ram`.
    async fn launch_in(
        &self,
        run: &Path,
        spec: &LaunchSpec,
        meta: &ImageMeta,
        spare: Option<spare::Spare>,
        ram_fill: Option<super::RamFill>,
    ) -> Result<VmInfo> {
        let ram_src = spec.image_dir.join("mem.ram");
        let ram = qemu::ram_path(run);
        let t0 = Instant::now();
        // A reflink writes back the source's dirty pages first: an image whose files are not on
        // disk yet is copied (from the page cache) instead.
        let mode = if files::unsynced(&spec.image_dir) { RestoreRam::Copy } else { restore_ram_mode() };
        // On an error a spare is stopped by the caller.
        let copy = match ram_fill {
            Some(fill) => Some(start_fill(&ram, fill, spare.is_some())?),
            None => prepare_ram(&ram_src, &ram, mode, spare.is_some())?,
        };
        let prepared_ms = t0.elapsed().as_millis() as u64;
        let disk = self.new_layer(&meta.disk_layer).await?;
        std::os::unix::fs::symlink(&disk, run.join("disk"))?;
        let t1 = Instant::now();
        let attached = match &spare {
            Some(s) => match self.attach_spare(s, &disk).await {
                Ok(qmp) => Some((s.pid, s.envd_addr, qmp)),
                Err(e) => {
                    // Nothing of the image is in it yet: a new QEMU restores it instead, into
                    // the same RAM file (still being filled, if it is a copy).
                    tracing::warn!(sandbox = %spec.sandbox_id, error = %e, "finishing a spare VM failed; starting a new QEMU");
                    stop_vm(s.pid, &self.qmp_path(run), s.envd_addr).await;
                    self.forget_spare(run);
                    None
                }
            },
            None => None,
        };
        let qmp_path = self.qmp_path(run);
        let spawned = match attached {
            Some((pid, addr, qmp)) => Ok((pid, addr, Some(qmp))),
            None => self
                .spawn_vm(run, &qmp_path, meta.memory_mb, meta.vcpus, Some(&disk), spec.allow_internet || spec.egress.is_some(), &Boot::Incoming)
                .await
                .map(|(pid, addr)| (pid, addr, None)),
        };
        let (copied, ram_ms) = match copy {
            Some(copy) => copy.await.expect("join"),
            None => (Ok(()), prepared_ms),
        };
        let (pid, envd_addr, qmp) = spawned?;
        // The guest runs only after `cont` below: its rules are in place before its first packet.
        // A new namespace has no table: open rules need none (an update installs one later).
        let firewalled = match &spec.egress {
            Some(egress) if !egress.is_open() => net::apply_egress(envd_addr, egress),
            _ => Ok(()),
        };
        if let Err(e) = copied.and(firewalled) {
            stop_vm(pid, &qmp_path, envd_addr).await;
            return Err(e);
        }
        let vm = VmInfo {
            pid,
            envd_addr,
            run_dir: run.to_path_buf(),
            memory_mb: meta.memory_mb,
            vcpus: meta.vcpus,
            disk_size_mb: meta.disk_size_mb,
            boot: meta.boot.clone(),
        };
        let spawn_ms = t1.elapsed().as_millis() as u64;
        // For `reap_unknown`: a VM whose launch was never recorded can still be found.
        files::write_atomic(&run.join("vm.json"), &serde_json::to_vec(&vm).expect("json"))?;
        let restore = async {
            let t2 = Instant::now();
            let mut qmp = match qmp {
                Some(qmp) => qmp,
                None => Qmp::connect(&qmp_path, Duration::from_secs(10)).await?,
            };
            qmp.execute("migrate-set-capabilities", json!({"capabilities": [{"capability": "x-ignore-shared", "state": true}]}))
                .await?;
            let state = spec.image_dir.join("state.bin");
            qmp.execute("migrate-incoming", json!({"uri": format!("file:{}", state.display())})).await?;
            qmp.wait_migration(Duration::from_secs(60)).await?;
            // QEMU keeps a restored VM paused when the source was paused while saved.
            qmp.execute("cont", json!({})).await?;
            let load_ms = t2.elapsed().as_millis() as u64;
            let t3 = Instant::now();
            guest::init(vm.envd_addr, &spec.init, INIT_DEADLINE).await?;
            let init_ms = t3.elapsed().as_millis() as u64;
            tracing::debug!(ram_ms, spawn_ms, load_ms, init_ms, spare = spare.is_some(), "restore phases");
            Ok::<(), VmError>(())
        };
        if let Err(e) = restore.await {
            return Err(abandon_launch(pid, &qmp_path, envd_addr, run, &spec.sandbox_id, "restore", e).await);
        }
        Ok(vm)
    }

    /// Spawns QEMU in its own network slot; without namespaces, retries with another
    /// loopback port if the forward's port was taken meanwhile.
    #[allow(clippy::too_many_arguments)]
    async fn spawn_vm(
        &self,
        run: &Path,
        qmp: &Path,
        memory_mb: u32,
        vcpus: u32,
        disk: Option<&Path>,
        allow_internet: bool,
        boot: &Boot<'_>,
    ) -> Result<(u32, std::net::SocketAddr)> {
        let mut last = None;
        for _ in 0..5 {
            let slot = tokio::task::spawn_blocking(move || net::create(allow_internet, qemu::free_port))
                .await
                .expect("join")?;
            let spec = MachineSpec {
                run_dir: run,
                qmp,
                accel: self.inner.accel,
                memory_mb,
                vcpus,
                disk,
                envd_addr: slot.envd_addr,
                netns: slot.netns.as_deref(),
                allow_internet,
                boot: match boot {
                    Boot::Incoming => Boot::Incoming,
                    Boot::Kernel { kernel, initrd, cmdline } => Boot::Kernel { kernel, initrd, cmdline },
                },
                // No disk yet: a spare, finished by the restore that takes it.
                preconfig: disk.is_none(),
            };
            match qemu::spawn(&spec).await {
                Ok(pid) => return Ok((pid, slot.envd_addr)),
                Err(e) => {
                    net::destroy(slot.envd_addr);
                    match e {
                        VmError::Failed(msg) if slot.netns.is_none() && msg.contains("host forwarding") => {
                            last = Some(VmError::Failed(msg))
                        }
                        e => return Err(e),
                    }
                }
            }
        }
        Err(last.unwrap_or_else(|| VmError::Failed("could not start qemu".into())))
    }

    /// Makes a warm-pool VM a sandbox: the create's token and env vars, the host's clock and
    /// fresh entropy (envd `/init`). Fails, and the VM must not be used, if it died or envd does
    /// not answer within `deadline`.
    pub async fn hand_out(&self, vm: &VmInfo, init: &GuestInit, deadline: Duration) -> Result<()> {
        if !self.is_alive(vm) {
            return Err(VmError::Failed("the pooled VM is gone".into()));
        }
        guest::init(vm.envd_addr, init, deadline).await
    }

    /// Runs what a sandbox's first command runs (a login shell, as root and as `user`) so a
    /// pooled VM has translated and cached it before it is handed out.
    pub async fn warm_up(&self, vm: &VmInfo) -> Result<()> {
        guest::run_shell(vm.envd_addr, "true", Duration::from_secs(60)).await?;
        guest::run_as(vm.envd_addr, "user", "/bin/bash", &["-l", "-c", "true"], Duration::from_secs(60)).await
    }

    /// Cold-boots a kernel on `base_layer` (used only by template builds) and waits for envd.
    #[allow(clippy::too_many_arguments)]
    pub async fn boot_cold(
        &self,
        name: &str,
        base_layer: &Path,
        boot: &BootSpec,
        memory_mb: u32,
        vcpus: u32,
        disk_size_mb: u32,
    ) -> Result<VmInfo> {
        let run = self.run_dir(name);
        if run.exists() {
            self.cleanup_run_dir(&run).await;
        }
        let run = self.prepare_run_dir(name)?;
        let disk = self.new_layer(base_layer).await?;
        std::os::unix::fs::symlink(&disk, run.join("disk"))?;
        let qmp_path = self.qmp_path(&run);
        let kernel = Boot::Kernel { kernel: &boot.kernel, initrd: &boot.initrd, cmdline: &boot.cmdline };
        let (pid, envd_addr) = self.spawn_vm(&run, &qmp_path, memory_mb, vcpus, Some(&disk), false, &kernel).await?;
        let vm = VmInfo { pid, envd_addr, run_dir: run.clone(), memory_mb, vcpus, disk_size_mb, boot: Some(boot.clone()) };
        files::write_atomic(&run.join("vm.json"), &serde_json::to_vec(&vm).expect("json"))?;
        let alive = || qemu::is_our_qemu(pid, &qmp_path) && !qemu::guest_panicked(&run);
        if let Err(e) = guest::wait_healthy(vm.envd_addr, BOOT_DEADLINE, alive).await {
            let console = std::fs::read_to_string(qemu::console_path(&run)).unwrap_or_default();
            self.kill(&vm).await?;
            return Err(VmError::Failed(format!("{e}\n--- guest console (tail) ---\n{}", tail(&console, 3000))));
        }
        guest::init(vm.envd_addr, &GuestInit::default(), INIT_DEADLINE).await?;
        // Pull what nearly every first command touches into the guest's page cache; clones
        // inherit it with the memory image.
        let warm = "python3 -c 'import json, os, sys, subprocess, socket, time, pathlib, re'; \
                    id >/dev/null; ls /usr/bin /usr/local/bin >/dev/null; cat /etc/os-release >/dev/null; sync";
        if let Err(e) = guest::run_shell(vm.envd_addr, warm, Duration::from_secs(120)).await {
            tracing::warn!("template warm-up failed (continuing): {e}");
        }
        Ok(vm)
    }

    /// Captures memory + disk of a running VM into `dest` (an empty directory the caller
    /// created). The VM keeps running. Returns the image's metadata (also written to
    /// `dest/meta.json`).
    pub async fn snapshot(&self, vm: &VmInfo, dest: &Path) -> Result<ImageMeta> {
        let started = Instant::now();
        let qmp_path = self.qmp_path(&vm.run_dir);
        let ram = qemu::ram_path(&vm.run_dir);
        // After the reflink every page the source writes is copied on write.
        self.ensure_free(files::allocated_bytes(&ram), "a snapshot")?;
        let mut qmp = Qmp::connect(&qmp_path, Duration::from_secs(5)).await?;
        qmp.execute("migrate-set-capabilities", json!({"capabilities": [{"capability": "x-ignore-shared", "state": true}]}))
            .await?;
        let swap = self.prepare_swap(vm, &mut qmp).await?;
        let frozen_layer = swap.frozen.clone();

        // Flush the guest's dirty RAM pages while it still runs: a reflink must write them
        // out first, and doing that inside the freeze is what would make it long.
        files::fsync_path(&ram)?;
        qmp.execute("stop", json!({})).await?;
        let frozen_at = Instant::now();
        let captured = async {
            self.swap_top_layer(vm, &mut qmp, &swap).await?;
            let state = dest.join("state.bin");
            qmp.execute("migrate", json!({"uri": format!("file:{}", state.display())})).await?;
            qmp.wait_migration(Duration::from_secs(60)).await?;
            let (src, dst) = (ram.clone(), dest.join("mem.ram"));
            tokio::task::spawn_blocking(move || files::clone_sparse(&src, &dst)).await.expect("join")
        }
        .await;
        // Whatever happened, the source runs again.
        let resumed = qmp.execute("cont", json!({})).await;
        let frozen_ms = frozen_at.elapsed().as_millis() as u64;
        let reflinked = captured?;
        resumed?;

        // Durability, outside the freeze: image files reach the disk before the caller
        // publishes the image.
        for f in ["mem.ram", "state.bin"] {
            files::fsync_path(&dest.join(f))?;
        }
        files::fsync_path(&frozen_layer)?;
        let size_bytes = files::allocated_bytes(&dest.join("mem.ram"))
            + files::allocated_bytes(&dest.join("state.bin"))
            + files::allocated_bytes(&frozen_layer);
        let meta = ImageMeta {
            memory_mb: vm.memory_mb,
            vcpus: vm.vcpus,
            disk_size_mb: vm.disk_size_mb,
            disk_layer: frozen_layer,
            envd_version: crate::vm::ENVD_VERSION.to_string(),
            size_bytes,
            frozen_ms,
            capture_ms: started.elapsed().as_millis() as u64,
            memory: true,
            boot: vm.boot.clone(),
        };
        files::write_atomic(&dest.join("meta.json"), &serde_json::to_vec_pretty(&meta).expect("json"))?;
        files::fsync_path(dest)?;
        // The guest's clock stood still while it was stopped.
        if let Err(e) = guest::sync_clock(vm.envd_addr).await {
            tracing::warn!("could not resync the source's clock after the snapshot: {e}");
        }
        tracing::info!(
            frozen_ms,
            total_ms = started.elapsed().as_millis() as u64,
            size_mib = size_bytes >> 20,
            reflink = reflinked,
            "snapshot captured into {}",
            dest.display()
        );
        Ok(meta)
    }

    /// Makes QEMU forward guest TCP `port` (slirp `hostfwd_add`) and returns where sandboxd
    /// reaches it. Adding a forward that exists already succeeds (after a sandboxd restart
    /// the forwards of a running VM are unknown to it).
    pub async fn forward_port(&self, vm: &VmInfo, port: u16) -> Result<std::net::SocketAddr> {
        let addr = net::port_addr(vm.envd_addr, port)?;
        let qmp_path = self.qmp_path(&vm.run_dir);
        let add = async {
            let mut qmp = Qmp::connect(&qmp_path, Duration::from_secs(5)).await?;
            let cmd = format!("hostfwd_add net0 tcp:{}:{}-:{port}", addr.ip(), addr.port());
            qmp.execute("human-monitor-command", json!({ "command-line": cmd })).await
        };
        // QMP serves one client at a time: a snapshot in progress delays this.
        let out = tokio::time::timeout(Duration::from_secs(60), add)
            .await
            .map_err(|_| VmError::Failed("QMP busy: port forward timed out".into()))??;
        let msg = out.as_str().unwrap_or_default().trim();
        // In the VM's own namespace only QEMU can hold that address: the forward exists.
        let exists = msg.contains("Could not set up host forwarding rule") && net::slot_of(vm.envd_addr).is_some();
        if !msg.is_empty() && !exists {
            return Err(VmError::Failed(format!("hostfwd_add: {msg}")));
        }
        Ok(addr)
    }

    /// Replaces the egress rules of a running VM.
    pub fn set_egress(&self, vm: &VmInfo, egress: &crate::network::Egress) -> Result<()> {
        net::apply_egress(vm.envd_addr, egress)
    }

    /// Names the layer a VM's disk is about to be frozen in and the fresh one it continues on.
    async fn prepare_swap(&self, vm: &VmInfo, qmp: &mut Qmp) -> Result<LayerSwap> {
        let node = qmp.disk_top_node().await?;
        let next_node = format!("disk{}", node.trim_start_matches("disk").parse::<u64>().unwrap_or(0) + 1);
        Ok(LayerSwap {
            frozen: std::fs::read_link(vm.run_dir.join("disk"))?,
            new_top: self.layers_dir().join(format!("{}.qcow2", random_id())),
            node,
            next_node,
        })
    }

    /// Freezes the VM's current top disk layer (QEMU flushes it first) and moves the VM onto
    /// a fresh layer above it. Called while the VM is stopped.
    async fn swap_top_layer(&self, vm: &VmInfo, qmp: &mut Qmp, swap: &LayerSwap) -> Result<()> {
        qmp.execute(
            "blockdev-snapshot-sync",
            json!({"node-name": swap.node, "snapshot-file": swap.new_top.display().to_string(),
                   "snapshot-node-name": swap.next_node, "format": "qcow2"}),
        )
        .await?;
        // From here on the VM writes to `new_top`; `frozen` is the image's disk.
        let link = vm.run_dir.join("disk.new");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&swap.new_top, &link)?;
        std::fs::rename(&link, vm.run_dir.join("disk"))?;
        Ok(())
    }

    /// Kills the VM and frees its run directory and its private top layer. Idempotent.
    pub async fn kill(&self, vm: &VmInfo) -> Result<()> {
        let qmp_path = self.qmp_path(&vm.run_dir);
        stop_vm(vm.pid, &qmp_path, vm.envd_addr).await;
        self.cleanup_run_dir(&vm.run_dir).await;
        Ok(())
    }

    async fn cleanup_run_dir(&self, run: &Path) {
        // The current top layer belongs to this VM alone (images only reference frozen
        // layers), so it goes with it.
        if let Ok(top) = std::fs::read_link(run.join("disk")) {
            let _ = std::fs::remove_file(top);
        }
        if let Some(link) = self.spare_link(run) {
            let _ = std::fs::remove_file(link);
        }
        let _ = std::fs::remove_file(self.qmp_path(run));
        let _ = tokio::fs::remove_dir_all(run).await;
    }

    /// Kills VMs (and frees their run directories) that sandboxd has no record of: launched
    /// just before a crash, before the store committed them. `known` are the VMs the store
    /// knows. Returns how many were reaped.
    pub async fn reap_unknown(&self, known: &[VmInfo]) -> usize {
        let known: std::collections::HashSet<&Path> = known.iter().map(|v| v.run_dir.as_path()).collect();
        let mut reaped = 0;
        let Ok(entries) = std::fs::read_dir(self.inner.store.join("run")) else { return 0 };
        for entry in entries.flatten() {
            let run = entry.path();
            if known.contains(run.as_path()) {
                continue;
            }
            self.reap_dir(&run).await;
            tracing::info!(run = %run.display(), "reaped a VM sandboxd had no record of");
            reaped += 1;
        }
        reaped + self.reap_spares().await
    }

    /// Kills the VM a run directory records (`vm.json`) and frees the directory.
    async fn reap_dir(&self, run: &Path) {
        match std::fs::read(run.join("vm.json")).ok().and_then(|b| serde_json::from_slice::<VmInfo>(&b).ok()) {
            Some(vm) => {
                let _ = self.kill(&vm).await;
            }
            None => {
                // A crash between QEMU's start and `vm.json`: QEMU's own pid file names it
                // (`kill` checks that the pid is still that QEMU).
                let pid = std::fs::read_to_string(qemu::pid_path(run)).ok().and_then(|p| p.trim().parse().ok());
                if let Some(pid) = pid {
                    qemu::kill(pid, &self.qmp_path(run)).await;
                }
                self.cleanup_run_dir(run).await
            }
        }
    }

    /// The VM launched for `sandbox_id`, as its run directory records it (`vm.json`).
    pub fn recorded_vm(&self, sandbox_id: &str) -> Option<VmInfo> {
        let raw = std::fs::read(self.run_dir(sandbox_id).join("vm.json")).ok()?;
        serde_json::from_slice(&raw).ok()
    }

    /// Free bytes in the store.
    pub fn store_free_bytes(&self) -> u64 {
        nix::sys::statvfs::statvfs(&self.inner.store)
            .map(|st| st.blocks_available() * st.fragment_size())
            .unwrap_or(0)
    }

    /// True when the store is so full that a guest disk write may fail (QEMU then stops the
    /// VM: `werror=enospc`, the default, keeps the guest's data and shows it no error).
    pub fn store_nearly_full(&self) -> bool {
        self.store_free_bytes() < SPACE_MARGIN
    }

    /// Continues a VM that QEMU stopped because a disk write found the store full, once the
    /// store has room again. Returns true when it did. The guest sees a pause, not an error:
    /// the failed write is retried.
    pub async fn resume_after_io_error(&self, vm: &VmInfo) -> Result<bool> {
        if self.store_nearly_full() {
            return Ok(false);
        }
        let mut qmp = Qmp::connect(&self.qmp_path(&vm.run_dir), Duration::from_secs(5)).await?;
        let status = qmp.execute("query-status", json!({})).await?;
        if status.get("status").and_then(|s| s.as_str()) != Some("io-error") {
            return Ok(false);
        }
        qmp.execute("cont", json!({})).await?;
        if let Err(e) = guest::sync_clock(vm.envd_addr).await {
            tracing::warn!("could not resync the guest's clock after a full-store pause: {e}");
        }
        Ok(true)
    }

    /// Resolves when the VM's QEMU process exits (or might have: check [`Runtime::is_alive`]).
    pub async fn exited(&self, vm: &VmInfo) {
        qemu::wait_exit(vm.pid).await
    }

    /// True when the VM's QEMU process is still alive (used after a sandboxd restart).
    pub fn is_alive(&self, vm: &VmInfo) -> bool {
        qemu::is_our_qemu(vm.pid, &self.qmp_path(&vm.run_dir))
    }

    /// Deletes disk layers that neither an image nor a VM references any more (mark and
    /// sweep), and run directories of VMs that are gone. `image_layers` are the
    /// `disk_layer`s of every image that still exists (templates, snapshots, paused
    /// sandboxes); running VMs are found in `<data>/run`. Returns the bytes freed.
    pub fn collect_garbage(&self, image_layers: &[PathBuf]) -> Result<u64> {
        let mut roots: Vec<PathBuf> = image_layers.to_vec();
        for entry in std::fs::read_dir(self.inner.store.join("run"))?.flatten() {
            if let Ok(top) = std::fs::read_link(entry.path().join("disk")) {
                roots.push(top);
            }
        }
        let live = files::qcow2_chains(roots);
        let mut freed = 0;
        for entry in std::fs::read_dir(self.layers_dir())?.flatten() {
            let path = entry.path();
            // A young layer may belong to a launch or snapshot in flight that has not linked
            // it yet.
            let young = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| t.elapsed().map(|e| e < gc_min_age()).unwrap_or(true))
                .unwrap_or(true);
            if !live.contains(&path) && !young {
                freed += files::allocated_bytes(&path);
                std::fs::remove_file(&path)?;
                tracing::debug!("freed layer {}", path.display());
            }
        }
        Ok(freed)
    }
}

/// How a restore makes the guest's own RAM file from the image's (`SANDBOXD_RESTORE_RAM`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RestoreRam {
    /// A copy of the image's data (the default), filled while QEMU starts: every block the
    /// guest writes is its own from the start, so a full store never kills a running guest.
    Copy,
    /// A reflink: constant time, nothing copied, less page cache per clone; each image page the
    /// guest first writes is copied on write by the filesystem, which on a full store fails
    /// and kills the guest (SIGBUS). Falls back to `Copy` where the store cannot reflink.
    Reflink,
}

/// `SANDBOXD_RESTORE_RAM=copy|reflink` (default `copy`); anything else is refused at start
/// (see [`check_restore_ram`]).
pub fn restore_ram_mode() -> RestoreRam {
    restore_ram_from_env().unwrap_or(RestoreRam::Copy)
}

fn restore_ram_from_env() -> std::result::Result<RestoreRam, String> {
    parse_restore_ram(std::env::var("SANDBOXD_RESTORE_RAM").ok().as_deref())
}

fn parse_restore_ram(v: Option<&str>) -> std::result::Result<RestoreRam, String> {
    match v.map(str::trim) {
        None | Some("") | Some("copy") => Ok(RestoreRam::Copy),
        Some("reflink") => Ok(RestoreRam::Reflink),
        Some(other) => Err(format!("SANDBOXD_RESTORE_RAM must be `copy` or `reflink`, not {other:?}")),
    }
}

/// Refuses a malformed `SANDBOXD_RESTORE_RAM` (called once at start-up).
pub fn check_restore_ram() -> std::result::Result<(), String> {
    restore_ram_from_env().map(|_| ())
}

/// The background copy of [`prepare_ram`]: its result and how long it took, in ms.
type RamCopy = tokio::task::JoinHandle<(Result<()>, u64)>;

/// Makes `ram`, the guest's own RAM file, from the image's `ram_src`: a reflink, or a sparse file
/// whose data is copied in the background while QEMU starts (the returned task; QEMU only maps
/// the file, and reads it once `migrate-incoming` runs, after the copy is complete). Either way
/// every block the file does not share is allocated now, so a full store fails this launch (507)
/// instead of killing a running guest later (SIGBUS on a page fault), except, for a reflink,
/// the blocks shared with the image, copied on the guest's first write to them (like a
/// snapshot source's after a snapshot, docs/reliability.md).
///
/// `existing`: `ram` is a spare VM's sparse RAM file (mapped by its QEMU, never touched), filled
/// in place instead of created.
fn prepare_ram(ram_src: &Path, ram: &Path, mode: RestoreRam, existing: bool) -> Result<Option<RamCopy>> {
    if mode == RestoreRam::Reflink {
        if let Some(f) = files::reflink(ram_src, ram, existing)? {
            files::reserve_blocks(&f)?;
            return Ok(None);
        }
    }
    let ram_file = if existing { files::open_sized(ram_src, ram)? } else { files::create_sized(ram_src, ram)? };
    files::reserve_blocks(&ram_file)?;
    let (t0, ram_src) = (Instant::now(), ram_src.to_path_buf());
    Ok(Some(tokio::task::spawn_blocking(move || {
        let r = files::fill_data(&ram_src, &ram_file);
        let ms = t0.elapsed().as_millis() as u64;
        tracing::debug!(ms, src = %ram_src.display(), "ram copied");
        (r, ms)
    })))
}

/// Like [`prepare_ram`], with `fill` writing the RAM file instead of a copy of the image's.
fn start_fill(ram: &Path, fill: super::RamFill, existing: bool) -> Result<RamCopy> {
    let ram_file = if existing { files::open_with_length(fill.len, ram)? } else { files::create_with_length(fill.len, ram)? };
    files::reserve_blocks(&ram_file)?;
    let t0 = Instant::now();
    Ok(tokio::spawn(async move {
        let r = (fill.fill)(ram_file).await;
        (r, t0.elapsed().as_millis() as u64)
    }))
}

/// How old an unreferenced disk layer must be before the GC deletes it
/// (`SANDBOXD_GC_MIN_AGE_SECS`, default 60; tests set 0 to check for orphans right away).
fn gc_min_age() -> Duration {
    static AGE: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *AGE.get_or_init(|| {
        let secs = std::env::var("SANDBOXD_GC_MIN_AGE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(60);
        Duration::from_secs(secs)
    })
}

/// A top-layer swap: `frozen` becomes read-only image disk, the VM continues on `new_top`.
struct LayerSwap {
    frozen: PathBuf,
    new_top: PathBuf,
    node: String,
    next_node: String,
}

/// Kills a VM's QEMU and deletes its network namespace.
async fn stop_vm(pid: u32, qmp: &Path, envd_addr: std::net::SocketAddr) {
    qemu::kill(pid, qmp).await;
    net::destroy(envd_addr);
}

/// A launch (`what`: restore, cold boot) failed after QEMU started: stops the VM and logs the
/// tail of its console, which usually says why. Returns the error for the caller.
async fn abandon_launch(
    pid: u32,
    qmp: &Path,
    envd_addr: std::net::SocketAddr,
    run: &Path,
    sandbox_id: &str,
    what: &str,
    e: VmError,
) -> VmError {
    stop_vm(pid, qmp, envd_addr).await;
    let console = std::fs::read_to_string(qemu::console_path(run)).unwrap_or_default();
    tracing::warn!(sandbox = %sandbox_id, "{what} failed: {e}; console tail: {}", tail(&console, 2000));
    e
}

pub fn random_id() -> String {
    let bytes: [u8; 12] = rand::random();
    hex::encode(bytes)
}

fn tail(s: &str, n: usize) -> &str {
    let start = s.len().saturating_sub(n);
    let start = (start..s.len()).find(|&i| s.is_char_boundary(i)).unwrap_or(s.len());
    &s[start..]
}

#[cfg(test)]
mod restore_ram_tests {
    use super::*;

    #[test]
    fn restore_ram_mode_parses_and_refuses_the_unknown() {
        assert_eq!(parse_restore_ram(None), Ok(RestoreRam::Copy));
        assert_eq!(parse_restore_ram(Some(" copy ")), Ok(RestoreRam::Copy));
        assert_eq!(parse_restore_ram(Some("reflink")), Ok(RestoreRam::Reflink));
        let e = parse_restore_ram(Some("lazy")).unwrap_err();
        assert!(e.contains("`copy` or `reflink`") && e.contains("lazy"), "{e}");
    }

    /// An 8 MiB image RAM file in `dir` holding `len` bytes of `byte` at `at`, holes elsewhere.
    fn image_ram(dir: &Path, byte: u8, len: usize, at: u64) -> PathBuf {
        use std::os::unix::fs::FileExt;
        let src = dir.join("image.ram");
        let f = std::fs::File::create(&src).unwrap();
        f.set_len(8 << 20).unwrap();
        f.write_all_at(&vec![byte; len], at).unwrap();
        src
    }

    #[tokio::test]
    async fn a_ram_file_made_either_way_holds_the_image_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let src = image_ram(dir.path(), 9, 12288, 1 << 20);
        for (mode, name) in [(RestoreRam::Reflink, "a.ram"), (RestoreRam::Copy, "b.ram")] {
            let dst = dir.path().join(name);
            if let Some(copy) = prepare_ram(&src, &dst, mode, false).unwrap() {
                copy.await.unwrap().0.unwrap();
            }
            assert_eq!(std::fs::read(&src).unwrap(), std::fs::read(&dst).unwrap(), "{mode:?}");
            assert!(prepare_ram(&src, &dst, mode, false).is_err(), "{mode:?}: an existing file is never overwritten");
        }
    }

    #[tokio::test]
    async fn a_spare_vms_ram_file_is_filled_in_place_and_only_if_it_fits() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let src = image_ram(dir.path(), 7, 8192, 3 << 20);
        for (mode, name) in [(RestoreRam::Reflink, "a.ram"), (RestoreRam::Copy, "b.ram")] {
            let dst = dir.path().join(name);
            let spare = std::fs::File::create(&dst).unwrap();
            spare.set_len(8 << 20).unwrap();
            let inode = spare.metadata().unwrap().ino();
            if let Some(copy) = prepare_ram(&src, &dst, mode, true).unwrap() {
                copy.await.unwrap().0.unwrap();
            }
            assert_eq!(std::fs::read(&src).unwrap(), std::fs::read(&dst).unwrap(), "{mode:?}");
            // The very file the spare's QEMU mapped, not a new one under its name.
            assert_eq!(std::fs::metadata(&dst).unwrap().ino(), inode, "{mode:?}");
            let small = dir.path().join(format!("small-{name}"));
            std::fs::File::create(&small).unwrap().set_len(4 << 20).unwrap();
            let e = prepare_ram(&src, &small, mode, true).err().expect("a RAM file of another size is refused");
            assert!(e.to_string().contains("bytes"), "{e}");
        }
    }
}
