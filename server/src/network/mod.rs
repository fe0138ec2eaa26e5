//! A sandbox's network configuration (E2B's `SandboxNetworkConfig`): ingress controls the
//! proxy enforces (`allowPublicTraffic` + traffic access token, `maskRequestHost`) and egress
//! rules the sandbox's own network namespace enforces (`allowOut`, `denyOut`).
//!
//! Invariants:
//! - Whatever is stored passed [`validate_egress`] / [`NetworkRequest::into_config`]: a bad
//!   rule is a 400 before anything changes, never a half-applied firewall.
//! - Options sandboxd cannot honour (`egressProxy`, `dnsServers`, `httpsPorts`) are refused
//!   with 400, never accepted and ignored. Transform `rules` are enforced by the egress proxy
//!   ([`rules`], [`intercept`]).
//! - Egress semantics are E2B's: an allowed destination wins over a denied one; `denyOut` holds
//!   IPs/CIDRs only; a domain in `allowOut` needs `0.0.0.0/0` (ALL_TRAFFIC) in `denyOut`;
//!   `allow_internet_access: false` denies ALL_TRAFFIC (allowed destinations still pass).

pub mod ca;
pub mod egress;
pub mod firewall;
pub mod identity;
mod intercept;
pub mod rules;
mod sni;

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

/// E2B's `ALL_TRAFFIC`.
pub const ALL_TRAFFIC: &str = "0.0.0.0/0";
/// The header `get_host(port)` traffic of a sandbox without public traffic must carry.
pub const TRAFFIC_TOKEN_HEADER: &str = "e2b-traffic-access-token";
/// The placeholder `maskRequestHost` may contain.
pub const PORT_PLACEHOLDER: &str = "${PORT}";

const DOMAINS_NEED_DENY_ALL: &str = "When specifying allowed domains in allow out, you must include 'ALL_TRAFFIC' in deny out to block all other traffic.";

/// What is stored with a sandbox and returned as `SandboxDetail.network`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_public_traffic: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_out: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny_out: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask_request_host: Option<String>,
    /// Transform rules (see [`rules`]); placeholders are stored, never their values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<rules::Rules>,
    /// `NewSandbox.iam.tokens` (kept here so the proxy has them; not shown in `network`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_tokens: Option<std::collections::BTreeMap<String, identity::TokenSpec>>,
}

impl NetworkConfig {
    /// True when `get_host(port)` traffic must present the traffic access token.
    pub fn private(&self) -> bool {
        self.allow_public_traffic == Some(false)
    }

    /// The Host header the guest sees for traffic to `port`, if masked.
    pub fn masked_host(&self, port: u16) -> Option<String> {
        self.mask_request_host.as_ref().map(|h| h.replace(PORT_PLACEHOLDER, &port.to_string()))
    }

    /// The egress rules to enforce, given the sandbox's `allow_internet_access`.
    pub fn egress(&self, allow_internet: bool) -> Egress {
        let mut e =
            Egress::new(self.allow_out.as_deref().unwrap_or(&[]), self.deny_out.as_deref().unwrap_or(&[]), allow_internet);
        e.rules = self.rules.clone().unwrap_or_default();
        e.workload.tokens = self.iam_tokens.clone().unwrap_or_default();
        e
    }

    /// Whether a token name is in `iam.tokens`.
    fn has_token(&self, name: &str) -> bool {
        self.iam_tokens.as_ref().is_some_and(|t| t.contains_key(name))
    }
}

/// `NewSandbox.network` and the body of `PUT /sandboxes/{id}/network` (which also has
/// `allow_internet_access`). Unsupported fields are captured to be refused.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkRequest {
    pub allow_public_traffic: Option<bool>,
    pub allow_out: Option<Vec<String>>,
    pub deny_out: Option<Vec<String>>,
    pub mask_request_host: Option<String>,
    pub egress_proxy: Option<serde_json::Value>,
    pub rules: Option<serde_json::Value>,
    pub dns_servers: Option<serde_json::Value>,
    pub https_ports: Option<serde_json::Value>,
    #[serde(rename = "allow_internet_access")]
    pub allow_internet_access: Option<bool>,
}

impl NetworkRequest {
    fn refuse_unsupported(&self) -> ApiResult<()> {
        let set = |v: &Option<serde_json::Value>| match v {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Array(a)) => !a.is_empty(),
            Some(serde_json::Value::Object(o)) => !o.is_empty(),
            Some(_) => true,
        };
        for (name, v) in [
            ("egressProxy", &self.egress_proxy),
            ("dnsServers", &self.dns_servers),
            ("httpsPorts", &self.https_ports),
        ] {
            if set(v) {
                return Err(ApiError::bad_request(format!("network.{name} is not supported by sandboxd")));
            }
        }
        Ok(())
    }

    /// `rules`, parsed and checked (`null` or `{}` is none); token placeholders must name a
    /// token `registered` in `iam.tokens`.
    fn parse_rules(&self, registered: &dyn Fn(&str) -> bool) -> ApiResult<Option<rules::Rules>> {
        let parsed: Option<rules::Rules> = match &self.rules {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(
                serde_json::from_value(v.clone()).map_err(|e| ApiError::bad_request(format!("network.rules: {e}")))?,
            ),
        };
        let parsed = parsed.filter(|r| !r.is_empty());
        if let Some(r) = &parsed {
            rules::validate(r, registered)?;
        }
        Ok(parsed)
    }

    /// Validates a create request's `network` (`secure` is the request's flag, `iam_tokens`
    /// its validated `iam.tokens`).
    pub fn into_config(self, secure: bool, iam_tokens: Option<IamTokens>) -> ApiResult<NetworkConfig> {
        self.refuse_unsupported()?;
        if self.allow_public_traffic == Some(false) && !secure {
            return Err(ApiError::bad_request(
                "You cannot create a sandbox without public access unless you enable secure envd access via 'secure' flag.",
            ));
        }
        if let Some(mask) = &self.mask_request_host {
            validate_mask(mask)?;
        }
        validate_egress(self.allow_out.as_deref().unwrap_or(&[]), self.deny_out.as_deref().unwrap_or(&[]))?;
        let rules = self.parse_rules(&|t| iam_tokens.as_ref().is_some_and(|m| m.contains_key(t)))?;
        Ok(NetworkConfig {
            allow_public_traffic: self.allow_public_traffic,
            allow_out: self.allow_out,
            deny_out: self.deny_out,
            mask_request_host: self.mask_request_host,
            rules,
            iam_tokens,
        })
    }

    /// The checks of [`Self::apply_update`] that do not depend on the sandbox.
    pub fn validate_update(&self) -> ApiResult<()> {
        self.refuse_unsupported()?;
        if self.allow_public_traffic.is_some() || self.mask_request_host.is_some() {
            return Err(ApiError::bad_request(
                "allowPublicTraffic and maskRequestHost are fixed at creation; the update takes allowOut, denyOut, rules and allow_internet_access",
            ));
        }
        validate_egress(self.allow_out.as_deref().unwrap_or(&[]), self.deny_out.as_deref().unwrap_or(&[]))?;
        // Token names are checked against the sandbox's in `apply_update`.
        self.parse_rules(&|_| true).map(drop)
    }

    /// Validates an update: the egress lists are replaced (omitted ones are cleared), the
    /// ingress settings are kept, as in E2B. Returns the new config and internet flag.
    pub fn apply_update(self, current: &NetworkConfig, allow_internet: bool) -> ApiResult<(NetworkConfig, bool)> {
        self.validate_update()?;
        let rules = self.parse_rules(&|t| current.has_token(t))?;
        let config = NetworkConfig { allow_out: self.allow_out, deny_out: self.deny_out, rules, ..current.clone() };
        Ok((config, self.allow_internet_access.unwrap_or(allow_internet)))
    }
}

/// Validated `iam.tokens`.
pub type IamTokens = std::collections::BTreeMap<String, identity::TokenSpec>;

/// `NewSandbox.iam` (`{tokens: {name: {audience, tokenType}}}`), E2B's checks: a name cannot be
/// empty or hold `{`, `}` or control characters (it goes into a placeholder), the audience is
/// a non-empty string, and `JWT-SVID` is the only token type. `None` without tokens.
pub fn parse_iam(iam: Option<&serde_json::Value>) -> ApiResult<Option<IamTokens>> {
    #[derive(Deserialize)]
    struct Iam {
        tokens: Option<IamTokens>,
    }
    let bad = |m: String| ApiError::bad_request(format!("iam: {m}"));
    let iam: Option<Iam> = match iam {
        None | Some(serde_json::Value::Null) => None,
        Some(v) => Some(serde_json::from_value(v.clone()).map_err(|e| bad(e.to_string()))?),
    };
    let Some(tokens) = iam.and_then(|i| i.tokens).filter(|t| !t.is_empty()) else { return Ok(None) };
    for (name, spec) in &tokens {
        if name.is_empty() || name.chars().any(|c| c == '{' || c == '}' || c.is_control()) {
            return Err(bad(format!("token name {name:?} cannot be empty or contain '{{', '}}' or control characters")));
        }
        if spec.audience.is_empty() {
            return Err(bad(format!("token {name:?} needs an audience")));
        }
        if spec.token_type != identity::TOKEN_TYPE {
            return Err(bad(format!(
                "token {name:?} has type {:?}; {} is the only supported type",
                spec.token_type,
                identity::TOKEN_TYPE
            )));
        }
    }
    Ok(Some(tokens))
}

/// `maskRequestHost`: a host with an optional port, ASCII only (E2B's check).
fn validate_mask(mask: &str) -> ApiResult<()> {
    let bad = || ApiError::bad_request(format!("mask request host is not valid: {mask}"));
    let probe = mask.replace(PORT_PLACEHOLDER, "1");
    let (host, port) = match probe.rsplit_once(':') {
        Some((h, p)) if !h.contains(']') || h.ends_with(']') => (h, Some(p)),
        _ => (probe.as_str(), None),
    };
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        return Err(bad());
    }
    if !mask.is_ascii() {
        return Err(ApiError::bad_request(format!(
            "mask request host '{mask}' is not ASCII. Please use ASCII characters only."
        )));
    }
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b)) {
        return Err(bad());
    }
    Ok(())
}

/// One `allowOut` / `denyOut` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An IPv4 network (a bare IP is a /32).
    Net(Ipv4Addr, u8),
    /// A domain, `*.suffix`, or `*` (matched against HTTP Host / TLS SNI).
    Domain(String),
}

fn parse_net(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip, len.parse::<u8>().ok().filter(|l| *l <= 32)?),
        None => (s, 32),
    };
    let ip: Ipv4Addr = ip.parse().ok()?;
    Some((ip, len))
}

/// A hostname (RFC 1123 labels), optionally with one leading `*.` label, or `*`.
pub(crate) fn valid_domain(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let name = s.strip_prefix("*.").unwrap_or(s);
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        // All-numeric dotted names would be IPs; a malformed IP is not a domain.
        && !name.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

fn parse_target(s: &str) -> Option<Target> {
    if s.bytes().any(|b| b.is_ascii_digit() || b == b'/') && (s.contains('/') || s.parse::<Ipv4Addr>().is_ok()) {
        return parse_net(s).map(|(ip, len)| Target::Net(ip, len));
    }
    if s.contains(':') {
        return None; // IPv6: the guest has no IPv6 route at all.
    }
    valid_domain(s).then(|| Target::Domain(s.to_ascii_lowercase()))
}

/// E2B's checks: `denyOut` entries are IPs or CIDRs; `allowOut` entries are IPs, CIDRs or
/// domains; an unspecified address other than `0.0.0.0/0` is refused; domains in `allowOut`
/// need `0.0.0.0/0` in `denyOut`.
pub fn validate_egress(allow_out: &[String], deny_out: &[String]) -> ApiResult<()> {
    for d in deny_out {
        match parse_target(d.trim()) {
            Some(Target::Net(ip, len)) if !ip.is_unspecified() || (len == 0 && d.trim() == ALL_TRAFFIC) => {}
            _ => return Err(ApiError::bad_request(format!("invalid denied CIDR {d}"))),
        }
    }
    let mut domains = false;
    for a in allow_out {
        match parse_target(a.trim()) {
            Some(Target::Net(ip, len)) if !ip.is_unspecified() || (len == 0 && a.trim() == ALL_TRAFFIC) => {}
            Some(Target::Domain(_)) => domains = true,
            _ => return Err(ApiError::bad_request(format!("invalid allowed address {a}"))),
        }
    }
    if domains && !deny_out.iter().any(|d| d.trim() == ALL_TRAFFIC) {
        return Err(ApiError::bad_request(DOMAINS_NEED_DENY_ALL));
    }
    Ok(())
}

/// Validated egress rules, ready for the firewall.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Egress {
    pub allow: Vec<(Ipv4Addr, u8)>,
    pub deny: Vec<(Ipv4Addr, u8)>,
    /// Lower-case domain patterns (`example.com`, `*.example.com`, `*`).
    pub domains: Vec<String>,
    /// Transform rules: HTTP(S) to these hosts goes through the intercepting proxy.
    pub rules: rules::Rules,
    /// Whose workload tokens the rules may mint (see [`identity`]).
    pub workload: identity::Workload,
}

fn in_nets(nets: &[(Ipv4Addr, u8)], ip: Ipv4Addr) -> bool {
    nets.iter().any(|(net, len)| {
        let mask = if *len == 0 { 0 } else { u32::MAX << (32 - u32::from(*len)) };
        u32::from(ip) & mask == u32::from(*net) & mask
    })
}

/// Whether `host` (lower-case, no trailing dot) matches a domain pattern (`*` matches all).
pub(crate) fn domain_matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => {
            host.len() > suffix.len() + 1 && host.ends_with(suffix) && host[..host.len() - suffix.len()].ends_with('.')
        }
        None => host == pattern.trim_end_matches('.'),
    }
}

impl Egress {
    /// From already validated lists (invalid entries are skipped).
    pub fn new(allow_out: &[String], deny_out: &[String], allow_internet: bool) -> Self {
        let mut e = Egress::default();
        for a in allow_out {
            match parse_target(a.trim()) {
                Some(Target::Net(ip, len)) => e.allow.push((ip, len)),
                Some(Target::Domain(d)) => e.domains.push(d),
                None => {}
            }
        }
        for d in deny_out {
            if let Some(Target::Net(ip, len)) = parse_target(d.trim()) {
                e.deny.push((ip, len));
            }
        }
        if !allow_internet {
            e.deny = vec![(Ipv4Addr::UNSPECIFIED, 0)];
        }
        e
    }

    /// Nothing to enforce beyond the host's global rules (nothing denied, no proxy needed).
    pub fn is_open(&self) -> bool {
        self.deny.is_empty() && !self.needs_proxy()
    }

    /// Whether `host` (an HTTP Host or TLS SNI, without port) matches an allowed domain.
    pub fn allows_domain(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return false;
        }
        self.domains.iter().any(|p| domain_matches(p, &host))
    }

    /// Whether a connection the proxy got (named `name`, to `ip`) may go out: an allowed
    /// address or domain wins; else it passes unless its address is denied.
    pub fn allows(&self, name: Option<&str>, ip: Ipv4Addr) -> bool {
        in_nets(&self.allow, ip) || name.is_some_and(|n| self.allows_domain(n)) || !in_nets(&self.deny, ip)
    }

    /// Names the sandbox the workload tokens are minted for.
    pub fn identify(&mut self, sandbox_id: &str, template_id: &str) {
        self.workload.sandbox_id = sandbox_id.to_string();
        self.workload.template_id = template_id.to_string();
    }

    /// Whether the namespace needs the proxy (domains to match or requests to transform).
    pub fn needs_proxy(&self) -> bool {
        !self.domains.is_empty() || !self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn egress_validation_follows_e2b() {
        assert!(validate_egress(&v(&["1.1.1.1", "8.8.8.0/24"]), &v(&["0.0.0.0/0"])).is_ok());
        assert!(validate_egress(&v(&["example.com", "*.example.org"]), &v(&[ALL_TRAFFIC])).is_ok());
        let e = validate_egress(&v(&["example.com"]), &v(&["1.2.3.4"])).unwrap_err();
        assert!(e.message.contains("ALL_TRAFFIC"));
        assert!(validate_egress(&[], &v(&["example.com"])).is_err(), "domains cannot be denied");
        assert!(validate_egress(&[], &v(&["10.0.0.0/33"])).is_err());
        assert!(validate_egress(&[], &v(&["300.1.1.1"])).is_err());
        assert!(validate_egress(&[], &v(&["0.0.0.0"])).is_err());
        assert!(validate_egress(&v(&["bad_domain!"]), &v(&[ALL_TRAFFIC])).is_err());
        assert!(validate_egress(&v(&["1.2.3"]), &[]).is_err());
        assert!(validate_egress(&v(&["::1"]), &[]).is_err());
    }

    #[test]
    fn domain_patterns() {
        let e = Egress::new(&v(&["example.com", "*.test.org"]), &v(&[ALL_TRAFFIC]), true);
        assert!(e.allows_domain("example.com") && e.allows_domain("EXAMPLE.com."));
        assert!(!e.allows_domain("www.example.com"));
        assert!(e.allows_domain("a.test.org") && e.allows_domain("a.b.test.org"));
        assert!(!e.allows_domain("test.org") && !e.allows_domain("xtest.org"));
        assert_eq!(e.deny, vec![(Ipv4Addr::UNSPECIFIED, 0)]);
    }

    #[test]
    fn the_proxy_lets_through_what_the_lists_allow() {
        let e = Egress::new(&v(&["example.com", "1.2.3.0/24"]), &v(&[ALL_TRAFFIC]), true);
        assert!(e.allows(Some("example.com"), Ipv4Addr::new(9, 9, 9, 9)));
        assert!(e.allows(None, Ipv4Addr::new(1, 2, 3, 4)));
        assert!(!e.allows(Some("other.com"), Ipv4Addr::new(9, 9, 9, 9)));
        let some = Egress::new(&[], &v(&["9.9.9.0/24"]), true);
        assert!(some.allows(None, Ipv4Addr::new(8, 8, 8, 8)) && !some.allows(None, Ipv4Addr::new(9, 9, 9, 1)));
        assert!(Egress::default().allows(None, Ipv4Addr::new(8, 8, 8, 8)));
        let mut rules_only = Egress::default();
        assert!(rules_only.is_open());
        rules_only.rules.insert("api.example.com".into(), Vec::new());
        assert!(!rules_only.is_open(), "transform rules need the proxy even with nothing denied");
    }

    #[test]
    fn no_internet_denies_all_but_keeps_allowed() {
        let e = Egress::new(&v(&["1.1.1.1"]), &[], false);
        assert_eq!(e.allow, vec![(Ipv4Addr::new(1, 1, 1, 1), 32)]);
        assert_eq!(e.deny, vec![(Ipv4Addr::UNSPECIFIED, 0)]);
    }

    #[test]
    fn mask_host_checks_and_placeholder() {
        assert!(validate_mask("${PORT}-myapp.example.com").is_ok());
        assert!(validate_mask("localhost:${PORT}").is_ok());
        assert!(validate_mask("exämple.com").is_err());
        assert!(validate_mask("a b").is_err());
        let c = NetworkConfig { mask_request_host: Some("${PORT}-x.example.com".into()), ..Default::default() };
        assert_eq!(c.masked_host(8000).as_deref(), Some("8000-x.example.com"));
    }
}
