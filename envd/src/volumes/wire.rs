//! The volume channel's wire format, one file for both ends: envd compiles it as
//! `volumes::wire`, sandboxd includes it (`server/src/volumes/wire.rs`).
//!
//! A frame is `[u32 BE header length][u32 BE data length][header JSON][data]`. The guest
//! sends [`Request`]s (data: the bytes of a write), the host answers each with a
//! [`Response`] carrying the same `id` (data: the bytes of a read). Paths are absolute within
//! the volume (`/`, `/dir/file`); every operation names its volume and path, so the host keeps
//! no state between requests and a new connection (after a restore) just carries on.

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest header or data part accepted (a read or write is at most 1 MiB).
pub const MAX_PART: usize = 4 << 20;

pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, header: &[u8], data: &[u8]) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(8 + header.len());
    head.extend_from_slice(&(header.len() as u32).to_be_bytes());
    head.extend_from_slice(&(data.len() as u32).to_be_bytes());
    head.extend_from_slice(header);
    w.write_all(&head).await?;
    w.write_all(data).await?;
    w.flush().await
}

/// `None` at a clean end of the stream.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut lens = [0u8; 8];
    match r.read_exact(&mut lens).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let [h0, h1, h2, h3, d0, d1, d2, d3] = lens;
    let hl = u32::from_be_bytes([h0, h1, h2, h3]) as usize;
    let dl = u32::from_be_bytes([d0, d1, d2, d3]) as usize;
    if hl > MAX_PART || dl > MAX_PART {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "volume frame too large"));
    }
    let mut header = vec![0; hl];
    r.read_exact(&mut header).await?;
    let mut data = vec![0; dl];
    r.read_exact(&mut data).await?;
    Ok(Some((header, data)))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Request {
    pub id: u64,
    /// The volume's ID.
    pub vol: String,
    /// `stat`, `readdir`, `read`, `write`, `create`, `mkdir`, `symlink`, `readlink`,
    /// `unlink`, `rmdir`, `rename`, `setattr`, `statfs`, `fsync`.
    pub op: String,
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub attr: Attr,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Statfs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Response {
    pub id: u64,
    /// 0 on success, else a Linux errno.
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
