//! Applies image layers (tar, gzip or zstd) in order into a rootfs directory, as the OCI image
//! spec's "applying changesets" says: whiteouts (`.wh.NAME`) delete what lower layers made,
//! opaque markers (`.wh..wh..opq`) empty a directory of lower layers' entries, hardlinks,
//! symlinks, FIFOs, ownership, modes and file mtimes are kept (we run as root). Device nodes
//! are skipped: never made on the host, and the guest's `/dev` is a devtmpfs.
//!
//! Invariant: nothing is ever written outside the rootfs, whatever a (hostile) layer holds.
//! - Entry names with a `..` component are refused (no legitimate layer has them).
//! - Every directory an entry lands in is resolved with `openat2(RESOLVE_IN_ROOT)`: symlinks in
//!   the rootfs (`/var/run -> /run`, or `evil -> /etc` planted by a layer) are followed as the
//!   guest would follow them, inside the rootfs, never on the host.
//! - The entry itself is created by name in that directory fd without following a final
//!   symlink (`O_NOFOLLOW|O_EXCL`, `lchown`, hard links without `AT_SYMLINK_FOLLOW`), after
//!   whatever was at that name was removed (`remove_dir_all` does not follow symlinks).
//!   Paths are formed as `/proc/self/fd/<dirfd>/<name>`: the kernel resolves the magic link to
//!   the directory we opened, then looks up one plain name.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, bail};
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{Mode, SFlag};

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// A rootfs directory, opened once; every path below it resolves inside it.
pub struct Rootfs {
    root: OwnedFd,
}

impl Rootfs {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(path).with_context(|| format!("create {}", path.display()))?;
        let root = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .with_context(|| format!("open {}", path.display()))?;
        Ok(Rootfs { root })
    }

    /// Resolves `rel` inside the rootfs (symlinks followed inside it), `None` if missing.
    fn resolve(&self, rel: &Path, flags: OFlag) -> io::Result<Option<OwnedFd>> {
        let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
        let how = OpenHow::new().flags(flags | OFlag::O_CLOEXEC).resolve(ResolveFlag::RESOLVE_IN_ROOT);
        match openat2(&self.root, rel, how) {
            Ok(fd) => Ok(Some(fd)),
            Err(nix::errno::Errno::ENOENT) => Ok(None),
            Err(e) => Err(io::Error::from(e)),
        }
    }

    /// The directory `rel`, created (root-owned, 0755) with any missing parents when `create`.
    pub fn dir(&self, rel: &Path, create: bool) -> io::Result<Option<Dir>> {
        let flags = OFlag::O_PATH | OFlag::O_DIRECTORY;
        if let Some(fd) = self.resolve(rel, flags)? {
            return Ok(Some(Dir(fd)));
        }
        if !create {
            return Ok(None);
        }
        let mut cur = Dir(self.resolve(Path::new("."), flags)?.expect("root exists"));
        let mut prefix = PathBuf::new();
        for comp in rel.components() {
            let Component::Normal(name) = comp else { continue };
            prefix.push(name);
            if let Some(fd) = self.resolve(&prefix, flags)? {
                cur = Dir(fd);
                continue;
            }
            match std::fs::DirBuilder::new().mode(0o755).create(cur.join(Path::new(name))) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    // A name that exists but does not resolve to a directory: a dangling
                    // symlink or a file where the layer wants a directory.
                    return Err(io::Error::other(format!("{} exists and is not a directory", prefix.display())));
                }
                Err(e) => return Err(e),
            }
            cur = Dir(self.resolve(&prefix, flags)?.ok_or_else(|| io::Error::other("directory vanished"))?);
        }
        Ok(Some(cur))
    }

    /// `rel`'s parent directory (created when missing) and file name.
    pub fn parent_of<'p>(&self, rel: &'p Path) -> anyhow::Result<(Dir, &'p std::ffi::OsStr)> {
        let name = rel.file_name().with_context(|| format!("{}: no file name", rel.display()))?;
        let parent = rel.parent().unwrap_or(Path::new(""));
        let dir = self.dir(parent, true).with_context(|| format!("directory of {}", rel.display()))?.expect("created");
        Ok((dir, name))
    }

    /// Whether `rel` exists, following symlinks inside the rootfs.
    pub fn exists(&self, rel: &Path) -> bool {
        self.resolve(rel, OFlag::O_PATH).ok().flatten().is_some()
    }

    /// Reads `rel` (symlinks followed inside the rootfs), `None` if missing.
    pub fn read(&self, rel: &Path) -> anyhow::Result<Option<String>> {
        // Only a regular file is opened for reading: a FIFO would hang the build, a device
        // node would read a host device.
        let Some(fd) = self.resolve(rel, OFlag::O_PATH)? else { return Ok(None) };
        let stat = nix::sys::stat::fstat(&fd)?;
        if SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
            bail!("/{} in the image is not a regular file", rel.display());
        }
        let mut text = String::new();
        File::open(format!("/proc/self/fd/{}", fd.as_raw_fd()))?
            .read_to_string(&mut text)
            .with_context(|| format!("read /{}", rel.display()))?;
        Ok(Some(text))
    }

    /// Replaces `rel` with a regular file holding `data` (whatever was there, a symlink
    /// included, is removed first).
    pub fn write(&self, rel: &Path, data: &[u8], mode: u32) -> anyhow::Result<()> {
        let (dir, name) = self.parent_of(rel)?;
        dir.remove(name)?;
        let mut f = dir.create_file(name, mode)?;
        io::Write::write_all(&mut f, data).with_context(|| format!("write /{}", rel.display()))?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        Ok(())
    }
}

/// An opened directory inside the rootfs.
pub struct Dir(OwnedFd);

impl Dir {
    /// `name` inside this directory, as a path the kernel resolves through our fd.
    pub fn join(&self, name: &Path) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.0.as_raw_fd())).join(name)
    }

    /// Removes `name` (recursively for a directory; a symlink itself, never its target).
    pub fn remove(&self, name: &std::ffi::OsStr) -> io::Result<()> {
        let p = self.join(Path::new(name));
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p),
            Ok(_) => std::fs::remove_file(&p),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub fn create_file(&self, name: &std::ffi::OsStr, mode: u32) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o777)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(self.join(Path::new(name)))
    }
}

/// Decompresses a layer blob by its magic bytes (gzip, zstd, or a plain tar).
pub fn open_layer(blob: &Path) -> anyhow::Result<Box<dyn Read>> {
    let mut f = File::open(blob).with_context(|| format!("open {}", blob.display()))?;
    let mut magic = [0u8; 4];
    let n = f.read(&mut magic)?;
    let f = io::BufReader::with_capacity(1 << 20, io::Read::chain(io::Cursor::new(magic[..n].to_vec()), f));
    Ok(match magic {
        [0x1f, 0x8b, ..] => Box::new(flate2::read::MultiGzDecoder::new(f)),
        [0x28, 0xb5, 0x2f, 0xfd] => Box::new(zstd::Decoder::with_buffer(f)?),
        _ => Box::new(f),
    })
}

/// Normalises a tar entry name to a path relative to the rootfs (`./a/b`, `/a/b` → `a/b`),
/// refusing any `..`.
fn clean(name: &Path) -> anyhow::Result<PathBuf> {
    let mut out = PathBuf::new();
    for comp in name.components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => bail!("refusing layer entry {}: it climbs out with '..'", name.display()),
            Component::Prefix(_) => bail!("refusing layer entry {}", name.display()),
        }
    }
    Ok(out)
}

/// Applies one layer (a tar stream) on top of `root`. Returns the number of entries applied.
pub fn apply_layer(root: &Rootfs, layer: impl Read) -> anyhow::Result<u64> {
    let mut archive = tar::Archive::new(layer);
    // Paths this layer created: its own whiteouts and opaque markers never delete them.
    let mut ours: HashSet<PathBuf> = HashSet::new();
    let mut count = 0u64;
    for entry in archive.entries().context("read layer")? {
        let mut entry = entry.context("read layer entry")?;
        let rel = clean(&entry.path().context("entry name")?)?;
        let Some(name) = rel.file_name().map(|n| n.to_string_lossy().into_owned()) else { continue };
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        count += 1;
        if name == OPAQUE {
            if let Some(dir) = root.dir(&parent, false)? {
                for child in std::fs::read_dir(dir.join(Path::new("")))? {
                    let child = child?.file_name();
                    if !ours.contains(&parent.join(&child)) {
                        dir.remove(&child).with_context(|| format!("opaque {}", parent.display()))?;
                    }
                }
            }
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            let target = parent.join(hidden);
            if !ours.contains(&target)
                && let Some(dir) = root.dir(&parent, false)?
            {
                dir.remove(std::ffi::OsStr::new(hidden)).with_context(|| format!("whiteout {}", target.display()))?;
            }
            continue;
        }
        apply_entry(root, &rel, &mut entry).with_context(|| format!("apply /{}", rel.display()))?;
        ours.insert(rel);
    }
    Ok(count)
}

fn apply_entry<R: Read>(root: &Rootfs, rel: &Path, entry: &mut tar::Entry<'_, R>) -> anyhow::Result<()> {
    let (dir, name) = root.parent_of(rel)?;
    let target = dir.join(Path::new(name));
    let header = entry.header();
    let kind = header.entry_type();
    let mode = header.mode().context("mode")? & 0o7777;
    // Some tools leave the owner fields empty: root's.
    let uid = header.uid().unwrap_or(0) as u32;
    let gid = header.gid().unwrap_or(0) as u32;
    let mtime = header.mtime().unwrap_or(0);
    let existing = std::fs::symlink_metadata(&target).ok();
    // A directory over a directory keeps its contents (lower layers' files stay).
    if !(kind.is_dir() && existing.as_ref().is_some_and(|m| m.is_dir())) && existing.is_some() {
        dir.remove(name)?;
    }
    use tar::EntryType as T;
    match kind {
        T::Regular | T::Continuous | T::GNUSparse => {
            let mut f = dir.create_file(name, 0o600)?;
            io::copy(entry, &mut f)?;
            std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
            // After the chown, which clears set-id bits.
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
            f.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))?;
        }
        T::Directory => {
            if existing.as_ref().is_none_or(|m| !m.is_dir()) {
                std::fs::DirBuilder::new().mode(0o700).create(&target)?;
            }
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid))?;
            // The name is a directory we made or found (not a symlink): chmod cannot escape.
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))?;
        }
        T::Symlink => {
            let link = entry.link_name()?.context("symlink without a target")?;
            std::os::unix::fs::symlink(&link, &target)?;
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid))?;
        }
        T::Link => {
            let link = clean(&entry.link_name()?.context("hard link without a target")?)?;
            let src_name = link.file_name().context("hard link target without a name")?;
            let src_dir = root
                .dir(link.parent().unwrap_or(Path::new("")), false)?
                .with_context(|| format!("hard link target /{} is missing", link.display()))?;
            // linkat without AT_SYMLINK_FOLLOW: a symlink is linked as itself.
            std::fs::hard_link(src_dir.join(Path::new(src_name)), &target)
                .with_context(|| format!("hard link to /{}", link.display()))?;
        }
        T::Fifo => {
            nix::unistd::mkfifo(&target, Mode::from_bits_truncate(mode as libc::mode_t & 0o777))?;
            std::os::unix::fs::lchown(&target, Some(uid), Some(gid))?;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))?;
        }
        // Device nodes are not made on the host (a node naming a host disk would sit in our
        // directory until the disk image is made); the guest's /dev is a devtmpfs anyway.
        T::Char | T::Block => tracing::debug!(path = %rel.display(), "skipping a device node"),
        // pax headers and GNU long names are consumed by the tar reader; anything else
        // (sockets, unknown types) has no place in a rootfs.
        other => tracing::debug!(?other, path = %rel.display(), "skipping layer entry type"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // set_path refuses '..': write the raw name as a hostile tool would.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    fn link(b: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, path: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o777);
        h.set_entry_type(kind);
        b.append_link(&mut h, path, target).unwrap();
    }

    fn dir(b: &mut tar::Builder<Vec<u8>>, path: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_mode(0o755);
        h.set_entry_type(tar::EntryType::Directory);
        b.append_data(&mut h, path, io::empty()).unwrap();
    }

    #[test]
    fn layers_with_whiteouts_and_links() {
        let tmp = tempfile::tempdir().unwrap();
        let root = Rootfs::open(&tmp.path().join("root")).unwrap();
        let l1 = tar_with(|b| {
            dir(b, "etc/");
            file(b, "etc/gone", b"x");
            file(b, "etc/kept", b"k");
            dir(b, "opt/");
            file(b, "opt/old", b"o");
            link(b, tar::EntryType::Symlink, "run-link", "/opt");
            link(b, tar::EntryType::Link, "etc/kept-hard", "etc/kept");
        });
        apply_layer(&root, &l1[..]).unwrap();
        let l2 = tar_with(|b| {
            file(b, "etc/.wh.gone", b"");
            dir(b, "opt/");
            file(b, "opt/.wh..wh..opq", b"");
            file(b, "opt/new", b"n");
            // Through an absolute symlink: lands in the rootfs's /opt.
            file(b, "run-link/via-link", b"v");
        });
        apply_layer(&root, &l2[..]).unwrap();
        let r = tmp.path().join("root");
        assert!(!r.join("etc/gone").exists());
        assert_eq!(std::fs::read(r.join("etc/kept-hard")).unwrap(), b"k");
        assert!(!r.join("opt/old").exists(), "opaque directory keeps lower entries");
        assert!(r.join("opt/new").exists());
        assert!(r.join("opt/via-link").exists());
    }

    #[test]
    fn gzip_zstd_and_plain_layers_are_recognised() {
        let tmp = tempfile::tempdir().unwrap();
        let layer = |n: &str| tar_with(|b| file(b, n, n.as_bytes()));
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            io::Write::write_all(&mut e, &layer("from-gzip")).unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::encode_all(&layer("from-zstd")[..], 3).unwrap();
        let root = Rootfs::open(&tmp.path().join("root")).unwrap();
        for (i, blob) in [gz, zst, layer("from-tar")].into_iter().enumerate() {
            let p = tmp.path().join(format!("blob{i}"));
            std::fs::write(&p, blob).unwrap();
            apply_layer(&root, open_layer(&p).unwrap()).unwrap();
        }
        for n in ["from-gzip", "from-zstd", "from-tar"] {
            assert_eq!(std::fs::read(tmp.path().join("root").join(n)).unwrap(), n.as_bytes());
        }
    }

    #[test]
    fn hostile_layers_never_write_outside() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("victim"), b"host").unwrap();
        let out = outside.display().to_string();
        let r = tmp.path().join("root");
        let root = Rootfs::open(&r).unwrap();
        let apply = |t: Vec<u8>| apply_layer(&root, &t[..]);

        let err = apply(tar_with(|b| file(b, "../outside/pwned", b"x"))).unwrap_err();
        assert!(format!("{err:#}").contains("'..'"), "{err:#}");

        // Symlinks to the host directory: absolute, and relative climbing far out.
        apply(tar_with(|b| {
            link(b, tar::EntryType::Symlink, "abs", &out);
            link(b, tar::EntryType::Symlink, "rel", "../../../../../../../../outside");
            link(b, tar::EntryType::Symlink, "victim-link", &format!("{out}/victim"));
        }))
        .unwrap();
        // Through `abs`: it resolves to a path missing in the rootfs, so the entry is refused.
        assert!(apply(tar_with(|b| file(b, "abs/pwned", b"x"))).is_err());
        // Through `rel`: clamped at the rootfs's root, it lands in the rootfs's /outside.
        apply(tar_with(|b| {
            dir(b, "outside/");
            file(b, "rel/pwned2", b"x");
        }))
        .unwrap();
        assert!(r.join("outside/pwned2").exists());
        // A whiteout and a hard link through the escaping symlink.
        apply(tar_with(|b| file(b, "abs/.wh.victim", b""))).unwrap();
        assert!(apply(tar_with(|b| link(b, tar::EntryType::Link, "hard", "abs/victim"))).is_err());
        // A file replacing a symlink replaces the link, never writes its target.
        apply(tar_with(|b| file(b, "victim-link", b"replaced"))).unwrap();
        assert_eq!(std::fs::read(r.join("victim-link")).unwrap(), b"replaced");
        // Device nodes are not created; reading a FIFO or a device is refused, not hung on.
        apply(tar_with(|b| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Block);
            h.set_device_major(8).unwrap();
            h.set_device_minor(0).unwrap();
            h.set_mode(0o666);
            h.set_size(0);
            b.append_data(&mut h, "disk", io::empty()).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Fifo);
            h.set_mode(0o644);
            h.set_size(0);
            b.append_data(&mut h, "fifo", io::empty()).unwrap();
        }))
        .unwrap();
        assert!(std::fs::symlink_metadata(r.join("disk")).is_err());
        assert!(root.read(Path::new("fifo")).is_err());
        // Rootfs helpers resolve inside too.
        root.write(Path::new("rel/helper"), b"y", 0o644).unwrap();
        assert!(r.join("outside/helper").exists());

        let names: Vec<_> = std::fs::read_dir(&outside).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("victim")], "nothing written outside");
        assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"host");
    }
}
