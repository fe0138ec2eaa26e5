//! Building a [`Template`] through E2B's template API, as the official SDK does:
//! `POST /v3/templates` (name, tags, resources) → for each `COPY`,
//! `GET /templates/{id}/files/{hash}` and a tar upload to the returned URL when the server does
//! not have those files yet → `POST /v2/templates/{id}/builds/{buildID}` with the steps → poll
//! `GET …/builds/{buildID}/status?logsOffset=n` every 200 ms, streaming each new log entry,
//! until `ready` or `error`. Plus aliases (`exists`), tags and the listing/deletion the CLI uses.
//!
//! Invariants: log entries reach the callback once each, in order, including the tail after
//! the terminal status; a failed build is a `Build` error carrying the server's reason; API
//! errors map to the same error kinds as the official SDK (`Build`, `FileUpload`, `Template`).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{GZIP, InstructionType, RESOLVE_SYMLINKS, Template};
use crate::api::{ApiClient, encode_path_segment};
use crate::config::{ConnectionConfig, ConnectionOpts};
use crate::error::{Error, Result};

/// How often a waiting build polls its status (the official `_logs_refresh_frequency`).
pub const LOGS_REFRESH: Duration = Duration::from_millis(200);
/// Upload timeout when no `request_timeout` was given (the official 1 hour).
pub const FILE_UPLOAD_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
    pub fn parse(s: &str) -> Option<LogLevel> {
        Some(match s {
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => return None,
        })
    }
}

/// `LogEntryStart` / `LogEntryEnd` mark the ends of a build; the rest are plain entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEntryKind {
    Entry,
    Start,
    End,
}

/// One build log line (ANSI escapes stripped, as the official `LogEntry` does).
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub timestamp: DateTime<Utc>,
    pub level: LogLevel,
    pub message: String,
    pub kind: LogEntryKind,
}

impl LogEntry {
    pub fn new(level: LogLevel, message: impl AsRef<str>) -> Self {
        LogEntry { timestamp: Utc::now(), level, message: strip_ansi(message.as_ref()), kind: LogEntryKind::Entry }
    }
    fn marker(kind: LogEntryKind, message: &str) -> Self {
        LogEntry { timestamp: Utc::now(), level: LogLevel::Debug, message: message.into(), kind }
    }
}

impl std::fmt::Display for LogEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] [{}] {}", self.timestamp.to_rfc3339(), self.level.as_str(), self.message)
    }
}

/// The official `strip_ansi_escape_codes` (chalk's ansi-regex).
pub fn strip_ansi(text: &str) -> String {
    use std::sync::OnceLock;
    static RE: OnceLock<regex::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        let st = r"(?:\x07|\x1B\x5C|\u{9C})";
        let strings = format!(r"(?:\x1B[\]PX^_][\s\S]*?{st})");
        let csi = r"[\x1B\u{9B}][\[\]()#;?]*(?:[0-9]{1,4}(?:[;:][0-9]{0,4})*)?[0-9A-PR-TZcf-nq-uy=><~]";
        regex::Regex::new(&format!("{strings}|{csi}")).expect("ansi regex")
    });
    re.replace_all(text, "").into_owned()
}

pub type LogCallback = Arc<dyn Fn(LogEntry) + Send + Sync>;

/// `Template.build` options besides the template and the connection.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `name` or `name:tag`.
    pub name: String,
    pub tags: Vec<String>,
    pub cpu_count: Option<u32>,
    pub memory_mb: Option<u32>,
    pub min_free_disk_mb: Option<u32>,
    pub skip_cache: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BuildInfo {
    pub template_id: String,
    pub build_id: String,
    pub name: String,
    /// Deprecated spelling of `name`.
    pub alias: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TemplateBuildStatus {
    Building,
    Waiting,
    Ready,
    Error,
}

impl TemplateBuildStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateBuildStatus::Building => "building",
            TemplateBuildStatus::Waiting => "waiting",
            TemplateBuildStatus::Ready => "ready",
            TemplateBuildStatus::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct BuildStatusReason {
    pub message: String,
    pub step: Option<String>,
    pub log_entries: Vec<LogEntry>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateBuildStatusResponse {
    pub build_id: String,
    pub template_id: String,
    pub status: TemplateBuildStatus,
    pub log_entries: Vec<LogEntry>,
    pub logs: Vec<String>,
    pub reason: Option<BuildStatusReason>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateTagInfo {
    pub build_id: String,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateTag {
    pub tag: String,
    pub build_id: String,
    pub created_at: DateTime<Utc>,
}

// ---- wire shapes -------------------------------------------------------------------------

#[derive(Serialize)]
struct BuildRequestV3<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a [String]>,
    #[serde(rename = "cpuCount", skip_serializing_if = "Option::is_none")]
    cpu_count: Option<u32>,
    #[serde(rename = "memoryMB", skip_serializing_if = "Option::is_none")]
    memory_mb: Option<u32>,
    #[serde(rename = "minFreeDiskMb", skip_serializing_if = "Option::is_none")]
    min_free_disk_mb: Option<u32>,
}

#[derive(Deserialize)]
struct RequestResponseV3 {
    #[serde(rename = "templateID")]
    template_id: String,
    #[serde(rename = "buildID")]
    build_id: String,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize)]
struct FileUpload {
    present: bool,
    url: Option<String>,
    #[serde(default)]
    headers: Option<std::collections::HashMap<String, String>>,
}

#[derive(Deserialize)]
struct WireLogEntry {
    timestamp: DateTime<Utc>,
    level: String,
    message: String,
}

impl From<WireLogEntry> for LogEntry {
    fn from(w: WireLogEntry) -> Self {
        LogEntry {
            timestamp: w.timestamp,
            level: LogLevel::parse(&w.level).unwrap_or(LogLevel::Info),
            message: strip_ansi(&w.message),
            kind: LogEntryKind::Entry,
        }
    }
}

#[derive(Deserialize)]
struct WireReason {
    message: String,
    step: Option<String>,
    #[serde(rename = "logEntries", default)]
    log_entries: Option<Vec<WireLogEntry>>,
}

#[derive(Deserialize)]
struct WireBuildInfo {
    #[serde(rename = "templateID")]
    template_id: String,
    #[serde(rename = "buildID")]
    build_id: String,
    status: TemplateBuildStatus,
    #[serde(rename = "logEntries", default)]
    log_entries: Vec<WireLogEntry>,
    #[serde(default)]
    logs: Vec<String>,
    reason: Option<WireReason>,
}

#[derive(Deserialize)]
struct WireTagInfo {
    #[serde(rename = "buildID")]
    build_id: String,
    tags: Vec<String>,
}

#[derive(Deserialize)]
struct WireTag {
    tag: String,
    #[serde(rename = "buildID")]
    build_id: String,
    #[serde(rename = "createdAt")]
    created_at: DateTime<Utc>,
}

// ---- calls -------------------------------------------------------------------------------

fn api(opts: &ConnectionOpts) -> ApiClient {
    ApiClient::new(ConnectionConfig::resolve(opts))
}

/// E2B's `handle_api_exception` with a default class: the generic mapping, but a plain
/// failure becomes `kind` (`Build`, `FileUpload` or `Template`).
fn api_error(status: u16, body: &[u8], kind: fn(String) -> Error) -> Error {
    match Error::from_api_response(status, body) {
        Error::Sandbox { message, .. } => kind(message),
        e => e,
    }
}

async fn request_build(api: &ApiClient, o: &BuildOptions) -> Result<RequestResponseV3> {
    let body = BuildRequestV3 {
        name: &o.name,
        tags: if o.tags.is_empty() { None } else { Some(&o.tags) },
        cpu_count: o.cpu_count,
        memory_mb: o.memory_mb,
        min_free_disk_mb: o.min_free_disk_mb,
    };
    let r = api.send(Method::POST, "/v3/templates", &[], Some(&body)).await?;
    if r.status >= 300 {
        return Err(api_error(r.status, &r.body, Error::Build));
    }
    r.json().map_err(|e| Error::Build(e.to_string()))
}

async fn file_upload_link(api: &ApiClient, template_id: &str, hash: &str) -> Result<FileUpload> {
    let path = format!("/templates/{}/files/{}", encode_path_segment(template_id), encode_path_segment(hash));
    let r = api.send::<()>(Method::GET, &path, &[], None).await?;
    if r.status >= 300 {
        return Err(api_error(r.status, &r.body, Error::FileUpload));
    }
    r.json().map_err(|e| Error::FileUpload(e.to_string()))
}

async fn upload(
    url: &str,
    headers: Option<std::collections::HashMap<String, String>>,
    archive: Vec<u8>,
    timeout: Option<Duration>,
) -> Result<()> {
    let fail = |m: String| Error::FileUpload(format!("Failed to upload file: {m}"));
    let mut b = crate::api::http_client().put(url).timeout(timeout.unwrap_or(FILE_UPLOAD_TIMEOUT));
    for (k, v) in headers.unwrap_or_default() {
        if !k.eq_ignore_ascii_case("content-length") {
            b = b.header(k, v);
        }
    }
    let len = archive.len();
    let r = b
        .header("Content-Length", len.to_string())
        .body(archive)
        .send()
        .await
        .map_err(|e| fail(crate::error::error_chain(&e)))?;
    if !r.status().is_success() {
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        return Err(fail(format!("{status} for url '{url}': {text}")));
    }
    Ok(())
}

async fn trigger_build(api: &ApiClient, template_id: &str, build_id: &str, body: &super::TemplateBuildRequest) -> Result<()> {
    let path = format!("/v2/templates/{}/builds/{}", encode_path_segment(template_id), encode_path_segment(build_id));
    let r = api.send(Method::POST, &path, &[], Some(body)).await?;
    if r.status >= 300 {
        return Err(api_error(r.status, &r.body, Error::Build));
    }
    Ok(())
}

/// `Template.get_build_status`.
pub async fn get_build_status(
    template_id: &str,
    build_id: &str,
    logs_offset: Option<u64>,
    opts: &ConnectionOpts,
) -> Result<TemplateBuildStatusResponse> {
    status(&api(opts), template_id, build_id, logs_offset).await
}

async fn status(api: &ApiClient, template_id: &str, build_id: &str, logs_offset: Option<u64>) -> Result<TemplateBuildStatusResponse> {
    let path = format!(
        "/templates/{}/builds/{}/status",
        encode_path_segment(template_id),
        encode_path_segment(build_id)
    );
    // `limit=100` is the generated client's default the official SDK always sends.
    let query = [("logsOffset", logs_offset.map(|o| o.to_string())), ("limit", Some("100".to_string()))];
    let r = api.send::<()>(Method::GET, &path, &query, None).await?;
    if r.status >= 300 {
        return Err(api_error(r.status, &r.body, Error::Build));
    }
    let w: WireBuildInfo = r.json().map_err(|e| Error::Build(e.to_string()))?;
    Ok(TemplateBuildStatusResponse {
        build_id: w.build_id,
        template_id: w.template_id,
        status: w.status,
        log_entries: w.log_entries.into_iter().map(Into::into).collect(),
        logs: w.logs,
        reason: w.reason.map(|r| BuildStatusReason {
            message: r.message,
            step: r.step,
            log_entries: r.log_entries.unwrap_or_default().into_iter().map(Into::into).collect(),
        }),
    })
}

fn log(cb: &Option<LogCallback>, level: LogLevel, msg: String) {
    if let Some(cb) = cb {
        cb(LogEntry::new(level, msg));
    }
}

/// Request, upload and start a build; returns without waiting (`build_in_background`).
pub async fn build_in_background(
    template: &Template,
    opts: &BuildOptions,
    on_logs: Option<LogCallback>,
    conn: &ConnectionOpts,
) -> Result<BuildInfo> {
    if opts.name.is_empty() {
        return Err(Error::Template("Name must be provided".into()));
    }
    let api = api(conn);
    start(&api, template, opts, &on_logs, conn.request_timeout).await
}

async fn start(
    api: &ApiClient,
    template: &Template,
    opts: &BuildOptions,
    on_logs: &Option<LogCallback>,
    request_timeout: Option<Duration>,
) -> Result<BuildInfo> {
    let mut template = template.clone();
    if opts.skip_cache {
        template.set_force(true);
    }
    let tags_msg = if opts.tags.is_empty() { String::new() } else { format!(" with tags: {}", opts.tags.join(", ")) };
    log(on_logs, LogLevel::Info, format!("Requesting build for template: {}{tags_msg}", opts.name));
    let resp = request_build(api, opts).await?;
    let (template_id, build_id) = (resp.template_id, resp.build_id);
    log(on_logs, LogLevel::Info, format!("Template created with ID: {template_id}, Build ID: {build_id}"));

    let steps = template.instructions_with_hashes()?;
    let ignore = template.ignore_patterns();
    for (step, ins) in steps.iter().zip(template.instructions()) {
        if step.kind != InstructionType::Copy {
            continue;
        }
        let src = &step.args[0];
        let hash = step.files_hash.as_deref().unwrap_or_default();
        let link = file_upload_link(api, &template_id, hash).await?;
        let must = (ins.force_upload == Some(true) || !link.present) && link.url.is_some();
        if must {
            let archive = super::files::tar_files(
                src,
                template.file_context_path(),
                &ignore,
                ins.resolve_symlinks.unwrap_or(RESOLVE_SYMLINKS),
                ins.gzip.unwrap_or(GZIP),
            )?;
            upload(link.url.as_deref().unwrap_or_default(), link.headers, archive, request_timeout).await?;
            log(on_logs, LogLevel::Info, format!("Uploaded '{src}'"));
        } else {
            log(on_logs, LogLevel::Info, format!("Skipping upload of '{src}', already cached"));
        }
    }
    log(on_logs, LogLevel::Info, "All file uploads completed".into());
    log(on_logs, LogLevel::Info, "Starting building...".into());
    trigger_build(api, &template_id, &build_id, &template.serialize(steps)).await?;
    Ok(BuildInfo { template_id, build_id, alias: opts.name.clone(), name: opts.name.clone(), tags: resp.tags })
}

/// Poll until the build is `ready` (Ok) or `error` (a `Build` error with the server's reason),
/// streaming every log entry once.
pub async fn wait_for_build_finish(
    template_id: &str,
    build_id: &str,
    on_logs: Option<LogCallback>,
    conn: &ConnectionOpts,
) -> Result<()> {
    wait(&api(conn), template_id, build_id, &on_logs).await
}

async fn wait(api: &ApiClient, template_id: &str, build_id: &str, on_logs: &Option<LogCallback>) -> Result<()> {
    let mut offset = 0u64;
    loop {
        let s = status(api, template_id, build_id, Some(offset)).await?;
        offset += s.log_entries.len() as u64;
        let mut got = !s.log_entries.is_empty();
        if let Some(cb) = on_logs {
            s.log_entries.iter().cloned().for_each(|e| cb(e));
        }
        match s.status {
            TemplateBuildStatus::Ready | TemplateBuildStatus::Error => {
                // The status call returns a bounded page of logs: drain the tail.
                while got {
                    let t = status(api, template_id, build_id, Some(offset)).await?;
                    offset += t.log_entries.len() as u64;
                    got = !t.log_entries.is_empty();
                    if let Some(cb) = on_logs {
                        t.log_entries.into_iter().for_each(|e| cb(e));
                    }
                }
                if s.status == TemplateBuildStatus::Ready {
                    return Ok(());
                }
                return Err(Error::Build(s.reason.map(|r| r.message).unwrap_or_else(|| "Build failed".into())));
            }
            _ => tokio::time::sleep(LOGS_REFRESH).await,
        }
    }
}

/// `Template.build`: start the build and wait for it, with `LogEntryStart` / `LogEntryEnd`
/// around everything sent to `on_logs`.
pub async fn build(
    template: &Template,
    opts: &BuildOptions,
    on_logs: Option<LogCallback>,
    conn: &ConnectionOpts,
) -> Result<BuildInfo> {
    if opts.name.is_empty() {
        return Err(Error::Template("Name must be provided".into()));
    }
    if let Some(cb) = &on_logs {
        cb(LogEntry::marker(LogEntryKind::Start, "Build started"));
    }
    let api = api(conn);
    let r = async {
        let info = start(&api, template, opts, &on_logs, conn.request_timeout).await?;
        log(&on_logs, LogLevel::Info, "Waiting for logs...".into());
        wait(&api, &info.template_id, &info.build_id, &on_logs).await?;
        Ok(info)
    }
    .await;
    if let Some(cb) = &on_logs {
        cb(LogEntry::marker(LogEntryKind::End, "Build finished"));
    }
    r
}

/// `Template.exists(name)`: 404 → false, 403 (someone else's) → true.
pub async fn exists(name: &str, conn: &ConnectionOpts) -> Result<bool> {
    let path = format!("/templates/aliases/{}", encode_path_segment(name));
    let r = api(conn).send::<()>(Method::GET, &path, &[], None).await?;
    match r.status {
        404 => Ok(false),
        403 => Ok(true),
        s if s >= 300 => Err(api_error(s, &r.body, Error::Template)),
        _ => Ok(true),
    }
}

/// The template ID an alias (or `name:tag`) points to, `None` when unknown.
pub async fn resolve_alias(name: &str, conn: &ConnectionOpts) -> Result<Option<String>> {
    let path = format!("/templates/aliases/{}", encode_path_segment(name));
    let r = api(conn).send::<()>(Method::GET, &path, &[], None).await?;
    match r.status {
        404 => Ok(None),
        s if s >= 300 => Err(api_error(s, &r.body, Error::Template)),
        _ => {
            let v: Value = r.json()?;
            Ok(v.get("templateID").and_then(Value::as_str).map(str::to_owned))
        }
    }
}

pub async fn assign_tags(target_name: &str, tags: &[String], conn: &ConnectionOpts) -> Result<TemplateTagInfo> {
    let body = serde_json::json!({"target": target_name, "tags": tags});
    let r = api(conn).send(Method::POST, "/templates/tags", &[], Some(&body)).await?;
    if r.status >= 300 {
        return Err(api_error(r.status, &r.body, Error::Template));
    }
    let w: WireTagInfo = r.json().map_err(|e| Error::Template(e.to_string()))?;
    Ok(TemplateTagInfo { build_id: w.build_id, tags: w.tags })
}

pub async fn remove_tags(name: &str, tags: &[String], conn: &ConnectionOpts) -> Result<()> {
    let body = serde_json::json!({"name": name, "tags": tags});
    let r = api(conn).send(Method::DELETE, "/templates/tags", &[], Some(&body)).await?;
    if r.status >= 300 {
        return Err(api_error(r.status, &r.body, Error::Template));
    }
    Ok(())
}

pub async fn get_tags(template_id: &str, conn: &ConnectionOpts) -> Result<Vec<TemplateTag>> {
    let path = format!("/templates/{}/tags", encode_path_segment(template_id));
    let r = api(conn).send::<()>(Method::GET, &path, &[], None).await?;
    if r.status >= 300 {
        return Err(api_error(r.status, &r.body, Error::Template));
    }
    let w: Vec<WireTag> = r.json().map_err(|e| Error::Template(e.to_string()))?;
    Ok(w.into_iter().map(|t| TemplateTag { tag: t.tag, build_id: t.build_id, created_at: t.created_at }).collect())
}

/// `GET /templates`: the raw template objects (for the CLI's listing).
pub async fn list(conn: &ConnectionOpts) -> Result<Vec<Value>> {
    let r = api(conn).send::<()>(Method::GET, "/templates", &[], None).await?;
    if r.status >= 300 {
        return Err(api_error(r.status, &r.body, Error::Template));
    }
    r.json()
}

/// Delete a template by ID or alias; false when there is no such template.
pub async fn delete(name_or_id: &str, conn: &ConnectionOpts) -> Result<bool> {
    let id = resolve_alias(name_or_id, conn).await?.unwrap_or_else(|| name_or_id.to_string());
    let path = format!("/templates/{}", encode_path_segment(&id));
    let r = api(conn).send::<()>(Method::DELETE, &path, &[], None).await?;
    match r.status {
        404 => Ok(false),
        s if s >= 300 => Err(api_error(s, &r.body, Error::Template)),
        _ => Ok(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ansi_is_stripped() {
        assert_eq!(strip_ansi("\x1b[31mred\x1b[0m plain"), "red plain");
        assert_eq!(LogEntry::new(LogLevel::Info, "\x1b[1mb\x1b[22m").message, "b");
    }

    #[test]
    fn api_errors_keep_their_class() {
        assert_eq!(api_error(400, br#"{"code":400,"message":"bad"}"#, Error::Build).to_string(), "400: bad");
        assert_eq!(api_error(400, b"", Error::Build).kind(), crate::ErrorKind::Build);
        assert_eq!(api_error(401, b"", Error::Build).kind(), crate::ErrorKind::Authentication);
    }
}
