//! The markdown report, generated from `results.json` (docs/benchmarks.md in full mode): the
//! machine, the command, one table per scenario with ours, every peer (or why it did not run),
//! the ratio of medians ours / peer from the same run, and E2B's published figures as quoted
//! reference rows. The explanatory prose is fixed text at the end.

use std::fmt::Write;
use std::path::Path;

use crate::results::{Machine, Results};
use crate::stats::{median, pct};

/// E2B's documentation (persistence page), as summarised in the project's API spec §5.9.
const E2B_DOCS: &str = "e2b.dev docs, persistence page";
const E2B_MARKETING: &str = "E2B marketing and third-party write-ups";
/// Firecracker's published snapshot figures (its repository, `docs/snapshotting/snapshot-support.md`,
/// "Performance": resume latency target under 8 ms, 5 ms p90, 2 vCPU / 512 MiB on m5d.metal).
const FIRECRACKER_SNAPSHOT_DOCS: &str = "Firecracker docs, snapshot-support.md, 2 vCPU / 512 MiB on m5d.metal";
/// E2B: pausing takes about 4 s per GiB of RAM.
const E2B_PAUSE_MS_PER_GIB: f64 = 4000.0;
/// E2B: resuming takes about 1 s.
const E2B_RESUME_MS: f64 = 1000.0;

pub fn probe_machine(sandboxd_log: &Path) -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("unknown")
        .trim()
        .to_string();
    let mem_kb: f64 = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()))
        .unwrap_or(0.0);
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_string())))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let qemu = std::process::Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    // sandboxd logs "accelerator: tcg (why)" when it first needs one.
    let log = std::fs::read_to_string(sandboxd_log).unwrap_or_default();
    let accelerator = log
        .lines()
        .find_map(|l| l.split_once("accelerator: ").map(|(_, a)| strip_ansi(a).trim().to_string()))
        // "tcg (why) accel=tcg" → "tcg (why)"
        .map(|a| a.split_once(')').map(|(head, _)| format!("{head})")).unwrap_or(a))
        .unwrap_or_else(|| "unknown".into());
    Machine {
        cpu,
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        mem_gib: mem_kb / 1048576.0,
        os,
        kernel,
        qemu,
        accelerator,
    }
}

/// `s` without terminal colour codes (tools' and sandboxd's log lines).
pub(crate) fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut esc = false;
    for c in s.chars() {
        match (esc, c) {
            (false, '\u{1b}') => esc = true,
            (true, c) if c.is_ascii_alphabetic() => esc = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}

pub(crate) fn f(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// "p50 (p95)" of samples.
fn p50_95(v: &[f64]) -> String {
    if v.is_empty() { "–".into() } else { format!("{} ({})", f(median(v)), f(pct(v, 95.0))) }
}

/// ours / other, for medians.
pub(crate) fn ratio(ours: f64, other: f64) -> String {
    if !(ours.is_finite() && other.is_finite() && other > 0.0) {
        return "–".into();
    }
    let r = ours / other;
    // Two significant digits below 0.1, so a 300× gap does not print as 0.00×.
    if r >= 0.1 || r == 0.0 { format!("{r:.2}×") } else { format!("{:.*}×", (1.0 - r.log10().floor()) as usize, r) }
}

/// Rows for systems that have no series in a scenario: "did not run" with the reason.
fn missing_rows(r: &Results, present: &[&str], scenario: &str, cols: usize) -> String {
    let mut s = String::new();
    for sys in &r.systems {
        if present.contains(&sys.name.as_str()) {
            continue;
        }
        let why = match &sys.unavailable {
            Some(_) => "did not run (why: see Systems)".to_string(),
            None => r
                .failures
                .iter()
                .find(|f| f.system == sys.name && f.scenario.starts_with(scenario))
                .map(|f| format!("failed: {}", f.error))
                .unwrap_or_else(|| "not run in this scenario".into()),
        };
        let _ = writeln!(s, "| {} | {}{} |", sys.name, why.replace('|', "/"), " |".repeat(cols.saturating_sub(2)));
    }
    s
}

fn failures_of(r: &Results, system: &str, scenario: &str) -> Option<String> {
    let errs: Vec<&str> = r
        .failures
        .iter()
        .filter(|f| f.system == system && f.scenario.starts_with(scenario))
        .map(|f| f.error.as_str())
        .collect();
    (!errs.is_empty()).then(|| errs.join("; ").replace('|', "/"))
}

pub fn render(r: &Results, plot_prefix: &str) -> String {
    let mut s = String::new();
    let m = &r.machine;
    let ours = crate::OURS;
    let _ = writeln!(
        s,
        "# Benchmarks\n\n\
         Generated by the benchmark harness in `bench/` from `results.json` (every sample is kept\n\
         there); do not edit by hand. To reproduce on this kind of machine:\n\n\
         ```sh\nscripts/setup.sh      # once: packages, builds, the base template\nbench/run.sh --full   # 15–25 min on 2 cores: every scenario, every peer; rewrites this file and docs/bench/*.png\nbench/run.sh --quick  # 2–4 min smoke run (the test suite's stage); writes target/bench/quick/ only\n```\n\n\
         Cluster mode (restore on another node, upload sizes, freeze with an object store) has its\n\
         own run and page: [cluster-benchmarks.md](cluster-benchmarks.md) (`bench/run.sh --cluster`).\n"
    );
    let _ = writeln!(s, "- **Command:** `{}` ({} mode), started {} UTC, took {:.0} s.", r.command, r.mode, r.started_utc, r.duration_s);
    let _ = writeln!(
        s,
        "- **Machine:** {} × {}, {:.0} GiB RAM, {}, kernel {}; {}; accelerator: **{}**.",
        m.cores, m.cpu, m.mem_gib, m.os, m.kernel, m.qemu, m.accelerator
    );
    let _ = writeln!(
        s,
        "- **Method:** each iteration runs every system once, in turn (A B A B …), so machine drift\n  \
         affects all alike; ratios are **ours / peer** of medians from this same run (< 1: sandboxd is\n  \
         faster or smaller). Percentiles are nearest-rank. Rows marked *quoted* are published figures\n  \
         from elsewhere, not measured here; their ratio is indicative only (other hardware).\n\
         - **Workload** (identical for every system): a Python process holding N MiB of random bytes in\n  \
         memory (never on disk) and counting every 50 ms, plus three files written before the snapshot.\n  \
         Every restore is checked: the clone's process holds byte for byte (sha256) what the source\n  \
         held, its counter continues, and the files are there.\n"
    );
    let _ = writeln!(s, "## Systems\n\n| system | status |\n|---|---|");
    for sys in &r.systems {
        let status = match &sys.unavailable {
            Some(why) => format!("did not run: {why}"),
            None => match failures_of(r, &sys.name, "") {
                Some(e) => format!("ran; failures: {e}"),
                None => "ran".into(),
            },
        };
        let _ = writeln!(s, "| {} | {} |", sys.name, status.replace('\n', " "));
    }
    s.push('\n');

    snapshot_section(&mut s, r, ours, plot_prefix);
    restore_section(&mut s, r, ours, plot_prefix);
    concurrent_section(&mut s, r, ours, plot_prefix);
    pause_section(&mut s, r, ours);
    api_section(&mut s, r, plot_prefix);
    create_section(&mut s, r);
    template_section(&mut s, r);
    s.push_str(PROSE);
    s
}

fn snapshot_section(s: &mut String, r: &Results, ours: &str, plot_prefix: &str) {
    if r.snapshot.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "## Snapshot of a running sandbox\n\n\
         `frozen`: how long the source's workload could not run (ours: QMP `stop` → `cont`, from the\n\
         snapshot's host record). `durable`: snapshot call start → complete on disk and usable (ours:\n\
         listed by `GET /snapshots`). `size`: allocated bytes on disk the snapshot adds. Times in ms,\n\
         p50 (p95); ratios on the medians. `restored state checked`: the last snapshot of the size was\n\
         restored and the clone's memory and files verified (done up to {} MiB; hashing more inside a\n\
         TCG guest takes minutes, and the restore scenario checks every clone anyway).\n",
        crate::scenarios::VERIFY_MAX_MIB
    );
    let mut sizes: Vec<u32> = r.snapshot.iter().map(|x| x.dirty_mib).collect();
    sizes.dedup();
    for mib in sizes {
        let rows: Vec<_> = r.snapshot.iter().filter(|x| x.dirty_mib == mib).collect();
        let ours_row = rows.iter().find(|x| x.system == ours);
        let _ = writeln!(
            s,
            "### {mib} MiB dirty\n\n| system | frozen ms | durable ms | size MiB | restored state checked | ours / this: frozen, durable, size |\n|---|---|---|---|---|---|"
        );
        for x in &rows {
            let name = if x.guest.is_empty() { x.system.clone() } else { format!("{} ({})", x.system, x.guest) };
            let ratios = match ours_row {
                Some(o) if x.system != ours => format!(
                    "{}, {}, {}",
                    ratio(median(&o.frozen_ms), median(&x.frozen_ms)),
                    ratio(median(&o.durable_ms), median(&x.durable_ms)),
                    ratio(median(&o.size_mib), median(&x.size_mib))
                ),
                _ => String::new(),
            };
            let checked = if x.restore_verified { "yes" } else { "no" };
            let _ = writeln!(s, "| {name} | {} | {} | {} | {checked} | {ratios} |", p50_95(&x.frozen_ms), p50_95(&x.durable_ms), f(median(&x.size_mib)));
        }
        let present: Vec<&str> = rows.iter().map(|x| x.system.as_str()).collect();
        s.push_str(&missing_rows(r, &present, "snapshot", 6));
        if let Some(o) = ours_row {
            let guest_gib = guest_gib(&o.guest);
            let e2b = E2B_PAUSE_MS_PER_GIB * guest_gib;
            let _ = writeln!(
                s,
                "| E2B (*quoted*, {E2B_DOCS}: pause ≈ 4 s per GiB of RAM, i.e. for a {} guest) | – | ≈ {} (pause) | – | – | durable {} |",
                size_text(guest_gib),
                f(e2b),
                ratio(median(&o.durable_ms), e2b)
            );
        }
        s.push('\n');
    }
    let _ = writeln!(s, "![time frozen against dirty memory]({plot_prefix}frozen_vs_dirty.png)\n");
}

/// "2 GiB guest, template base-2g" → 2.0; "512 MiB guest, template base" → 0.5.
fn guest_gib(guest: &str) -> f64 {
    let mut it = guest.split_whitespace();
    match (it.next().and_then(|v| v.parse::<f64>().ok()), it.next()) {
        (Some(v), Some("GiB")) => v,
        (Some(v), Some("MiB")) => v / 1024.0,
        _ => f64::NAN,
    }
}

fn size_text(gib: f64) -> String {
    if gib < 1.0 { format!("{:.0} MiB", gib * 1024.0) } else { format!("{gib:.0} GiB") }
}

fn restore_section(s: &mut String, r: &Results, ours: &str, plot_prefix: &str) {
    if r.restore.is_empty() {
        return;
    }
    let mib = r.restore[0].dirty_mib;
    let _ = writeln!(
        s,
        "## Restore: create from a snapshot → first command (sequential)\n\n\
         One clone at a time from a snapshot of a source holding {mib} MiB of dirty memory; `ready`:\n\
         restore call start → `echo ok` printed `ok` inside the clone (then the state check, not timed).\n\n\
         | system | restores | p50 ms | p95 ms | p99 ms | ours / this (p50) |\n|---|---|---|---|---|---|"
    );
    let o = r.restore.iter().find(|x| x.system == ours).map(|x| median(&x.ready_ms)).unwrap_or(f64::NAN);
    for x in &r.restore {
        let name = if x.guest.is_empty() { x.system.clone() } else { format!("{} ({})", x.system, x.guest) };
        let rt = if x.system == ours { String::new() } else { ratio(o, median(&x.ready_ms)) };
        let v = &x.ready_ms;
        let _ = writeln!(s, "| {name} | {} | {} | {} | {} | {rt} |", v.len(), f(pct(v, 50.0)), f(pct(v, 95.0)), f(pct(v, 99.0)));
    }
    if let Some(p) = &r.restore_pooled {
        let v = &p.total_ms;
        let (p50, p95, p99) = (f(pct(v, 50.0)), f(pct(v, 95.0)), f(pct(v, 99.0)));
        let _ = writeln!(s, "| {ours}, from a warm pool of one VM | {} | {p50} | {p95} | {p99} | {} |", v.len(), ratio(o, median(v)));
    }
    let present: Vec<&str> = r.restore.iter().map(|x| x.system.as_str()).collect();
    s.push_str(&missing_rows(r, &present, "restore", 6));
    let _ = writeln!(s, "| E2B resume (*quoted*, {E2B_DOCS}) | – | ≈ 1000 | – | – | {} |", ratio(o, E2B_RESUME_MS));
    let _ = writeln!(s, "| E2B cold start = snapshot restore (*quoted*, {E2B_MARKETING}) | – | ≈ 150–200 | – | – | {} |", ratio(o, 175.0));
    let _ = writeln!(
        s,
        "| Firecracker snapshot load → VM resumed (*quoted*, {FIRECRACKER_SNAPSHOT_DOCS}: target < 8 ms, p90 5 ms; VMM only, no guest command; KVM on bare metal) | – | < 8 | – | – | {} |",
        ratio(o, 8.0)
    );
    let _ = writeln!(
        s,
        "\nFirecracker cannot run on this machine (no VMX/SVM; its `/dev/kvm` is PVM), so its row is\n\
         quoted only. Its figure is the VMM's share of a restore (memory is mapped lazily, no guest\n\
         code runs); ours includes envd's `/init` and a first command run by the guest under TCG.\n"
    );
    if let Some(p) = &r.restore_pooled {
        let peers: Vec<String> = r
            .restore
            .iter()
            .filter(|x| x.system != ours)
            .map(|x| format!("{} {}", x.system, ratio(median(&p.total_ms), median(&x.ready_ms))))
            .collect();
        let _ = writeln!(
            s,
            "`from a warm pool`: a snapshot restored often (created from twice) gets a warm pool, as every\n\
             wanted image does with sandboxd's default `SANDBOXD_POOL_SIZE` (1 on hosts with ≥ 2 CPUs and\n\
             4 GiB); each restore once the pool has refilled (restore call start → `echo ok`), each clone's\n\
             memory and files then checked like every other. The other sandboxd row restores on demand\n\
             (no pool). {}\n",
            if peers.is_empty() { "No peer ran to compare it with.".to_string() } else { format!("From the pool, ours / this (p50): {}.", peers.join(", ")) }
        );
    }
    let _ = writeln!(s, "![restore latency distribution]({plot_prefix}restore_cdf.png)\n");
}

fn concurrent_section(s: &mut String, r: &Results, ours: &str, plot_prefix: &str) {
    if r.concurrent.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "## Restore: concurrent clones from one snapshot\n\n\
         N clones restored at once, all alive together, in {} batches per N (`succeeded` counts the\n\
         clones of all batches); `wall`: first call → last clone ready, p50 over the batches; PSS per\n\
         clone (proportional set size on the host, shared pages split among users) read with the whole\n\
         batch alive.\n\n\
         | system | clones at once | succeeded | wall ms p50 | each ready ms p50 (p95) | PSS per clone MiB p50 (max) | ours / this: wall, PSS |\n|---|---|---|---|---|---|---|",
        r.concurrent.first().map_or(0, |x| x.wall_ms.len())
    );
    let mut ns: Vec<usize> = r.concurrent.iter().map(|x| x.clones).collect();
    ns.sort();
    ns.dedup();
    for n in ns {
        let rows: Vec<_> = r.concurrent.iter().filter(|x| x.clones == n).collect();
        let o = rows.iter().find(|x| x.system == ours);
        for x in &rows {
            let name = if x.guest.is_empty() { x.system.clone() } else { format!("{} ({})", x.system, x.guest) };
            let pss = if x.pss_mib.is_empty() { "n/a".into() } else { format!("{} ({})", f(median(&x.pss_mib)), f(pct(&x.pss_mib, 100.0))) };
            let rt = match o {
                Some(o) if x.system != ours => {
                    format!("{}, {}", ratio(median(&o.wall_ms), median(&x.wall_ms)), ratio(median(&o.pss_mib), median(&x.pss_mib)))
                }
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "| {name} | {n} | {} / {} | {} | {} | {pss} | {rt} |",
                x.succeeded,
                x.attempted,
                f(median(&x.wall_ms)),
                p50_95(&x.ready_ms)
            );
        }
        let present: Vec<&str> = rows.iter().map(|x| x.system.as_str()).collect();
        s.push_str(&missing_rows(r, &present, "restore", 7));
    }
    let _ = writeln!(s, "| E2B | – | – | no published figure | – | – | – |\n\n![concurrent restores]({plot_prefix}concurrent.png)\n");
}

fn pause_section(s: &mut String, r: &Results, ours: &str) {
    if r.pause_resume.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "## Pause → resume → first command\n\n\
         The sandbox is paused with its memory kept, then resumed under the same ID (ours: `pause`, then\n\
         `connect`); `resume`: resume call start → the first command's output; the workload's memory and\n\
         counter are checked after every resume.\n\n\
         | system | cycles | pause ms p50 (p95) | resume → first command ms p50 (p95) | ours / this (resume p50) |\n|---|---|---|---|---|"
    );
    let o = r.pause_resume.iter().find(|x| x.system == ours);
    for x in &r.pause_resume {
        let name = if x.guest.is_empty() { x.system.clone() } else { format!("{} ({})", x.system, x.guest) };
        let pause = if x.pause_ms.is_empty() { "n/a".into() } else { p50_95(&x.pause_ms) };
        let rt = match o {
            Some(o) if x.system != ours => ratio(median(&o.resume_ms), median(&x.resume_ms)),
            _ => String::new(),
        };
        let _ = writeln!(s, "| {name} | {} | {pause} | {} | {rt} |", x.resume_ms.len(), p50_95(&x.resume_ms));
    }
    let present: Vec<&str> = r.pause_resume.iter().map(|x| x.system.as_str()).collect();
    s.push_str(&missing_rows(r, &present, "pause-resume", 5));
    if let Some(o) = o {
        let gib = guest_gib(&o.guest);
        let _ = writeln!(
            s,
            "| E2B (*quoted*, {E2B_DOCS}: pause ≈ 4 s per GiB, resume ≈ 1 s) | – | ≈ {} for a {} guest | ≈ 1000 | {} |",
            f(E2B_PAUSE_MS_PER_GIB * gib),
            size_text(gib),
            ratio(median(&o.resume_ms), E2B_RESUME_MS)
        );
    }
    s.push('\n');
}

fn api_section(s: &mut String, r: &Results, plot_prefix: &str) {
    let Some(a) = &r.api else { return };
    let _ = writeln!(
        s,
        "## REST API with {} stored snapshots (sandboxd only)\n\n\
         {} real snapshots taken through the API from {} idle sandboxes in {:.1} s ({:.0} per second;\n\
         {} calls answered 409 \"busy\" and were asked again).\n\
         Listing uses keyset pagination (`created_at, id` cursor in `nextToken`), so a late page should\n\
         cost what the first does. Each page of `GET /snapshots?limit={}` fetched {} times:\n\n\
         | page | p50 ms | p95 ms |\n|---|---|---|",
        a.snapshots,
        a.snapshots,
        a.sources,
        a.create_s,
        a.snapshots as f64 / a.create_s,
        a.busy_retries,
        a.limit,
        a.pages.first().map(|p| p.ms.len()).unwrap_or(0)
    );
    for p in &a.pages {
        let _ = writeln!(s, "| {} | {} | {} |", p.page, f(median(&p.ms)), f(pct(&p.ms, 95.0)));
    }
    if let (Some(first), Some(last)) = (a.pages.first(), a.pages.last()) {
        let _ = writeln!(s, "\nLast page / first page (p50): **{}**.", ratio(median(&last.ms), median(&first.ms)));
    }
    let _ = writeln!(s, "\n| operation | clients | requests | per second | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|---|");
    for t in &a.throughput {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.0} | {} | {} | {} |",
            t.op,
            t.clients,
            t.requests,
            t.requests as f64 / t.duration_s,
            f(median(&t.ms)),
            f(pct(&t.ms, 99.0)),
            t.errors
        );
    }
    let _ = writeln!(s, "\nNo peer has an equivalent API; E2B publishes no API latency figures.\n\n![list latency per page]({plot_prefix}api_pages.png)\n");
}

fn create_section(s: &mut String, r: &Results) {
    let Some(c) = r.create.as_ref().or(r.create_pooled.as_ref()) else { return };
    let _ = writeln!(
        s,
        "## Create from a template → first command (sandboxd only)\n\n\
         Sequential creates from template `{}`: restored on demand, and handed out from a warm pool\n\
         of one VM (`SANDBOXD_POOL_SIZE=1`, each create once the pool has refilled).\n\n\
         | metric | n | p50 | p95 | max |\n|---|---|---|---|---|",
        c.template
    );
    for (kind, c) in [("", &r.create), ("warm pool: ", &r.create_pooled)] {
        let Some(c) = c else { continue };
        for (name, v) in [
            ("create → first command done (ms)", &c.total_ms),
            ("of which `Sandbox.create` (ms)", &c.create_ms),
            ("of which the first `echo ok` (ms)", &c.first_command_ms),
            ("PSS per sandbox (MiB)", &c.pss_mib),
        ] {
            let _ = writeln!(
                s,
                "| {kind}{name} | {} | {} | {} | {} |",
                v.len(),
                f(pct(v, 50.0)),
                f(pct(v, 95.0)),
                f(pct(v, 100.0))
            );
        }
    }
    let _ = writeln!(
        s,
        "\nQuoted for reference: E2B's cold start is ≈ 150–200 ms ({E2B_MARKETING}; a create is a\n\
         snapshot restore there too); Firecracker boots a microVM to the guest's `/sbin/init` in\n\
         ≤ 125 ms (its SPECIFICATION.md, 2 vCPU / 256 MiB on i3.metal, KVM) — a cold boot, which\n\
         sandboxd never does on create."
    );
    s.push('\n');
}

const PROSE: &str = r#"## Why the numbers are what they are

- **TCG.** This machine exposes no hardware virtualization that runs a stock guest kernel (its
  `/dev/kvm` is PVM and needs a PVM-enabled guest kernel, not available from Debian), so every
  sandboxd guest runs under **QEMU TCG**, software emulation, roughly 5–20× slower than KVM for
  guest code. The peers (gVisor, CRIU) run the workload natively on the host CPU. Snapshot
  mechanics (freeze, files, reflinks) are host-side and barely affected; anything that runs guest
  code after a restore (envd's `/init`, the first command) is.
- **Freeze.** The freeze does not grow with guest RAM or dirty memory: guest memory is a shared
  file that is fsynced while the guest runs, then reflinked during the pause (XFS), and QEMU
  saves only device state (`x-ignore-shared`, ~100 KB). E2B documents about 4 s per GiB to pause.
- **Size.** Zero pages are not stored: the image holds the guest's touched pages (the dirty
  data plus ~100 MiB of kernel, page cache and processes), the device state and the disk layer
  written since the previous snapshot. Reflinked extents are shared with the source until it
  overwrites them.
- **Restore.** A restore copies the data part of the RAM file into the clone's own file
  (overlapped with QEMU's start-up; `SANDBOXD_RESTORE_RAM=reflink` reflinks it instead, see
  docs/reliability.md), starts QEMU with `-incoming` (or, usually, finishes a spare QEMU started
  ahead for the image's shape: `SANDBOXD_SPARE_VMS`, docs/warm-pools.md), loads the device
  state, `cont`, and runs envd's `/init`. Under TCG every code path the guest runs after a restore is translated again
  (QEMU's translation cache does not survive a restore), which is most of the time to the first
  command.
- **Concurrency.** All clones share 2 host cores under software emulation, so N clones at once
  take roughly N/2 times as long each. A clone's PSS is the guest memory it touched since the
  restore plus QEMU itself (its translation buffer, ~30 MiB, and ~28 MiB more); untouched guest
  memory is not mapped.

## Template build (measured by hand when the template builder was written, not by this harness)

| step | time |
|---|---|
| full build: debootstrap (bookworm minbase + python3) + disk + initramfs + first boot + snapshot | 93–182 s (first boot of the guest under TCG: 8.6–25 s) |
| rebuild with the cached debootstrap tarball (e.g. a new envd) | 17–30 s |

The template image holds 81–117 MiB of guest RAM (512 MiB and 2 GiB guests).

## What would make it faster

- **KVM.** With a PVM-enabled guest kernel (or a host with VMX/SVM), guest code runs 5–20×
  faster and most of `/init` + first command disappears. sandboxd probes KVM at start and uses it
  when it can boot the guest.
- **One page cache for all clones of an image.** Each clone's RAM file has its own page cache
  (copied, or even reflinked), so 8 clones of one snapshot hold 8 copies of the pages they read.
  Mapping the image privately instead (QEMU `memory-backend-file,share=off,readonly=on,rom=off`
  on the image's `mem.ram`: copy-on-write in memory, as Firecracker does) was measured by hand on
  2026-12-02 (8 clones of a 512 MiB guest holding 64 MiB of random data): PSS per clone 55 MiB
  (10.7 % of guest RAM) instead of 95 MiB, and 8 restores at once → `echo ok` in 2.3 s instead
  of 4.1 s; sequential restores unchanged. Not adopted: the 20 ms freeze needs the guest's RAM
  to be a shared file (`x-ignore-shared` skips only shared, file-backed RAM; QEMU's CPR modes
  refuse private RAM too), so a snapshot of a privately mapped clone would have to stream its
  RAM while frozen (hundreds of ms).
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{RestoreSeries, SystemStatus};

    #[test]
    fn guest_sizes_parse() {
        assert_eq!(guest_gib("2 GiB guest, template base-2g"), 2.0);
        assert_eq!(guest_gib("512 MiB guest, template base"), 0.5);
        assert!(guest_gib("").is_nan());
    }

    #[test]
    fn ratios_and_missing_peers() {
        assert_eq!(ratio(50.0, 100.0), "0.50×");
        assert_eq!(ratio(1.0, 0.0), "–");
        assert_eq!(ratio(33.0, 11958.0), "0.0028×");
        assert_eq!(ratio(25.0, 866.0), "0.029×");
        let r = Results {
            systems: vec![
                SystemStatus { name: crate::OURS.into(), unavailable: None },
                SystemStatus { name: "CRIU".into(), unavailable: Some("criu check failed".into()) },
            ],
            restore: vec![RestoreSeries { system: crate::OURS.into(), dirty_mib: 32, guest: "512 MiB guest".into(), ready_ms: vec![900.0, 1100.0] }],
            ..Default::default()
        };
        let md = render(&r, "");
        assert!(md.contains("| CRIU | did not run: criu check failed |"), "{md}");
        assert!(md.contains("| CRIU | did not run (why: see Systems) |"), "{md}");
        assert!(md.contains("E2B resume (*quoted*"));
        assert!(md.contains("restore_cdf.png"));
    }

    #[test]
    fn ansi_is_stripped() {
        assert_eq!(strip_ansi("\u{1b}[2mtcg (cached)\u{1b}[0m"), "tcg (cached)");
    }
}

fn template_section(s: &mut String, r: &Results) {
    let Some(t) = &r.template else { return };
    let _ = writeln!(
        s,
        "## Custom template: build cold and cached, then create → first command (sandboxd only)\n\n\
         A template from `base` with a copied file, an env var, two `RUN` steps and a start command\n\
         (an HTTP server, ready when its port listens), built with our SDK's `Template` builder through\n\
         E2B's template API.\n\n| metric | value |\n|---|---|\n\
         | cold build (every layer rebuilt) | {:.1} s |\n\
         | unchanged rebuild ({} layers cached) | {:.1} s |\n\
         | create from the template → first command, p50 ({} creates) | {} ms |\n\
         | same, p95 | {} ms |\n",
        t.cold_build_s,
        t.cached_layers,
        t.cached_build_s,
        t.create_first_command_ms.len(),
        f(pct(&t.create_first_command_ms, 50.0)),
        f(pct(&t.create_first_command_ms, 95.0)),
    );
    if let Some(c) = &r.create {
        let _ = writeln!(s, "From `base` in the same run: p50 {} ms (a template is a snapshot like `base`).\n", f(pct(&c.total_ms, 50.0)));
    }
}
