//! OCI images as template bases (`Template().from_image(...)`, `sandboxd template build NAME
//! --from-image REF`): pulled from the registry the reference names ([`pull`]), layers applied
//! into a rootfs ([`unpack`]), given envd and E2B's `user` ([`convert`]), then booted once and
//! snapshotted by the same path as `base` (`super::image_from_rootfs`). No Docker daemon.
//!
//! Layout under the templates directory (all of it a cache, safe to delete when no build runs):
//! - `.oci/blobs/<alg>/<hex>`: layer blobs by digest, verified before they get that name;
//! - `.oci/images/<digest16>-<mem>m-<cpus>c/`: a booted image (`meta.json`, `mem.ram`,
//!   `state.bin`, `envd.sha256` stamp), reused while the envd binary and the conversion recipe
//!   are unchanged, replaced by a rename (never half-built);
//! - `.oci/build/`: the one running conversion's scratch space (`.oci/build.lock` serialises
//!   conversions; whatever a killed build left there is removed by the next one).
//!
//! A failed pull (missing tag, refused credentials, unreachable registry) leaves nothing:
//! downloads go to temporary names, and the directories above appear only once a manifest
//! was resolved.

mod convert;
mod pull;
mod unpack;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::progress::Progress;

/// Registry credentials from the build request (`fromImageRegistry`).
#[derive(Debug, Clone)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

/// A booted-and-snapshotted image, ready to restore, plus what the image's config asks of the
/// processes it runs (applied as the build's starting state).
#[derive(Debug, Clone)]
pub struct ImageBase {
    /// Template image directory (`meta.json`, `mem.ram`, `state.bin`), like `templates/base`.
    pub dir: PathBuf,
    /// `Env` of the image config, in order. Already envd's default environment in the
    /// snapshot (every process started in it inherits them).
    pub env: Vec<(String, String)>,
    /// `WorkingDir` of the image config, when set. Already envd's default working directory
    /// in the snapshot (created if the image lacked it).
    pub workdir: Option<String>,
    /// `User` of the image config, when set. Not applied: envd's default user stays `user`.
    pub user: Option<String>,
    /// Digest of the linux/amd64 image manifest the reference resolved to (a tag can move:
    /// this identifies the content, e.g. for a build cache key).
    pub digest: String,
}

/// Pulls `reference` (Docker Hub when it names no registry; `SANDBOXD_REGISTRY_MIRROR` serves
/// Docker Hub references), converts it to a guest disk with envd, boots it with `memory_mb`
/// and `vcpus` and snapshots it under `templates_dir`, cached by manifest digest and shape.
/// `log` receives progress lines (they go to the build's logs).
pub async fn image_base(
    templates_dir: &Path,
    reference: &str,
    auth: Option<&RegistryAuth>,
    memory_mb: u32,
    vcpus: u32,
    log: &(dyn Fn(String) + Send + Sync),
) -> anyhow::Result<ImageBase> {
    ensure_image(templates_dir, reference, auth, memory_mb, vcpus, false, log).await
}

/// [`image_base`], converting again even when a converted image is cached if `force`.
async fn ensure_image(
    templates_dir: &Path,
    reference: &str,
    auth: Option<&RegistryAuth>,
    memory_mb: u32,
    vcpus: u32,
    force: bool,
    log: &(dyn Fn(String) + Send + Sync),
) -> anyhow::Result<ImageBase> {
    let templates_dir = std::path::absolute(templates_dir)?;
    let cache = templates_dir.join(".oci");
    let envd = super::find_envd()?;
    let envd_hash = super::rootfs::short_hash(std::fs::read(&envd).with_context(|| format!("read {}", envd.display()))?);
    let stamp = format!("{envd_hash}-oci{}", convert::VERSION);

    let started = std::time::Instant::now();
    let pulled = pull::pull(&cache, reference, auth, log).await?;
    let pulled_in = started.elapsed();
    let hex = pulled.digest.split_once(':').map_or(pulled.digest.as_str(), |(_, h)| h);
    let key = format!("{}-{memory_mb}m-{vcpus}c", &hex[..hex.len().min(16)]);
    let dir = cache.join("images").join(&key);
    let base = ImageBase {
        dir: dir.clone(),
        env: pulled.config.env.clone(),
        workdir: pulled.config.workdir.clone(),
        user: pulled.config.user.clone(),
        digest: pulled.digest.clone(),
    };
    let up_to_date = |dir: &Path| {
        crate::vm::Runtime::read_meta(dir)
            .is_ok_and(|m| m.memory_mb == memory_mb && m.vcpus == vcpus && m.boot.as_ref().is_some_and(|b| b.usable()))
            && std::fs::read_to_string(dir.join("envd.sha256")).is_ok_and(|h| h.trim() == stamp)
    };
    if !force && up_to_date(&dir) {
        log(format!("{reference}: converted image cached ({key})"));
        return Ok(base);
    }
    std::fs::create_dir_all(cache.join("images"))?;
    let _lock = super::lock(&cache.join("build.lock"))?;
    if !force && up_to_date(&dir) {
        return Ok(base); // converted by another build while we waited
    }
    let work = cache.join("build");
    super::fresh_work_dir(&work).await?;
    let converted = convert_and_boot(&templates_dir, &work, &pulled, &envd, &dir, memory_mb, vcpus, &stamp, log).await;
    let _ = std::fs::remove_dir_all(&work);
    let meta = converted?;
    log(format!(
        "{reference}: image ready in {:.1} s (pull {:.1} s, {} MiB on disk)",
        started.elapsed().as_secs_f64(),
        pulled_in.as_secs_f64(),
        meta.size_bytes >> 20
    ));
    Ok(base)
}

#[allow(clippy::too_many_arguments)]
async fn convert_and_boot(
    templates_dir: &Path,
    work: &Path,
    pulled: &pull::Pulled,
    envd: &Path,
    dir: &Path,
    memory_mb: u32,
    vcpus: u32,
    stamp: &str,
    log: &(dyn Fn(String) + Send + Sync),
) -> anyhow::Result<crate::vm::ImageMeta> {
    let root = work.join("rootfs");
    let (layers, envd_path, workdir) = (pulled.layers.clone(), envd.to_path_buf(), pulled.config.workdir.clone());
    let root_path = root.clone();
    // Unpacking is blocking file work: on a blocking thread, its log lines forwarded here.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let unpacked = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
        let say = |line: String| {
            let _ = tx.send(line);
        };
        let rootfs = unpack::Rootfs::open(&root_path)?;
        let n = layers.len();
        for (i, blob) in layers.iter().enumerate() {
            let t = std::time::Instant::now();
            let entries = unpack::apply_layer(&rootfs, unpack::open_layer(blob)?)
                .with_context(|| format!("layer {}/{n} ({})", i + 1, blob.display()))?;
            say(format!("unpacked layer {}/{n}: {entries} entries in {:.1} s", i + 1, t.elapsed().as_secs_f64()));
        }
        convert::prepare(&rootfs, &envd_path, &say)?;
        if let Some(w) = workdir.as_deref() {
            rootfs.dir(Path::new(w.trim_start_matches('/')), true)?;
        }
        Ok(allocated(&root_path))
    });
    while let Some(line) = rx.recv().await {
        log(line);
    }
    let used = unpacked.await.context("unpack task")??;
    let used_mb = (used >> 20) as u32;
    // Room for what the sandbox installs: a quarter more plus 1 GiB, at least base's disk.
    let disk_mb = (used_mb + used_mb / 4 + 1024).div_ceil(256) * 256;
    let disk_mb = disk_mb.max(super::BASE_DISK_MB);
    log(format!("rootfs {used_mb} MiB, disk {disk_mb} MiB"));
    let env: HashMap<String, String> = pulled.config.env.iter().cloned().collect();
    let shape = super::Shape { memory_mb, vcpus, disk_mb, defaults: Some((env, pulled.config.workdir.clone())) };
    let progress = Progress::to_log(4, log);
    super::image_from_rootfs(templates_dir, work, &root, dir, &shape, stamp, &progress).await
}

/// Bytes allocated under `root` (not following symlinks).
fn allocated(root: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let Ok(m) = e.path().symlink_metadata() else { continue };
            total += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}

/// `sandboxd template build NAME --from-image REF`: the image as a named template
/// (`templates/NAME`, a copy of the cached image's files made by a rename), with progress on
/// stderr. The image's `Env` and `WorkingDir` are already in its snapshot. `force` converts and
/// boots the image again even when it is cached (the pull still skips cached blobs).
pub async fn build_named(
    templates_dir: &Path,
    name: &str,
    reference: &str,
    auth: Option<&RegistryAuth>,
    memory_mb: u32,
    vcpus: u32,
    force: bool,
) -> anyhow::Result<PathBuf> {
    let log = |line: String| eprintln!("[image] {line}");
    let base = ensure_image(templates_dir, reference, auth, memory_mb, vcpus, force, &log).await?;
    let final_dir = std::path::absolute(templates_dir)?.join(name);
    let tmp = final_dir.with_file_name(format!(".tmp-{}", crate::vm::random_id()));
    let copied = (|| -> anyhow::Result<()> {
        std::fs::create_dir_all(&tmp)?;
        for entry in std::fs::read_dir(&base.dir)?.flatten() {
            crate::vm::files::clone_sparse(&entry.path(), &tmp.join(entry.file_name()))?;
        }
        let about = serde_json::json!({
            "image": reference, "digest": base.digest, "env": base.env, "workdir": base.workdir, "user": base.user,
        });
        crate::vm::files::write_atomic(&tmp.join("image.json"), &serde_json::to_vec_pretty(&about)?)?;
        if final_dir.exists() {
            std::fs::remove_dir_all(&final_dir)?;
        }
        std::fs::rename(&tmp, &final_dir)?;
        Ok(())
    })();
    if copied.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    copied?;
    eprintln!("[image] template {name} from {reference} ({})", base.digest);
    Ok(final_dir)
}
