//! What really changed in guest RAM between two snapshots of one source: their `mem.ram` files
//! compared page by page (4 KiB, the guest's page size), and how many upload chunks
//! (`server/src/cluster/manifest.rs`: 256 KiB) those pages fall into. The floor under what a
//! second upload can send, before compression.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::Context;

const PAGE: usize = 4096;
/// `CHUNK_SIZE` of the server's manifest.
const CHUNK: usize = 256 << 10;

#[derive(Debug, Clone, Copy)]
pub struct Diff {
    /// Bytes of the 4 KiB pages that differ.
    pub pages_bytes: u64,
    /// Chunks with at least one differing page.
    pub chunks: usize,
}

pub fn diff(a: &Path, b: &Path) -> anyhow::Result<Diff> {
    let open = |p: &Path| File::open(p).with_context(|| format!("open {}", p.display()));
    let (fa, fb) = (open(a)?, open(b)?);
    let size = fa.metadata()?.len().max(fb.metadata()?.len());
    let (mut ba, mut bb) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut out = Diff {
        pages_bytes: 0,
        chunks: 0,
    };
    let mut off = 0u64;
    while off < size {
        let (na, nb) = (read(&fa, off, &mut ba)?, read(&fb, off, &mut bb)?);
        // Past the end of the shorter file reads as zero, like a hole.
        ba[na..].fill(0);
        bb[nb..].fill(0);
        let changed = ba
            .chunks(PAGE)
            .zip(bb.chunks(PAGE))
            .filter(|(x, y)| x != y)
            .count();
        out.pages_bytes += (changed * PAGE) as u64;
        out.chunks += usize::from(changed > 0);
        off += CHUNK as u64;
    }
    Ok(out)
}

/// Reads up to `buf.len()` bytes at `off`; how many were there.
fn read(f: &File, off: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read_at(&mut buf[n..], off + n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_changed_pages_and_their_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = vec![0u8; 3 * CHUNK];
        a[5] = 1;
        let mut b = a.clone();
        b[PAGE + 1] = 7; // chunk 0, second page
        b[2 * CHUNK] = 9; // chunk 2
        b[2 * CHUNK + 1] = 9; // same page
        std::fs::write(dir.path().join("a"), &a).unwrap();
        std::fs::write(dir.path().join("b"), &b[..2 * CHUNK + PAGE]).unwrap();
        let d = diff(&dir.path().join("a"), &dir.path().join("b")).unwrap();
        assert_eq!((d.pages_bytes, d.chunks), (2 * PAGE as u64, 2));
    }
}
