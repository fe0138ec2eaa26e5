//! The benchmark scenarios. Every number comes with a correctness check, so a fast wrong
//! answer cannot pass: commands must print what they were asked to, restored sandboxes must
//! hold the exact memory the source held when it was captured.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use e2b::{CreateOptions, RunOptions, Sandbox};

use crate::pss;
use crate::workload::{HOLD_PY, Held, QUERY};
use crate::server::Server;
use crate::stats::Samples;

fn create_opts(server: &Server, template: &str) -> CreateOptions {
    CreateOptions {
        template: Some(template.to_string()),
        timeout: Some(Duration::from_secs(900)),
        connection: server.opts(),
        ..Default::default()
    }
}

fn run_dir(server: &Server) -> std::path::PathBuf {
    server.data_dir.path().join("store/run")
}

/// Create → first command, sequentially, and the PSS of each sandbox.
pub async fn create(server: &Server, n: usize) -> anyhow::Result<()> {
    let (mut total, mut create_only, mut first_cmd, mut pss_mib) =
        (Samples::default(), Samples::default(), Samples::default(), Samples::default());
    for _ in 0..n {
        let t = Instant::now();
        let sbx = Sandbox::create(create_opts(server, "base")).await.context("create")?;
        let created = t.elapsed();
        let r = sbx.commands().run("echo ok", RunOptions::default()).await.context("first command")?;
        let elapsed = t.elapsed();
        ensure!(r.stdout == "ok\n", "first command printed {:?}", r.stdout);
        total.push_ms(elapsed);
        create_only.push_ms(created);
        first_cmd.push_ms(elapsed - created);
        if let Some(p) = pss::sandbox_pss_mib(&run_dir(server), sbx.sandbox_id()) {
            pss_mib.push(p);
        }
        sbx.kill().await?;
    }
    ensure!(pss_mib.len() == n, "PSS was readable for only {} of {n} sandboxes", pss_mib.len());
    println!("## create → first command (template base, {n} sequential creates)\n");
    println!("| metric | p50 | p95 | max |\n|---|---|---|---|");
    row("create → first command done (ms)", &total);
    row("  of which create (ms)", &create_only);
    row("  of which first `echo ok` (ms)", &first_cmd);
    row("PSS per sandbox (MiB)", &pss_mib);
    println!();
    Ok(())
}

fn row(name: &str, s: &Samples) {
    println!("| {name} | {:.0} | {:.0} | {:.0} |", s.pct(50.0), s.pct(95.0), s.max());
}

pub struct SnapshotConfig {
    pub dirty_mib: u32,
    pub snapshots: usize,
    pub restores: usize,
    pub clones: usize,
}

async fn query(sbx: &Sandbox) -> anyhow::Result<Held> {
    let r = sbx.commands().run(QUERY, RunOptions { timeout: Some(Duration::from_secs(60)), ..Default::default() }).await?;
    Held::parse(&r.stdout).with_context(|| format!("stderr {:?}", r.stderr))
}

/// Source with dirty memory → snapshots → sequential restores → concurrent clones.
pub async fn snapshot(server: &Server, template: &str, cfg: &SnapshotConfig) -> anyhow::Result<()> {
    let src = Sandbox::create(create_opts(server, template)).await.with_context(|| format!("create from {template}"))?;
    let info = src.get_info().await?;
    src.files().write("/tmp/hold.py", HOLD_PY.as_bytes().to_vec(), None).await?;
    let t = Instant::now();
    let _holder = src
        .commands()
        .run_background(&format!("python3 /tmp/hold.py {}", cfg.dirty_mib), RunOptions { timeout: Some(Duration::ZERO), ..Default::default() })
        .await?;
    let ready = "for i in $(seq 2400); do [ -f /tmp/hold.ready ] && exit 0; sleep 0.05; done; exit 1";
    src.commands().run(ready, RunOptions { timeout: Some(Duration::from_secs(150)), ..Default::default() }).await.context("holder never became ready")?;
    let fill_s = t.elapsed().as_secs_f64();
    let before = query(&src).await?;
    ensure!(before.digest_start == before.digest_now, "source memory changed by itself");

    let (mut frozen, mut capture, mut api, mut size) = (Samples::default(), Samples::default(), Samples::default(), Samples::default());
    let mut snapshot_id = String::new();
    for i in 0..cfg.snapshots {
        let t = Instant::now();
        let snap = src.create_snapshot(None).await.context("create_snapshot")?;
        api.push_ms(t.elapsed());
        let meta = server.image_meta(&snap.snapshot_id)?;
        frozen.push(meta["frozen_ms"].as_f64().unwrap_or(f64::NAN));
        capture.push(meta["capture_ms"].as_f64().unwrap_or(f64::NAN));
        size.push(meta["size_bytes"].as_f64().unwrap_or(f64::NAN) / 1048576.0);
        if i + 1 < cfg.snapshots {
            Sandbox::delete_snapshot(&snap.snapshot_id, &server.opts()).await?;
        }
        snapshot_id = snap.snapshot_id;
    }
    let at_snapshot = query(&src).await?;
    ensure!(at_snapshot.count >= before.count, "source counter went backwards");

    // Sequential restores: create from the snapshot → first command, with a memory check.
    let mut restore = Samples::default();
    for _ in 0..cfg.restores {
        let t = Instant::now();
        let clone = Sandbox::create(create_opts(server, &snapshot_id)).await.context("create from snapshot")?;
        let r = clone.commands().run("echo ok", RunOptions::default()).await?;
        restore.push_ms(t.elapsed());
        ensure!(r.stdout == "ok\n");
        let held = query(&clone).await?;
        ensure!(held.digest_now == before.digest_start, "restored memory differs from the source's");
        ensure!(held.count >= before.count, "restored counter {} started below the source's {}", held.count, before.count);
        clone.kill().await?;
    }

    // Concurrent clones from one snapshot, all alive at once.
    let t = Instant::now();
    let tasks = (0..cfg.clones).map(|_| {
        let opts = create_opts(server, &snapshot_id);
        async move {
            let t = Instant::now();
            let c = Sandbox::create(opts).await?;
            let r = c.commands().run("echo ok", RunOptions::default()).await?;
            anyhow::ensure!(r.stdout == "ok\n");
            Ok::<_, anyhow::Error>((c, t.elapsed()))
        }
    });
    let results = futures::future::join_all(tasks).await;
    let wall = t.elapsed();
    let mut clones = Vec::new();
    let mut each = Samples::default();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok((c, d)) => {
                each.push_ms(d);
                clones.push(c);
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    let mut clone_pss = Samples::default();
    for c in &clones {
        if let Some(p) = pss::sandbox_pss_mib(&run_dir(server), c.sandbox_id()) {
            clone_pss.push(p);
        }
    }
    for c in &clones {
        let held = query(c).await?;
        ensure!(held.digest_now == before.digest_start, "a concurrent clone's memory differs");
    }
    for c in &clones {
        c.kill().await?;
    }
    src.kill().await?;
    Sandbox::delete_snapshot(&snapshot_id, &server.opts()).await?;

    let guest = info.memory_mb;
    println!("## snapshot: template `{template}` ({guest} MiB guest, {} MiB dirty, filled in {fill_s:.1} s)\n", cfg.dirty_mib);
    println!("| metric | p50 | p95 | max | target |\n|---|---|---|---|---|");
    let trow = |name: &str, s: &Samples, target: &str| {
        println!("| {name} | {:.0} | {:.0} | {:.0} | {target} |", s.pct(50.0), s.pct(95.0), s.max())
    };
    trow("source frozen (ms, host stop → cont)", &frozen, "≤ 100");
    trow("snapshot durable (ms, in sandboxd)", &capture, "");
    trow("create_snapshot API call (ms)", &api, "");
    trow("snapshot size on disk (MiB)", &size, "");
    trow("create from snapshot → first command (ms)", &restore, "≤ 1000");
    trow(&format!("{} concurrent clones: each → first command (ms)", cfg.clones), &each, "");
    trow("PSS per concurrent clone (MiB)", &clone_pss, &format!("≤ {}", guest / 2));
    println!(
        "\n{} of {} concurrent clones succeeded, wall time {:.0} ms; restored memory verified (sha256 of {} MiB) in every clone.\n",
        clones.len(),
        cfg.clones,
        wall.as_secs_f64() * 1000.0,
        cfg.dirty_mib
    );
    ensure!(errors.is_empty(), "clones failed: {errors:?}");
    ensure!(frozen.pct(50.0) > 0.0 && size.pct(50.0) > 0.0, "implausible zero measurements");
    Ok(())
}
