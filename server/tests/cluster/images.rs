//! Images to S3-compatible object storage and back (`sandboxd::cluster`), against a real S3
//! server (s3s-fs, started here on a loopback port; `tests/cluster/s3s.sh path` builds it) and
//! real qcow2 chains made with `qemu-img` / `qemu-io`. No VMs: the images are synthesized, so
//! every byte can be checked.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use sandboxd::cluster::download::download_image;
use sandboxd::cluster::manifest::CHUNK_SIZE;
use sandboxd::cluster::upload::upload_image;
use sandboxd::vm::Runtime;

use super::common::{MIB, Node, bucket, make_image, pattern, run, start_s3};

fn same_disk(a: &Path, b: &Path) {
    run(Command::new("qemu-img").args(["compare", "-q", "-f", "qcow2", "-F", "qcow2"]).arg(a).arg(b));
}

#[tokio::test]
async fn an_image_restored_on_another_node_is_byte_for_byte_the_original() {
    let s3 = start_s3("images");
    let bucket = bucket(&s3, "s3://images/cluster-a");
    let (a, b) = (Node::new(), Node::new());
    // 16 MiB of RAM = 64 chunks: 10 with data, two of them equal, the rest zero.
    let mut data: HashMap<u64, u64> = (0..9).map(|i| (i * 7, i)).collect();
    data.insert(63, 3); // the same bytes as chunk 21
    let base = make_image(&a, "base", 16, &data, None, 1);
    let base_meta = Runtime::read_meta(&base).unwrap();
    let src = make_image(&a, "snap1", 16, &data, Some(&base_meta.disk_layer), 2);

    let (manifest, up) = upload_image(&bucket, "snap1", &src, &[]).await.unwrap();
    assert_eq!(up.chunks, 64);
    assert_eq!(up.zero_chunks, 54);
    assert_eq!(up.uploaded_chunks, 9, "equal chunks are stored once");
    assert_eq!(manifest.layers.len(), 2);
    let stored: Vec<_> = bucket.list("chunks").await.unwrap();
    assert_eq!(stored.len(), 9, "{stored:?}");

    let dest = b.images().join("snap1");
    let down = download_image(&bucket, "snap1", &dest, &b.local(), None).await.unwrap();
    assert_eq!(down.fetched_chunks, 9);
    assert_eq!(down.fetched_layers, 2);
    assert_eq!(down.ram_data_bytes, 10 * CHUNK_SIZE);
    assert_eq!(fs::read(dest.join("mem.ram")).unwrap(), fs::read(src.join("mem.ram")).unwrap());
    assert_eq!(fs::read(dest.join("state.bin")).unwrap(), fs::read(src.join("state.bin")).unwrap());
    // Zero chunks stay holes on the new node.
    assert!(fs::metadata(dest.join("mem.ram")).map(|m| std::os::unix::fs::MetadataExt::blocks(&m) * 512).unwrap() <= 11 * CHUNK_SIZE);

    let meta = Runtime::read_meta(&dest).unwrap();
    assert!(meta.disk_layer.starts_with(b.layers()), "{}", meta.disk_layer.display());
    // The fetched top layer now sits on B's copy of the base layer, and the disks read the same.
    let backing = sandboxd::vm::files::qcow2_backing(&meta.disk_layer).unwrap().unwrap();
    assert_eq!(backing, b.layers().join("base-disk.qcow2"));
    same_disk(&Runtime::read_meta(&src).unwrap().disk_layer, &meta.disk_layer);
    let boot = meta.boot.unwrap();
    assert_eq!(fs::read(boot.kernel).unwrap(), pattern(7, 100_000));
    assert_eq!(fs::read(boot.initrd).unwrap(), pattern(8, 50_000));
    assert_eq!((meta.memory_mb, meta.frozen_ms, meta.capture_ms), (16, 5, 9));
    // Nothing half-written is left next to the image.
    let leftovers: Vec<_> = fs::read_dir(b.images()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("snap1")]);
}

#[tokio::test]
async fn a_second_snapshot_uploads_only_what_changed() {
    let s3 = start_s3("images");
    let bucket = bucket(&s3, "s3://images");
    let a = Node::new();
    // 64 MiB, all of it data.
    let first: HashMap<u64, u64> = (0..256).map(|i| (i, i)).collect();
    let snap1 = make_image(&a, "snap1", 64, &first, None, 1);
    let (_, up1) = upload_image(&bucket, "snap1", &snap1, &[]).await.unwrap();
    assert_eq!(up1.uploaded_chunks, 256);

    // The guest then changes 16 MiB (64 chunks) and the next snapshot freezes a new top layer.
    let mut second = first.clone();
    for i in (0..256).step_by(4) {
        second.insert(i, 10_000 + i);
    }
    let layer1 = Runtime::read_meta(&snap1).unwrap().disk_layer;
    let snap2 = make_image(&a, "snap2", 64, &second, Some(&layer1), 3);
    let (_, up2) = upload_image(&bucket, "snap2", &snap2, &[]).await.unwrap();
    assert_eq!(up2.uploaded_chunks, 64);
    assert_eq!(up2.uploaded_layers, 1, "the frozen layer below is in the bucket already");
    let changed = 16 * MIB;
    let top = fs::metadata(Runtime::read_meta(&snap2).unwrap().disk_layer).unwrap().len();
    let state = 300_000;
    let ram_sent = up2.uploaded_plain_bytes - top - state;
    assert_eq!(ram_sent, changed);
    assert!(up2.uploaded_bytes <= changed + changed / 10 + top + state, "{up2:?}");

    // Uploading again (a retry after a crash) sends nothing but the manifest.
    let (_, again) = upload_image(&bucket, "snap2", &snap2, &[]).await.unwrap();
    assert_eq!((again.uploaded_chunks, again.uploaded_layers), (0, 0));
    assert!(again.uploaded_bytes < 64 << 10, "{again:?}");
}

#[tokio::test]
async fn a_corrupt_or_missing_object_fails_the_download_and_leaves_nothing() {
    let s3 = start_s3("images");
    let bucket = bucket(&s3, "s3://images/p");
    let (a, b) = (Node::new(), Node::new());
    let data: HashMap<u64, u64> = (0..4).map(|i| (i, i + 50)).collect();
    let src = make_image(&a, "snap", 4, &data, None, 4);
    let (manifest, _) = upload_image(&bucket, "snap", &src, &[]).await.unwrap();

    let missing = download_image(&bucket, "nope", &b.images().join("nope"), &b.local(), None).await.unwrap_err();
    assert!(missing.to_string().contains("not in the object store"), "{missing}");

    // Replace one chunk object with other (valid, compressed) bytes.
    let hash = manifest.ram.as_ref().unwrap().chunks[2].clone().unwrap();
    let object = s3.root.path().join("images/p/chunks").join(&hash);
    let other = zstd::bulk::compress(&pattern(99, CHUNK_SIZE as usize), 1).unwrap();
    fs::write(&object, other).unwrap();
    let dest = b.images().join("snap");
    let err = download_image(&bucket, "snap", &dest, &b.local(), None).await.unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
    assert!(!dest.exists());
    assert_eq!(fs::read_dir(b.images()).unwrap().count(), 0, "no half-fetched directory is left");

    // A chunk that is gone is named.
    fs::remove_file(&object).unwrap();
    let err = download_image(&bucket, "snap", &dest, &b.local(), None).await.unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    assert!(!dest.exists());
}

#[tokio::test]
async fn a_layer_the_node_already_has_is_not_fetched() {
    let s3 = start_s3("images");
    let bucket = bucket(&s3, "s3://images");
    let (a, b) = (Node::new(), Node::new());
    let data: HashMap<u64, u64> = [(0, 1)].into();
    let base = make_image(&a, "tpl", 4, &data, None, 5);
    let base_layer = Runtime::read_meta(&base).unwrap().disk_layer;
    let snap = make_image(&a, "snap", 4, &data, Some(&base_layer), 6);
    upload_image(&bucket, "snap", &snap, &[]).await.unwrap();
    // B has the template's layer in its templates directory (built there too).
    let templates = b.dir.path().join("templates-layers");
    fs::create_dir_all(&templates).unwrap();
    fs::copy(&base_layer, templates.join("tpl-disk.qcow2")).unwrap();
    let mut local = b.local();
    local.layer_sources.push(templates.clone());
    let down = download_image(&bucket, "snap", &b.images().join("snap"), &local, None).await.unwrap();
    assert_eq!(down.fetched_layers, 1);
    let top = Runtime::read_meta(&b.images().join("snap")).unwrap().disk_layer;
    assert_eq!(sandboxd::vm::files::qcow2_backing(&top).unwrap().unwrap(), templates.join("tpl-disk.qcow2"));
}

#[tokio::test]
async fn chunks_a_local_image_already_holds_are_copied_not_fetched() {
    let s3 = start_s3("images");
    let bucket = bucket(&s3, "s3://images");
    let (a, b) = (Node::new(), Node::new());
    // The template: 32 chunks of data. The snapshot: the same, 4 of them changed.
    let template: HashMap<u64, u64> = (0..32).map(|i| (i, i)).collect();
    let mut changed = template.clone();
    for i in [3, 9, 20, 31] {
        changed.insert(i, 500 + i);
    }
    let snap = make_image(&a, "snap", 16, &changed, None, 7);
    upload_image(&bucket, "snap", &snap, &[]).await.unwrap();
    // B has the template locally (built there: no manifest, its chunks are hashed once).
    let tpl = make_image(&b, "tpl", 16, &template, None, 8);
    let down = download_image(&bucket, "snap", &b.images().join("snap"), &b.local(), None).await.unwrap();
    assert_eq!((down.fetched_chunks, down.local_chunks), (4, 28), "{down:?}");
    assert_eq!(fs::read(b.images().join("snap/mem.ram")).unwrap(), fs::read(snap.join("mem.ram")).unwrap());
    assert!(tpl.join("chunk-index.json").is_file(), "the template's chunk index is kept for next time");

    // The template changes (a rebuild): its index is recomputed, so the chunk it no longer
    // holds is fetched, never copied from the wrong bytes.
    fs::remove_dir_all(b.images().join("snap")).unwrap();
    let ram = fs::OpenOptions::new().write(true).open(tpl.join("mem.ram")).unwrap();
    ram.write_all_at(&pattern(4242, CHUNK_SIZE as usize), 0).unwrap();
    drop(ram);
    let again = download_image(&bucket, "snap", &b.images().join("snap2"), &b.local(), None).await.unwrap();
    assert_eq!((again.fetched_chunks, again.local_chunks), (5, 27), "{again:?}");
    assert_eq!(fs::read(b.images().join("snap2/mem.ram")).unwrap(), fs::read(snap.join("mem.ram")).unwrap());
}
