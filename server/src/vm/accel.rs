//! Choosing the accelerator. `/dev/kvm` existing is not enough: on hosts whose KVM is PVM
//! (pagetable-based virtualization), a stock Debian kernel hangs forever right after its
//! real-mode setup code. So KVM is used only when a short probe boot of the guest kernel
//! reaches `start_kernel` ("Linux version" on the early console) within a few seconds;
//! otherwise TCG. The verdict is cached, keyed by the host kernel and
//! the guest kernel (in the temp directory), so later starts are instant. `SANDBOXD_ACCEL=kvm|tcg` overrides.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

const PROBE_TIMEOUT: Duration = Duration::from_secs(8);

#[derive(Serialize, Deserialize, PartialEq)]
struct Verdict {
    host_kernel: String,
    guest_kernel: String,
    accel: String,
}

/// The newest Debian kernel image in /boot (the guest kernel of templates).
pub fn guest_kernel() -> Option<PathBuf> {
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz-")))
        .collect();
    kernels.sort();
    kernels.pop()
}

pub async fn detect() -> &'static str {
    match std::env::var("SANDBOXD_ACCEL").as_deref() {
        Ok("kvm") => return log("kvm", "forced by SANDBOXD_ACCEL"),
        Ok("tcg") => return log("tcg", "forced by SANDBOXD_ACCEL"),
        _ => {}
    }
    if std::fs::OpenOptions::new().read(true).write(true).open("/dev/kvm").is_err() {
        return log("tcg", "/dev/kvm is not available");
    }
    let Some(kernel) = guest_kernel() else {
        return log("tcg", "no guest kernel in /boot to probe KVM with");
    };
    let host_kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    // SAFETY: geteuid has no preconditions.
    let cache = std::env::temp_dir().join(format!("sandboxd-accel-{}.json", unsafe { libc::geteuid() }));
    let key = |accel: &str| Verdict {
        host_kernel: host_kernel.clone(),
        guest_kernel: kernel.display().to_string(),
        accel: accel.to_string(),
    };
    if let Some(v) = std::fs::read(&cache).ok().and_then(|b| serde_json::from_slice::<Verdict>(&b).ok()) {
        if v.host_kernel == host_kernel && v.guest_kernel == kernel.display().to_string() {
            let accel = if v.accel == "kvm" { "kvm" } else { "tcg" };
            return log(accel, "cached probe result");
        }
    }
    let works = probe_kvm(&kernel).await;
    let accel = if works { "kvm" } else { "tcg" };
    let _ = std::fs::write(&cache, serde_json::to_vec(&key(accel)).unwrap_or_default());
    log(accel, if works { "KVM booted the guest kernel" } else { "KVM did not boot the guest kernel (e.g. PVM host); using software emulation" })
}

fn log(accel: &'static str, why: &str) -> &'static str {
    tracing::info!(accel, "accelerator: {accel} ({why})");
    accel
}

/// Boots the kernel under KVM with an early serial console and waits for its banner.
async fn probe_kvm(kernel: &Path) -> bool {
    let child = tokio::process::Command::new(super::qemu::qemu_binary())
        .args(["-machine", "q35,accel=kvm", "-cpu", "host,-arch-capabilities", "-m", "256M", "-smp", "1"])
        .args(["-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial", "stdio", "-kernel"])
        .arg(kernel)
        .args(["-append", "console=ttyS0 earlyprintk=ttyS0 panic=-1 quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let Ok(mut child) = child else { return false };
    let Some(mut out) = child.stdout.take() else { return false };
    let seen = tokio::time::timeout(PROBE_TIMEOUT, async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match out.read(&mut chunk).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.windows(13).any(|w| w == b"Linux version") {
                        return true;
                    }
                }
            }
        }
    })
    .await
    .unwrap_or(false);
    let _ = child.kill().await;
    seen
}
