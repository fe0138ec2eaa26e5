//! Linux users and groups, read straight from `/etc/passwd` and `/etc/group`.
//!
//! envd is linked statically (`+crt-static`), where glibc's NSS (`getpwnam`)
//! cannot load its modules, so we parse the files ourselves. The text is cached
//! and re-read whenever a file's mtime or size changes (templates and users add
//! accounts at any time; a directory listing asks for hundreds of names).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What a process needs to run as a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    pub shell: String,
    /// Supplementary groups, including the primary one.
    pub groups: Vec<u32>,
}

/// Where the account databases live (tests point this elsewhere), with a shared cache.
#[derive(Debug, Clone)]
pub struct UserDb {
    passwd: PathBuf,
    group: PathBuf,
    cache: Arc<Mutex<[Cached; 2]>>,
}

#[derive(Debug, Default, Clone)]
struct Cached {
    stamp: Option<(SystemTime, u64)>,
    text: Arc<str>,
}

impl UserDb {
    pub fn new(passwd: PathBuf, group: PathBuf) -> Self {
        UserDb {
            passwd,
            group,
            cache: Default::default(),
        }
    }

    /// The current text of the passwd (0) or group (1) file; empty when unreadable.
    fn text(&self, which: usize) -> Arc<str> {
        let path = if which == 0 {
            &self.passwd
        } else {
            &self.group
        };
        let stamp = std::fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut cache[which];
        if slot.stamp != stamp || stamp.is_none() {
            slot.text = std::fs::read_to_string(path).unwrap_or_default().into();
            slot.stamp = stamp;
        }
        slot.text.clone()
    }

    /// Looks a user up by name.
    pub fn user(&self, name: &str) -> Option<User> {
        let passwd = self.text(0);
        let entry = passwd.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() >= 7 && f[0] == name).then_some(f)
        })?;
        let uid = entry[2].parse().ok()?;
        let gid = entry[3].parse().ok()?;
        let home = if entry[5].is_empty() {
            PathBuf::from("/")
        } else {
            PathBuf::from(entry[5])
        };
        let shell = if entry[6].is_empty() {
            "/bin/sh".to_string()
        } else {
            entry[6].to_string()
        };
        let mut groups = vec![gid];
        {
            let group = self.text(1);
            for line in group.lines() {
                let f: Vec<&str> = line.split(':').collect();
                if f.len() < 4 {
                    continue;
                }
                let Ok(g) = f[2].parse::<u32>() else { continue };
                if f[3].split(',').any(|m| m.trim() == name) && !groups.contains(&g) {
                    groups.push(g);
                }
            }
        }
        Some(User {
            name: name.to_string(),
            uid,
            gid,
            home,
            shell,
            groups,
        })
    }

    /// Name of a uid, or the number itself when it has no entry (like `ls -l`).
    pub fn user_name(&self, uid: u32) -> String {
        name_by_id(&self.text(0), uid).unwrap_or_else(|| uid.to_string())
    }

    /// Name of a gid, or the number itself.
    pub fn group_name(&self, gid: u32) -> String {
        name_by_id(&self.text(1), gid).unwrap_or_else(|| gid.to_string())
    }
}

fn name_by_id(text: &str, id: u32) -> Option<String> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 3 && f[2].parse::<u32>().ok() == Some(id)).then(|| f[0].to_string())
    })
}

/// Extracts the user from `Authorization: Basic base64("<user>:")`.
///
/// Returns `Err` for a malformed header so callers can answer 401 instead of
/// silently falling back to the default user.
pub fn basic_auth_user(header: &str) -> Result<String, String> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))
        .ok_or_else(|| "authorization header is not Basic".to_string())?;
    let raw = crate::proto::b64::decode(encoded.trim()).map_err(|e| format!("bad base64: {e}"))?;
    let text = String::from_utf8(raw).map_err(|_| "authorization is not UTF-8".to_string())?;
    let user = text.split(':').next().unwrap_or_default();
    if user.is_empty() {
        return Err("empty user in authorization header".into());
    }
    Ok(user.to_string())
}

/// Resolves a request path the way envd does: `~` and relative paths start at
/// the user's home; the result is absolute but symlinks are not resolved.
pub fn resolve_path(path: &str, user: &User, default_workdir: Option<&Path>) -> PathBuf {
    let home = &user.home;
    let joined = if path.is_empty() {
        default_workdir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| home.clone())
    } else if path == "~" {
        home.clone()
    } else if let Some(rest) = path.strip_prefix("~/") {
        home.join(rest)
    } else if path.starts_with('/') {
        PathBuf::from(path)
    } else {
        home.join(path)
    };
    normalize(&joined)
}

/// Lexically removes `.` and `..` (no filesystem access, no symlink resolution).
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(p) => out.push(p),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_and_groups() {
        let dir = std::env::temp_dir().join(format!("envd-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("passwd"),
            "root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000::/home/user:/bin/bash\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("group"),
            "root:x:0:\nuser:x:1000:\nsudo:x:27:user,other\n",
        )
        .unwrap();
        let db = UserDb::new(dir.join("passwd"), dir.join("group"));
        let u = db.user("user").unwrap();
        assert_eq!(
            (u.uid, u.gid, u.groups.clone()),
            (1000, 1000, vec![1000, 27])
        );
        assert_eq!(u.home, PathBuf::from("/home/user"));
        assert!(db.user("nobody").is_none());
        assert_eq!(db.group_name(27), "sudo");
        assert_eq!(db.user_name(4242), "4242");
        assert_eq!(
            resolve_path("a/../b", &u, None),
            PathBuf::from("/home/user/b")
        );
        assert_eq!(resolve_path("~/x", &u, None), PathBuf::from("/home/user/x"));
        assert_eq!(
            resolve_path("/etc/./hosts", &u, None),
            PathBuf::from("/etc/hosts")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn basic_auth() {
        assert_eq!(basic_auth_user("Basic dXNlcjo=").unwrap(), "user");
        assert!(basic_auth_user("Bearer x").is_err());
    }
}
