//! Memory of a sandbox as the host sees it: the proportional set size (PSS) of its QEMU
//! process, which splits shared pages (page cache, shared libraries) among their users.

use std::path::Path;

/// PIDs of QEMU processes whose command line mentions `dir` (their run directory).
pub fn qemu_pids_under(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.starts_with("qemu-system") && cmdline.contains(&needle) {
            pids.push(pid);
        }
    }
    pids
}

/// PSS in MiB of the QEMU process running `sandbox_id` under `run_dir`, found by its pid file
/// (a VM that began as a spare QEMU names its spare directory on its command line instead).
pub fn sandbox_pss_mib(run_dir: &Path, sandbox_id: &str) -> Option<f64> {
    let pid: u32 = std::fs::read_to_string(run_dir.join(sandbox_id).join("qemu.pid")).ok()?.trim().parse().ok()?;
    if !std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(b"qemu-system")) {
        return None;
    }
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let kb: f64 = rollup.lines().find(|l| l.starts_with("Pss:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
