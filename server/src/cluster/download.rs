//! An image from the bucket into a local image directory, for a node that has never seen it:
//! the manifest, then the RAM chunks, device state, missing disk layers and boot files in
//! parallel, every object checked against its hash. The directory appears (rename) only once
//! complete, so a crash mid-download leaves a `.fetch-*` directory to delete, never a broken
//! image.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt};

use super::Bucket;
use super::chunk_cache::{self, ChunkCache};
use super::delta;
use super::manifest::{self, Blob, FORMAT, Manifest};
use super::peer::Peer;
use crate::vm::{BootSpec, ImageMeta, files};

const PARALLEL: usize = 64;

/// Where a node keeps what images share.
#[derive(Debug, Clone)]
pub struct LocalDirs {
    /// Disk layers fetched from the bucket (the runtime's `<store>/layers`).
    pub layers: PathBuf,
    /// Other directories whose layers this node already has (the templates' `.layers`).
    pub layer_sources: Vec<PathBuf>,
    /// Kernels and initramfs files fetched from the bucket, by hash.
    pub boot: PathBuf,
    /// Directories of image directories whose RAM chunks a restore may copy instead of
    /// fetching (the store's snapshots, the templates); see [`ChunkCache`].
    pub chunk_sources: Vec<PathBuf>,
}

impl LocalDirs {
    pub fn find_layer(&self, name: &str) -> Option<PathBuf> {
        std::iter::once(&self.layers).chain(&self.layer_sources).map(|d| d.join(name)).find(|p| p.is_file())
    }
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct DownloadStats {
    /// Bytes received from the bucket (compressed), all objects.
    pub fetched_bytes: u64,
    /// Bytes received from a peer node (uncompressed), and the RAM chunks and layers among them.
    pub peer_bytes: u64,
    pub peer_chunks: usize,
    pub peer_layers: usize,
    /// Non-zero RAM bytes of the image (what a full copy would move, uncompressed).
    pub ram_data_bytes: u64,
    pub fetched_chunks: usize,
    /// Distinct chunks copied from images this node already had instead.
    pub local_chunks: usize,
    pub fetched_layers: usize,
    pub ms: u64,
    /// Where `ms` went: indexing the local chunks, RAM, the other objects, the final fsyncs.
    pub scan_ms: u64,
    pub ram_ms: u64,
    pub rest_ms: u64,
    pub sync_ms: u64,
}

/// `None`: the bucket has no manifest for `image_id` (not uploaded yet, or never).
pub async fn fetch_manifest(bucket: &Bucket, image_id: &str) -> anyhow::Result<Option<Manifest>> {
    let Some(raw) = bucket.get(&manifest::manifest_key(image_id)).await? else { return Ok(None) };
    let m: Manifest = serde_json::from_slice(&raw).with_context(|| format!("manifest of image {image_id}"))?;
    validate(&m)?;
    Ok(Some(m))
}

fn validate(m: &Manifest) -> anyhow::Result<()> {
    if !manifest::readable(m.format) {
        bail!("image {} has manifest format {}, this sandboxd reads {FORMAT} and older", m.image_id, m.format);
    }
    if let Some(r) = &m.ram
        && let Some((hash, _)) = r.deltas.iter().find(|(_, chain)| chain.len() < 2 || chain.len() > delta::MAX_CHAIN)
    {
        bail!("image {}: chunk {hash} has a delta chain of a length this sandboxd does not read", m.image_id);
    }
    let deltas = m.ram.iter().flat_map(|r| r.deltas.iter().flat_map(|(h, chain)| std::iter::once(h).chain(chain)));
    let hashes = m.ram.iter().flat_map(|r| r.chunks.iter().flatten()).chain(deltas);
    let blobs = m.state.iter().chain(m.boot.iter().flat_map(|b| [&b.kernel, &b.initrd])).map(|b| &b.hash);
    if let Some(bad) = hashes.chain(blobs).find(|h| !manifest::is_hash(h)) {
        bail!("image {}: malformed hash {bad:?} in its manifest", m.image_id);
    }
    if let Some(bad) = m.layers.iter().find(|l| !manifest::safe_name(&l.name) || !manifest::is_hash(&l.hash)) {
        bail!("image {}: malformed layer {:?} in its manifest", m.image_id, bad.name);
    }
    if m.layers.is_empty() {
        bail!("image {}: no disk layers in its manifest", m.image_id);
    }
    if let Some(r) = &m.ram
        && (r.chunk_size == 0 || r.size.div_ceil(r.chunk_size) != r.chunks.len() as u64)
    {
        bail!("image {}: RAM size and chunk list disagree", m.image_id);
    }
    Ok(())
}

/// Marks a fetched image directory whose RAM and device state may not be on disk yet: they are
/// synced in the background after the image is published (a restore waiting for the fsync of
/// a few hundred MiB gained nothing: until the machine itself goes down the page cache serves
/// them). A directory still marked when sandboxd starts may have lost data in a power cut, and
/// is deleted (it is only a copy: the bucket has the image). A restore copies such an image's
/// RAM instead of reflinking it (a reflink would first write it all back).
pub use crate::vm::files::UNSYNCED;

/// Rebuilds image `image_id` as directory `dest` (which must not exist yet), asking `peer`
/// (a node that holds the image) for each part before the bucket.
pub async fn download_image(
    bucket: &Bucket,
    image_id: &str,
    dest: &Path,
    dirs: &LocalDirs,
    peer: Option<&Peer>,
) -> anyhow::Result<DownloadStats> {
    let started = Instant::now();
    let m = fetch_manifest(bucket, image_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("image {image_id} is not in the object store {}", bucket.url()))?;
    let parent = dest.parent().context("image directory has no parent")?;
    std::fs::create_dir_all(parent)?;
    let tmp = parent.join(format!(".fetch-{image_id}-{}", crate::vm::random_id()));
    std::fs::create_dir_all(&tmp)?;
    let result = async {
        File::create(tmp.join(UNSYNCED))?;
        fill(bucket, peer, &m, &tmp, dirs).await
    }
    .await;
    let mut stats = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    let syncing = Instant::now();
    files::fsync_path(&tmp)?;
    match std::fs::rename(&tmp, dest) {
        Ok(()) => sync_later(dest.to_path_buf()),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            // Another download of the same image won the race: its copy is as good as ours.
            if !dest.join("meta.json").is_file() {
                return Err(e).with_context(|| format!("publish {}", dest.display()));
            }
        }
    }
    files::fsync_path(parent)?;
    stats.sync_ms += syncing.elapsed().as_millis() as u64;
    stats.ms = started.elapsed().as_millis() as u64;
    log_fetch(image_id, &stats, peer, false, bucket.url());
    Ok(stats)
}

/// The log line of a fetched image (the benchmarks and tests read its fields): `direct` when
/// its RAM went straight into a restore ([`super::direct`]), not into this node's copy.
pub fn log_fetch(image_id: &str, stats: &DownloadStats, peer: Option<&Peer>, direct: bool, url: &str) {
    tracing::info!(
        image = image_id,
        ms = stats.ms,
        fetched_mib = stats.fetched_bytes >> 20,
        peer = peer.map(Peer::node).unwrap_or("-"),
        peer_mib = stats.peer_bytes >> 20,
        peer_chunks = stats.peer_chunks,
        peer_layers = stats.peer_layers,
        chunks = stats.fetched_chunks,
        local_chunks = stats.local_chunks,
        layers = stats.fetched_layers,
        scan_ms = stats.scan_ms,
        ram_ms = stats.ram_ms,
        rest_ms = stats.rest_ms,
        sync_ms = stats.sync_ms,
        direct,
        "image fetched from {url}"
    );
}

/// Syncs a just-published image's RAM and device state, then drops its [`UNSYNCED`] mark:
/// after [`SYNC_DELAY`], by when the restore that fetched it is done and the kernel has
/// written most of it back by itself (an fsync right away made that restore's own RAM copy
/// compete with a few hundred MiB of writeback).
fn sync_later(dir: PathBuf) {
    tokio::spawn(async move {
        tokio::time::sleep(SYNC_DELAY).await;
        let _ = tokio::task::spawn_blocking(move || sync_now(&dir)).await;
    });
}

/// See [`sync_later`]: past the kernel's own writeback delay (30 s by default).
const SYNC_DELAY: std::time::Duration = std::time::Duration::from_secs(40);

fn sync_now(dir: &Path) {
    let t = Instant::now();
    let synced = (|| -> anyhow::Result<()> {
        for p in ["mem.ram", "state.bin"].map(|f| dir.join(f)) {
            if p.exists() {
                files::fsync_path(&p)?;
            }
        }
        std::fs::remove_file(dir.join(UNSYNCED))?;
        files::fsync_path(dir)?;
        Ok(())
    })();
    match synced {
        Ok(()) => tracing::debug!(dir = %dir.display(), ms = t.elapsed().as_millis() as u64, "fetched image synced"),
        // Deleted meanwhile (garbage collection), or a disk error: the mark stays, and the
        // copy is dropped at the next start.
        Err(e) => tracing::debug!(dir = %dir.display(), error = %e, "fetched image not synced"),
    }
}

async fn fill(bucket: &Bucket, peer: Option<&Peer>, m: &Manifest, tmp: &Path, dirs: &LocalDirs) -> anyhow::Result<DownloadStats> {
    // RAM, and the rest (device state, disk layers, boot files) at the same time.
    let ram = async {
        let mut stats = DownloadStats::default();
        if let Some(ram) = &m.ram {
            let file = OpenOptions::new().write(true).create_new(true).open(tmp.join("mem.ram"))?;
            file.set_len(ram.size)?;
            fetch_ram_into(bucket, peer, ram, file, dirs, &mut stats).await?;
        }
        anyhow::Ok(stats)
    };
    let (ram, rest) = tokio::join!(ram, fill_rest(bucket, peer, m, tmp, dirs));
    let mut stats = ram?;
    stats.add_rest(&rest?);
    chunk_cache::keep_manifest(tmp, m);
    Ok(stats)
}

impl DownloadStats {
    /// Adds [`fill_rest`]'s counts to a RAM download's.
    pub(super) fn add_rest(&mut self, other: &DownloadStats) {
        self.fetched_bytes += other.fetched_bytes;
        self.peer_bytes += other.peer_bytes;
        self.peer_layers = other.peer_layers;
        self.fetched_layers = other.fetched_layers;
        self.rest_ms = other.rest_ms;
    }
}

/// Everything of image `m` but its RAM into directory `tmp`: device state, missing disk layers
/// (into the node's layers), boot files, and `meta.json`.
pub(super) async fn fill_rest(
    bucket: &Bucket,
    peer: Option<&Peer>,
    m: &Manifest,
    tmp: &Path,
    dirs: &LocalDirs,
) -> anyhow::Result<DownloadStats> {
    let mut stats = DownloadStats::default();
    let t = Instant::now();
    if let Some(state) = &m.state {
        let data = fetch_blob(bucket, &manifest::state_key(&state.hash), state, &mut stats).await?;
        std::fs::write(tmp.join("state.bin"), data)?;
    }
    // Base first: each layer's backing file must be local before the layer above is rebased.
    let mut below: Option<PathBuf> = None;
    for layer in m.layers.iter().rev() {
        let path = match dirs.find_layer(&layer.name) {
            Some(p) => p,
            None => {
                stats.fetched_layers += 1;
                fetch_layer(bucket, peer, layer, below.as_deref(), &dirs.layers, &mut stats).await?
            }
        };
        below = Some(path);
    }
    let boot = match &m.boot {
        Some(b) => Some(BootSpec {
            kernel: fetch_boot_file(bucket, &b.kernel, &dirs.boot, &mut stats).await?,
            initrd: fetch_boot_file(bucket, &b.initrd, &dirs.boot, &mut stats).await?,
            cmdline: b.cmdline.clone(),
        }),
        None => None,
    };
    stats.rest_ms = t.elapsed().as_millis() as u64;
    let meta = ImageMeta {
        memory_mb: m.memory_mb,
        vcpus: m.vcpus,
        disk_size_mb: m.disk_size_mb,
        disk_layer: below.expect("validated: at least one layer"),
        envd_version: m.envd_version.clone(),
        size_bytes: m.size_bytes,
        frozen_ms: m.frozen_ms,
        capture_ms: m.capture_ms,
        memory: m.ram.is_some(),
        boot,
    };
    files::write_atomic(&tmp.join("meta.json"), &serde_json::to_vec_pretty(&meta)?)?;
    Ok(stats)
}

/// The image's RAM into `file` (sized already): chunks some local image holds copied from it,
/// the others from `peer` or else the bucket; `stats` gets the counts and times.
pub(super) async fn fetch_ram_into(
    bucket: &Bucket,
    peer: Option<&Peer>,
    ram: &manifest::Ram,
    file: File,
    dirs: &LocalDirs,
    stats: &mut DownloadStats,
) -> anyhow::Result<()> {
    let t = Instant::now();
    let sources = dirs.chunk_sources.clone();
    let cache = tokio::task::spawn_blocking(move || ChunkCache::scan(&sources)).await?;
    stats.scan_ms = t.elapsed().as_millis() as u64;
    let t = Instant::now();
    fetch_ram(bucket, peer, ram, file, &cache, stats).await?;
    stats.ram_ms = t.elapsed().as_millis() as u64;
    Ok(())
}

async fn fetch_ram(
    bucket: &Bucket,
    peer: Option<&Peer>,
    ram: &manifest::Ram,
    file: File,
    cache: &ChunkCache,
    stats: &mut DownloadStats,
) -> anyhow::Result<()> {
    anyhow::ensure!(file.metadata()?.len() == ram.size, "the RAM file is not as long as the image's RAM");
    let file = std::sync::Arc::new(file);
    // A chunk stored once may sit at several offsets: fetch it once, write it everywhere.
    // Owned keys: the futures below must be `Send` for any caller (a borrowed key makes the
    // closure's lifetime too specific for that).
    let mut offsets: HashMap<String, Vec<u64>> = HashMap::new();
    for (i, hash) in ram.chunks.iter().enumerate() {
        if let Some(h) = hash {
            offsets.entry(h.clone()).or_default().push(i as u64 * ram.chunk_size);
        }
    }
    let (size, chunk) = (ram.size, ram.chunk_size);
    let results: Vec<anyhow::Result<(Got, usize)>> = futures::stream::iter(offsets)
        .map(|(hash, offs)| {
            let file = file.clone();
            let chain: Vec<String> = ram.chain(&hash).into_iter().map(String::from).collect();
            async move {
                let want = chunk.min(size - offs[0]) as usize;
                // A chunk some local image holds is copied from there (checked against its hash).
                let local = local_chunk(cache, &hash, want).await?;
                let from_peer = match (&local, peer) {
                    (None, Some(p)) => peer_chunk(p, &hash, offs[0], want).await,
                    _ => None,
                };
                let (data, fetched) = match (local, from_peer) {
                    (Some(data), _) => (data, Got::Local),
                    (None, Some(data)) => (data, Got::Peer),
                    (None, None) => {
                        // The whole chunk a delta chain starts from may be local when the chunk is not.
                        let base = if chain.len() > 1 { local_chunk(cache, &chain[0], want).await? } else { None };
                        let (mut data, mut n) = match base {
                            Some(data) => (data, 0),
                            None => fetch_object(bucket, manifest::chunk_key(&chain[0]), chain[0].clone(), want).await?,
                        };
                        for d in &chain[1..] {
                            let (patch, m) = fetch_object(bucket, manifest::delta_key(d), d.clone(), delta::max_len(want)).await?;
                            data = delta::apply(&data, &patch)?;
                            n += m;
                        }
                        if chain.len() > 1 {
                            anyhow::ensure!(blake3::hash(&data).to_hex().as_str() == hash, "RAM chunk {hash} rebuilt from its deltas is corrupt");
                        }
                        (data, Got::Bucket(n))
                    }
                };
                let len = data.len();
                tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                    for off in offs {
                        let want = chunk.min(size - off) as usize;
                        anyhow::ensure!(data.len() == want, "RAM chunk {hash} has {} bytes, expected {want}", data.len());
                        file.write_all_at(&data, off)?;
                    }
                    Ok(())
                })
                .await??;
                Ok((fetched, len))
            }
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    for r in results {
        match r? {
            (Got::Bucket(n), _) => {
                stats.fetched_bytes += n;
                stats.fetched_chunks += 1;
            }
            (Got::Peer, len) => {
                stats.peer_bytes += len as u64;
                stats.peer_chunks += 1;
            }
            (Got::Local, _) => stats.local_chunks += 1,
        }
    }
    stats.ram_data_bytes = ram
        .chunks
        .iter()
        .enumerate()
        .filter(|(_, h)| h.is_some())
        .map(|(i, _)| ram.chunk_size.min(ram.size - i as u64 * ram.chunk_size))
        .sum();
    Ok(())
}

/// Where a RAM chunk came from (with the bytes received from the bucket).
enum Got {
    Local,
    Peer,
    Bucket(u64),
}

/// Chunk `hash` (at `offset` of the image's RAM) from `peer`, checked; `None` (and the peer
/// given up) when it cannot give it.
async fn peer_chunk(peer: &Peer, hash: &str, offset: u64, len: usize) -> Option<Vec<u8>> {
    if !peer.usable() {
        return None;
    }
    let got = async {
        let data = peer.ram(offset, len).await?;
        let data = tokio::task::spawn_blocking(move || (blake3::hash(&data), data)).await?;
        anyhow::ensure!(data.0.to_hex().as_str() == hash, "RAM chunk {hash} from the peer does not match its hash");
        Ok(data.1)
    }
    .await;
    got.map_err(|e| peer.give_up("a RAM chunk", &e)).ok()
}

/// Chunk `hash` from an image this node holds, if any does.
async fn local_chunk(cache: &ChunkCache, hash: &str, len: usize) -> anyhow::Result<Option<Vec<u8>>> {
    let Some(at) = cache.get(hash).cloned() else { return Ok(None) };
    let hash = hash.to_string();
    Ok(tokio::task::spawn_blocking(move || chunk_cache::read_local(&at, &hash, len)).await?)
}

/// A content-addressed object (RAM chunk, delta, device state, boot file) of at most `max`
/// bytes, checked against its hash; also the bytes received.
async fn fetch_object(bucket: &Bucket, key: String, hash: String, max: usize) -> anyhow::Result<(Vec<u8>, u64)> {
    let packed = bucket.get(&key).await?.ok_or_else(|| anyhow::anyhow!("{key} is missing from the object store"))?;
    let n = packed.len() as u64;
    let data = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u8>> {
        let data = zstd::bulk::decompress(&packed, max)?;
        anyhow::ensure!(blake3::hash(&data).to_hex().as_str() == hash, "{key} is corrupt");
        Ok(data)
    })
    .await??;
    Ok((data, n))
}

async fn fetch_blob(bucket: &Bucket, key: &str, blob: &Blob, stats: &mut DownloadStats) -> anyhow::Result<Vec<u8>> {
    let (data, n) = fetch_object(bucket, key.to_string(), blob.hash.clone(), blob.size as usize).await?;
    stats.fetched_bytes += n;
    anyhow::ensure!(data.len() as u64 == blob.size, "{key} is corrupt");
    Ok(data)
}

async fn fetch_boot_file(bucket: &Bucket, blob: &Blob, dir: &Path, stats: &mut DownloadStats) -> anyhow::Result<PathBuf> {
    let path = dir.join(&blob.hash);
    if path.is_file() {
        return Ok(path);
    }
    let data = fetch_blob(bucket, &manifest::boot_key(&blob.hash), blob, stats).await?;
    std::fs::create_dir_all(dir)?;
    files::write_atomic(&path, &data)?;
    Ok(path)
}

/// Streams a layer into `dir` (from `peer` if it can, else from the bucket), checks its hash,
/// points its backing file at the local copy of the layer below, and only then gives it its
/// name.
async fn fetch_layer(
    bucket: &Bucket,
    peer: Option<&Peer>,
    layer: &manifest::Layer,
    below: Option<&Path>,
    dir: &Path,
    stats: &mut DownloadStats,
) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let dest = dir.join(&layer.name);
    let tmp = dir.join(format!(".fetch-{}-{}", layer.name, crate::vm::random_id()));
    let result = async {
        let from_peer = match peer.filter(|p| p.usable()) {
            Some(p) => match receive_layer_from_peer(p, layer, &tmp).await {
                Ok(file) => {
                    stats.peer_bytes += layer.size;
                    stats.peer_layers += 1;
                    Some(file)
                }
                Err(e) => {
                    p.give_up("a disk layer", &e);
                    None
                }
            },
            None => None,
        };
        let file = match from_peer {
            Some(file) => file,
            None => receive_layer_from_bucket(bucket, layer, &tmp, stats).await?,
        };
        file.sync_all()?;
        if let Some(below) = below {
            // The header names the layer below by the path it had on the node that froze it.
            let status = tokio::process::Command::new("qemu-img")
                .args(["rebase", "-u", "-f", "qcow2", "-F", "qcow2", "-b"])
                .arg(below)
                .arg(&tmp)
                .status()
                .await?;
            anyhow::ensure!(status.success(), "qemu-img rebase of layer {} failed", layer.name);
            files::fsync_path(&tmp)?;
        }
        if dest.is_file() {
            // Fetched meanwhile by another restore: the same immutable layer.
            let _ = std::fs::remove_file(&tmp);
        } else {
            std::fs::rename(&tmp, &dest)?;
            files::fsync_path(dir)?;
        }
        anyhow::Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(dest)
}

/// The layer as the peer has it (uncompressed) into `tmp`, checked against the manifest.
async fn receive_layer_from_peer(peer: &Peer, layer: &manifest::Layer, tmp: &Path) -> anyhow::Result<File> {
    let mut out = HashingFile { file: File::create(tmp)?, hasher: blake3::Hasher::new(), len: 0 };
    let mut stream = std::pin::pin!(peer.layer(&layer.name).await?);
    while let Some(part) = stream.try_next().await? {
        anyhow::ensure!(out.len + part.len() as u64 <= layer.size, "disk layer {} from the peer is too long", layer.name);
        std::io::Write::write_all(&mut out, &part)?;
    }
    out.checked(layer, "from the peer")
}

/// The layer from the bucket (zstd) into `tmp`, checked against the manifest.
async fn receive_layer_from_bucket(bucket: &Bucket, layer: &manifest::Layer, tmp: &Path, stats: &mut DownloadStats) -> anyhow::Result<File> {
    let out = HashingFile { file: File::create(tmp)?, hasher: blake3::Hasher::new(), len: 0 };
    let mut decoder = zstd::stream::write::Decoder::new(out)?;
    let mut stream = bucket.get_stream(&manifest::layer_key(&layer.name)).await.map_err(|e| match e {
        object_store::Error::NotFound { .. } => {
            anyhow::anyhow!("disk layer {} is missing from the object store", layer.name)
        }
        e => e.into(),
    })?;
    while let Some(part) = stream.try_next().await? {
        stats.fetched_bytes += part.len() as u64;
        std::io::Write::write_all(&mut decoder, &part)?;
    }
    std::io::Write::flush(&mut decoder)?;
    decoder.into_inner().checked(layer, "in the object store")
}

/// Writes a decompressed layer to its file while hashing it.
struct HashingFile {
    file: File,
    hasher: blake3::Hasher,
    len: u64,
}

impl HashingFile {
    /// The file, if what was written is exactly `layer` (`whence` names the source in errors).
    fn checked(self, layer: &manifest::Layer, whence: &str) -> anyhow::Result<File> {
        let hash = self.hasher.finalize().to_hex().to_string();
        anyhow::ensure!(self.len == layer.size && hash == layer.hash, "disk layer {} is corrupt {whence}", layer.name);
        Ok(self.file)
    }
}

impl std::io::Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}
