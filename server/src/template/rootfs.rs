//! The guest root filesystem: Debian bookworm from the host's own apt mirror, shaped like E2B's
//! `base` template (what agents and the SDKs' `git` helpers assume: `python`/`python3`, `pip`
//! usable without a virtualenv, `git`, `curl`, `node`/`npm`, `sudo`), with envd as PID 1, an
//! unprivileged `user` (E2B's default user, with sudo and a home), and user-mode networking's DNS.

use std::path::Path;
use std::process::Stdio;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::progress::Progress;

/// What debootstrap installs (its resolver handles plain dependencies only).
const PACKAGES: &str = "python3,procps,ca-certificates,curl,sudo,iproute2";

/// Installed with apt inside the new rootfs after debootstrap: npm's dependency tree has
/// alternatives and virtual packages that only apt resolves.
const EXTRA_PACKAGES: &[&str] = &["python-is-python3", "python3-pip", "python3-venv", "git", "nodejs", "npm"];

/// Changes whenever what `customize` writes changes, so a cached template built from an older
/// recipe is rebuilt (the template stamp holds it next to envd's hash).
const CUSTOMIZE_VERSION: &str = "3";

/// Identifies this rootfs recipe: the package list, the customisation and the modules the
/// initramfs loads.
pub fn recipe_hash() -> String {
    let modules = super::initramfs::WANTED.join(",");
    short_hash(format!("{PACKAGES}|{}|{CUSTOMIZE_VERSION}|{modules}", EXTRA_PACKAGES.join(",")))
}

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
pub async fn debootstrap_cached(root: &Path, cache_dir: &Path, progress: &Progress<'_>) -> anyhow::Result<()> {
    std::fs::create_dir_all(cache_dir)?;
    let key = short_hash(format!("{PACKAGES}|{}", EXTRA_PACKAGES.join(",")));
    let tarball = cache_dir.join(format!("debootstrap-bookworm-{key}.tar"));
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
    install_extras(root, progress).await?;
    let tmp = tarball.with_extension("tar.tmp");
    run(tokio::process::Command::new("tar").arg("-cf").arg(&tmp).arg("-C").arg(root).arg(".")).await?;
    std::fs::rename(&tmp, &tarball)?;
    Ok(())
}

pub fn short_hash(data: impl AsRef<[u8]>) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(data.as_ref())[..8])
}

async fn debootstrap(root: &Path, progress: &Progress<'_>) -> anyhow::Result<()> {
    let mirror = mirror();
    progress.detail(&format!("debootstrap bookworm from {mirror}"));
    let mut cmd = tokio::process::Command::new("debootstrap");
    cmd.args(["--variant=minbase", &format!("--include={PACKAGES}"), "bookworm"]).arg(root).arg(&mirror);
    let stderr = run_showing_progress(&mut cmd, progress)
        .await
        .context("cannot run debootstrap (install it: scripts/install-deps.sh)")?;
    if let Some(stderr) = stderr {
        let log = std::fs::read_to_string(root.join("debootstrap/debootstrap.log")).unwrap_or_default();
        bail!("debootstrap failed: {}\n{}", stderr.trim(), &log[log.len().saturating_sub(2000)..]);
    }
    Ok(())
}

/// Runs `cmd`, showing its output lines as progress (every line on a terminal, one in 25 in
/// logs, enough to see it move). `Ok(None)` on success, `Ok(Some(stderr))` when it failed.
async fn run_showing_progress(cmd: &mut tokio::process::Command, progress: &Progress<'_>) -> anyhow::Result<Option<String>> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut count = 0u32;
    while let Some(line) = lines.next_line().await? {
        count += 1;
        if progress_is_terminal() || count.is_multiple_of(25) {
            progress.detail(line.trim_start_matches("I: "));
        }
    }
    let out = child.wait_with_output().await?;
    Ok((!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).into_owned()))
}

/// `apt-get install` of [`EXTRA_PACKAGES`] inside the rootfs (chroot, with /proc mounted for
/// the maintainer scripts and services kept from starting), then apt's caches dropped.
async fn install_extras(root: &Path, progress: &Progress<'_>) -> anyhow::Result<()> {
    progress.detail(&format!("apt-get install {}", EXTRA_PACKAGES.join(" ")));
    std::fs::write(root.join("usr/sbin/policy-rc.d"), "#!/bin/sh\nexit 101\n")?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(root.join("usr/sbin/policy-rc.d"), std::fs::Permissions::from_mode(0o755))?;
    let proc_dir = root.join("proc");
    run(tokio::process::Command::new("mount").args(["-t", "proc", "proc"]).arg(&proc_dir)).await.context("mount /proc in the rootfs")?;
    let apt = |args: &[&str]| {
        let mut cmd = tokio::process::Command::new("chroot");
        cmd.arg(root).arg("apt-get").args(["-q", "-y", "-o", "Dpkg::Use-Pty=0"]).args(args);
        cmd.env("DEBIAN_FRONTEND", "noninteractive").env("LC_ALL", "C");
        cmd
    };
    let mut install: Vec<&str> = vec!["install", "--no-install-recommends"];
    install.extend(EXTRA_PACKAGES);
    let result = async {
        for (args, what) in [(&["update"][..], "apt-get update"), (&install[..], "apt-get install"), (&["clean"][..], "apt-get clean")] {
            if let Some(stderr) = run_showing_progress(&mut apt(args), progress).await.with_context(|| format!("{what} in the rootfs"))? {
                bail!("{what} in the rootfs failed: {}", stderr.trim());
            }
        }
        Ok(())
    }
    .await;
    let unmounted = run(tokio::process::Command::new("umount").arg(&proc_dir)).await;
    std::fs::remove_file(root.join("usr/sbin/policy-rc.d"))?;
    result?;
    unmounted.context("unmount /proc in the rootfs")
}

fn progress_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// `/etc/profile` with its `$(id -u)` taken from bash's `EUID` when the shell is bash.
fn light_profile(text: &str) -> String {
    text.replace("\"$(id -u)\"", "\"${EUID:-$(id -u)}\"")
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
    // Every command runs in a login shell (`bash -l`, as E2B's envd does), and Debian's
    // /etc/profile forks and execs `id -u` in each: the first one after a restore costs tens of
    // ms under TCG. bash knows its effective UID; other shells still ask `id`.
    let profile = root.join("etc/profile");
    let text = std::fs::read_to_string(&profile).context("read etc/profile")?;
    std::fs::write(&profile, light_profile(&text)).context("write etc/profile")?;
    // E2B's base image is a plain Python image where `pip install x` just works; Debian marks
    // its Python as externally managed (PEP 668), which would refuse that.
    for entry in std::fs::read_dir(root.join("usr/lib")).context("read usr/lib")?.flatten() {
        if entry.file_name().to_string_lossy().starts_with("python3") {
            let _ = std::fs::remove_file(entry.path().join("EXTERNALLY-MANAGED"));
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_asks_id_only_outside_bash() {
        let debian = "if [ \"$(id -u)\" -eq 0 ]; then\n  PATH=/usr/sbin\nfi\n    if [ \"$(id -u)\" -eq 0 ]; then\n      PS1='# '\n    fi\n";
        let light = light_profile(debian);
        assert_eq!(light.matches("\"${EUID:-$(id -u)}\"").count(), 2, "{light}");
        assert!(!light.contains("[ \"$(id -u)\""), "{light}");
        // Run by dash (no EUID) and by bash, as root or not, it picks the same branch.
        for shell in ["sh", "bash"] {
            let out = std::process::Command::new(shell)
                .args(["-c", &format!("{light}\necho \"$PATH\"")])
                .output()
                .unwrap();
            // SAFETY: geteuid has no preconditions and cannot fail.
            let root = unsafe { libc::geteuid() } == 0;
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim() == "/usr/sbin", root, "{shell}");
        }
    }
}
