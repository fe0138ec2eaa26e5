//! `Ours`: sandboxd as a `System`, driven through the `e2b` crate exactly as a user would.
//!
//! - source: a sandbox from the current template (`base` = 512 MiB guest, `base-2g` = 2 GiB)
//!   running the shared workload;
//! - `frozen_ms`: the snapshot's host-side record (`meta.json`: QMP `stop` → `cont`);
//! - `durable_ms`: `create_snapshot` call start → `GET /snapshots?name=<id>` lists it;
//! - `size_mib`: `meta.json`'s `size_bytes` (allocated blocks of RAM file, device state and the
//!   frozen disk layer);
//! - `ready_ms`: `Sandbox::create(<snapshot id>)` start → `echo ok` printed `ok`;
//! - `pss_mib`: PSS of the clone's QEMU process (see `pss.rs`), read with the whole batch alive;
//! - pause-resume: `pause` (timed too, see `last_pause_ms`), then `connect` + `echo ok`.
//!
//! The template can change between scenarios (`template_handle`): the snapshot scenario uses a
//! 2 GiB guest so that 1 GiB of dirty memory fits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use e2b::{CreateOptions, RunOptions, Sandbox, SnapshotListOptions};
use tokio::runtime::Runtime;

use crate::pss;
use crate::server::Server;
use crate::system::{Batch, CloneSample, SandboxRef, SnapshotRef, SnapshotSample, System};
use crate::workload::{HOLD_PATH, HOLD_PY, Held, PRE_FILES, QUERY, WAIT_READY, check_pre_files};

/// How long a source may take to fill its memory (1 GiB of `os.urandom` under TCG is slow).
const FILL_DEADLINE: Duration = Duration::from_secs(900);

pub struct Ours {
    rt: Runtime,
    server: Arc<Server>,
    template: Arc<Mutex<String>>,
    sandboxes: HashMap<SandboxRef, Sandbox>,
    /// What every clone of a sandbox must hold: the source's state when its memory was filled
    /// (clones inherit the entry of the sandbox their snapshot was taken from).
    expected: HashMap<SandboxRef, Held>,
    /// Snapshot → the sandbox it was taken from.
    snapshot_source: HashMap<SnapshotRef, SandboxRef>,
    last_pause_ms: Option<f64>,
}

pub(crate) fn run_opts(timeout_s: u64) -> RunOptions {
    RunOptions { timeout: Some(Duration::from_secs(timeout_s)), ..Default::default() }
}

impl Ours {
    pub fn new(server: Arc<Server>, template: &str) -> anyhow::Result<Ours> {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
        Ok(Ours {
            rt,
            server,
            template: Arc::new(Mutex::new(template.to_string())),
            sandboxes: HashMap::new(),
            expected: HashMap::new(),
            snapshot_source: HashMap::new(),
            last_pause_ms: None,
        })
    }

    /// Lets the caller switch templates (guest sizes) between scenarios.
    pub fn template_handle(&self) -> Arc<Mutex<String>> {
        self.template.clone()
    }

    fn template(&self) -> String {
        self.template.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn create_opts(&self, template: &str) -> CreateOptions {
        CreateOptions {
            template: Some(template.to_string()),
            timeout: Some(Duration::from_secs(1800)),
            connection: self.server.opts(),
            ..Default::default()
        }
    }

    fn sandbox(&self, r: &SandboxRef) -> anyhow::Result<Sandbox> {
        self.sandboxes.get(r).cloned().with_context(|| format!("unknown sandbox {r}"))
    }
}

async fn query(sbx: &Sandbox) -> anyhow::Result<Held> {
    let r = sbx.commands().run(QUERY, run_opts(600)).await.context("query the holder")?;
    Held::parse(&r.stdout).with_context(|| format!("stderr {:?}", r.stderr))
}

/// The holder still holds `want`'s bytes, counts on from at least `want.count`, and the
/// pre-snapshot files are there.
pub(crate) async fn check_state(sbx: &Sandbox, want: &Held) -> anyhow::Result<Held> {
    let held = query(sbx).await?;
    ensure!(held.digest_start == want.digest_start, "memory filled with other bytes ({} vs {})", held.digest_start, want.digest_start);
    ensure!(held.digest_now == want.digest_start, "memory changed: sha256 {} instead of {}", held.digest_now, want.digest_start);
    ensure!(held.count >= want.count, "counter {} is below the source's {} at capture", held.count, want.count);
    sbx.commands().run(&check_pre_files(), run_opts(60)).await.context("pre-snapshot files missing or changed")?;
    Ok(held)
}

pub(crate) async fn first_command(sbx: &Sandbox) -> anyhow::Result<()> {
    let r = sbx.commands().run("echo ok", run_opts(120)).await.context("first command")?;
    ensure!(r.stdout == "ok\n", "first command printed {:?}", r.stdout);
    Ok(())
}

/// Starts the shared workload in `sbx`: the pre-snapshot files, then the holder of `dirty_mib`
/// MiB; returns once the memory is filled, with the holder's state.
pub(crate) async fn fill_source(sbx: &Sandbox, dirty_mib: u32) -> anyhow::Result<Held> {
    sbx.files().write(HOLD_PATH, HOLD_PY.as_bytes().to_vec(), None).await?;
    sbx.commands().run("mkdir -p /var/tmp/bench", run_opts(60)).await?;
    for (path, content) in PRE_FILES {
        sbx.files().write(path, content.as_bytes().to_vec(), None).await?;
    }
    sbx.commands().run("sync", run_opts(120)).await?;
    let bg = RunOptions { timeout: Some(Duration::ZERO), ..Default::default() };
    sbx.commands().run_background(&format!("python3 {HOLD_PATH} {dirty_mib}"), bg).await?;
    let deadline = Instant::now() + FILL_DEADLINE;
    // WAIT_READY gives up after ~2 min of guest time; poll it until our deadline.
    while sbx.commands().run(WAIT_READY, run_opts(300)).await.is_err() {
        if Instant::now() > deadline {
            bail!("the holder did not fill {dirty_mib} MiB within {FILL_DEADLINE:?}");
        }
    }
    let held = query(sbx).await?;
    ensure!(held.digest_start == held.digest_now, "the source's memory changed by itself");
    Ok(held)
}

impl System for Ours {
    fn name(&self) -> String {
        "sandboxd".into()
    }

    fn start_source(&mut self, dirty_mib: u32) -> anyhow::Result<SandboxRef> {
        let template = self.template();
        let opts = self.create_opts(&template);
        let (sbx, held) = self.rt.block_on(async {
            let sbx = Sandbox::create(opts).await.with_context(|| format!("create from {template}"))?;
            let held = fill_source(&sbx, dirty_mib).await?;
            Ok::<_, anyhow::Error>((sbx, held))
        })?;
        let id = sbx.sandbox_id().to_string();
        self.sandboxes.insert(id.clone(), sbx);
        self.expected.insert(id.clone(), held);
        Ok(id)
    }

    fn snapshot(&mut self, source: &SandboxRef) -> anyhow::Result<SnapshotSample> {
        let sbx = self.sandbox(source)?;
        let opts = self.server.opts();
        let (snap, durable) = self.rt.block_on(async {
            let t = Instant::now();
            let snap = sbx.create_snapshot(None).await.context("create_snapshot")?;
            let list = SnapshotListOptions { name: Some(snap.snapshot_id.clone()), ..Default::default() };
            loop {
                let items = Sandbox::list_snapshots(list.clone(), &opts).next_items().await?;
                if items.iter().any(|i| i.snapshot_id == snap.snapshot_id) {
                    break;
                }
                ensure!(t.elapsed() < Duration::from_secs(120), "snapshot {} never listed", snap.snapshot_id);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok::<_, anyhow::Error>((snap, t.elapsed()))
        })?;
        let meta = self.server.image_meta(&snap.snapshot_id)?;
        let num = |k: &str| meta[k].as_f64().with_context(|| format!("meta.json has no {k}"));
        self.snapshot_source.insert(snap.snapshot_id.clone(), source.clone());
        Ok(SnapshotSample {
            snapshot: snap.snapshot_id,
            frozen_ms: num("frozen_ms")?,
            durable_ms: durable.as_secs_f64() * 1000.0,
            size_mib: num("size_bytes")? / 1048576.0,
        })
    }

    fn restore(&mut self, snapshot: &SnapshotRef, n: usize) -> anyhow::Result<Batch> {
        let source = self.snapshot_source.get(snapshot).cloned().context("snapshot not taken by this run")?;
        let want = self.expected.get(&source).cloned().context("source state unknown")?;
        let opts = self.create_opts(snapshot);
        let run_dir = self.server.data_dir.path().join("store/run");
        let (wall, results) = self.rt.block_on(async {
            let t = Instant::now();
            let tasks = (0..n).map(|_| {
                let opts = opts.clone();
                async move {
                    let t = Instant::now();
                    let c = Sandbox::create(opts).await.context("create from snapshot")?;
                    first_command(&c).await?;
                    Ok::<_, anyhow::Error>((c, t.elapsed()))
                }
            });
            let results = futures::future::join_all(tasks).await;
            (t.elapsed(), results)
        });
        let mut batch = Batch { wall_ms: wall.as_secs_f64() * 1000.0, ..Default::default() };
        let mut up = Vec::new();
        for r in results {
            match r {
                Ok((c, ready)) => {
                    // PSS with the whole batch alive, before the checks touch more memory.
                    let pss = pss::sandbox_pss_mib(&run_dir, c.sandbox_id());
                    up.push((c, ready, pss));
                }
                Err(e) => batch.errors.push(format!("{e:#}")),
            }
        }
        // The checks run concurrently too: each hashes the dirty memory inside its guest.
        let checks = self.rt.block_on(futures::future::join_all(up.iter().map(|(c, _, _)| check_state(c, &want))));
        for ((c, ready, pss_mib), check) in up.into_iter().zip(checks) {
            let id = c.sandbox_id().to_string();
            self.sandboxes.insert(id.clone(), c);
            self.expected.insert(id.clone(), want.clone());
            match check {
                Ok(_) => batch.ok.push(CloneSample { sandbox: id, ready_ms: ready.as_secs_f64() * 1000.0, pss_mib }),
                Err(e) => batch.errors.push(format!("clone {id}: {e:#}")),
            }
        }
        Ok(batch)
    }

    fn pause_resume(&mut self, sandbox: &SandboxRef) -> anyhow::Result<f64> {
        let sbx = self.sandbox(sandbox)?;
        let opts = self.server.opts();
        let (pause, resumed, new) = self.rt.block_on(async {
            let t = Instant::now();
            ensure!(sbx.pause(true).await.context("pause")?, "pause said the sandbox was already paused");
            let pause = t.elapsed();
            let t = Instant::now();
            let new = Sandbox::connect(sbx.sandbox_id(), Some(Duration::from_secs(1800)), &opts).await.context("connect")?;
            first_command(&new).await?;
            Ok::<_, anyhow::Error>((pause, t.elapsed(), new))
        })?;
        ensure!(new.sandbox_id() == sandbox, "resumed under another ID {}", new.sandbox_id());
        self.sandboxes.insert(sandbox.clone(), new);
        self.last_pause_ms = Some(pause.as_secs_f64() * 1000.0);
        Ok(resumed.as_secs_f64() * 1000.0)
    }

    fn last_pause_ms(&self) -> Option<f64> {
        self.last_pause_ms
    }

    fn verify(&mut self, sandbox: &SandboxRef) -> anyhow::Result<()> {
        let sbx = self.sandbox(sandbox)?;
        let want = self.expected.get(sandbox).cloned().context("state unknown")?;
        let held = self.rt.block_on(check_state(&sbx, &want))?;
        // Later checks of the same sandbox must see the counter move on from here.
        self.expected.insert(sandbox.clone(), Held { count: held.count, ..want });
        Ok(())
    }

    fn kill(&mut self, sandbox: &SandboxRef) -> anyhow::Result<()> {
        let sbx = self.sandboxes.remove(sandbox).with_context(|| format!("unknown sandbox {sandbox}"))?;
        self.expected.remove(sandbox);
        self.rt.block_on(sbx.kill())?;
        Ok(())
    }

    fn delete_snapshot(&mut self, snapshot: &SnapshotRef) -> anyhow::Result<()> {
        self.snapshot_source.remove(snapshot);
        let found = self.rt.block_on(Sandbox::delete_snapshot(snapshot, &self.server.opts()))?;
        ensure!(found, "snapshot {snapshot} was not found");
        Ok(())
    }
}
