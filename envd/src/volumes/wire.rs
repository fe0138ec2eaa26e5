//! The volume channel's frames (the host side is sandboxd's `volumes::wire`; both must agree).
//!
//! A frame is `[u32 BE header length][u32 BE data length][header JSON][data]`. The guest
//! sends [`Request`]s (data: the bytes of a write), the host answers each with a
//! [`Response`] carrying the same `id` (data: the bytes of a read). Paths are absolute within
//! the volume (`/`, `/dir/file`); every operation names its volume and path, so the host keeps
//! no state between requests and a new connection (after a restore) just carries on.

use serde::{Deserialize, Serialize};
pub use super::frame::{read_frame, write_frame};


#[derive(Debug, Clone, Default, Serialize)]
pub struct Request {
    pub id: u64,
    /// The volume's ID.
    pub vol: String,
    /// `stat`, `readdir`, `read`, `write`, `create`, `mkdir`, `symlink`, `readlink`,
    /// `unlink`, `rmdir`, `rename`, `setattr`, `statfs`, `fsync`.
    pub op: &'static str,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub off: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub len: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Nanoseconds since the epoch; `-1` means "now".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub atime: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtime: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `create`: fail if it exists; `rename`: `RENAME_NOREPLACE` / `RENAME_EXCHANGE` bits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flags: Option<u32>,
}

/// What `stat` reports about an entry (never follows a symlink).
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Attr {
    /// `f` file, `d` directory, `l` symlink, `o` anything else.
    pub kind: char,
    pub size: u64,
    pub blocks: u64,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: i64,
    pub mtime: i64,
    pub ctime: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub name: String,
    pub attr: Attr,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Statfs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Response {
    pub id: u64,
    /// 0 on success, else a Linux errno.
    pub errno: i32,
    pub attr: Option<Attr>,
    pub entries: Option<Vec<Entry>>,
    pub written: Option<u32>,
    pub target: Option<String>,
    pub statfs: Option<Statfs>,
}
