//! An image directory into the bucket: RAM chunks, device state, the disk's qcow2 chain and
//! boot files, then the manifest. Anything the bucket already holds is skipped, so the cost of
//! a second snapshot of a sandbox is what changed since the first.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use futures::StreamExt;

use super::Bucket;
use super::manifest::{self, Blob, Boot, CHUNK_SIZE, FORMAT, Layer, Manifest, Ram};
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
    /// Chunks sent (the rest were in the bucket already).
    pub uploaded_chunks: usize,
    /// Bytes sent over the wire (compressed), all objects.
    pub uploaded_bytes: u64,
    /// Plaintext bytes of what was sent.
    pub uploaded_plain_bytes: u64,
    pub uploaded_layers: usize,
    pub ms: u64,
}

/// Uploads the image in `dir` (`meta.json`, `mem.ram`, `state.bin` and its disk chain) under
/// `image_id`. Idempotent: running it again after a crash finishes the job.
pub async fn upload_image(bucket: &Bucket, image_id: &str, dir: &Path) -> anyhow::Result<(Manifest, UploadStats)> {
    let started = Instant::now();
    anyhow::ensure!(manifest::safe_name(image_id), "image id {image_id:?} is not a valid object name");
    let meta = Runtime::read_meta(dir)?;
    let mut stats = UploadStats::default();
    let ram = if meta.memory { Some(upload_ram(bucket, &dir.join("mem.ram"), &mut stats).await?) } else { None };
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
        format: FORMAT,
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
        sent_mib = stats.uploaded_bytes >> 20,
        "image uploaded to {}",
        bucket.url()
    );
    Ok((manifest, stats))
}

/// One chunk's outcome: its index, its hash (`None`: all zero), and `(sent, plaintext)` bytes
/// when it was uploaded (`None`: zero, or in the bucket already).
type ChunkSent = (usize, Option<String>, Option<(u64, u64)>);

async fn upload_ram(bucket: &Bucket, path: &Path, stats: &mut UploadStats) -> anyhow::Result<Ram> {
    let file = std::sync::Arc::new(File::open(path).with_context(|| format!("open {}", path.display()))?);
    let size = file.metadata()?.len();
    let count = size.div_ceil(CHUNK_SIZE) as usize;
    // Equal chunks of one image (several in flight at once) are sent once.
    let claimed = std::sync::Mutex::new(std::collections::HashSet::new());
    let results: Vec<anyhow::Result<ChunkSent>> = futures::stream::iter(0..count)
        .map(|i| {
            let (file, claimed) = (file.clone(), &claimed);
            async move {
                let off = i as u64 * CHUNK_SIZE;
                let len = CHUNK_SIZE.min(size - off) as usize;
                let read = tokio::task::spawn_blocking(move || read_chunk(&file, off, len)).await??;
                let Some((hash, data)) = read else { return Ok((i, None, None)) };
                let key = manifest::chunk_key(&hash);
                if !claimed.lock().unwrap().insert(hash.clone()) || bucket.exists(&key).await? {
                    return Ok((i, Some(hash), None));
                }
                let plain = data.len() as u64;
                let packed = tokio::task::spawn_blocking(move || zstd::bulk::compress(&data, ZSTD_LEVEL)).await??;
                let sent = packed.len() as u64;
                bucket.put(&key, Bytes::from(packed)).await.with_context(|| format!("chunk {i}"))?;
                Ok((i, Some(hash), Some((sent, plain))))
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    let mut chunks = vec![None; count];
    stats.chunks += count;
    for r in results {
        let (i, hash, sent) = r?;
        if hash.is_none() {
            stats.zero_chunks += 1;
        }
        if let Some((sent, plain)) = sent {
            stats.uploaded_chunks += 1;
            stats.uploaded_bytes += sent;
            stats.uploaded_plain_bytes += plain;
        }
        chunks[i] = hash;
    }
    Ok(Ram { size, chunk_size: CHUNK_SIZE, chunks })
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
