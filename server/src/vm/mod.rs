//! The VM runtime: one `qemu-system-x86_64` per sandbox, restored from an *image*.
//!
//! An image is a directory holding everything needed to resume a machine exactly where it
//! was: `meta.json` ([`ImageMeta`]), `mem.ram` (guest RAM, sparse), `state.bin` (QEMU device
//! state) and a reference to the qcow2 disk layer that was frozen with it. Templates
//! (`templates/<name>/`) and snapshots (`snapshots/<id>/`) are both images: a sandbox is
//! a restored image, except where an image has no memory: a *filesystem-only* image (no
//! `mem.ram`/`state.bin`) cold-boots the kernel recorded in its [`BootSpec`] over its disk.
//!
//! Invariants:
//! - [`Runtime::launch`] returns only once envd inside the guest answered `/init` (clock set,
//!   entropy reseeded, access token installed), so the caller can hand the sandbox out.
//! - [`Runtime::snapshot`] leaves the source VM running on a fresh disk overlay and writes the
//!   image into the directory it is given; making it visible (rename + database row) is the
//!   caller's job, so a half-written image is never listed.
//! - Disk layers live in `<data>/layers/` and are never moved; qcow2 backing paths stay valid.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub mod accel;
pub mod files;
pub mod guest;
pub mod net;
pub mod qemu;
pub mod qmp;
pub mod store;
mod runtime;

pub use runtime::{Runtime, SPACE_MARGIN, check_restore_ram, check_spare_vms, random_id};

/// Errors from the VM runtime. `NoSpace` is a full disk (the API answers 507).
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("not enough disk space: {0}")]
    NoSpace(String),
    #[error("image not usable: {0}")]
    BadImage(String),
    #[error("vm failed: {0}")]
    Failed(String),
    /// The guest agent did not answer where it must (a filesystem-only capture flushes through it).
    #[error("guest agent not responding: {0}")]
    Unresponsive(String),
    /// The image or VM lacks what the operation needs (no kernel recorded for a cold boot).
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The envd protocol version the guest agent implements (reported as `envdVersion`).
pub const ENVD_VERSION: &str = "0.6.4";

pub type Result<T> = std::result::Result<T, VmError>;

/// What is stored about an image in its `meta.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageMeta {
    pub memory_mb: u32,
    pub vcpus: u32,
    pub disk_size_mb: u32,
    /// Absolute path of the frozen top qcow2 layer (inside `<data>/layers/`).
    pub disk_layer: PathBuf,
    pub envd_version: String,
    /// Bytes this image occupies on disk (RAM file blocks + state + its own disk layer).
    pub size_bytes: u64,
    /// How long the source VM was paused to capture this image (host side, stop → cont).
    #[serde(default)]
    pub frozen_ms: u64,
    /// From the snapshot request to the image being durable on disk.
    #[serde(default)]
    pub capture_ms: u64,
    /// False for a filesystem-only image: no RAM or device state, launches cold-boot.
    #[serde(default = "yes")]
    pub memory: bool,
    /// What a cold boot over this image's disk needs; `None` for images made before it was
    /// recorded (they can only be restored).
    #[serde(default)]
    pub boot: Option<BootSpec>,
}

fn yes() -> bool {
    true
}

/// A kernel, initramfs and command line that boot the guest over an image's disk. The files
/// sit in the templates directory's `.boot/<hash>/`, which, like `.layers/`, is never cleaned:
/// images made from a template outlive a rebuild of that template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootSpec {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
}

impl BootSpec {
    /// Both files still exist.
    pub fn usable(&self) -> bool {
        self.kernel.is_file() && self.initrd.is_file()
    }
}

/// Fills a restore's RAM file in place of the image's `mem.ram` (which the image directory then
/// need not have): `fill` gets the guest's RAM file, `len` bytes, sparse, its blocks reserved,
/// and runs while QEMU starts, before the image is loaded.
pub struct RamFill {
    pub len: u64,
    pub fill: Box<dyn FnOnce(std::fs::File) -> futures::future::BoxFuture<'static, Result<()>> + Send + Sync>,
}

impl std::fmt::Debug for RamFill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RamFill").field("len", &self.len).finish_non_exhaustive()
    }
}

/// What a launched VM needs from the caller.
#[derive(Debug)]
pub struct LaunchSpec {
    pub sandbox_id: String,
    /// Image directory to restore (template or snapshot).
    pub image_dir: PathBuf,
    pub allow_internet: bool,
    /// `Some`: these egress rules are enforced in the VM's namespace before it runs (slirp
    /// then always has a route, and `allow_internet` is part of the rules); `None`:
    /// `allow_internet` alone decides, fixed at launch.
    pub egress: Option<crate::network::Egress>,
    pub init: GuestInit,
    /// Cold-boot over the image's disk even if it has memory (connect with `memory: false`).
    pub cold_boot: bool,
    /// `Some`: the RAM comes from here, not from the image's `mem.ram`.
    pub ram_fill: Option<RamFill>,
}

/// Sent to envd's `/init` after every restore.
#[derive(Debug, Clone, Default)]
pub struct GuestInit {
    /// `None` for a sandbox created with `secure: false`.
    pub access_token: Option<String>,
    pub env_vars: HashMap<String, String>,
}

/// A running VM, as persisted in the store so a restarted sandboxd can pick it up again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmInfo {
    pub pid: u32,
    /// Where sandboxd reaches envd (host side of the VM's port forward).
    pub envd_addr: SocketAddr,
    /// Per-VM directory: QMP socket, RAM file, console log, disk overlay symlink.
    pub run_dir: PathBuf,
    pub memory_mb: u32,
    pub vcpus: u32,
    pub disk_size_mb: u32,
    /// How this guest can be cold-booted again (copied into every image captured from it).
    #[serde(default)]
    pub boot: Option<BootSpec>,
}

