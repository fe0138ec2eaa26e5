//! `bench`: measures sandboxd and its peers (gVisor, CRIU) on this machine with the same
//! workload, in one run, and writes every sample to `results.json` plus a markdown report.
//!
//! Scenarios (all by default):
//! - `snapshot`: a source holding N MiB of dirty memory (N = 64, 256, 1024): time frozen, time
//!   until the snapshot is durable/listed, size on disk; the last snapshot is restored and checked;
//! - `restore`: create-from-snapshot → first command, sequential (p50/p95/p99) and N at once
//!   (wall, successes, per-clone PSS);
//! - `pause-resume`: pause, resume (ours: `connect`), first command;
//! - `api` (ours only): list/get latency and throughput with 1,000 stored snapshots, latency per
//!   page number;
//! - `create` (ours only): template → first command;
//! - `template` (ours only): a small custom template built cold and cached, then created from.
//!
//! Not in the default set, and run alone: `cluster` (ours only; `--scenario cluster`, see
//! `cluster/mod.rs`) starts PostgreSQL, s3s-fs and two nodes, and writes its own results.json
//! and report into `<out-dir>/cluster/`.
//!
//! Exit status: non-zero if a scenario failed for sandboxd; with `--quick`, also if a peer that
//! was available failed (an unavailable peer is a table row with its reason, not a failure).

mod api;
mod cluster;
mod create;
mod ours;
mod peers;
mod pss;
mod report;
mod results;
mod scenarios;
mod template;
mod server;
mod stats;
mod system;
mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;

use crate::results::{Results, SystemStatus};
use crate::scenarios::{Plan, Systems, fail};

/// The name sandboxd's rows carry (`Ours::name`).
pub const OURS: &str = "sandboxd";

const ALL: &[&str] = &["snapshot", "restore", "restore-pool", "pause-resume", "api", "create", "pool", "template"];

#[derive(Parser)]
#[command(about = "Benchmarks sandboxd against gVisor and CRIU on this machine; writes results.json and a markdown report")]
struct Args {
    /// Few iterations, small sizes (32 MiB, 3 sequential restores, 2 at once, 50 snapshots):
    /// the test suite's smoke run. Without it: the full counts (see the other options).
    #[arg(long)]
    quick: bool,
    /// Scenarios to run, comma-separated: snapshot, restore, restore-pool, pause-resume, api, create, pool,
    /// template;
    /// or `cluster` alone (not in the default set: a two-node cluster, into <out-dir>/cluster/).
    #[arg(long, value_delimiter = ',', default_values_t = ALL.iter().map(|s| s.to_string()))]
    scenario: Vec<String>,
    /// Where results.json and report.md go.
    #[arg(long, default_value = "target/bench")]
    out_dir: PathBuf,
    /// Also write the report here (e.g. docs/benchmarks.md).
    #[arg(long)]
    docs: Option<PathBuf>,
    /// Prefix of the plot file names in the report's image links (e.g. `bench/`).
    #[arg(long, default_value = "")]
    plot_prefix: String,
    /// Recorded in the report as the command that produced it.
    #[arg(long, env = "BENCH_COMMAND")]
    command: Option<String>,
    /// Run sandboxd only.
    #[arg(long)]
    no_peers: bool,
    /// Dirty memory sizes of the snapshot scenario, MiB [full: 64,256,1024; quick: 32].
    #[arg(long, value_delimiter = ',')]
    snapshot_mib: Vec<u32>,
    /// Snapshots per size and system [full: 5; quick: 2].
    #[arg(long)]
    snapshot_iterations: Option<usize>,
    /// Template (guest size) of sandboxd's snapshot scenario [full: base-2g, 2 GiB; quick: base].
    #[arg(long)]
    snapshot_template: Option<String>,
    /// Template of every other scenario (base = 512 MiB guest).
    #[arg(long, default_value = "base")]
    template: String,
    /// Dirty memory of the restore and pause-resume source, MiB [full: 64; quick: 32].
    #[arg(long)]
    restore_mib: Option<u32>,
    /// Sequential restores per system [full: 20; quick: 3].
    #[arg(long)]
    sequential: Option<usize>,
    /// Concurrent restore batch sizes [full: 8,16; quick: 2].
    #[arg(long, value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// Batches per size and system [full: 2; quick: 1].
    #[arg(long)]
    batches: Option<usize>,
    /// Pause-resume cycles per system [full: 10; quick: 2].
    #[arg(long)]
    pause_iterations: Option<usize>,
    /// Stored snapshots for the api scenario [full: 1000; quick: 50].
    #[arg(long)]
    api_snapshots: Option<usize>,
    /// Sequential creates of the create scenario [full: 10; quick: 2].
    #[arg(long)]
    creates: Option<usize>,
    /// cluster: restores on a node that never saw the image (and locally), each from a new image;
    /// also the freeze comparison's snapshots per node [full: 5; quick: 2].
    #[arg(long)]
    cluster_restores: Option<usize>,
    /// cluster: dirty memory of each source, MiB.
    #[arg(long, default_value_t = 64)]
    cluster_dirty_mib: u32,
    /// cluster: memory changed between two snapshots, MiB (new data in /dev/shm).
    #[arg(long, default_value_t = 16)]
    cluster_changed_mib: u32,
    /// cluster: idle time before each measured restore, ms, so that none starts right after
    /// another freed memory (on a VM host that takes idle memory back, memory just freed is
    /// faster to fill than memory freed seconds ago; see docs/cluster.md). 0: none.
    #[arg(long, default_value_t = 10000)]
    cluster_settle_ms: u64,
    /// Run nothing: render the report (to --out-dir and --docs) from an earlier results.json
    /// (with `--scenario cluster`: from a cluster results.json).
    #[arg(long)]
    report_from: Option<PathBuf>,
    /// sandboxd binary.
    #[arg(long, env = "SANDBOXD_BIN", default_value = "target/release/sandboxd")]
    sandboxd: PathBuf,
    /// Shared template cache (`sandboxd template build base` fills it).
    #[arg(long, env = "SANDBOXD_TEMPLATES_DIR")]
    templates_dir: Option<PathBuf>,
}

fn guest_label(template: &str, rt: &tokio::runtime::Runtime, server: &server::Server) -> String {
    let opts = e2b::CreateOptions { template: Some(template.into()), connection: server.opts(), ..Default::default() };
    let mb = rt
        .block_on(async {
            let s = e2b::Sandbox::create(opts).await?;
            let mb = s.get_info().await.map(|i| i.memory_mb);
            s.kill().await?;
            mb
        })
        .ok();
    match mb {
        Some(mb) if mb % 1024 == 0 => format!("{} GiB guest, template {template}", mb / 1024),
        Some(mb) => format!("{mb} MiB guest, template {template}"),
        None => format!("template {template}"),
    }
}

fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// `--scenario cluster`: its own results.json, report.md and node logs in `<out-dir>/cluster/`,
/// the report printed, and with `--docs` written there too.
fn run_cluster(a: &Args) -> anyhow::Result<()> {
    let out_dir = a.out_dir.join("cluster");
    if let Some(json) = &a.report_from {
        let raw = std::fs::read(json).with_context(|| format!("read {}", json.display()))?;
        let md = cluster::render(&serde_json::from_slice(&raw)?);
        std::fs::create_dir_all(&out_dir)?;
        std::fs::write(out_dir.join("report.md"), &md)?;
        if let Some(docs) = &a.docs {
            std::fs::write(docs, &md)?;
        }
        println!("{md}");
        return Ok(());
    }
    let plan = cluster::Plan {
        template: a.template.clone(),
        restores: a.cluster_restores.unwrap_or(if a.quick { 2 } else { 5 }),
        dirty_mib: a.cluster_dirty_mib,
        changed_mib: a.cluster_changed_mib,
        settle_ms: a.cluster_settle_ms,
    };
    let started = Instant::now();
    let mut out = cluster::ClusterResults {
        command: a.command.clone().unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" ")),
        started_utc: utc_now(),
        loadavg_at_start: std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_string(),
        ..Default::default()
    };
    if let Err(e) = cluster::run(&a.sandboxd, a.templates_dir.as_deref(), &plan, &out_dir, &mut out) {
        out.failures.push(format!("{e:#}").replace('\n', " "));
    }
    out.duration_s = started.elapsed().as_secs_f64();
    std::fs::create_dir_all(&out_dir)?;
    let json = out_dir.join("results.json");
    std::fs::write(&json, serde_json::to_vec_pretty(&out)?).with_context(|| format!("write {}", json.display()))?;
    let md = cluster::render(&out);
    std::fs::write(out_dir.join("report.md"), &md)?;
    if let Some(docs) = &a.docs {
        std::fs::write(docs, &md).with_context(|| format!("write {}", docs.display()))?;
    }
    println!("{md}");
    eprintln!("bench: wrote {} and report.md in {:.0} s", json.display(), out.duration_s);
    for f in &out.failures {
        eprintln!("bench: FAILED [cluster] {f}");
    }
    anyhow::ensure!(out.failures.is_empty(), "{} failure(s) in the cluster scenario", out.failures.len());
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let q = a.quick;
    for s in &a.scenario {
        anyhow::ensure!(ALL.contains(&s.as_str()) || s == "cluster", "unknown scenario {s} (known: {}, cluster)", ALL.join(", "));
    }
    if a.scenario.iter().any(|s| s == "cluster") {
        anyhow::ensure!(a.scenario.len() == 1, "the cluster scenario runs alone (--scenario cluster)");
        return run_cluster(&a);
    }
    if let Some(json) = &a.report_from {
        let r: Results = serde_json::from_slice(&std::fs::read(json).with_context(|| format!("read {}", json.display()))?)?;
        let md = report::render(&r, &a.plot_prefix);
        std::fs::create_dir_all(&a.out_dir)?;
        std::fs::write(a.out_dir.join("report.md"), &md)?;
        if let Some(docs) = &a.docs {
            std::fs::write(docs, &md)?;
        }
        return Ok(());
    }
    let wants = |s: &str| a.scenario.iter().any(|x| x == s);
    let pick = |v: &Vec<u32>, full: Vec<u32>, quick: Vec<u32>| if !v.is_empty() { v.clone() } else if q { quick } else { full };
    let plan = Plan {
        snapshot_mib: pick(&a.snapshot_mib, vec![64, 256, 1024], vec![32]),
        snapshot_iterations: a.snapshot_iterations.unwrap_or(if q { 2 } else { 5 }),
        verify_max_mib: scenarios::VERIFY_MAX_MIB,
        restore_mib: a.restore_mib.unwrap_or(if q { 32 } else { 64 }),
        sequential: a.sequential.unwrap_or(if q { 3 } else { 20 }),
        concurrency: if !a.concurrency.is_empty() { a.concurrency.clone() } else if q { vec![2] } else { vec![8, 16] },
        concurrent_batches: a.batches.unwrap_or(if q { 1 } else { 2 }),
        pause_iterations: a.pause_iterations.unwrap_or(if q { 2 } else { 10 }),
    };
    let snapshot_template = a.snapshot_template.clone().unwrap_or_else(|| if q { a.template.clone() } else { "base-2g".into() });
    let api_plan = api::ApiPlan {
        snapshots: a.api_snapshots.unwrap_or(if q { 50 } else { 1000 }),
        sources: if q { 2 } else { 10 },
        limit: if q { 10 } else { 100 },
        repetitions: if q { 3 } else { 20 },
        clients: if q { 2 } else { 4 },
        seconds: if q { 1.0 } else { 5.0 },
    };
    scenarios::log("plan", format!("{plan:?}, snapshot template {snapshot_template}, {api_plan:?}"));

    let started = Instant::now();
    let mut out = Results {
        mode: if q { "quick" } else { "full" }.into(),
        command: a.command.clone().unwrap_or_else(|| std::env::args().collect::<Vec<_>>().join(" ")),
        started_utc: utc_now(),
        ..Default::default()
    };
    let server = Arc::new(server::Server::start(&a.sandboxd, a.templates_dir.as_deref())?);
    eprintln!("bench: sandboxd log: {}", server.log_path().display());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;

    let ours = ours::Ours::new(server.clone(), &a.template)?;
    let template = ours.template_handle();
    let mut systems: Systems = vec![Box::new(ours)];
    out.systems.push(SystemStatus { name: OURS.into(), unavailable: None });
    if !a.no_peers {
        for p in peers::peers(q) {
            match p {
                Ok(s) => {
                    out.systems.push(SystemStatus { name: s.name(), unavailable: None });
                    systems.push(s);
                }
                Err((name, why)) => {
                    eprintln!("bench: peer {name} cannot run here: {why}");
                    out.systems.push(SystemStatus { name, unavailable: Some(why) });
                }
            }
        }
    }

    let set_template = |t: &str| *template.lock().unwrap_or_else(|p| p.into_inner()) = t.to_string();
    if wants("snapshot") {
        set_template(&snapshot_template);
        let guest = guest_label(&snapshot_template, &rt, &server);
        scenarios::snapshot(&mut systems, &plan, &guest, &mut out);
    }
    set_template(&a.template);
    if wants("restore") || wants("pause-resume") {
        let guest = guest_label(&a.template, &rt, &server);
        scenarios::restore_and_pause(&mut systems, &plan, &guest, wants("restore"), wants("pause-resume"), &mut out);
    }
    if wants("restore-pool") {
        let n = a.creates.unwrap_or(if q { 3 } else { 10 });
        match create::restore_pooled(&rt, &a.sandboxd, a.templates_dir.as_deref(), &a.template, plan.restore_mib, n) {
            Ok(r) => out.restore_pooled = Some(r),
            Err(e) => fail(&mut out, "restore-pool", OURS, e),
        }
    }
    if wants("api") {
        match api::api(&rt, &server, &api_plan) {
            Ok(r) => out.api = Some(r),
            Err(e) => fail(&mut out, "api", OURS, e),
        }
    }
    if wants("create") {
        match create::create(&rt, &server, &a.template, a.creates.unwrap_or(if q { 2 } else { 10 })) {
            Ok(r) => out.create = Some(r),
            Err(e) => fail(&mut out, "create", OURS, e),
        }
    }
    if wants("pool") {
        let n = a.creates.unwrap_or(if q { 3 } else { 10 });
        match create::create_pooled(&rt, &a.sandboxd, a.templates_dir.as_deref(), &a.template, n) {
            Ok(r) => out.create_pooled = Some(r),
            Err(e) => fail(&mut out, "pool", OURS, e),
        }
    }
    if wants("template") {
        match template::template_scenario(&rt, &server, a.creates.unwrap_or(if q { 2 } else { 10 })) {
            Ok(r) => out.template = Some(r),
            Err(e) => fail(&mut out, "template", OURS, e),
        }
    }
    out.machine = report::probe_machine(&server.log_path());
    out.duration_s = started.elapsed().as_secs_f64();

    std::fs::create_dir_all(&a.out_dir)?;
    let json = a.out_dir.join("results.json");
    std::fs::write(&json, serde_json::to_vec_pretty(&out)?).with_context(|| format!("write {}", json.display()))?;
    let md = report::render(&out, &a.plot_prefix);
    std::fs::write(a.out_dir.join("report.md"), &md)?;
    if let Some(docs) = &a.docs {
        std::fs::write(docs, &md).with_context(|| format!("write {}", docs.display()))?;
    }
    eprintln!("bench: wrote {} and report.md in {:.0} s", json.display(), out.duration_s);

    // sandboxd's log goes with the results (its data directory is deleted on exit).
    let _ = std::fs::copy(server.log_path(), a.out_dir.join("sandboxd.log"));
    // Stop the systems (and with them sandboxd's VMs) before deciding the exit status.
    drop(systems);
    drop(rt);
    drop(server);
    let ours_failed = out.failures.iter().any(|f| f.system == OURS);
    let peer_failed = out.failures.iter().any(|f| f.system != OURS);
    for f in &out.failures {
        eprintln!("bench: FAILED [{}] {}: {}", f.scenario, f.system, f.error);
    }
    if ours_failed || (q && peer_failed) {
        eprintln!("bench: {} failure(s){}", out.failures.len(), if q { " (quick mode fails on any system that ran)" } else { "" });
        std::process::exit(1);
    }
    if peer_failed {
        eprintln!("bench: peers failed (reported in the tables; the full mode still succeeds)");
    }
    Ok(())
}
