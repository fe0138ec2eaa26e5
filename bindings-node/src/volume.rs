//! `Volume` (E2B's volumes): the REST calls by ID as static methods, the content API on the
//! instance. Requests and errors are the core's (`e2b::volume`); `readFile`'s `blob` and
//! `stream` formats are shaped from the bytes in index.js.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use napi::bindgen_prelude::{Either, Result, Uint8Array};
use napi_derive::napi;

use crate::config::{self, ConnectionOpts, opt_ms};
use crate::error::JsResult;

/// Type of a volume entry.
#[allow(clippy::upper_case_acronyms)]
#[napi(string_enum)]
pub enum VolumeFileType {
    #[napi(value = "unknown")]
    UNKNOWN,
    #[napi(value = "file")]
    FILE,
    #[napi(value = "directory")]
    DIRECTORY,
    #[napi(value = "symlink")]
    SYMLINK,
}

/// Information about a volume.
#[napi(object, object_from_js = false)]
pub struct VolumeInfo {
    pub volume_id: String,
    pub name: String,
}

/// A volume and the token of its content API.
#[napi(object, object_from_js = false)]
pub struct VolumeAndToken {
    pub volume_id: String,
    pub name: String,
    pub token: String,
    /// Set only for volumes served from a custom domain.
    pub domain: Option<String>,
}

/// A file, directory or symlink of a volume.
#[napi(object, object_from_js = false)]
pub struct VolumeEntryStat {
    pub name: String,
    #[napi(js_name = "type")]
    pub kind: VolumeFileType,
    pub path: String,
    pub size: i64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: DateTime<Utc>,
    pub mtime: DateTime<Utc>,
    pub ctime: DateTime<Utc>,
    pub target: Option<String>,
}

impl From<e2b::VolumeEntryStat> for VolumeEntryStat {
    fn from(s: e2b::VolumeEntryStat) -> Self {
        let kind = match s.kind.as_str() {
            "file" => VolumeFileType::FILE,
            "directory" => VolumeFileType::DIRECTORY,
            "symlink" => VolumeFileType::SYMLINK,
            _ => VolumeFileType::UNKNOWN,
        };
        VolumeEntryStat {
            name: s.name,
            kind,
            path: s.path,
            size: s.size as i64,
            mode: s.mode,
            uid: s.uid,
            gid: s.gid,
            atime: s.atime,
            mtime: s.mtime,
            ctime: s.ctime,
            target: s.target,
        }
    }
}

/// Options of a volume content API call (E2B's `VolumeApiOpts`), plus the per-call settings
/// some calls take (`depth`, `uid`/`gid`/`mode`, `force`, `format`).
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct VolumeApiOpts {
    /// Token to use instead of the volume's.
    pub token: Option<String>,
    /// Domain of the volume API (`api.<domain>`).
    pub domain: Option<String>,
    /// Debug mode: the local volume API (`http://localhost:8080`).
    pub debug: Option<bool>,
    /// Volume content API URL (env `E2B_VOLUME_API_URL`).
    pub api_url: Option<String>,
    /// Timeout of the request in **milliseconds** (0 disables it).
    pub request_timeout_ms: Option<f64>,
    /// Extra HTTP headers.
    pub headers: Option<HashMap<String, String>>,
    /// `list`: levels to descend (default 1).
    pub depth: Option<u32>,
    /// `makeDir` / `writeFile`: owner user ID.
    pub uid: Option<u32>,
    /// `makeDir` / `writeFile`: owner group ID.
    pub gid: Option<u32>,
    /// `makeDir` / `writeFile`: permission bits.
    pub mode: Option<u32>,
    /// `makeDir`: make missing parents; `writeFile`: also make missing parent directories.
    pub force: Option<bool>,
    /// `readFile`: `text` (default), `bytes`, `blob` or `stream`.
    #[napi(ts_type = "'text' | 'bytes' | 'blob' | 'stream'")]
    pub format: Option<String>,
    /// Not supported by this SDK yet: refused with `InvalidArgumentError` (index.js).
    #[napi(ts_type = "number")]
    pub stream_idle_timeout_ms: Option<serde_json::Value>,
    /// Not supported by this SDK yet: refused with `InvalidArgumentError` (index.js).
    #[napi(ts_type = "unknown")]
    pub logger: Option<serde_json::Value>,
    /// Not supported by this SDK yet: refused with `InvalidArgumentError` (index.js).
    #[napi(ts_type = "string")]
    pub proxy: Option<serde_json::Value>,
    /// Not supported by this SDK yet: refused with `InvalidArgumentError` (index.js).
    #[napi(ts_type = "unknown")]
    pub signal: Option<serde_json::Value>,
}

impl VolumeApiOpts {
    fn core(&self) -> e2b::VolumeApiOpts {
        e2b::VolumeApiOpts {
            domain: self.domain.clone(),
            debug: self.debug,
            request_timeout: opt_ms(self.request_timeout_ms),
            headers: self.headers.clone().unwrap_or_default(),
            token: self.token.clone(),
            api_url: self.api_url.clone(),
        }
    }
    fn meta(&self) -> e2b::VolumeMetadata {
        e2b::VolumeMetadata { uid: self.uid, gid: self.gid, mode: self.mode }
    }
}

/// Ownership and permissions for `updateMetadata`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct VolumeMetadataOpts {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: Option<u32>,
}

/// A persistent volume: files managed through its content API.
#[napi]
pub struct Volume {
    inner: e2b::Volume,
}

#[napi]
impl Volume {
    /// A local handle with no API call.
    #[napi(constructor)]
    pub fn new(volume_id: String, name: String, token: Option<String>, domain: Option<String>, debug: Option<bool>) -> Self {
        Volume { inner: e2b::Volume::new(volume_id, name, token, domain, debug) }
    }

    #[napi(getter)]
    pub fn volume_id(&self) -> String {
        self.inner.volume_id.clone()
    }
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.inner.name.clone()
    }
    #[napi(getter)]
    pub fn token(&self) -> Option<String> {
        self.inner.token.clone()
    }
    #[napi(getter)]
    pub fn domain(&self) -> Option<String> {
        self.inner.domain.clone()
    }
    #[napi(getter)]
    pub fn debug(&self) -> Option<bool> {
        self.inner.debug
    }

    /// Create a volume.
    #[napi(configurable)]
    pub async fn create(name: String, opts: Option<ConnectionOpts>) -> Result<Volume> {
        e2b::Volume::create(&name, &config::connection(&opts)).await.js().map(|inner| Volume { inner })
    }

    /// A handle on an existing volume.
    #[napi(configurable)]
    pub async fn connect(volume_id: String, opts: Option<ConnectionOpts>) -> Result<Volume> {
        e2b::Volume::connect(&volume_id, &config::connection(&opts)).await.js().map(|inner| Volume { inner })
    }

    /// A volume and its token.
    #[napi(js_name = "getInfo", configurable)]
    pub async fn get_info_by_id(volume_id: String, opts: Option<ConnectionOpts>) -> Result<VolumeAndToken> {
        let v = e2b::volume::get_info(&volume_id, &config::connection(&opts)).await.js()?;
        Ok(VolumeAndToken { volume_id: v.volume_id, name: v.name, token: v.token, domain: v.domain })
    }

    /// Every volume.
    #[napi(js_name = "list", configurable)]
    pub async fn list_all(opts: Option<ConnectionOpts>) -> Result<Vec<VolumeInfo>> {
        let list = e2b::volume::list(&config::connection(&opts)).await.js()?;
        Ok(list.into_iter().map(|v| VolumeInfo { volume_id: v.volume_id, name: v.name }).collect())
    }

    /// Delete a volume and its files: `true` if deleted, `false` if not found.
    #[napi(configurable)]
    pub async fn destroy(volume_id: String, opts: Option<ConnectionOpts>) -> Result<bool> {
        e2b::volume::destroy(&volume_id, &config::connection(&opts)).await.js()
    }

    /// A directory's entries (`depth` levels, default 1).
    #[napi]
    pub async fn list(&self, path: String, opts: Option<VolumeApiOpts>) -> Result<Vec<VolumeEntryStat>> {
        let o = opts.unwrap_or_default();
        let items = self.inner.list(&path, o.depth, &o.core()).await.js()?;
        Ok(items.into_iter().map(VolumeEntryStat::from).collect())
    }

    /// Make a directory; `force` also makes missing parents.
    #[napi]
    pub async fn make_dir(&self, path: String, opts: Option<VolumeApiOpts>) -> Result<VolumeEntryStat> {
        let o = opts.unwrap_or_default();
        self.inner.make_dir(&path, o.meta(), o.force, &o.core()).await.js().map(VolumeEntryStat::from)
    }

    /// A path's stat.
    #[napi]
    pub async fn get_info(&self, path: String, opts: Option<VolumeApiOpts>) -> Result<VolumeEntryStat> {
        let o = opts.unwrap_or_default();
        self.inner.get_info(&path, &o.core()).await.js().map(VolumeEntryStat::from)
    }

    /// Whether a path exists.
    #[napi]
    pub async fn exists(&self, path: String, opts: Option<VolumeApiOpts>) -> Result<bool> {
        let o = opts.unwrap_or_default();
        self.inner.exists(&path, &o.core()).await.js()
    }

    /// Set a path's ownership and permissions.
    #[napi]
    pub async fn update_metadata(&self, path: String, metadata: VolumeMetadataOpts, opts: Option<VolumeApiOpts>) -> Result<VolumeEntryStat> {
        let o = opts.unwrap_or_default();
        let m = e2b::VolumeMetadata { uid: metadata.uid, gid: metadata.gid, mode: metadata.mode };
        self.inner.update_metadata(&path, m, &o.core()).await.js().map(VolumeEntryStat::from)
    }

    /// A file's content: a string, or a `Uint8Array` with `{ format: 'bytes' }`.
    #[napi(ts_return_type = "Promise<string | Uint8Array>")]
    pub async fn read_file(&self, path: String, opts: Option<VolumeApiOpts>) -> Result<Either<String, Uint8Array>> {
        let o = opts.unwrap_or_default();
        let bytes = self.inner.read_file(&path, &o.core()).await.js()?;
        match o.format.as_deref() {
            None | Some("text") => Ok(Either::A(String::from_utf8_lossy(&bytes).into_owned())),
            Some("bytes") => Ok(Either::B(Uint8Array::from(bytes.to_vec()))),
            Some(other) => Err(crate::error::to_js(e2b::Error::InvalidArgument(format!(
                "format must be 'text', 'bytes', 'blob' or 'stream', got {other:?}"
            )))),
        }
    }

    /// Create or overwrite a file.
    #[napi(ts_args_type = "path: string, data: string | Uint8Array | ArrayBuffer, opts?: VolumeApiOpts")]
    pub async fn write_file(&self, path: String, data: Either<String, Uint8Array>, opts: Option<VolumeApiOpts>) -> Result<VolumeEntryStat> {
        let o = opts.unwrap_or_default();
        let bytes = match data {
            Either::A(s) => s.into_bytes(),
            Either::B(b) => b.to_vec(),
        };
        self.inner.write_file(&path, bytes.into(), o.meta(), o.force, &o.core()).await.js().map(VolumeEntryStat::from)
    }

    /// Remove a file or a directory with its contents.
    #[napi]
    pub async fn remove(&self, path: String, opts: Option<VolumeApiOpts>) -> Result<()> {
        let o = opts.unwrap_or_default();
        self.inner.remove(&path, &o.core()).await.js()
    }
}
