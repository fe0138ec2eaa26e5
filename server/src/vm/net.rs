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
//! - a sandbox's own egress rules (`allowOut`/`denyOut`, `allow_internet_access: false`) live
//!   in its namespace, in its own nftables table (see `crate::network::firewall`), so they can
//!   change while it runs; where that is unavailable (or for template builds),
//!   `allow_internet_access: false` gives the namespace no route at all and slirp runs with
//!   `restrict=on`;
//! - guest ports other than envd's are forwarded on demand ([`port_addr`]): in a namespace the
//!   forward listens on the same port of the namespace's address, which nothing else uses.
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
HOST_DNS    iifname "sbxd*" ip daddr { 0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/12, 192.168.0.0/16, 224.0.0.0/3 } drop
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

/// Whether per-sandbox egress rules can be enforced (own namespaces and a working nftables).
pub fn filtering() -> bool {
    isolated() && *EGRESS_OK.get().unwrap_or(&false)
}

static EGRESS_OK: OnceLock<bool> = OnceLock::new();

fn egress_rules() -> std::result::Result<(), String> {
    let r = egress_rules_inner();
    let _ = EGRESS_OK.set(r.is_ok());
    r
}

fn egress_rules_inner() -> std::result::Result<(), String> {
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(|e| format!("ip_forward: {e}"))?;
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e} (install nftables)"))?;
    use std::io::Write;
    let rules = nft_rules(&host_nameservers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()));
    child.stdin.take().expect("piped").write_all(rules.as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("nft: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

/// The shared table, with DNS to the host's own resolvers let through: slirp forwards the
/// guest's queries (to `10.0.2.3`) to the nameservers of the host's resolv.conf, and a resolver
/// in a private range (a LAN or cloud DNS at 10.x, as on these hosts) would otherwise be dropped
/// with the rest of the private ranges, leaving sandboxes without name resolution.
fn nft_rules(nameservers: &[Ipv4Addr]) -> String {
    let dns = if nameservers.is_empty() {
        String::new()
    } else {
        let list = nameservers.iter().map(Ipv4Addr::to_string).collect::<Vec<_>>().join(", ");
        format!("    iifname \"sbxd*\" ip daddr {{ {list} }} meta l4proto {{ tcp, udp }} th dport 53 accept\n")
    };
    NFT_RULES.replace("HOST_DNS", &dns)
}

/// IPv4 `nameserver`s of a resolv.conf, but loopback ones (unreachable from a namespace).
fn host_nameservers(resolv_conf: &str) -> Vec<Ipv4Addr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|v| v.trim().parse::<Ipv4Addr>().ok())
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .collect()
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

/// Installs a sandbox's egress rules in its namespace (replacing the previous ones) and
/// starts, updates or stops its domain proxy. Needs a Tokio runtime.
pub fn apply_egress(envd_addr: SocketAddr, egress: &crate::network::Egress) -> Result<()> {
    let ns = slot_of(envd_addr).filter(|_| filtering()).ok_or_else(|| {
        VmError::Failed("egress rules need sandboxd to run as root with nftables (one namespace per VM)".into())
    })?;
    crate::network::firewall::apply(&ns, egress).map_err(VmError::Failed)?;
    crate::network::egress::install(&ns, egress).map_err(VmError::Failed)
}

/// Where sandboxd reaches guest port `port` once QEMU forwards it: the same port on the
/// namespace's address, or (without namespaces) a free loopback port.
pub fn port_addr(envd_addr: SocketAddr, port: u16) -> Result<SocketAddr> {
    if slot_of(envd_addr).is_some() && isolated() {
        return Ok(SocketAddr::new(envd_addr.ip(), port));
    }
    Ok(SocketAddr::from(([127, 0, 0, 1], super::qemu::free_port()?)))
}

/// Deletes a VM's namespace (its veth pair goes with it). Idempotent.
pub fn destroy(envd_addr: SocketAddr) {
    if let Some(ns) = slot_of(envd_addr) {
        crate::network::egress::remove(&ns);
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

    #[test]
    fn host_resolvers_are_let_through_before_private_ranges_drop() {
        let ns = host_nameservers("# x\nnameserver 10.255.255.53\nnameserver 127.0.0.53\nnameserver ::1\nsearch lan\n");
        assert_eq!(ns, [Ipv4Addr::new(10, 255, 255, 53)]);
        let rules = nft_rules(&ns);
        let accept = rules.find("ip daddr { 10.255.255.53 } meta l4proto { tcp, udp } th dport 53 accept").expect("dns rule");
        assert!(accept < rules.find("10.0.0.0/8").expect("private drop"), "the DNS accept must come first");
        assert!(!nft_rules(&[]).contains("HOST_DNS") && !nft_rules(&[]).contains("dport 53"));
    }
}
