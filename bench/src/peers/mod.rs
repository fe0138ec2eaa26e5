//! The peers sandboxd is compared with, on the same machine and the same workload
//! (`crate::workload`): gVisor (`runsc`, checkpoint/restore) and CRIU (`criu dump`/`restore`),
//! both installed from Debian's packages by [`peers`].
//!
//! A peer that cannot run here is returned as `Err((name, reason))` so that its row stays in
//! the table with the reason instead of silently disappearing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::system::System;

mod criu;
mod gvisor;

/// gVisor and CRIU, each ready to run or with the reason it cannot run on this machine.
/// Installs the Debian packages `runsc` and `criu` if missing and prepares (once, cached under
/// [`CACHE_DIR`]) the root filesystem the gVisor sandboxes run on.
pub fn peers(quick: bool) -> Vec<Result<Box<dyn System>, (String, String)>> {
    let _ = quick; // same setup either way; the scenarios choose the sizes
    let installed = install_packages(&["runsc", "criu"]);
    let gvisor = match &installed {
        Err(e) => Err((gvisor::NAME.to_string(), format!("{e:#}"))),
        Ok(()) => match gvisor::Gvisor::new() {
            Ok(g) => Ok(Box::new(g) as Box<dyn System>),
            Err(e) => Err((gvisor::NAME.to_string(), format!("{e:#}"))),
        },
    };
    let criu = match &installed {
        Err(e) => Err((criu::NAME.to_string(), format!("{e:#}"))),
        Ok(()) => criu::criu(),
    };
    vec![gvisor, criu]
}

/// Where prepared peer root filesystems are kept between runs.
pub const CACHE_DIR: &str = "/var/cache/sandboxd-bench";

pub(crate) fn progress(msg: &str) {
    eprintln!("peers: {msg}");
}

/// `apt-get install` of the packages that are not installed yet.
fn install_packages(pkgs: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = pkgs
        .iter()
        .copied()
        .filter(|p| {
            let out = Command::new("dpkg-query").args(["-W", "-f=${Status}", p]).output();
            !matches!(out, Ok(o) if String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    progress(&format!(
        "installing {} from Debian's packages (apt-get)",
        missing.join(" ")
    ));
    let install = || {
        let mut cmd = Command::new("apt-get");
        cmd.args(["install", "-y", "-o", "DPkg::Lock::Timeout=600"])
            .args(&missing);
        cmd.env("DEBIAN_FRONTEND", "noninteractive");
        run_timeout(cmd, Duration::from_secs(900), None)
    };
    let out = install()?;
    if !out.ok {
        // The package lists may be missing on a fresh machine: refresh them once and retry.
        let mut update = Command::new("apt-get");
        update.args(["update", "-o", "DPkg::Lock::Timeout=600"]);
        let _ = run_timeout(update, Duration::from_secs(600), None);
        let out = install()?;
        if !out.ok {
            bail!(
                "apt-get install {} failed: {}",
                missing.join(" "),
                out.tail()
            );
        }
    }
    Ok(())
}

/// A finished (or timed-out) command.
pub(crate) struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The end of stderr (or stdout), for error messages.
    pub fn tail(&self) -> String {
        let s = if self.stderr.trim().is_empty() {
            &self.stdout
        } else {
            &self.stderr
        };
        let s = s.trim();
        let start = s.char_indices().rev().nth(600).map(|(i, _)| i).unwrap_or(0);
        s[start..].to_string()
    }
}

/// Runs `cmd` with stdin from /dev/null and stdout/stderr into fresh files (never pipes: a
/// sandbox started by the command may inherit them and keep them open, and gVisor writes a
/// restored sandbox's output at its old offsets). Kills it and fails after `timeout`.
/// `log_dir`: where the output files go (a temporary directory if `None`).
pub(crate) fn run_timeout(
    mut cmd: Command,
    timeout: Duration,
    log_dir: Option<&Path>,
) -> anyhow::Result<Output> {
    let tmp;
    let dir = match log_dir {
        Some(d) => d.to_path_buf(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let tag = unique_id();
    let (out_path, err_path) = (
        dir.join(format!("{tag}.out")),
        dir.join(format!("{tag}.err")),
    );
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path)?)
        .stderr(std::fs::File::create(&err_path)?);
    let what = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = std::fs::read_to_string(&err_path).unwrap_or_default();
            let _ = (
                std::fs::remove_file(&out_path),
                std::fs::remove_file(&err_path),
            );
            bail!(
                "timed out after {timeout:?}: {what} (stderr: {})",
                err.trim()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).replace('\0', "");
    let out = Output {
        ok: status.success(),
        stdout: read(&out_path),
        stderr: read(&err_path),
    };
    let _ = (
        std::fs::remove_file(&out_path),
        std::fs::remove_file(&err_path),
    );
    Ok(out)
}

/// 16 random hex digits: fixed length, because runsc matches container IDs by prefix.
pub(crate) fn unique_id() -> String {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The shared, read-only root filesystem for peer sandboxes: Debian bookworm minbase with
/// python3 (and procps for `kill`). Unpacked once from the template builder's cached
/// debootstrap tarball (`<templates>/.cache/debootstrap-bookworm-*.tar`, made by
/// server/src/template/rootfs.rs) if there is one, else debootstrapped; kept in [`CACHE_DIR`].
/// It must not change while images that reference it exist (restore reopens its files by path).
pub(crate) fn rootfs() -> anyhow::Result<PathBuf> {
    let cache = Path::new(CACHE_DIR);
    std::fs::create_dir_all(cache)?;
    let templates = std::env::var_os("SANDBOXD_TEMPLATES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                .join(".local/share/sandboxd/templates")
        });
    let tarball = std::fs::read_dir(templates.join(".cache"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap_or_default().to_string_lossy();
            n.starts_with("debootstrap-bookworm-") && n.ends_with(".tar")
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok());
    let key = match &tarball {
        Some(t) => t
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        None => "debootstrap-bookworm-minbase-python3".to_string(),
    };
    let root = cache.join(format!("rootfs-{key}"));
    let done = cache.join(format!("rootfs-{key}.ok"));
    if done.is_file() && root.join("usr/bin/python3").exists() {
        return Ok(root);
    }
    // One preparer at a time (another bench run may be preparing it, or already using it).
    let lock = std::fs::File::create(cache.join(".lock"))?;
    // SAFETY: flock(2) on a file we hold open; released when `lock` is closed.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        bail!(
            "cannot lock {}: {}",
            cache.display(),
            std::io::Error::last_os_error()
        );
    }
    if done.is_file() && root.join("usr/bin/python3").exists() {
        return Ok(root);
    }
    let tmp = cache.join(format!("rootfs-{key}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    let result = (|| -> anyhow::Result<()> {
        match &tarball {
            Some(t) => {
                progress(&format!(
                    "unpacking {} into {}",
                    t.display(),
                    root.display()
                ));
                let mut tar = Command::new("tar");
                tar.arg("-xpf").arg(t).arg("-C").arg(&tmp);
                let out = run_timeout(tar, Duration::from_secs(600), None)?;
                if !out.ok {
                    bail!("tar -xpf {} failed: {}", t.display(), out.tail());
                }
            }
            None => {
                install_packages(&["debootstrap"])?;
                let mirror = debian_mirror();
                progress(&format!(
                    "debootstrap bookworm (minbase + python3) from {mirror}: about 1-2 min, once"
                ));
                let mut d = Command::new("debootstrap");
                d.args(["--variant=minbase", "--include=python3,procps", "bookworm"])
                    .arg(&tmp)
                    .arg(&mirror);
                let out = run_timeout(d, Duration::from_secs(1800), None)?;
                if !out.ok {
                    bail!("debootstrap failed: {}", out.tail());
                }
            }
        }
        if !tmp.join("usr/bin/python3").exists() {
            bail!("the prepared rootfs has no /usr/bin/python3");
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e.context("preparing the peer rootfs"));
    }
    let _ = std::fs::remove_dir_all(&root);
    std::fs::rename(&tmp, &root)?;
    std::fs::write(&done, "")?;
    Ok(root)
}

/// The Debian mirror the host's apt uses (as the template builder does).
fn debian_mirror() -> String {
    if let Ok(m) = std::env::var("SANDBOXD_DEBIAN_MIRROR") {
        return m;
    }
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    files.extend(
        std::fs::read_dir("/etc/apt/sources.list.d")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path()),
    );
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
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

/// Single-quotes `s` for sh.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Allocated bytes (st_blocks) of every file under `dir`, in MiB.
pub(crate) fn allocated_mib(dir: &Path) -> f64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.blocks() * 512;
            }
        }
    }
    total as f64 / (1024.0 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_time_out_instead_of_hanging() {
        let mut c = Command::new("sleep");
        c.arg("30");
        let e = run_timeout(c, Duration::from_millis(200), None)
            .err()
            .expect("must time out");
        assert!(e.to_string().contains("timed out"), "{e}");
        let mut c = Command::new("sh");
        c.args(["-c", "echo out; echo err >&2; exit 3"]);
        let o = run_timeout(c, Duration::from_secs(20), None).unwrap();
        assert!(!o.ok);
        assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("out\n", "err\n"));
    }

    #[test]
    fn ids_are_fixed_length_and_distinct() {
        let (a, b) = (unique_id(), unique_id());
        assert_eq!((a.len(), b.len()), (16, 16));
        assert_ne!(a, b);
    }

    #[test]
    fn sh_quote_survives_quotes() {
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", sh_quote("a'b\"c")))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&o.stdout), "a'b\"c");
    }
}
