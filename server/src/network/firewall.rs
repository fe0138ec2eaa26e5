//! Per-sandbox egress rules: one nftables table (`inet sandbox`) inside the sandbox's own
//! network namespace, replaced atomically (one `nft -f` transaction) on every apply.
//!
//! QEMU's user-mode network (slirp) turns every guest connection into a socket QEMU opens in
//! the namespace, so the rules sit on the namespace's `output` hook:
//! - loopback (also what the redirect below rewrites to: the hook's `oifname` is still the
//!   veth then), replies (established/related) and sandboxd's own domain-proxy connections
//!   (socket mark [`PROXY_MARK`]) pass;
//! - destinations in `allow` pass (allow wins over deny);
//! - destinations in `deny` are rejected (TCP reset, ICMP otherwise), so a guest sees
//!   "connection refused" at once instead of waiting for a timeout;
//! - with allowed domains, TCP to ports 80/443 that no IP rule allows is redirected first to
//!   sandboxd's proxy in the namespace ([`super::egress`]), which matches the HTTP Host / TLS
//!   SNI against the domains; with transform rules all TCP to 80/443 is (the proxy needs to
//!   see every request to a rule's host, and applies the lists itself).
//!
//! The global `ip sandboxd` table on the host still drops private ranges for every sandbox
//! whatever these rules allow.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use super::Egress;

/// `SO_MARK` of the connections the domain proxy opens on a guest's behalf.
pub const PROXY_MARK: u32 = 0x5bd0_0e2b;
/// Where the domain proxy listens inside each namespace (HTTP and TLS).
pub const HTTP_PROXY_PORT: u16 = 15080;
pub const TLS_PROXY_PORT: u16 = 15443;

fn elements(nets: &[(Ipv4Addr, u8)]) -> String {
    nets.iter().map(|(ip, len)| format!("{ip}/{len}")).collect::<Vec<_>>().join(", ")
}

/// The whole ruleset for one namespace (a no-op table when nothing is restricted).
pub fn ruleset(egress: &Egress) -> String {
    let mut s = String::from("table inet sandbox\ndelete table inet sandbox\ntable inet sandbox {\n");
    let set = |name: &str, nets: &[(Ipv4Addr, u8)]| {
        let mut s = format!("  set {name} {{\n    type ipv4_addr; flags interval; auto-merge\n");
        if !nets.is_empty() {
            s.push_str(&format!("    elements = {{ {} }}\n", elements(nets)));
        }
        s.push_str("  }\n");
        s
    };
    s.push_str(&set("allow", &egress.allow));
    s.push_str(&set("deny", &egress.deny));
    s.push_str(&format!(
        "  chain out {{\n    type filter hook output priority filter; policy accept;\n\
         \x20   oifname \"lo\" accept\n\
         \x20   ip daddr 127.0.0.0/8 accept\n\
         \x20   ct state established,related accept\n\
         \x20   meta mark {PROXY_MARK:#x} accept\n\
         \x20   ip daddr @allow accept\n\
         \x20   ip daddr @deny meta l4proto tcp reject with tcp reset\n\
         \x20   ip daddr @deny reject\n\
         \x20 }}\n"
    ));
    if egress.needs_proxy() {
        let allowed = if egress.rules.is_empty() { "    ip daddr @allow return\n" } else { "" };
        s.push_str(&format!(
            "  chain to_proxy {{\n    type nat hook output priority -100; policy accept;\n\
             \x20   meta mark {PROXY_MARK:#x} return\n\
             \x20   oifname \"lo\" return\n\
             {allowed}\
             \x20   tcp dport 80 redirect to :{HTTP_PROXY_PORT}\n\
             \x20   tcp dport 443 redirect to :{TLS_PROXY_PORT}\n\
             \x20 }}\n"
        ));
    }
    s.push_str("}\n");
    s
}

/// Replaces the namespace's table with `egress` (blocking: runs `nft`).
pub fn apply(netns: &str, egress: &Egress) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nft: {e}"))?;
    child.stdin.take().expect("piped").write_all(ruleset(egress).as_bytes()).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("nft in {netns}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_has_allow_before_deny_and_redirects_only_with_domains() {
        let e = Egress::new(&["1.2.3.4".into(), "example.com".into()], &["0.0.0.0/0".into()], true);
        let r = ruleset(&e);
        assert!(r.find("@allow accept").unwrap() < r.find("@deny meta").unwrap());
        assert!(r.contains("elements = { 1.2.3.4/32 }") && r.contains("elements = { 0.0.0.0/0 }"));
        assert!(r.contains("redirect to :15080"));
        let open = ruleset(&Egress::default());
        assert!(!open.contains("redirect") && !open.contains("elements"));
        // With transform rules even allowed addresses go through the proxy.
        let mut t = Egress::default();
        t.rules.insert("api.example.com".into(), Vec::new());
        let r = ruleset(&t);
        assert!(r.contains("redirect to :15443") && !r.contains("@allow return"), "{r}");
    }
}
