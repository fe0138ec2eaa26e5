//! Garbage collection of the bucket (`sandboxd::cluster::objects_gc`) against a real S3 server
//! (s3s-fs on a loopback port; `tests/cluster/s3s.sh path` builds it) holding images
//! synthesized with `qemu-img` / `qemu-io`. No VMs. Objects are made old by moving their files'
//! modification times back in s3s-fs's directory, which is what it reports as last-modified.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::TryStreamExt;
use sandboxd::cluster::Bucket;
use sandboxd::cluster::download::download_image;
use sandboxd::cluster::manifest::{self, CHUNK_SIZE, Manifest};
use sandboxd::cluster::objects_gc::{GcStats, collect};
use sandboxd::cluster::upload::upload_image;
use sandboxd::vm::Runtime;

use super::common::{Node, S3, bucket, make_image, pattern, run, start_s3};

const HOUR: Duration = Duration::from_secs(3600);

/// Moves the last-modified time of `key` in `s3://images/gc` back by `age`.
fn backdate(s3: &S3, key: &str, age: Duration) {
    let file = fs::File::options().write(true).open(s3.root.path().join("images/gc").join(key)).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

/// s3s-fs serving bucket `images`, and a [`Bucket`] on `s3://images/gc`.
fn start() -> (S3, Bucket) {
    let s3 = start_s3("images");
    let bucket = bucket(&s3, "s3://images/gc");
    (s3, bucket)
}

/// A template and a snapshot on top of it, uploaded. They share the template's disk layer, the
/// boot files and two RAM chunks; each has two or more chunks and a device state of its own.
struct TwoImages {
    node: Node,
    tpl: (Manifest, PathBuf),
    snap: (Manifest, PathBuf),
}

async fn upload_two(bucket: &Bucket) -> TwoImages {
    let node = Node::new();
    let tpl_data: HashMap<u64, u64> = [(0, 1), (1, 2), (2, 3), (3, 4)].into();
    let snap_data: HashMap<u64, u64> = [(0, 1), (1, 2), (2, 30), (3, 40), (9, 50)].into();
    let tpl_dir = make_image(&node, "tpl", 4, &tpl_data, None, 5);
    let base = Runtime::read_meta(&tpl_dir).unwrap().disk_layer;
    let snap_dir = make_image(&node, "snap", 4, &snap_data, Some(&base), 6);
    let (tpl, _) = upload_image(bucket, "tpl", &tpl_dir, &[]).await.unwrap();
    let (snap, _) = upload_image(bucket, "snap", &snap_dir, &[]).await.unwrap();
    TwoImages { node, tpl: (tpl, tpl_dir), snap: (snap, snap_dir) }
}

/// Every object under the bucket's prefix, with its stored size.
async fn objects(bucket: &Bucket) -> BTreeMap<String, u64> {
    let listed: Vec<_> = bucket.list_meta("").try_collect().await.unwrap();
    listed.into_iter().map(|o| (o.key, o.size)).collect()
}

/// The keys image `m` needs: its manifest and everything the manifest names.
fn keys(m: &Manifest) -> BTreeSet<String> {
    let mut keys = BTreeSet::from([manifest::manifest_key(&m.image_id)]);
    keys.extend(m.ram.iter().flat_map(|r| r.objects()));
    keys.extend(m.state.iter().map(|s| manifest::state_key(&s.hash)));
    keys.extend(m.layers.iter().map(|l| manifest::layer_key(&l.name)));
    keys.extend(m.boot.iter().flat_map(|b| [&b.kernel, &b.initrd]).map(|b| manifest::boot_key(&b.hash)));
    keys
}

fn live(ids: &[&str]) -> HashSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// An object no manifest names, as an upload in progress leaves before its manifest.
async fn put_orphan_chunk(bucket: &Bucket, seed: u64) -> String {
    let data = pattern(seed, CHUNK_SIZE as usize);
    let key = manifest::chunk_key(&blake3::hash(&data).to_hex());
    bucket.put(&key, Bytes::from(zstd::bulk::compress(&data, 1).unwrap())).await.unwrap();
    key
}

fn counts(s: &GcStats) -> (usize, usize, usize, usize) {
    (s.manifests_deleted, s.objects_deleted, s.objects_kept_young, s.manifests_unreadable)
}

#[tokio::test]
async fn deleting_a_template_keeps_what_its_snapshot_still_names() {
    let (_s3, bucket) = start();
    let two = upload_two(&bucket).await;
    let (tpl, snap) = (keys(&two.tpl.0), keys(&two.snap.0));
    let before = objects(&bucket).await;
    assert_eq!(before.keys().cloned().collect::<BTreeSet<_>>(), &tpl | &snap);
    // What the template alone names: its manifest, its device state and two chunks.
    let own: BTreeSet<String> = &tpl - &snap;
    assert_eq!(own.len(), 4, "{own:?}");
    let base_layer = manifest::layer_key("tpl-disk.qcow2");
    let shared = &tpl & &snap;
    assert!(shared.contains(&base_layer), "{shared:?}");
    assert_eq!(shared.iter().filter(|k| k.starts_with("chunks/")).count(), 2, "{shared:?}");

    let stats = collect(&bucket, &live(&["snap"]), Duration::ZERO).await.unwrap();
    let after = objects(&bucket).await;
    assert_eq!(after.keys().cloned().collect::<BTreeSet<_>>(), snap, "exactly what the snapshot names is left");
    assert_eq!(counts(&stats), (1, 3, 0, 0), "{stats:?}");
    assert_eq!(stats.bytes_freed, own.iter().map(|k| before[k]).sum::<u64>());

    // The snapshot, template layer and all, still restores on another node.
    let other = Node::new();
    let dest = other.images().join("snap");
    let down = download_image(&bucket, "snap", &dest, &other.local(), None).await.unwrap();
    assert_eq!(down.fetched_layers, 2);
    let src = &two.snap.1;
    assert_eq!(fs::read(dest.join("mem.ram")).unwrap(), fs::read(src.join("mem.ram")).unwrap());
    assert_eq!(fs::read(dest.join("state.bin")).unwrap(), fs::read(src.join("state.bin")).unwrap());
    let (mine, theirs) = (Runtime::read_meta(src).unwrap().disk_layer, Runtime::read_meta(&dest).unwrap().disk_layer);
    run(Command::new("qemu-img").args(["compare", "-q", "-f", "qcow2", "-F", "qcow2"]).arg(&mine).arg(&theirs));
    assert!(download_image(&bucket, "tpl", &other.images().join("tpl"), &other.local(), None).await.is_err());

    // Nothing more to do: a second run deletes nothing.
    let again = collect(&bucket, &live(&["snap"]), Duration::ZERO).await.unwrap();
    assert_eq!((counts(&again), again.bytes_freed), ((0, 0, 0, 0), 0), "{again:?}");
    assert_eq!(objects(&bucket).await, after);
    drop(two.node);
}

#[tokio::test]
async fn an_upload_in_progress_survives_a_collection_within_the_grace_period() {
    let (s3, bucket) = start();
    let two = upload_two(&bucket).await;
    let snap = keys(&two.snap.0);
    // An upload running now has written a chunk but not its manifest yet; a chunk orphaned long
    // ago is also there. And an image uploaded a moment ago that the database does not list yet:
    // its manifest is in the bucket, the caller's live set does not have it.
    let young = put_orphan_chunk(&bucket, 77).await;
    let old = put_orphan_chunk(&bucket, 78).await;
    backdate(&s3, &old, 2 * HOUR);
    for key in &keys(&two.tpl.0) - &snap {
        backdate(&s3, &key, 2 * HOUR);
    }
    let mut unrecorded = two.snap.0.clone();
    unrecorded.image_id = "unrecorded".into();
    bucket.put("images/unrecorded.json", serde_json::to_vec(&unrecorded).unwrap().into()).await.unwrap();

    let stats = collect(&bucket, &live(&["snap"]), HOUR).await.unwrap();
    let left: BTreeSet<String> = objects(&bucket).await.into_keys().collect();
    assert!(left.contains(&young), "the chunk of the upload in progress was deleted");
    assert!(left.contains("images/unrecorded.json"), "a manifest not yet recorded was deleted");
    assert!(!left.contains(&old), "an orphan older than the grace period was kept");
    // The template's manifest, state and own chunks are older than grace: gone, as is `old`.
    assert_eq!(counts(&stats), (1, 4, 2, 0), "{stats:?}");
    assert!(snap.is_subset(&left));

    // Once the grace period is over (here: none), both go.
    let stats = collect(&bucket, &live(&["snap"]), Duration::ZERO).await.unwrap();
    assert_eq!(counts(&stats), (1, 1, 0, 0), "{stats:?}");
    let left: BTreeSet<String> = objects(&bucket).await.into_keys().collect();
    assert_eq!(left, snap);
}

#[tokio::test]
async fn with_nothing_live_and_no_grace_the_bucket_is_emptied() {
    let (_s3, bucket) = start();
    let _two = upload_two(&bucket).await;
    put_orphan_chunk(&bucket, 77).await;
    let before = objects(&bucket).await;
    let manifests = before.keys().filter(|k| k.starts_with("images/")).count();
    assert_eq!(manifests, 2);
    assert!(before.len() > 10, "{before:?}");

    let stats = collect(&bucket, &HashSet::new(), Duration::ZERO).await.unwrap();
    assert_eq!(objects(&bucket).await, BTreeMap::new());
    assert_eq!(counts(&stats), (2, before.len() - 2, 0, 0), "{stats:?}");
    assert_eq!(stats.bytes_freed, before.values().sum::<u64>());
}

#[tokio::test]
async fn a_manifest_this_node_cannot_read_stops_the_sweep() {
    let (s3, bucket) = start();
    let two = upload_two(&bucket).await;
    let old = put_orphan_chunk(&bucket, 77).await;
    backdate(&s3, &old, 2 * HOUR);
    // A newer sandboxd's manifest (whose objects this one cannot name), and a truncated one.
    bucket.put("images/future.json", Bytes::from_static(br#"{"format": 3, "parts": ["chunks/x"]}"#)).await.unwrap();
    backdate(&s3, "images/future.json", 2 * HOUR);
    bucket.put("images/broken.json", Bytes::from_static(br#"{"format": 1, "image_id": "bro"#)).await.unwrap();
    let everything = live(&["tpl", "snap", "future", "broken"]);

    let stats = collect(&bucket, &everything, HOUR).await.unwrap();
    assert_eq!(counts(&stats), (0, 0, 1, 2), "{stats:?}");
    assert!(objects(&bucket).await.contains_key(&old));

    // Once old, the truncated manifest goes; the newer-format one still stops the sweep.
    backdate(&s3, "images/broken.json", 2 * HOUR);
    let stats = collect(&bucket, &everything, HOUR).await.unwrap();
    assert_eq!(counts(&stats), (1, 0, 0, 1), "{stats:?}");
    let left = objects(&bucket).await;
    assert!(left.contains_key(&old) && left.contains_key("images/future.json") && !left.contains_key("images/broken.json"));

    // When the database no longer wants it, it goes like any other, and the sweep runs.
    let stats = collect(&bucket, &live(&["tpl", "snap"]), HOUR).await.unwrap();
    assert_eq!(counts(&stats), (1, 1, 0, 0), "{stats:?}");
    let left: BTreeSet<String> = objects(&bucket).await.into_keys().collect();
    assert_eq!(left, &keys(&two.tpl.0) | &keys(&two.snap.0));
}
