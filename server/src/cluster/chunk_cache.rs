//! The chunks a node already has: RAM chunks of the images in its store and templates
//! directory, by hash, so a restore fetches from the bucket only the chunks no local image
//! holds (a snapshot shares most of its RAM with its template and its siblings).
//!
//! Each image directory says what its `mem.ram` holds: `manifest.json` (written next to an
//! image uploaded from or fetched to this node), or else `chunk-index.json`, computed once by
//! hashing the file (templates built on this node) and kept while `mem.ram`'s size and
//! modification time are unchanged. A chunk read from a local file is checked against its hash
//! before use, like one from the bucket.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::manifest::{CHUNK_SIZE, Manifest};

/// Where a chunk can be read locally.
#[derive(Debug, Clone)]
pub struct LocalChunk {
    pub file: PathBuf,
    pub offset: u64,
}

#[derive(Default)]
pub struct ChunkCache {
    chunks: HashMap<String, LocalChunk>,
}

#[derive(Serialize, Deserialize)]
struct ChunkIndex {
    size: u64,
    mtime_ns: i128,
    chunk_size: u64,
    chunks: Vec<Option<String>>,
}

impl ChunkCache {
    /// Indexes every image directory directly under each of `roots`.
    pub fn scan(roots: &[PathBuf]) -> Self {
        let mut cache = Self::default();
        for root in roots {
            let Ok(entries) = std::fs::read_dir(root) else { continue };
            for entry in entries.flatten() {
                let dir = entry.path();
                let name = entry.file_name();
                if name.to_string_lossy().starts_with('.') || !dir.join("mem.ram").is_file() {
                    continue;
                }
                if let Some((chunk_size, chunks)) = image_chunks(&dir) {
                    cache.add(&dir.join("mem.ram"), chunk_size, &chunks);
                }
            }
        }
        cache
    }

    fn add(&mut self, file: &Path, chunk_size: u64, chunks: &[Option<String>]) {
        for (i, hash) in chunks.iter().enumerate() {
            if let Some(h) = hash {
                self.chunks
                    .entry(h.clone())
                    .or_insert_with(|| LocalChunk { file: file.to_path_buf(), offset: i as u64 * chunk_size });
            }
        }
    }

    pub fn get(&self, hash: &str) -> Option<&LocalChunk> {
        self.chunks.get(hash)
    }

    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }
}

/// Reads chunk `hash` of `len` bytes from where the cache found it; `None` if the file changed.
pub fn read_local(at: &LocalChunk, hash: &str, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    File::open(&at.file).ok()?.read_exact_at(&mut buf, at.offset).ok()?;
    (blake3::hash(&buf).to_hex().as_str() == hash).then_some(buf)
}

/// The chunk list of an image directory: from its manifest, its index, or hashed now (and the
/// index written for next time).
fn image_chunks(dir: &Path) -> Option<(u64, Vec<Option<String>>)> {
    if let Ok(raw) = std::fs::read(dir.join("manifest.json"))
        && let Ok(m) = serde_json::from_slice::<Manifest>(&raw)
        && let Some(ram) = m.ram
    {
        return Some((ram.chunk_size, ram.chunks));
    }
    let ram = dir.join("mem.ram");
    let meta = std::fs::metadata(&ram).ok()?;
    let (size, mtime_ns) = (meta.len(), meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128);
    let index_path = dir.join("chunk-index.json");
    if let Ok(raw) = std::fs::read(&index_path)
        && let Ok(idx) = serde_json::from_slice::<ChunkIndex>(&raw)
        && idx.size == size
        && idx.mtime_ns == mtime_ns
    {
        return Some((idx.chunk_size, idx.chunks));
    }
    let chunks = hash_file(&ram, size).ok()?;
    let idx = ChunkIndex { size, mtime_ns, chunk_size: CHUNK_SIZE, chunks };
    // Best effort: a read-only templates directory just means hashing again next time.
    if let Ok(raw) = serde_json::to_vec(&idx) {
        let _ = crate::vm::files::write_atomic(&index_path, &raw);
    }
    Some((idx.chunk_size, idx.chunks))
}

fn hash_file(path: &Path, size: u64) -> std::io::Result<Vec<Option<String>>> {
    let file = File::open(path)?;
    (0..size.div_ceil(CHUNK_SIZE))
        .map(|i| {
            let off = i * CHUNK_SIZE;
            let len = CHUNK_SIZE.min(size - off) as usize;
            Ok(super::upload::read_chunk(&file, off, len)?.map(|(hash, _)| hash))
        })
        .collect()
}

/// Keeps `manifest` next to the image it describes, for later restores' [`ChunkCache`].
pub fn keep_manifest(dir: &Path, manifest: &Manifest) {
    if let Ok(raw) = serde_json::to_vec(manifest) {
        let _ = crate::vm::files::write_atomic(&dir.join("manifest.json"), &raw);
    }
}
