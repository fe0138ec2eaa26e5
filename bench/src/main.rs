//! `bench`: measures sandboxd on the real runtime and prints markdown tables.
//!
//! Scenarios (issue numbers refer to the project's tracker):
//! - `create`: create → first command latency over N creates, and PSS per sandbox (issue 2);
//! - `snapshot`: for each template (guest size), a source holding D MiB of dirty memory:
//!   time frozen, snapshot completion, size on disk; restore → first command; 8 concurrent
//!   clones with per-clone PSS; and a check that restored memory is what was captured (issue 3).
//!
//! `--quick` runs few iterations with small sizes: the test suite uses it to check that every
//! scenario completes and its numbers are sane.

mod pss;
mod scenarios;
mod server;
mod stats;
#[allow(dead_code)]
mod workload;
#[allow(dead_code)]
mod system;

use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
#[command(about = "Benchmarks for sandboxd (create, snapshot, restore, density)")]
struct Args {
    /// Few iterations, small sizes: a smoke run for the test suite.
    #[arg(long)]
    quick: bool,
    /// Which scenarios to run.
    #[arg(long, value_delimiter = ',', default_value = "create,snapshot")]
    scenario: Vec<String>,
    /// sandboxd binary.
    #[arg(long, env = "SANDBOXD_BIN", default_value = "target/release/sandboxd")]
    sandboxd: PathBuf,
    /// Shared template cache (`sandboxd template build base` fills it).
    #[arg(long, env = "SANDBOXD_TEMPLATES_DIR")]
    templates_dir: Option<PathBuf>,
    /// Templates (guest sizes) for the snapshot scenario, e.g. `base,base-2g`.
    #[arg(long, value_delimiter = ',', default_value = "base")]
    templates: Vec<String>,
    /// Dirty memory held by the source sandbox, MiB.
    #[arg(long)]
    dirty_mib: Option<u32>,
    /// Concurrent clones from one snapshot.
    #[arg(long)]
    clones: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = server::Server::start(&args.sandboxd, args.templates_dir.as_deref())?;
    println!("# sandboxd benchmark{}\n", if args.quick { " (quick)" } else { "" });
    println!("machine: {} cores, {}; sandboxd log: {}\n", num_cpus(), mem_total(), server.log_path().display());
    let mut failures = 0;
    for s in &args.scenario {
        let result = match s.as_str() {
            "create" => scenarios::create(&server, if args.quick { 3 } else { 10 }).await,
            "snapshot" => {
                let cfg = scenarios::SnapshotConfig {
                    dirty_mib: args.dirty_mib.unwrap_or(if args.quick { 32 } else { 256 }),
                    snapshots: if args.quick { 2 } else { 5 },
                    restores: if args.quick { 2 } else { 10 },
                    clones: args.clones.unwrap_or(if args.quick { 2 } else { 8 }),
                };
                let mut r = Ok(());
                for t in &args.templates {
                    if let Err(e) = scenarios::snapshot(&server, t, &cfg).await {
                        r = Err(e);
                    }
                }
                r
            }
            other => Err(anyhow::anyhow!("unknown scenario {other}")),
        };
        if let Err(e) = result {
            failures += 1;
            println!("\nscenario {s} FAILED: {e:#}\n");
        }
    }
    let total = args.scenario.len();
    println!("\nbench: {} passed, {failures} failed", total - failures);
    // Stop sandboxd and its VMs before exiting (process::exit skips destructors).
    drop(server);
    if failures > 0 {
        std::process::exit(1);
    }
    Ok(())
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn mem_total() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string()))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{} GiB RAM", kb >> 20))
        .unwrap_or_default()
}
