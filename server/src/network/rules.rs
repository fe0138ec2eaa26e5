//! Transform rules (`network.rules`): headers the egress proxy sets on a sandbox's HTTP and
//! HTTPS requests to given hosts, with `${e2b.secrets.<name>}` placeholders resolved from the
//! secrets store for every request, so a secret's value never enters the sandbox.
//!
//! Shape (E2B's): `{"<host>": [{"transform": {"headers": {"<name>": "<value>"}}}]}`; a host
//! is a domain, `*.suffix` or an IPv4 address. As in E2B a rule does not allow traffic by
//! itself: the host must also be allowed by `allowOut` / `denyOut`. Rules of all matching
//! hosts apply in order; a later header of the same name wins, and a rule's header replaces
//! the one the sandbox sent.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transform {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<Transform>,
}

/// `SandboxNetworkConfig.rules`.
pub type Rules = BTreeMap<String, Vec<Rule>>;

pub const SECRET_PREFIX: &str = "${e2b.secrets.";
/// A workload identity token (see [`super::identity`]), minted per request.
pub const IDENTITY_PREFIX: &str = "${e2b.identity.tokens.";

/// A placeholder in a header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    Secret(String),
    Token(String),
}

/// Splits a header value into literal text and placeholders.
fn scan(value: &str) -> Result<Vec<Result<&str, Placeholder>>, String> {
    let mut out = Vec::new();
    let mut rest = value;
    loop {
        let next = [(SECRET_PREFIX, true), (IDENTITY_PREFIX, false)]
            .into_iter()
            .filter_map(|(p, secret)| rest.find(p).map(|i| (i, p, secret)))
            .min_by_key(|(i, _, _)| *i);
        let Some((i, prefix, secret)) = next else {
            out.push(Ok(rest));
            return Ok(out);
        };
        out.push(Ok(&rest[..i]));
        let after = &rest[i + prefix.len()..];
        let end = after.find('}').ok_or_else(|| format!("unterminated placeholder in {value:?}"))?;
        let name = &after[..end];
        if name.is_empty() {
            return Err(format!("empty placeholder name in {value:?}"));
        }
        out.push(Err(if secret { Placeholder::Secret(name.to_ascii_lowercase()) } else { Placeholder::Token(name.to_string()) }));
        rest = &after[end + 1..];
    }
}

/// The placeholders of a header value, or why it is malformed.
pub fn placeholders(value: &str) -> Result<Vec<Placeholder>, String> {
    Ok(scan(value)?.into_iter().filter_map(Result::err).collect())
}

/// Replaces every placeholder: secrets with their current value, tokens with a new token.
pub fn resolve(
    value: &str,
    secret: &dyn Fn(&str) -> Option<String>,
    token: &dyn Fn(&str) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    for part in scan(value)? {
        match part {
            Ok(text) => out.push_str(text),
            Err(Placeholder::Secret(name)) => {
                out.push_str(&secret(&name).ok_or_else(|| format!("secret \"{name}\" not found"))?)
            }
            Err(Placeholder::Token(name)) => out.push_str(&token(&name)?),
        }
    }
    Ok(out)
}

fn valid_host(h: &str) -> bool {
    h.parse::<Ipv4Addr>().is_ok() || (h != "*" && super::valid_domain(h))
}

/// E2B-shaped checks of `rules`. As in E2B a secret a placeholder names need not exist yet:
/// it is resolved per request (a request while it does not exist is answered 502). A token
/// placeholder must name a token of the sandbox's `iam.tokens` (`registered`).
pub fn validate(rules: &Rules, registered: &dyn Fn(&str) -> bool) -> ApiResult<()> {
    let err = |m: String| ApiError::bad_request(format!("network.rules: {m}"));
    let bad = |m: String| Err(err(m));
    for (host, list) in rules {
        if !valid_host(host) {
            return bad(format!("invalid host {host:?}: use a domain, *.domain or an IPv4 address"));
        }
        for rule in list {
            let Some(t) = &rule.transform else { continue };
            for (name, value) in &t.headers {
                if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return bad(format!("invalid header name {name:?} for {host}"));
                }
                for p in placeholders(value).map_err(err)? {
                    if let Placeholder::Token(t) = p
                        && !registered(&t)
                    {
                        return bad(format!(
                            "{host}: network transform references iam token \"{t}\", which is not registered (iam.tokens)"
                        ));
                    }
                }
                // What the proxy will send must be a valid header value (placeholders aside).
                let probe = resolve(value, &|_| Some("x".into()), &|_| Ok("x".into())).map_err(err)?;
                if http::HeaderValue::from_str(&probe).is_err() {
                    return bad(format!("invalid value for header {name:?} of {host}"));
                }
            }
        }
    }
    Ok(())
}

/// The headers for a request to `host` (the TLS SNI / HTTP Host) at address `ip`, in order.
pub fn headers_for(rules: &Rules, host: Option<&str>, ip: Ipv4Addr) -> Vec<(String, String)> {
    let host = host.map(|h| h.trim_end_matches('.').to_ascii_lowercase());
    let mut out: Vec<(String, String)> = Vec::new();
    for (pattern, list) in rules {
        let hit = match pattern.parse::<Ipv4Addr>() {
            Ok(p) => p == ip,
            Err(_) => host.as_deref().is_some_and(|h| super::domain_matches(pattern, h)),
        };
        if !hit {
            continue;
        }
        for (name, value) in list.iter().filter_map(|r| r.transform.as_ref()).flat_map(|t| &t.headers) {
            out.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            out.push((name.clone(), value.clone()));
        }
    }
    out
}

/// Looks up a secret's current value by name (set once by the server at start).
pub type SecretLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

static LOOKUP: OnceLock<SecretLookup> = OnceLock::new();

pub fn set_secret_lookup(f: SecretLookup) {
    let _ = LOOKUP.set(f);
}

pub fn lookup_secret(name: &str) -> Option<String> {
    LOOKUP.get().and_then(|f| f(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(json: serde_json::Value) -> Rules {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn placeholders_resolve_per_call_and_unknown_secrets_fail() {
        let lookup = |n: &str| (n == "token").then(|| "s3cr3t".to_string());
        let minted = std::cell::Cell::new(0);
        let mint = |n: &str| {
            minted.set(minted.get() + 1);
            if n == "aws" { Ok(format!("jwt{}", minted.get())) } else { Err(format!("no {n}")) }
        };
        assert_eq!(resolve("Bearer ${e2b.secrets.TOKEN}!", &lookup, &mint).unwrap(), "Bearer s3cr3t!");
        assert_eq!(resolve("plain", &lookup, &mint).unwrap(), "plain");
        assert!(resolve("${e2b.secrets.other}", &lookup, &mint).unwrap_err().contains("\"other\" not found"));
        assert!(resolve("${e2b.secrets.token", &lookup, &mint).is_err());
        let both = "${e2b.identity.tokens.aws}/${e2b.secrets.token}/${e2b.identity.tokens.aws}";
        assert_eq!(resolve(both, &lookup, &mint).unwrap(), "jwt1/s3cr3t/jwt2", "a new token each time");
        assert_eq!(
            placeholders("a ${e2b.secrets.x} b ${e2b.identity.tokens.T}").unwrap(),
            [Placeholder::Secret("x".into()), Placeholder::Token("T".into())]
        );
    }

    #[test]
    fn validation_follows_the_shape() {
        let ok = rules(serde_json::json!({"api.example.com": [{"transform": {"headers": {"Authorization": "Bearer ${e2b.secrets.token}"}}}],
                                          "*.example.org": [{}], "1.2.3.4": []}));
        validate(&ok, &|_| false).unwrap();
        let token = rules(serde_json::json!({"a.com": [{"transform": {"headers": {"X": "${e2b.identity.tokens.aws}"}}}]}));
        validate(&token, &|t| t == "aws").unwrap();
        assert!(validate(&token, &|_| false).unwrap_err().message.contains("not registered"));
        for bad in [
            serde_json::json!({"bad host!": []}),
            serde_json::json!({"*": []}),
            serde_json::json!({"a.com": [{"transform": {"headers": {"Bad Name": "x"}}}]}),
            serde_json::json!({"a.com": [{"transform": {"headers": {"X": "line\nbreak"}}}]}),
            serde_json::json!({"a.com": [{"transform": {"headers": {"X": "${e2b.secrets.unterminated"}}}]}),
        ] {
            assert!(validate(&rules(bad.clone()), &|_| true).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching_hosts_apply_in_order_and_later_headers_win() {
        let r = rules(serde_json::json!({
            "*.example.com": [{"transform": {"headers": {"X-A": "wild", "X-B": "b"}}}],
            "api.example.com": [{"transform": {"headers": {"x-a": "exact"}}}],
            "9.9.9.9": [{"transform": {"headers": {"X-Ip": "1"}}}],
        }));
        let h = headers_for(&r, Some("API.example.com."), Ipv4Addr::new(1, 1, 1, 1));
        assert_eq!(h, [("X-B".to_string(), "b".to_string()), ("x-a".to_string(), "exact".to_string())]);
        assert!(headers_for(&r, Some("example.com"), Ipv4Addr::new(1, 1, 1, 1)).is_empty());
        assert_eq!(headers_for(&r, None, Ipv4Addr::new(9, 9, 9, 9)).len(), 1);
    }
}
