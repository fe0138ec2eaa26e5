//! The volume channel's frames, host side (the guest side is envd's `volumes::wire`; both
//! must agree).
//!
//! A frame is `[u32 BE header length][u32 BE data length][header JSON][data]`. envd sends
//! [`Request`]s (data: the bytes of a write); sandboxd answers each with a [`Response`]
//! carrying the same `id` (data: the bytes of a read). Every request names its volume and an
//! absolute path within it, so sandboxd keeps no state between requests.

use serde::{Deserialize, Serialize};

// The framing is envd's file itself: both ends compile the same code.
#[path = "../../../envd/src/volumes/frame.rs"]
mod frame;
pub use frame::{MAX_PART, read_frame, write_frame};


#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Request {
    pub id: u64,
    pub vol: String,
    pub op: String,
    pub path: String,
    pub to: Option<String>,
    pub off: Option<u64>,
    pub len: Option<u32>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    /// Nanoseconds since the epoch; `-1` means "now".
    pub atime: Option<i64>,
    pub mtime: Option<i64>,
    pub target: Option<String>,
    pub flags: Option<u32>,
}

/// An entry's attributes (`lstat`): `kind` is `f`, `d`, `l` or `o`.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Attr {
    pub kind: char,
    pub size: u64,
    pub blocks: u64,
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: i64,
    pub mtime: i64,
    pub ctime: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub name: String,
    pub attr: Attr,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Statfs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Response {
    pub id: u64,
    pub errno: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attr: Option<Attr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<Entry>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statfs: Option<Statfs>,
}
