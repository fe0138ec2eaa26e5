//! `Sandbox`: lifecycle calls, static (by sandbox ID) and on an instance, as in E2B's JS SDK.
//!
//! Options are in milliseconds (`timeoutMs`, `requestTimeoutMs`); the core rounds them up to
//! whole seconds for the REST API. Instance methods use the connection options the sandbox was
//! created or connected with, overridden field by field by the call's own options if given.
//!
//! Static methods are marked `configurable` (napi defines them read-only otherwise) so that
//! `index.js` can wrap them to rethrow errors as E2B's classes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use napi::Either;
use napi::bindgen_prelude::Result;
use napi_derive::napi;

use crate::commands::Commands;
use crate::config::{self, ConnectionOpts, opt_ms, with_connection_opts};
use crate::error::{JsResult, to_js};
use crate::files::Filesystem;
use crate::paginator::SandboxPaginator;

with_connection_opts! {
    #[doc = " Options of `Sandbox.create`."]
    pub struct SandboxOpts {
        #[doc = " Template name or ID, or a snapshot ID (default `base`)."]
        pub template: Option<String>,
        #[doc = " Sandbox lifetime in **milliseconds** (default 300 000)."]
        pub timeout_ms: Option<f64>,
        #[doc = " Custom metadata of the sandbox."]
        pub metadata: Option<HashMap<String, String>>,
        #[doc = " Environment variables of every command in the sandbox."]
        pub envs: Option<HashMap<String, String>>,
        #[doc = " Require an access token for envd traffic (default true)."]
        pub secure: Option<bool>,
        #[doc = " Allow the sandbox to reach the internet (default true)."]
        pub allow_internet_access: Option<bool>,
        #[doc = " `{ onTimeout: 'kill' | 'pause' | { action, mode }, autoResume }`: sent as E2B's"]
        #[doc = " `autoPause`, `autoPauseMemory`, `autoResume`."]
        #[napi(ts_type = "{ onTimeout?: 'kill' | 'pause' | { action: 'pause' | 'kill'; mode?: 'full' | 'filesystem' }; autoResume?: boolean }")]
        pub lifecycle: Option<serde_json::Value>,
        #[doc = " `{ allowOut, denyOut, allowPublicTraffic, maskRequestHost, rules }` (lists of CIDRs /"]
        #[doc = " hosts; per-host transform rules with `${e2b.secrets.<name>}` placeholders; callable"]
        #[doc = " transforms and selectors are run by the SDK first); `egressProxy`, `dnsServers` and"]
        #[doc = " `httpsPorts` are refused."]
        #[napi(ts_type = "{ allowOut?: string[]; denyOut?: string[]; allowPublicTraffic?: boolean; maskRequestHost?: string; rules?: Record<string, Array<{ transform?: { headers?: Record<string, string> } }>> }")]
        pub network: Option<serde_json::Value>,
        #[doc = " MCP servers: the sandbox comes from the `mcp-gateway` template unless `template` is"]
        #[doc = " given, and the MCP gateway is started in it (the sandbox is killed if it does not start)."]
        #[napi(ts_type = "Record<string, unknown>")]
        pub mcp: Option<serde_json::Value>,
        #[doc = " Workload identity tokens: `{ tokens: { name: Secret.iamToken({ audience, tokenType }) } }`;"]
        #[doc = " transform rules put them in requests as `${e2b.identity.tokens.<name>}`."]
        #[napi(ts_type = "{ tokens?: Record<string, { audience: string; tokenType: string }> }")]
        pub iam: Option<serde_json::Value>,
        #[doc = " Volumes to mount: mount path to `Volume` or volume name (the server mounts each volume"]
        #[doc = " at its path)."]
        #[napi(ts_type = "Record<string, Volume | string>")]
        pub volume_mounts: Option<std::collections::HashMap<String, String>>,
    }
}

with_connection_opts! {
    #[doc = " Options of `Sandbox.connect`."]
    pub struct SandboxConnectOpts {
        #[doc = " Lifetime in **milliseconds**; for a running sandbox it only extends the current one."]
        pub timeout_ms: Option<f64>,
        #[doc = " `restore` (default: memory comes back) or `reboot` (cold boot from the disk)."]
        #[napi(ts_type = "'restore' | 'reboot'")]
        pub on_resume: Option<String>,
    }
}

with_connection_opts! {
    #[doc = " Options of `pause`."]
    pub struct SandboxPauseOpts {
        #[doc = " Keep the memory snapshot (default true); false keeps only the filesystem."]
        pub keep_memory: Option<bool>,
    }
}

with_connection_opts! {
    #[doc = " Options of `getMetrics`."]
    pub struct SandboxMetricsOpts {
        #[doc = " Samples from this time on."]
        pub start: Option<DateTime<Utc>>,
        #[doc = " Samples up to this time."]
        pub end: Option<DateTime<Utc>>,
    }
}

/// One metrics sample of a sandbox (bytes for memory and disk).
#[napi(object, object_from_js = false)]
pub struct SandboxMetrics {
    pub timestamp: DateTime<Utc>,
    pub cpu_used_pct: f64,
    pub cpu_count: u32,
    pub mem_used: f64,
    pub mem_total: f64,
    pub mem_cache: f64,
    pub disk_used: f64,
    pub disk_total: f64,
}

impl From<e2b::SandboxMetrics> for SandboxMetrics {
    fn from(m: e2b::SandboxMetrics) -> Self {
        SandboxMetrics {
            timestamp: m.timestamp,
            cpu_used_pct: m.cpu_used_pct,
            cpu_count: m.cpu_count,
            mem_used: m.mem_used as f64,
            mem_total: m.mem_total as f64,
            mem_cache: m.mem_cache as f64,
            disk_used: m.disk_used as f64,
            disk_total: m.disk_total as f64,
        }
    }
}

/// The egress rules `updateNetwork` sets.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct SandboxNetworkUpdate {
    /// CIDRs / hosts allowed out (takes precedence over `denyOut`).
    pub allow_out: Option<Vec<String>>,
    /// CIDRs denied out.
    pub deny_out: Option<Vec<String>>,
    /// Allow the sandbox to reach the internet.
    pub allow_internet_access: Option<bool>,
    /// Per-host transform rules (replaced; omitted clears them).
    #[napi(ts_type = "Record<string, Array<{ transform?: { headers?: Record<string, string> } }>>")]
    pub rules: Option<serde_json::Value>,
    /// Not supported by this SDK yet: refused with `InvalidArgumentError`.
    #[napi(ts_type = "unknown")]
    pub egress_proxy: Option<serde_json::Value>,
}

impl SandboxNetworkUpdate {
    /// The core's update body (the core refuses what it does not implement).
    fn body(self) -> e2b::Result<e2b::NetworkUpdateBody> {
        let mut v = serde_json::Map::new();
        let mut put = |k: &str, val: Option<serde_json::Value>| {
            if let Some(val) = val {
                v.insert(k.to_string(), val);
            }
        };
        put("allowOut", self.allow_out.map(|x| x.into()));
        put("denyOut", self.deny_out.map(|x| x.into()));
        put("allowInternetAccess", self.allow_internet_access.map(|x| x.into()));
        put("rules", self.rules);
        put("egressProxy", self.egress_proxy);
        e2b::metrics_network::network_update_body(&serde_json::Value::Object(v))
    }
}

with_connection_opts! {
    #[doc = " Options of `fork`."]
    pub struct SandboxForkOpts {
        #[doc = " Number of forks (default 1)."]
        pub count: Option<u32>,
        #[doc = " Lifetime of each fork in **milliseconds** (default 300 000)."]
        pub timeout_ms: Option<f64>,
    }
}

/// Options of `uploadUrl` / `downloadUrl`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct SandboxUrlOpts {
    /// Life of the signed URL in **seconds** (secure sandboxes only).
    pub use_signature_expiration: Option<f64>,
    /// User the file is read or written as (default: the template's user).
    pub user: Option<String>,
}

/// Filter of `Sandbox.list` (all conditions must hold).
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct SandboxQuery {
    /// Sandboxes having all these metadata entries.
    pub metadata: Option<HashMap<String, String>>,
    /// `running` and/or `paused` (default both).
    #[napi(ts_type = "Array<'running' | 'paused'>")]
    pub state: Option<Vec<String>>,
    /// Sandboxes started at or after this time.
    pub started_after: Option<DateTime<Utc>>,
    /// Sandboxes of this template ID or name.
    pub template: Option<String>,
}

with_connection_opts! {
    #[doc = " Options of `Sandbox.list`."]
    pub struct SandboxListOpts {
        #[doc = " Filter of the listed sandboxes."]
        pub query: Option<SandboxQuery>,
        #[doc = " Order by start time (default `desc`)."]
        #[napi(ts_type = "'asc' | 'desc'")]
        pub order: Option<String>,
        #[doc = " Page size (default 100)."]
        pub limit: Option<u32>,
        #[doc = " Token of the page to start from."]
        pub next_token: Option<String>,
    }
}

/// Lifecycle of a sandbox as reported by `getInfo`.
#[napi(object, object_from_js = false)]
pub struct SandboxInfoLifecycle {
    /// `kill` or `pause`.
    #[napi(ts_type = "'pause' | 'kill'")]
    pub on_timeout: String,
    /// Whether traffic resumes the paused sandbox.
    pub auto_resume: bool,
}

/// Information about a sandbox.
#[napi(object, object_from_js = false)]
pub struct SandboxInfo {
    /// Sandbox ID.
    pub sandbox_id: String,
    /// Template ID.
    pub template_id: String,
    /// Template name (alias).
    pub name: Option<String>,
    /// Metadata given at creation.
    pub metadata: HashMap<String, String>,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// Time at which the sandbox will be killed (or paused).
    pub end_at: DateTime<Utc>,
    /// `running` or `paused`.
    #[napi(ts_type = "'running' | 'paused'")]
    pub state: String,
    /// Number of vCPUs.
    pub cpu_count: u32,
    /// Memory in MiB.
    #[napi(js_name = "memoryMB")]
    pub memory_mb: u32,
    /// Version of envd in the sandbox.
    pub envd_version: String,
    /// Whether internet access was explicitly enabled or disabled.
    pub allow_internet_access: Option<bool>,
    /// Lifecycle configuration.
    pub lifecycle: Option<SandboxInfoLifecycle>,
    /// Domain of the sandbox.
    pub sandbox_domain: Option<String>,
    /// Egress configuration, when the server reports one.
    pub network: Option<SandboxNetworkInfo>,
    /// Volumes mounted into the sandbox.
    pub volume_mounts: Vec<SandboxVolumeMount>,
}

/// A sandbox's egress configuration as `getInfo` reports it.
#[napi(object, object_from_js = false)]
pub struct SandboxNetworkInfo {
    pub allow_out: Option<Vec<String>>,
    pub deny_out: Option<Vec<String>>,
    pub dns_servers: Option<Vec<String>>,
    pub allow_public_traffic: Option<bool>,
    pub mask_request_host: Option<String>,
    pub https_ports: Option<Vec<u16>>,
}

/// A volume mounted into a sandbox.
#[napi(object, object_from_js = false)]
pub struct SandboxVolumeMount {
    pub name: String,
    pub path: String,
}

impl From<e2b::SandboxInfo> for SandboxInfo {
    fn from(i: e2b::SandboxInfo) -> Self {
        SandboxInfo {
            sandbox_id: i.sandbox_id,
            template_id: i.template_id,
            name: i.name,
            metadata: i.metadata,
            started_at: i.started_at,
            end_at: i.end_at,
            state: i.state,
            cpu_count: i.cpu_count,
            memory_mb: i.memory_mb,
            envd_version: i.envd_version,
            allow_internet_access: i.allow_internet_access,
            lifecycle: i.lifecycle.map(|l| SandboxInfoLifecycle {
                on_timeout: l.on_timeout,
                auto_resume: l.auto_resume,
            }),
            sandbox_domain: i.sandbox_domain,
            network: i.network.map(|n| SandboxNetworkInfo {
                allow_out: n.allow_out,
                deny_out: n.deny_out,
                dns_servers: n.dns_servers,
                allow_public_traffic: n.allow_public_traffic,
                mask_request_host: n.mask_request_host,
                https_ports: n.https_ports,
            }),
            volume_mounts: i.volume_mounts.into_iter().map(|v| SandboxVolumeMount { name: v.name, path: v.path }).collect(),
        }
    }
}

/// Options of `isRunning`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct IsRunningOpts {
    /// Timeout of the health check in **milliseconds**.
    pub request_timeout_ms: Option<f64>,
}

/// A sandbox: an isolated VM with commands (`commands`) and a filesystem (`files`).
///
/// Create one with `await Sandbox.create()`, or attach to a running one with
/// `await Sandbox.connect(sandboxId)`.
#[napi]
pub struct Sandbox {
    pub(crate) inner: e2b::Sandbox,
}

impl From<e2b::Sandbox> for Sandbox {
    fn from(inner: e2b::Sandbox) -> Self {
        Sandbox { inner }
    }
}

impl Sandbox {
    /// Per-call connection options over the ones this sandbox was made with (E2B: per-call
    /// options win). Instance methods given options go through the by-ID call with these.
    pub(crate) fn merged(&self, over: e2b::ConnectionOpts) -> e2b::ConnectionOpts {
        self.inner.connection_opts().merged(&over)
    }
}

fn fork_results(forks: Vec<e2b::Result<e2b::Sandbox>>) -> Vec<Either<Sandbox, napi::Error>> {
    forks
        .into_iter()
        .map(|r| match r {
            Ok(s) => Either::A(Sandbox::from(s)),
            Err(e) => Either::B(to_js(e)),
        })
        .collect()
}

#[napi]
impl Sandbox {
    /// Create a sandbox from a template (default `base`) or a snapshot ID:
    /// `Sandbox.create()`, `Sandbox.create('base', opts)` or `Sandbox.create({ template, ... })`.
    #[napi(
        factory,
        ts_args_type = "template?: string | SandboxOpts, opts?: SandboxOpts",
        configurable
    )]
    pub async fn create(
        template: Option<Either<String, SandboxOpts>>,
        opts: Option<SandboxOpts>,
    ) -> Result<Sandbox> {
        let (template, opts) = match template {
            Some(Either::A(t)) => (Some(t), opts.unwrap_or_default()),
            Some(Either::B(o)) => (o.template.clone(), o),
            None => (None, opts.unwrap_or_default()),
        };
        let template = template.or_else(|| opts.template.clone());
        let mut create = e2b::CreateOptions {
            template,
            timeout: opt_ms(opts.timeout_ms),
            metadata: opts.metadata.clone(),
            envs: opts.envs.clone(),
            lifecycle: e2b::options::lifecycle_body(opts.lifecycle.as_ref()).js()?,
            network: e2b::options::network_body(opts.network.as_ref()).js()?,
            mcp: opts.mcp.clone(),
            iam: e2b::options::iam_body(opts.iam.as_ref()).js()?,
            volume_mounts: opts
                .volume_mounts
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|(path, name)| e2b::models::VolumeMount { name, path })
                .collect(),
            connection: opts.connection(),
            ..Default::default()
        };
        if let Some(secure) = opts.secure {
            create.secure = secure;
        }
        if opts.allow_internet_access.is_some() {
            create.allow_internet_access = opts.allow_internet_access;
        }
        e2b::Sandbox::create(create).await.js().map(Sandbox::from)
    }

    /// Connect to a running or paused sandbox by ID (a paused one is resumed).
    #[napi(factory, js_name = "connect", configurable)]
    pub async fn connect_by_id(
        sandbox_id: String,
        opts: Option<SandboxConnectOpts>,
    ) -> Result<Sandbox> {
        let opts = opts.unwrap_or_default();
        let c = e2b::ConnectOptions { timeout: opt_ms(opts.timeout_ms), on_resume: opts.on_resume.clone() };
        e2b::Sandbox::connect_with(&sandbox_id, c, &opts.connection())
            .await
            .js()
            .map(Sandbox::from)
    }

    /// Connect to this sandbox again (resuming it if paused); returns a new handle.
    #[napi]
    pub async fn connect(&self, opts: Option<SandboxConnectOpts>) -> Result<Sandbox> {
        let opts = opts.unwrap_or_default();
        let c = e2b::ConnectOptions { timeout: opt_ms(opts.timeout_ms), on_resume: opts.on_resume.clone() };
        e2b::Sandbox::connect_with(self.inner.sandbox_id(), c, &self.merged(opts.connection()))
            .await
            .js()
            .map(Sandbox::from)
    }

    /// ID of the sandbox.
    #[napi(getter)]
    pub fn sandbox_id(&self) -> String {
        self.inner.sandbox_id().to_string()
    }

    /// Domain of the sandbox, when the server gave one.
    #[napi(getter)]
    pub fn sandbox_domain(&self) -> Option<String> {
        self.inner.sandbox_domain().map(str::to_string)
    }

    /// Version of envd in the sandbox.
    #[napi(getter)]
    pub fn envd_version(&self) -> String {
        self.inner.envd_version().to_string()
    }

    /// Token for traffic to the sandbox's ports, when it is not public.
    #[napi(getter)]
    pub fn traffic_access_token(&self) -> Option<String> {
        self.inner.traffic_access_token().map(str::to_string)
    }

    /// envd's access token (sent as `X-Access-Token` to envd and guest servers that check it).
    #[napi(getter)]
    pub fn envd_access_token(&self) -> Option<String> {
        self.inner.envd_access_token().map(str::to_string)
    }

    /// The resolved connection settings of this sandbox handle.
    #[napi(getter)]
    pub fn connection_config(&self) -> crate::connection::ConnectionConfig {
        crate::connection::ConnectionConfig { inner: self.inner.connection_config().clone() }
    }

    /// Commands (processes) in the sandbox.
    #[napi(getter)]
    pub fn commands(&self) -> Commands {
        Commands::from(self.inner.commands())
    }

    /// Git helpers (deprecated upstream: prefer `commands.run('git …')`).
    #[napi(getter)]
    pub fn git(&self) -> crate::git::Git {
        crate::git::Git { inner: self.inner.git() }
    }

    /// Interactive terminals in the sandbox.
    #[napi(getter)]
    pub fn pty(&self) -> crate::pty::Pty {
        crate::pty::Pty { inner: self.inner.pty(), commands: self.inner.commands() }
    }

    /// The sandbox's filesystem.
    #[napi(getter)]
    pub fn files(&self) -> Filesystem {
        Filesystem::from(self.inner.files())
    }

    /// Host name of a port of the sandbox: `<port>-<sandboxId>.<domain>`.
    #[napi]
    pub fn get_host(&self, port: u16) -> String {
        self.inner.get_host(port)
    }

    /// Port of the MCP gateway in the sandbox.
    #[napi(getter)]
    pub fn mcp_port(&self) -> u16 {
        e2b::mcp::MCP_PORT
    }

    /// The MCP gateway's URL: `https://<host of port 50005>/mcp`.
    #[napi]
    pub fn get_mcp_url(&self) -> String {
        self.inner.get_mcp_url()
    }

    /// The MCP gateway's access token (read from the sandbox when this handle did not start it).
    #[napi]
    pub async fn get_mcp_token(&self) -> Result<Option<String>> {
        self.inner.get_mcp_token().await.js()
    }

    /// Whether the sandbox is up (envd answers its health check).
    #[napi]
    pub async fn is_running(&self, opts: Option<IsRunningOpts>) -> Result<bool> {
        self.inner
            .is_running(opts.and_then(|o| opt_ms(o.request_timeout_ms)))
            .await
            .js()
    }

    /// Kill the sandbox; `false` when it was already gone.
    #[napi]
    pub async fn kill(&self, opts: Option<ConnectionOpts>) -> Result<bool> {
        match opts {
            Some(o) => {
                e2b::Sandbox::kill_by_id(self.inner.sandbox_id(), &self.merged(o.connection()))
                    .await
                    .js()
            }
            None => self.inner.kill().await.js(),
        }
    }

    /// Kill a sandbox by ID; `false` when it was not found.
    #[napi(js_name = "kill", configurable)]
    pub async fn kill_by_id(sandbox_id: String, opts: Option<ConnectionOpts>) -> Result<bool> {
        e2b::Sandbox::kill_by_id(&sandbox_id, &config::connection(&opts))
            .await
            .js()
    }

    /// Set the sandbox to end `timeoutMs` milliseconds from now.
    #[napi]
    pub async fn set_timeout(&self, timeout_ms: f64, opts: Option<ConnectionOpts>) -> Result<()> {
        let timeout = config::ms(timeout_ms);
        match opts {
            Some(o) => e2b::Sandbox::set_timeout_by_id(
                self.inner.sandbox_id(),
                timeout,
                &self.merged(o.connection()),
            )
            .await
            .js(),
            None => self.inner.set_timeout(timeout).await.js(),
        }
    }

    /// Set a sandbox, by ID, to end `timeoutMs` milliseconds from now.
    #[napi(js_name = "setTimeout", configurable)]
    pub async fn set_timeout_by_id(
        sandbox_id: String,
        timeout_ms: f64,
        opts: Option<ConnectionOpts>,
    ) -> Result<()> {
        e2b::Sandbox::set_timeout_by_id(
            &sandbox_id,
            config::ms(timeout_ms),
            &config::connection(&opts),
        )
        .await
        .js()
    }

    /// Metrics samples of the sandbox.
    #[napi]
    pub async fn get_metrics(&self, opts: Option<SandboxMetricsOpts>) -> Result<Vec<SandboxMetrics>> {
        let o = opts.unwrap_or_default();
        let (start, end) = (o.start.map(|t| t.timestamp()), o.end.map(|t| t.timestamp()));
        let v = e2b::Sandbox::get_metrics_by_id(self.inner.sandbox_id(), start, end, &self.merged(o.connection())).await.js()?;
        Ok(v.into_iter().map(SandboxMetrics::from).collect())
    }

    /// Metrics samples of a sandbox by ID.
    #[napi(js_name = "getMetrics", configurable)]
    pub async fn get_metrics_by_id(sandbox_id: String, opts: Option<SandboxMetricsOpts>) -> Result<Vec<SandboxMetrics>> {
        let o = opts.unwrap_or_default();
        let (start, end) = (o.start.map(|t| t.timestamp()), o.end.map(|t| t.timestamp()));
        let v = e2b::Sandbox::get_metrics_by_id(&sandbox_id, start, end, &o.connection()).await.js()?;
        Ok(v.into_iter().map(SandboxMetrics::from).collect())
    }

    /// Change the egress rules of the running sandbox.
    #[napi]
    pub async fn update_network(&self, network: SandboxNetworkUpdate, opts: Option<ConnectionOpts>) -> Result<()> {
        let body = network.body().js()?;
        e2b::Sandbox::update_network_by_id(self.inner.sandbox_id(), &body, &self.merged(config::connection(&opts))).await.js()
    }

    /// Change the egress rules of a running sandbox by ID.
    #[napi(js_name = "updateNetwork", configurable)]
    pub async fn update_network_by_id(sandbox_id: String, network: SandboxNetworkUpdate, opts: Option<ConnectionOpts>) -> Result<()> {
        let body = network.body().js()?;
        e2b::Sandbox::update_network_by_id(&sandbox_id, &body, &config::connection(&opts)).await.js()
    }

    /// URL to upload a file to with a `multipart/form-data` POST; signed when the sandbox is
    /// secure (E2B's v1 signature, computed in the core).
    #[napi(ts_args_type = "path?: string, opts?: SandboxUrlOpts")]
    pub async fn upload_url(&self, path: Option<String>, opts: Option<SandboxUrlOpts>) -> Result<String> {
        let o = opts.unwrap_or_default();
        self.inner
            .upload_url(path.as_deref().unwrap_or(""), o.user.as_deref(), o.use_signature_expiration.map(|s| s as i64))
            .js()
    }

    /// URL to download a file from with a GET; signed when the sandbox is secure.
    #[napi]
    pub async fn download_url(&self, path: String, opts: Option<SandboxUrlOpts>) -> Result<String> {
        let o = opts.unwrap_or_default();
        self.inner.download_url(&path, o.user.as_deref(), o.use_signature_expiration.map(|s| s as i64)).js()
    }

    /// Information about the sandbox.
    #[napi]
    pub async fn get_info(&self, opts: Option<ConnectionOpts>) -> Result<SandboxInfo> {
        let info = match opts {
            Some(o) => {
                e2b::Sandbox::get_info_by_id(self.inner.sandbox_id(), &self.merged(o.connection()))
                    .await
            }
            None => self.inner.get_info().await,
        };
        info.js().map(SandboxInfo::from)
    }

    /// Information about a sandbox by ID (E2B's `getFullInfo`; the same as `Sandbox.getInfo`).
    #[napi(js_name = "getFullInfo", configurable)]
    pub async fn get_full_info(sandbox_id: String, opts: Option<ConnectionOpts>) -> Result<SandboxInfo> {
        Sandbox::get_info_by_id(sandbox_id, opts).await
    }

    /// Information about a sandbox by ID.
    #[napi(js_name = "getInfo", configurable)]
    pub async fn get_info_by_id(
        sandbox_id: String,
        opts: Option<ConnectionOpts>,
    ) -> Result<SandboxInfo> {
        e2b::Sandbox::get_info_by_id(&sandbox_id, &config::connection(&opts))
            .await
            .js()
            .map(SandboxInfo::from)
    }

    /// Pause the sandbox; `false` when it was already paused. Resume it with `connect`.
    #[napi]
    pub async fn pause(&self, opts: Option<SandboxPauseOpts>) -> Result<bool> {
        match opts {
            Some(o) => {
                let keep_memory = o.keep_memory.unwrap_or(true);
                e2b::Sandbox::pause_by_id(
                    self.inner.sandbox_id(),
                    keep_memory,
                    &self.merged(o.connection()),
                )
                .await
                .js()
            }
            None => self.inner.pause(true).await.js(),
        }
    }

    /// Deprecated alias of `pause`.
    #[napi]
    pub async fn beta_pause(&self, opts: Option<SandboxPauseOpts>) -> Result<bool> {
        self.pause(opts).await
    }

    /// Deprecated alias of `Sandbox.pause`.
    #[napi(js_name = "betaPause", configurable)]
    pub async fn beta_pause_by_id(sandbox_id: String, opts: Option<SandboxPauseOpts>) -> Result<bool> {
        Sandbox::pause_by_id(sandbox_id, opts).await
    }

    /// Pause a sandbox by ID; `false` when it was already paused.
    #[napi(js_name = "pause", configurable)]
    pub async fn pause_by_id(sandbox_id: String, opts: Option<SandboxPauseOpts>) -> Result<bool> {
        let opts = opts.unwrap_or_default();
        e2b::Sandbox::pause_by_id(
            &sandbox_id,
            opts.keep_memory.unwrap_or(true),
            &opts.connection(),
        )
        .await
        .js()
    }

    /// Fork the running sandbox into `count` new ones; each entry is a sandbox or that fork's error.
    #[napi(ts_return_type = "Promise<Array<Sandbox | Error>>")]
    pub async fn fork(
        &self,
        opts: Option<SandboxForkOpts>,
    ) -> Result<Vec<Either<Sandbox, napi::Error>>> {
        let opts = opts.unwrap_or_default();
        let fork = e2b::ForkOptions {
            timeout: opt_ms(opts.timeout_ms),
            count: opts.count,
        };
        let conn = self.merged(opts.connection());
        e2b::Sandbox::fork_by_id(self.inner.sandbox_id(), fork, &conn)
            .await
            .js()
            .map(fork_results)
    }

    /// Fork a sandbox by ID; each entry is a sandbox or that fork's error.
    #[napi(
        js_name = "fork",
        ts_return_type = "Promise<Array<Sandbox | Error>>",
        configurable
    )]
    pub async fn fork_by_id(
        sandbox_id: String,
        opts: Option<SandboxForkOpts>,
    ) -> Result<Vec<Either<Sandbox, napi::Error>>> {
        let opts = opts.unwrap_or_default();
        let fork = e2b::ForkOptions {
            timeout: opt_ms(opts.timeout_ms),
            count: opts.count,
        };
        e2b::Sandbox::fork_by_id(&sandbox_id, fork, &opts.connection())
            .await
            .js()
            .map(fork_results)
    }

    /// List sandboxes, a page at a time: `while (p.hasNext) items.push(...await p.nextItems())`.
    /// Synchronous: no request is made until `nextItems`.
    #[napi(configurable)]
    pub fn list(opts: Option<SandboxListOpts>) -> Result<SandboxPaginator> {
        let opts = opts.unwrap_or_default();
        let query = opts.query.as_ref().map(|q| e2b::SandboxQuery {
            metadata: q.metadata.clone().unwrap_or_default(),
            state: q.state.clone().unwrap_or_default(),
            started_after: q.started_after,
            template: q.template.clone(),
        });
        let list = e2b::SandboxListOptions {
            query: query.unwrap_or_default(),
            limit: opts.limit,
            next_token: opts.next_token.clone(),
            order: opts.order.clone(),
        };
        e2b::Sandbox::list(list, &opts.connection())
            .js()
            .map(SandboxPaginator::from)
    }
}
