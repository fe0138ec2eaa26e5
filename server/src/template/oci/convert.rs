//! Makes an unpacked image rootfs boot the way `base` does: envd at `/usr/local/bin/envd`
//! (PID 1, started by the initramfs), E2B's unprivileged `user` with a home, `/etc/hosts`,
//! user-mode networking's resolver, an fstab, the mount points envd and the initramfs need.
//!
//! Nothing from the image is ever executed on the host (no `chroot useradd`): the account
//! files are edited directly, which also works for images without shadow-utils, apt or bash.
//! Every write goes through [`Rootfs`], so a hostile image's symlinks (`/etc -> /host/etc`)
//! resolve inside the rootfs.

use std::path::Path;

use anyhow::{Context, bail};

use super::unpack::Rootfs;

/// Changes whenever what `prepare` writes changes (part of the image cache stamp).
pub const VERSION: &str = "1";

/// `/bin/bash` in images without bash.
const BASH_SHIM: &str = "#!/bin/sh\n# sandboxd: this image has no bash; the E2B SDKs run commands as `/bin/bash -l -c CMD`.\nexec /bin/sh \"$@\"\n";

/// E2B's default sandbox user.
const USER: &str = "user";

pub fn prepare(root: &Rootfs, envd: &Path, log: &(dyn Fn(String) + Send + Sync)) -> anyhow::Result<()> {
    if !root.exists(Path::new("bin/sh")) {
        bail!("the image has no /bin/sh: sandboxes run commands through a shell (use an image with a shell, e.g. busybox or debian)");
    }
    // The SDKs run commands as `/bin/bash -l -c CMD`; a POSIX sh (busybox ash, dash) takes
    // the same arguments. A script rather than a link: busybox picks its applet by the name
    // it is called with, and has no `bash` applet.
    if !root.exists(Path::new("bin/bash")) {
        root.write(Path::new("bin/bash"), BASH_SHIM.as_bytes(), 0o755)?;
        log("the image has no /bin/bash: /bin/bash runs /bin/sh".into());
    }
    for (dir, mode) in [("proc", 0o555), ("sys", 0o555), ("dev", 0o755), ("run", 0o755), ("tmp", 0o1777), ("root", 0o700)] {
        if !root.exists(Path::new(dir)) {
            let (parent, name) = root.parent_of(Path::new(dir))?;
            let p = parent.join(Path::new(name));
            std::fs::create_dir(&p)?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
        }
    }
    let envd_bytes = std::fs::read(envd).with_context(|| format!("read {}", envd.display()))?;
    root.write(Path::new("usr/local/bin/envd"), &envd_bytes, 0o755)?;

    root.write(Path::new("etc/hostname"), b"e2b\n", 0o644)?;
    root.write(Path::new("etc/hosts"), b"127.0.0.1 localhost\n127.0.1.1 e2b\n::1 localhost ip6-localhost ip6-loopback\n", 0o644)?;
    // User-mode networking's built-in DNS forwarder (images often link resolv.conf elsewhere).
    root.write(Path::new("etc/resolv.conf"), b"nameserver 10.0.2.3\n", 0o644)?;
    root.write(Path::new("etc/fstab"), b"/dev/vda / ext4 rw,noatime 0 1\n", 0o644)?;
    add_user(root, log)
}

/// Adds `user` (uid 1000 when free) with a group, a locked password and a home, unless the
/// image has one; gives it passwordless sudo when the image has sudo.
fn add_user(root: &Rootfs, log: &(dyn Fn(String) + Send + Sync)) -> anyhow::Result<()> {
    let passwd = root.read(Path::new("etc/passwd"))?.unwrap_or_default();
    let mut passwd = if passwd.lines().any(|l| l.starts_with("root:")) {
        passwd
    } else {
        format!("root:x:0:0:root:/root:/bin/sh\n{passwd}")
    };
    let group = root.read(Path::new("etc/group"))?.unwrap_or_default();
    let mut group = if group.lines().any(|l| l.starts_with("root:")) { group } else { format!("root:x:0:\n{group}") };
    let ids = |text: &str, field: usize| -> Vec<u32> {
        text.lines().filter_map(|l| l.split(':').nth(field)?.parse().ok()).collect()
    };
    let existing = passwd.lines().find(|l| l.split(':').next() == Some(USER)).map(String::from);
    let (uid, gid) = match existing {
        Some(line) => {
            let f: Vec<&str> = line.split(':').collect();
            (f.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000), f.get(3).and_then(|s| s.parse().ok()).unwrap_or(1000))
        }
        None => {
            let used_uids = ids(&passwd, 2);
            let uid = (1000..60000).find(|u| !used_uids.contains(u)).context("no free uid")?;
            let used_gids = ids(&group, 2);
            let gid = if used_gids.contains(&uid) {
                (1000..60000).find(|g| !used_gids.contains(g)).context("no free gid")?
            } else {
                uid
            };
            if uid != 1000 {
                log(format!("uid 1000 is taken in the image: '{USER}' gets uid {uid}"));
            }
            if !passwd.ends_with('\n') && !passwd.is_empty() {
                passwd.push('\n');
            }
            passwd.push_str(&format!("{USER}:x:{uid}:{gid}::/home/{USER}:/bin/bash\n"));
            if !group.lines().any(|l| l.starts_with(&format!("{USER}:"))) {
                if !group.ends_with('\n') && !group.is_empty() {
                    group.push('\n');
                }
                group.push_str(&format!("{USER}:x:{gid}:\n"));
            }
            if let Some(mut shadow) = root.read(Path::new("etc/shadow"))?
                && !shadow.lines().any(|l| l.starts_with(&format!("{USER}:")))
            {
                if !shadow.ends_with('\n') && !shadow.is_empty() {
                    shadow.push('\n');
                }
                shadow.push_str(&format!("{USER}:*:19000:0:99999:7:::\n"));
                root.write(Path::new("etc/shadow"), shadow.as_bytes(), 0o640)?;
            }
            (uid, gid)
        }
    };
    root.write(Path::new("etc/passwd"), passwd.as_bytes(), 0o644)?;
    root.write(Path::new("etc/group"), group.as_bytes(), 0o644)?;
    let home = Path::new("home").join(USER);
    if !root.exists(&home) {
        let dir = root.dir(&home, true)?.expect("created");
        copy_skel(root, &dir, uid, gid)?;
        let p = dir.join(Path::new(""));
        std::os::unix::fs::chown(&p, Some(uid), Some(gid))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o750))?;
    }
    if root.exists(Path::new("etc/sudoers.d")) {
        root.write(Path::new("etc/sudoers.d/user"), format!("{USER} ALL=(ALL:ALL) NOPASSWD: ALL\n").as_bytes(), 0o440)?;
    }
    Ok(())
}

/// The image's `/etc/skel` dotfiles (top level, regular files) into the new home.
fn copy_skel(root: &Rootfs, home: &super::unpack::Dir, uid: u32, gid: u32) -> anyhow::Result<()> {
    let Some(skel) = root.dir(Path::new("etc/skel"), false)? else { return Ok(()) };
    for entry in std::fs::read_dir(skel.join(Path::new("")))?.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let data = std::fs::read(entry.path())?;
        let mut f = home.create_file(&entry.file_name(), 0o644)?;
        std::io::Write::write_all(&mut f, &data)?;
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busybox_like_image_gets_user_and_files() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path().join("root");
        std::fs::create_dir_all(r.join("bin")).unwrap();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("bin/busybox"), b"").unwrap();
        std::os::unix::fs::symlink("busybox", r.join("bin/sh")).unwrap();
        // uid 1000 taken (as in node images), no shadow, no sudo.
        std::fs::write(r.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh").unwrap();
        std::fs::write(r.join("etc/group"), "root:x:0:\nnode:x:1000:\n").unwrap();
        // A resolv.conf symlink pointing at the host: replaced, the host file untouched.
        std::os::unix::fs::symlink("/etc/resolv.conf", r.join("etc/resolv.conf")).unwrap();
        let envd = tmp.path().join("envd");
        std::fs::write(&envd, b"ELF").unwrap();
        let root = Rootfs::open(&r).unwrap();
        prepare(&root, &envd, &|_| {}).unwrap();
        let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
        assert!(passwd.contains("\nuser:x:1001:1001::/home/user:/bin/bash\n"), "{passwd}");
        assert!(std::fs::read_to_string(r.join("etc/group")).unwrap().contains("user:x:1001:"));
        assert!(std::fs::read_to_string(r.join("bin/bash")).unwrap().contains("exec /bin/sh \"$@\""));
        assert_eq!(std::fs::read(r.join("usr/local/bin/envd")).unwrap(), b"ELF");
        assert_eq!(std::fs::read_to_string(r.join("etc/resolv.conf")).unwrap(), "nameserver 10.0.2.3\n");
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(r.join("home/user")).unwrap().uid(), 1001);
        for d in ["proc", "sys", "dev", "tmp", "run"] {
            assert!(r.join(d).is_dir(), "{d}");
        }
        // Idempotent: a second run adds no second user.
        prepare(&root, &envd, &|_| {}).unwrap();
        assert_eq!(std::fs::read_to_string(r.join("etc/passwd")).unwrap().lines().filter(|l| l.starts_with("user:")).count(), 1);
    }

    #[test]
    fn image_without_a_shell_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Rootfs::open(&tmp.path().join("root")).unwrap();
        let err = prepare(&root, Path::new("/nonexistent"), &|_| {}).unwrap_err();
        assert!(err.to_string().contains("/bin/sh"));
    }
}
