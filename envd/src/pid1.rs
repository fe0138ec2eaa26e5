//! `--init`: envd as PID 1 of the microVM.
//!
//! The initramfs has already configured the network and switched to the rootfs.
//! Here we mount the pseudo filesystems, set the hostname, then fork: PID 1
//! stays a pure zombie reaper (`waitpid(-1)` forever) while the child runs the
//! server. The split matters: a reaper in the server's own process would steal
//! the exit statuses tokio waits for on the processes it started.
//!
//! This runs before any thread exists (no tokio runtime yet), so `fork` is safe.

use nix::mount::{MsFlags, mount};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork};

struct Mount {
    source: &'static str,
    target: &'static str,
    fstype: &'static str,
    flags: MsFlags,
    data: Option<&'static str>,
}

fn mounts() -> Vec<Mount> {
    let secure = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC | MsFlags::MS_NODEV;
    vec![
        Mount {
            source: "proc",
            target: "/proc",
            fstype: "proc",
            flags: secure,
            data: None,
        },
        Mount {
            source: "sysfs",
            target: "/sys",
            fstype: "sysfs",
            flags: secure,
            data: None,
        },
        Mount {
            source: "devtmpfs",
            target: "/dev",
            fstype: "devtmpfs",
            flags: MsFlags::MS_NOSUID,
            data: Some("mode=0755"),
        },
        Mount {
            source: "devpts",
            target: "/dev/pts",
            fstype: "devpts",
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            data: Some("gid=5,mode=620,ptmxmode=666"),
        },
        Mount {
            source: "shm",
            target: "/dev/shm",
            fstype: "tmpfs",
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            data: Some("mode=1777"),
        },
        Mount {
            source: "tmpfs",
            target: "/tmp",
            fstype: "tmpfs",
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            data: Some("mode=1777"),
        },
        Mount {
            source: "tmpfs",
            target: "/run",
            fstype: "tmpfs",
            flags: MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            data: Some("mode=0755"),
        },
    ]
}

/// Whether something is already mounted on `target` (the initramfs may have done it).
fn is_mounted(target: &str) -> bool {
    let table = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    table
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(target))
}

/// Prepares the guest and forks; returns only in the child, which then runs the server.
pub fn become_init() {
    for m in mounts() {
        if m.target != "/proc" && is_mounted(m.target) {
            continue;
        }
        if m.target == "/proc" && std::path::Path::new("/proc/self").exists() {
            continue;
        }
        let _ = std::fs::create_dir_all(m.target);
        if let Err(e) = mount(Some(m.source), m.target, Some(m.fstype), m.flags, m.data) {
            eprintln!("envd init: mounting {} on {}: {e}", m.fstype, m.target);
        }
    }
    if let Err(e) = nix::unistd::sethostname("e2b") {
        eprintln!("envd init: sethostname: {e}");
    }
    let _ = std::os::unix::fs::symlink("/proc/self/fd", "/dev/fd");
    let _ = std::os::unix::fs::symlink("/proc/self/fd/0", "/dev/stdin");
    let _ = std::os::unix::fs::symlink("/proc/self/fd/1", "/dev/stdout");
    let _ = std::os::unix::fs::symlink("/proc/self/fd/2", "/dev/stderr");

    // SAFETY: single-threaded at this point (called before the runtime starts).
    match unsafe { fork() } {
        Ok(ForkResult::Child) => (),
        Ok(ForkResult::Parent { child }) => reap_forever(child),
        Err(e) => {
            eprintln!("envd init: fork failed ({e}); serving from PID 1 without a reaper");
        }
    }
}

fn reap_forever(server: Pid) -> ! {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(status) if status.pid() == Some(server) => {
                // The server died: the sandbox is useless without it, so bring the VM down.
                eprintln!("envd init: server exited ({status:?}); powering off");
                nix::unistd::sync();
                let _ = nix::sys::reboot::reboot(nix::sys::reboot::RebootMode::RB_POWER_OFF);
            }
            Ok(_) => {}
            Err(nix::errno::Errno::ECHILD) => std::thread::sleep(std::time::Duration::from_secs(1)),
            Err(_) => {}
        }
    }
}
