//! E2B's volumes: the REST half (`/volumes`: create, connect, get_info, list, destroy) and the
//! volume content API (`/volumecontent/{id}/…`: files, directories, metadata) that a volume's
//! bearer token opens.
//!
//! Where the content API lives, first match wins: `api_url` of the call, `E2B_VOLUME_API_URL`,
//! `https://api.<domain>` when the volume names its own domain, `http://localhost:8080` in debug
//! mode, else the REST API URL the volume was reached through (`https://api.<domain>` for E2B's
//! cloud, the sandboxd itself for a local one).
//!
//! Errors as E2B's SDKs raise them: [`Error::Volume`] for a failed call (401/429/503 keep their
//! kinds), [`Error::VolumeNotFound`] for an unknown volume, [`Error::VolumePathNotFound`] for
//! a missing path; `destroy` of an unknown volume and `exists` of a missing path answer false.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;

use crate::api::{ApiResponse, encode_path_segment, http_client};
use crate::config::{ConnectionConfig, ConnectionOpts, DEFAULT_REQUEST_TIMEOUT};
use crate::error::{Error, Result};
use crate::sandbox::api_for;

/// Bound of a file transfer when the call sets no `request_timeout` (E2B's `FILE_TIMEOUT`).
pub const FILE_TIMEOUT: Duration = Duration::from_secs(3600);

/// A volume as listed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VolumeInfo {
    #[serde(rename = "volumeID")]
    pub volume_id: String,
    pub name: String,
}

/// A volume with the token of its content API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VolumeAndToken {
    #[serde(rename = "volumeID")]
    pub volume_id: String,
    pub name: String,
    pub token: String,
    /// Set only for volumes served from a custom domain.
    #[serde(default)]
    pub domain: Option<String>,
}

/// One file, directory or symlink of a volume.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct VolumeEntryStat {
    pub name: String,
    /// `file`, `directory`, `symlink` or `unknown`.
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: DateTime<Utc>,
    pub mtime: DateTime<Utc>,
    pub ctime: DateTime<Utc>,
    #[serde(default)]
    pub target: Option<String>,
}

/// Options of a content API call (E2B's `VolumeApiParams` / `VolumeApiOpts`).
#[derive(Debug, Clone, Default)]
pub struct VolumeApiOpts {
    pub domain: Option<String>,
    pub debug: Option<bool>,
    /// Timeout of the request; `Some(Duration::ZERO)` disables it.
    pub request_timeout: Option<Duration>,
    pub headers: HashMap<String, String>,
    /// Token to use instead of the volume's.
    pub token: Option<String>,
    /// Content API base URL.
    pub api_url: Option<String>,
}

/// Ownership and permissions to set on a path (unset fields are left as they are).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VolumeMetadata {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: Option<u32>,
}

/// A handle on one volume; cheap to clone.
#[derive(Debug, Clone)]
pub struct Volume {
    pub volume_id: String,
    pub name: String,
    pub token: Option<String>,
    pub domain: Option<String>,
    pub debug: Option<bool>,
    /// The REST API URL this volume was reached through (the content API's default).
    api_url: Option<String>,
}

fn volume_error(r: ApiResponse) -> Error {
    r.into_error_as(Error::Volume)
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok().filter(|v| !v.is_empty())
}

impl Volume {
    /// A local handle with no request (E2B's `Volume(volume_id, name, token, domain, debug)`).
    pub fn new(volume_id: String, name: String, token: Option<String>, domain: Option<String>, debug: Option<bool>) -> Self {
        Volume { volume_id, name, token, domain, debug, api_url: None }
    }

    fn from_token(v: VolumeAndToken, config: &ConnectionConfig) -> Self {
        Volume {
            volume_id: v.volume_id,
            name: v.name,
            token: Some(v.token),
            domain: v.domain,
            debug: Some(config.debug),
            api_url: Some(config.api_url.clone()),
        }
    }

    /// Create a volume.
    pub async fn create(name: &str, opts: &ConnectionOpts) -> Result<Volume> {
        let api = api_for(opts);
        let r = api.send(Method::POST, "/volumes", &[], Some(&serde_json::json!({ "name": name }))).await?;
        if !r.is_success() {
            return Err(volume_error(r));
        }
        Ok(Volume::from_token(r.json()?, api.config()))
    }

    /// A handle on an existing volume (one `get_info` request).
    pub async fn connect(volume_id: &str, opts: &ConnectionOpts) -> Result<Volume> {
        let info = get_info(volume_id, opts).await?;
        Ok(Volume::from_token(info, &ConnectionConfig::resolve(opts)))
    }

    /// The content API base URL for a call with `opts`.
    pub fn content_url(&self, opts: &VolumeApiOpts) -> String {
        if let Some(u) = opts.api_url.clone().or_else(|| env("E2B_VOLUME_API_URL")) {
            return u.trim_end_matches('/').to_string();
        }
        if let Some(d) = opts.domain.as_ref().or(self.domain.as_ref()) {
            return format!("https://api.{d}");
        }
        if opts.debug.or(self.debug).unwrap_or(false) {
            return "http://localhost:8080".into();
        }
        match &self.api_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => ConnectionConfig::resolve(&ConnectionOpts::default()).api_url,
        }
    }

    async fn call(
        &self,
        method: Method,
        op: &str,
        query: Vec<(&str, String)>,
        body: Option<reqwest::Body>,
        json: Option<serde_json::Value>,
        opts: &VolumeApiOpts,
        default_timeout: Duration,
    ) -> Result<ApiResponse> {
        let url = format!("{}/volumecontent/{}/{op}", self.content_url(opts), encode_path_segment(&self.volume_id));
        let mut b = http_client().request(method, url).query(&query);
        if let Some(t) = opts.token.as_ref().or(self.token.as_ref()) {
            b = b.bearer_auth(t);
        }
        for (k, v) in &opts.headers {
            b = b.header(k, v);
        }
        match opts.request_timeout {
            Some(t) if t.is_zero() => {}
            Some(t) => b = b.timeout(t),
            None => b = b.timeout(default_timeout),
        }
        if let Some(body) = body {
            b = b.header("Content-Type", "application/octet-stream").body(body);
        }
        if let Some(json) = json {
            b = b.json(&json);
        }
        ApiResponse::fetch(b).await
    }

    /// The response, or the error for a failed call about `path`.
    fn check(r: ApiResponse, path: &str) -> Result<ApiResponse> {
        match r.status {
            404 => Err(Error::VolumePathNotFound(format!("Path {path} not found"))),
            s if s >= 300 => Err(volume_error(r)),
            _ => Ok(r),
        }
    }

    /// Entries under `path`, `depth` levels deep (default 1).
    pub async fn list(&self, path: &str, depth: Option<u32>, opts: &VolumeApiOpts) -> Result<Vec<VolumeEntryStat>> {
        let mut q = vec![("path", path.to_string())];
        if let Some(d) = depth {
            q.push(("depth", d.to_string()));
        }
        let r = self.call(Method::GET, "dir", q, None, None, opts, DEFAULT_REQUEST_TIMEOUT).await?;
        Self::check(r, path)?.json()
    }

    /// Make a directory; `force` also makes missing parents and accepts an existing one.
    pub async fn make_dir(&self, path: &str, meta: VolumeMetadata, force: Option<bool>, opts: &VolumeApiOpts) -> Result<VolumeEntryStat> {
        let q = with_metadata(path, meta, force);
        let r = self.call(Method::POST, "dir", q, None, None, opts, DEFAULT_REQUEST_TIMEOUT).await?;
        Self::check(r, path)?.json()
    }

    /// Stat of a file, directory or symlink.
    pub async fn get_info(&self, path: &str, opts: &VolumeApiOpts) -> Result<VolumeEntryStat> {
        let r = self.call(Method::GET, "path", vec![("path", path.into())], None, None, opts, DEFAULT_REQUEST_TIMEOUT).await?;
        Self::check(r, path)?.json()
    }

    /// Whether `path` exists.
    pub async fn exists(&self, path: &str, opts: &VolumeApiOpts) -> Result<bool> {
        match self.get_info(path, opts).await {
            Ok(_) => Ok(true),
            Err(Error::VolumePathNotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Set the ownership and permissions of `path`.
    pub async fn update_metadata(&self, path: &str, meta: VolumeMetadata, opts: &VolumeApiOpts) -> Result<VolumeEntryStat> {
        let mut body = serde_json::Map::new();
        for (k, v) in [("uid", meta.uid), ("gid", meta.gid), ("mode", meta.mode)] {
            if let Some(v) = v {
                body.insert(k.into(), v.into());
            }
        }
        let json = Some(serde_json::Value::Object(body));
        let r = self.call(Method::PATCH, "path", vec![("path", path.into())], None, json, opts, DEFAULT_REQUEST_TIMEOUT).await?;
        Self::check(r, path)?.json()
    }

    /// A file's content.
    pub async fn read_file(&self, path: &str, opts: &VolumeApiOpts) -> Result<Bytes> {
        let r = self.call(Method::GET, "file", vec![("path", path.into())], None, None, opts, FILE_TIMEOUT).await?;
        Ok(Self::check(r, path)?.body)
    }

    /// Create or overwrite a file; `force` also makes missing parent directories.
    pub async fn write_file(
        &self,
        path: &str,
        data: Bytes,
        meta: VolumeMetadata,
        force: Option<bool>,
        opts: &VolumeApiOpts,
    ) -> Result<VolumeEntryStat> {
        let q = with_metadata(path, meta, force);
        let r = self.call(Method::PUT, "file", q, Some(data.into()), None, opts, FILE_TIMEOUT).await?;
        Self::check(r, path)?.json()
    }

    /// Remove a file, symlink or directory (with its contents).
    pub async fn remove(&self, path: &str, opts: &VolumeApiOpts) -> Result<()> {
        let r = self.call(Method::DELETE, "path", vec![("path", path.into())], None, None, opts, DEFAULT_REQUEST_TIMEOUT).await?;
        Self::check(r, path).map(|_| ())
    }
}

fn with_metadata(path: &str, meta: VolumeMetadata, force: Option<bool>) -> Vec<(&'static str, String)> {
    let mut q = vec![("path", path.to_string())];
    for (k, v) in [("uid", meta.uid), ("gid", meta.gid), ("mode", meta.mode)] {
        if let Some(v) = v {
            q.push((k, v.to_string()));
        }
    }
    if let Some(f) = force {
        q.push(("force", f.to_string()));
    }
    q
}

/// A volume and its token, by ID.
pub async fn get_info(volume_id: &str, opts: &ConnectionOpts) -> Result<VolumeAndToken> {
    let path = format!("/volumes/{}", encode_path_segment(volume_id));
    let r = api_for(opts).send::<()>(Method::GET, &path, &[], None).await?;
    if r.status == 404 {
        return Err(Error::VolumeNotFound(format!("Volume {volume_id} not found")));
    }
    if !r.is_success() {
        return Err(volume_error(r));
    }
    r.json()
}

/// Every volume.
pub async fn list(opts: &ConnectionOpts) -> Result<Vec<VolumeInfo>> {
    let r = api_for(opts).send::<()>(Method::GET, "/volumes", &[], None).await?;
    if !r.is_success() {
        return Err(volume_error(r));
    }
    r.json()
}

/// Delete a volume and its files: true when deleted, false when it was not found.
pub async fn destroy(volume_id: &str, opts: &ConnectionOpts) -> Result<bool> {
    let path = format!("/volumes/{}", encode_path_segment(volume_id));
    let r = api_for(opts).send::<()>(Method::DELETE, &path, &[], None).await?;
    match r.status {
        404 => Ok(false),
        s if s >= 300 => Err(volume_error(r)),
        _ => Ok(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_url_order() {
        let mut v = Volume::new("v".into(), "n".into(), Some("t".into()), None, None);
        v.api_url = Some("http://127.0.0.1:9/".into());
        let opts = VolumeApiOpts::default();
        if env("E2B_VOLUME_API_URL").is_none() {
            assert_eq!(v.content_url(&opts), "http://127.0.0.1:9");
            assert_eq!(v.content_url(&VolumeApiOpts { debug: Some(true), ..Default::default() }), "http://localhost:8080");
            let mut byoc = v.clone();
            byoc.domain = Some("example.com".into());
            assert_eq!(byoc.content_url(&opts), "https://api.example.com");
        }
        let explicit = VolumeApiOpts { api_url: Some("http://h:1".into()), ..Default::default() };
        assert_eq!(v.content_url(&explicit), "http://h:1");
    }

    #[test]
    fn metadata_query() {
        let q = with_metadata("/a", VolumeMetadata { mode: Some(0o644), ..Default::default() }, Some(true));
        assert_eq!(q, [("path", "/a".to_string()), ("mode", "420".into()), ("force", "true".into())]);
    }
}
