//! File operations behind images: cloning guest RAM files cheaply, reading qcow2 backing
//! links, durable writes and on-disk sizes.
//!
//! RAM files are sparse. A clone is a reflink (`FICLONE`) where the filesystem supports it
//! (XFS, btrfs: constant time, blocks shared copy-on-write), otherwise a copy of the data
//! extents only (`SEEK_DATA`/`SEEK_HOLE`), skipping 4 KiB blocks that are all zero, so zero
//! pages are never stored.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::{Result, VmError};

const BLOCK: usize = 4096;

/// Maps ENOSPC / EDQUOT to [`VmError::NoSpace`] so the API can answer 507.
pub fn io_err(context: &str, e: io::Error) -> VmError {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => VmError::NoSpace(format!("{context}: {e}")),
        _ => VmError::Io(io::Error::new(e.kind(), format!("{context}: {e}"))),
    }
}

/// The mark of an image directory whose files may not be on disk yet (a cluster node's fetched
/// copy, see `cluster::download`).
pub const UNSYNCED: &str = ".unsynced";

/// Whether image directory `dir` carries the [`UNSYNCED`] mark.
pub fn unsynced(dir: &Path) -> bool {
    dir.join(UNSYNCED).exists()
}

/// Clones `src` to `dst` (which must not exist). Returns true when a reflink was used.
pub fn clone_sparse(src: &Path, dst: &Path) -> Result<bool> {
    if reflink(src, dst, false)?.is_some() {
        return Ok(true);
    }
    let output = create_sized(src, dst)?;
    fill_data(src, &output).inspect_err(|_| {
        let _ = fs::remove_file(dst);
    })?;
    Ok(false)
}

/// Reflinks `src` to a new file `dst` (constant time, blocks shared copy-on-write) and returns
/// it; `None`, with nothing left behind, when the filesystem cannot reflink. `existing`: `dst`
/// is an existing file of the same length whose contents the reflink replaces (a spare VM's
/// RAM file; left as it was when the filesystem cannot reflink).
pub fn reflink(src: &Path, dst: &Path, existing: bool) -> Result<Option<File>> {
    let input = File::open(src).map_err(|e| io_err(&format!("open {}", src.display()), e))?;
    let output = if existing {
        open_same_length(&input, dst)?
    } else {
        OpenOptions::new().write(true).create_new(true).open(dst).map_err(|e| io_err(&format!("create {}", dst.display()), e))?
    };
    // SAFETY: FICLONE takes the source fd as its argument; both fds are valid and owned here.
    if unsafe { libc::ioctl(output.as_raw_fd(), libc::FICLONE, input.as_raw_fd()) } == 0 {
        return Ok(Some(output));
    }
    drop(output);
    if !existing {
        fs::remove_file(dst).map_err(|e| io_err(&format!("remove {}", dst.display()), e))?;
    }
    Ok(None)
}

/// Opens the existing `dst` for writing, refusing it unless it is as long as `input`.
fn open_same_length(input: &File, dst: &Path) -> Result<File> {
    open_with_length(input.metadata().map_err(|e| io_err("stat", e))?.len(), dst)
}

/// Opens the existing `dst` for writing, refusing it unless it is `want` bytes long.
pub fn open_with_length(want: u64, dst: &Path) -> Result<File> {
    let f = OpenOptions::new().write(true).open(dst).map_err(|e| io_err(&format!("open {}", dst.display()), e))?;
    let have = f.metadata().map_err(|e| io_err("stat", e))?.len();
    if want != have {
        return Err(VmError::Failed(format!("{} has {have} bytes, the image's RAM {want}", dst.display())));
    }
    Ok(f)
}

/// The existing, sparse `dst` (a spare VM's RAM file), checked to be as long as `src`, for
/// [`fill_data`].
pub fn open_sized(src: &Path, dst: &Path) -> Result<File> {
    let input = File::open(src).map_err(|e| io_err(&format!("open {}", src.display()), e))?;
    open_same_length(&input, dst)
}

/// Creates `dst` as a sparse file as long as `src` (so QEMU can map it right away) and
/// returns it for [`fill_data`].
pub fn create_sized(src: &Path, dst: &Path) -> Result<File> {
    create_with_length(fs::metadata(src).map_err(|e| io_err(&format!("stat {}", src.display()), e))?.len(), dst)
}

/// Creates `dst` as a sparse file of `len` bytes.
pub fn create_with_length(len: u64, dst: &Path) -> Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)
        .map_err(|e| io_err(&format!("create {}", dst.display()), e))?;
    f.set_len(len).map_err(|e| io_err("set_len", e))?;
    Ok(f)
}

/// Allocates every block of `f` up front (unwritten extents: metadata only, no data
/// written), so that later writes into it never need new blocks from the filesystem. A guest's
/// RAM file gets this: a write fault on a page whose block cannot be allocated kills QEMU with
/// SIGBUS. `ENOSPC` is a [`VmError::NoSpace`]; filesystems without fallocate are left sparse.
pub fn reserve_blocks(f: &File) -> Result<()> {
    let len = f.metadata().map_err(|e| io_err("stat", e))?.len();
    match nix::fcntl::fallocate(f, nix::fcntl::FallocateFlags::empty(), 0, len as i64) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::ENOSPC) => Err(VmError::NoSpace(format!("cannot reserve {} MiB for guest RAM", len >> 20))),
        Err(nix::errno::Errno::EOPNOTSUPP) => Ok(()),
        Err(e) => Err(io_err("fallocate", e.into())),
    }
}

/// Copies the data extents of `src` into `output` (made by [`create_sized`]).
pub fn fill_data(src: &Path, output: &File) -> Result<()> {
    let input = File::open(src).map_err(|e| io_err(&format!("open {}", src.display()), e))?;
    copy_data_extents(&input, output).map_err(|e| io_err(&format!("copy {}", src.display()), e))
}

fn copy_data_extents(input: &File, output: &File) -> io::Result<()> {
    let len = input.metadata()?.len();
    output.set_len(len)?;
    let fd = input.as_raw_fd();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos: i64 = 0;
    while (pos as u64) < len {
        // SAFETY: lseek on a valid fd; negative return is handled.
        let data = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
        if data < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ENXIO) {
                break; // no data after pos
            }
            return Err(err);
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        if hole < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut off = data as u64;
        while off < hole as u64 {
            let n = ((hole as u64 - off) as usize).min(buf.len());
            input.read_exact_at(&mut buf[..n], off)?;
            write_nonzero_runs(output, &buf[..n], off)?;
            off += n as u64;
        }
        pos = hole;
    }
    Ok(())
}

/// Writes the runs of non-zero 4 KiB blocks of `buf` (at file offset `base`), one write per
/// run, leaving all-zero blocks as holes.
fn write_nonzero_runs(output: &File, buf: &[u8], base: u64) -> io::Result<()> {
    let mut run_start: Option<usize> = None;
    let blocks = buf.len().div_ceil(BLOCK);
    for i in 0..=blocks {
        let nonzero = i < blocks && {
            let chunk = &buf[i * BLOCK..((i + 1) * BLOCK).min(buf.len())];
            // Compare as u64 words: much faster than byte by byte.
            // SAFETY: every bit pattern is a valid u64; align_to handles alignment.
            let (head, words, tail) = unsafe { chunk.align_to::<u64>() };
            head.iter().any(|&b| b != 0) || words.iter().any(|&w| w != 0) || tail.iter().any(|&b| b != 0)
        };
        match (nonzero, run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(start)) => {
                let end = (i * BLOCK).min(buf.len());
                output.write_all_at(&buf[start * BLOCK..end], base + (start * BLOCK) as u64)?;
                run_start = None;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Bytes actually allocated on disk for a file (sparse-aware).
pub fn allocated_bytes(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.blocks() * 512).unwrap_or(0)
}

/// fsyncs a file or directory.
pub fn fsync_path(path: &Path) -> Result<()> {
    File::open(path).and_then(|f| f.sync_all()).map_err(|e| io_err(&format!("fsync {}", path.display()), e))
}

/// Writes `data` to `path` atomically: temporary file, fsync, rename, fsync of the directory.
/// Concurrent writers of one path (two downloads of the same boot file) each have their own
/// temporary file; the last rename wins.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", super::random_id()));
    let mut f = File::create(&tmp).map_err(|e| io_err("create", e))?;
    f.write_all(data).and_then(|_| f.sync_all()).map_err(|e| io_err("write", e))?;
    fs::rename(&tmp, path).map_err(|e| io_err("rename", e))?;
    if let Some(dir) = path.parent() {
        fsync_path(dir)?;
    }
    Ok(())
}

/// The backing file named in a qcow2 header, if any (absolute paths only are written here).
pub fn qcow2_backing(path: &Path) -> io::Result<Option<PathBuf>> {
    let mut f = File::open(path)?;
    let mut hdr = [0u8; 20];
    f.read_exact(&mut hdr)?;
    if &hdr[0..4] != b"QFI\xfb" {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not a qcow2 file"));
    }
    let off = u64::from_be_bytes(hdr[8..16].try_into().unwrap());
    let size = u32::from_be_bytes(hdr[16..20].try_into().unwrap()) as usize;
    if off == 0 || size == 0 {
        return Ok(None);
    }
    if size > 4096 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "backing file name too long"));
    }
    let mut name = vec![0u8; size];
    f.seek(SeekFrom::Start(off))?;
    f.read_exact(&mut name)?;
    Ok(Some(PathBuf::from(String::from_utf8_lossy(&name).into_owned())))
}

/// The whole backing chain of a layer, itself first.
pub fn qcow2_chain(top: &Path) -> Vec<PathBuf> {
    let mut chain = vec![top.to_path_buf()];
    let mut cur = top.to_path_buf();
    while let Ok(Some(next)) = qcow2_backing(&cur) {
        if chain.contains(&next) || chain.len() > 4096 {
            break;
        }
        chain.push(next.clone());
        cur = next;
    }
    chain
}

/// Every layer of the backing chains of `roots` (the roots included), as [`qcow2_chain`] of
/// each would give. A chain is walked only until it reaches a layer an earlier chain walked to
/// its end: the snapshots of one source share all layers but their tops, so this reads as many
/// headers as there are distinct layers, not the sum of all chain lengths (1,000 snapshots of 10
/// sources: ~1,000 reads instead of ~50,000).
pub fn qcow2_chains(roots: impl IntoIterator<Item = PathBuf>) -> std::collections::HashSet<PathBuf> {
    use std::collections::HashSet;
    // `complete`: walked to a layer without backing file (or a raw one); `partial`: reached,
    // but a header below could not be read, so a later chain reaching them walks on again.
    let (mut complete, mut partial) = (HashSet::new(), HashSet::new());
    for root in roots {
        let (mut walked, mut cur, mut whole) = (Vec::new(), root, true);
        let mut seen = HashSet::new();
        while !complete.contains(&cur) && seen.insert(cur.clone()) && walked.len() <= 4096 {
            walked.push(cur.clone());
            match qcow2_backing(&cur) {
                Ok(Some(next)) => cur = next,
                Ok(None) => break,
                // Not qcow2: a raw base layer, the end of its chain.
                Err(e) if e.kind() == io::ErrorKind::InvalidData => break,
                Err(_) => {
                    whole = false;
                    break;
                }
            }
        }
        if whole { complete.extend(walked) } else { partial.extend(walked) }
    }
    complete.extend(partial);
    complete
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file whose header says what `qcow2_backing` reads: magic, backing name offset and size.
    fn fake_qcow2(path: &Path, backing: Option<&Path>) {
        let name = backing.map(|b| b.display().to_string()).unwrap_or_default();
        let mut hdr = vec![0u8; 64];
        hdr[0..4].copy_from_slice(b"QFI\xfb");
        if !name.is_empty() {
            hdr[8..16].copy_from_slice(&64u64.to_be_bytes());
            hdr[16..20].copy_from_slice(&(name.len() as u32).to_be_bytes());
        }
        hdr.extend_from_slice(name.as_bytes());
        fs::write(path, hdr).unwrap();
    }

    #[test]
    fn chains_of_many_roots_are_the_union_of_each_roots_chain() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        fs::write(p("raw"), b"not qcow2").unwrap();
        fake_qcow2(&p("base"), Some(&p("raw")));
        // Two sources' snapshot chains on one base, each snapshot's top on the previous one.
        let mut tops = Vec::new();
        for src in ["a", "b"] {
            let mut below = p("base");
            for i in 0..50 {
                let layer = p(&format!("{src}{i}"));
                fake_qcow2(&layer, Some(&below));
                tops.push(layer.clone());
                below = layer;
            }
        }
        // A root that is gone, one whose backing is gone, and a cycle.
        fake_qcow2(&p("orphan"), Some(&p("missing")));
        fake_qcow2(&p("x"), Some(&p("y")));
        fake_qcow2(&p("y"), Some(&p("x")));
        let roots: Vec<PathBuf> = tops.iter().cloned().chain([p("gone"), p("orphan"), p("x")]).collect();
        let want: std::collections::HashSet<PathBuf> = roots.iter().flat_map(|r| qcow2_chain(r)).collect();
        let got = qcow2_chains(roots);
        assert_eq!(got, want);
        for name in ["raw", "base", "a0", "a49", "b0", "b49", "gone", "orphan", "missing", "x", "y"] {
            assert!(got.contains(&p(name)), "{name}");
        }
    }

    #[test]
    fn sparse_clone_skips_zero_blocks_and_keeps_data() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let f = File::create(&src).unwrap();
        f.set_len(64 << 20).unwrap();
        f.write_all_at(&[7u8; 8192], 1 << 20).unwrap();
        f.write_all_at(&[0u8; 1 << 20], 8 << 20).unwrap(); // allocated but zero
        f.write_all_at(b"tail", (64 << 20) - 4).unwrap();
        f.sync_all().unwrap();
        let dst = dir.path().join("dst");
        let reflinked = clone_sparse(&src, &dst).unwrap();
        assert_eq!(fs::read(&src).unwrap(), fs::read(&dst).unwrap());
        if !reflinked {
            // 8 KiB of sevens + the last block; the zero MiB must not be stored.
            assert!(allocated_bytes(&dst) < 64 * 1024, "dst allocates {}", allocated_bytes(&dst));
        }
        assert!(clone_sparse(&src, &dst).is_err(), "existing destination must not be overwritten");
    }
}
