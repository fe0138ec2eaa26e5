//! The guest root filesystem: Debian bookworm (minbase + python3) from the host's own apt
//! mirror, with envd as PID 1, an unprivileged `user` (E2B's default user, with sudo), and
//! user-mode networking's DNS.

use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::progress::Progress;

const PACKAGES: &str = "python3,procps,ca-certificates,curl,sudo,iproute2";

/// The Debian mirror the host's apt uses (deb822 `URIs:` or one-line `deb` entries).
fn mirror() -> String {
    if let Ok(m) = std::env::var("SANDBOXD_DEBIAN_MIRROR") {
        return m;
    }
    let mut texts = Vec::new();
    for dir in ["/etc/apt/sources.list", "/etc/apt/sources.list.d"] {
        let p = Path::new(dir);
        if p.is_file() {
            texts.extend(std::fs::read_to_string(p).ok());
        } else if let Ok(entries) = std::fs::read_dir(p) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".list") || name.ends_with(".sources") {
                    texts.extend(std::fs::read_to_string(e.path()).ok());
                }
            }
        }
    }
    for text in texts {
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
            for word in line.split_whitespace() {
                let word = word.trim_end_matches('/');
                if (word.starts_with("http://") || word.starts_with("https://"))
                    && word.ends_with("/debian")
                {
                    return word.to_string();
                }
            }
        }
    }
    "http://deb.debian.org/debian".to_string()
}

/// debootstrap into `root`, or unpack the tarball a previous build left in `cache_dir`
/// (debootstrap is the slowest step; its output only changes with the package list).
pub async fn debootstrap_cached(root: &Path, cache_dir: &Path, progress: &Progress) -> anyhow::Result<()> {
    std::fs::create_dir_all(cache_dir)?;
    let tarball = cache_dir.join(format!("debootstrap-bookworm-{}.tar", short_hash(PACKAGES)));
    std::fs::create_dir_all(root)?;
    if tarball.is_file() {
        progress.detail(&format!("reusing {}", tarball.display()));
        let ok = run(tokio::process::Command::new("tar").arg("-xpf").arg(&tarball).arg("-C").arg(root)).await;
        if ok.is_ok() {
            return Ok(());
        }
        let _ = std::fs::remove_file(&tarball);
        let _ = std::fs::remove_dir_all(root);
    }
    debootstrap(root, progress).await?;
    let tmp = tarball.with_extension("tar.tmp");
    run(tokio::process::Command::new("tar").arg("-cf").arg(&tmp).arg("-C").arg(root).arg(".")).await?;
    std::fs::rename(&tmp, &tarball)?;
    Ok(())
}

pub fn short_hash(data: impl AsRef<[u8]>) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(data.as_ref())[..8])
}

async fn debootstrap(root: &Path, progress: &Progress) -> anyhow::Result<()> {
    let mirror = mirror();
    progress.detail(&format!("debootstrap bookworm from {mirror}"));
    let mut child = tokio::process::Command::new("debootstrap")
        .args(["--variant=minbase", &format!("--include={PACKAGES}"), "bookworm"])
        .arg(root)
        .arg(&mirror)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run debootstrap (install it: scripts/install-deps.sh)")?;
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut count = 0u32;
    while let Some(line) = lines.next_line().await? {
        count += 1;
        // Every line on a terminal; one in 25 in logs, enough to see it move.
        if progress_is_terminal() || count % 25 == 0 {
            progress.detail(line.trim_start_matches("I: "));
        }
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        let log = std::fs::read_to_string(root.join("debootstrap/debootstrap.log")).unwrap_or_default();
        bail!(
            "debootstrap failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr).trim(),
            &log[log.len().saturating_sub(2000)..]
        );
    }
    Ok(())
}

fn progress_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// Users, network config, envd, and a trim of caches that only cost disk.
pub fn customize(root: &Path, envd: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new("chroot")
        .arg(root)
        .args(["useradd", "--create-home", "--uid", "1000", "--shell", "/bin/bash", "user"])
        .status()
        .context("chroot useradd")?;
    if !status.success() {
        bail!("useradd in the rootfs failed");
    }
    let w = |rel: &str, text: &str| -> anyhow::Result<()> {
        let p = root.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(&p, text).with_context(|| format!("write {}", p.display()))
    };
    w("etc/sudoers.d/user", "user ALL=(ALL:ALL) NOPASSWD: ALL\n")?;
    w("etc/hostname", "e2b\n")?;
    w("etc/hosts", "127.0.0.1 localhost\n127.0.1.1 e2b\n::1 localhost ip6-localhost ip6-loopback\n")?;
    // User-mode networking's built-in DNS forwarder.
    let _ = std::fs::remove_file(root.join("etc/resolv.conf"));
    w("etc/resolv.conf", "nameserver 10.0.2.3\n")?;
    w("etc/fstab", "/dev/vda / ext4 rw,noatime 0 1\n")?;
    let dest = root.join("usr/local/bin/envd");
    std::fs::copy(envd, &dest).with_context(|| format!("copy {}", envd.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))?;
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info"] {
        let p = root.join(dir);
        if let Ok(entries) = std::fs::read_dir(&p) {
            for e in entries.flatten() {
                let path = e.path();
                let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            }
        }
    }
    Ok(())
}

/// ext4 filesystem populated from `root` (no mount needed), converted to a qcow2 base layer.
pub async fn make_disk(root: &Path, raw: &Path, layer: &Path, size_mb: u32) -> anyhow::Result<()> {
    run(tokio::process::Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "rootfs", "-d"])
        .arg(root)
        .arg(raw)
        .arg(format!("{size_mb}M")))
    .await
    .context("mkfs.ext4")?;
    run(tokio::process::Command::new("qemu-img").args(["convert", "-q", "-f", "raw", "-O", "qcow2"]).arg(raw).arg(layer))
        .await
        .context("qemu-img convert")?;
    std::fs::remove_file(raw).ok();
    Ok(())
}

pub(super) async fn run(cmd: &mut tokio::process::Command) -> anyhow::Result<()> {
    let out = cmd.stdin(Stdio::null()).output().await?;
    if !out.status.success() {
        bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}
