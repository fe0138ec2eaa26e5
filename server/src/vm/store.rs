//! Where VM artifacts live: `<data>/store/` holds disk layers, run directories (guest RAM
//! files) and snapshot images. Snapshots and restores clone multi-hundred-MiB RAM files, which
//! is constant-time only with reflinks (XFS, btrfs). When the data directory's filesystem has
//! none (ext4, the usual case) and sandboxd runs as root, the store becomes a loop-mounted XFS
//! image (`<data>/store.img`, sparse) mounted on `<data>/store`. Otherwise everything still
//! works, with RAM copied instead of reflinked (slower snapshots and restores; logged once).
//!
//! `SANDBOXD_STORE=plain` disables the XFS image; `SANDBOXD_STORE_SIZE_GB` caps its size
//! (default 128, and never more than 90% of the free space when it is created).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Result, VmError, files};

/// Returns the store directory, mounting an XFS image on it when that gives reflinks.
pub fn prepare(data_dir: &Path) -> Result<PathBuf> {
    let store = data_dir.join("store");
    std::fs::create_dir_all(&store)?;
    if supports_reflink(&store) {
        tracing::info!(store = %store.display(), "store supports reflinks");
        return Ok(store);
    }
    if let Err(why) = mount_xfs(data_dir, &store) {
        tracing::warn!(
            store = %store.display(),
            "no reflinks for the store ({why}): snapshots and restores will copy guest RAM"
        );
    }
    Ok(store)
}

/// True when `a` and `b` are on the same filesystem (FICLONE needs that).
pub fn same_device(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev(),
        _ => false,
    }
}

fn supports_reflink(dir: &Path) -> bool {
    let a = dir.join(".reflink-probe-a");
    let b = dir.join(".reflink-probe-b");
    let _ = std::fs::remove_file(&a);
    let _ = std::fs::remove_file(&b);
    let ok = std::fs::write(&a, [1u8; 4096]).is_ok() && files::clone_sparse(&a, &b).unwrap_or(false);
    let _ = std::fs::remove_file(&a);
    let _ = std::fs::remove_file(&b);
    ok
}

fn is_mountpoint(dir: &Path) -> bool {
    let (Ok(d), Ok(p)) = (std::fs::metadata(dir), std::fs::metadata(dir.join(".."))) else { return false };
    d.dev() != p.dev()
}

fn mount_xfs(data_dir: &Path, store: &Path) -> std::result::Result<(), String> {
    if std::env::var("SANDBOXD_STORE").as_deref() == Ok("plain") {
        return Err("SANDBOXD_STORE=plain".into());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("not running as root, cannot mount an XFS image".into());
    }
    if is_mountpoint(store) {
        return Err("the store is a mount point without reflink support".into());
    }
    if std::fs::read_dir(store).map(|mut d| d.next().is_some()).unwrap_or(true) {
        return Err("the store already holds files (created without XFS)".into());
    }
    let image = data_dir.join("store.img");
    if !image.exists() {
        let size = image_size(data_dir)?;
        let f = std::fs::File::create(&image).map_err(|e| e.to_string())?;
        f.set_len(size).map_err(|e| e.to_string())?;
        run(Command::new("mkfs.xfs").args(["-q", "-m", "reflink=1"]).arg(&image))?;
        tracing::info!(image = %image.display(), size_gib = size >> 30, "created the XFS store image");
    }
    run(Command::new("mount").args(["-o", "loop,noatime"]).arg(&image).arg(store))?;
    if !supports_reflink(store) {
        return Err("mounted XFS image has no reflink support".into());
    }
    tracing::info!(store = %store.display(), "mounted the XFS store (reflinks enabled)");
    Ok(())
}

fn image_size(data_dir: &Path) -> std::result::Result<u64, String> {
    let cap_gb: u64 = std::env::var("SANDBOXD_STORE_SIZE_GB").ok().and_then(|v| v.parse().ok()).unwrap_or(128);
    let stat = nix::sys::statvfs::statvfs(data_dir).map_err(|e| e.to_string())?;
    let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
    let size = (cap_gb << 30).min(free / 10 * 9);
    if size < (1 << 30) {
        return Err(format!("only {} MiB free for an XFS store image", free >> 20));
    }
    Ok(size)
}

fn run(cmd: &mut Command) -> std::result::Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    if !out.status.success() {
        return Err(format!("{:?}: {}", cmd.get_program(), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

/// A copy of an image that lives on another filesystem (a shared template cache), made once
/// inside the store so that launches from it can reflink its RAM file. Keyed by the image's
/// path and the mtime of its `meta.json`, so a rebuilt template is imported again.
pub fn import_image(store: &Path, image_dir: &Path) -> Result<PathBuf> {
    let meta_mtime = std::fs::metadata(image_dir.join("meta.json"))
        .map(|m| m.mtime_nsec() as i128 + m.mtime() as i128 * 1_000_000_000)
        .unwrap_or(0);
    let key = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(image_dir.as_os_str().as_encoded_bytes());
        h.update(meta_mtime.to_le_bytes());
        hex::encode(&h.finalize()[..10])
    };
    let dest = store.join("imported").join(&key);
    if dest.join("meta.json").exists() {
        return Ok(dest);
    }
    let tmp = store.join("imported").join(format!(".tmp-{key}-{}", super::random_id()));
    std::fs::create_dir_all(&tmp)?;
    let copy = || -> Result<()> {
        files::clone_sparse(&image_dir.join("mem.ram"), &tmp.join("mem.ram"))?;
        for f in ["state.bin", "meta.json"] {
            std::fs::copy(image_dir.join(f), tmp.join(f)).map_err(|e| files::io_err(f, e))?;
        }
        for f in ["mem.ram", "state.bin", "meta.json"] {
            files::fsync_path(&tmp.join(f))?;
        }
        Ok(())
    };
    if let Err(e) = copy() {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    std::fs::write(tmp.join("source"), image_dir.as_os_str().as_encoded_bytes())?;
    match std::fs::rename(&tmp, &dest) {
        Ok(()) => {
            remove_stale_imports(store, image_dir, &dest);
            Ok(dest)
        }
        // Someone imported it concurrently: use theirs.
        Err(_) if dest.join("meta.json").exists() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dest)
        }
        Err(e) => Err(VmError::Io(e)),
    }
}

/// Drops earlier imports of the same image directory (a template that was rebuilt). Running
/// VMs do not depend on them: they run on their own copy of the RAM file.
fn remove_stale_imports(store: &Path, image_dir: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(store.join("imported")) else { return };
    for e in entries.flatten() {
        let p = e.path();
        let same_source = std::fs::read(p.join("source")).is_ok_and(|s| s == image_dir.as_os_str().as_encoded_bytes());
        if p != keep && same_source {
            let _ = std::fs::remove_dir_all(&p);
        }
    }
}
