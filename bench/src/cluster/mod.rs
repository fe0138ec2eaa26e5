//! `cluster` (ours only; not in the default set, not in `--quick`): issue 13's numbers, on a
//! two-node cluster started on this machine (PostgreSQL + s3s-fs + nodes A and B, see
//! `infra.rs`), driven through the REST API with the `e2b` crate like every other scenario.
//!
//! - `uploads`: a source on A holding `dirty_mib` MiB; its first snapshot (a full upload into
//!   an empty bucket), a second one after `changed_mib` MiB of new data in `/dev/shm`, a third
//!   after as long with nothing changed (what the guest dirties by itself). Sizes come from
//!   the bucket: objects present after an upload and not before, compressed (file sizes) and
//!   plaintext (the manifest); upload time from A's log (`image uploaded to … ms=`).
//! - `restores`, `restores` times: a new source on A (new random memory: a new image B has
//!   never seen), snapshot, upload awaited (`durable` in the database); then create → `echo ok`
//!   on B (A is full: one sandbox per node), then on A (the source killed) from the same
//!   snapshot. Each clone's memory and files are checked afterwards (not timed). B's log gives
//!   the fetch time and the bytes it received.
//! - `freeze`: the source of `uploads` on A and one on a plain sandboxd (SQLite, no object
//!   store) given the same history (three snapshots), snapshotted in turn after writing
//!   `changed_mib` MiB each; freeze = the image's `frozen_ms` (QMP `stop` → `cont`, from
//!   `meta.json`).
//!
//! Placement is checked, not assumed: every sandbox's run directory must be on the node the
//! scenario meant.

mod bucket;
mod infra;
mod pages;
mod report;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use e2b::{CreateOptions, Sandbox};
use serde::{Deserialize, Serialize};

use crate::ours::{check_state, fill_source, first_command, run_opts};
use crate::results::Machine;
use crate::scenarios::log;
use crate::server::{Server, image_id};
use crate::stats::ms;
use crate::workload::Held;
use bucket::Added;
use infra::{Postgres, S3, runs_on};

pub use report::render;

/// Sizes and counts of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub template: String,
    pub restores: usize,
    pub dirty_mib: u32,
    pub changed_mib: u32,
    /// Idle time before each measured restore (see `--cluster-settle-ms`).
    pub settle_ms: u64,
}

/// Everything one run measured: `<out-dir>/cluster/results.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ClusterResults {
    pub command: String,
    pub started_utc: String,
    pub duration_s: f64,
    pub machine: Machine,
    /// `/proc/loadavg` at the start: this machine may be running other work.
    #[serde(default)]
    pub loadavg_at_start: String,
    pub guest: String,
    pub dirty_mib: u32,
    pub changed_mib: u32,
    #[serde(default)]
    pub settle_ms: u64,
    pub restores: Vec<RestoreRun>,
    pub uploads: Option<Uploads>,
    pub freeze: Option<Freeze>,
    pub failures: Vec<String>,
}

/// One new image, restored on B (never saw it) and on A (captured it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreRun {
    pub image: String,
    /// Create on B → `echo ok` printed `ok`.
    pub remote_ms: f64,
    /// The same on A.
    pub local_ms: f64,
    /// B's download of the image (its log: `image fetched for a restore … ms=`).
    pub fetch_ms: f64,
    /// Bytes B received (compressed), all objects (`fetched_bytes=`).
    pub fetched_bytes: u64,
    /// The image's non-zero RAM: stored chunks × chunk size (manifest).
    pub ram_nonzero_bytes: u64,
    /// The guest's RAM size.
    pub ram_bytes: u64,
    /// A's upload of the image (`image uploaded to … ms=`).
    pub upload_ms: f64,
    /// The VM restore alone, on B and on A (their logs: `vm restored … ms=`).
    pub remote_vm_ms: f64,
    pub local_vm_ms: f64,
    pub frozen_ms: f64,
    /// CPU time the S3 server (s3s-fs, on the same cores) used during B's restore.
    #[serde(default)]
    pub store_cpu_ms: f64,
    /// Bytes B received from A (a peer that holds the image; B's log `peer_bytes=`).
    #[serde(default)]
    pub peer_bytes: u64,
    /// Create on C (which never saw the image and fetches from the bucket only, with B's clone
    /// running) → `echo ok`; C's fetch, bytes received and the S3 server's CPU meanwhile.
    #[serde(default)]
    pub bucket_ms: Option<f64>,
    #[serde(default)]
    pub bucket_fetch_ms: Option<f64>,
    #[serde(default)]
    pub bucket_fetched_bytes: Option<u64>,
    #[serde(default)]
    pub bucket_store_cpu_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upload {
    pub image: String,
    /// A's log: `image uploaded to … ms=`.
    pub ms: f64,
    pub frozen_ms: f64,
    /// Seconds since the previous snapshot of the same source.
    pub gap_s: f64,
    pub added: Added,
    /// Guest RAM that differs from the previous snapshot's, counted in 4 KiB pages (comparing
    /// the two `mem.ram` files on A); `None` for the first.
    pub changed_pages_bytes: Option<u64>,
    /// 256 KiB chunks holding at least one of those pages: what chunked uploads must resend.
    pub changed_chunks: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Uploads {
    /// Into an empty bucket: everything, the template's disk layers included.
    pub first: Upload,
    /// After `changed_mib` MiB of new data in /dev/shm.
    pub changed: Upload,
    /// After as long with nothing changed by us.
    pub idle: Upload,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Freeze {
    /// Node A (object store configured; each upload starts after the freeze).
    pub cluster_ms: Vec<f64>,
    /// A plain sandboxd: SQLite, no object store.
    pub plain_ms: Vec<f64>,
}

/// The cluster and the plain server, stopped in this order when dropped (nodes first: their
/// uploads need neither PostgreSQL nor s3s-fs once killed).
struct Rig {
    a: Server,
    b: Server,
    c: Server,
    s3: S3,
    pg: Postgres,
    rt: tokio::runtime::Runtime,
}

/// A snapshot just taken: its API ID, image directory name and freeze.
struct Snap {
    id: String,
    image: String,
    frozen_ms: f64,
}

fn create_opts(server: &Server, template: &str) -> CreateOptions {
    CreateOptions {
        template: Some(template.to_string()),
        timeout: Some(Duration::from_secs(1800)),
        connection: server.opts(),
        ..Default::default()
    }
}

/// Create → first command on `server`; the sandbox and how long that took.
async fn create_ready(server: &Server, template: &str) -> anyhow::Result<(Sandbox, f64)> {
    let t = Instant::now();
    let sbx = Sandbox::create(create_opts(server, template))
        .await
        .with_context(|| format!("create from {template}"))?;
    first_command(&sbx).await?;
    Ok((sbx, ms(t.elapsed())))
}

/// A snapshot through the API (a 409, the sandbox busy for a moment, is asked again).
async fn snapshot(server: &Server, sbx: &Sandbox) -> anyhow::Result<Snap> {
    let mut busy = 0;
    let info = loop {
        match sbx.create_snapshot(None).await {
            Ok(i) => break i,
            Err(e) if e.status() == Some(409) && busy < 100 => busy += 1,
            Err(e) => return Err(anyhow::Error::from(e).context("create_snapshot")),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let meta = server.image_meta(&info.snapshot_id)?;
    let frozen_ms = meta["frozen_ms"]
        .as_f64()
        .context("meta.json has no frozen_ms")?;
    Ok(Snap {
        image: image_id(&info.snapshot_id).to_string(),
        id: info.snapshot_id,
        frozen_ms,
    })
}

impl Rig {
    fn start(bin: &Path, templates_dir: Option<&Path>) -> anyhow::Result<Rig> {
        let pg = Postgres::start().context("PostgreSQL")?;
        let s3 = S3::start().context("s3s-fs")?;
        let a = infra::start_node(bin, templates_dir, &pg, &s3, &infra::A)?;
        let b = infra::start_node(bin, templates_dir, &pg, &s3, &infra::B)?;
        let c = infra::start_node(bin, templates_dir, &pg, &s3, &infra::C)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        Ok(Rig { a, b, c, s3, pg, rt })
    }

    /// Waits until A's upload of `image` is durable (restorable on B); its upload time.
    fn uploaded(&self, image: &str) -> anyhow::Result<f64> {
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let state = self.pg.query(&format!(
                "SELECT upload FROM snapshots WHERE id = '{image}'"
            ))?;
            match state.as_str() {
                "durable" => break,
                "pending" => {}
                other => bail!("image {image}: upload {other:?}"),
            }
            ensure!(
                Instant::now() < deadline,
                "image {image} not uploaded within 600 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.a.log_path())?;
        let f = bucket::log_fields(&log, "image uploaded to", &[("image", image)])
            .context("no upload line in A's log")?;
        f.get("ms")
            .and_then(|v| v.parse().ok())
            .context("upload line without ms")
    }

    /// A source on A holding `mib` MiB; checks that it landed there.
    fn source(&self, template: &str, mib: u32) -> anyhow::Result<(Sandbox, Held, u32)> {
        let (sbx, held, mb) = self.rt.block_on(async {
            let sbx = Sandbox::create(create_opts(&self.a, template))
                .await
                .context("create the source")?;
            let held = fill_source(&sbx, mib).await?;
            let mb = sbx.get_info().await?.memory_mb;
            Ok::<_, anyhow::Error>((sbx, held, mb))
        })?;
        ensure!(
            runs_on(&self.a, sbx.sandbox_id()),
            "the source {} was not placed on A",
            sbx.sandbox_id()
        );
        Ok((sbx, held, mb))
    }

    /// After a failure: whatever still runs on either node goes (through A, which forwards).
    fn kill_all(&self) {
        let opts = self.a.opts();
        let _ = self.rt.block_on(async {
            for s in Sandbox::list(Default::default(), &opts)?
                .next_items()
                .await?
            {
                let _ = Sandbox::kill_by_id(&s.sandbox_id, &opts).await;
            }
            Ok::<_, e2b::Error>(())
        });
    }

    fn copy_logs(&self, dir: &Path) {
        for (name, s) in [("node-a.log", &self.a), ("node-b.log", &self.b), ("node-c.log", &self.c)] {
            let _ = std::fs::copy(s.log_path(), dir.join(name));
        }
    }
}

async fn write_shm(sbx: &Sandbox, name: &str, mib: u32) -> anyhow::Result<()> {
    let cmd = format!("head -c {mib}M /dev/urandom > /dev/shm/{name}");
    sbx.commands()
        .run(&cmd, run_opts(600))
        .await
        .with_context(|| format!("write {mib} MiB to /dev/shm"))?;
    Ok(())
}

/// `uploads`, then `freeze` on the same source.
fn uploads_and_freeze(
    rig: &Rig,
    plan: &Plan,
    (bin, templates_dir): (&Path, Option<&Path>),
    out_dir: &Path,
    out: &mut ClusterResults,
) -> anyhow::Result<()> {
    let dir = rig.s3.objects_dir();
    let (sbx, _, mb) = rig.source(&plan.template, plan.dirty_mib)?;
    out.guest = format!("{mb} MiB guest, template {}", plan.template);
    let ram = |image: &str| {
        rig.a
            .data_dir
            .path()
            .join("store/snapshots")
            .join(image)
            .join("mem.ram")
    };
    let take = |gap: Duration, previous: Option<&Upload>| -> anyhow::Result<Upload> {
        let before = bucket::objects(&dir)?;
        let snap = rig.rt.block_on(snapshot(&rig.a, &sbx))?;
        let ms = rig.uploaded(&snap.image)?;
        let added = bucket::added(
            &dir,
            &before,
            &bucket::objects(&dir)?,
            &bucket::manifest(&dir, &snap.image)?,
        )?;
        let diff = previous
            .map(|p| pages::diff(&ram(&p.image), &ram(&snap.image)))
            .transpose()?;
        Ok(Upload {
            image: snap.image,
            ms,
            frozen_ms: snap.frozen_ms,
            gap_s: gap.as_secs_f64(),
            added,
            changed_pages_bytes: diff.map(|d| d.pages_bytes),
            changed_chunks: diff.map(|d| d.chunks),
        })
    };
    let first = take(Duration::ZERO, None)?;
    log(
        "cluster",
        format!(
            "first upload: {:.1} MiB sent in {:.0} ms",
            first.added.sent_bytes as f64 / 1048576.0,
            first.ms
        ),
    );
    let t = Instant::now();
    rig.rt
        .block_on(write_shm(&sbx, "changed", plan.changed_mib))?;
    let changed = take(t.elapsed(), Some(&first))?;
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(changed.gap_s));
    let idle = take(t.elapsed(), Some(&changed))?;
    log(
        "cluster",
        format!(
            "after {} MiB changed: {:.1} MiB sent; nothing changed: {:.1} MiB",
            plan.changed_mib,
            changed.added.sent_bytes as f64 / 1048576.0,
            idle.added.sent_bytes as f64 / 1048576.0
        ),
    );
    out.uploads = Some(Uploads {
        first,
        changed,
        idle,
    });

    // Freeze: the same workload on a plain sandboxd, in turn with A.
    let plain = Server::start(bin, templates_dir)?;
    let plain_src = rig.rt.block_on(async {
        let s = Sandbox::create(create_opts(&plain, &plan.template))
            .await
            .context("create the plain source")?;
        fill_source(&s, plan.dirty_mib).await?;
        // The same history as A's source (three snapshots, the first after a /dev/shm write):
        // each snapshot reflinks the RAM file, and a file reflinked more often has more
        // extents to clone inside the next freeze.
        write_shm(&s, "changed", plan.changed_mib).await?;
        for _ in 0..3 {
            snapshot(&plain, &s).await?;
        }
        Ok::<_, anyhow::Error>(s)
    })?;
    let mut freeze = Freeze::default();
    for i in 0..plan.restores {
        for (name, server, s) in [("cluster", &rig.a, &sbx), ("plain", &plain, &plain_src)] {
            rig.rt
                .block_on(write_shm(s, &format!("freeze-{i}"), plan.changed_mib))?;
            let snap = rig.rt.block_on(snapshot(server, s))?;
            if name == "cluster" {
                rig.uploaded(&snap.image)?;
                freeze.cluster_ms.push(snap.frozen_ms);
            } else {
                freeze.plain_ms.push(snap.frozen_ms);
            }
            log(
                "cluster",
                format!("freeze #{i} {name}: {:.0} ms", snap.frozen_ms),
            );
        }
    }
    out.freeze = Some(freeze);
    let _ = std::fs::create_dir_all(out_dir)
        .and_then(|_| std::fs::copy(plain.log_path(), out_dir.join("plain.log")));
    rig.rt.block_on(async {
        let _ = plain_src.kill().await;
        sbx.kill().await
    })?;
    Ok(())
}

/// One repetition of `restores`.
/// Before each measured restore: the same idle time, so that none of the three starts right
/// after kills freed memory that it can fill faster than the others (measured: with the local
/// restore right after the other clones' kills, its RAM copy took 10–30 ms; after 8 s idle,
/// 285–300 ms, like the remote ones').
async fn settle(plan: &Plan) {
    tokio::time::sleep(Duration::from_millis(plan.settle_ms)).await;
}

fn restore_once(rig: &Rig, plan: &Plan) -> anyhow::Result<RestoreRun> {
    let (src, held, _) = rig.source(&plan.template, plan.dirty_mib)?;
    let snap = rig.rt.block_on(snapshot(&rig.a, &src))?;
    let upload_ms = rig.uploaded(&snap.image)?;
    let m = bucket::manifest(&rig.s3.objects_dir(), &snap.image)?;
    // A is full (its source runs): the restore goes to B, which never saw the image.
    let store_cpu_before = rig.s3.cpu_ms()?;
    let (remote_ms, local_ms, remote_id, local_id, store_cpu_ms) = rig.rt.block_on(async {
        settle(plan).await;
        let (clone, remote_ms) = create_ready(&rig.b, &snap.id)
            .await
            .context("restore on B")?;
        let store_cpu_ms = rig.s3.cpu_ms()? - store_cpu_before;
        ensure!(
            runs_on(&rig.b, clone.sandbox_id()),
            "the remote restore {} did not run on B",
            clone.sandbox_id()
        );
        check_state(&clone, &held).await.context("B's clone")?;
        // A and B are full now: the next restore goes to C, which asks the bucket alone.
        settle(plan).await;
        let cpu_before = rig.s3.cpu_ms()?;
        let (on_c, bucket_ms) = create_ready(&rig.b, &snap.id)
            .await
            .context("restore on C")?;
        let bucket_store_cpu_ms = rig.s3.cpu_ms()? - cpu_before;
        ensure!(
            runs_on(&rig.c, on_c.sandbox_id()),
            "the bucket-only restore {} did not run on C",
            on_c.sandbox_id()
        );
        check_state(&on_c, &held).await.context("C's clone")?;
        on_c.kill().await?;
        clone.kill().await?;
        let remote_id = clone.sandbox_id().to_string();
        src.kill().await?;
        // Both nodes keep the image now; A has more free memory.
        settle(plan).await;
        let (clone, local_ms) = create_ready(&rig.a, &snap.id)
            .await
            .context("restore on A")?;
        ensure!(
            runs_on(&rig.a, clone.sandbox_id()),
            "the local restore {} did not run on A",
            clone.sandbox_id()
        );
        check_state(&clone, &held).await.context("A's clone")?;
        clone.kill().await?;
        Ok::<_, anyhow::Error>((
            remote_ms,
            local_ms,
            remote_id,
            clone.sandbox_id().to_string(),
            (store_cpu_ms, bucket_ms, bucket_store_cpu_ms),
        ))
    })?;
    let (store_cpu_ms, bucket_ms, bucket_store_cpu_ms) = store_cpu_ms;
    let log_c = std::fs::read_to_string(rig.c.log_path())?;
    let fc = bucket::log_fields(
        &log_c,
        "image fetched for a restore",
        &[("image", &snap.image)],
    )
    .context("no fetch line in C's log")?;
    let num_c = |k: &str| {
        fc.get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("C's fetch line without {k}"))
    };
    let log_b = std::fs::read_to_string(rig.b.log_path())?;
    let f = bucket::log_fields(
        &log_b,
        "image fetched for a restore",
        &[("image", &snap.image)],
    )
    .context("no fetch line in B's log")?;
    let vm_ms = |server: &Server, sandbox: &str| -> anyhow::Result<f64> {
        let log = std::fs::read_to_string(server.log_path())?;
        let f = bucket::log_fields(&log, "vm restored", &[("sandbox", sandbox)])
            .with_context(|| format!("no `vm restored` line for {sandbox}"))?;
        f.get("ms")
            .and_then(|v| v.parse().ok())
            .context("`vm restored` without ms")
    };
    let num = |k: &str| {
        f.get(k)
            .and_then(|v| v.parse::<f64>().ok())
            .with_context(|| format!("fetch line without {k}"))
    };
    Ok(RestoreRun {
        image: snap.image,
        remote_ms,
        local_ms,
        fetch_ms: num("ms")?,
        fetched_bytes: num("fetched_bytes")? as u64,
        ram_nonzero_bytes: m.ram_nonzero_bytes(),
        ram_bytes: m.ram.as_ref().map_or(0, |r| r.size),
        upload_ms,
        remote_vm_ms: vm_ms(&rig.b, &remote_id)?,
        local_vm_ms: vm_ms(&rig.a, &local_id)?,
        frozen_ms: snap.frozen_ms,
        store_cpu_ms,
        peer_bytes: num("peer_bytes")? as u64,
        bucket_ms: Some(bucket_ms),
        bucket_fetch_ms: Some(num_c("ms")?),
        bucket_fetched_bytes: Some(num_c("fetched_bytes")? as u64),
        bucket_store_cpu_ms: Some(bucket_store_cpu_ms),
    })
}

fn record(out: &mut ClusterResults, phase: &str, e: anyhow::Error) {
    let msg = format!("[{phase}] {e:#}").replace('\n', " ");
    eprintln!("bench: FAILED {msg}");
    out.failures.push(msg);
}

/// Runs the scenario into `out`; a phase that fails is recorded in `failures` (its sandboxes
/// killed) and the next one runs. Node logs are copied to `out_dir`.
pub fn run(
    bin: &Path,
    templates_dir: Option<&Path>,
    plan: &Plan,
    out_dir: &Path,
    out: &mut ClusterResults,
) -> anyhow::Result<()> {
    log(
        "cluster",
        format!("{plan:?}: starting PostgreSQL, s3s-fs, nodes A, B and C"),
    );
    let rig = Rig::start(bin, templates_dir)?;
    eprintln!(
        "bench: node logs: {} {} {}",
        rig.a.log_path().display(),
        rig.b.log_path().display(),
        rig.c.log_path().display()
    );
    out.dirty_mib = plan.dirty_mib;
    out.changed_mib = plan.changed_mib;
    out.settle_ms = plan.settle_ms;
    if let Err(e) = uploads_and_freeze(&rig, plan, (bin, templates_dir), out_dir, out) {
        record(out, "uploads", e);
        rig.kill_all();
    }
    for i in 0..plan.restores {
        match restore_once(&rig, plan) {
            Ok(r) => {
                let mib = r.fetched_bytes as f64 / 1048576.0;
                log(
                    "cluster",
                    format!(
                        "restore #{i}: B {:.0} ms (fetch {:.0} ms, {mib:.1} MiB from the bucket, {:.1} MiB from A), C (bucket only) {:.0} ms, A {:.0} ms",
                        r.remote_ms, r.fetch_ms, r.peer_bytes as f64 / 1048576.0, r.bucket_ms.unwrap_or(f64::NAN), r.local_ms
                    ),
                );
                out.restores.push(r);
            }
            Err(e) => {
                record(out, "restores", e);
                rig.kill_all();
                break;
            }
        }
    }
    out.machine = crate::report::probe_machine(&rig.a.log_path());
    std::fs::create_dir_all(out_dir)?;
    rig.copy_logs(out_dir);
    Ok(())
}
