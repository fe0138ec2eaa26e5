//! gVisor (Debian's `runsc` 0.0~20221219) as a peer, set up as /work/shared/spec/peer-gvisor.md
//! found to work on this machine:
//! `runsc --platform=ptrace --network=none --overlay2=root:memory` (ptrace: no usable KVM and
//! no systrap in this release; the in-memory root overlay puts the files in the image), the
//! holder as the container's init process, `runsc exec` as the control channel.
//!
//! - snapshot: `runsc --leave-running` is a fake in this release (checkpoint + destroy +
//!   restore under the same ID, blocking the CLI), so: plain `runsc checkpoint`, then at once
//!   `runsc restore -detach` of the source under a new runsc ID. Our `SandboxRef` maps to the
//!   current runsc ID, so the caller's handle stays valid. `frozen_ms` = checkpoint start →
//!   the restored source answers `runsc exec echo ok`; `durable_ms` = checkpoint start → the
//!   image files and directory are fsynced (done alongside the restore).
//! - restore: one bundle and fresh ID per clone, `runsc restore -detach` from the same image
//!   (eager, nothing shared between clones).
//! - pause_resume: the closest runsc has is checkpoint, delete, restore under the same ID;
//!   the time is restore start → first `echo ok`.
//! - PSS: process RSS/PSS is misleading under ptrace (guest memory sits in the sentry's
//!   `runsc-memory` memfd, only partly mapped anywhere) and `runsc usage` is wrong after a
//!   restore, so a sandbox's memory = allocated blocks of its `runsc-memory` memfd (guest memory,
//!   including the in-memory root overlay) + `Pss_Anon + Pss_File` of its sentry, its ptrace stubs
//!   and its gofer (their own heaps plus their share of runsc's binary pages).
//!
//! Gotchas handled: a failed checkpoint kills the source (reported as an error, the source is
//! cleaned up); runsc matches IDs by prefix (fixed-length random IDs); a restored sandbox
//! writes to its restore command's stdout/stderr at old offsets (fresh files per command);
//! `runsc delete -force` can leave the processes of a "created" sandbox behind (processes are
//! swept by bundle path and by state root); every runsc call has a timeout.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::system::{Batch, CloneSample, SandboxRef, SnapshotRef, SnapshotSample, System};
use crate::workload::{HOLD_PATH, HOLD_PY, Held, PRE_FILES, QUERY, WAIT_READY, check_pre_files};

use super::{Output, allocated_mib, progress, run_timeout, sh_quote, unique_id};

pub const NAME: &str = "gVisor (runsc 2022)";

const SHORT: Duration = Duration::from_secs(30);
const LONG: Duration = Duration::from_secs(300);
/// How long a restored sandbox may take to answer its first `runsc exec`.
const READY_WITHIN: Duration = Duration::from_secs(120);

struct Sandbox {
    /// Current runsc container ID (changes when the source is snapshotted).
    id: String,
    bundle: PathBuf,
    digest: String,
    /// Lowest counter value the holder may report from now on.
    count: u64,
}

struct Snapshot {
    dir: PathBuf,
    /// The source's config.json (clones get a copy in their own bundle).
    config: String,
    digest: String,
    count: u64,
}

pub struct Gvisor {
    name: String,
    rootfs: PathBuf,
    /// Scratch dir for this run: runsc state root, bundles, images, command output.
    work: tempfile::TempDir,
    sandboxes: HashMap<SandboxRef, Sandbox>,
    snapshots: HashMap<SnapshotRef, Snapshot>,
    seq: u64,
}

impl Gvisor {
    pub fn new() -> anyhow::Result<Gvisor> {
        let mut version_cmd = Command::new("runsc");
        version_cmd.arg("--version");
        let v = run_timeout(version_cmd, SHORT, None).context("runsc --version")?;
        if !v.ok {
            bail!("runsc --version failed: {}", v.tail());
        }
        // "runsc version 0.0~20221219.0"
        let version = v
            .stdout
            .lines()
            .next()
            .unwrap_or("")
            .rsplit(['~', ' '])
            .next()
            .unwrap_or("")
            .to_string();
        let name = match version.split('.').next() {
            Some(d) if d.len() == 8 && d.chars().all(|c| c.is_ascii_digit()) => {
                format!("gVisor (runsc {d})")
            }
            _ => NAME.to_string(),
        };
        let rootfs = super::rootfs()?;
        progress(&format!(
            "{name}: --platform=ptrace --overlay2=root:memory on {}",
            rootfs.display()
        ));
        let work = tempfile::Builder::new()
            .prefix("sandboxd-bench-gvisor-")
            .tempdir_in("/var/tmp")?;
        for d in ["state", "bundles", "images", "logs"] {
            std::fs::create_dir_all(work.path().join(d))?;
        }
        Ok(Gvisor {
            name,
            rootfs,
            work,
            sandboxes: HashMap::new(),
            snapshots: HashMap::new(),
            seq: 0,
        })
    }

    fn state_root(&self) -> PathBuf {
        self.work.path().join("state")
    }

    fn next(&mut self, kind: &str) -> String {
        self.seq += 1;
        format!("gv-{kind}-{}", self.seq)
    }

    /// `runsc <global flags> args...`; fails on a non-zero exit or after `timeout`.
    fn runsc(&self, args: &[&str], timeout: Duration) -> anyhow::Result<Output> {
        let mut cmd = Command::new("runsc");
        cmd.arg(format!("--root={}", self.state_root().display()))
            .args([
                "--platform=ptrace",
                "--network=none",
                "--overlay2=root:memory",
            ])
            .args(args)
            .current_dir(self.work.path());
        let out = run_timeout(cmd, timeout, Some(&self.work.path().join("logs")))
            .with_context(|| format!("runsc {}", args.first().unwrap_or(&"")))?;
        if !out.ok {
            bail!("runsc {} failed: {}", args.join(" "), out.tail());
        }
        Ok(out)
    }

    /// Runs a shell snippet inside the sandbox and returns its stdout.
    fn exec(&self, id: &str, script: &str, timeout: Duration) -> anyhow::Result<String> {
        Ok(self
            .runsc(&["exec", id, "sh", "-c", script], timeout)?
            .stdout)
    }

    fn query(&self, id: &str) -> anyhow::Result<Held> {
        Held::parse(&self.exec(id, QUERY, SHORT)?)
    }

    /// Polls `runsc exec id echo ok` until it prints "ok".
    fn wait_ok(&self, id: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let r = self.exec(id, "echo ok", SHORT);
            match r {
                Ok(s) if s.trim() == "ok" => return Ok(()),
                _ if Instant::now() > deadline => {
                    bail!("sandbox {id} did not answer `echo ok` within {READY_WITHIN:?}: {r:?}")
                }
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    fn config(&self, dirty_mib: u32) -> String {
        let caps = serde_json::json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        let init =
            format!("printf %s \"$HOLD\" > {HOLD_PATH} && exec python3 {HOLD_PATH} {dirty_mib}");
        let config = serde_json::json!({
            "ociVersion": "1.0.0",
            "process": {
                "user": {"uid": 0, "gid": 0},
                "args": ["sh", "-c", init],
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", format!("HOLD={HOLD_PY}")],
                "cwd": "/",
                "capabilities": {"bounding": caps, "effective": caps, "inheritable": caps, "permitted": caps},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
            },
            // Writable so that the in-memory overlay can be mounted over it; the directory
            // itself is never written (--overlay2=root:memory).
            "root": {"path": self.rootfs, "readonly": false},
            "hostname": "peer",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
            ],
            "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]}
        });
        serde_json::to_string_pretty(&config).expect("json")
    }

    fn new_bundle(&self, config: &str) -> anyhow::Result<(String, PathBuf)> {
        let id = unique_id();
        let bundle = self.work.path().join("bundles").join(&id);
        std::fs::create_dir_all(&bundle)?;
        std::fs::write(bundle.join("config.json"), config)?;
        Ok((id, bundle))
    }

    /// `runsc restore -detach` of `image` into a new container `id` with `bundle`.
    fn restore_into(&self, image: &Path, id: &str, bundle: &Path) -> anyhow::Result<()> {
        let (b, i) = (bundle.display().to_string(), image.display().to_string());
        self.runsc(
            &["restore", "-detach", "--bundle", &b, "--image-path", &i, id],
            LONG,
        )?;
        Ok(())
    }

    /// Kills and deletes container `id` and every process left of it; removes its bundle if
    /// given.
    fn destroy(&self, id: &str, bundle: Option<&Path>) {
        let _ = self.runsc(&["kill", id, "KILL"], SHORT);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.runsc(&["state", id], SHORT) {
                Ok(o) if o.stdout.contains("\"running\"") => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => break,
            }
        }
        if self.runsc(&["delete", id], SHORT).is_err() {
            let _ = self.runsc(&["delete", "-force", id], SHORT);
        }
        if let Some(b) = bundle {
            kill_processes(&processes_mentioning(&b.display().to_string()));
            let _ = std::fs::remove_dir_all(b);
        }
    }

    /// If `sandbox` no longer answers, destroys what is left of it, forgets it and returns true.
    fn forget_if_dead(&mut self, sandbox: &SandboxRef) -> bool {
        let Some(sb) = self.sandboxes.get(sandbox) else {
            return true;
        };
        if self
            .exec(&sb.id, "echo ok", SHORT)
            .is_ok_and(|o| o.trim() == "ok")
        {
            return false;
        }
        let sb = self.sandboxes.remove(sandbox).expect("present");
        self.destroy(&sb.id, Some(&sb.bundle));
        true
    }

    /// Host memory of the sandbox whose bundle is `bundle` (see the module doc), in MiB.
    fn memory_mib(&self, bundle: &Path) -> Option<f64> {
        use std::os::unix::fs::MetadataExt;
        let mut pids = processes_mentioning(&bundle.display().to_string());
        if pids.is_empty() {
            return None;
        }
        pids.extend(descendants(&pids));
        pids.sort_unstable();
        pids.dedup();
        let mut memfds = HashMap::new();
        let (mut anon, mut file) = (0.0, 0.0);
        for pid in &pids {
            for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let is_mem = std::fs::read_link(fd.path())
                    .map(|t| t.to_string_lossy().starts_with("/memfd:runsc-memory"))
                    .unwrap_or(false);
                if let (true, Ok(m)) = (is_mem, std::fs::metadata(fd.path())) {
                    memfds.insert((m.dev(), m.ino()), m.blocks() as f64 / 2.0);
                }
            }
            let rollup =
                std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
            for line in rollup.lines() {
                let v = || {
                    line.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<f64>().ok())
                        .unwrap_or(0.0)
                };
                if line.starts_with("Pss_Anon:") {
                    anon += v();
                } else if line.starts_with("Pss_File:") {
                    file += v();
                }
            }
        }
        if memfds.is_empty() {
            return None;
        }
        let memfd: f64 = memfds.values().sum();
        if std::env::var_os("GVISOR_MEMORY_DEBUG").is_some() {
            progress(&format!(
                "gVisor memory of {}: memfd {:.1} MiB + Pss_Anon {:.1} MiB + Pss_File {:.1} MiB ({} processes)",
                bundle.display(),
                memfd / 1024.0,
                anon / 1024.0,
                file / 1024.0,
                pids.len()
            ));
        }
        Some((memfd + anon + file) / 1024.0)
    }

    /// Checks the holder in `id` against the expected digest and minimum count, and the files
    /// written before the snapshot; returns the count it reported.
    fn check(&self, id: &str, digest: &str, min_count: u64) -> anyhow::Result<u64> {
        let held = self.query(id)?;
        if held.digest_start != digest || held.digest_now != digest {
            bail!(
                "sandbox {id}: memory differs from the source's: {held:?}, expected digest {digest}"
            );
        }
        if held.count < min_count {
            bail!(
                "sandbox {id}: counter went back: {} < {min_count}",
                held.count
            );
        }
        self.exec(id, &check_pre_files(), SHORT)
            .with_context(|| format!("sandbox {id}: pre-snapshot files"))?;
        Ok(held.count)
    }
}

/// PIDs of processes whose command line contains `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline)
            .replace('\0', " ")
            .contains(needle)
        {
            pids.push(pid);
        }
    }
    pids
}

/// All descendants of `roots` (the sentry's ptrace stub processes).
fn descendants(roots: &[u32]) -> Vec<u32> {
    let mut parent = HashMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // "pid (comm) state ppid ...": comm may contain spaces, so split after the last ')'.
        if let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().nth(1)?.parse::<u32>().ok())
        {
            parent.insert(pid, ppid);
        }
    }
    let mut out: Vec<u32> = Vec::new();
    let mut frontier = roots.to_vec();
    while let Some(p) = frontier.pop() {
        for (&c, &pp) in &parent {
            if pp == p && !out.contains(&c) && !roots.contains(&c) {
                out.push(c);
                frontier.push(c);
            }
        }
    }
    out
}

/// SIGKILLs `pids` and waits (up to 10 s) until they are gone.
fn kill_processes(pids: &[u32]) {
    for &p in pids {
        // SAFETY: kill(2) with a PID we found running our own state root/bundle.
        unsafe { libc::kill(p as i32, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline
        && pids
            .iter()
            .any(|p| Path::new(&format!("/proc/{p}/cmdline")).exists())
    {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// fsyncs every file under `dir`, then `dir` itself.
fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    for e in std::fs::read_dir(dir)?.flatten() {
        if e.file_type()?.is_file() {
            std::fs::File::open(e.path())?.sync_all()?;
        }
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl System for Gvisor {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn start_source(&mut self, dirty_mib: u32) -> anyhow::Result<SandboxRef> {
        let config = self.config(dirty_mib);
        let (id, bundle) = self.new_bundle(&config)?;
        let started = (|| -> anyhow::Result<Held> {
            self.runsc(
                &[
                    "run",
                    "-detach",
                    "--bundle",
                    &bundle.display().to_string(),
                    &id,
                ],
                Duration::from_secs(60),
            )?;
            self.exec(&id, WAIT_READY, Duration::from_secs(150))
                .context("waiting for the holder")?;
            let mut write = Vec::new();
            for (path, content) in PRE_FILES {
                let dir = Path::new(path)
                    .parent()
                    .map(|d| d.display().to_string())
                    .unwrap_or_else(|| "/".into());
                write.push(format!(
                    "mkdir -p {dir} && printf %s {} > {path}",
                    sh_quote(content)
                ));
            }
            self.exec(&id, &write.join(" && "), SHORT)
                .context("writing the pre-snapshot files")?;
            let held = self.query(&id)?;
            if held.digest_now != held.digest_start {
                bail!("holder's memory changed before any snapshot: {held:?}");
            }
            Ok(held)
        })();
        let held = match started {
            Ok(h) => h,
            Err(e) => {
                self.destroy(&id, Some(&bundle));
                return Err(e.context("starting the gVisor source"));
            }
        };
        let r = self.next("src");
        self.sandboxes.insert(
            r.clone(),
            Sandbox {
                id,
                bundle,
                digest: held.digest_start,
                count: held.count,
            },
        );
        Ok(r)
    }

    fn snapshot(&mut self, source: &SandboxRef) -> anyhow::Result<SnapshotSample> {
        let (old_id, bundle, digest) = match self.sandboxes.get(source) {
            Some(s) => (s.id.clone(), s.bundle.clone(), s.digest.clone()),
            None => bail!("unknown sandbox {source}"),
        };
        let before = match self.query(&old_id) {
            Ok(h) => h,
            Err(e) => {
                self.forget_if_dead(source);
                return Err(e.context("asking the source for its state before the snapshot"));
            }
        };
        let snap = self.next("snap");
        let dir = self.work.path().join("images").join(&snap);
        std::fs::create_dir_all(&dir)?;
        let t0 = Instant::now();
        if let Err(e) = self.runsc(
            &[
                "checkpoint",
                "--image-path",
                &dir.display().to_string(),
                &old_id,
            ],
            LONG,
        ) {
            // In this runsc a failed checkpoint usually kills the source.
            let _ = std::fs::remove_dir_all(&dir);
            let dead = self.forget_if_dead(source);
            let what = if dead {
                "the source died with it"
            } else {
                "the source still runs"
            };
            return Err(e.context(format!("checkpoint failed ({what})")));
        }
        // Make the image durable while the source is restored.
        let sync_dir_path = dir.clone();
        let durable = std::thread::spawn(move || sync_dir(&sync_dir_path).map(|_| t0.elapsed()));
        let new_id = unique_id();
        let back = self
            .restore_into(&dir, &new_id, &bundle)
            .and_then(|_| self.wait_ok(&new_id));
        let frozen = t0.elapsed();
        let durable = durable
            .join()
            .map_err(|_| anyhow::anyhow!("fsync thread panicked"))?;
        // The checkpointed container is stopped; delete it (off the measured path).
        let _ = self.runsc(&["delete", &old_id], Duration::from_secs(60));
        if let Err(e) = back {
            self.destroy(&new_id, Some(&bundle));
            self.sandboxes.remove(source);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e.context("restoring the source under a new ID after its checkpoint"));
        }
        let durable = durable.context("fsync of the image")?;
        if let Some(s) = self.sandboxes.get_mut(source) {
            s.id = new_id;
        }
        let config = std::fs::read_to_string(bundle.join("config.json"))?;
        let size_mib = allocated_mib(&dir);
        self.snapshots.insert(
            snap.clone(),
            Snapshot {
                dir,
                config,
                digest,
                count: before.count,
            },
        );
        Ok(SnapshotSample {
            snapshot: snap,
            frozen_ms: ms(frozen),
            durable_ms: ms(durable),
            size_mib,
        })
    }

    fn restore(&mut self, snapshot: &SnapshotRef, n: usize) -> anyhow::Result<Batch> {
        let Some(snap) = self.snapshots.get(snapshot) else {
            bail!("unknown snapshot {snapshot}")
        };
        let mut bundles = Vec::new();
        for _ in 0..n {
            bundles.push(self.new_bundle(&snap.config)?);
        }
        let t0 = Instant::now();
        let this = &*self;
        let results: Vec<anyhow::Result<f64>> = std::thread::scope(|s| {
            let handles: Vec<_> = bundles
                .iter()
                .map(|(id, bundle)| {
                    s.spawn(move || {
                        let t = Instant::now();
                        this.restore_into(&snap.dir, id, bundle)?;
                        this.wait_ok(id)?;
                        Ok(ms(t.elapsed()))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("panicked")))
                })
                .collect()
        });
        let wall_ms = ms(t0.elapsed());
        let (digest, count) = (snap.digest.clone(), snap.count);
        let mut batch = Batch {
            wall_ms,
            ..Default::default()
        };
        let mut up = Vec::new();
        for ((id, bundle), r) in bundles.into_iter().zip(results) {
            match r.and_then(|ready| Ok((ready, self.check(&id, &digest, count)?))) {
                Ok((ready_ms, count)) => {
                    let r = self.next("clone");
                    self.sandboxes.insert(
                        r.clone(),
                        Sandbox {
                            id,
                            bundle,
                            digest: digest.clone(),
                            count,
                        },
                    );
                    up.push((r, ready_ms));
                }
                Err(e) => {
                    batch.errors.push(format!("{e:#}"));
                    self.destroy(&id, Some(&bundle));
                }
            }
        }
        // PSS with every clone of the batch alive.
        for (r, ready_ms) in up {
            let pss_mib = self.memory_mib(&self.sandboxes[&r].bundle);
            batch.ok.push(CloneSample {
                sandbox: r,
                ready_ms,
                pss_mib,
            });
        }
        Ok(batch)
    }

    fn pause_resume(&mut self, sandbox: &SandboxRef) -> anyhow::Result<f64> {
        let Some(sb) = self.sandboxes.get(sandbox) else {
            bail!("unknown sandbox {sandbox}")
        };
        let (id, bundle) = (sb.id.clone(), sb.bundle.clone());
        let dir = self.work.path().join("images").join(format!("pause-{id}"));
        std::fs::create_dir_all(&dir)?;
        let resumed = (|| -> anyhow::Result<f64> {
            self.runsc(
                &[
                    "checkpoint",
                    "--image-path",
                    &dir.display().to_string(),
                    &id,
                ],
                LONG,
            )
            .context("checkpoint failed (runsc kills the sandbox when a checkpoint fails)")?;
            self.runsc(&["delete", &id], Duration::from_secs(60))?;
            let t = Instant::now();
            self.restore_into(&dir, &id, &bundle)?;
            self.wait_ok(&id)?;
            Ok(ms(t.elapsed()))
        })();
        let _ = std::fs::remove_dir_all(&dir);
        if resumed.is_err() {
            self.forget_if_dead(sandbox);
        }
        resumed
    }

    fn verify(&mut self, sandbox: &SandboxRef) -> anyhow::Result<()> {
        let Some(sb) = self.sandboxes.get(sandbox) else {
            bail!("unknown sandbox {sandbox}")
        };
        let count = self.check(&sb.id, &sb.digest, sb.count)?;
        if let Some(sb) = self.sandboxes.get_mut(sandbox) {
            sb.count = count;
        }
        Ok(())
    }

    fn kill(&mut self, sandbox: &SandboxRef) -> anyhow::Result<()> {
        let Some(sb) = self.sandboxes.remove(sandbox) else {
            bail!("unknown sandbox {sandbox}")
        };
        self.destroy(&sb.id, Some(&sb.bundle));
        if !processes_mentioning(&sb.bundle.display().to_string()).is_empty() {
            bail!("processes of {sandbox} survived kill");
        }
        Ok(())
    }

    fn delete_snapshot(&mut self, snapshot: &SnapshotRef) -> anyhow::Result<()> {
        let Some(snap) = self.snapshots.remove(snapshot) else {
            bail!("unknown snapshot {snapshot}")
        };
        std::fs::remove_dir_all(&snap.dir)?;
        Ok(())
    }
}

impl Drop for Gvisor {
    fn drop(&mut self) {
        let all: Vec<(String, PathBuf)> = self
            .sandboxes
            .drain()
            .map(|(_, s)| (s.id, s.bundle))
            .collect();
        if !all.is_empty() {
            progress(&format!(
                "gVisor: stopping {} sandboxes left running",
                all.len()
            ));
        }
        for (id, bundle) in all {
            self.destroy(&id, Some(&bundle));
        }
        // Anything else started under this run's state root or work dir (e.g. a container a
        // timed-out command left half-created).
        let work = self.work.path().display().to_string();
        let left = processes_mentioning(&work);
        kill_processes(&left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_or(name: &str, default: usize) -> usize {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// The whole gVisor path on real runsc sandboxes (needs root, installs runsc):
    /// `GVISOR_MIB=64 GVISOR_CLONES=8 cargo test --release -p bench gvisor -- --ignored --nocapture`
    #[test]
    #[ignore = "runs real gVisor sandboxes (root, apt-get install runsc)"]
    fn gvisor_snapshot_restore_pause_and_cleanup() {
        let (mib, clones) = (env_or("GVISOR_MIB", 64) as u32, env_or("GVISOR_CLONES", 8));
        super::super::install_packages(&["runsc"]).unwrap();
        let mut g = Gvisor::new().unwrap();
        let work = g.work.path().display().to_string();
        let src = g.start_source(mib).unwrap();
        let s = g.snapshot(&src).unwrap();
        println!(
            "{}: {mib} MiB: frozen {:.0} ms, durable {:.0} ms, size {:.1} MiB",
            g.name(),
            s.frozen_ms,
            s.durable_ms,
            s.size_mib
        );
        assert!(
            s.size_mib >= mib as f64,
            "the image must hold the random memory: {s:?}"
        );
        // The source kept its memory, counts on, and is reachable under the same handle.
        g.verify(&src).unwrap();
        let b = g.restore(&s.snapshot, clones).unwrap();
        assert!(b.errors.is_empty(), "{:?}", b.errors);
        assert_eq!(b.ok.len(), clones);
        let mut ready: Vec<f64> = b.ok.iter().map(|c| c.ready_ms).collect();
        ready.sort_by(f64::total_cmp);
        let pss: Vec<f64> =
            b.ok.iter()
                .map(|c| c.pss_mib.expect("memory of a live clone"))
                .collect();
        println!(
            "restore {clones} concurrent: wall {:.0} ms, ready p50 {:.0} ms, max {:.0} ms; memory per clone {:?} MiB",
            b.wall_ms,
            ready[ready.len() / 2],
            ready[ready.len() - 1],
            pss.iter().map(|p| p.round()).collect::<Vec<_>>()
        );
        assert!(
            pss.iter().all(|&p| p >= mib as f64),
            "each clone holds its own copy: {pss:?}"
        );
        // Clones are independent: killing one leaves the others and the source intact.
        g.kill(&b.ok[0].sandbox).unwrap();
        for c in &b.ok[1..] {
            g.verify(&c.sandbox).unwrap();
        }
        let p = g.pause_resume(&src).unwrap();
        println!(
            "pause/resume (checkpoint, delete, restore same ID): resume → first command {p:.0} ms"
        );
        g.verify(&src).unwrap();
        for c in &b.ok[1..] {
            g.kill(&c.sandbox).unwrap();
        }
        g.kill(&src).unwrap();
        g.delete_snapshot(&s.snapshot).unwrap();
        assert!(g.verify(&src).is_err(), "a killed sandbox is gone");
        // A runsc failure is an error, not a hang: snapshotting a sandbox whose container was
        // killed behind our back fails, and the sandbox is forgotten and cleaned up.
        let doomed = g.start_source(8).unwrap();
        let (id, bundle) = (
            g.sandboxes[&doomed].id.clone(),
            g.sandboxes[&doomed].bundle.clone(),
        );
        g.runsc(&["kill", &id, "KILL"], SHORT).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while g
            .runsc(&["state", &id], SHORT)
            .is_ok_and(|o| o.stdout.contains("\"running\""))
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let e = g
            .snapshot(&doomed)
            .expect_err("snapshot of a dead sandbox must fail");
        println!("snapshot of a dead sandbox: {e:#}");
        assert!(g.verify(&doomed).is_err(), "the dead source is forgotten");
        assert!(processes_mentioning(&bundle.display().to_string()).is_empty());
        drop(g);
        assert!(
            processes_mentioning(&work).is_empty(),
            "processes left behind"
        );
        assert!(!Path::new(&work).exists(), "work dir left behind");
    }
}
