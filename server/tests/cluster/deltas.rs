//! Changed RAM chunks as page deltas (`sandboxd::cluster::delta`): a second snapshot uploads
//! the pages that changed, a node that never saw either image rebuilds it byte for byte, chains
//! stay bounded, and a bad delta fails the download cleanly.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;

use sandboxd::cluster::delta::{MAX_CHAIN, PAGE};
use sandboxd::cluster::download::download_image;
use sandboxd::cluster::manifest::{self, CHUNK_SIZE};
use sandboxd::cluster::upload::upload_image;
use sandboxd::vm::Runtime;

use super::common::{Node, bucket, make_image, pattern, start_s3};

/// Writes `pages` pages of fresh bytes into chunk `chunk` of `image`'s RAM; the bytes written.
fn touch(image: &Path, chunk: u64, pages: &[u64], seed: u64) -> u64 {
    let ram = fs::OpenOptions::new().write(true).open(image.join("mem.ram")).unwrap();
    for &p in pages {
        ram.write_all_at(&pattern(seed * 1_000_000 + chunk * 1000 + p, PAGE), chunk * CHUNK_SIZE + p * PAGE as u64).unwrap();
    }
    pages.len() as u64 * PAGE as u64
}

/// A new image on `node` whose RAM is `from`'s, its disk a layer over `from`'s.
fn next_image(node: &Node, id: &str, from: &Path, disk_seed: u8) -> std::path::PathBuf {
    let below = Runtime::read_meta(from).unwrap().disk_layer;
    let dir = make_image(node, id, 16, &HashMap::new(), Some(&below), disk_seed);
    fs::copy(from.join("mem.ram"), dir.join("mem.ram")).unwrap();
    dir
}

#[tokio::test]
async fn a_second_snapshot_sends_the_changed_pages_and_restores_byte_for_byte() {
    let s3 = start_s3("deltas");
    let bucket = bucket(&s3, "s3://deltas/p");
    let (a, b) = (Node::new(), Node::new());
    let bases = [a.images()];
    // 16 MiB = 64 chunks, all data.
    let first: HashMap<u64, u64> = (0..64).map(|i| (i, i)).collect();
    let snap1 = make_image(&a, "snap1", 16, &first, None, 1);
    let (_, up1) = upload_image(&bucket, "snap1", &snap1, &bases).await.unwrap();
    assert_eq!((up1.uploaded_chunks, up1.uploaded_deltas), (64, 0), "nothing to be a delta of: {up1:?}");

    // The guest writes scattered pages: 4 pages in each of 32 chunks, and all of chunk 5.
    let snap2 = next_image(&a, "snap2", &snap1, 2);
    let mut changed = 0;
    for chunk in (0..64).step_by(2) {
        changed += touch(&snap2, chunk, &[1, 17, 40, 63], 2);
    }
    changed += touch(&snap2, 5, &(0..64).collect::<Vec<_>>(), 2);
    let (m2, up2) = upload_image(&bucket, "snap2", &snap2, &bases).await.unwrap();
    assert_eq!((up2.uploaded_chunks, up2.uploaded_deltas), (1, 32), "{up2:?}");
    assert_eq!(up2.delta_base.as_deref(), Some(snap1.to_str().unwrap()));
    assert_eq!(m2.format, manifest::FORMAT);
    let top = fs::metadata(Runtime::read_meta(&snap2).unwrap().disk_layer).unwrap().len();
    let ram_sent = up2.uploaded_plain_bytes - top - 300_000;
    assert!(ram_sent >= changed && ram_sent <= changed + changed / 100, "RAM sent {ram_sent}, changed {changed}");
    // Deltas of random-looking pages do not compress: what went over the wire is about the same.
    assert!(up2.uploaded_bytes <= (changed + top + 300_000) * 11 / 10, "{up2:?}");

    // A third snapshot changes one page of chunk 0 again: its chain grows by one delta.
    let snap3 = next_image(&a, "snap3", &snap2, 3);
    touch(&snap3, 0, &[2], 3);
    let (m3, up3) = upload_image(&bucket, "snap3", &snap3, &bases).await.unwrap();
    assert_eq!((up3.uploaded_chunks, up3.uploaded_deltas), (0, 1), "{up3:?}");
    assert_eq!(up3.delta_base.as_deref(), Some(snap2.to_str().unwrap()), "the image sharing most chunks");
    let ram = m3.ram.as_ref().unwrap();
    let chunk0 = ram.chunks[0].as_ref().unwrap();
    assert_eq!(ram.chain(chunk0).len(), 3, "whole chunk, snap2's delta, snap3's delta");
    assert_eq!(ram.chain(chunk0)[0], m2.ram.as_ref().unwrap().chain(m2.ram.as_ref().unwrap().chunks[0].as_ref().unwrap())[0]);

    // B has neither image: it fetches whole chunks and deltas and rebuilds both exactly.
    for (id, src) in [("snap3", &snap3), ("snap2", &snap2)] {
        let dest = b.images().join(id);
        let down = download_image(&bucket, id, &dest, &b.local(), None).await.unwrap();
        assert_eq!(fs::read(dest.join("mem.ram")).unwrap(), fs::read(src.join("mem.ram")).unwrap(), "{id}");
        if id == "snap2" {
            // snap3 is local now: every chunk but the one snap3 changed since is copied.
            assert_eq!((down.fetched_chunks, down.local_chunks), (1, 63), "{down:?}");
        }
    }
}

#[tokio::test]
async fn delta_chains_stay_bounded() {
    let s3 = start_s3("deltas");
    let bucket = bucket(&s3, "s3://deltas");
    let a = Node::new();
    let bases = [a.images()];
    let first: HashMap<u64, u64> = [(0, 1), (1, 2)].into();
    let mut prev = make_image(&a, "s0", 16, &first, None, 1);
    upload_image(&bucket, "s0", &prev, &bases).await.unwrap();
    let mut lengths = Vec::new();
    for n in 1..=MAX_CHAIN + 1 {
        let id = format!("s{n}");
        let next = next_image(&a, &id, &prev, n as u8 + 1);
        touch(&next, 0, &[n as u64], n as u64 + 10);
        let (m, _) = upload_image(&bucket, &id, &next, &bases).await.unwrap();
        let ram = m.ram.unwrap();
        lengths.push(ram.chain(ram.chunks[0].as_ref().unwrap()).len());
        prev = next;
    }
    // Each snapshot adds a delta until the chain is full; then the chunk is stored whole again.
    let mut want: Vec<usize> = (2..=MAX_CHAIN).collect();
    want.extend([1, 2]);
    assert_eq!(lengths, want);
    let b = Node::new();
    // The longest chain there is: a whole chunk and MAX_CHAIN - 1 deltas.
    let last = format!("s{}", MAX_CHAIN - 1);
    download_image(&bucket, &last, &b.images().join(&last), &b.local(), None).await.unwrap();
    assert_eq!(fs::read(b.images().join(&last).join("mem.ram")).unwrap(), fs::read(a.images().join(&last).join("mem.ram")).unwrap());
}

#[tokio::test]
async fn a_corrupt_or_missing_delta_fails_the_download_and_leaves_nothing() {
    let s3 = start_s3("deltas");
    let bucket = bucket(&s3, "s3://deltas");
    let (a, b) = (Node::new(), Node::new());
    let bases = [a.images()];
    // Chunk 4 stays the same: what makes snap1 the base of snap2's deltas.
    let snap1 = make_image(&a, "snap1", 16, &[(3, 7), (4, 8)].into(), None, 1);
    upload_image(&bucket, "snap1", &snap1, &bases).await.unwrap();
    let snap2 = next_image(&a, "snap2", &snap1, 2);
    touch(&snap2, 3, &[9], 4);
    let (m, up) = upload_image(&bucket, "snap2", &snap2, &bases).await.unwrap();
    assert_eq!(up.uploaded_deltas, 1);
    let ram = m.ram.unwrap();
    let delta = ram.chain(ram.chunks[3].as_ref().unwrap())[1].to_string();
    let object = s3.root.path().join("deltas/deltas").join(&delta);

    // One byte changed in the delta: caught by the delta's own hash.
    let raw = zstd::bulk::decompress(&fs::read(&object).unwrap(), 1 << 20).unwrap();
    let mut bad = raw.clone();
    *bad.last_mut().unwrap() ^= 1;
    fs::write(&object, zstd::bulk::compress(&bad, 1).unwrap()).unwrap();
    let dest = b.images().join("snap2");
    let err = download_image(&bucket, "snap2", &dest, &b.local(), None).await.unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
    assert!(!dest.exists());

    fs::remove_file(&object).unwrap();
    let err = download_image(&bucket, "snap2", &dest, &b.local(), None).await.unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    assert_eq!(fs::read_dir(b.images()).unwrap().count(), 0, "no half-fetched directory is left");
}
