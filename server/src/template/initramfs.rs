//! A tiny initramfs: busybox plus the few modules Debian builds as modules that a virtio
//! guest needs before it can mount its root (virtio-pci, -blk, -net, -rng, ext4), and FUSE,
//! on which envd mounts volumes (the guest has no `/lib/modules` to load it later). Its `/init`
//! loads them, mounts `/dev/vda`, configures user-mode networking's fixed addresses and hands
//! over to envd as PID 1. No udev, no systemd: under software emulation every process costs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Part of every template's recipe (see `rootfs::recipe_hash`): a change rebuilds templates.
pub(crate) const WANTED: &[&str] = &["virtio_pci", "virtio_blk", "virtio_net", "virtio-rng", "crc32c_generic", "ext4", "fuse"];

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /newroot
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
for m in $(/bin/busybox cat /modules.order); do
  /bin/busybox insmod "/modules/$m" || echo "initramfs: insmod $m failed"
done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 500 ]; do /bin/busybox usleep 10000; i=$((i+1)); done
/bin/busybox mount -t ext4 -o rw,noatime /dev/vda /newroot || { echo "initramfs: cannot mount /dev/vda"; /bin/busybox poweroff -f; }
/bin/busybox ip link set lo up
/bin/busybox ip link set eth0 up
/bin/busybox ip addr add 10.0.2.15/24 dev eth0
/bin/busybox ip route add default via 10.0.2.2
/bin/busybox umount /proc /sys
/bin/busybox mount --move /dev /newroot/dev
exec /bin/busybox switch_root /newroot /usr/local/bin/envd --init
"#;

/// `/boot/vmlinuz-<release>` → `/lib/modules/<release>`.
fn modules_dir(kernel: &Path) -> anyhow::Result<PathBuf> {
    let name = kernel.file_name().context("kernel file name")?.to_string_lossy().into_owned();
    let release = name.strip_prefix("vmlinuz-").context("kernel is not named vmlinuz-<release>")?;
    let dir = PathBuf::from("/lib/modules").join(release);
    if !dir.join("modules.dep").exists() {
        bail!("{} has no modules.dep: install the matching linux-image package", dir.display());
    }
    Ok(dir)
}

/// Module files in load order (dependencies first), resolved from `modules.dep`.
fn resolve(modules_dep: &str, wanted: &[&str]) -> anyhow::Result<Vec<String>> {
    let mut deps: HashMap<String, (String, Vec<String>)> = HashMap::new();
    for line in modules_dep.lines() {
        let Some((path, rest)) = line.split_once(':') else { continue };
        let name = Path::new(path).file_name().unwrap_or_default().to_string_lossy();
        let name = name.trim_end_matches(".ko").replace('-', "_");
        deps.insert(name, (path.to_string(), rest.split_whitespace().map(String::from).collect()));
    }
    let mut order = Vec::new();
    fn visit(path: &str, deps: &HashMap<String, (String, Vec<String>)>, order: &mut Vec<String>) {
        if order.iter().any(|p| p == path) {
            return;
        }
        let name = Path::new(path).file_name().unwrap_or_default().to_string_lossy();
        let name = name.trim_end_matches(".ko").replace('-', "_");
        if let Some((_, ds)) = deps.get(&name) {
            // modules.dep lists the full transitive closure; visiting each first keeps order.
            for d in ds.iter().rev() {
                visit(d, deps, order);
            }
        }
        order.push(path.to_string());
    }
    for w in wanted {
        let key = w.replace('-', "_");
        let (path, _) = deps.get(&key).with_context(|| format!("module {w} not in modules.dep"))?;
        visit(&path.clone(), &deps, &mut order);
    }
    Ok(order)
}

pub async fn build(kernel: &Path, dir: &Path, out: &Path) -> anyhow::Result<()> {
    let mods = modules_dir(kernel)?;
    let order = resolve(&std::fs::read_to_string(mods.join("modules.dep"))?, WANTED)?;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("bin"))?;
    std::fs::create_dir_all(dir.join("modules"))?;
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .context("busybox not found: install busybox-static")?;
    std::fs::copy(busybox, dir.join("bin/busybox"))?;
    let mut names = Vec::new();
    for rel in &order {
        let name = Path::new(rel).file_name().context("module name")?.to_string_lossy().into_owned();
        std::fs::copy(mods.join(rel), dir.join("modules").join(&name)).with_context(|| format!("copy module {rel}"))?;
        names.push(name);
    }
    std::fs::write(dir.join("modules.order"), names.join("\n") + "\n")?;
    std::fs::write(dir.join("init"), INIT)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.join("init"), std::fs::Permissions::from_mode(0o755))?;
    let script = format!(
        "cd '{}' && find . | cpio --quiet -o -H newc | gzip -1 > '{}'",
        dir.display(),
        out.display()
    );
    super::rootfs::run(tokio::process::Command::new("sh").args(["-c", &script])).await.context("cpio")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn dependencies_come_first() {
        let dep = "kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko\n\
                   kernel/lib/crc16.ko:\nkernel/fs/mbcache.ko:\nkernel/fs/jbd2/jbd2.ko:\n\
                   kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko\n\
                   kernel/drivers/virtio/virtio.ko:\n";
        let order = super::resolve(dep, &["ext4", "virtio-rng"]).unwrap();
        let pos = |m: &str| order.iter().position(|p| p.ends_with(m)).unwrap();
        assert!(pos("crc16.ko") < pos("ext4.ko"));
        assert!(pos("jbd2.ko") < pos("ext4.ko"));
        assert!(pos("virtio.ko") < pos("virtio-rng.ko"));
        assert_eq!(order.len(), 6);
    }
}
