//! Template builds: a Debian rootfs with envd, booted once under QEMU and snapshotted into an
//! image, so that every sandbox is a restore and never a boot.
//!
//! A template directory is self-contained: `templates/<name>/` holds the image (`meta.json`,
//! `mem.ram`, `state.bin`) and its disk layers sit in `templates/.layers/`, outside any data
//! directory's garbage collection, so one template cache can serve several data directories
//! (the test suite shares one). What a cold boot over a template's (or any image's) disk needs,
//! the kernel and initramfs, is kept in `templates/.boot/<hash>/` and referenced from the
//! image's `meta.json` (`boot`): like the layers, it outlives a rebuild, because paused and
//! snapshotted filesystem-only images keep booting it. The build runs in `templates/.build/`
//! and the finished image appears by a rename: a half-built template is never used.
//!
//! `base` (a debootstrapped Debian) and OCI images ([`oci`], built in `templates/.oci/build/`)
//! only differ in how their rootfs directory is made; from there `image_from_rootfs` is the
//! one path to a booted, snapshotted image.

pub mod build;
mod initramfs;
pub mod oci;
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
/// A built template is reused only while it was built with the same envd binary and rootfs
/// recipe (`templates/base/envd.sha256` holds both hashes): a changed agent or package list
/// means a rebuild, so a cached template never runs a stale envd or misses a package.
pub async fn build(templates_dir: &Path, name: &str, memory_mb: u32, force: bool) -> anyhow::Result<PathBuf> {
    let final_dir = templates_dir.join(name);
    let envd = find_envd()?;
    let envd_hash = rootfs::short_hash(std::fs::read(&envd).with_context(|| format!("read {}", envd.display()))?);
    let stamp = format!("{envd_hash}-{}", rootfs::recipe_hash());
    // A template without boot assets (built before they were kept) cannot back a
    // filesystem-only image: rebuilt.
    let up_to_date = |dir: &Path| {
        Runtime::read_meta(dir).is_ok_and(|m| m.memory_mb == memory_mb && m.boot.as_ref().is_some_and(|b| b.usable()))
            && std::fs::read_to_string(dir.join("envd.sha256")).is_ok_and(|h| h.trim() == stamp)
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
    let progress = Progress::new(5);
    let build = templates_dir.join(".build");
    fresh_work_dir(&build).await?;

    progress.step("building the Debian rootfs (debootstrap)");
    progress.detail(&format!("envd {} ({envd_hash})", envd.display()));
    let root = build.join("rootfs");
    rootfs::debootstrap_cached(&root, &templates_dir.join(".cache"), &progress).await?;
    rootfs::customize(&root, &envd)?;

    let shape = Shape { memory_mb, vcpus: BASE_VCPUS, disk_mb: BASE_DISK_MB, defaults: None };
    let meta = image_from_rootfs(&templates_dir, &build, &root, &final_dir, &shape, &stamp, &progress).await?;
    std::fs::remove_dir_all(&build).ok();
    progress.finish(&format!(
        "template {name} built in {:.0} s ({} MiB on disk)",
        started.elapsed().as_secs_f64(),
        meta.size_bytes >> 20
    ));
    Ok(final_dir)
}

/// How a rootfs is booted into a template image.
pub(crate) struct Shape {
    pub memory_mb: u32,
    pub vcpus: u32,
    pub disk_mb: u32,
    /// Environment and working directory every process of the image inherits (set in envd
    /// before the snapshot), e.g. an OCI image's `Env` and `WorkingDir`.
    pub defaults: Option<(std::collections::HashMap<String, String>, Option<String>)>,
}

/// Empties a build's scratch directory, stopping a VM an interrupted build left running in it.
pub(crate) async fn fresh_work_dir(work: &Path) -> anyhow::Result<()> {
    if work.join("data").exists() {
        Runtime::scratch(&work.join("data")).await?.reap_unknown(&[]).await;
    }
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work)?;
    Ok(())
}

/// The one path from a finished rootfs directory to a template image, shared by `base` and
/// OCI images: an ext4 disk layer in `templates/.layers/` (the rootfs is removed once it is
/// in), the host kernel with our initramfs, a cold boot to a healthy envd, a snapshot of the
/// running VM, and `final_dir` replaced by a rename (a half-built image is never visible).
/// `work` is the build's scratch directory (the caller removes it).
pub(crate) async fn image_from_rootfs(
    templates_dir: &Path,
    work: &Path,
    root: &Path,
    final_dir: &Path,
    shape: &Shape,
    stamp: &str,
    progress: &Progress<'_>,
) -> anyhow::Result<vm::ImageMeta> {
    let layers = templates_dir.join(".layers");
    std::fs::create_dir_all(&layers)?;
    let rootfs_layer = layers.join(format!("rootfs-{}.qcow2", vm::random_id()));
    // Callers hold their build lock: a fixed name, so what a killed build left is removed here.
    let tmp = final_dir.with_file_name(format!(".tmp-{}", final_dir.file_name().unwrap_or_default().to_string_lossy()));
    let _ = std::fs::remove_dir_all(&tmp);
    let built = async {
        progress.step("creating the disk image");
        rootfs::make_disk(root, &work.join("rootfs.raw"), &rootfs_layer, shape.disk_mb).await?;
        std::fs::remove_dir_all(root).ok();

        progress.step("creating the initramfs");
        let kernel = vm::accel::guest_kernel()
            .context("no guest kernel in /boot: install Debian's linux-image-amd64 (scripts/install-deps.sh)")?;
        progress.detail(&format!("kernel {}", kernel.display()));
        let initrd = work.join("initrd.img");
        initramfs::build(&kernel, &work.join("initramfs"), &initrd).await?;
        let boot = keep_boot_assets(&templates_dir.join(".boot"), &kernel, &initrd, KERNEL_CMDLINE)?;

        progress.step("booting the template VM");
        let rt = Runtime::scratch(&work.join("data")).await?;
        let boot_started = std::time::Instant::now();
        let vm_name = format!("template-{}", final_dir.file_name().unwrap_or_default().to_string_lossy());
        let vm = rt.boot_cold(&vm_name, &rootfs_layer, &boot, shape.memory_mb, shape.vcpus, shape.disk_mb).await?;
        progress.detail(&format!("guest up in {:.1} s ({})", boot_started.elapsed().as_secs_f64(), rt.accel()));

        progress.step("snapshotting the booted template");
        std::fs::create_dir_all(&tmp)?;
        let snap = async {
            if let Some((env, workdir)) = &shape.defaults {
                vm::guest::set_defaults(vm.envd_addr, env, workdir.as_deref()).await?;
            }
            rt.snapshot(&vm, &tmp).await
        }
        .await;
        rt.kill(&vm).await?;
        let mut meta = snap?;
        // Move the frozen layer out of the scratch data dir next to the rootfs layer.
        let layer = layers.join(meta.disk_layer.file_name().context("layer name")?);
        move_file(&meta.disk_layer, &layer)?;
        meta.disk_layer = layer;
        vm::files::write_atomic(&tmp.join("meta.json"), &serde_json::to_vec_pretty(&meta)?)?;
        vm::files::write_atomic(&tmp.join("envd.sha256"), stamp.as_bytes())?;
        if final_dir.exists() {
            std::fs::remove_dir_all(final_dir)?;
        }
        std::fs::rename(&tmp, final_dir)?;
        vm::files::fsync_path(final_dir.parent().context("image parent")?)?;
        Ok::<_, anyhow::Error>(meta)
    }
    .await;
    if built.is_err() {
        // Nothing half-built stays: the image directory and its base layer go.
        let _ = std::fs::remove_dir_all(&tmp);
        let _ = std::fs::remove_file(&rootfs_layer);
    }
    built
}

/// Copies the kernel and initramfs into `boot_root/<hash of both and the cmdline>/` (once)
/// and returns the spec that boots them.
fn keep_boot_assets(boot_root: &Path, kernel: &Path, initrd: &Path, cmdline: &str) -> anyhow::Result<vm::BootSpec> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for f in [kernel, initrd] {
        h.update(std::fs::read(f).with_context(|| format!("read {}", f.display()))?);
    }
    h.update(cmdline.as_bytes());
    let dir = boot_root.join(hex::encode(&h.finalize()[..8]));
    let spec = vm::BootSpec { kernel: dir.join("vmlinuz"), initrd: dir.join("initrd.img"), cmdline: cmdline.to_string() };
    if spec.usable() {
        return Ok(spec);
    }
    let tmp = boot_root.join(format!(".tmp-{}", vm::random_id()));
    std::fs::create_dir_all(&tmp)?;
    for (src, name) in [(kernel, "vmlinuz"), (initrd, "initrd.img")] {
        std::fs::copy(src, tmp.join(name)).with_context(|| format!("copy {}", src.display()))?;
        vm::files::fsync_path(&tmp.join(name))?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir)?;
    vm::files::fsync_path(boot_root)?;
    Ok(spec)
}

/// The envd binary to install in the guest: `$SANDBOXD_ENVD`, else `envd` next to this
/// executable, else on PATH.
pub(crate) fn find_envd() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("SANDBOXD_ENVD") {
        return Ok(PathBuf::from(p));
    }
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        candidates.push(dir.join("envd"));
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
pub(crate) fn lock(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(path)?;
    // SAFETY: flock on an fd we own; blocks until the other build finishes.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        bail!("cannot lock {}: {}", path.display(), std::io::Error::last_os_error());
    }
    Ok(f)
}
