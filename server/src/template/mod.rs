//! Template builds: a Debian rootfs with envd, booted once under QEMU and snapshotted into an
//! image, so that every sandbox is a restore and never a boot.
//!
//! A template directory is self-contained: `templates/<name>/` holds the image (`meta.json`,
//! `mem.ram`, `state.bin`) and its disk layers sit in `templates/.layers/`, outside any data
//! directory's garbage collection, so one template cache can serve several data directories
//! (the test suite shares one). The build runs in `templates/.build/` and the finished image
//! appears by a rename: a half-built template is never used.

mod initramfs;
mod progress;
mod rootfs;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::vm::{self, Runtime};
use progress::Progress;

/// Guest shape of the `base` template (E2B's default sandbox has 512 MiB).
pub const BASE_MEMORY_MB: u32 = 512;
pub const BASE_VCPUS: u32 = 1;
pub const BASE_DISK_MB: u32 = 2048;

const KERNEL_CMDLINE: &str =
    "console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off random.trust_cpu=on 8250.nr_uarts=1 nokaslr";

/// Makes sure `templates_dir/base` exists: builds it when it is missing. An existing template
/// is used as it is, even if it was built with another envd: the templates directory may be
/// shared by several servers, and only an explicit `sandboxd template build` replaces it.
pub async fn ensure_base(templates_dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = templates_dir.join("base");
    if dir.join("meta.json").exists() {
        return Ok(dir);
    }
    build_base(templates_dir, false).await
}

/// Builds (or reuses, unless `force`) the `base` template.
pub async fn build_base(templates_dir: &Path, force: bool) -> anyhow::Result<PathBuf> {
    build(templates_dir, "base", BASE_MEMORY_MB, force).await
}

/// Builds (or reuses, unless `force`) a template under `templates_dir/<name>`: the base
/// rootfs booted with `memory_mb` of guest RAM, showing progress. Returns the image directory.
///
/// A built template is reused only while it was built with the same envd binary
/// (`templates/base/envd.sha256`): a changed agent means a rebuild, so a cached template never
/// runs a stale envd.
pub async fn build(templates_dir: &Path, name: &str, memory_mb: u32, force: bool) -> anyhow::Result<PathBuf> {
    let final_dir = templates_dir.join(name);
    let envd = find_envd()?;
    let envd_hash = rootfs::short_hash(std::fs::read(&envd).with_context(|| format!("read {}", envd.display()))?);
    let up_to_date = |dir: &Path| {
        Runtime::read_meta(dir).is_ok_and(|m| m.memory_mb == memory_mb)
            && std::fs::read_to_string(dir.join("envd.sha256")).is_ok_and(|h| h.trim() == envd_hash)
    };
    if !force && up_to_date(&final_dir) {
        return Ok(final_dir);
    }
    std::fs::create_dir_all(templates_dir)?;
    let templates_dir = std::path::absolute(templates_dir)?;
    let final_dir = templates_dir.join(name);
    let _lock = lock(&templates_dir.join(".build.lock"))?;
    if !force && up_to_date(&final_dir) {
        return Ok(final_dir); // built by someone else while we waited for the lock
    }
    let started = std::time::Instant::now();
    let progress = Progress::new(6);
    let build = templates_dir.join(".build");
    if build.join("data").exists() {
        // A build that was interrupted may have left its VM running.
        Runtime::scratch(&build.join("data")).await?.reap_unknown(&[]).await;
    }
    let _ = std::fs::remove_dir_all(&build);
    std::fs::create_dir_all(&build)?;
    let layers = templates_dir.join(".layers");
    std::fs::create_dir_all(&layers)?;

    progress.step("locating the guest kernel and envd");
    let kernel = vm::accel::guest_kernel()
        .context("no guest kernel in /boot: install Debian's linux-image-amd64 (scripts/install-deps.sh)")?;
    progress.detail(&format!("kernel {}, envd {} ({envd_hash})", kernel.display(), envd.display()));

    progress.step("building the Debian rootfs (debootstrap)");
    let root = build.join("rootfs");
    rootfs::debootstrap_cached(&root, &templates_dir.join(".cache"), &progress).await?;
    rootfs::customize(&root, &envd)?;

    progress.step("creating the disk image");
    let rootfs_layer = layers.join(format!("rootfs-{}.qcow2", vm::random_id()));
    rootfs::make_disk(&root, &build.join("rootfs.raw"), &rootfs_layer, BASE_DISK_MB).await?;
    std::fs::remove_dir_all(&root).ok();

    progress.step("creating the initramfs");
    let initrd = build.join("initrd.img");
    initramfs::build(&kernel, &build.join("initramfs"), &initrd).await?;

    progress.step("booting the template VM");
    let rt = Runtime::scratch(&build.join("data")).await?;
    let cmdline = KERNEL_CMDLINE.to_string();
    let boot_started = std::time::Instant::now();
    let vm = rt
        .boot_cold(&format!("template-{name}"), &rootfs_layer, &kernel, &initrd, &cmdline, memory_mb, BASE_VCPUS, BASE_DISK_MB)
        .await?;
    progress.detail(&format!("guest up in {:.1} s ({})", boot_started.elapsed().as_secs_f64(), rt.accel()));

    progress.step("snapshotting the booted template");
    let tmp = templates_dir.join(format!(".tmp-{name}"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let snap = rt.snapshot(&vm, &tmp).await;
    rt.kill(&vm).await?;
    let mut meta = snap?;
    // Move the frozen layer out of the scratch data dir next to the rootfs layer.
    let layer = layers.join(meta.disk_layer.file_name().context("layer name")?);
    move_file(&meta.disk_layer, &layer)?;
    meta.disk_layer = layer;
    vm::files::write_atomic(&tmp.join("meta.json"), &serde_json::to_vec_pretty(&meta)?)?;
    vm::files::write_atomic(&tmp.join("envd.sha256"), envd_hash.as_bytes())?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir)?;
    }
    std::fs::rename(&tmp, &final_dir)?;
    vm::files::fsync_path(&templates_dir)?;
    std::fs::remove_dir_all(&build).ok();
    progress.finish(&format!(
        "template {name} built in {:.0} s ({} MiB on disk)",
        started.elapsed().as_secs_f64(),
        meta.size_bytes >> 20
    ));
    Ok(final_dir)
}

/// The envd binary to install in the guest: `$SANDBOXD_ENVD`, else `envd` next to this
/// executable, else on PATH.
fn find_envd() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("SANDBOXD_ENVD") {
        return Ok(PathBuf::from(p));
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            candidates.push(dir.join("envd"));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("envd")));
    }
    match candidates.into_iter().find(|p| p.is_file()) {
        Some(p) => Ok(p),
        None => bail!("envd binary not found: build it (cargo build -p envd) and set SANDBOXD_ENVD or put it next to sandboxd"),
    }
}

fn move_file(from: &Path, to: &Path) -> anyhow::Result<()> {
    if std::fs::rename(from, to).is_err() {
        std::fs::copy(from, to).with_context(|| format!("copy {} -> {}", from.display(), to.display()))?;
        std::fs::remove_file(from)?;
    }
    vm::files::fsync_path(to)?;
    Ok(())
}

/// An exclusive lock held for the whole build (two builds would fight over `.build`).
fn lock(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
    // SAFETY: flock on an fd we own; blocks until the other build finishes.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        bail!("cannot lock {}: {}", path.display(), std::io::Error::last_os_error());
    }
    Ok(f)
}
