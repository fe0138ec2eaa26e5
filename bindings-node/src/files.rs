//! `sandbox.files`: read and write files, list directories, stat, remove, rename, make dirs.
//!
//! `read` returns text by default and a `Uint8Array` with `{ format: 'bytes' }`; `write` takes a
//! string or bytes (`Uint8Array`, including `Buffer`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use napi::Either;
use napi::bindgen_prelude::Either3;
use napi::Status;
use napi::bindgen_prelude::{Result, Uint8Array};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue};
use napi_derive::napi;

use crate::config::opt_ms;
use crate::error::JsResult;

/// Type of a filesystem entry.
// The variant names are the JS keys, spelled as E2B's `FileType.FILE` / `FileType.DIR`.
#[allow(clippy::upper_case_acronyms)]
#[napi(string_enum)]
pub enum FileType {
    #[napi(value = "file")]
    FILE,
    #[napi(value = "dir")]
    DIR,
    #[napi(value = "symlink")]
    SYMLINK,
}

/// Kind of change reported by `watchDir`.
#[allow(clippy::upper_case_acronyms)]
#[napi(string_enum)]
pub enum FilesystemEventType {
    #[napi(value = "chmod")]
    CHMOD,
    #[napi(value = "create")]
    CREATE,
    #[napi(value = "remove")]
    REMOVE,
    #[napi(value = "rename")]
    RENAME,
    #[napi(value = "write")]
    WRITE,
}

/// One change in a watched directory.
#[napi(object, object_from_js = false)]
pub struct FilesystemEvent {
    /// Path relative to the watched directory.
    pub name: String,
    /// Kind of change.
    #[napi(js_name = "type")]
    pub kind: FilesystemEventType,
    /// The entry, when watched with `includeEntry` (absent once it is gone).
    pub entry: Option<EntryInfo>,
}

impl From<e2b::FilesystemEvent> for FilesystemEvent {
    fn from(e: e2b::FilesystemEvent) -> Self {
        use e2b::FilesystemEventType as T;
        let kind = match e.r#type {
            T::Chmod => FilesystemEventType::CHMOD,
            T::Create => FilesystemEventType::CREATE,
            T::Remove => FilesystemEventType::REMOVE,
            T::Rename => FilesystemEventType::RENAME,
            T::Write => FilesystemEventType::WRITE,
        };
        FilesystemEvent { name: e.name, kind, entry: e.entry.map(EntryInfo::from) }
    }
}

type EventFn = ThreadsafeFunction<FilesystemEvent, UnknownReturnValue, FilesystemEvent, Status, false>;
type ExitFn = ThreadsafeFunction<Option<napi::Error>, UnknownReturnValue, Option<napi::Error>, Status, false>;

/// Options of `files.watchDir`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct WatchOpts {
    /// Linux user the watch runs as.
    pub user: Option<String>,
    /// Timeout of the request starting the watch, in **milliseconds**.
    pub request_timeout_ms: Option<f64>,
    /// Life of the watch in **milliseconds** (default 60 000; 0 means none).
    pub timeout_ms: Option<f64>,
    /// Watch subdirectories too.
    pub recursive: Option<bool>,
    /// Attach the entry's info to each event.
    pub include_entry: Option<bool>,
    /// Allow watching a directory on a network mount.
    pub allow_network_mounts: Option<bool>,
    /// Called once when the watch ends by itself, with the error if it failed.
    #[napi(ts_type = "(err?: Error) => void | Promise<void>")]
    pub on_exit: Option<ExitFn>,
    /// Not supported by this SDK yet: refused with `InvalidArgumentError` (index.js).
    #[napi(ts_type = "unknown")]
    pub signal: Option<serde_json::Value>,
}

/// A running directory watch; `stop()` ends it.
#[napi]
pub struct WatchHandle {
    inner: e2b::WatchHandle,
}

#[napi]
impl WatchHandle {
    /// Stop watching; no callback runs after this resolves.
    #[napi]
    pub async fn stop(&self) -> Result<()> {
        self.inner.stop();
        Ok(())
    }
}

fn file_type(t: Option<e2b::FileType>) -> Option<FileType> {
    t.map(|t| match t {
        e2b::FileType::File => FileType::FILE,
        e2b::FileType::Dir => FileType::DIR,
        e2b::FileType::Symlink => FileType::SYMLINK,
    })
}

/// Options of filesystem calls.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct FilesystemRequestOpts {
    /// Linux user the operation runs as (default: the template's user).
    pub user: Option<String>,
    /// Timeout of the request in **milliseconds** (0 disables it).
    pub request_timeout_ms: Option<f64>,
    /// Not supported by this SDK yet: refused with `InvalidArgumentError` (index.js).
    #[napi(ts_type = "unknown")]
    pub signal: Option<serde_json::Value>,
    /// Not supported by this SDK yet: refused with `InvalidArgumentError`.
    pub gzip: Option<bool>,
    /// Not supported by this SDK yet: refused with `InvalidArgumentError`.
    pub use_octet_stream: Option<bool>,
    /// Not supported by this SDK yet: refused with `InvalidArgumentError`.
    pub metadata: Option<HashMap<String, String>>,
}

/// Options of `files.read`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct FilesystemReadOpts {
    /// `text` (default) returns a string, `bytes` a `Uint8Array`, `blob` a `Blob`, `stream` a
    /// `ReadableStream`.
    #[napi(ts_type = "'text' | 'bytes' | 'blob' | 'stream'")]
    pub format: Option<String>,
    /// Linux user the operation runs as.
    pub user: Option<String>,
    /// Timeout of the request in **milliseconds** (0 disables it).
    pub request_timeout_ms: Option<f64>,
    /// Not supported by this SDK yet: refused with `InvalidArgumentError` (index.js).
    #[napi(ts_type = "unknown")]
    pub signal: Option<serde_json::Value>,
    /// Not supported by this SDK yet: refused with `InvalidArgumentError`.
    pub gzip: Option<bool>,
    /// Not supported by this SDK yet: refused with `InvalidArgumentError`.
    pub stream_idle_timeout_ms: Option<f64>,
}

/// Options of `files.list`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct FilesystemListOpts {
    /// How many levels deep to list (default 1).
    pub depth: Option<u32>,
    /// Linux user the operation runs as.
    pub user: Option<String>,
    /// Timeout of the request in **milliseconds** (0 disables it).
    pub request_timeout_ms: Option<f64>,
    /// Not supported by this SDK yet: refused with `InvalidArgumentError` (index.js).
    #[napi(ts_type = "unknown")]
    pub signal: Option<serde_json::Value>,
}

/// One file of `files.writeFiles`.
#[napi(object, object_to_js = false)]
pub struct WriteEntry {
    /// Destination path.
    pub path: String,
    /// Content.
    pub data: Either<String, Uint8Array>,
}

/// A file or directory in the sandbox.
#[napi(object, object_from_js = false)]
pub struct EntryInfo {
    /// Name of the entry.
    pub name: String,
    /// `file`, `dir` or `symlink`.
    #[napi(js_name = "type")]
    pub kind: Option<FileType>,
    /// Absolute path.
    pub path: String,
    /// Size in bytes.
    pub size: i64,
    /// Unix mode bits.
    pub mode: u32,
    /// Permissions as `rwxr-xr-x`.
    pub permissions: String,
    /// Owner user name.
    pub owner: String,
    /// Owner group name.
    pub group: String,
    /// Last modification time.
    pub modified_time: Option<DateTime<Utc>>,
    /// Target of a symlink.
    pub symlink_target: Option<String>,
    /// Metadata of the entry.
    pub metadata: HashMap<String, String>,
}

impl From<e2b::EntryInfo> for EntryInfo {
    fn from(e: e2b::EntryInfo) -> Self {
        EntryInfo {
            name: e.name,
            kind: file_type(e.r#type),
            path: e.path,
            size: e.size,
            mode: e.mode,
            permissions: e.permissions,
            owner: e.owner,
            group: e.group,
            modified_time: e.modified_time,
            symlink_target: e.symlink_target,
            metadata: e.metadata,
        }
    }
}

/// What `files.write` reports about the written file.
#[napi(object, object_from_js = false)]
pub struct WriteInfo {
    /// Name of the file.
    pub name: String,
    /// `file`, `dir` or `symlink`.
    #[napi(js_name = "type")]
    pub kind: Option<FileType>,
    /// Absolute path.
    pub path: String,
    /// Metadata of the file.
    pub metadata: HashMap<String, String>,
}

impl From<e2b::WriteInfo> for WriteInfo {
    fn from(w: e2b::WriteInfo) -> Self {
        WriteInfo {
            name: w.name,
            kind: file_type(w.r#type),
            path: w.path,
            metadata: w.metadata,
        }
    }
}

fn bytes(data: Either<String, Uint8Array>) -> Vec<u8> {
    match data {
        Either::A(s) => s.into_bytes(),
        Either::B(b) => b.to_vec(),
    }
}

/// The filesystem of a sandbox (`sandbox.files`).
#[napi]
pub struct Filesystem {
    inner: e2b::Files,
}

impl From<e2b::Files> for Filesystem {
    fn from(inner: e2b::Files) -> Self {
        Filesystem { inner }
    }
}

/// Refuse the transfer options this SDK does not implement (never ignore them).
fn refuse_transfer(opts: &Option<FilesystemRequestOpts>) -> Result<()> {
    let Some(o) = opts else { return Ok(()) };
    let refused = [
        ("gzip", o.gzip == Some(true)),
        ("useOctetStream", o.use_octet_stream == Some(true)),
        ("metadata", o.metadata.is_some()),
    ];
    match refused.iter().find(|(_, set)| *set) {
        Some((name, _)) => Err(crate::error::to_js(e2b::options::unsupported(name))),
        None => Ok(()),
    }
}

impl Filesystem {
    async fn write_one(&self, path: String, data: Either<String, Uint8Array>, opts: Option<FilesystemRequestOpts>) -> Result<WriteInfo> {
        refuse_transfer(&opts)?;
        let (user, f) = self.timed(opts.map(|o| (o.user, o.request_timeout_ms)));
        f.write(&path, bytes(data), user.as_deref()).await.js().map(WriteInfo::from)
    }

    /// The user of a call's options, and these operations with its request timeout.
    fn timed(&self, opts: Option<(Option<String>, Option<f64>)>) -> (Option<String>, e2b::Files) {
        let (user, timeout) = opts.unwrap_or_default();
        (user, self.inner.with_request_timeout(opt_ms(timeout)))
    }
}

#[napi]
impl Filesystem {
    /// Read a file: a string, or a `Uint8Array` with `{ format: 'bytes' }`.
    #[napi(ts_return_type = "Promise<string | Uint8Array>")]
    pub async fn read(
        &self,
        path: String,
        opts: Option<FilesystemReadOpts>,
    ) -> Result<Either<String, Uint8Array>> {
        let opts = opts.unwrap_or_default();
        if opts.gzip == Some(true) {
            return Err(crate::error::to_js(e2b::options::unsupported("gzip")));
        }
        if opts.stream_idle_timeout_ms.is_some() {
            return Err(crate::error::to_js(e2b::options::unsupported("streamIdleTimeoutMs")));
        }
        let f = self.inner.with_request_timeout(opt_ms(opts.request_timeout_ms));
        if let Some(other) = opts.format.as_deref().filter(|f| !matches!(*f, "text" | "bytes")) {
            // `blob` and `stream` are shaped from the bytes in index.js before reaching here.
            return Err(crate::error::to_js(e2b::Error::InvalidArgument(format!(
                "format must be 'text', 'bytes', 'blob' or 'stream', got {other:?}"
            ))));
        }
        if opts.format.as_deref() == Some("bytes") {
            let b = f
                .read_bytes(&path, opts.user.as_deref())
                .await
                .js()?;
            Ok(Either::B(Uint8Array::from(b.to_vec())))
        } else {
            f.read_text(&path, opts.user.as_deref())
                .await
                .js()
                .map(Either::A)
        }
    }

    /// Write a file (created or overwritten, parents created): `write(path, data, opts?)`, or `write(files, opts?)` for several files (E2B's overloads).
    #[napi(
        ts_args_type = "pathOrFiles: string | WriteEntry[], dataOrOpts?: string | Uint8Array | FilesystemRequestOpts, opts?: FilesystemRequestOpts",
        ts_return_type = "Promise<WriteInfo | WriteInfo[]>"
    )]
    pub async fn write(
        &self,
        path_or_files: Either<String, Vec<WriteEntry>>,
        data_or_opts: Option<Either3<String, Uint8Array, FilesystemRequestOpts>>,
        opts: Option<FilesystemRequestOpts>,
    ) -> Result<Either<WriteInfo, Vec<WriteInfo>>> {
        match (path_or_files, data_or_opts) {
            (Either::A(path), Some(Either3::A(s))) => self.write_one(path, Either::A(s), opts).await.map(Either::A),
            (Either::A(path), Some(Either3::B(b))) => self.write_one(path, Either::B(b), opts).await.map(Either::A),
            (Either::A(_), _) => Err(crate::error::to_js(e2b::Error::InvalidArgument(
                "write(path, data): data must be a string or a Uint8Array".into(),
            ))),
            (Either::B(files), Some(Either3::C(o))) => self.write_files(files, Some(o)).await.map(Either::B),
            (Either::B(files), None) => self.write_files(files, opts).await.map(Either::B),
            (Either::B(_), Some(_)) => Err(crate::error::to_js(e2b::Error::InvalidArgument(
                "write(files, opts): the second argument must be the options".into(),
            ))),
        }
    }

    /// Write several files, in order.
    #[napi]
    pub async fn write_files(
        &self,
        files: Vec<WriteEntry>,
        opts: Option<FilesystemRequestOpts>,
    ) -> Result<Vec<WriteInfo>> {
        refuse_transfer(&opts)?;
        let (user, f) = self.timed(opts.map(|o| (o.user, o.request_timeout_ms)));
        let files = files.into_iter().map(|f| (f.path, bytes(f.data).into())).collect();
        let written = f.write_files(files, user.as_deref()).await.js()?;
        Ok(written.into_iter().map(WriteInfo::from).collect())
    }

    /// Watch a directory, calling `onEvent` for each change; resolves once the watch is in place.
    #[napi(ts_args_type = "path: string, onEvent: (event: FilesystemEvent) => void | Promise<void>, opts?: WatchOpts")]
    pub async fn watch_dir(&self, path: String, on_event: EventFn, opts: Option<WatchOpts>) -> Result<WatchHandle> {
        let o = opts.unwrap_or_default();
        let f = self.inner.with_request_timeout(opt_ms(o.request_timeout_ms));
        let watch = e2b::WatchOptions {
            user: o.user,
            recursive: o.recursive.unwrap_or(false),
            include_entry: o.include_entry.unwrap_or(false),
            allow_network_mounts: o.allow_network_mounts.unwrap_or(false),
            timeout: opt_ms(o.timeout_ms),
        };
        let on_event = std::sync::Arc::new(on_event);
        let cb: e2b::watch::EventCallback = std::sync::Arc::new(move |e: e2b::FilesystemEvent| {
            on_event.call(FilesystemEvent::from(e), ThreadsafeFunctionCallMode::NonBlocking);
        });
        let exit = o.on_exit.map(|f| -> e2b::watch::ExitCallback {
            let f = std::sync::Arc::new(f);
            std::sync::Arc::new(move |err: Option<e2b::Error>| {
                f.call(err.map(crate::error::to_js), ThreadsafeFunctionCallMode::NonBlocking);
            })
        });
        let inner = f.watch_dir(&path, watch, cb, exit).await.js()?;
        Ok(WatchHandle { inner })
    }

    /// Entries of a directory.
    #[napi]
    pub async fn list(
        &self,
        path: String,
        opts: Option<FilesystemListOpts>,
    ) -> Result<Vec<EntryInfo>> {
        let opts = opts.unwrap_or_default();
        let entries = self
            .inner
            .with_request_timeout(opt_ms(opts.request_timeout_ms))
            .list(&path, opts.depth.unwrap_or(1), opts.user.as_deref())
            .await
            .js()?;
        Ok(entries.into_iter().map(EntryInfo::from).collect())
    }

    /// Whether a file or directory exists.
    #[napi]
    pub async fn exists(&self, path: String, opts: Option<FilesystemRequestOpts>) -> Result<bool> {
        let (user, f) = self.timed(opts.map(|o| (o.user, o.request_timeout_ms)));
        f.exists(&path, user.as_deref()).await.js()
    }

    /// Information about a file or directory.
    #[napi]
    pub async fn get_info(
        &self,
        path: String,
        opts: Option<FilesystemRequestOpts>,
    ) -> Result<EntryInfo> {
        let (user, f) = self.timed(opts.map(|o| (o.user, o.request_timeout_ms)));
        f.get_info(&path, user.as_deref())
            .await
            .js()
            .map(EntryInfo::from)
    }

    /// Remove a file or directory.
    #[napi]
    pub async fn remove(&self, path: String, opts: Option<FilesystemRequestOpts>) -> Result<()> {
        let (user, f) = self.timed(opts.map(|o| (o.user, o.request_timeout_ms)));
        f.remove(&path, user.as_deref()).await.js()
    }

    /// Rename (move) a file or directory.
    #[napi]
    pub async fn rename(
        &self,
        old_path: String,
        new_path: String,
        opts: Option<FilesystemRequestOpts>,
    ) -> Result<EntryInfo> {
        let (user, f) = self.timed(opts.map(|o| (o.user, o.request_timeout_ms)));
        f.rename(&old_path, &new_path, user.as_deref())
            .await
            .js()
            .map(EntryInfo::from)
    }

    /// Create a directory (and parents): `true` if created, `false` if it already existed.
    #[napi]
    pub async fn make_dir(
        &self,
        path: String,
        opts: Option<FilesystemRequestOpts>,
    ) -> Result<bool> {
        let (user, f) = self.timed(opts.map(|o| (o.user, o.request_timeout_ms)));
        f.make_dir(&path, user.as_deref()).await.js()
    }
}
