//! Page deltas between two RAM chunks: a chunk that differs from the same chunk of an image
//! already in the bucket in only some pages is stored as those pages, not as a whole chunk.
//! A guest's writes are scattered (18.5 MiB of changed pages fall in ~200 chunks = 50 MiB), so
//! deltas bring a second snapshot's upload down to what really changed.
//!
//! Encoding (the plaintext of a `deltas/<blake3>` object, zstd-compressed like the rest):
//! `b"SBD1"`, the chunk's length (u32 LE), a bitmap of the changed pages (bit `p` of byte
//! `p / 8`, one bit per [`PAGE`] of the chunk), then the changed pages in order (the last page
//! may be short when the chunk is).
//!
//! A manifest names a chunk stored this way by its chain: a whole chunk (`chunks/<hash>`), then
//! the deltas to apply to it in order; the result is checked against the chunk's own hash.

use anyhow::{bail, ensure};

/// The page size deltas work at (the guest's).
pub const PAGE: usize = 4096;
/// A chain is at most this long (a whole chunk and `MAX_CHAIN - 1` deltas): a restore fetches
/// every link, so past this a changed chunk is stored whole again.
pub const MAX_CHAIN: usize = 8;
/// A chunk with more than this fraction of its pages changed is stored whole (a delta would
/// save little and make the chain longer).
const MAX_CHANGED: f64 = 0.75;

const MAGIC: &[u8; 4] = b"SBD1";

/// The delta from `base` to `new` (equal lengths), or `None` when too much changed to pay.
pub fn diff(base: &[u8], new: &[u8]) -> Option<Vec<u8>> {
    assert_eq!(base.len(), new.len(), "a delta is between chunks of one length");
    let pages = new.len().div_ceil(PAGE);
    let changed: Vec<usize> = (0..pages).filter(|&p| page(base, p) != page(new, p)).collect();
    if changed.len() as f64 > pages as f64 * MAX_CHANGED {
        return None;
    }
    let mut out = Vec::with_capacity(8 + pages.div_ceil(8) + changed.len() * PAGE);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(new.len() as u32).to_le_bytes());
    let mut bitmap = vec![0u8; pages.div_ceil(8)];
    for &p in &changed {
        bitmap[p / 8] |= 1 << (p % 8);
    }
    out.extend_from_slice(&bitmap);
    for &p in &changed {
        out.extend_from_slice(page(new, p));
    }
    Some(out)
}

/// The largest delta [`diff`] makes for a chunk of `len` bytes (every page changed).
pub fn max_len(len: usize) -> usize {
    8 + len.div_ceil(PAGE).div_ceil(8) + len
}

/// `base` with the pages of `delta` written over it.
pub fn apply(base: &[u8], delta: &[u8]) -> anyhow::Result<Vec<u8>> {
    ensure!(delta.len() >= 8 && &delta[..4] == MAGIC, "not a page delta");
    let len = u32::from_le_bytes(delta[4..8].try_into().expect("4 bytes")) as usize;
    ensure!(len == base.len(), "page delta for a chunk of {len} bytes applied to one of {}", base.len());
    let pages = len.div_ceil(PAGE);
    let Some((bitmap, mut rest)) = delta[8..].split_at_checked(pages.div_ceil(8)) else { bail!("page delta cut short") };
    let mut out = base.to_vec();
    for p in (0..pages).filter(|p| bitmap[p / 8] & (1 << (p % 8)) != 0) {
        let range = p * PAGE..((p + 1) * PAGE).min(len);
        let Some((bytes, tail)) = rest.split_at_checked(range.len()) else { bail!("page delta cut short") };
        out[range].copy_from_slice(bytes);
        rest = tail;
    }
    ensure!(rest.is_empty(), "page delta has {} bytes too many", rest.len());
    Ok(out)
}

fn page(buf: &[u8], p: usize) -> &[u8] {
    &buf[p * PAGE..((p + 1) * PAGE).min(buf.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(seed: u8, len: usize) -> Vec<u8> {
        (0..len).map(|i| (i / 7) as u8 ^ seed).collect()
    }

    #[test]
    fn a_delta_holds_the_changed_pages_and_rebuilds_the_chunk() {
        let base = chunk(1, 64 * PAGE);
        let mut new = base.clone();
        new[5 * PAGE + 17] ^= 0xff;
        new[63 * PAGE..].fill(9);
        let d = diff(&base, &new).unwrap();
        assert_eq!(d.len(), 8 + 8 + 2 * PAGE);
        assert_eq!(max_len(base.len()), 8 + 8 + 64 * PAGE);
        assert_eq!(apply(&base, &d).unwrap(), new);
        // Nothing changed: an empty delta.
        assert_eq!(apply(&base, &diff(&base, &base).unwrap()).unwrap(), base);
    }

    #[test]
    fn a_short_last_page_and_odd_page_counts_round_trip() {
        let base = chunk(2, 10 * PAGE + 100);
        let mut new = base.clone();
        new[10 * PAGE + 50] = 1;
        new[0] ^= 1;
        let d = diff(&base, &new).unwrap();
        assert_eq!(d.len(), 8 + 2 + PAGE + 100);
        assert_eq!(apply(&base, &d).unwrap(), new);
    }

    #[test]
    fn mostly_changed_chunks_are_not_deltas() {
        let base = chunk(3, 8 * PAGE);
        let mut new = chunk(4, 8 * PAGE);
        assert!(diff(&base, &new).is_none());
        new[..2 * PAGE].copy_from_slice(&base[..2 * PAGE]);
        assert!(diff(&base, &new).is_some(), "6 of 8 pages is still worth a delta");
    }

    #[test]
    fn a_malformed_delta_is_refused() {
        let base = chunk(5, 4 * PAGE);
        let mut new = base.clone();
        new[PAGE] ^= 1;
        let d = diff(&base, &new).unwrap();
        assert!(apply(&base, &d[..d.len() - 1]).is_err());
        assert!(apply(&base[..3 * PAGE], &d).is_err());
        let mut extra = d.clone();
        extra.push(0);
        assert!(apply(&base, &extra).is_err());
        assert!(apply(&base, b"nope").is_err());
    }
}
