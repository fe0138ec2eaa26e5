//! Garbage collection of the bucket: manifests of images the database no longer wants, then
//! every chunk, device state, disk layer and boot file that no remaining manifest names.
//!
//! Invariants:
//! - Nothing younger than `grace` (by the object store's last-modified time) is deleted. An
//!   upload writes its chunks, state, layers and boot files before its manifest, so while it
//!   runs those objects are named by no manifest; `grace` must exceed the longest upload plus
//!   any clock skew between the nodes and the object store (an hour is plenty).
//! - That holds for manifests too, even of images not in `live`: between an upload writing the
//!   manifest and the database recording the image, the image is in the bucket but not yet in
//!   what the caller computed as live.
//! - An object stays while any remaining manifest names it: a template and its snapshots share
//!   chunks, boot files and the disk layers below their own.
//! - If a remaining manifest cannot be read (a newer [`FORMAT`], or unparseable and young),
//!   what it names is unknown, so no object is deleted in that run. Unparseable manifests older
//!   than `grace` are deleted with a warning; newer-format ones never are.
//! - Callers serialize runs cluster-wide (one node at a time, under a PostgreSQL advisory lock);
//!   two concurrent runs would not corrupt anything, but would race on every delete.
//!
//! Not covered here: an upload that finds an object already in the bucket does not rewrite it
//! (see [`super::upload`], and the per-process cache of keys known to exist in [`Bucket`]), so
//! an old object that no manifest names any more can be deleted while a new upload is about to
//! name it again. Closing that needs the upload side: uploads holding the advisory lock shared
//! while a run holds it exclusively, and the known-keys cache dropped after a run.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, TimeDelta, Utc};
use futures::{StreamExt, TryStreamExt};

use super::Bucket;
use super::bucket::Listed;
use super::manifest::{self, FORMAT, Manifest};

/// Deletes (and manifest reads) in flight at once.
const PARALLEL: usize = 16;
/// The directories whose objects are only ever named by manifests.
const SWEPT: [&str; 5] = ["chunks", "deltas", "state", "layers", "boot"];

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct GcStats {
    /// `images/<id>.json` deleted: images not in `live`, and unparseable manifests.
    pub manifests_deleted: usize,
    /// Objects deleted under `chunks/`, `state/`, `layers/` and `boot/`.
    pub objects_deleted: usize,
    /// Stored (compressed) bytes of everything deleted, manifests included.
    pub bytes_freed: u64,
    /// Manifests and objects that would have been deleted but are younger than `grace`.
    pub objects_kept_young: usize,
    /// Manifests kept that this node cannot read; while there are any, no object is deleted.
    pub manifests_unreadable: usize,
}

/// Deletes from `bucket` the manifests of images not in `live` (the image IDs the database
/// still wants), then every object no remaining manifest names; nothing younger than `grace`.
/// Callers must not run two at once (see the module header).
pub async fn collect(bucket: &Bucket, live: &HashSet<String>, grace: Duration) -> anyhow::Result<GcStats> {
    let started = Instant::now();
    let cutoff = TimeDelta::from_std(grace).ok().and_then(|g| Utc::now().checked_sub_signed(g));
    let old = |t: DateTime<Utc>| cutoff.is_some_and(|c| t <= c);
    let mut stats = GcStats::default();

    let listed: Vec<Listed> = bucket.list_meta("images").try_collect().await.context("list manifests")?;
    let (mut doomed, mut kept) = (Vec::new(), Vec::new());
    for object in listed {
        // Anything under images/ that is not `<id>.json` was not written by sandboxd: left alone.
        let Some(id) = object.key.strip_prefix("images/").and_then(|k| k.strip_suffix(".json")) else { continue };
        if !manifest::safe_name(id) {
            continue;
        }
        if live.contains(id) {
            kept.push(object);
        } else if old(object.last_modified) {
            doomed.push(object);
        } else {
            stats.objects_kept_young += 1;
            kept.push(object);
        }
    }
    let (n, bytes) = delete_all(bucket, futures::stream::iter(doomed.into_iter().map(Ok))).await.context("delete manifests")?;
    stats.manifests_deleted += n;
    stats.bytes_freed += bytes;

    let mut referenced = HashSet::new();
    let mut corrupt = Vec::new();
    let mut reads = futures::stream::iter(kept)
        .map(|object| async move { (bucket.get(&object.key).await, object) })
        .buffer_unordered(PARALLEL);
    while let Some((raw, object)) = reads.next().await {
        // Gone since the listing: nothing of it to keep.
        let Some(raw) = raw.with_context(|| format!("read {}", object.key))? else { continue };
        match read_manifest(&raw) {
            Ok(m) => add_references(&m, &mut referenced),
            Err(Unreadable::Format(format)) => {
                tracing::warn!(
                    key = object.key,
                    format,
                    "manifest of an unknown format (this sandboxd reads {FORMAT}): no object is deleted"
                );
                stats.manifests_unreadable += 1;
            }
            Err(Unreadable::Corrupt(e)) if old(object.last_modified) => {
                tracing::warn!(key = object.key, "deleting a manifest that cannot be parsed: {e}");
                corrupt.push(object);
            }
            Err(Unreadable::Corrupt(e)) => {
                tracing::warn!(key = object.key, "manifest cannot be parsed (kept until older than the grace period): {e}");
                stats.objects_kept_young += 1;
                stats.manifests_unreadable += 1;
            }
        }
    }
    let (n, bytes) = delete_all(bucket, futures::stream::iter(corrupt.into_iter().map(Ok))).await.context("delete manifests")?;
    stats.manifests_deleted += n;
    stats.bytes_freed += bytes;

    if stats.manifests_unreadable == 0 {
        for dir in SWEPT {
            let mut young = 0;
            let unreferenced = bucket.list_meta(dir).try_filter(|o| futures::future::ready(!referenced.contains(&o.key)));
            let doomed = unreferenced.try_filter(|o| {
                let delete = old(o.last_modified);
                young += usize::from(!delete);
                futures::future::ready(delete)
            });
            let (n, bytes) = delete_all(bucket, doomed).await.with_context(|| format!("sweep {dir}/"))?;
            stats.objects_deleted += n;
            stats.bytes_freed += bytes;
            stats.objects_kept_young += young;
        }
    }
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        manifests = stats.manifests_deleted,
        objects = stats.objects_deleted,
        freed_mib = stats.bytes_freed >> 20,
        young = stats.objects_kept_young,
        unreadable = stats.manifests_unreadable,
        "garbage collected {}",
        bucket.url()
    );
    Ok(stats)
}

/// Deletes every listed object, [`PARALLEL`] at a time; the count and stored bytes deleted.
/// An object already gone counts as deleted.
async fn delete_all(
    bucket: &Bucket,
    objects: impl futures::Stream<Item = object_store::Result<Listed>>,
) -> object_store::Result<(usize, u64)> {
    objects
        .map_ok(|o| async move { bucket.delete(&o.key).await.map(|()| o.size) })
        .try_buffer_unordered(PARALLEL)
        .try_fold((0, 0), |(n, bytes), size| futures::future::ready(Ok((n + 1, bytes + size))))
        .await
}

enum Unreadable {
    /// A manifest of another layout version; what it names is unknown.
    Format(u32),
    Corrupt(serde_json::Error),
}

fn read_manifest(raw: &[u8]) -> Result<Manifest, Unreadable> {
    #[derive(serde::Deserialize)]
    struct Version {
        format: u32,
    }
    // The version first: a newer layout need not parse as this one.
    if let Ok(v) = serde_json::from_slice::<Version>(raw)
        && !manifest::readable(v.format)
    {
        return Err(Unreadable::Format(v.format));
    }
    serde_json::from_slice(raw).map_err(Unreadable::Corrupt)
}

fn add_references(m: &Manifest, keys: &mut HashSet<String>) {
    keys.extend(m.ram.iter().flat_map(|r| r.objects()));
    keys.extend(m.state.iter().map(|s| manifest::state_key(&s.hash)));
    keys.extend(m.layers.iter().map(|l| manifest::layer_key(&l.name)));
    keys.extend(m.boot.iter().flat_map(|b| [&b.kernel, &b.initrd]).map(|b| manifest::boot_key(&b.hash)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_of_another_format_is_not_mistaken_for_a_corrupt_one() {
        assert!(matches!(read_manifest(br#"{"format": 3, "chunks": "elsewhere"}"#), Err(Unreadable::Format(3))));
        assert!(matches!(read_manifest(b"{\"format\": 1, \"image_id\": "), Err(Unreadable::Corrupt(_))));
        assert!(matches!(read_manifest(b"not json"), Err(Unreadable::Corrupt(_))));
    }

    #[test]
    fn every_kind_of_object_a_manifest_names_is_referenced() {
        let raw = br#"{"format":2,"image_id":"a","memory_mb":1,"vcpus":1,"disk_size_mb":1,"envd_version":"x",
            "size_bytes":1,"ram":{"size":4,"chunk_size":1,"chunks":["c1",null,"c1","c2"],"deltas":{"c2":["c0","d1","d2"]}},
            "state":{"hash":"s","size":1},
            "layers":[{"name":"top.qcow2","size":1,"hash":"h"},{"name":"base.qcow2","size":1,"hash":"h"}],
            "boot":{"kernel":{"hash":"k","size":1},"initrd":{"hash":"i","size":1},"cmdline":""}}"#;
        let Ok(m) = read_manifest(raw) else { panic!("manifest did not parse") };
        let mut keys = HashSet::new();
        add_references(&m, &mut keys);
        let want: HashSet<String> =
            ["chunks/c1", "chunks/c0", "deltas/d1", "deltas/d2", "state/s", "layers/top.qcow2", "layers/base.qcow2", "boot/k", "boot/i"]
                .map(String::from)
                .into();
        assert_eq!(keys, want);
    }
}
