//! This node's identity in the cluster: its ID, the URL other nodes reach it at, what it can
//! hold, and its compatibility key.
//!
//! A memory snapshot restores only into the same machine model: the same QEMU version, machine
//! type, CPU model and accelerator. Nodes whose keys differ never restore each other's images
//! (placement skips them; a restore there is refused).

use std::process::Command;

/// `qemu=<version>;machine=q35;cpu=<model>;accel=<tcg|kvm>`.
pub fn compat_key(accel: &str) -> String {
    let qemu = Command::new(crate::vm::qemu::qemu_binary())
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(|l| l.trim().to_string()))
        .unwrap_or_else(|| "unknown".into());
    let version = qemu.split_whitespace().nth(3).unwrap_or("unknown").to_string();
    // TCG emulates the same `max` CPU everywhere; KVM passes the host's CPU through.
    let cpu = if accel == "kvm" { format!("host:{}", host_cpu_model()) } else { "max".to_string() };
    format!("qemu={version};machine=q35;cpu={cpu};accel={accel}")
}

fn host_cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().replace(';', ",")))
        .unwrap_or_else(|| "unknown".into())
}

/// Capacity a node offers, registered with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub vcpus: u32,
    pub memory_mb: u64,
    pub disk_mb: u64,
    pub max_sandboxes: u64,
}

pub fn host_vcpus() -> u32 {
    std::thread::available_parallelism().map(|n| n.get() as u32).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_key_names_every_part_that_must_match() {
        let k = super::compat_key("tcg");
        assert!(k.starts_with("qemu="), "{k}");
        assert!(k.contains(";machine=q35;cpu=max;accel=tcg"), "{k}");
        assert!(!k.contains("qemu=unknown"), "qemu-system-x86_64 --version was not read: {k}");
    }
}
