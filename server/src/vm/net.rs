//! Network isolation. User-mode networking (slirp) maps the guest's gateway `10.0.2.2` to the
//! *host's* loopback, which would let any sandbox reach sandboxd's API and every other
//! service bound to 127.0.0.1. So each VM runs in its own network namespace (`sbxd-<n>`), whose
//! loopback holds nothing but that VM, joined to the host by a veth pair on a /30 of
//! `10.201.0.0/16`:
//!
//! - sandboxd reaches envd at `<namespace side>:49983` (slirp's host forward listens there);
//! - the guest's egress leaves the namespace through the veth and is masqueraded by the host,
//!   except to private, link-local and loopback ranges (other sandboxes, the LAN, metadata
//!   services), which nftables drops; nothing from a namespace may open a connection to the
//!   host itself (sandboxd's API included);
//! - `allow_internet_access: false` gives the namespace no route at all, and slirp runs with
//!   `restrict=on`.
//!
//! Needs root and `ip` (iproute2); egress also needs `nft` (nftables). Without root, VMs run in
//! sandboxd's own namespace with a loopback forward, and a warning says the guest can reach the
//! host's loopback. Slots are allocated under a file lock, so several sandboxd instances on one
//! host never collide.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::{Result, VmError, qemu::ENVD_PORT};

const PREFIX: &str = "sbxd-";
const MAX_SLOTS: u32 = 16_000;
const LOCK: &str = "/run/sandboxd-net.lock";

const NFT_RULES: &str = r#"table ip sandboxd
delete table ip sandboxd
table ip sandboxd {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 10.201.0.0/16 oifname != "sbxd*" masquerade
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "sbxd*" ip daddr { 0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/12, 192.168.0.0/16, 224.0.0.0/3 } drop
    oifname "sbxd*" ct state established,related accept
    oifname "sbxd*" drop
  }
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "sbxd*" ct state established,related accept
    iifname "sbxd*" drop
  }
}
"#;

/// Whether VMs get their own network namespace (decided once per process).
pub fn isolated() -> bool {
    static ISOLATED: OnceLock<bool> = OnceLock::new();
    *ISOLATED.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let ok = root && std::env::var("SANDBOXD_NETNS").as_deref() != Ok("off") && ip(&["netns", "list"]).is_ok();
        if ok {
            match egress_rules() {
                Ok(()) => tracing::info!("sandbox networking: one namespace per VM, egress filtered by nftables"),
                Err(e) => tracing::warn!("sandbox networking: one namespace per VM, but no egress ({e})"),
            }
        } else {
            tracing::warn!(
                "sandbox networking: VMs share sandboxd's network namespace (needs root and iproute2): \
                 guests can reach services on the host's loopback"
            );
        }
        ok
    })
}

fn egress_rules() -> std::result::Result<(), String> {
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(|e| format!("ip_forward: {e}"))?;
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e} (install nftables)"))?;
    use std::io::Write;
    child.stdin.take().expect("piped").write_all(NFT_RULES.as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("nft: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

fn ip(args: &[&str]) -> std::result::Result<(), String> {
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().map_err(|e| format!("ip: {e}"))?;
    if !out.status.success() {
        return Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

fn ip_batch(netns: Option<&str>, script: &str) -> std::result::Result<(), String> {
    let mut cmd = Command::new("ip");
    if let Some(ns) = netns {
        cmd.args(["-n", ns]);
    }
    let mut child = cmd
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("ip: {e}"))?;
    use std::io::Write;
    child.stdin.take().expect("piped").write_all(script.as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("ip -batch: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

/// A VM's network: its namespace (if isolated) and where envd is reached from the host.
#[derive(Debug, Clone)]
pub struct Slot {
    pub netns: Option<String>,
    /// Address slirp's host forward listens on (inside the namespace when isolated).
    pub envd_addr: SocketAddr,
}

fn addrs(n: u32) -> (Ipv4Addr, Ipv4Addr) {
    let base = u32::from(Ipv4Addr::new(10, 201, 0, 0)) + n * 4;
    (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2))
}

/// The slot a VM's envd address belongs to (for cleanup after a restart).
pub fn slot_of(envd_addr: SocketAddr) -> Option<String> {
    let SocketAddr::V4(v4) = envd_addr else { return None };
    let ip = u32::from(*v4.ip());
    let base = u32::from(Ipv4Addr::new(10, 201, 0, 0));
    (ip > base && ip < base + MAX_SLOTS * 4).then(|| format!("{PREFIX}{}", (ip - base) / 4))
}

/// Creates a namespace + veth for one VM. `port` is used only without isolation.
pub fn create(internet: bool, fallback_port: impl FnOnce() -> Result<u16>) -> Result<Slot> {
    if !isolated() {
        let port = fallback_port()?;
        return Ok(Slot { netns: None, envd_addr: SocketAddr::from(([127, 0, 0, 1], port)) });
    }
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(LOCK)?;
    use std::os::unix::io::AsRawFd;
    // SAFETY: flock on an fd we own; released when `lock` is dropped.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(VmError::Io(std::io::Error::last_os_error()));
    }
    let used: std::collections::HashSet<String> = std::fs::read_dir("/run/netns")
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    // A deleted namespace's veth pair is torn down asynchronously by the kernel, so a slot is
    // free only when its host-side interface is gone too.
    let n = (0..MAX_SLOTS)
        .find(|n| !used.contains(&format!("{PREFIX}{n}")) && !Path::new("/sys/class/net").join(format!("sbxd{n}")).exists())
        .ok_or_else(|| VmError::Failed("no free network slot".into()))?;
    let ns = format!("{PREFIX}{n}");
    let host_if = format!("sbxd{n}");
    let (host_ip, ns_ip) = addrs(n);
    let setup = || -> std::result::Result<(), String> {
        ip(&["netns", "add", &ns])?;
        ip_batch(
            None,
            &format!(
                "link add {host_if} type veth peer name veth0 netns {ns}\n\
                 addr add {host_ip}/30 dev {host_if}\n\
                 link set {host_if} up\n"
            ),
        )?;
        let mut inside = format!("addr add {ns_ip}/30 dev veth0\nlink set veth0 up\nlink set lo up\n");
        if internet {
            inside.push_str(&format!("route add default via {host_ip}\n"));
        }
        ip_batch(Some(&ns), &inside)
    };
    if let Err(e) = setup() {
        let _ = ip(&["netns", "del", &ns]);
        return Err(VmError::Failed(format!("network setup: {e}")));
    }
    Ok(Slot { netns: Some(ns), envd_addr: SocketAddr::from((ns_ip, ENVD_PORT)) })
}

/// Deletes a VM's namespace (its veth pair goes with it). Idempotent.
pub fn destroy(envd_addr: SocketAddr) {
    if let Some(ns) = slot_of(envd_addr) {
        if Path::new("/run/netns").join(&ns).exists() {
            if let Err(e) = ip(&["netns", "del", &ns]) {
                tracing::warn!("cannot delete network namespace {ns}: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_map_to_disjoint_subnets_and_back() {
        let (h0, g0) = addrs(0);
        let (h1, g1) = addrs(1);
        assert_eq!((h0, g0), (Ipv4Addr::new(10, 201, 0, 1), Ipv4Addr::new(10, 201, 0, 2)));
        assert_eq!((h1, g1), (Ipv4Addr::new(10, 201, 0, 5), Ipv4Addr::new(10, 201, 0, 6)));
        assert_eq!(slot_of(SocketAddr::from((addrs(777).1, ENVD_PORT))).as_deref(), Some("sbxd-777"));
        assert_eq!(slot_of(SocketAddr::from(([127, 0, 0, 1], 4000))), None);
    }
}
