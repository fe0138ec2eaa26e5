//! An image directory into the bucket: RAM chunks, device state, the disk's qcow2 chain and
//! boot files, then the manifest. Anything the bucket already holds is skipped, so the cost of
//! a second snapshot of a sandbox is what changed since the first.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use futures::StreamExt;

use super::Bucket;
use super::chunk_cache::LocalChunk;
use super::delta;
use super::manifest::{self, Blob, Boot, CHUNK_SIZE, FORMAT, FORMAT_NO_DELTAS, Layer, Manifest, Ram};
use crate::vm::{Runtime, files};

/// Chunks in flight at once (read, hash, compress, PUT).
const PARALLEL: usize = 32;
/// zstd level: fast; RAM compresses well even at the lowest levels.
const ZSTD_LEVEL: i32 = 1;

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct UploadStats {
    /// RAM chunks in the image, all-zero ones included.
    pub chunks: usize,
    pub zero_chunks: usize,
    /// Whole chunks sent (the rest were in the bucket already, or sent as deltas).
    pub uploaded_chunks: usize,
    /// Changed chunks sent as page deltas of the chunk at the same offset in `delta_base`.
    pub uploaded_deltas: usize,
    /// The local image this one's deltas are against (`None`: no image shared any chunk).
    pub delta_base: Option<String>,
    /// Bytes sent over the wire (compressed), all objects.
    pub uploaded_bytes: u64,
    /// Plaintext bytes of what was sent.
    pub uploaded_plain_bytes: u64,
    pub uploaded_layers: usize,
    pub ms: u64,
}

/// Uploads the image in `dir` (`meta.json`, `mem.ram`, `state.bin` and its disk chain) under
/// `image_id`. Idempotent: running it again after a crash finishes the job. Changed RAM chunks
/// are sent as page deltas against the image directory under one of `bases` (the node's
/// images already in the bucket) that shares the most chunks with this one.
pub async fn upload_image(
    bucket: &Bucket,
    image_id: &str,
    dir: &Path,
    bases: &[PathBuf],
) -> anyhow::Result<(Manifest, UploadStats)> {
    let started = Instant::now();
    anyhow::ensure!(manifest::safe_name(image_id), "image id {image_id:?} is not a valid object name");
    let meta = Runtime::read_meta(dir)?;
    let mut stats = UploadStats::default();
    let ram = if meta.memory { Some(upload_ram(bucket, &dir.join("mem.ram"), bases, &mut stats).await?) } else { None };
    let state = if meta.memory {
        Some(upload_small(bucket, &dir.join("state.bin"), manifest::state_key, &mut stats).await?)
    } else {
        None
    };
    let mut layers = Vec::new();
    for path in files::qcow2_chain(&meta.disk_layer) {
        layers.push(upload_layer(bucket, &path, &mut stats).await?);
    }
    let boot = match &meta.boot {
        Some(b) => Some(Boot {
            kernel: upload_small(bucket, &b.kernel, manifest::boot_key, &mut stats).await?,
            initrd: upload_small(bucket, &b.initrd, manifest::boot_key, &mut stats).await?,
            cmdline: b.cmdline.clone(),
        }),
        None => None,
    };
    let manifest = Manifest {
        format: if ram.as_ref().is_some_and(|r| !r.deltas.is_empty()) { FORMAT } else { FORMAT_NO_DELTAS },
        image_id: image_id.to_string(),
        memory_mb: meta.memory_mb,
        vcpus: meta.vcpus,
        disk_size_mb: meta.disk_size_mb,
        envd_version: meta.envd_version.clone(),
        size_bytes: meta.size_bytes,
        frozen_ms: meta.frozen_ms,
        capture_ms: meta.capture_ms,
        ram,
        state,
        layers,
        boot,
    };
    let body = serde_json::to_vec_pretty(&manifest)?;
    stats.uploaded_bytes += body.len() as u64;
    bucket.put(&manifest::manifest_key(image_id), Bytes::from(body)).await.context("manifest")?;
    super::chunk_cache::keep_manifest(dir, &manifest);
    stats.ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        image = image_id,
        ms = stats.ms,
        chunks = stats.chunks,
        zero = stats.zero_chunks,
        sent_chunks = stats.uploaded_chunks,
        sent_deltas = stats.uploaded_deltas,
        sent_mib = stats.uploaded_bytes >> 20,
        "image uploaded to {}",
        bucket.url()
    );
    Ok((manifest, stats))
}

/// One chunk's outcome: its index, its hash (`None`: all zero), `(sent, plaintext)` bytes when
/// something was uploaded for it, and its delta chain when it is stored as one.
type ChunkSent = (usize, Option<String>, Option<(u64, u64)>, Option<Vec<String>>);

async fn upload_ram(bucket: &Bucket, path: &Path, bases: &[PathBuf], stats: &mut UploadStats) -> anyhow::Result<Ram> {
    let file = std::sync::Arc::new(File::open(path).with_context(|| format!("open {}", path.display()))?);
    let size = file.metadata()?.len();
    let count = size.div_ceil(CHUNK_SIZE) as usize;
    // First the hashes, to find the local image this one shares most chunks with: its chunks
    // are the bases of this one's deltas.
    let hashes: Vec<anyhow::Result<Option<String>>> = futures::stream::iter(0..count)
        .map(|i| {
            let file = file.clone();
            async move {
                let off = i as u64 * CHUNK_SIZE;
                let len = CHUNK_SIZE.min(size - off) as usize;
                let read = tokio::task::spawn_blocking(move || read_chunk(&file, off, len)).await??;
                Ok(read.map(|(hash, _)| hash))
            }
        })
        .buffered(PARALLEL)
        .collect()
        .await;
    let hashes = hashes.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let parent = {
        let (bases, own, h) = (bases.to_vec(), path.parent().map(Path::to_path_buf), hashes.clone());
        tokio::task::spawn_blocking(move || Parent::find(&bases, own.as_deref(), &h)).await?
    };
    // Equal chunks (and deltas) of one image, several in flight at once, are sent once.
    let claimed = std::sync::Mutex::new(std::collections::HashSet::new());
    let results: Vec<anyhow::Result<ChunkSent>> = futures::stream::iter(hashes.into_iter().enumerate())
        .map(|(i, hash)| {
            let (file, claimed, parent) = (file.clone(), &claimed, parent.as_ref());
            async move {
                let Some(hash) = hash else { return Ok((i, None, None, None)) };
                let key = manifest::chunk_key(&hash);
                if !claimed.lock().unwrap().insert(key.clone()) {
                    return Ok((i, Some(hash), None, None));
                }
                // Stored as a delta chain by the parent (unchanged since): the same chain.
                if let Some(p) = parent
                    && let Some(chain) = p.ram.deltas.get(&hash)
                    && chain_stored(bucket, chain).await?
                {
                    return Ok((i, Some(hash), None, Some(chain.clone())));
                }
                if bucket.exists(&key).await? {
                    return Ok((i, Some(hash), None, None));
                }
                let off = i as u64 * CHUNK_SIZE;
                let len = CHUNK_SIZE.min(size - off) as usize;
                let data = tokio::task::spawn_blocking(move || {
                    let mut buf = vec![0u8; len];
                    file.read_exact_at(&mut buf, off).map(|()| buf)
                })
                .await??;
                let data = match parent {
                    Some(p) => match p.delta(bucket, i, &hash, data).await? {
                        Ok((chain, delta)) => {
                            let d_key = manifest::delta_key(chain.last().expect("a chain ends with the new delta"));
                            let sent = if claimed.lock().unwrap().insert(d_key.clone()) && !bucket.exists(&d_key).await? {
                                let plain = delta.len() as u64;
                                let packed = tokio::task::spawn_blocking(move || zstd::bulk::compress(&delta, ZSTD_LEVEL)).await??;
                                let sent = packed.len() as u64;
                                bucket.put(&d_key, Bytes::from(packed)).await.with_context(|| format!("delta of chunk {i}"))?;
                                Some((sent, plain))
                            } else {
                                None
                            };
                            return Ok((i, Some(hash), sent, Some(chain)));
                        }
                        Err(data) => data,
                    },
                    None => data,
                };
                let plain = data.len() as u64;
                let packed = tokio::task::spawn_blocking(move || zstd::bulk::compress(&data, ZSTD_LEVEL)).await??;
                let sent = packed.len() as u64;
                bucket.put(&key, Bytes::from(packed)).await.with_context(|| format!("chunk {i}"))?;
                Ok((i, Some(hash), Some((sent, plain)), None))
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let mut chunks = vec![None; count];
    let mut deltas = std::collections::BTreeMap::new();
    stats.chunks += count;
    for r in results {
        let (i, hash, sent, chain) = r?;
        if hash.is_none() {
            stats.zero_chunks += 1;
        }
        if let Some((sent, plain)) = sent {
            if chain.is_some() {
                stats.uploaded_deltas += 1;
            } else {
                stats.uploaded_chunks += 1;
            }
            stats.uploaded_bytes += sent;
            stats.uploaded_plain_bytes += plain;
        }
        if let (Some(h), Some(chain)) = (&hash, chain) {
            deltas.insert(h.clone(), chain);
        }
        chunks[i] = hash;
    }
    stats.delta_base = parent.map(|p| p.dir.display().to_string());
    Ok(Ram { size, chunk_size: CHUNK_SIZE, chunks, deltas })
}

/// The local image (already in the bucket) whose chunks the new image's changed chunks are
/// stored as deltas of: the one with the most equal chunks at equal offsets.
struct Parent {
    dir: PathBuf,
    ram: Ram,
}

impl Parent {
    fn find(roots: &[PathBuf], own: Option<&Path>, hashes: &[Option<String>]) -> Option<Self> {
        // Most equal chunks, then the newest (a sandbox's latest snapshot over its template).
        let mut best: Option<((usize, std::time::SystemTime), Self)> = None;
        for root in roots {
            let Ok(entries) = std::fs::read_dir(root) else { continue };
            for entry in entries.flatten() {
                let dir = entry.path();
                if entry.file_name().to_string_lossy().starts_with('.') || Some(dir.as_path()) == own {
                    continue;
                }
                // Only an image with a manifest here is known to be in the bucket.
                let Some(ram) = std::fs::read(dir.join("manifest.json"))
                    .ok()
                    .and_then(|raw| serde_json::from_slice::<Manifest>(&raw).ok())
                    .and_then(|m| m.ram)
                    .filter(|r| r.chunk_size == CHUNK_SIZE)
                else {
                    continue;
                };
                let same = hashes.iter().zip(&ram.chunks).filter(|(a, b)| a.is_some() && a == b).count();
                let made = std::fs::metadata(dir.join("manifest.json")).and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
                let score = (same, made);
                if same > 0 && best.as_ref().is_none_or(|(s, _)| score > *s) && dir.join("mem.ram").is_file() {
                    best = Some((score, Self { dir, ram }));
                }
            }
        }
        best.map(|(_, p)| p)
    }

    /// Chunk `i` (`data`, hash `hash`) as a delta of this image's chunk `i`: the chain and the
    /// delta's plaintext, or the data back when a delta is not possible or not worth it.
    async fn delta(
        &self,
        bucket: &Bucket,
        i: usize,
        hash: &str,
        data: Vec<u8>,
    ) -> anyhow::Result<Result<(Vec<String>, Vec<u8>), Vec<u8>>> {
        let Some(Some(base_hash)) = self.ram.chunks.get(i) else { return Ok(Err(data)) };
        let chain = self.ram.chain(base_hash);
        if base_hash == hash || chain.len() >= delta::MAX_CHAIN {
            return Ok(Err(data));
        }
        // The chain's objects must still be there (the base image may be gone from the bucket).
        if !chain_stored(bucket, &chain).await? {
            return Ok(Err(data));
        }
        let at = LocalChunk { file: self.dir.join("mem.ram"), offset: i as u64 * self.ram.chunk_size };
        let base_hash = base_hash.clone();
        let mut chain: Vec<String> = chain.into_iter().map(String::from).collect();
        tokio::task::spawn_blocking(move || {
            let Some(base) = super::chunk_cache::read_local(&at, &base_hash, data.len()) else { return Ok(Err(data)) };
            Ok(match delta::diff(&base, &data) {
                Some(d) => {
                    chain.push(blake3::hash(&d).to_hex().to_string());
                    Ok((chain, d))
                }
                None => Err(data),
            })
        })
        .await?
    }
}

/// Whether every link of a delta chain is in the bucket.
async fn chain_stored(bucket: &Bucket, chain: &[impl AsRef<str>]) -> anyhow::Result<bool> {
    for key in manifest::chain_keys(chain) {
        if !bucket.exists(&key).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reads one chunk; `None` when it is all zero (holes of the sparse file are not even read).
pub(super) fn read_chunk(file: &File, off: u64, len: usize) -> std::io::Result<Option<(String, Vec<u8>)>> {
    // SAFETY: lseek on a valid fd; a negative result (ENXIO: no data after `off`) is handled.
    let data = unsafe { libc::lseek(file.as_raw_fd(), off as i64, libc::SEEK_DATA) };
    if data < 0 || data as u64 >= off + len as u64 {
        return Ok(None);
    }
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, off)?;
    if is_zero(&buf) {
        return Ok(None);
    }
    Ok(Some((blake3::hash(&buf).to_hex().to_string(), buf)))
}

pub(super) fn is_zero(buf: &[u8]) -> bool {
    // SAFETY: every bit pattern is a valid u64; align_to handles alignment.
    let (head, words, tail) = unsafe { buf.align_to::<u64>() };
    head.iter().all(|&b| b == 0) && words.iter().all(|&w| w == 0) && tail.iter().all(|&b| b == 0)
}

/// A file small enough to hold in memory (device state, kernel, initramfs), stored under its
/// hash by `key`.
async fn upload_small(bucket: &Bucket, path: &Path, key: fn(&str) -> String, stats: &mut UploadStats) -> anyhow::Result<Blob> {
    let data = tokio::fs::read(path).await.with_context(|| format!("read {}", path.display()))?;
    let hash = blake3::hash(&data).to_hex().to_string();
    let size = data.len() as u64;
    let key = key(&hash);
    if !bucket.exists(&key).await? {
        let packed = tokio::task::spawn_blocking(move || zstd::bulk::compress(&data, ZSTD_LEVEL)).await??;
        stats.uploaded_bytes += packed.len() as u64;
        stats.uploaded_plain_bytes += size;
        bucket.put(&key, Bytes::from(packed)).await.with_context(|| format!("upload {}", path.display()))?;
    }
    Ok(Blob { hash, size })
}

/// A frozen qcow2 layer, streamed through zstd into a multipart upload. The hash of the
/// plaintext goes into the manifest; a layer already in the bucket is only hashed.
async fn upload_layer(bucket: &Bucket, path: &Path, stats: &mut UploadStats) -> anyhow::Result<Layer> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    anyhow::ensure!(manifest::safe_name(&name), "disk layer {} has no usable object name", path.display());
    let key = manifest::layer_key(&name);
    let present = bucket.exists(&key).await?;
    if present && let Some((size, hash)) = bucket.layer_hash(&name) {
        return Ok(Layer { name, size, hash });
    }
    let file = std::sync::Arc::new(File::open(path).with_context(|| format!("open {}", path.display()))?);
    let size = file.metadata()?.len();
    let mut hasher = blake3::Hasher::new();
    let mut encoder = if present { None } else { Some(zstd::stream::Encoder::new(Vec::new(), ZSTD_LEVEL)?) };
    let mut writer = if present { None } else { Some(bucket.writer(&key).await?) };
    let mut off = 0u64;
    const BLOCK: u64 = 4 << 20;
    while off < size {
        let len = BLOCK.min(size - off) as usize;
        let f = file.clone();
        let block = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len];
            f.read_exact_at(&mut buf, off).map(|_| buf)
        })
        .await??;
        hasher.update(&block);
        if let (Some(enc), Some(w)) = (encoder.as_mut(), writer.as_mut()) {
            std::io::Write::write_all(enc, &block)?;
            let out = std::mem::take(enc.get_mut());
            stats.uploaded_bytes += out.len() as u64;
            w.wait_for_capacity(4).await?;
            w.write(&out);
        }
        off += len as u64;
    }
    if let (Some(enc), Some(mut w)) = (encoder, writer) {
        let out = enc.finish()?;
        stats.uploaded_bytes += out.len() as u64;
        w.write(&out);
        w.finish().await.with_context(|| format!("upload {}", path.display()))?;
        bucket.uploaded(&key);
        stats.uploaded_plain_bytes += size;
        stats.uploaded_layers += 1;
    }
    let hash = hasher.finalize().to_hex().to_string();
    bucket.set_layer_hash(&name, size, &hash);
    Ok(Layer { name, size, hash })
}
