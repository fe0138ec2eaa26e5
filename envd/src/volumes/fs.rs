//! The FUSE file system of one mounted volume: every operation becomes a request on the
//! volume channel ([`super::hub`]), answered by sandboxd from the volume's files on the host.
//!
//! Inode numbers are this mount's own: a path gets one on first sight and keeps it (renames
//! move the numbers with the paths). Nothing is cached here; the kernel keeps attributes and
//! names for [`TTL`], so other sandboxes' changes show within a second.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};

use super::hub::Hub;
use super::wire::{self, Attr};

const TTL: Duration = Duration::from_secs(1);
/// Largest read or write sent in one request.
pub const MAX_IO: u32 = 1 << 20;

struct Inodes {
    by_ino: HashMap<u64, String>,
    by_path: HashMap<String, u64>,
    next: u64,
}

impl Inodes {
    fn new() -> Self {
        let mut t = Inodes {
            by_ino: HashMap::new(),
            by_path: HashMap::new(),
            next: 2,
        };
        t.by_ino.insert(1, "/".into());
        t.by_path.insert("/".into(), 1);
        t
    }

    fn ino(&mut self, path: &str) -> u64 {
        if let Some(&i) = self.by_path.get(path) {
            return i;
        }
        let i = self.next;
        self.next += 1;
        self.by_ino.insert(i, path.to_string());
        self.by_path.insert(path.to_string(), i);
        i
    }

    /// Moves `from` and everything under it to `to` (a replaced `to` loses its number).
    fn rename(&mut self, from: &str, to: &str) {
        let prefix = format!("{from}/");
        let moved: Vec<(String, u64)> = self
            .by_path
            .iter()
            .filter(|(p, _)| p.as_str() == from || p.starts_with(&prefix))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        self.forget_path(to);
        for (old, i) in moved {
            self.by_path.remove(&old);
            let new = format!("{to}{}", &old[from.len()..]);
            self.by_ino.insert(i, new.clone());
            self.by_path.insert(new, i);
        }
    }

    fn forget_path(&mut self, path: &str) {
        if let Some(i) = self.by_path.remove(path) {
            self.by_ino.remove(&i);
        }
    }
}

pub struct VolumeFs {
    volume_id: String,
    hub: &'static Hub,
    inodes: Mutex<Inodes>,
}

fn join(parent: &str, name: &OsStr) -> Result<String, Errno> {
    let name = name.to_str().ok_or(Errno::EINVAL)?;
    if name.is_empty() || name == "." || name == ".." || name.contains('/') {
        return Err(Errno::EINVAL);
    }
    Ok(if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    })
}

fn time(ns: i64) -> SystemTime {
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns as u64)
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

fn wire_time(t: Option<TimeOrNow>) -> Option<i64> {
    t.map(|t| match t {
        TimeOrNow::Now => -1,
        TimeOrNow::SpecificTime(t) => match t.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_nanos() as i64,
            Err(e) => -(e.duration().as_nanos() as i64),
        },
    })
}

fn file_attr(ino: u64, a: &Attr) -> FileAttr {
    let kind = match a.kind {
        'd' => FileType::Directory,
        'l' => FileType::Symlink,
        'f' => FileType::RegularFile,
        _ => FileType::NamedPipe,
    };
    FileAttr {
        ino: INodeNo(ino),
        size: a.size,
        blocks: a.blocks,
        atime: time(a.atime),
        mtime: time(a.mtime),
        ctime: time(a.ctime),
        crtime: time(a.ctime),
        kind,
        perm: (a.mode & 0o7777) as u16,
        nlink: a.nlink.max(1),
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

impl VolumeFs {
    pub fn new(volume_id: String, hub: &'static Hub) -> Self {
        VolumeFs {
            volume_id,
            hub,
            inodes: Mutex::new(Inodes::new()),
        }
    }

    fn inodes(&self) -> std::sync::MutexGuard<'_, Inodes> {
        self.inodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn path(&self, ino: INodeNo) -> Result<String, Errno> {
        self.inodes().by_ino.get(&ino.0).cloned().ok_or(Errno::ESTALE)
    }

    fn child(&self, parent: INodeNo, name: &OsStr) -> Result<String, Errno> {
        join(&self.path(parent)?, name)
    }

    fn req(&self, op: &'static str, path: String) -> wire::Request {
        wire::Request {
            vol: self.volume_id.clone(),
            op: op.into(),
            path,
            ..Default::default()
        }
    }

    fn call(&self, req: wire::Request, data: &[u8]) -> Result<(wire::Response, Vec<u8>), Errno> {
        self.hub.call(req, data).map_err(Errno::from_i32)
    }

    /// Runs a request whose answer is an entry's attributes, numbering the entry.
    fn entry(&self, req: wire::Request) -> Result<FileAttr, Errno> {
        let path = req.path.clone();
        let (resp, _) = self.call(req, &[])?;
        let attr = resp.attr.ok_or(Errno::EIO)?;
        Ok(file_attr(self.inodes().ino(&path), &attr))
    }

    fn reply_entry(&self, req: Result<wire::Request, Errno>, reply: ReplyEntry) {
        match req.and_then(|r| self.entry(r)) {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn reply_empty(&self, req: Result<wire::Request, Errno>, reply: ReplyEmpty) {
        match req.and_then(|r| self.call(r, &[])) {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn owned(&self, req: &Request, op: &'static str, path: String, mode: Option<u32>) -> wire::Request {
        wire::Request {
            mode,
            uid: Some(req.uid()),
            gid: Some(req.gid()),
            ..self.req(op, path)
        }
    }
}

impl Filesystem for VolumeFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        self.reply_entry(self.child(parent, name).map(|p| self.req("stat", p)), reply);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.path(ino).and_then(|p| self.entry(self.req("stat", p))) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let req = self.path(ino).map(|p| wire::Request {
            mode: mode.map(|m| m & 0o7777),
            uid,
            gid,
            size,
            atime: wire_time(atime),
            mtime: wire_time(mtime),
            ..self.req("setattr", p)
        });
        match req.and_then(|r| self.entry(r)) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self
            .path(ino)
            .and_then(|p| self.call(self.req("readlink", p), &[]))
        {
            Ok((r, _)) => reply.data(r.target.unwrap_or_default().as_bytes()),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(Errno::EPERM);
        }
        let r = self.child(parent, name).map(|p| wire::Request {
            flags: Some(1),
            ..self.owned(req, "create", p, Some(mode & !umask & 0o7777))
        });
        self.reply_entry(r, reply);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let r = self
            .child(parent, name)
            .map(|p| self.owned(req, "mkdir", p, Some(mode & !umask & 0o7777)));
        self.reply_entry(r, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let path = self.child(parent, name);
        self.reply_empty(path.clone().map(|p| self.req("unlink", p)), reply);
        if let Ok(p) = path {
            self.inodes().forget_path(&p);
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let path = self.child(parent, name);
        self.reply_empty(path.clone().map(|p| self.req("rmdir", p)), reply);
        if let Ok(p) = path {
            self.inodes().forget_path(&p);
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        let r = match target.to_str() {
            Some(t) => self.child(parent, link_name).map(|p| wire::Request {
                target: Some(t.to_string()),
                ..self.owned(req, "symlink", p, None)
            }),
            None => Err(Errno::EINVAL),
        };
        self.reply_entry(r, reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let paths = self
            .child(parent, name)
            .and_then(|a| Ok((a, self.child(newparent, newname)?)));
        let (from, to) = match paths {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let r = wire::Request {
            to: Some(to.clone()),
            flags: Some(flags.bits()),
            ..self.req("rename", from.clone())
        };
        match self.call(r, &[]) {
            Ok(_) => {
                let mut t = self.inodes();
                if flags.contains(RenameFlags::RENAME_EXCHANGE) {
                    let tmp = format!("{from}\0swap");
                    t.rename(&from, &tmp);
                    t.rename(&to, &from);
                    t.rename(&tmp, &to);
                } else {
                    t.rename(&from, &to);
                }
                reply.ok()
            }
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let r = self.path(ino).map(|p| wire::Request {
            off: Some(offset),
            len: Some(size.min(MAX_IO)),
            ..self.req("read", p)
        });
        match r.and_then(|r| self.call(r, &[])) {
            Ok((_, data)) => reply.data(&data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let r = self.path(ino).map(|p| wire::Request {
            off: Some(offset),
            ..self.req("write", p)
        });
        match r.and_then(|r| self.call(r, data)) {
            Ok((resp, _)) => reply.written(resp.written.unwrap_or(0)),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.reply_empty(self.path(ino).map(|p| self.req("fsync", p)), reply);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let path = match self.path(ino) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let entries = match self.call(self.req("readdir", path.clone()), &[]) {
            Ok((r, _)) => r.entries.unwrap_or_default(),
            Err(e) => return reply.error(e),
        };
        let mut t = self.inodes();
        let parent = match path.rsplit_once('/') {
            Some(("", _)) | None => 1,
            Some((p, _)) => t.ino(p),
        };
        let mut all = vec![
            (ino.0, FileType::Directory, ".".to_string()),
            (parent, FileType::Directory, "..".to_string()),
        ];
        for e in entries {
            let Ok(p) = join(&path, OsStr::new(&e.name)) else {
                continue;
            };
            all.push((t.ino(&p), file_attr(0, &e.attr).kind, e.name));
        }
        for (i, (ino, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(ino), (i + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        match self.call(self.req("statfs", "/".into()), &[]) {
            Ok((r, _)) => {
                let s = r.statfs.unwrap_or_default();
                reply.statfs(s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, 255, s.bsize)
            }
            Err(e) => reply.error(e),
        }
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        // Hard links are not supported across the channel (each path is its own entry).
        reply.error(Errno::EPERM);
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let r = self.child(parent, name).map(|p| wire::Request {
            flags: Some(u32::from(flags & libc::O_EXCL != 0)),
            ..self.owned(req, "create", p, Some(mode & !umask & 0o7777))
        });
        match r.and_then(|r| self.entry(r)) {
            Ok(a) => reply.created(&TTL, &a, Generation(0), FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_move_numbers_with_their_subtrees() {
        let mut t = Inodes::new();
        let a = t.ino("/a");
        let f = t.ino("/a/f");
        let other = t.ino("/ab");
        let b = t.ino("/b");
        t.rename("/a", "/b");
        assert_eq!(t.by_ino[&a], "/b");
        assert_eq!(t.by_ino[&f], "/b/f");
        assert_eq!(t.by_ino[&other], "/ab");
        assert!(!t.by_ino.contains_key(&b), "the replaced entry's number is gone");
        assert_eq!(t.ino("/b/f"), f);
        assert!(!t.by_path.contains_key("/a/f"));
    }

    #[test]
    fn names_that_leave_their_directory_are_refused() {
        for bad in ["", ".", "..", "a/b"] {
            assert!(join("/", OsStr::new(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(join("/", OsStr::new("x")).unwrap(), "/x");
        assert_eq!(join("/d", OsStr::new("x")).unwrap(), "/d/x");
    }
}
