//! The structured create/pause/connect options of E2B's SDKs (`lifecycle`, `network`, snapshot
//! `mode`, `on_resume`), validated once here and turned into E2B's wire fields.
//!
//! Invariants:
//! - Every option either reaches the request body exactly as the official SDK (2.63 / JS 2.51)
//!   sends it, or is refused with [`Error::InvalidArgument`] naming it. Nothing is dropped.
//! - Bindings hand the user's dict / object over as JSON; both spellings (Python snake_case, JS
//!   camelCase) are accepted, any other key is refused.
//! - Messages are the official SDK's where it has one.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// What a pause or snapshot persists (`SnapshotMode`): `"full"` or `"filesystem"`.
///
/// `field` names the option in messages. Unset stays unset (the API's default, a full snapshot);
/// `keep_memory` is the deprecated spelling.
pub fn snapshot_memory(field: &str, mode: Option<&str>, keep_memory: Option<bool>) -> Result<Option<bool>> {
    if mode.is_some() && keep_memory.is_some() {
        return Err(Error::InvalidArgument(format!(
            "Pass either {field} or the deprecated keep_memory, not both."
        )));
    }
    match mode {
        None => Ok(keep_memory),
        Some("full") => Ok(Some(true)),
        Some("filesystem") => Ok(Some(false)),
        Some(other) => Err(Error::InvalidArgument(format!(
            "{field} must be one of: full, filesystem (got '{other}')."
        ))),
    }
}

/// `on_resume` of connect: `"restore"` (the API's default: field omitted) or `"reboot"`
/// (`memory: false`).
pub fn connect_memory(on_resume: Option<&str>) -> Result<Option<bool>> {
    match on_resume {
        None | Some("restore") => Ok(None),
        Some("reboot") => Ok(Some(false)),
        Some(other) => Err(Error::InvalidArgument(format!(
            "on_resume must be one of: restore, reboot (got '{other}')."
        ))),
    }
}

/// `{"enabled": bool}`: the wire shape of `autoResume`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct AutoResume {
    pub enabled: bool,
}

/// The create-request fields a `lifecycle` option resolves to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifecycleBody {
    pub auto_pause: Option<bool>,
    pub auto_pause_memory: Option<bool>,
    pub auto_resume: Option<AutoResume>,
}

fn refuse_unknown(what: &str, obj: &serde_json::Map<String, Value>, known: &[&str]) -> Result<()> {
    for k in obj.keys() {
        if !known.contains(&k.as_str()) {
            return Err(Error::InvalidArgument(format!(
                "{what} option '{k}' is not supported by this SDK (known: {})",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

fn opt_bool(obj: &serde_json::Map<String, Value>, keys: &[&str], what: &str) -> Result<Option<bool>> {
    for k in keys {
        match obj.get(*k) {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => return Ok(Some(*b)),
            Some(v) => return Err(Error::InvalidArgument(format!("{what} '{k}' must be a boolean, got {v}"))),
        }
    }
    Ok(None)
}

fn opt_str<'a>(obj: &'a serde_json::Map<String, Value>, keys: &[&str], what: &str) -> Result<Option<&'a str>> {
    for k in keys {
        match obj.get(*k) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => return Ok(Some(s)),
            Some(v) => return Err(Error::InvalidArgument(format!("{what} '{k}' must be a string, got {v}"))),
        }
    }
    Ok(None)
}

/// Resolve `lifecycle` (`{on_timeout: "kill"|"pause"|{action, mode}, auto_resume}`) as E2B's
/// `build_lifecycle_config` does.
pub fn lifecycle_body(lifecycle: Option<&Value>) -> Result<LifecycleBody> {
    let obj = match lifecycle {
        None | Some(Value::Null) => return Ok(LifecycleBody::default()),
        Some(Value::Object(o)) => o,
        Some(v) => return Err(Error::InvalidArgument(format!("lifecycle must be an object, got {v}"))),
    };
    refuse_unknown("lifecycle", obj, &["on_timeout", "onTimeout", "auto_resume", "autoResume"])?;
    let raw = obj.get("on_timeout").or_else(|| obj.get("onTimeout")).filter(|v| !v.is_null());
    let configured = raw.is_some();
    let (action, pause_opts, object_form) = match raw {
        None => ("kill".to_string(), serde_json::Map::new(), false),
        Some(Value::String(s)) => (s.clone(), serde_json::Map::new(), false),
        Some(Value::Object(o)) => {
            refuse_unknown("lifecycle on_timeout", o, &["action", "mode", "keep_memory", "keepMemory"])?;
            let a = o.get("action").and_then(Value::as_str).unwrap_or_default().to_string();
            (a, o.clone(), true)
        }
        Some(v) => return Err(Error::InvalidArgument(format!("on_timeout must be one of: pause, kill (got {v})."))),
    };
    if configured && action != "pause" && action != "kill" {
        let field = if object_form { "on_timeout[\"action\"]" } else { "on_timeout" };
        return Err(Error::InvalidArgument(format!("{field} must be one of: pause, kill (got '{action}').")));
    }
    let mode = opt_str(&pause_opts, &["mode"], "on_timeout")?;
    let keep_memory = opt_bool(&pause_opts, &["keep_memory", "keepMemory"], "on_timeout")?;
    if (mode.is_some() || keep_memory.is_some()) && action != "pause" {
        return Err(Error::InvalidArgument("mode is only allowed when on_timeout action is 'pause'.".into()));
    }
    let memory = snapshot_memory("on_timeout[\"mode\"]", mode, keep_memory)?;
    let auto_resume = opt_bool(obj, &["auto_resume", "autoResume"], "lifecycle")?;
    if auto_resume == Some(true) && action != "pause" {
        return Err(Error::InvalidArgument(
            "auto_resume can only be True when on_timeout action is 'pause'.".into(),
        ));
    }
    if memory == Some(false) && auto_resume == Some(true) {
        return Err(Error::InvalidArgument(
            "auto_resume: True is not a valid value with mode: 'filesystem' - a filesystem-only \
             snapshot cannot be auto-resumed by traffic and must be resumed explicitly using \
             Sandbox.connect()."
                .into(),
        ));
    }
    Ok(LifecycleBody {
        auto_pause: configured.then(|| action == "pause"),
        auto_pause_memory: if action == "pause" { memory } else { None },
        auto_resume: auto_resume.map(|enabled| AutoResume { enabled }),
    })
}

/// The `network` object of a create request, with E2B's wire names.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct NetworkBody {
    #[serde(rename = "allowOut", skip_serializing_if = "Option::is_none")]
    pub allow_out: Option<Vec<String>>,
    #[serde(rename = "denyOut", skip_serializing_if = "Option::is_none")]
    pub deny_out: Option<Vec<String>>,
    #[serde(rename = "allowPublicTraffic", skip_serializing_if = "Option::is_none")]
    pub allow_public_traffic: Option<bool>,
    #[serde(rename = "maskRequestHost", skip_serializing_if = "Option::is_none")]
    pub mask_request_host: Option<String>,
    /// Per-host transform rules (`{host: [{transform: {headers: {...}}}]}`), as E2B sends them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rules: Option<Value>,
}

/// `rules`: an object of host → list of rule objects, each with an optional `transform`
/// object whose `headers` map names to string values (placeholders such as
/// `${e2b.secrets.<name>}` included). `None` for an absent, `null` or empty object.
pub(crate) fn rules_value(obj: &serde_json::Map<String, Value>) -> Result<Option<Value>> {
    let bad = |m: String| Err(Error::InvalidArgument(format!("network rules: {m}")));
    let rules = match obj.get("rules") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(r)) if r.is_empty() => return Ok(None),
        Some(Value::Object(r)) => r,
        Some(v) => return bad(format!("must be an object of host to rules, got {v}")),
    };
    for (host, list) in rules {
        let Some(list) = list.as_array() else { return bad(format!("{host}: must be a list of rules")) };
        for rule in list {
            let Some(rule) = rule.as_object() else { return bad(format!("{host}: a rule must be an object")) };
            if let Some(k) = rule.keys().find(|k| *k != "transform") {
                return bad(format!("{host}: unknown rule field '{k}'"));
            }
            match rule.get("transform") {
                None | Some(Value::Null) => {}
                Some(Value::Object(t)) => {
                    if let Some(k) = t.keys().find(|k| *k != "headers") {
                        return bad(format!("{host}: unknown transform field '{k}'"));
                    }
                    let headers = t.get("headers").and_then(Value::as_object);
                    if headers.is_some_and(|h| h.values().any(|v| !v.is_string())) {
                        return bad(format!("{host}: header values must be strings"));
                    }
                }
                Some(v) => return bad(format!("{host}: transform must be an object, got {v}")),
            }
        }
    }
    Ok(Some(Value::Object(rules.clone())))
}

fn string_list(obj: &serde_json::Map<String, Value>, keys: &[&str]) -> Result<Option<Vec<String>>> {
    for k in keys {
        match obj.get(*k) {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                return items
                    .iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.clone()),
                        other => Err(Error::InvalidArgument(format!("network '{k}' entries must be strings, got {other}"))),
                    })
                    .collect::<Result<Vec<_>>>()
                    .map(Some);
            }
            Some(v) => {
                return Err(Error::InvalidArgument(format!(
                    "network '{k}' must be a list of strings (callable selectors are not supported by \
                     this SDK), got {v}"
                )));
            }
        }
    }
    Ok(None)
}

/// Resolve `network` (`allow_out`, `deny_out`, `allow_public_traffic`, `mask_request_host`,
/// `rules`). `egress_proxy`, `dns_servers` and `https_ports` are refused: sandboxd does not
/// implement them yet.
pub fn network_body(network: Option<&Value>) -> Result<Option<NetworkBody>> {
    let obj = match network {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(v) => return Err(Error::InvalidArgument(format!("network must be an object, got {v}"))),
    };
    refuse_unknown(
        "network",
        obj,
        &[
            "allow_out",
            "allowOut",
            "deny_out",
            "denyOut",
            "allow_public_traffic",
            "allowPublicTraffic",
            "mask_request_host",
            "maskRequestHost",
            "rules",
        ],
    )?;
    let body = NetworkBody {
        allow_out: string_list(obj, &["allow_out", "allowOut"])?,
        deny_out: string_list(obj, &["deny_out", "denyOut"])?,
        allow_public_traffic: opt_bool(obj, &["allow_public_traffic", "allowPublicTraffic"], "network")?,
        mask_request_host: opt_str(obj, &["mask_request_host", "maskRequestHost"], "network")?.map(str::to_owned),
        rules: rules_value(obj)?,
    };
    // E2B leaves an empty network config out of the request.
    Ok((body != NetworkBody::default()).then_some(body))
}

fn parse(what: &str, text: Option<&str>) -> Result<Option<Value>> {
    text.map(|t| serde_json::from_str(t).map_err(|e| Error::InvalidArgument(format!("{what}: {e}")))).transpose()
}

/// [`lifecycle_body`] of a JSON document (how bindings hand over a dict / object).
pub fn lifecycle_from_json(text: Option<&str>) -> Result<LifecycleBody> {
    lifecycle_body(parse("lifecycle", text)?.as_ref())
}

/// `iam` (`{tokens: {name: {audience, token_type | tokenType}}}`) as E2B's wire sends it
/// (`tokenType`). A name goes into the `${e2b.identity.tokens.<name>}` placeholder, so it cannot
/// be empty or contain `{`, `}` or control characters; `None` without tokens.
pub fn iam_body(iam: Option<&Value>) -> Result<Option<Value>> {
    let bad = |m: String| Err(Error::InvalidArgument(format!("iam: {m}")));
    let obj = match iam {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(v) => return bad(format!("must be an object, got {v}")),
    };
    refuse_unknown("iam", obj, &["tokens"])?;
    let tokens = match obj.get("tokens") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(t)) if t.is_empty() => return Ok(None),
        Some(Value::Object(t)) => t,
        Some(v) => return bad(format!("tokens must be an object, got {v}")),
    };
    let mut out = serde_json::Map::new();
    for (name, spec) in tokens {
        if name.is_empty() || name.chars().any(|c| c == '{' || c == '}' || c.is_control()) {
            return bad(format!("token name {name:?} cannot be empty or contain '{{', '}}' or control characters"));
        }
        let field = |keys: &[&str]| keys.iter().find_map(|k| spec.get(*k).and_then(Value::as_str));
        let (Some(audience), Some(token_type)) = (field(&["audience"]), field(&["token_type", "tokenType"])) else {
            return bad(format!("token {name:?} must have string 'audience' and 'token_type' values"));
        };
        out.insert(name.clone(), serde_json::json!({"audience": audience, "tokenType": token_type}));
    }
    Ok(Some(serde_json::json!({ "tokens": out })))
}

/// [`network_body`] of a JSON document.
pub fn network_from_json(text: Option<&str>) -> Result<Option<NetworkBody>> {
    network_body(parse("network", text)?.as_ref())
}

/// An option of the official SDK that this SDK does not implement: refused, never ignored.
pub fn unsupported(option: &str) -> Error {
    Error::InvalidArgument(format!(
        "the '{option}' option is not supported by this SDK yet (refused rather than ignored)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lifecycle_forms() {
        let b = lifecycle_body(Some(&json!({"on_timeout": "pause", "auto_resume": true}))).unwrap();
        assert_eq!(b.auto_pause, Some(true));
        assert_eq!(b.auto_resume, Some(AutoResume { enabled: true }));
        let b = lifecycle_body(Some(&json!({"onTimeout": {"action": "pause", "mode": "filesystem"}}))).unwrap();
        assert_eq!((b.auto_pause, b.auto_pause_memory), (Some(true), Some(false)));
        assert_eq!(lifecycle_body(Some(&json!({}))).unwrap(), LifecycleBody::default());
        assert_eq!(lifecycle_body(Some(&json!({"on_timeout": "kill"}))).unwrap().auto_pause, Some(false));
    }

    #[test]
    fn lifecycle_refusals() {
        for bad in [
            json!({"on_timeout": "stop"}),
            json!({"on_timeout": "kill", "auto_resume": true}),
            json!({"on_timeout": {"action": "kill", "mode": "full"}}),
            json!({"on_timeout": {"action": "pause", "mode": "filesystem"}, "auto_resume": true}),
            json!({"on_timeout": "pause", "bogus": 1}),
        ] {
            assert!(matches!(lifecycle_body(Some(&bad)), Err(Error::InvalidArgument(_))), "{bad}");
        }
    }

    #[test]
    fn iam_goes_out_as_the_wire_spells_it() {
        let iam = json!({"tokens": {"aws": {"audience": "sts.amazonaws.com", "token_type": "JWT-SVID"}}});
        assert_eq!(
            iam_body(Some(&iam)).unwrap().unwrap(),
            json!({"tokens": {"aws": {"audience": "sts.amazonaws.com", "tokenType": "JWT-SVID"}}})
        );
        assert_eq!(iam_body(Some(&json!({"tokens": {}}))).unwrap(), None);
        for bad in [json!({"tokens": {"a}b": {"audience": "x", "token_type": "JWT-SVID"}}}), json!({"tokens": {"a": {}}}), json!({"x": 1})] {
            assert!(iam_body(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn network_fields_and_refusals() {
        let n = network_body(Some(&json!({"allow_out": ["1.1.1.1"], "maskRequestHost": "x:${PORT}"}))).unwrap().unwrap();
        assert_eq!(
            serde_json::to_value(&n).unwrap(),
            json!({"allowOut": ["1.1.1.1"], "maskRequestHost": "x:${PORT}"})
        );
        assert_eq!(network_body(Some(&json!({"rules": {}}))).unwrap(), None, "empty rules ask for nothing");
        let rules = json!({"api.example.com": [{"transform": {"headers": {"Authorization": "Bearer ${e2b.secrets.k}"}}}]});
        let n = network_body(Some(&json!({"rules": rules.clone()}))).unwrap().unwrap();
        assert_eq!(serde_json::to_value(&n).unwrap(), json!({"rules": rules}));
        for bad in [json!([]), json!({"h": {}}), json!({"h": [{"transform": {"headers": {"X": 1}}}]}), json!({"h": [{"x": 1}]})] {
            assert!(network_body(Some(&json!({"rules": bad}))).is_err(), "{bad}");
        }
        assert!(network_body(Some(&json!({"egress_proxy": {"address": "p:1"}}))).is_err());
        assert_eq!(network_body(Some(&json!({}))).unwrap(), None);
        assert!(network_body(Some(&json!({"allow_out": "1.1.1.1"}))).is_err());
    }

    #[test]
    fn memory_flags() {
        assert_eq!(snapshot_memory("mode", Some("filesystem"), None).unwrap(), Some(false));
        assert_eq!(snapshot_memory("mode", None, None).unwrap(), None);
        assert!(snapshot_memory("mode", Some("full"), Some(true)).is_err());
        assert!(snapshot_memory("mode", Some("half"), None).is_err());
        assert_eq!(connect_memory(Some("reboot")).unwrap(), Some(false));
        assert_eq!(connect_memory(Some("restore")).unwrap(), None);
        assert!(connect_memory(Some("x")).is_err());
    }
}
