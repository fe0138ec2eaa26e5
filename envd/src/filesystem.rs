//! `filesystem.Filesystem`: Stat, MakeDir, Move, ListDir, Remove (and the watcher
//! methods, served by `watch`), plus the `EntryInfo` every one of them returns.
//!
//! envd runs as root; paths resolve against the requesting user's home and
//! whatever it creates is chowned to that user, as upstream envd does.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::connect::{Call, Reply, RpcError, unary};
use crate::proto::{
    Code, Empty, EntryInfo, EntryResponse, FileType, ListDirResponse, MoveRequest, PathRequest,
};
use crate::users::{User, UserDb, resolve_path};

pub fn knows(service: &str, method: &str) -> bool {
    service == "filesystem.Filesystem"
        && (matches!(method, "Stat" | "MakeDir" | "Move" | "ListDir" | "Remove")
            || crate::watch::knows(method))
}

pub async fn dispatch(method: &str, call: Call) -> Reply {
    match method {
        "Stat" => unary(blocking(call, stat).await),
        "MakeDir" => unary(blocking(call, make_dir).await),
        "Move" => unary(blocking(call, move_entry).await),
        "ListDir" => unary(blocking(call, list_dir).await),
        "Remove" => unary(blocking(call, remove).await),
        other => crate::watch::dispatch(other, call).await,
    }
}

/// Filesystem syscalls block; keep them off the async workers.
async fn blocking<T: Send + 'static>(
    call: Call,
    f: fn(&Call) -> Result<T, RpcError>,
) -> Result<T, RpcError> {
    tokio::task::spawn_blocking(move || f(&call))
        .await
        .map_err(|e| RpcError::internal(e.to_string()))?
}

/// Empty paths mean the default workdir (from `/init`), relative ones start at the home.
fn path_of(call: &Call, path: &str) -> PathBuf {
    resolve_path(
        path,
        &call.user,
        call.state.runtime().default_workdir.as_deref(),
    )
}

fn stat(call: &Call) -> Result<EntryResponse, RpcError> {
    let req: PathRequest = call.message()?;
    let path = path_of(call, &req.path);
    Ok(EntryResponse {
        entry: Some(entry_info(&call.state.users, &path)?),
    })
}

fn make_dir(call: &Call) -> Result<EntryResponse, RpcError> {
    let req: PathRequest = call.message()?;
    let path = path_of(call, &req.path);
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => {
            return Err(RpcError::new(
                Code::AlreadyExists,
                format!("directory '{}' already exists", path.display()),
            ));
        }
        Ok(_) => {
            return Err(RpcError::invalid(format!(
                "path '{}' already exists but is not a directory",
                path.display()
            )));
        }
        Err(_) => {}
    }
    create_dirs(&path, &call.user)
        .map_err(|e| RpcError::io(&e, format!("creating directory '{}'", path.display())))?;
    Ok(EntryResponse {
        entry: Some(entry_info(&call.state.users, &path)?),
    })
}

fn move_entry(call: &Call) -> Result<EntryResponse, RpcError> {
    let req: MoveRequest = call.message()?;
    let (src, dst) = (path_of(call, &req.source), path_of(call, &req.destination));
    std::fs::symlink_metadata(&src)
        .map_err(|e| RpcError::io(&e, format!("source '{}'", src.display())))?;
    if let Some(parent) = dst.parent() {
        create_dirs(parent, &call.user)
            .map_err(|e| RpcError::io(&e, format!("creating '{}'", parent.display())))?;
    }
    std::fs::rename(&src, &dst).map_err(|e| {
        RpcError::io(
            &e,
            format!("moving '{}' to '{}'", src.display(), dst.display()),
        )
    })?;
    Ok(EntryResponse {
        entry: Some(entry_info(&call.state.users, &dst)?),
    })
}

fn list_dir(call: &Call) -> Result<ListDirResponse, RpcError> {
    let req: PathRequest = call.message()?;
    let root = path_of(call, &req.path);
    let meta = std::fs::metadata(&root)
        .map_err(|e| RpcError::io(&e, format!("directory '{}'", root.display())))?;
    if !meta.is_dir() {
        return Err(RpcError::invalid(format!(
            "path '{}' is not a directory",
            root.display()
        )));
    }
    let mut entries = Vec::new();
    walk(&call.state.users, &root, req.depth.max(1), &mut entries)?;
    Ok(ListDirResponse { entries })
}

/// Lists `dir` in name order, descending into real (non-symlink) directories up to `depth`.
fn walk(users: &UserDb, dir: &Path, depth: u32, out: &mut Vec<EntryInfo>) -> Result<(), RpcError> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| RpcError::io(&e, format!("reading directory '{}'", dir.display())))?
        .filter_map(|e| e.ok())
        .collect();
    names.sort_by_key(|e| e.file_name());
    for e in names {
        let path = e.path();
        // An entry can vanish between readdir and lstat; skip it rather than fail the listing.
        let Ok(info) = entry_info(users, &path) else {
            continue;
        };
        let descend = depth > 1 && info.file_type == FileType::Directory && !info.is_symlink;
        out.push(info);
        if descend {
            // Unreadable subdirectories are listed but not entered.
            let _ = walk(users, &path, depth - 1, out);
        }
    }
    Ok(())
}

fn remove(call: &Call) -> Result<Empty, RpcError> {
    let req: PathRequest = call.message()?;
    let path = path_of(call, &req.path);
    // Like upstream's `os.RemoveAll`: removing what is already gone succeeds.
    let res = match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&path),
        Ok(_) => std::fs::remove_file(&path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    match res {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(RpcError::io(&e, format!("removing '{}'", path.display())))
        }
        _ => Ok(Empty {}),
    }
}

/// `mkdir -p` that chowns every directory it creates to `user`.
pub fn create_dirs(path: &Path, user: &User) -> std::io::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        create_dirs(parent, user)?;
    }
    match std::fs::create_dir(path) {
        Ok(()) => {
            let _ = std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid));
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Builds the `EntryInfo` of `path` without following a final symlink; for a
/// symlink, `type` describes the target and `isSymlink` marks the link (as newer
/// envd does; the SDK reads both forms).
pub fn entry_info(users: &UserDb, path: &Path) -> Result<EntryInfo, RpcError> {
    let lmeta = std::fs::symlink_metadata(path)
        .map_err(|e| RpcError::io(&e, format!("path '{}'", path.display())))?;
    let is_symlink = lmeta.file_type().is_symlink();
    let (file_type, symlink_target) = if is_symlink {
        let target = std::fs::canonicalize(path).ok();
        let kind = match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => FileType::Directory,
            Ok(_) => FileType::File,
            Err(_) => FileType::Symlink, // dangling link
        };
        let target = target
            .or_else(|| std::fs::read_link(path).ok())
            .map(|t| t.display().to_string());
        (kind, target)
    } else if lmeta.is_dir() {
        (FileType::Directory, None)
    } else {
        (FileType::File, None)
    };
    let mode = lmeta.permissions().mode();
    Ok(EntryInfo {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into()),
        file_type,
        path: path.display().to_string(),
        size: lmeta.len() as i64,
        mode: mode & 0o7777,
        permissions: permissions_string(mode),
        owner: users.user_name(lmeta.uid()),
        group: users.group_name(lmeta.gid()),
        modified_time: Some(rfc3339(lmeta.mtime(), lmeta.mtime_nsec())),
        symlink_target,
        metadata: crate::metadata::read(path),
        is_symlink,
    })
}

fn rfc3339(secs: i64, nanos: i64) -> String {
    chrono::DateTime::from_timestamp(secs, nanos.clamp(0, 999_999_999) as u32)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// `ls -l`-style permissions, e.g. `-rw-r--r--` or `drwxr-xr-x`.
pub fn permissions_string(mode: u32) -> String {
    let kind = match mode & libc::S_IFMT {
        libc::S_IFDIR => 'd',
        libc::S_IFLNK => 'l',
        libc::S_IFCHR => 'c',
        libc::S_IFBLK => 'b',
        libc::S_IFIFO => 'p',
        libc::S_IFSOCK => 's',
        _ => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(kind);
    let bits = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o040, 'r'),
        (0o020, 'w'),
        (0o010, 'x'),
        (0o004, 'r'),
        (0o002, 'w'),
        (0o001, 'x'),
    ];
    for (i, (bit, c)) in bits.iter().enumerate() {
        let set = mode & bit != 0;
        let special = match i {
            2 => mode & libc::S_ISUID != 0,
            5 => mode & libc::S_ISGID != 0,
            8 => mode & libc::S_ISVTX != 0,
            _ => false,
        };
        s.push(match (set, special, i) {
            (true, true, 8) => 't',
            (false, true, 8) => 'T',
            (true, true, _) => 's',
            (false, true, _) => 'S',
            (true, false, _) => *c,
            (false, false, _) => '-',
        });
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn permissions() {
        assert_eq!(super::permissions_string(0o100644), "-rw-r--r--");
        assert_eq!(super::permissions_string(0o040755), "drwxr-xr-x");
        assert_eq!(super::permissions_string(0o041777), "drwxrwxrwt");
    }
}
