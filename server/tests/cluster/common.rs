//! What the cluster image tests share: a throwaway s3s-fs on a loopback port
//! (`tests/cluster/s3s.sh path` builds it) and synthetic images made with `qemu-img` /
//! `qemu-io` in one node's directories, so every byte can be checked. No VMs.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sandboxd::cluster::Bucket;
use sandboxd::cluster::download::LocalDirs;
use sandboxd::cluster::manifest::CHUNK_SIZE;
use sandboxd::vm::{BootSpec, ImageMeta};

pub const MIB: u64 = 1 << 20;

/// A throwaway s3s-fs; killed on drop.
pub struct S3 {
    child: Child,
    pub root: tempfile::TempDir,
    pub endpoint: String,
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn s3s_fs_bin() -> PathBuf {
    if let Ok(p) = std::env::var("S3S_FS_BIN") {
        return PathBuf::from(p);
    }
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/cluster/s3s.sh"))
        .arg("path")
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/cluster/s3s.sh");
    assert!(out.status.success(), "tests/cluster/s3s.sh could not provide s3s-fs");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

pub fn start_s3(bucket: &str) -> S3 {
    let root = tempfile::tempdir().unwrap();
    fs::create_dir(root.path().join(bucket)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(s3s_fs_bin())
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", "test", "--secret-key", "testsecret"])
        .arg(root.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start s3s-fs");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s3s-fs did not listen on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    S3 { child, root, endpoint: format!("http://127.0.0.1:{port}") }
}

pub fn bucket(s3: &S3, url: &str) -> Bucket {
    let settings = [
        ("AWS_ENDPOINT_URL", s3.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "testsecret"),
        ("AWS_REGION", "us-east-1"),
    ];
    Bucket::open(url, settings.map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
}

pub fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Deterministic bytes for chunk `seed`.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// One node's directories.
pub struct Node {
    pub dir: tempfile::TempDir,
}

impl Node {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().unwrap() }
    }
    pub fn layers(&self) -> PathBuf {
        self.dir.path().join("layers")
    }
    pub fn images(&self) -> PathBuf {
        self.dir.path().join("snapshots")
    }
    pub fn local(&self) -> LocalDirs {
        LocalDirs {
            layers: self.layers(),
            layer_sources: vec![],
            boot: self.dir.path().join("boot"),
            chunk_sources: vec![self.images()],
        }
    }
}

/// A synthetic image on `node`: `ram_mib` of sparse RAM with `data` chunks (index → seed),
/// a device state, a qcow2 layer over `below` (or a new base) with `disk_writes` and boot files.
pub fn make_image(node: &Node, id: &str, ram_mib: u64, data: &HashMap<u64, u64>, below: Option<&Path>, disk_seed: u8) -> PathBuf {
    let dir = node.images().join(id);
    fs::create_dir_all(&dir).unwrap();
    fs::create_dir_all(node.layers()).unwrap();
    let ram = fs::File::create(dir.join("mem.ram")).unwrap();
    ram.set_len(ram_mib * MIB).unwrap();
    for (&chunk, &seed) in data {
        ram.write_all_at(&pattern(seed, CHUNK_SIZE as usize), chunk * CHUNK_SIZE).unwrap();
    }
    fs::write(dir.join("state.bin"), pattern(1000 + disk_seed as u64, 300_000)).unwrap();
    let layer = node.layers().join(format!("{id}-disk.qcow2"));
    match below {
        Some(b) => run(Command::new("qemu-img").args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"]).arg(b).arg(&layer)),
        None => run(Command::new("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(&layer).arg("64M")),
    }
    let write = format!("write -P {disk_seed} {}M 2M", disk_seed as u64 % 32);
    run(Command::new("qemu-io").args(["-f", "qcow2", "-c", &write]).arg(&layer));
    let boot = node.dir.path().join("kernel-src");
    fs::create_dir_all(&boot).unwrap();
    fs::write(boot.join("vmlinuz"), pattern(7, 100_000)).unwrap();
    fs::write(boot.join("initrd.img"), pattern(8, 50_000)).unwrap();
    let meta = ImageMeta {
        memory_mb: ram_mib as u32,
        vcpus: 1,
        disk_size_mb: 64,
        disk_layer: layer,
        envd_version: "0.6.4".into(),
        size_bytes: 1,
        frozen_ms: 5,
        capture_ms: 9,
        memory: true,
        boot: Some(BootSpec { kernel: boot.join("vmlinuz"), initrd: boot.join("initrd.img"), cmdline: "console=ttyS0".into() }),
    };
    fs::write(dir.join("meta.json"), serde_json::to_vec(&meta).unwrap()).unwrap();
    dir
}

