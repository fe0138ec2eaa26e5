//! Sandbox metrics (`get_metrics`, `GET /sandboxes/{id}/metrics`) and egress updates of a
//! running sandbox (`update_network`, `PUT /sandboxes/{id}/network`), as E2B's SDKs call them.
//!
//! Metrics time bounds travel as Unix seconds (`start`, `end`); the network update body carries
//! only what this SDK implements (`allowOut`, `denyOut`, `allow_internet_access`; the rest is
//! refused by [`network_update_body`]).

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{ApiClient, encode_path_segment};
use crate::config::ConnectionOpts;
use crate::error::{Error, Result};
use crate::sandbox::{Sandbox, api_for};

/// One metrics sample of a sandbox.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxMetrics {
    pub cpu_count: u32,
    pub cpu_used_pct: f64,
    /// Bytes.
    pub disk_total: u64,
    pub disk_used: u64,
    pub mem_total: u64,
    pub mem_used: u64,
    #[serde(default)]
    pub mem_cache: u64,
    pub timestamp: DateTime<Utc>,
}

/// Body of `PUT /sandboxes/{id}/network`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NetworkUpdateBody {
    #[serde(rename = "allowOut", skip_serializing_if = "Option::is_none")]
    pub allow_out: Option<Vec<String>>,
    #[serde(rename = "denyOut", skip_serializing_if = "Option::is_none")]
    pub deny_out: Option<Vec<String>>,
    #[serde(rename = "allow_internet_access", skip_serializing_if = "Option::is_none")]
    pub allow_internet_access: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Value>,
}

/// Resolve an `update_network` argument (`allow_out`, `deny_out`, `allow_internet_access`,
/// `rules`; both spellings). `egress_proxy` and `dns_servers` are refused.
pub fn network_update_body(network: &Value) -> Result<NetworkUpdateBody> {
    let obj = network
        .as_object()
        .ok_or_else(|| Error::InvalidArgument(format!("network must be an object, got {network}")))?;
    let known = ["allow_out", "allowOut", "deny_out", "denyOut", "allow_internet_access", "allowInternetAccess", "rules"];
    if let Some(k) = obj.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(Error::InvalidArgument(format!(
            "network option '{k}' is not supported by this SDK (known: {})",
            known.join(", ")
        )));
    }
    let base = crate::options::network_body(Some(&Value::Object(
        obj.iter().filter(|(k, _)| !k.starts_with("allow_internet") && *k != "allowInternetAccess").map(|(k, v)| (k.clone(), v.clone())).collect(),
    )))?
    .unwrap_or_default();
    let allow_internet_access = match obj.get("allow_internet_access").or_else(|| obj.get("allowInternetAccess")) {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(v) => return Err(Error::InvalidArgument(format!("allow_internet_access must be a boolean, got {v}"))),
    };
    Ok(NetworkUpdateBody { allow_out: base.allow_out, deny_out: base.deny_out, allow_internet_access, rules: base.rules })
}

/// [`network_update_body`] of a JSON document (how bindings hand over a dict / object).
pub fn network_update_from_json(text: &str) -> Result<NetworkUpdateBody> {
    let v: Value = serde_json::from_str(text).map_err(|e| Error::InvalidArgument(format!("network: {e}")))?;
    network_update_body(&v)
}

async fn metrics(api: &ApiClient, id: &str, start: Option<i64>, end: Option<i64>) -> Result<Vec<SandboxMetrics>> {
    let path = format!("/sandboxes/{}/metrics", encode_path_segment(id));
    let q = [("start", start.map(|s| s.to_string())), ("end", end.map(|e| e.to_string()))];
    let r = api.send::<()>(Method::GET, &path, &q, None).await?;
    if r.status == 404 {
        return Err(Error::SandboxNotFound(format!("Sandbox {id} not found")));
    }
    if !r.is_success() {
        return Err(r.into_error());
    }
    r.json()
}

async fn update_network(api: &ApiClient, id: &str, body: &NetworkUpdateBody) -> Result<()> {
    let path = format!("/sandboxes/{}/network", encode_path_segment(id));
    let r = api.send(Method::PUT, &path, &[], Some(body)).await?;
    if r.status == 404 {
        return Err(Error::SandboxNotFound(format!("Sandbox {id} not found")));
    }
    if !r.is_success() {
        return Err(r.into_error());
    }
    Ok(())
}

impl Sandbox {
    /// Metrics samples between `start` and `end` (Unix seconds; unset = the server's range).
    pub async fn get_metrics(&self, start: Option<i64>, end: Option<i64>) -> Result<Vec<SandboxMetrics>> {
        metrics(self.api(), self.sandbox_id(), start, end).await
    }

    pub async fn get_metrics_by_id(
        sandbox_id: &str,
        start: Option<i64>,
        end: Option<i64>,
        opts: &ConnectionOpts,
    ) -> Result<Vec<SandboxMetrics>> {
        metrics(&api_for(opts), sandbox_id, start, end).await
    }

    /// Change the egress rules of the running sandbox.
    pub async fn update_network(&self, body: &NetworkUpdateBody) -> Result<()> {
        update_network(self.api(), self.sandbox_id(), body).await
    }

    pub async fn update_network_by_id(sandbox_id: &str, body: &NetworkUpdateBody, opts: &ConnectionOpts) -> Result<()> {
        update_network(&api_for(opts), sandbox_id, body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn update_body() {
        let b = network_update_body(&json!({"deny_out": ["0.0.0.0/0"], "allowInternetAccess": false})).unwrap();
        assert_eq!(serde_json::to_value(&b).unwrap(), json!({"denyOut": ["0.0.0.0/0"], "allow_internet_access": false}));
        let rules = json!({"h.example.com": [{"transform": {"headers": {"X": "y"}}}]});
        assert_eq!(network_update_body(&json!({"rules": rules.clone()})).unwrap().rules, Some(rules));
        assert!(network_update_body(&json!({"egress_proxy": {}})).is_err());
        assert_eq!(serde_json::to_value(network_update_body(&json!({})).unwrap()).unwrap(), json!({}));
    }
}
