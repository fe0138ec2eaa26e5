//! Scenario drivers over every system under test. Each iteration runs every system once, in
//! turn (A B A B …), so drift of this shared machine lands on all of them alike and the ratios
//! of medians compare numbers taken side by side.
//!
//! Every number comes with a correctness check, so a fast wrong answer cannot pass: restored
//! sandboxes must hold the exact memory (sha256) and files the source held when captured. A
//! failing system is recorded (`Results::failures`) and left out of the rest of the scenario;
//! the others carry on.

use crate::results::{ConcurrentSeries, Failure, PauseSeries, RestoreSeries, Results, SnapshotSeries};
use crate::stats::all_positive;
use crate::system::{Batch, SandboxRef, SnapshotRef, System};

/// Iteration counts and sizes of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub snapshot_mib: Vec<u32>,
    pub snapshot_iterations: usize,
    /// Restore-and-check the last snapshot of each size up to this one (a check hashes the
    /// whole dirty memory inside the guest, slow under TCG for 1 GiB).
    pub verify_max_mib: u32,
    pub restore_mib: u32,
    pub sequential: usize,
    pub concurrency: Vec<usize>,
    pub concurrent_batches: usize,
    pub pause_iterations: usize,
}

pub type Systems = Vec<Box<dyn System>>;

/// Default of `Plan::verify_max_mib`.
pub const VERIFY_MAX_MIB: u32 = 256;

pub fn fail(out: &mut Results, scenario: &str, system: &str, error: impl std::fmt::Display) {
    let error = format!("{error:#}").replace('\n', " ");
    eprintln!("bench: [{scenario}] {system} FAILED: {error}");
    out.failures.push(Failure { scenario: scenario.into(), system: system.into(), error });
}

/// Progress on stderr, with the seconds since the first message (to size the iteration counts).
pub fn log(scenario: &str, msg: impl std::fmt::Display) {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let t = START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64();
    eprintln!("bench: {t:6.0}s [{scenario}] {msg}");
}

/// The guest label of a system's rows (only ours runs a guest of a chosen size).
fn guest_of(system: &str, ours_guest: &str) -> String {
    if system == crate::OURS { ours_guest.to_string() } else { String::new() }
}

/// Kills what a batch brought up; returns the first error.
fn kill_batch(s: &mut dyn System, b: &Batch) -> anyhow::Result<()> {
    let mut first = Ok(());
    for c in &b.ok {
        if let Err(e) = s.kill(&c.sandbox)
            && first.is_ok()
        {
            first = Err(e);
        }
    }
    first
}

/// One live workload per system: (index into systems, source, snapshot).
struct Live {
    idx: usize,
    source: SandboxRef,
    snapshot: Option<SnapshotRef>,
    dead: bool,
}

fn start_sources(systems: &mut Systems, mib: u32, scenario: &str, out: &mut Results) -> Vec<Live> {
    let mut live = Vec::new();
    for (idx, s) in systems.iter_mut().enumerate() {
        log(scenario, format!("{}: source with {mib} MiB dirty", s.name()));
        match s.start_source(mib) {
            Ok(source) => live.push(Live { idx, source, snapshot: None, dead: false }),
            Err(e) => fail(out, scenario, &s.name(), e),
        }
    }
    live
}

fn cleanup(systems: &mut Systems, live: &[Live], scenario: &str, out: &mut Results) {
    for l in live {
        let s = &mut systems[l.idx];
        if let Some(snap) = &l.snapshot
            && let Err(e) = s.delete_snapshot(snap)
        {
            fail(out, scenario, &s.name(), e.context("delete snapshot"));
        }
        if let Err(e) = s.kill(&l.source) {
            fail(out, scenario, &s.name(), e.context("kill source"));
        }
    }
}

/// `snapshot`: per dirty size, a source per system, `snapshot_iterations` snapshots of it
/// (frozen, durable, size), then one restore of the last snapshot with its state checked.
pub fn snapshot(systems: &mut Systems, plan: &Plan, ours_guest: &str, out: &mut Results) {
    for &mib in &plan.snapshot_mib {
        let scenario = format!("snapshot {mib} MiB");
        let mut live = start_sources(systems, mib, &scenario, out);
        let mut series: Vec<SnapshotSeries> = live
            .iter()
            .map(|l| {
                let system = systems[l.idx].name();
                SnapshotSeries {
                    guest: guest_of(&system, ours_guest),
                    system,
                    dirty_mib: mib,
                    frozen_ms: vec![],
                    durable_ms: vec![],
                    size_mib: vec![],
                    restore_verified: false,
                }
            })
            .collect();
        for it in 0..plan.snapshot_iterations {
            for (l, ser) in live.iter_mut().zip(series.iter_mut()).filter(|(l, _)| !l.dead) {
                let s = &mut systems[l.idx];
                match s.snapshot(&l.source) {
                    Ok(x) => {
                        log(&scenario, format!("{} #{it}: frozen {:.0} ms, durable {:.0} ms, {:.0} MiB", ser.system, x.frozen_ms, x.durable_ms, x.size_mib));
                        ser.frozen_ms.push(x.frozen_ms);
                        ser.durable_ms.push(x.durable_ms);
                        ser.size_mib.push(x.size_mib);
                        if let Some(prev) = l.snapshot.replace(x.snapshot)
                            && let Err(e) = s.delete_snapshot(&prev)
                        {
                            fail(out, &scenario, &ser.system, e.context("delete snapshot"));
                            l.dead = true;
                        }
                    }
                    Err(e) => {
                        fail(out, &scenario, &ser.system, e);
                        l.dead = true;
                    }
                }
            }
        }
        for (l, ser) in live.iter_mut().zip(series.iter_mut()).filter(|(l, _)| !l.dead) {
            if !(all_positive(&ser.frozen_ms) && all_positive(&ser.durable_ms) && all_positive(&ser.size_mib)) {
                fail(out, &scenario, &ser.system, "a zero, negative or missing measurement");
            }
            let (Some(snap), true) = (&l.snapshot, mib <= plan.verify_max_mib) else { continue };
            let s = &mut systems[l.idx];
            match s.restore(snap, 1) {
                Ok(b) => {
                    if b.ok.len() == 1 && b.errors.is_empty() {
                        ser.restore_verified = true;
                    } else {
                        fail(out, &scenario, &ser.system, format!("restore check: {:?}", b.errors));
                    }
                    if let Err(e) = kill_batch(s.as_mut(), &b) {
                        fail(out, &scenario, &ser.system, e.context("kill clone"));
                    }
                }
                Err(e) => fail(out, &scenario, &ser.system, e.context("restore check")),
            }
        }
        cleanup(systems, &live, &scenario, out);
        out.snapshot.extend(series);
    }
}

/// `restore` (sequential, then concurrent batches) and `pause-resume`, sharing one source and
/// one snapshot per system.
pub fn restore_and_pause(systems: &mut Systems, plan: &Plan, ours_guest: &str, restore: bool, pause: bool, out: &mut Results) {
    let mib = plan.restore_mib;
    let scenario = if restore { "restore" } else { "pause-resume" };
    let mut live = start_sources(systems, mib, scenario, out);
    if restore {
        for l in live.iter_mut() {
            let s = &mut systems[l.idx];
            match s.snapshot(&l.source) {
                Ok(x) => l.snapshot = Some(x.snapshot),
                Err(e) => {
                    fail(out, scenario, &s.name(), e.context("snapshot"));
                    l.dead = true;
                }
            }
        }
        sequential(systems, plan, ours_guest, &mut live, out);
        for &n in &plan.concurrency {
            concurrent(systems, plan, ours_guest, n, &mut live, out);
        }
    }
    if pause {
        pause_resume(systems, plan, ours_guest, &mut live, out);
    }
    cleanup(systems, &live, scenario, out);
}

fn sequential(systems: &mut Systems, plan: &Plan, ours_guest: &str, live: &mut [Live], out: &mut Results) {
    let scenario = "restore (sequential)";
    let mut series: Vec<RestoreSeries> = live
        .iter()
        .map(|l| {
            let system = systems[l.idx].name();
            RestoreSeries { guest: guest_of(&system, ours_guest), system, dirty_mib: plan.restore_mib, ready_ms: vec![] }
        })
        .collect();
    for it in 0..plan.sequential {
        for (l, ser) in live.iter_mut().zip(series.iter_mut()).filter(|(l, _)| !l.dead) {
            let s = &mut systems[l.idx];
            let snap = l.snapshot.clone().expect("snapshot");
            match s.restore(&snap, 1) {
                Ok(b) => {
                    if let (Some(c), true) = (b.ok.first(), b.errors.is_empty()) {
                        log(scenario, format!("{} #{it}: ready in {:.0} ms", ser.system, c.ready_ms));
                        ser.ready_ms.push(c.ready_ms);
                    } else {
                        fail(out, scenario, &ser.system, format!("{:?}", b.errors));
                        l.dead = true;
                    }
                    if let Err(e) = kill_batch(s.as_mut(), &b) {
                        fail(out, scenario, &ser.system, e.context("kill clone"));
                        l.dead = true;
                    }
                }
                Err(e) => {
                    fail(out, scenario, &ser.system, e);
                    l.dead = true;
                }
            }
        }
    }
    for (l, ser) in live.iter().zip(series.iter()) {
        if !l.dead && !all_positive(&ser.ready_ms) {
            fail(out, scenario, &ser.system, "a zero, negative or missing measurement");
        }
    }
    out.restore.extend(series);
}

fn concurrent(systems: &mut Systems, plan: &Plan, ours_guest: &str, n: usize, live: &mut [Live], out: &mut Results) {
    let scenario = format!("restore ({n} concurrent)");
    let mut series: Vec<ConcurrentSeries> = live
        .iter()
        .map(|l| {
            let system = systems[l.idx].name();
            ConcurrentSeries {
                guest: guest_of(&system, ours_guest),
                system,
                clones: n,
                dirty_mib: plan.restore_mib,
                wall_ms: vec![],
                succeeded: 0,
                attempted: 0,
                errors: vec![],
                ready_ms: vec![],
                pss_mib: vec![],
            }
        })
        .collect();
    for _ in 0..plan.concurrent_batches {
        for (l, ser) in live.iter_mut().zip(series.iter_mut()).filter(|(l, _)| !l.dead) {
            let s = &mut systems[l.idx];
            let snap = l.snapshot.clone().expect("snapshot");
            ser.attempted += n;
            match s.restore(&snap, n) {
                Ok(b) => {
                    log(&scenario, format!("{}: {} of {n} up, wall {:.0} ms", ser.system, b.ok.len(), b.wall_ms));
                    ser.wall_ms.push(b.wall_ms);
                    ser.succeeded += b.ok.len();
                    ser.ready_ms.extend(b.ok.iter().map(|c| c.ready_ms));
                    ser.pss_mib.extend(b.ok.iter().filter_map(|c| c.pss_mib));
                    if !b.errors.is_empty() {
                        fail(out, &scenario, &ser.system, format!("{} of {n} clones failed: {}", b.errors.len(), b.errors.join("; ")));
                        ser.errors.extend(b.errors.iter().cloned());
                    }
                    if let Err(e) = kill_batch(s.as_mut(), &b) {
                        fail(out, &scenario, &ser.system, e.context("kill clone"));
                        l.dead = true;
                    }
                }
                Err(e) => {
                    fail(out, &scenario, &ser.system, e);
                    l.dead = true;
                }
            }
        }
    }
    for (l, ser) in live.iter().zip(series.iter()) {
        if l.dead {
            continue;
        }
        if !all_positive(&ser.wall_ms) || !all_positive(&ser.ready_ms) {
            fail(out, &scenario, &ser.system, "a zero, negative or missing measurement");
        }
        if ser.pss_mib.iter().any(|p| !(p.is_finite() && *p > 0.0)) {
            fail(out, &scenario, &ser.system, "a zero or negative PSS");
        }
    }
    out.concurrent.extend(series);
}

fn pause_resume(systems: &mut Systems, plan: &Plan, ours_guest: &str, live: &mut [Live], out: &mut Results) {
    let scenario = "pause-resume";
    let mut series: Vec<PauseSeries> = live
        .iter()
        .map(|l| {
            let system = systems[l.idx].name();
            PauseSeries { guest: guest_of(&system, ours_guest), system, dirty_mib: plan.restore_mib, resume_ms: vec![], pause_ms: vec![] }
        })
        .collect();
    // Sources that failed only at restore still get paused and resumed.
    for l in live.iter_mut() {
        l.dead = false;
    }
    for it in 0..plan.pause_iterations {
        for (l, ser) in live.iter_mut().zip(series.iter_mut()).filter(|(l, _)| !l.dead) {
            let s = &mut systems[l.idx];
            let r = s.pause_resume(&l.source).and_then(|ms| {
                s.verify(&l.source)?;
                Ok(ms)
            });
            match r {
                Ok(ms) => {
                    let pause = s.last_pause_ms();
                    log(scenario, format!("{} #{it}: pause {pause:?} ms, resume → first command {ms:.0} ms", ser.system));
                    ser.resume_ms.push(ms);
                    ser.pause_ms.extend(pause);
                }
                Err(e) => {
                    fail(out, scenario, &ser.system, e);
                    l.dead = true;
                }
            }
        }
    }
    for (l, ser) in live.iter().zip(series.iter()) {
        if !l.dead && !all_positive(&ser.resume_ms) {
            fail(out, scenario, &ser.system, "a zero, negative or missing measurement");
        }
    }
    out.pause_resume.extend(series);
}
