//! The volume content API: stat, list, make directories, read, write, change metadata and
//! remove, inside one volume's tree.
//!
//! Invariants:
//! - A request path is made of plain names: `..` and NUL are refused (400). It is resolved by
//!   [`super::at`], one name at a time without following symlinks, and used only through the
//!   descriptors that gives, so nothing outside the volume's `data` directory is ever touched,
//!   even by a sandbox that has the volume mounted and swaps a directory for a symlink while a
//!   request runs. A path through a symlink is a 400; a symlink's mode is never changed.
//! - A write is published only when complete: the body streams into `tmp/`, is fsynced and
//!   renamed over the target. A broken upload or a full disk (507) leaves the old file as it was.
//! - Paths are reported as absolute within the volume (`/dir/file`); the root is `/`.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::at::{self, Errno, check, cstr, openat};
use super::wire::Attr;
use crate::error::{ApiError, ApiResult};

pub const DATA: &str = "data";
pub const TMP: &str = "tmp";
const DEFAULT_FILE_MODE: u32 = 0o644;
const DEFAULT_DIR_MODE: u32 = 0o755;
const MAX_DEPTH: u32 = 64;

/// `VolumeEntryStat`.
#[derive(Debug, Serialize, PartialEq)]
pub struct EntryStat {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub path: String,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub atime: DateTime<Utc>,
    pub mtime: DateTime<Utc>,
    pub ctime: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Ownership and permissions a request may set (query parameters or the PATCH body).
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct Metadata {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub mode: Option<u32>,
}

/// A volume's files.
pub struct Tree {
    dir: PathBuf,
}

/// Where an upload is published: its directory (held open while the body streams) and name.
#[derive(Debug)]
pub struct Target {
    dir: OwnedFd,
    name: CString,
    shown: String,
}

/// A checked request path: the names it is made of.
struct Rel(Vec<String>);

impl Rel {
    fn parse(path: &str) -> ApiResult<Rel> {
        if path.contains('\0') {
            return Err(ApiError::bad_request("path must not contain NUL"));
        }
        let mut names = Vec::new();
        for part in path.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(ApiError::bad_request(format!("path {path:?} must not contain '..'"))),
                name => names.push(name.to_string()),
            }
        }
        Ok(Rel(names))
    }

    fn display(&self) -> String {
        format!("/{}", self.0.join("/"))
    }

    fn last(&self) -> ApiResult<Option<CString>> {
        self.0.last().map(|n| cstr(n).map_err(|_| ApiError::bad_request("path must not contain NUL"))).transpose()
    }
}

/// An opened path: its parent directory and last name (`None`: the volume's root itself).
struct Loc {
    dir: OwnedFd,
    name: Option<CString>,
}

/// Why a walk to a path's parent stopped.
enum Walk {
    /// A directory on the way does not exist.
    Missing,
    Refused(ApiError),
}

impl From<ApiError> for Walk {
    fn from(e: ApiError) -> Self {
        Walk::Refused(e)
    }
}

fn ts(ns: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000) as u32).unwrap_or_default()
}

fn path_not_found(p: &str) -> ApiError {
    ApiError::not_found(format!("path {p} not found"))
}

fn errno_err(e: Errno, p: &str) -> ApiError {
    match e {
        libc::ENOENT => path_not_found(p),
        libc::EEXIST => ApiError::conflict(format!("path {p} already exists")),
        e => ApiError::from(std::io::Error::from_raw_os_error(e)),
    }
}

fn kind_name(kind: char) -> &'static str {
    match kind {
        'd' => "directory",
        'f' => "file",
        'l' => "symlink",
        _ => "unknown",
    }
}

impl Tree {
    pub fn new(dir: PathBuf) -> Self {
        Tree { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.join(DATA)
    }

    /// Opens the directories of `rel` but its last name, one at a time without following a
    /// symlink; with `make`, missing ones are created (mode 0755).
    fn walk_to_parent(&self, rel: &Rel, make: bool) -> Result<OwnedFd, Walk> {
        let mut dir = at::open_root(&self.data()).map_err(|e| errno_err(e, "/"))?;
        let dirs = rel.0.len().saturating_sub(1);
        for (i, name) in rel.0[..dirs].iter().enumerate() {
            // The path up to this name, for errors only.
            let shown = || format!("/{}", rel.0[..=i].join("/"));
            let c = cstr(name).map_err(|e| errno_err(e, &shown()))?;
            if make {
                // SAFETY: plain syscall on a valid fd and C string.
                match check(unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), DEFAULT_DIR_MODE) }) {
                    Ok(()) | Err(libc::EEXIST) => {}
                    Err(e) => return Err(errno_err(e, &shown()).into()),
                }
            }
            dir = match at::open_dir_in(&dir, &c) {
                Ok(d) => d,
                Err(libc::ENOENT) => return Err(Walk::Missing),
                Err(libc::ENOTDIR) | Err(libc::ELOOP) => {
                    let symlink = at::stat_entry(&dir, Some(&c)).is_ok_and(|a| a.kind == 'l');
                    return Err(Walk::Refused(ApiError::bad_request(match symlink {
                        true => format!("path {} goes through a symlink", rel.display()),
                        false => format!("{} is not a directory", shown()),
                    })));
                }
                Err(e) => return Err(errno_err(e, &shown()).into()),
            };
        }
        Ok(dir)
    }

    /// `rel` opened as a parent and a name; a missing directory on the way is a 404 `missing`.
    fn locate(&self, rel: &Rel, make: bool, missing: impl FnOnce() -> ApiError) -> ApiResult<Loc> {
        match self.walk_to_parent(rel, make) {
            Ok(dir) => Ok(Loc { dir, name: rel.last()? }),
            Err(Walk::Missing) => Err(missing()),
            Err(Walk::Refused(e)) => Err(e),
        }
    }

    fn entry_stat(loc: &Loc, shown: &str) -> ApiResult<EntryStat> {
        let a = at::stat_entry(&loc.dir, loc.name.as_ref()).map_err(|e| errno_err(e, shown))?;
        Ok(Self::to_stat(a, &loc.dir, loc.name.as_ref(), shown))
    }

    fn to_stat(a: Attr, dir: &OwnedFd, name: Option<&CString>, shown: &str) -> EntryStat {
        let target = match (name, a.kind) {
            (Some(n), 'l') => at::read_link(dir, n).ok(),
            _ => None,
        };
        let name = name.map_or_else(|| "/".into(), |n| n.to_string_lossy().into_owned());
        EntryStat {
            name,
            kind: kind_name(a.kind),
            path: shown.to_string(),
            size: a.size,
            mode: a.mode,
            uid: a.uid,
            gid: a.gid,
            atime: ts(a.atime),
            mtime: ts(a.mtime),
            ctime: ts(a.ctime),
            target,
        }
    }

    pub fn stat(&self, path: &str) -> ApiResult<EntryStat> {
        let rel = Rel::parse(path)?;
        let shown = rel.display();
        let loc = self.locate(&rel, false, || path_not_found(&shown))?;
        Self::entry_stat(&loc, &shown)
    }

    /// Entries of a directory, `depth` levels deep (1 = its children), sorted by path.
    pub fn list(&self, path: &str, depth: Option<u32>) -> ApiResult<Vec<EntryStat>> {
        let depth = depth.unwrap_or(1);
        if depth == 0 || depth > MAX_DEPTH {
            return Err(ApiError::bad_request(format!("depth must be between 1 and {MAX_DEPTH}")));
        }
        let rel = Rel::parse(path)?;
        let shown = rel.display();
        let loc = self.locate(&rel, false, || path_not_found(&shown))?;
        if Self::entry_stat(&loc, &shown)?.kind != "directory" {
            return Err(ApiError::bad_request(format!("path {shown} is not a directory")));
        }
        let dir = match &loc.name {
            Some(n) => at::open_dir_in(&loc.dir, n).map_err(|e| errno_err(e, &shown))?,
            None => loc.dir,
        };
        let mut out = Vec::new();
        Self::walk(dir, &rel.0, depth, &mut out)?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn walk(dir: OwnedFd, names: &[String], depth: u32, out: &mut Vec<EntryStat>) -> ApiResult<()> {
        let shown = Rel(names.to_vec()).display();
        for (name, attr) in at::read_dir(&dir).map_err(|e| errno_err(e, &shown))? {
            let c = cstr(&name).map_err(|e| errno_err(e, &shown))?;
            let mut child = names.to_vec();
            child.push(name);
            let rel = Rel(child);
            out.push(Self::to_stat(attr, &dir, Some(&c), &rel.display()));
            // One replaced by a symlink since it was listed is listed, not descended into.
            if attr.kind == 'd' && depth > 1 && let Ok(sub) = at::open_dir_in(&dir, &c) {
                Self::walk(sub, &rel.0, depth - 1, out)?;
            }
        }
        Ok(())
    }

    /// Applies `meta` (or `default_mode`) to the node at `loc`; a symlink's mode is refused.
    fn apply(loc: &Loc, meta: Metadata, default_mode: Option<u32>, shown: &str) -> ApiResult<()> {
        if let Some(mode) = meta.mode.or(default_mode) {
            let node = match &loc.name {
                Some(n) => openat(loc.dir.as_raw_fd(), n, libc::O_PATH | libc::O_NOFOLLOW, 0),
                None => loc.dir.try_clone().map_err(at::io_errno),
            }
            .map_err(|e| errno_err(e, shown))?;
            if at::stat_entry(&node, None).is_ok_and(|a| a.kind == 'l') {
                return Err(ApiError::bad_request(format!("path {shown} is a symlink: its mode cannot be changed")));
            }
            at::chmod(&node, mode).map_err(|e| errno_err(e, shown))?;
        }
        if meta.uid.is_some() || meta.gid.is_some() {
            at::chown(&loc.dir, loc.name.as_ref(), meta.uid, meta.gid).map_err(|e| errno_err(e, shown))?;
        }
        Ok(())
    }

    fn check_mode(meta: &Metadata) -> ApiResult<()> {
        match meta.mode {
            Some(m) if m > 0o7777 => Err(ApiError::bad_request(format!("mode {m:#o} is not a permission mode"))),
            _ => Ok(()),
        }
    }

    /// Make a directory; `force` also makes missing parents and accepts an existing directory.
    pub fn make_dir(&self, path: &str, meta: Metadata, force: bool) -> ApiResult<EntryStat> {
        Self::check_mode(&meta)?;
        let rel = Rel::parse(path)?;
        if rel.0.is_empty() {
            return Err(ApiError::conflict("path / already exists"));
        }
        let shown = rel.display();
        let loc = self.locate(&rel, force, || ApiError::not_found(format!("parent directory of {shown} not found")))?;
        let name = loc.name.as_ref().expect("not the root");
        // SAFETY: plain syscall on a valid fd and C string.
        match check(unsafe { libc::mkdirat(loc.dir.as_raw_fd(), name.as_ptr(), DEFAULT_DIR_MODE) }) {
            Ok(()) => {}
            Err(libc::EEXIST) if force => match at::stat_entry(&loc.dir, Some(name)) {
                Ok(a) if a.kind == 'd' => {}
                _ => return Err(ApiError::conflict(format!("path {shown} exists and is not a directory"))),
            },
            Err(e) => return Err(errno_err(e, &shown)),
        }
        Self::apply(&loc, meta, Some(meta.mode.unwrap_or(DEFAULT_DIR_MODE)), &shown)?;
        Self::entry_stat(&loc, &shown)
    }

    /// Where an upload of `path` goes: checked, with its parents made when `force`.
    pub fn prepare_write(&self, path: &str, meta: &Metadata, force: bool) -> ApiResult<Target> {
        Self::check_mode(meta)?;
        let rel = Rel::parse(path)?;
        if rel.0.is_empty() {
            return Err(ApiError::bad_request("path / is a directory"));
        }
        let shown = rel.display();
        let loc = self.locate(&rel, force, || ApiError::not_found(format!("parent directory of {shown} not found")))?;
        let name = loc.name.expect("not the root");
        if at::stat_entry(&loc.dir, Some(&name)).is_ok_and(|a| a.kind == 'd') {
            return Err(ApiError::conflict(format!("path {shown} is a directory")));
        }
        Ok(Target { dir: loc.dir, name, shown })
    }

    /// A fresh temporary file for an upload, on the volume's filesystem.
    pub fn temp_path(&self) -> PathBuf {
        self.dir.join(TMP).join(format!("upload-{}", crate::ids::image_id()))
    }

    /// Publish a complete upload (`tmp`, under this volume's `tmp/`) as `target` and apply its
    /// metadata. A symlink at the target's name is replaced, not followed.
    pub fn publish(&self, tmp: &Path, target: Target, meta: Metadata) -> ApiResult<EntryStat> {
        let mode = meta.mode.unwrap_or(DEFAULT_FILE_MODE);
        std::fs::set_permissions(tmp, std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777))?;
        if meta.uid.is_some() || meta.gid.is_some() {
            std::os::unix::fs::chown(tmp, meta.uid, meta.gid)?;
        }
        let from = cstr(tmp.to_str().unwrap_or_default()).map_err(|e| errno_err(e, &target.shown))?;
        // SAFETY: plain syscall on valid fds and C strings.
        let renamed = check(unsafe {
            libc::renameat(libc::AT_FDCWD, from.as_ptr(), target.dir.as_raw_fd(), target.name.as_ptr())
        });
        match renamed {
            Err(libc::EISDIR) => return Err(ApiError::conflict(format!("path {} is a directory", target.shown))),
            r => r.map_err(|e| errno_err(e, &target.shown))?,
        }
        Self::entry_stat(&Loc { dir: target.dir, name: Some(target.name) }, &target.shown)
    }

    /// The regular file to stream for a read, opened (a symlink is never followed).
    pub fn file_for_read(&self, path: &str) -> ApiResult<File> {
        let rel = Rel::parse(path)?;
        let shown = rel.display();
        let loc = self.locate(&rel, false, || path_not_found(&shown))?;
        let not_file = |kind: char| match kind {
            'd' => ApiError::bad_request(format!("path {shown} is a directory")),
            _ => ApiError::bad_request(format!("path {shown} is not a regular file")),
        };
        let Some(name) = &loc.name else { return Err(not_file('d')) };
        let file = match openat(loc.dir.as_raw_fd(), name, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK, 0) {
            Ok(fd) => File::from(fd),
            Err(libc::ELOOP) => return Err(not_file('l')),
            Err(e) => return Err(errno_err(e, &shown)),
        };
        match file.metadata()?.file_type() {
            t if t.is_file() => Ok(file),
            t if t.is_dir() => Err(not_file('d')),
            _ => Err(not_file('o')),
        }
    }

    pub fn update_metadata(&self, path: &str, meta: Metadata) -> ApiResult<EntryStat> {
        Self::check_mode(&meta)?;
        let rel = Rel::parse(path)?;
        let shown = rel.display();
        let loc = self.locate(&rel, false, || path_not_found(&shown))?;
        Self::entry_stat(&loc, &shown)?;
        Self::apply(&loc, meta, None, &shown)?;
        Self::entry_stat(&loc, &shown)
    }

    /// Remove a file, symlink or directory (with its contents).
    pub fn remove(&self, path: &str) -> ApiResult<()> {
        let rel = Rel::parse(path)?;
        if rel.0.is_empty() {
            return Err(ApiError::bad_request("the volume's root cannot be removed"));
        }
        let shown = rel.display();
        let loc = self.locate(&rel, false, || path_not_found(&shown))?;
        at::remove_all(&loc.dir, loc.name.as_ref().expect("not the root")).map_err(|e| errno_err(e, &shown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, Tree) {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join(DATA)).unwrap();
        std::fs::create_dir_all(d.path().join(TMP)).unwrap();
        let t = Tree::new(d.path().to_path_buf());
        (d, t)
    }

    #[test]
    fn paths_stay_inside() {
        let (d, t) = tree();
        for bad in ["../x", "a/../../x", "a\0b"] {
            assert_eq!(t.stat(bad).unwrap_err().status, 400, "{bad:?}");
        }
        std::os::unix::fs::symlink("/etc", d.path().join(DATA).join("out")).unwrap();
        assert_eq!(t.stat("/out/passwd").unwrap_err().status, 400);
        assert_eq!(t.stat("/out").unwrap().kind, "symlink");
        assert_eq!(t.stat("/out").unwrap().target.as_deref(), Some("/etc"));
        assert_eq!(t.stat("/").unwrap().kind, "directory");
        assert_eq!(t.stat("missing").unwrap_err().status, 404);
    }

    #[test]
    fn dirs_files_and_listing() {
        let (_d, t) = tree();
        assert_eq!(t.make_dir("/a/b", Metadata::default(), false).unwrap_err().status, 404);
        let s = t.make_dir("/a/b", Metadata { mode: Some(0o700), ..Default::default() }, true).unwrap();
        assert_eq!((s.path.as_str(), s.kind, s.mode), ("/a/b", "directory", 0o700));
        assert_eq!(t.make_dir("/a/b", Metadata::default(), false).unwrap_err().status, 409);
        t.make_dir("/a/b", Metadata::default(), true).unwrap();

        let target = t.prepare_write("/a/b/f.txt", &Metadata::default(), false).unwrap();
        let tmp = t.temp_path();
        std::fs::write(&tmp, b"hello").unwrap();
        let s = t.publish(&tmp, target, Metadata::default()).unwrap();
        assert_eq!((s.size, s.mode, s.name.as_str()), (5, 0o644, "f.txt"));
        assert_eq!(t.prepare_write("/a", &Metadata::default(), true).unwrap_err().status, 409);
        assert_eq!(t.prepare_write("/x/y", &Metadata::default(), false).unwrap_err().status, 404);
        assert!(t.prepare_write("/x/y", &Metadata::default(), true).is_ok());

        let top: Vec<_> = t.list("/", None).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(top, ["/a", "/x"]);
        let deep: Vec<_> = t.list("/", Some(3)).unwrap().into_iter().map(|e| e.path).collect();
        assert_eq!(deep, ["/a", "/a/b", "/a/b/f.txt", "/x"]);
        assert_eq!(t.list("/a/b/f.txt", None).unwrap_err().status, 400);
        assert_eq!(t.list("/", Some(0)).unwrap_err().status, 400);
        assert_eq!(t.file_for_read("/a").unwrap_err().status, 400);

        let s = t.update_metadata("/a/b/f.txt", Metadata { mode: Some(0o600), ..Default::default() }).unwrap();
        assert_eq!(s.mode, 0o600);
        assert_eq!(t.update_metadata("/a", Metadata { mode: Some(0o17777), ..Default::default() }).unwrap_err().status, 400);
        t.remove("/a").unwrap();
        assert_eq!(t.remove("/a").unwrap_err().status, 404);
        assert_eq!(t.remove("/").unwrap_err().status, 400);
    }

    #[test]
    fn a_symlink_planted_in_the_tree_is_never_followed() {
        use std::os::unix::fs::PermissionsExt;
        let (d, t) = tree();
        let data = d.path().join(DATA);
        let outside = d.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), "secret").unwrap();
        std::os::unix::fs::symlink(&outside, data.join("dir-link")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), data.join("file-link")).unwrap();

        // An upload's directory is held open: swapping it for a symlink (as a sandbox with the
        // volume mounted could, mid-upload) moves nothing outside.
        t.make_dir("/d", Metadata::default(), false).unwrap();
        let target = t.prepare_write("/d/secret", &Metadata::default(), false).unwrap();
        std::fs::rename(data.join("d"), data.join("moved")).unwrap();
        std::os::unix::fs::symlink(&outside, data.join("d")).unwrap();
        let tmp = t.temp_path();
        std::fs::write(&tmp, b"planted").unwrap();
        t.publish(&tmp, target, Metadata::default()).unwrap();
        assert_eq!(std::fs::read_to_string(outside.join("secret")).unwrap(), "secret");
        assert_eq!(std::fs::read_to_string(data.join("moved/secret")).unwrap(), "planted");

        for path in ["/d/secret", "/dir-link/secret"] {
            assert_eq!(t.prepare_write(path, &Metadata::default(), true).unwrap_err().status, 400, "{path}");
            assert_eq!(t.make_dir(&format!("{path}-dir"), Metadata::default(), true).unwrap_err().status, 400);
            assert_eq!(t.stat(path).unwrap_err().status, 400);
        }
        assert_eq!(t.file_for_read("/file-link").unwrap_err().status, 400);
        let chmod = Metadata { mode: Some(0o777), ..Default::default() };
        assert_eq!(t.update_metadata("/file-link", chmod).unwrap_err().status, 400);
        let mode = std::fs::metadata(outside.join("secret")).unwrap().permissions().mode();
        assert_ne!(mode & 0o777, 0o777, "chmod did not follow the link");
        let listed: Vec<_> = t.list("/", Some(3)).unwrap().into_iter().map(|e| (e.path, e.kind)).collect();
        assert!(listed.contains(&("/dir-link".into(), "symlink")) && !listed.iter().any(|(p, _)| p.starts_with("/dir-link/")));
        t.remove("/d").unwrap();
        t.remove("/dir-link").unwrap();
        assert!(outside.join("secret").exists(), "removing a link leaves its target");
        std::os::unix::fs::symlink(&outside, data.join("moved/inner")).unwrap();
        t.remove("/moved").unwrap();
        assert!(outside.join("secret").exists() && !data.join("moved").exists());
    }
}
