//! Connection settings: arguments first, then the environment, then defaults.
//!
//! | setting | argument | env var | default |
//! |---|---|---|---|
//! | API key | `api_key` | `E2B_API_KEY` | none (embedded mode reads `<data dir>/api_key`) |
//! | domain | `domain` | `E2B_DOMAIN` | `e2b.app` |
//! | REST base URL | `api_url` | `E2B_API_URL` | `https://api.<domain>` (`http://localhost:3000` in debug) |
//! | envd base URL | `sandbox_url` | `E2B_SANDBOX_URL` | `https://49983-<id>.<domain>` |
//! | debug | `debug` | `E2B_DEBUG` (`"true"`) | false |
//! | request timeout | `request_timeout` | none | 60 s; zero disables it |
//!
//! **Embedded default.** When none of the E2B settings above is given (no argument and none of
//! `E2B_API_KEY`, `E2B_API_URL`, `E2B_DOMAIN`, `E2B_SANDBOX_URL`, `E2B_DEBUG`), the client talks to a
//! local sandboxd at `SANDBOXD_URL` (default `http://127.0.0.1:49982`) for both REST and envd, and
//! starts it when nothing answers there (see [`crate::embedded`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// Port envd listens on inside every sandbox.
pub const ENVD_PORT: u16 = 49983;
/// Default address of a local sandboxd.
pub const DEFAULT_SANDBOXD_URL: &str = "http://127.0.0.1:49982";
pub const DEFAULT_DOMAIN: &str = "e2b.app";
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Per-call connection options (all optional); unset fields come from the environment.
#[derive(Debug, Clone, Default)]
pub struct ConnectionOpts {
    pub api_key: Option<String>,
    pub domain: Option<String>,
    pub api_url: Option<String>,
    pub sandbox_url: Option<String>,
    pub debug: Option<bool>,
    /// Timeout of one HTTP request; `Some(Duration::ZERO)` disables it.
    pub request_timeout: Option<Duration>,
    /// Extra headers sent on every request.
    pub headers: HashMap<String, String>,
}

impl ConnectionOpts {
    /// `self` with the fields set in `over` replacing its own (per-call over bound options).
    pub fn merged(&self, over: &ConnectionOpts) -> ConnectionOpts {
        let mut headers = self.headers.clone();
        headers.extend(over.headers.clone());
        ConnectionOpts {
            api_key: over.api_key.clone().or_else(|| self.api_key.clone()),
            domain: over.domain.clone().or_else(|| self.domain.clone()),
            api_url: over.api_url.clone().or_else(|| self.api_url.clone()),
            sandbox_url: over.sandbox_url.clone().or_else(|| self.sandbox_url.clone()),
            debug: over.debug.or(self.debug),
            request_timeout: over.request_timeout.or(self.request_timeout),
            headers,
        }
    }
}

/// Where a local sandboxd lives when the embedded default is in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedServer {
    /// Base URL, for REST and envd alike.
    pub url: String,
    /// Data directory: holds `api_key`, `sandboxd.log`, the start lock and maybe `bin/sandboxd`.
    pub data_dir: PathBuf,
}

/// Resolved connection settings.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    pub api_key: Option<String>,
    pub domain: String,
    pub api_url: String,
    pub sandbox_url: Option<String>,
    pub debug: bool,
    /// `None` means no timeout.
    pub request_timeout: Option<Duration>,
    pub headers: HashMap<String, String>,
    /// Set when the embedded default (a local sandboxd) is in use.
    pub embedded: Option<EmbeddedServer>,
}

impl ConnectionConfig {
    /// Resolve `opts` against the process environment.
    pub fn resolve(opts: &ConnectionOpts) -> ConnectionConfig {
        Self::resolve_with(opts, |k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// Resolve `opts` against an environment given as a lookup function (testable).
    pub fn resolve_with(opts: &ConnectionOpts, env: impl Fn(&str) -> Option<String>) -> Self {
        let api_key = opts.api_key.clone().or_else(|| env("E2B_API_KEY"));
        let domain_set = opts.domain.clone().or_else(|| env("E2B_DOMAIN"));
        let api_url_set = opts.api_url.clone().or_else(|| env("E2B_API_URL"));
        let sandbox_url = opts.sandbox_url.clone().or_else(|| env("E2B_SANDBOX_URL"));
        let debug_env = env("E2B_DEBUG");
        let debug = opts
            .debug
            .unwrap_or_else(|| debug_env.as_deref().is_some_and(|v| v.eq_ignore_ascii_case("true")));
        let request_timeout = match opts.request_timeout {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => Some(DEFAULT_REQUEST_TIMEOUT),
        };
        let headers = opts.headers.clone();

        let nothing_configured = api_key.is_none()
            && domain_set.is_none()
            && api_url_set.is_none()
            && sandbox_url.is_none()
            && opts.debug.is_none()
            && debug_env.is_none();
        if nothing_configured {
            let url = env("SANDBOXD_URL").unwrap_or_else(|| DEFAULT_SANDBOXD_URL.to_string());
            let url = url.trim_end_matches('/').to_string();
            return ConnectionConfig {
                api_key: None,
                domain: DEFAULT_DOMAIN.into(),
                api_url: url.clone(),
                sandbox_url: Some(url.clone()),
                debug: false,
                request_timeout,
                headers,
                embedded: Some(EmbeddedServer { url, data_dir: data_dir_with(&env) }),
            };
        }

        let domain = domain_set.unwrap_or_else(|| DEFAULT_DOMAIN.into());
        let api_url = api_url_set.unwrap_or_else(|| {
            if debug { "http://localhost:3000".into() } else { format!("https://api.{domain}") }
        });
        ConnectionConfig {
            api_key,
            domain,
            api_url: api_url.trim_end_matches('/').to_string(),
            sandbox_url: sandbox_url.map(|u| u.trim_end_matches('/').to_string()),
            debug,
            request_timeout,
            headers,
            embedded: None,
        }
    }

    /// Base URL of envd for a sandbox, plus whether the sandbox-routing headers are needed.
    pub fn envd_url(&self, sandbox_id: &str, sandbox_domain: Option<&str>) -> String {
        self.sandbox_url_for(sandbox_id, sandbox_domain, ENVD_PORT)
    }

    /// Base URL of a sandbox's `port` (E2B's `get_sandbox_url`): `sandbox_url` when set (then
    /// requests name the sandbox and port in `E2b-Sandbox-Id` / `E2b-Sandbox-Port`), else
    /// `https://<port>-<id>.<domain>` (`http://localhost:<port>` in debug).
    pub fn sandbox_url_for(&self, sandbox_id: &str, sandbox_domain: Option<&str>, port: u16) -> String {
        if let Some(u) = &self.sandbox_url {
            return u.clone();
        }
        let host = self.host(sandbox_id, sandbox_domain, port);
        if self.debug { format!("http://{host}") } else { format!("https://{host}") }
    }

    /// `<port>-<id>.<domain>` (`localhost:<port>` in debug), E2B's `get_host`.
    pub fn host(&self, sandbox_id: &str, sandbox_domain: Option<&str>, port: u16) -> String {
        if self.debug {
            return format!("localhost:{port}");
        }
        let domain = sandbox_domain.unwrap_or(&self.domain);
        format!("{port}-{sandbox_id}.{domain}")
    }
}

/// sandboxd's data directory: `$SANDBOXD_DATA_DIR`, else `$XDG_DATA_HOME/sandboxd`, else
/// `~/.local/share/sandboxd`.
pub fn data_dir() -> PathBuf {
    data_dir_with(&|k: &str| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

fn data_dir_with(env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    if let Some(d) = env("SANDBOXD_DATA_DIR") {
        return PathBuf::from(d);
    }
    if let Some(x) = env("XDG_DATA_HOME") {
        return PathBuf::from(x).join("sandboxd");
    }
    let home = env("HOME").unwrap_or_else(|| "/tmp".into());
    PathBuf::from(home).join(".local/share/sandboxd")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn nothing_configured_is_embedded() {
        let c = ConnectionConfig::resolve_with(&ConnectionOpts::default(), env_of(&[("HOME", "/h")]));
        let e = c.embedded.expect("embedded");
        assert_eq!(e.url, DEFAULT_SANDBOXD_URL);
        assert_eq!(e.data_dir, PathBuf::from("/h/.local/share/sandboxd"));
        assert_eq!(c.api_url, DEFAULT_SANDBOXD_URL);
        assert_eq!(c.sandbox_url.as_deref(), Some(DEFAULT_SANDBOXD_URL));
        assert_eq!(c.request_timeout, Some(Duration::from_secs(60)));
    }

    #[test]
    fn embedded_overrides() {
        let env = env_of(&[
            ("SANDBOXD_URL", "http://127.0.0.1:5000/"),
            ("XDG_DATA_HOME", "/x"),
        ]);
        let c = ConnectionConfig::resolve_with(&ConnectionOpts::default(), &env);
        let e = c.embedded.unwrap();
        assert_eq!(e.url, "http://127.0.0.1:5000");
        assert_eq!(e.data_dir, PathBuf::from("/x/sandboxd"));
        let env = env_of(&[("SANDBOXD_DATA_DIR", "/d"), ("XDG_DATA_HOME", "/x")]);
        let c = ConnectionConfig::resolve_with(&ConnectionOpts::default(), &env);
        assert_eq!(c.embedded.unwrap().data_dir, PathBuf::from("/d"));
    }

    #[test]
    fn api_key_only_is_cloud() {
        let c = ConnectionConfig::resolve_with(
            &ConnectionOpts::default(),
            env_of(&[("E2B_API_KEY", "e2b_1")]),
        );
        assert!(c.embedded.is_none());
        assert_eq!(c.api_url, "https://api.e2b.app");
        assert_eq!(c.api_key.as_deref(), Some("e2b_1"));
        assert_eq!(c.envd_url("iabc", None), "https://49983-iabc.e2b.app");
        assert_eq!(c.envd_url("iabc", Some("example.com")), "https://49983-iabc.example.com");
    }

    #[test]
    fn arguments_beat_env() {
        let opts = ConnectionOpts {
            api_key: Some("arg".into()),
            domain: Some("d.test".into()),
            request_timeout: Some(Duration::ZERO),
            ..Default::default()
        };
        let c = ConnectionConfig::resolve_with(
            &opts,
            env_of(&[("E2B_API_KEY", "env"), ("E2B_DOMAIN", "e.test")]),
        );
        assert_eq!(c.api_key.as_deref(), Some("arg"));
        assert_eq!(c.api_url, "https://api.d.test");
        assert_eq!(c.request_timeout, None);
    }

    #[test]
    fn debug_and_sandbox_url() {
        let c = ConnectionConfig::resolve_with(
            &ConnectionOpts::default(),
            env_of(&[("E2B_DEBUG", "true")]),
        );
        assert!(c.embedded.is_none());
        assert_eq!(c.api_url, "http://localhost:3000");
        assert_eq!(c.envd_url("x", None), "http://localhost:49983");
        let c = ConnectionConfig::resolve_with(
            &ConnectionOpts::default(),
            env_of(&[("E2B_SANDBOX_URL", "http://h:1/"), ("E2B_API_URL", "http://h:1")]),
        );
        assert_eq!(c.envd_url("x", None), "http://h:1");
        assert_eq!(c.api_url, "http://h:1");
    }

    #[test]
    fn merge_prefers_per_call() {
        let bound = ConnectionOpts { api_key: Some("a".into()), domain: Some("d".into()), ..Default::default() };
        let call = ConnectionOpts { api_key: Some("b".into()), ..Default::default() };
        let m = bound.merged(&call);
        assert_eq!(m.api_key.as_deref(), Some("b"));
        assert_eq!(m.domain.as_deref(), Some("d"));
    }
}
