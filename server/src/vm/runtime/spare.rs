//! Spare VMs: QEMU processes started ahead of restores and stopped before their machine is
//! created (`-preconfig`), so a restore skips starting QEMU (exec, libraries, accelerator set-up,
//! network namespace: ~30–40 ms of a ~400 ms restore under TCG, measured in docs/warm-pools.md).
//!
//! Invariants:
//! - A spare has no disk and no guest yet: the restore that takes it adds the disk
//!   (`blockdev-add`, the node `-blockdev` would make), creates the machine
//!   (`x-exit-preconfig`) and loads the image as it would into a new QEMU. The device model is
//!   the command line's, so the migration stream loads as into any other VM.
//! - Its RAM file is a sparse file of the guest's size, mapped by QEMU at start and never
//!   touched by it before `migrate-incoming`; the restore fills that same file (copy or reflink)
//!   before loading the image, exactly as it fills a new one.
//! - A spare lives in `store/spare/spare-<id>/` (not `run/`: it is no sandbox's VM yet). It is
//!   taken once (it leaves the list under its lock) and its directory renamed to the sandbox's
//!   run directory; `spare/spare-<id>` becomes a link to that, so the paths on QEMU's command
//!   line stay valid. Its QMP socket keeps its path (QEMU listens on it), recorded by the `qmp`
//!   link in the run directory. A dead spare is discarded, never used; if finishing one fails
//!   (before anything of the image is in it), the restore starts a new QEMU in its place.
//! - Spares are kept for the shapes (memory, vCPUs, networking) of the latest restores only,
//!   `SANDBOXD_SPARE_VMS` per shape (default 1, 0: off); killed on a clean stop (which waits
//!   for those being started); after a crash `reap_unknown` kills them (every directory left in
//!   `spare/`).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use super::{Runtime, random_id};
use crate::vm::qemu::{self, Boot};
use crate::vm::qmp::Qmp;
use crate::vm::{Result, VmError, VmInfo, files};

/// What a spare is started for: a restore takes one only of its image's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Shape {
    pub memory_mb: u32,
    pub vcpus: u32,
    /// Started with egress (`restrict=off`, a default route in its namespace).
    pub internet: bool,
}

pub(super) struct Spare {
    shape: Shape,
    /// Its directory: `spare/spare-<id>` until taken, then the sandbox's run directory.
    pub run: PathBuf,
    pub pid: u32,
    pub envd_addr: SocketAddr,
}

pub(super) struct Spares {
    /// False for a scratch runtime (template builds): nothing would ever stop its spares.
    enabled: bool,
    ready: Mutex<Vec<Spare>>,
    /// Shapes wanted, the latest first; spares of shapes that fall off the end are killed.
    recent: Mutex<VecDeque<Shape>>,
    /// Spares being started, by shape (so two refills do not both start one).
    starting: Mutex<Vec<Shape>>,
    closing: AtomicBool,
    /// Notified whenever a spare stops being started.
    settled: tokio::sync::Notify,
}

impl Spares {
    pub fn new(enabled: bool) -> Self {
        Spares {
            enabled,
            ready: Mutex::default(),
            recent: Mutex::default(),
            starting: Mutex::default(),
            closing: AtomicBool::new(false),
            settled: tokio::sync::Notify::new(),
        }
    }
}

/// How many shapes keep spares: the latest restores' (one template and the snapshots of its
/// sandboxes share a shape; a second lets two kinds of sandbox alternate).
const MAX_SHAPES: usize = 2;
const PREFIX: &str = "spare-";

/// `SANDBOXD_SPARE_VMS`: spares kept per shape (default 1; 0 turns them off).
pub fn per_shape() -> usize {
    parse(std::env::var("SANDBOXD_SPARE_VMS").ok().as_deref()).unwrap_or(1)
}

fn parse(v: Option<&str>) -> std::result::Result<usize, String> {
    match v.map(str::trim) {
        None | Some("") => Ok(1),
        Some(n) => match n.parse::<usize>() {
            Ok(n) if n <= 8 => Ok(n),
            _ => Err(format!("SANDBOXD_SPARE_VMS must be a number of VMs from 0 to 8, not {n:?}")),
        },
    }
}

/// Refuses a malformed `SANDBOXD_SPARE_VMS` (called once at start-up).
pub fn check() -> std::result::Result<(), String> {
    parse(std::env::var("SANDBOXD_SPARE_VMS").ok().as_deref()).map(|_| ())
}

impl Runtime {
    /// A live spare of `shape` whose RAM file is `ram_len` bytes, moved to run directory `run`
    /// (which must not exist); `None` when there is none. Dead spares found on the way are
    /// discarded.
    pub(super) fn take_spare(&self, shape: Shape, ram_len: u64, run: &Path) -> Option<Spare> {
        if shape.memory_mb as u64 * (1 << 20) != ram_len {
            return None;
        }
        loop {
            let spare = {
                let mut ready = self.inner.spares.ready.lock().unwrap_or_else(|e| e.into_inner());
                let i = ready.iter().position(|s| s.shape == shape)?;
                ready.swap_remove(i)
            };
            if !qemu::is_our_qemu(spare.pid, &self.qmp_path(&spare.run)) {
                tracing::debug!(run = %spare.run.display(), "a spare VM died; discarded");
                self.discard_spare(spare);
                continue;
            }
            return match std::fs::rename(&spare.run, run) {
                Ok(()) => {
                    if let Err(e) = std::os::unix::fs::symlink(run, &spare.run) {
                        tracing::debug!(error = %e, "could not link {} to {}", spare.run.display(), run.display());
                    }
                    Some(Spare { run: run.to_path_buf(), ..spare })
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not move a spare VM into {}", run.display());
                    self.discard_spare(spare);
                    None
                }
            };
        }
    }

    /// Finishes a taken spare's machine: its disk, then the machine itself. Returns the QMP
    /// connection, which the restore goes on with.
    pub(super) async fn attach_spare(&self, spare: &Spare, disk: &Path) -> Result<Qmp> {
        let mut qmp = Qmp::connect(&self.qmp_path(&spare.run), Duration::from_secs(10)).await?;
        qmp.execute("blockdev-add", qemu::blockdev(disk)).await?;
        qmp.execute("x-exit-preconfig", json!({})).await?;
        Ok(qmp)
    }

    /// Starts spares of `shape` in the background until `SANDBOXD_SPARE_VMS` are ready or
    /// starting, and makes `shape` the latest wanted (killing the spares of shapes no longer
    /// among the latest [`MAX_SHAPES`]).
    pub(super) fn refill_spares(&self, shape: Shape) {
        let want = per_shape();
        let spares = &self.inner.spares;
        if want == 0 || !spares.enabled || spares.closing.load(Ordering::SeqCst) {
            return;
        }
        let dropped: Vec<Shape> = {
            let mut recent = spares.recent.lock().unwrap_or_else(|e| e.into_inner());
            recent.retain(|s| *s != shape);
            recent.push_front(shape);
            let keep = MAX_SHAPES.min(recent.len());
            recent.drain(keep..).collect()
        };
        if !dropped.is_empty() {
            let old: Vec<Spare> = {
                let mut ready = spares.ready.lock().unwrap_or_else(|e| e.into_inner());
                let (old, keep) = ready.drain(..).partition(|s| dropped.contains(&s.shape));
                *ready = keep;
                old
            };
            old.into_iter().for_each(|s| self.discard_spare(s));
        }
        let missing = {
            let ready = spares.ready.lock().unwrap_or_else(|e| e.into_inner());
            let mut starting = spares.starting.lock().unwrap_or_else(|e| e.into_inner());
            let have = ready.iter().filter(|s| s.shape == shape).count() + starting.iter().filter(|s| **s == shape).count();
            let missing = want.saturating_sub(have);
            starting.extend(std::iter::repeat_n(shape, missing));
            missing
        };
        for _ in 0..missing {
            let rt = self.clone();
            tokio::spawn(async move {
                let started = rt.start_spare(shape).await;
                let spares = &rt.inner.spares;
                let unwanted = match started {
                    Ok(spare) => {
                        // Decided under the ready list's lock: a stop that began meanwhile no
                        // longer looks at that list.
                        let mut ready = spares.ready.lock().unwrap_or_else(|e| e.into_inner());
                        let wanted = !spares.closing.load(Ordering::SeqCst)
                            && spares.recent.lock().unwrap_or_else(|e| e.into_inner()).contains(&shape);
                        if wanted {
                            ready.push(spare);
                            None
                        } else {
                            Some(spare)
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "could not start a spare VM");
                        None
                    }
                };
                // Killed before it stops counting as starting, so a clean stop that waits for
                // the spares being started never leaves one behind.
                if let Some(spare) = unwanted {
                    let _ = rt.kill(&spare_vm(&spare)).await;
                }
                {
                    let mut starting = spares.starting.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some(i) = starting.iter().position(|s| *s == shape) {
                        starting.swap_remove(i);
                    }
                }
                spares.settled.notify_waiters();
            });
        }
    }

    /// Kills every spare and stops starting new ones (a clean stop), after waiting (at most
    /// 30 s) for those being started.
    pub async fn drain_spares(&self) {
        let spares = &self.inner.spares;
        spares.closing.store(true, Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let settled = spares.settled.notified();
            if spares.starting.lock().unwrap_or_else(|e| e.into_inner()).is_empty() {
                break;
            }
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                tracing::warn!("a spare VM was still starting 30 s after the stop");
                break;
            }
        }
        let all: Vec<Spare> = spares.ready.lock().unwrap_or_else(|e| e.into_inner()).drain(..).collect();
        for spare in all {
            let _ = self.kill(&spare_vm(&spare)).await;
        }
    }

    /// After a crash: kills the spares a previous sandboxd left (every directory in `spare/`)
    /// and drops links to run directories that are gone.
    pub(super) async fn reap_spares(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(self.spare_dir()) else { return 0 };
        let mut reaped = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_symlink()) {
                if !path.exists() {
                    let _ = std::fs::remove_file(&path);
                }
                continue;
            }
            self.reap_dir(&path).await;
            reaped += 1;
        }
        reaped
    }

    /// The link a spare's old directory became (see the module docs), for the run directory
    /// `run` of a VM started as a spare.
    pub(super) fn spare_link(&self, run: &Path) -> Option<PathBuf> {
        let socket = std::fs::read_link(run.join("qmp")).ok()?;
        Some(self.spare_dir().join(socket.file_stem()?))
    }

    /// Makes the run directory of a spare that was stopped unfinished an ordinary one (its own
    /// QMP socket path again), for the new QEMU the restore starts there instead.
    pub(super) fn forget_spare(&self, run: &Path) {
        if let Some(link) = self.spare_link(run) {
            let _ = std::fs::remove_file(link);
        }
        if let Ok(socket) = std::fs::read_link(run.join("qmp")) {
            let _ = std::fs::remove_file(socket);
        }
        let _ = std::fs::remove_file(run.join("qmp"));
    }

    fn spare_dir(&self) -> PathBuf {
        self.inner.store.join("spare")
    }

    async fn start_spare(&self, shape: Shape) -> Result<Spare> {
        let run = self.spare_dir().join(format!("{PREFIX}{}", random_id()));
        std::fs::create_dir_all(&run).map_err(|e| files::io_err("create spare run dir", e))?;
        let started = async {
            // QEMU maps the RAM file at start: sparse and of the guest's size until a restore
            // fills it.
            let ram = std::fs::File::create_new(qemu::ram_path(&run)).map_err(|e| files::io_err("create spare RAM file", e))?;
            ram.set_len(shape.memory_mb as u64 * (1 << 20)).map_err(|e| files::io_err("size spare RAM file", e))?;
            // The socket keeps this path when the directory becomes a sandbox's.
            let qmp = self.qmp_path(&run);
            std::os::unix::fs::symlink(&qmp, run.join("qmp")).map_err(|e| files::io_err("link spare QMP socket", e))?;
            let (pid, envd_addr) =
                self.spawn_vm(&run, &qmp, shape.memory_mb, shape.vcpus, None, shape.internet, &Boot::Incoming).await?;
            let spare = Spare { shape, run: run.clone(), pid, envd_addr };
            // For `reap_unknown` after a crash.
            if let Err(e) = files::write_atomic(&run.join("vm.json"), &serde_json::to_vec(&spare_vm(&spare)).expect("json")) {
                let _ = self.kill(&spare_vm(&spare)).await;
                return Err(e);
            }
            Ok::<Spare, VmError>(spare)
        }
        .await;
        if started.is_err() {
            self.cleanup_run_dir(&run).await;
        }
        started
    }

    fn discard_spare(&self, spare: Spare) {
        let rt = self.clone();
        tokio::spawn(async move {
            let _ = rt.kill(&spare_vm(&spare)).await;
        });
    }
}

fn spare_vm(spare: &Spare) -> VmInfo {
    VmInfo {
        pid: spare.pid,
        envd_addr: spare.envd_addr,
        run_dir: spare.run.clone(),
        memory_mb: spare.shape.memory_mb,
        vcpus: spare.shape.vcpus,
        disk_size_mb: 0,
        boot: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spare_count_parses_and_refuses_the_unknown() {
        assert_eq!(parse(None), Ok(1));
        assert_eq!(parse(Some(" 0 ")), Ok(0));
        assert_eq!(parse(Some("3")), Ok(3));
        assert!(parse(Some("-1")).unwrap_err().contains("SANDBOXD_SPARE_VMS"));
        assert!(parse(Some("many")).is_err());
        assert!(parse(Some("9")).is_err());
    }
}
