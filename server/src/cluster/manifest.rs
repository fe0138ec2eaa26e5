//! The manifest of an image in the bucket (`images/<id>.json`): what a node needs to rebuild
//! the image directory ([`crate::vm::ImageMeta`]'s files) from objects.
//!
//! Bucket layout (under the configured prefix):
//! - `chunks/<blake3>`: one chunk of guest RAM, zstd-compressed; the name is the hash of the
//!   plaintext, so equal chunks of any images are stored once. All-zero chunks are not stored.
//! - `state/<blake3>`: QEMU's device state, zstd-compressed.
//! - `layers/<file name>`: a frozen qcow2 disk layer, zstd-compressed (multipart upload). Layer
//!   file names are unique and layers never change once frozen.
//! - `boot/<blake3>`: a kernel or initramfs for cold boots, zstd-compressed.
//! - `deltas/<blake3>`: the pages in which one RAM chunk differs from another, zstd-compressed;
//!   named by the hash of the delta's plaintext (see [`super::delta`]).
//! - `images/<id>.json`: this manifest, written after everything it names.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// Bumped when the layout changes incompatibly; a node refuses manifests it does not know.
/// Format 2 added RAM deltas; a manifest without any is still written as format 1, which
/// nodes that predate deltas read.
pub const FORMAT: u32 = 2;
/// The format of manifests without deltas.
pub const FORMAT_NO_DELTAS: u32 = 1;

/// Whether this sandboxd reads manifests of `format`.
pub fn readable(format: u32) -> bool {
    format == FORMAT || format == FORMAT_NO_DELTAS
}

/// Guest RAM is cut into chunks of this size. Small enough that a guest dirtying scattered
/// pages re-uploads little, large enough that a 512 MiB guest is a few thousand objects.
pub const CHUNK_SIZE: u64 = 256 << 10;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub image_id: String,
    pub memory_mb: u32,
    pub vcpus: u32,
    pub disk_size_mb: u32,
    pub envd_version: String,
    pub size_bytes: u64,
    #[serde(default)]
    pub frozen_ms: u64,
    #[serde(default)]
    pub capture_ms: u64,
    /// `None` for a filesystem-only image.
    pub ram: Option<Ram>,
    /// Object key of the device state (`state/<hash>`); `None` for a filesystem-only image.
    pub state: Option<Blob>,
    /// The disk's qcow2 chain, top layer first; each layer's backing file is the next one.
    pub layers: Vec<Layer>,
    pub boot: Option<Boot>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ram {
    /// Length of `mem.ram` in bytes.
    pub size: u64,
    pub chunk_size: u64,
    /// One entry per chunk: the BLAKE3 hash of its plaintext, `None` when it is all zero.
    pub chunks: Vec<Option<String>>,
    /// Chunks stored as deltas, by hash: a whole chunk's hash, then the hashes of the deltas
    /// to apply to it in order. A chunk not here is stored whole (`chunks/<hash>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deltas: BTreeMap<String, Vec<String>>,
}

impl Ram {
    /// Distinct non-zero chunks (each stored whole or as a delta chain).
    pub fn distinct(&self) -> BTreeSet<&str> {
        self.chunks.iter().flatten().map(String::as_str).collect()
    }

    /// How chunk `hash` is stored: the whole chunk, then the deltas to apply to it.
    pub fn chain<'a>(&'a self, hash: &'a str) -> Vec<&'a str> {
        match self.deltas.get(hash) {
            Some(chain) => chain.iter().map(String::as_str).collect(),
            None => vec![hash],
        }
    }

    /// Every object the RAM needs: whole chunks and deltas.
    pub fn objects(&self) -> BTreeSet<String> {
        self.distinct().into_iter().flat_map(|hash| chain_keys(&self.chain(hash))).collect()
    }
}

/// The object keys of a delta chain: its whole chunk, then its deltas.
pub fn chain_keys<S: AsRef<str>>(chain: &[S]) -> Vec<String> {
    chain
        .iter()
        .enumerate()
        .map(|(n, link)| if n == 0 { chunk_key(link.as_ref()) } else { delta_key(link.as_ref()) })
        .collect()
}

/// A content-addressed object with its plaintext size.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Blob {
    pub hash: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Layer {
    /// File name, unique across the cluster (`<random>.qcow2`, `rootfs-<hash>.qcow2`).
    pub name: String,
    pub size: u64,
    /// BLAKE3 of the file's plaintext, checked after a download.
    pub hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Boot {
    pub kernel: Blob,
    pub initrd: Blob,
    pub cmdline: String,
}

pub fn manifest_key(image_id: &str) -> String {
    format!("images/{image_id}.json")
}
pub fn chunk_key(hash: &str) -> String {
    format!("chunks/{hash}")
}
pub fn delta_key(hash: &str) -> String {
    format!("deltas/{hash}")
}
pub fn state_key(hash: &str) -> String {
    format!("state/{hash}")
}
pub fn layer_key(name: &str) -> String {
    format!("layers/{name}")
}
pub fn boot_key(hash: &str) -> String {
    format!("boot/{hash}")
}

/// Rejects names that would escape the directory a file is written to.
pub fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

pub fn is_hash(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}
