//! Names inside a volume's tree, resolved without ever following a symlink: both the volume
//! channel ([`super::serve`]) and the content API ([`super::content`]) reach files this way.
//!
//! Invariants:
//! - A path is walked one plain name at a time from the tree's root, each directory opened with
//!   `O_NOFOLLOW` relative to the one before (a symlink or file on the way is `ENOTDIR`), and
//!   its last name is only ever used through `*at` calls on that directory's descriptor. A
//!   sandbox that swaps a directory for a symlink between two requests (it writes the same tree
//!   through its mount) can therefore not redirect either API outside the tree.
//! - The descriptors are `O_CLOEXEC`; the caller owns them.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use super::wire::Attr;

pub type Errno = i32;
pub type R<T> = Result<T, Errno>;

pub fn last_errno() -> Errno {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

pub fn io_errno(e: std::io::Error) -> Errno {
    e.raw_os_error().unwrap_or(libc::EIO)
}

pub fn cstr(s: &str) -> R<CString> {
    CString::new(s).map_err(|_| libc::EINVAL)
}

pub fn check(rc: libc::c_int) -> R<()> {
    if rc < 0 { Err(last_errno()) } else { Ok(()) }
}

pub fn openat(dir: libc::c_int, name: &CString, flags: libc::c_int, mode: libc::mode_t) -> R<OwnedFd> {
    // SAFETY: `name` is a valid C string; the returned fd is owned by nobody else.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) };
    if fd < 0 { Err(last_errno()) } else { Ok(unsafe { OwnedFd::from_raw_fd(fd) }) }
}

/// Opens directory `name` inside `dir` as a path descriptor, refusing a symlink.
pub fn open_dir_in(dir: &OwnedFd, name: &CString) -> R<OwnedFd> {
    openat(dir.as_raw_fd(), name, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0)
}

/// Opens a tree's root directory.
pub fn open_root(root: &Path) -> R<OwnedFd> {
    let root = cstr(root.to_str().ok_or(libc::EINVAL)?)?;
    openat(libc::AT_FDCWD, &root, libc::O_PATH | libc::O_DIRECTORY, 0)
}

/// Opens the directory `names` lead to from `root`.
pub fn open_dirs(root: &Path, names: &[&str]) -> R<OwnedFd> {
    let mut fd = open_root(root)?;
    for n in names {
        fd = open_dir_in(&fd, &cstr(n)?)?;
    }
    Ok(fd)
}

/// The magic `/proc` link naming exactly the file behind `fd` (for calls without an `*at` form).
pub fn proc_path(fd: &OwnedFd) -> R<CString> {
    cstr(&format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `name` in `dir` (or `dir` itself with `AT_EMPTY_PATH` and an empty name).
pub fn stat_at(dir: libc::c_int, name: &CString, flags: libc::c_int) -> R<Attr> {
    // SAFETY: `st` is fully written by a successful fstatat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, flags) })?;
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => 'f',
        libc::S_IFDIR => 'd',
        libc::S_IFLNK => 'l',
        _ => 'o',
    };
    let ns = |s: i64, n: i64| s.saturating_mul(1_000_000_000).saturating_add(n);
    Ok(Attr {
        kind,
        size: st.st_size as u64,
        blocks: st.st_blocks as u64,
        mode: st.st_mode & 0o7777,
        nlink: st.st_nlink as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        atime: ns(st.st_atime, st.st_atime_nsec),
        mtime: ns(st.st_mtime, st.st_mtime_nsec),
        ctime: ns(st.st_ctime, st.st_ctime_nsec),
    })
}

/// `name` in `dir`, or `dir` itself for `None`, without following a symlink.
pub fn stat_entry(dir: &OwnedFd, name: Option<&CString>) -> R<Attr> {
    match name {
        Some(n) => stat_at(dir.as_raw_fd(), n, libc::AT_SYMLINK_NOFOLLOW),
        None => stat_at(dir.as_raw_fd(), &CString::default(), libc::AT_EMPTY_PATH),
    }
}

/// The entries of directory `dir`, sorted by name, with their attributes (names that are not
/// UTF-8, and entries gone while listing, are left out).
pub fn read_dir(dir: &OwnedFd) -> R<Vec<(String, Attr)>> {
    let listing = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())).map_err(io_errno)?;
    let mut out = Vec::new();
    for e in listing {
        let e = e.map_err(io_errno)?;
        let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
        let Ok(attr) = stat_at(dir.as_raw_fd(), &cstr(&name)?, libc::AT_SYMLINK_NOFOLLOW) else { continue };
        out.push((name, attr));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The target of symlink `name` in `dir`.
pub fn read_link(dir: &OwnedFd, name: &CString) -> R<String> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::readlinkat(dir.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(last_errno());
    }
    buf.truncate(n as usize);
    String::from_utf8(buf).map_err(|_| libc::EINVAL)
}

/// Sets the owner of `name` in `dir` (or of `dir` itself for `None`); `None` ids are kept.
pub fn chown(dir: &OwnedFd, name: Option<&CString>, uid: Option<u32>, gid: Option<u32>) -> R<()> {
    let (uid, gid) = (uid.unwrap_or(u32::MAX), gid.unwrap_or(u32::MAX));
    let empty = CString::default();
    let (name, flags) = match name {
        Some(n) => (n, libc::AT_SYMLINK_NOFOLLOW),
        None => (&empty, libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW),
    };
    // SAFETY: plain syscall on a valid fd and C string.
    check(unsafe { libc::fchownat(dir.as_raw_fd(), name.as_ptr(), uid, gid, flags) })
}

/// Sets the permission bits of the file behind path descriptor `node` (a symlink refuses).
pub fn chmod(node: &OwnedFd, mode: u32) -> R<()> {
    let proc = proc_path(node)?;
    // SAFETY: plain syscall on a valid C string.
    check(unsafe { libc::chmod(proc.as_ptr(), mode & 0o7777) })
}

/// Removes `name` from `dir`: a file or symlink, or a directory with everything in it. Nothing
/// below is followed: each directory is opened with `O_NOFOLLOW` from its parent.
pub fn remove_all(dir: &OwnedFd, name: &CString) -> R<()> {
    match stat_at(dir.as_raw_fd(), name, libc::AT_SYMLINK_NOFOLLOW)?.kind {
        'd' => {
            let sub = open_dir_in(dir, name)?;
            for (child, _) in read_dir(&sub)? {
                remove_all(&sub, &cstr(&child)?)?;
            }
            // SAFETY: plain syscall on a valid fd and C string.
            check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) })
        }
        // SAFETY: plain syscall on a valid fd and C string.
        _ => check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) }),
    }
}
