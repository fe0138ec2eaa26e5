//! sandboxd's end of the volume channel: the file operations of volumes mounted in a
//! sandbox, done on the volumes' trees on this host.
//!
//! Invariants:
//! - Nothing outside a volume's `data` directory is touched: paths are resolved by [`super::at`]
//!   (one plain name at a time, `O_NOFOLLOW`, the last name only through `*at` calls).
//!   Symlinks inside a volume are stored and read back, never followed here.
//! - Requests are independent (path, offset): a connection carries no state, so one lost at
//!   a snapshot or restart is simply replaced.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use super::at::{self, R, check, cstr, io_errno, last_errno, openat, stat_at};
use super::wire::{self, Attr, Entry, Request, Response, Statfs};

/// The trees a channel serves, by volume ID (each a volume's `data` directory).
pub type Roots = HashMap<String, PathBuf>;

/// The plain names of an absolute in-volume path (`/` has none).
fn names(path: &str) -> R<Vec<&str>> {
    let rest = path.strip_prefix('/').ok_or(libc::EINVAL)?;
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let v: Vec<&str> = rest.split('/').collect();
    if v.iter().any(|n| matches!(*n, "" | "." | "..") || n.contains('\0')) {
        return Err(libc::EINVAL);
    }
    Ok(v)
}

/// One volume's tree.
struct Tree<'a> {
    root: &'a Path,
}

impl Tree<'_> {
    fn dir(&self, names: &[&str]) -> R<OwnedFd> {
        at::open_dirs(self.root, names)
    }

    /// The directory holding `path`'s last name, and that name (`None` for the root).
    fn parent(&self, path: &str) -> R<(OwnedFd, Option<CString>)> {
        let n = names(path)?;
        match n.split_last() {
            None => Ok((self.dir(&[])?, None)),
            Some((last, dirs)) => Ok((self.dir(dirs)?, Some(cstr(last)?))),
        }
    }

    /// `path`'s last name, refusing the root (which cannot be created, removed or renamed).
    fn entry(&self, path: &str) -> R<(OwnedFd, CString)> {
        match self.parent(path)? {
            (dir, Some(name)) => Ok((dir, name)),
            (_, None) => Err(libc::EPERM),
        }
    }

    fn stat(&self, path: &str) -> R<Attr> {
        let (dir, name) = self.parent(path)?;
        at::stat_entry(&dir, name.as_ref())
    }

    /// Opens a regular file (or directory, for fsync) without following a final symlink.
    fn open(&self, path: &str, flags: libc::c_int) -> R<File> {
        let (dir, name) = self.parent(path)?;
        let fd = match name {
            Some(n) => openat(dir.as_raw_fd(), &n, flags | libc::O_NOFOLLOW, 0)?,
            None => openat(dir.as_raw_fd(), &cstr(".")?, libc::O_RDONLY | libc::O_DIRECTORY, 0)?,
        };
        Ok(File::from(fd))
    }

    fn readdir(&self, path: &str) -> R<Vec<Entry>> {
        let dir = self.dir(&names(path)?)?;
        // Names the wire cannot carry are left out rather than mangled.
        Ok(at::read_dir(&dir)?.into_iter().map(|(name, attr)| Entry { name, attr }).collect())
    }

    fn read(&self, path: &str, off: u64, len: u32) -> R<Vec<u8>> {
        let f = self.open(path, libc::O_RDONLY)?;
        let mut buf = vec![0; len.min(wire::MAX_PART as u32) as usize];
        let mut got = 0;
        while got < buf.len() {
            match f.read_at(&mut buf[got..], off + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_errno(e)),
            }
        }
        buf.truncate(got);
        Ok(buf)
    }

    fn write(&self, path: &str, off: u64, data: &[u8]) -> R<u32> {
        let f = self.open(path, libc::O_WRONLY)?;
        f.write_all_at(data, off).map_err(io_errno)?;
        Ok(data.len() as u32)
    }

    fn chown(dir: &OwnedFd, name: &CString, req: &Request) -> R<()> {
        at::chown(dir, Some(name), req.uid, req.gid)
    }

    fn create(&self, req: &Request) -> R<Attr> {
        let (dir, name) = self.entry(&req.path)?;
        let mode = req.mode.unwrap_or(0o644) & 0o7777;
        let base = libc::O_WRONLY | libc::O_NOFOLLOW;
        match openat(dir.as_raw_fd(), &name, base | libc::O_CREAT | libc::O_EXCL, mode) {
            Ok(_) => Self::chown(&dir, &name, req)?,
            // Without O_EXCL an existing file is simply opened (as open(2) would).
            Err(libc::EEXIST) if req.flags != Some(1) => drop(openat(dir.as_raw_fd(), &name, base, 0)?),
            Err(e) => return Err(e),
        }
        stat_at(dir.as_raw_fd(), &name, libc::AT_SYMLINK_NOFOLLOW)
    }

    fn mkdir(&self, req: &Request) -> R<Attr> {
        let (dir, name) = self.entry(&req.path)?;
        let mode = req.mode.unwrap_or(0o755) & 0o7777;
        // SAFETY: plain syscall on a valid fd and C string.
        check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) })?;
        Self::chown(&dir, &name, req)?;
        stat_at(dir.as_raw_fd(), &name, libc::AT_SYMLINK_NOFOLLOW)
    }

    fn symlink(&self, req: &Request) -> R<Attr> {
        let (dir, name) = self.entry(&req.path)?;
        let target = cstr(req.target.as_deref().ok_or(libc::EINVAL)?)?;
        // SAFETY: plain syscall on a valid fd and C strings.
        check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })?;
        Self::chown(&dir, &name, req)?;
        stat_at(dir.as_raw_fd(), &name, libc::AT_SYMLINK_NOFOLLOW)
    }

    fn readlink(&self, path: &str) -> R<String> {
        let (dir, name) = self.entry(path)?;
        at::read_link(&dir, &name)
    }

    fn remove(&self, path: &str, flags: libc::c_int) -> R<()> {
        let (dir, name) = self.entry(path)?;
        // SAFETY: plain syscall on a valid fd and C string.
        check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })
    }

    fn rename(&self, req: &Request) -> R<()> {
        let (from_dir, from) = self.entry(&req.path)?;
        let (to_dir, to) = self.entry(req.to.as_deref().ok_or(libc::EINVAL)?)?;
        let flags = req.flags.unwrap_or(0) & (libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE);
        // SAFETY: plain syscall on valid fds and C strings.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                from_dir.as_raw_fd(),
                from.as_ptr(),
                to_dir.as_raw_fd(),
                to.as_ptr(),
                flags,
            )
        };
        if rc < 0 { Err(last_errno()) } else { Ok(()) }
    }

    fn setattr(&self, req: &Request) -> R<Attr> {
        let (dir, name) = self.parent(&req.path)?;
        let node = match &name {
            Some(n) => openat(dir.as_raw_fd(), n, libc::O_PATH | libc::O_NOFOLLOW, 0)?,
            None => dir,
        };
        // The fd is already resolved inside the volume; its /proc link names exactly it.
        let proc = at::proc_path(&node)?;
        if let Some(size) = req.size {
            let f = openat(libc::AT_FDCWD, &proc, libc::O_WRONLY, 0)?;
            // SAFETY: plain syscall on a valid fd.
            check(unsafe { libc::ftruncate(f.as_raw_fd(), size as libc::off_t) })?;
        }
        if let Some(mode) = req.mode {
            at::chmod(&node, mode)?;
        }
        if req.uid.is_some() || req.gid.is_some() {
            at::chown(&node, None, req.uid, req.gid)?;
        }
        if req.atime.is_some() || req.mtime.is_some() {
            let ts = |t: Option<i64>| match t {
                None => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT },
                Some(-1) => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW },
                Some(ns) => libc::timespec { tv_sec: ns.div_euclid(1_000_000_000), tv_nsec: ns.rem_euclid(1_000_000_000) },
            };
            let times = [ts(req.atime), ts(req.mtime)];
            // SAFETY: `times` holds two timespecs, as utimensat reads.
            check(unsafe { libc::utimensat(libc::AT_FDCWD, proc.as_ptr(), times.as_ptr(), 0) })?;
        }
        let empty = CString::default();
        stat_at(node.as_raw_fd(), &empty, libc::AT_EMPTY_PATH)
    }

    fn statfs(&self) -> R<Statfs> {
        let s = nix::sys::statvfs::statvfs(self.root).map_err(|e| e as i32)?;
        Ok(Statfs {
            blocks: s.blocks(),
            bfree: s.blocks_free(),
            bavail: s.blocks_available(),
            files: s.files(),
            ffree: s.files_free(),
            bsize: s.fragment_size() as u32,
        })
    }
}

/// Does one request; returns the response and the data that goes with it.
pub fn execute(roots: &Roots, req: &Request, data: &[u8]) -> (Response, Vec<u8>) {
    let mut resp = Response { id: req.id, ..Default::default() };
    let Some(root) = roots.get(&req.vol) else {
        resp.errno = libc::ENOENT;
        return (resp, Vec::new());
    };
    let t = Tree { root };
    let mut out = Vec::new();
    let done: R<()> = (|| {
        match req.op.as_str() {
            "stat" => resp.attr = Some(t.stat(&req.path)?),
            "readdir" => resp.entries = Some(t.readdir(&req.path)?),
            "read" => out = t.read(&req.path, req.off.unwrap_or(0), req.len.unwrap_or(0))?,
            "write" => resp.written = Some(t.write(&req.path, req.off.unwrap_or(0), data)?),
            "create" => resp.attr = Some(t.create(req)?),
            "mkdir" => resp.attr = Some(t.mkdir(req)?),
            "symlink" => resp.attr = Some(t.symlink(req)?),
            "readlink" => resp.target = Some(t.readlink(&req.path)?),
            "unlink" => t.remove(&req.path, 0)?,
            "rmdir" => t.remove(&req.path, libc::AT_REMOVEDIR)?,
            "rename" => t.rename(req)?,
            "setattr" => resp.attr = Some(t.setattr(req)?),
            "statfs" => resp.statfs = Some(t.statfs()?),
            "fsync" => t.open(&req.path, libc::O_RDONLY)?.sync_all().map_err(io_errno)?,
            _ => return Err(libc::ENOSYS),
        }
        Ok(())
    })();
    if let Err(e) = done {
        resp.errno = e;
        out.clear();
    }
    (resp, out)
}

/// Serves requests from `io` until the connection ends (each request on the blocking pool,
/// answers in whatever order they finish).
pub async fn serve<IO: AsyncRead + AsyncWrite + Send + 'static>(io: IO, roots: Arc<Roots>) -> std::io::Result<()> {
    let (mut rd, mut wr) = tokio::io::split(io);
    let (tx, mut rx) = mpsc::unbounded_channel::<(Vec<u8>, Vec<u8>)>();
    let writer = tokio::spawn(async move {
        while let Some((h, d)) = rx.recv().await {
            wire::write_frame(&mut wr, &h, &d).await?;
        }
        std::io::Result::Ok(())
    });
    let result = loop {
        let (header, data) = match wire::read_frame(&mut rd).await {
            Ok(Some(f)) => f,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let req: Request = match serde_json::from_slice(&header) {
            Ok(r) => r,
            Err(e) => break Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        };
        let (roots, tx) = (roots.clone(), tx.clone());
        tokio::task::spawn_blocking(move || {
            let (resp, out) = execute(&roots, &req, &data);
            if let Ok(h) = serde_json::to_vec(&resp) {
                let _ = tx.send((h, out));
            }
        });
    };
    drop(tx);
    writer.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(op: &str, path: &str) -> Request {
        Request { vol: "v".into(), op: op.into(), path: path.into(), ..Default::default() }
    }

    fn tree() -> (tempfile::TempDir, Roots) {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        (dir, Roots::from([("v".to_string(), data)]))
    }

    #[test]
    fn file_operations_round_trip_inside_the_tree() {
        let (_dir, roots) = tree();
        let run = |r: &Request, data: &[u8]| execute(&roots, r, data);
        let created = run(&Request { mode: Some(0o600), flags: Some(1), ..req("create", "/f") }, b"").0;
        assert_eq!((created.errno, created.attr.map(|a| (a.kind, a.mode))), (0, Some(('f', 0o600))));
        assert_eq!(run(&Request { flags: Some(1), ..req("create", "/f") }, b"").0.errno, libc::EEXIST);
        assert_eq!(run(&Request { off: Some(3), ..req("write", "/f") }, b"xyz").0.written, Some(3));
        let (_, bytes) = run(&Request { off: Some(0), len: Some(100), ..req("read", "/f") }, b"");
        assert_eq!(bytes, b"\0\0\0xyz");
        assert_eq!(run(&Request { mode: Some(0o750), ..req("mkdir", "/d") }, b"").0.errno, 0);
        assert_eq!(run(&Request { to: Some("/d/g".into()), ..req("rename", "/f") }, b"").0.errno, 0);
        assert_eq!(run(&Request { target: Some("../etc".into()), ..req("symlink", "/d/l") }, b"").0.errno, 0);
        let listing = run(&req("readdir", "/d"), b"").0.entries.unwrap();
        let names: Vec<_> = listing.iter().map(|e| (e.name.as_str(), e.attr.kind)).collect();
        assert_eq!(names, [("g", 'f'), ("l", 'l')]);
        assert_eq!(run(&req("readlink", "/d/l"), b"").0.target.as_deref(), Some("../etc"));
        let set = run(&Request { size: Some(1), mode: Some(0o644), mtime: Some(5_000_000_000), ..req("setattr", "/d/g") }, b"").0;
        assert_eq!(set.attr.map(|a| (a.size, a.mode, a.mtime)), Some((1, 0o644, 5_000_000_000)));
        assert_eq!(run(&req("rmdir", "/d"), b"").0.errno, libc::ENOTEMPTY);
        assert_eq!(run(&req("unlink", "/d/g"), b"").0.errno, 0);
        assert_eq!(run(&req("stat", "/d/g"), b"").0.errno, libc::ENOENT);
        assert_eq!(run(&req("unlink", "/"), b"").0.errno, libc::EPERM, "the root cannot be removed");
        assert_eq!(run(&Request { vol: "other".into(), ..req("stat", "/") }, b"").0.errno, libc::ENOENT);
    }

    #[test]
    fn nothing_outside_the_tree_is_reached() {
        let (dir, roots) = tree();
        let data = &roots["v"];
        std::fs::write(dir.path().join("outside"), "secret").unwrap();
        std::os::unix::fs::symlink("/", data.join("root")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside"), data.join("file-link")).unwrap();
        let run = |r: Request| execute(&roots, &r, b"x");
        for path in ["/../outside", "/./x", "//x", "x", "/root/etc/passwd", "/root/"] {
            let (resp, bytes) = run(Request { len: Some(10), ..req("read", path) });
            assert!(resp.errno != 0 && bytes.is_empty(), "{path}: {resp:?}");
        }
        // A symlink is reported and read as a link, never followed by a read, write or chmod.
        assert_eq!(run(req("stat", "/root")).0.attr.map(|a| a.kind), Some('l'));
        assert_eq!(run(Request { len: Some(10), ..req("read", "/file-link") }).0.errno, libc::ELOOP);
        assert_eq!(run(Request { off: Some(0), ..req("write", "/file-link") }).0.errno, libc::ELOOP);
        assert_ne!(run(Request { mode: Some(0o777), ..req("setattr", "/file-link") }).0.errno, 0);
        assert_ne!(run(Request { size: Some(0), ..req("setattr", "/file-link") }).0.errno, 0);
        assert_ne!(run(req("mkdir", "/root/tmp/escaped")).0.errno, 0);
        assert_eq!(std::fs::read_to_string(dir.path().join("outside")).unwrap(), "secret");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("outside")).unwrap().permissions().mode();
        assert_ne!(mode & 0o777, 0o777, "chmod did not follow the link");
        assert!(!std::path::Path::new("/tmp/escaped").exists());
    }
}
