//! The QEMU command line and process. Every VM — a template's first boot and every restore —
//! gets the same device model, because a migration stream only loads into an identical
//! machine: q35, virtio-blk disk, virtio-net on user-mode networking, virtio-rng, vmgenid,
//! guest RAM in a shared file so its pages can be captured without streaming them.
//!
//! QEMU runs with `-daemonize`: the launching process returns once QEMU is initialised, and
//! the VM is not a child of sandboxd, so it survives a sandboxd restart.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::{Result, VmError};

pub const ENVD_PORT: u16 = 49983;

/// How the machine starts: a cold boot of a kernel, or a restore of saved device state.
pub enum Boot<'a> {
    Kernel { kernel: &'a Path, initrd: &'a Path, cmdline: &'a str },
    Incoming,
}

pub struct MachineSpec<'a> {
    pub run_dir: &'a Path,
    pub qmp: &'a Path,
    pub accel: &'a str,
    pub memory_mb: u32,
    pub vcpus: u32,
    /// `None`: no disk yet; a spare VM (`preconfig`) gets it through QMP ([`blockdev`]).
    pub disk: Option<&'a Path>,
    /// Where slirp's forward to envd listens (inside `netns` when set).
    pub envd_addr: SocketAddr,
    pub netns: Option<&'a str>,
    pub allow_internet: bool,
    pub boot: Boot<'a>,
    /// Stop before creating the machine (`-preconfig`): a spare VM, started ahead of a restore
    /// and finished by QMP `blockdev-add` + `x-exit-preconfig` once that restore needs it.
    pub preconfig: bool,
}

pub fn ram_path(run_dir: &Path) -> PathBuf {
    run_dir.join("mem.ram")
}
pub fn pid_path(run_dir: &Path) -> PathBuf {
    run_dir.join("qemu.pid")
}
pub fn console_path(run_dir: &Path) -> PathBuf {
    run_dir.join("console.log")
}

/// Whether the guest kernel of a booting VM panicked (its console says so). With `panic=-1`
/// the guest reboots in a loop and QEMU keeps running, so without this a broken image (say,
/// an init that cannot execute) would only be noticed at the boot deadline.
pub fn guest_panicked(run_dir: &Path) -> bool {
    std::fs::read(console_path(run_dir)).is_ok_and(|c| c.windows(PANIC.len()).any(|w| w == PANIC))
}

const PANIC: &[u8] = b"Kernel panic - not syncing";

fn args(spec: &MachineSpec<'_>) -> Vec<String> {
    let run = spec.run_dir;
    let mut a: Vec<String> = Vec::new();
    let mut push = |s: String| a.push(s);
    let cpu = if spec.accel == "kvm" { "host,-arch-capabilities" } else { "max" };
    push("-machine".into());
    push(format!("q35,accel={},memory-backend=mem", spec.accel));
    push("-cpu".into());
    push(cpu.into());
    push("-smp".into());
    push(spec.vcpus.to_string());
    push("-m".into());
    push(format!("{}M", spec.memory_mb));
    push("-object".into());
    push(format!(
        "memory-backend-file,id=mem,size={}M,mem-path={},share=on",
        spec.memory_mb,
        ram_path(run).display()
    ));
    for fixed in ["-nodefaults", "-no-user-config", "-display", "none", "-daemonize"] {
        push(fixed.into());
    }
    push("-pidfile".into());
    push(pid_path(run).display().to_string());
    push("-qmp".into());
    push(format!("unix:{},server=on,wait=off", spec.qmp.display()));
    push("-serial".into());
    push(format!("file:{}", console_path(run).display()));
    if let Some(disk) = spec.disk {
        push("-blockdev".into());
        push(format!("driver=qcow2,node-name=disk0,file.driver=file,file.filename={},discard=unmap", disk.display()));
    }
    push("-device".into());
    push("virtio-blk-pci,drive=disk0,id=vda".into());
    // User-mode networking: every clone gets the same guest address without clashing.
    // `restrict=on` cuts all guest egress while keeping the host-side forward to envd.
    let restrict = if spec.allow_internet { "off" } else { "on" };
    push("-netdev".into());
    push(format!(
        "user,id=net0,restrict={restrict},hostfwd=tcp:{}:{}-:{ENVD_PORT}",
        spec.envd_addr.ip(),
        spec.envd_addr.port()
    ));
    push("-device".into());
    push("virtio-net-pci,netdev=net0,mac=52:54:00:e2:b0:01".into());
    push("-device".into());
    push("virtio-rng-pci".into());
    // A new generation ID on every restore makes the guest kernel reseed its RNG.
    push("-device".into());
    push("vmgenid,guid=auto".into());
    match &spec.boot {
        Boot::Kernel { kernel, initrd, cmdline } => {
            push("-kernel".into());
            push(kernel.display().to_string());
            push("-initrd".into());
            push(initrd.display().to_string());
            push("-append".into());
            push(cmdline.to_string());
        }
        Boot::Incoming => {
            push("-incoming".into());
            push("defer".into());
        }
    }
    if spec.preconfig {
        push("-preconfig".into());
    }
    a
}

/// QMP `blockdev-add` arguments for the guest's disk: the same node as `-blockdev` above.
pub fn blockdev(disk: &Path) -> serde_json::Value {
    serde_json::json!({
        "driver": "qcow2",
        "node-name": "disk0",
        "discard": "unmap",
        "file": {"driver": "file", "filename": disk.display().to_string()},
    })
}

/// A free loopback TCP port for the envd forward. QEMU binds it right after; a lost race
/// makes QEMU fail to start, and the caller retries with another port.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// Starts QEMU and returns its pid once it is initialised (daemonized).
pub async fn spawn(spec: &MachineSpec<'_>) -> Result<u32> {
    let mut cmd = match spec.netns {
        Some(ns) => {
            let mut c = tokio::process::Command::new("ip");
            c.args(["netns", "exec", ns, &qemu_binary()]);
            c
        }
        None => tokio::process::Command::new(qemu_binary()),
    };
    let out = cmd
        .args(args(spec))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| VmError::Failed(format!("cannot run {}: {e}", qemu_binary())))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(VmError::Failed(format!("qemu failed to start: {}", err.trim())));
    }
    let pid = std::fs::read_to_string(pid_path(spec.run_dir))?;
    pid.trim().parse().map_err(|_| VmError::Failed(format!("bad qemu pid file: {pid:?}")))
}

pub fn qemu_binary() -> String {
    std::env::var("SANDBOXD_QEMU").unwrap_or_else(|_| "qemu-system-x86_64".into())
}

/// True when `pid` is a live QEMU whose QMP socket is `qmp` (guards against pid reuse).
pub fn is_our_qemu(pid: u32, qmp: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let needle = qmp.display().to_string();
    let cmdline = String::from_utf8_lossy(&cmdline);
    if !cmdline.contains(&needle) {
        return false;
    }
    // A zombie still has a cmdline on some kernels; check the state too.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit(')').next().map(|r| !r.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// SIGKILLs the VM if it is ours, and waits (bounded) until it is gone.
pub async fn kill(pid: u32, qmp: &Path) {
    if !is_our_qemu(pid, qmp) {
        return;
    }
    // SAFETY: plain kill(2) on a pid we verified belongs to our QEMU.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    for _ in 0..500 {
        if !is_our_qemu(pid, qmp) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    tracing::warn!(pid, "qemu did not exit after SIGKILL within 1 s");
}

/// Resolves once process `pid` has exited: waits on a pidfd (no polling). Also resolves at
/// once when the pid is already gone or pidfds are unavailable, so callers must re-check
/// (`is_our_qemu`) before acting.
pub async fn wait_exit(pid: u32) {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0 as libc::c_uint) };
    if fd < 0 {
        return;
    }
    // SAFETY: `fd` is a descriptor we just opened and nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: the AsyncFd owns `fd` (an OwnedFd), which stays open until it is dropped.
    let registered = unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) };
    if let Ok(fd) = registered {
        // A pidfd becomes readable when the process exits.
        let _ = fd.readable().await;
    }
}
