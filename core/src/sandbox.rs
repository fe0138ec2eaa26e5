//! The `Sandbox` handle: lifecycle calls (create, connect, kill, timeout, info, pause, fork) and
//! access to `commands()` and `files()`.
//!
//! E2B's dual pattern maps to Rust as an instance method (`sbx.kill()`) plus an associated
//! function taking the sandbox ID (`Sandbox::kill_by_id(id, &opts)`). A `Sandbox` is an `Arc`
//! inside: clone it freely, hand it to bindings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::api::models::{ForkRequest, NewSandbox, SandboxResponse};
use crate::api::{self, ApiClient};
use crate::commands::Commands;
use crate::config::{ConnectionConfig, ConnectionOpts};
use crate::envd::EnvdClient;
use crate::error::{Error, Result};
use crate::files::Files;
use crate::models::SandboxInfo;
use crate::options::{LifecycleBody, NetworkBody};
use crate::paginator::{SandboxListOptions, SandboxPaginator};

/// Template used when none is given.
pub const DEFAULT_TEMPLATE: &str = "base";

/// Options of [`Sandbox::create`].
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Template name or ID, or a snapshot ID; default `base`.
    pub template: Option<String>,
    /// Lifetime; default 300 s (left to the server, as E2B's SDK does).
    pub timeout: Option<Duration>,
    /// `None` leaves it out of the request (E2B's JS SDK); E2B's Python SDK always sends a map.
    pub metadata: Option<HashMap<String, String>>,
    /// Environment variables of every process in the sandbox.
    pub envs: Option<HashMap<String, String>>,
    /// Require the envd access token (default true).
    pub secure: bool,
    /// `None` = the server's default (allowed).
    pub allow_internet_access: Option<bool>,
    /// What happens at the timeout (`autoPause`, `autoPauseMemory`, `autoResume`); build it with
    /// [`crate::options::lifecycle_body`].
    pub lifecycle: LifecycleBody,
    /// Egress rules; build it with [`crate::options::network_body`].
    pub network: Option<NetworkBody>,
    /// Sent as the `Idempotency-Key` header (1-255 of `a-z`, `0-9`, `-`).
    pub idempotency_key: Option<String>,
    /// MCP servers for the gateway (an object); see [`crate::mcp`].
    pub mcp: Option<serde_json::Value>,
    /// Volumes to mount (`volumeMounts`: mount path and volume name).
    pub volume_mounts: Vec<crate::models::VolumeMount>,
    /// Workload identity tokens; build it with [`crate::options::iam_body`].
    pub iam: Option<serde_json::Value>,
    pub connection: ConnectionOpts,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            template: None,
            timeout: None,
            metadata: None,
            envs: None,
            secure: true,
            allow_internet_access: None,
            lifecycle: LifecycleBody::default(),
            network: None,
            idempotency_key: None,
            mcp: None,
            volume_mounts: Vec::new(),
            iam: None,
            connection: ConnectionOpts::default(),
        }
    }
}

/// Options of [`Sandbox::pause_with`].
#[derive(Debug, Clone, Default)]
pub struct PauseOptions {
    /// Deprecated spelling of `mode` (`false` = `"filesystem"`).
    pub keep_memory: Option<bool>,
    /// `"full"` (memory and disk) or `"filesystem"`; unset = the server's default (full).
    pub mode: Option<String>,
    /// Refuse the pause when envd does not answer (`requireHealthyGuest`).
    pub strict: bool,
}

/// Options of [`Sandbox::connect_with`].
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Extends a running sandbox's lifetime (default: the server's, 300 s).
    pub timeout: Option<Duration>,
    /// `"restore"` (default: memory comes back) or `"reboot"` (cold boot from disk).
    pub on_resume: Option<String>,
}

/// Options of [`Sandbox::fork`].
#[derive(Debug, Clone, Default)]
pub struct ForkOptions {
    pub timeout: Option<Duration>,
    pub count: Option<u32>,
}

/// Seconds for the REST API, rounded up (E2B JS: `ceil(ms / 1000)`).
pub(crate) fn secs(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000) as u64
}

/// A running sandbox.
#[derive(Debug, Clone)]
pub struct Sandbox(Arc<SandboxInner>);

#[derive(Debug)]
struct SandboxInner {
    sandbox_id: String,
    sandbox_domain: Option<String>,
    envd_version: String,
    traffic_access_token: Option<String>,
    opts: ConnectionOpts,
    api: ApiClient,
    envd: EnvdClient,
    /// The MCP gateway's token, once known (see `mcp`).
    mcp_token: std::sync::Mutex<Option<String>>,
}

pub(crate) fn api_for(opts: &ConnectionOpts) -> ApiClient {
    ApiClient::new(ConnectionConfig::resolve(opts))
}

impl Sandbox {
    fn from_response(r: SandboxResponse, opts: ConnectionOpts, api: ApiClient) -> Self {
        let envd = EnvdClient::new(api.config(), &r.sandbox_id, r.domain.as_deref(), r.envd_access_token.clone());
        Sandbox(Arc::new(SandboxInner {
            sandbox_id: r.sandbox_id,
            sandbox_domain: r.domain,
            envd_version: r.envd_version,
            traffic_access_token: r.traffic_access_token,
            opts,
            api,
            envd,
            mcp_token: std::sync::Mutex::new(None),
        }))
    }

    pub(crate) fn mcp_token(&self) -> Option<String> {
        self.0.mcp_token.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_mcp_token(&self, token: String) {
        *self.0.mcp_token.lock().unwrap_or_else(|p| p.into_inner()) = Some(token);
    }

    /// Create a sandbox from a template or a snapshot ID.
    pub async fn create(opts: CreateOptions) -> Result<Sandbox> {
        let api = api_for(&opts.connection);
        if let Some(k) = &opts.idempotency_key {
            check_idempotency_key(k)?;
        }
        if opts.mcp.as_ref().is_some_and(|m| !m.is_object()) {
            return Err(Error::InvalidArgument("mcp must be an object of MCP server configurations".into()));
        }
        let default_template = if opts.mcp.is_some() { crate::mcp::DEFAULT_MCP_TEMPLATE } else { DEFAULT_TEMPLATE };
        let body = NewSandbox {
            template_id: opts.template.clone().unwrap_or_else(|| default_template.into()),
            timeout: opts.timeout.map(secs),
            metadata: opts.metadata.clone(),
            env_vars: opts.envs.clone(),
            secure: Some(opts.secure),
            allow_internet_access: opts.allow_internet_access,
            auto_pause: opts.lifecycle.auto_pause,
            auto_pause_memory: opts.lifecycle.auto_pause_memory,
            auto_resume: opts.lifecycle.auto_resume,
            network: opts.network.clone(),
            mcp: opts.mcp.clone(),
            volume_mounts: (!opts.volume_mounts.is_empty()).then(|| opts.volume_mounts.clone()),
            iam: opts.iam.clone(),
        };
        let key = opts.idempotency_key.as_deref();
        let r = match (&api.config().embedded, body.template_id == DEFAULT_TEMPLATE) {
            // A sandboxd that just started builds `base` in the background and answers 404 for it
            // until then: wait instead of failing a user's very first `Sandbox.create()`.
            (Some(server), true) => {
                crate::embedded::while_base_template_builds(server, || api::sandboxes::create(&api, &body, key)).await?
            }
            _ => api::sandboxes::create(&api, &body, key).await?,
        };
        if version_lt(&r.envd_version, (0, 1, 0)) {
            let _ = api::sandboxes::kill(&api, &r.sandbox_id).await;
            return Err(Error::Template("You need to update the template to use the new SDK.".into()));
        }
        let sandbox = Sandbox::from_response(r, opts.connection, api);
        if let Some(servers) = &opts.mcp {
            sandbox.start_mcp_gateway(servers).await?;
        }
        Ok(sandbox)
    }

    /// Connect to an existing sandbox, resuming it if paused. `timeout` only extends a running
    /// sandbox's lifetime (default: the server's, 300 s).
    pub async fn connect(sandbox_id: &str, timeout: Option<Duration>, opts: &ConnectionOpts) -> Result<Sandbox> {
        Sandbox::connect_with(sandbox_id, ConnectOptions { timeout, on_resume: None }, opts).await
    }

    /// [`Sandbox::connect`] with every option of E2B's SDK (`on_resume`).
    pub async fn connect_with(sandbox_id: &str, connect: ConnectOptions, opts: &ConnectionOpts) -> Result<Sandbox> {
        let memory = crate::options::connect_memory(connect.on_resume.as_deref())?;
        let api = api_for(opts);
        let r = api::sandboxes::connect(&api, sandbox_id, connect.timeout.map(secs), memory).await?;
        Ok(Sandbox::from_response(r, opts.clone(), api))
    }

    /// Reconnect this handle's sandbox (resumes it if paused); returns a fresh handle.
    pub async fn reconnect(&self, timeout: Option<Duration>) -> Result<Sandbox> {
        Sandbox::connect(&self.0.sandbox_id, timeout, &self.0.opts).await
    }

    pub fn sandbox_id(&self) -> &str {
        &self.0.sandbox_id
    }

    pub fn sandbox_domain(&self) -> Option<&str> {
        self.0.sandbox_domain.as_deref()
    }

    pub fn envd_version(&self) -> &str {
        &self.0.envd_version
    }

    pub fn traffic_access_token(&self) -> Option<&str> {
        self.0.traffic_access_token.as_deref()
    }

    /// envd's base URL for this sandbox (E2B's `envd_api_url`).
    pub fn envd_url(&self) -> &str {
        self.0.envd.base_url()
    }

    /// The envd access token (set for `secure` sandboxes); signs file URLs.
    pub fn envd_access_token(&self) -> Option<&str> {
        self.0.envd.access_token()
    }

    /// The resolved connection configuration (E2B's `connection_config`).
    pub fn connection_config(&self) -> &ConnectionConfig {
        self.0.api.config()
    }

    /// The connection options this handle was made with.
    pub fn connection_opts(&self) -> &ConnectionOpts {
        &self.0.opts
    }

    /// `<port>-<id>.<domain>`.
    pub fn get_host(&self, port: u16) -> String {
        self.0.api.config().host(&self.0.sandbox_id, self.0.sandbox_domain.as_deref(), port)
    }

    pub fn commands(&self) -> Commands {
        Commands::new(self.0.envd.clone())
    }

    /// Git helpers (`sandbox.git`), run as commands in the sandbox.
    pub fn git(&self) -> crate::git::Git {
        crate::git::Git::new(self.commands())
    }

    /// Interactive terminals (`sandbox.pty`).
    pub fn pty(&self) -> crate::pty::Pty {
        crate::pty::Pty::new(self.commands())
    }

    pub fn files(&self) -> Files {
        Files::new(self.0.envd.clone())
    }

    /// Whether envd answers `/health`.
    pub async fn is_running(&self, request_timeout: Option<Duration>) -> Result<bool> {
        self.0.envd.health(request_timeout).await
    }

    /// Kill this sandbox; false when it was already gone.
    pub async fn kill(&self) -> Result<bool> {
        api::sandboxes::kill(&self.0.api, &self.0.sandbox_id).await
    }

    pub async fn kill_by_id(sandbox_id: &str, opts: &ConnectionOpts) -> Result<bool> {
        api::sandboxes::kill(&api_for(opts), sandbox_id).await
    }

    /// Set the lifetime to now + `timeout`.
    pub async fn set_timeout(&self, timeout: Duration) -> Result<()> {
        api::sandboxes::set_timeout(&self.0.api, &self.0.sandbox_id, secs(timeout)).await
    }

    pub async fn set_timeout_by_id(sandbox_id: &str, timeout: Duration, opts: &ConnectionOpts) -> Result<()> {
        api::sandboxes::set_timeout(&api_for(opts), sandbox_id, secs(timeout)).await
    }

    pub async fn get_info(&self) -> Result<SandboxInfo> {
        api::sandboxes::get(&self.0.api, &self.0.sandbox_id).await
    }

    pub async fn get_info_by_id(sandbox_id: &str, opts: &ConnectionOpts) -> Result<SandboxInfo> {
        api::sandboxes::get(&api_for(opts), sandbox_id).await
    }

    /// Pause; false when it was already paused. `keep_memory: false` pauses filesystem-only.
    pub async fn pause(&self, keep_memory: bool) -> Result<bool> {
        self.pause_with(PauseOptions { keep_memory: (!keep_memory).then_some(false), ..Default::default() }).await
    }

    /// Pause with every option of E2B's SDK (`mode`, `strict`).
    pub async fn pause_with(&self, pause: PauseOptions) -> Result<bool> {
        api::sandboxes::pause(&self.0.api, &self.0.sandbox_id, &pause_request(&pause)?).await
    }

    pub async fn pause_by_id(sandbox_id: &str, keep_memory: bool, opts: &ConnectionOpts) -> Result<bool> {
        let pause = PauseOptions { keep_memory: (!keep_memory).then_some(false), ..Default::default() };
        Sandbox::pause_by_id_with(sandbox_id, pause, opts).await
    }

    pub async fn pause_by_id_with(sandbox_id: &str, pause: PauseOptions, opts: &ConnectionOpts) -> Result<bool> {
        api::sandboxes::pause(&api_for(opts), sandbox_id, &pause_request(&pause)?).await
    }

    /// Fork into `count` new sandboxes; each entry is a sandbox or that fork's error.
    pub async fn fork(&self, opts: ForkOptions) -> Result<Vec<Result<Sandbox>>> {
        Sandbox::fork_by_id(&self.0.sandbox_id, opts, &self.0.opts).await
    }

    pub async fn fork_by_id(sandbox_id: &str, fork: ForkOptions, opts: &ConnectionOpts) -> Result<Vec<Result<Sandbox>>> {
        let api = api_for(opts);
        let body = ForkRequest { timeout: fork.timeout.map(secs), count: fork.count };
        let results = api::sandboxes::fork(&api, sandbox_id, &body).await?;
        Ok(results
            .into_iter()
            .map(|r| r.map(|s| Sandbox::from_response(s, opts.clone(), api.clone())))
            .collect())
    }

    /// List sandboxes (no request until `next_items`).
    pub fn list(list: SandboxListOptions, opts: &ConnectionOpts) -> Result<SandboxPaginator> {
        SandboxPaginator::new(api_for(opts), list)
    }

    pub(crate) fn api(&self) -> &ApiClient {
        &self.0.api
    }
}

/// The pause body E2B's SDK sends: `memory` only when chosen, `requireHealthyGuest` only when
/// strict.
fn pause_request(p: &PauseOptions) -> Result<crate::api::models::PauseRequest> {
    Ok(crate::api::models::PauseRequest {
        memory: crate::options::snapshot_memory("mode", p.mode.as_deref(), p.keep_memory)?,
        require_healthy_guest: p.strict.then_some(true),
    })
}

/// E2B's rule for `Idempotency-Key`: 1-255 lowercase ASCII letters, digits or hyphens.
fn check_idempotency_key(key: &str) -> Result<()> {
    let n = key.chars().count();
    if !(1..=255).contains(&n) {
        return Err(Error::InvalidArgument(format!("Invalid idempotency_key: expected 1-255 characters, got {n}.")));
    }
    if !key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(Error::InvalidArgument(
            "Invalid idempotency_key: only lowercase letters, digits and hyphens are allowed.".into(),
        ));
    }
    Ok(())
}

/// Whether a `major.minor.patch` version string is below `min` (unparsable counts as new).
pub(crate) fn version_lt(v: &str, min: (u64, u64, u64)) -> bool {
    let mut it = v.trim_start_matches('v').split(['.', '-', '+']).map(|p| p.parse::<u64>());
    match (it.next(), it.next(), it.next()) {
        (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => (a, b, c) < min,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_round_up() {
        assert_eq!(secs(Duration::from_millis(1)), 1);
        assert_eq!(secs(Duration::from_secs(300)), 300);
        assert_eq!(secs(Duration::from_millis(1500)), 2);
    }

    #[test]
    fn versions() {
        assert!(version_lt("0.0.9", (0, 1, 0)));
        assert!(!version_lt("0.5.7", (0, 1, 0)));
        assert!(!version_lt("", (0, 1, 0)));
    }
}
