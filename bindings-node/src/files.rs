//! `sandbox.files`: read and write files, list directories, stat, remove, rename, make dirs.
//!
//! `read` returns text by default and a `Uint8Array` with `{ format: 'bytes' }`; `write` takes a
//! string or bytes (`Uint8Array`, including `Buffer`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use napi::Either;
use napi::bindgen_prelude::{Result, Uint8Array};
use napi_derive::napi;

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
}

/// Options of `files.read`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct FilesystemReadOpts {
    /// `text` (default) returns a string, `bytes` a `Uint8Array`.
    #[napi(ts_type = "'text' | 'bytes'")]
    pub format: Option<String>,
    /// Linux user the operation runs as.
    pub user: Option<String>,
}

/// Options of `files.list`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct FilesystemListOpts {
    /// How many levels deep to list (default 1).
    pub depth: Option<u32>,
    /// Linux user the operation runs as.
    pub user: Option<String>,
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
        if opts.format.as_deref() == Some("bytes") {
            let b = self
                .inner
                .read_bytes(&path, opts.user.as_deref())
                .await
                .js()?;
            Ok(Either::B(Uint8Array::from(b.to_vec())))
        } else {
            self.inner
                .read_text(&path, opts.user.as_deref())
                .await
                .js()
                .map(Either::A)
        }
    }

    /// Write a file (created or overwritten, parents created).
    #[napi]
    pub async fn write(
        &self,
        path: String,
        data: Either<String, Uint8Array>,
        opts: Option<FilesystemRequestOpts>,
    ) -> Result<WriteInfo> {
        let user = opts.and_then(|o| o.user);
        self.inner
            .write(&path, bytes(data), user.as_deref())
            .await
            .js()
            .map(WriteInfo::from)
    }

    /// Write several files, in order.
    #[napi]
    pub async fn write_files(
        &self,
        files: Vec<WriteEntry>,
        opts: Option<FilesystemRequestOpts>,
    ) -> Result<Vec<WriteInfo>> {
        let user = opts.and_then(|o| o.user);
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            out.push(
                self.inner
                    .write(&f.path, bytes(f.data), user.as_deref())
                    .await
                    .js()?
                    .into(),
            );
        }
        Ok(out)
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
            .list(&path, opts.depth.unwrap_or(1), opts.user.as_deref())
            .await
            .js()?;
        Ok(entries.into_iter().map(EntryInfo::from).collect())
    }

    /// Whether a file or directory exists.
    #[napi]
    pub async fn exists(&self, path: String, opts: Option<FilesystemRequestOpts>) -> Result<bool> {
        let user = opts.and_then(|o| o.user);
        self.inner.exists(&path, user.as_deref()).await.js()
    }

    /// Information about a file or directory.
    #[napi]
    pub async fn get_info(
        &self,
        path: String,
        opts: Option<FilesystemRequestOpts>,
    ) -> Result<EntryInfo> {
        let user = opts.and_then(|o| o.user);
        self.inner
            .get_info(&path, user.as_deref())
            .await
            .js()
            .map(EntryInfo::from)
    }

    /// Remove a file or directory.
    #[napi]
    pub async fn remove(&self, path: String, opts: Option<FilesystemRequestOpts>) -> Result<()> {
        let user = opts.and_then(|o| o.user);
        self.inner.remove(&path, user.as_deref()).await.js()
    }

    /// Rename (move) a file or directory.
    #[napi]
    pub async fn rename(
        &self,
        old_path: String,
        new_path: String,
        opts: Option<FilesystemRequestOpts>,
    ) -> Result<EntryInfo> {
        let user = opts.and_then(|o| o.user);
        self.inner
            .rename(&old_path, &new_path, user.as_deref())
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
        let user = opts.and_then(|o| o.user);
        self.inner.make_dir(&path, user.as_deref()).await.js()
    }
}
