//! The first restore of an image a node has never seen, with nothing between the fetch and the
//! guest: the device state, disk layers and boot files are fetched into a private directory
//! first, and the RAM straight into the restore's own RAM file while QEMU starts (a
//! [`RamFill`]), instead of into the node's copy of the image and then copied from there. That
//! copy wrote the image's RAM into new memory a second time on the restore's path, which on a
//! machine whose idle memory is slow to touch again (a VM whose host reclaims it) cost as much
//! as the fetch. The node's own copy is fetched afterwards, off the restore's path (the
//! manager does it), for the next restores and the peers.
//!
//! `SANDBOXD_DIRECT_FETCH=0` turns this off: every fetch goes to the node's copy first.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use futures::FutureExt;

use super::Bucket;
use super::download::{self, DownloadStats, LocalDirs};
use super::peer::Peer;
use crate::vm::{RamFill, VmError};

/// `SANDBOXD_DIRECT_FETCH` (default on).
pub fn enabled() -> bool {
    std::env::var("SANDBOXD_DIRECT_FETCH").map(|v| v.trim() != "0").unwrap_or(true)
}

/// Image `image_id` ready for one restore: `dir` (private, deleted when dropped) holds all
/// but its RAM, which `fill` fetches into the restore's RAM file.
pub struct Direct {
    pub dir: PrivateDir,
    pub fill: RamFill,
}

/// A directory removed with everything in it when dropped (and, were sandboxd killed first, at
/// its next start: a name starting with `.` in the snapshots directory).
pub struct PrivateDir(PathBuf);

impl PrivateDir {
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Fetches all of image `image_id` but its RAM into a new private directory under `parent`;
/// `None` for an image without memory (nothing to gain: the caller fetches it as usual).
/// `on_done` gets the whole download's counts once the RAM is in.
pub async fn prepare(
    bucket: &Bucket,
    image_id: &str,
    parent: &Path,
    dirs: &LocalDirs,
    peer: Option<Peer>,
    on_done: impl FnOnce(&DownloadStats) + Send + Sync + 'static,
) -> anyhow::Result<Option<Direct>> {
    let started = Instant::now();
    let m = download::fetch_manifest(bucket, image_id)
        .await?
        .with_context(|| format!("image {image_id} is not in the object store {}", bucket.url()))?;
    let Some(ram) = m.ram.clone() else { return Ok(None) };
    std::fs::create_dir_all(parent)?;
    let dir = PrivateDir(parent.join(format!(".restore-{image_id}-{}", crate::vm::random_id())));
    std::fs::create_dir(dir.path())?;
    let peer = peer.map(Arc::new);
    let rest = download::fill_rest(bucket, peer.as_deref(), &m, dir.path(), dirs).await?;
    let (bucket, dirs, id, len) = (bucket.clone(), dirs.clone(), image_id.to_string(), ram.size);
    let fill = move |file: std::fs::File| {
        async move {
            let mut stats = DownloadStats::default();
            download::fetch_ram_into(&bucket, peer.as_deref(), &ram, file, &dirs, &mut stats)
                .await
                .map_err(|e| VmError::Failed(format!("fetching the RAM of image {id}: {e:#}")))?;
            stats.add_rest(&rest);
            stats.ms = started.elapsed().as_millis() as u64;
            download::log_fetch(&id, &stats, peer.as_deref(), true, bucket.url());
            on_done(&stats);
            Ok(())
        }
        .boxed()
    };
    Ok(Some(Direct { dir, fill: RamFill { len, fill: Box::new(fill) } }))
}
