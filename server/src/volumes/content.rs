//! The volume content API: stat, list, make directories, read, write, change metadata and
//! remove, inside one volume's tree.
//!
//! Invariants:
//! - A request path is made of plain names: `..`, NUL and a path through a symlink are refused
//!   (400), so nothing outside the volume's `data` directory is ever touched.
//! - A write is published only when complete: the body streams into `tmp/`, is fsynced and
//!   renamed over the target. A broken upload or a full disk (507) leaves the old file as it was.
//! - Paths are reported as absolute within the volume (`/dir/file`); the root is `/`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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
}

fn ts(secs: i64, nsecs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, nsecs.clamp(0, 999_999_999) as u32).unwrap_or_default()
}

fn path_not_found(p: &str) -> ApiError {
    ApiError::not_found(format!("path {p} not found"))
}

fn io_err(e: std::io::Error, p: &str) -> ApiError {
    match e.kind() {
        std::io::ErrorKind::NotFound => path_not_found(p),
        std::io::ErrorKind::AlreadyExists => ApiError::conflict(format!("path {p} already exists")),
        _ => ApiError::from(e),
    }
}

impl Tree {
    pub fn new(dir: PathBuf) -> Self {
        Tree { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.join(DATA)
    }

    /// The host path of `rel`, refusing any component (but the last) that is not a directory.
    fn host(&self, rel: &Rel) -> ApiResult<PathBuf> {
        let mut p = self.data();
        for (i, name) in rel.0.iter().enumerate() {
            p.push(name);
            if i + 1 < rel.0.len() {
                match std::fs::symlink_metadata(&p) {
                    Ok(m) if m.file_type().is_symlink() => {
                        return Err(ApiError::bad_request(format!("path {} goes through a symlink", rel.display())));
                    }
                    Ok(m) if !m.is_dir() => {
                        return Err(ApiError::bad_request(format!("{} is not a directory", p.display_in(&self.data()))));
                    }
                    _ => {}
                }
            }
        }
        Ok(p)
    }

    fn stat_at(&self, host: &Path, rel_path: &str) -> ApiResult<EntryStat> {
        let m = std::fs::symlink_metadata(host).map_err(|e| io_err(e, rel_path))?;
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            "directory"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else {
            "unknown"
        };
        let target = ft.is_symlink().then(|| std::fs::read_link(host).ok()).flatten().map(|t| t.display().to_string());
        let name = host
            .file_name()
            .filter(|_| rel_path != "/")
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into());
        Ok(EntryStat {
            name,
            kind,
            path: rel_path.to_string(),
            size: m.len(),
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            atime: ts(m.atime(), m.atime_nsec()),
            mtime: ts(m.mtime(), m.mtime_nsec()),
            ctime: ts(m.ctime(), m.ctime_nsec()),
            target,
        })
    }

    pub fn stat(&self, path: &str) -> ApiResult<EntryStat> {
        let rel = Rel::parse(path)?;
        let host = self.host(&rel)?;
        self.stat_at(&host, &rel.display())
    }

    /// Entries of a directory, `depth` levels deep (1 = its children), sorted by path.
    pub fn list(&self, path: &str, depth: Option<u32>) -> ApiResult<Vec<EntryStat>> {
        let depth = depth.unwrap_or(1);
        if depth == 0 || depth > MAX_DEPTH {
            return Err(ApiError::bad_request(format!("depth must be between 1 and {MAX_DEPTH}")));
        }
        let rel = Rel::parse(path)?;
        let host = self.host(&rel)?;
        let top = self.stat_at(&host, &rel.display())?;
        if top.kind != "directory" {
            return Err(ApiError::bad_request(format!("path {} is not a directory", rel.display())));
        }
        let mut out = Vec::new();
        self.walk(&host, &rel.0, depth, &mut out)?;
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn walk(&self, host: &Path, names: &[String], depth: u32, out: &mut Vec<EntryStat>) -> ApiResult<()> {
        let mut entries: Vec<_> = std::fs::read_dir(host)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let mut child = names.to_vec();
            child.push(e.file_name().to_string_lossy().into_owned());
            let rel = Rel(child);
            let stat = self.stat_at(&e.path(), &rel.display())?;
            let is_dir = stat.kind == "directory";
            out.push(stat);
            if is_dir && depth > 1 {
                self.walk(&e.path(), &rel.0, depth - 1, out)?;
            }
        }
        Ok(())
    }

    fn apply(host: &Path, meta: Metadata, default_mode: Option<u32>) -> std::io::Result<()> {
        if let Some(mode) = meta.mode.or(default_mode) {
            std::fs::set_permissions(host, std::fs::Permissions::from_mode(mode & 0o7777))?;
        }
        if meta.uid.is_some() || meta.gid.is_some() {
            std::os::unix::fs::lchown(host, meta.uid, meta.gid)?;
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
        let host = self.host(&rel)?;
        let shown = rel.display();
        if force {
            match std::fs::symlink_metadata(&host) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(ApiError::conflict(format!("path {shown} exists and is not a directory"))),
                Err(_) => std::fs::create_dir_all(&host).map_err(|e| io_err(e, &shown))?,
            }
        } else {
            let parent = host.parent().unwrap_or(&host);
            if !parent.is_dir() {
                return Err(ApiError::not_found(format!("parent directory of {shown} not found")));
            }
            std::fs::create_dir(&host).map_err(|e| io_err(e, &shown))?;
        }
        Self::apply(&host, meta, Some(meta.mode.unwrap_or(DEFAULT_DIR_MODE)))?;
        self.stat_at(&host, &shown)
    }

    /// Where an upload of `path` goes: checked, with its parent made when `force`.
    pub fn prepare_write(&self, path: &str, meta: &Metadata, force: bool) -> ApiResult<(PathBuf, String)> {
        Self::check_mode(meta)?;
        let rel = Rel::parse(path)?;
        if rel.0.is_empty() {
            return Err(ApiError::bad_request("path / is a directory"));
        }
        let host = self.host(&rel)?;
        let shown = rel.display();
        if std::fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
            return Err(ApiError::conflict(format!("path {shown} is a directory")));
        }
        let parent = host.parent().unwrap_or(&host).to_path_buf();
        if !parent.is_dir() {
            if !force {
                return Err(ApiError::not_found(format!("parent directory of {shown} not found")));
            }
            std::fs::create_dir_all(&parent).map_err(|e| io_err(e, &shown))?;
        }
        Ok((host, shown))
    }

    /// A fresh temporary file for an upload, on the volume's filesystem.
    pub fn temp_path(&self) -> PathBuf {
        self.dir.join(TMP).join(format!("upload-{}", crate::ids::image_id()))
    }

    /// Publish a complete upload as `host` and apply its metadata.
    pub fn publish(&self, tmp: &Path, host: &Path, shown: &str, meta: Metadata) -> ApiResult<EntryStat> {
        Self::apply(tmp, meta, Some(meta.mode.unwrap_or(DEFAULT_FILE_MODE)))?;
        std::fs::rename(tmp, host).map_err(|e| io_err(e, shown))?;
        self.stat_at(host, shown)
    }

    /// The file to stream for a read.
    pub fn file_for_read(&self, path: &str) -> ApiResult<PathBuf> {
        let rel = Rel::parse(path)?;
        let host = self.host(&rel)?;
        let stat = self.stat_at(&host, &rel.display())?;
        match stat.kind {
            "file" => Ok(host),
            "directory" => Err(ApiError::bad_request(format!("path {} is a directory", rel.display()))),
            _ => Err(ApiError::bad_request(format!("path {} is not a regular file", rel.display()))),
        }
    }

    pub fn update_metadata(&self, path: &str, meta: Metadata) -> ApiResult<EntryStat> {
        Self::check_mode(&meta)?;
        let rel = Rel::parse(path)?;
        let host = self.host(&rel)?;
        let shown = rel.display();
        self.stat_at(&host, &shown)?;
        Self::apply(&host, meta, None).map_err(|e| io_err(e, &shown))?;
        self.stat_at(&host, &shown)
    }

    /// Remove a file, symlink or directory (with its contents).
    pub fn remove(&self, path: &str) -> ApiResult<()> {
        let rel = Rel::parse(path)?;
        if rel.0.is_empty() {
            return Err(ApiError::bad_request("the volume's root cannot be removed"));
        }
        let host = self.host(&rel)?;
        let shown = rel.display();
        let m = std::fs::symlink_metadata(&host).map_err(|e| io_err(e, &shown))?;
        let r = if m.is_dir() { std::fs::remove_dir_all(&host) } else { std::fs::remove_file(&host) };
        r.map_err(|e| io_err(e, &shown))
    }
}

/// `p` shown relative to `root` as a volume path.
trait DisplayIn {
    fn display_in(&self, root: &Path) -> String;
}

impl DisplayIn for PathBuf {
    fn display_in(&self, root: &Path) -> String {
        format!("/{}", self.strip_prefix(root).unwrap_or(self).display())
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

        let (host, shown) = t.prepare_write("/a/b/f.txt", &Metadata::default(), false).unwrap();
        let tmp = t.temp_path();
        std::fs::write(&tmp, b"hello").unwrap();
        let s = t.publish(&tmp, &host, &shown, Metadata::default()).unwrap();
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
}
