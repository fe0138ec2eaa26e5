//! `create` (ours only): template → first command, sequentially, and the PSS of each sandbox;
//! `pool` the same from a warm pool; `restore-pool` a snapshot restored often, from a warm pool.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use e2b::{CreateOptions, RunOptions, Sandbox};

use crate::ours::{check_state, fill_source, first_command};
use crate::pss;
use crate::results::CreateResults;
use crate::server::Server;
use crate::stats::{all_positive, ms};
use crate::workload::Held;

pub fn create(rt: &tokio::runtime::Runtime, server: &Server, template: &str, n: usize) -> anyhow::Result<CreateResults> {
    create_with(rt, server, template, n, "create", || Ok(()), None)
}

/// Waits until the warm pool holds a ready VM that was not handed out yet, with `dirs` VMs in
/// all (the pooled one included).
fn wait_pool_ready(server: &Server, dirs: usize) -> anyhow::Result<()> {
    let run_dir = server.data_dir.path().join("store/run");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let found = std::fs::read_dir(&run_dir).map(|d| d.count()).unwrap_or(0);
        let log = std::fs::read_to_string(server.log_path())?;
        if found == dirs && log.matches("pooled VM ready").count() > log.matches("handed out a pooled VM").count() {
            return Ok(());
        }
        ensure!(Instant::now() < deadline, "the warm pool did not refill within 180 s (see {})", server.log_path().display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pool_server(bin: &std::path::Path, templates_dir: Option<&std::path::Path>, pooled: &str) -> anyhow::Result<Server> {
    Server::start_with_env(bin, templates_dir, &[("SANDBOXD_POOL_SIZE", "1"), ("SANDBOXD_POOL_TEMPLATES", pooled)])
}

/// `create` against a sandboxd of its own whose warm pool keeps one VM of `template` ready:
/// each create is measured once the pool has refilled (one run directory, none a sandbox).
pub fn create_pooled(
    rt: &tokio::runtime::Runtime,
    bin: &std::path::Path,
    templates_dir: Option<&std::path::Path>,
    template: &str,
    n: usize,
) -> anyhow::Result<CreateResults> {
    let server = pool_server(bin, templates_dir, template)?;
    let out = create_with(rt, &server, template, n, "create (warm pool)", || wait_pool_ready(&server, 1), None);
    let _ = std::fs::copy(server.log_path(), server.data_dir.path().with_extension("pool.log"));
    out
}

/// `restore-pool`: a snapshot of a source holding `dirty_mib` MiB, restored twice (which makes
/// it wanted by the warm pool, as any snapshot created from twice is), then `n` restores each
/// once the pool has refilled, each clone's memory and files checked (not timed).
pub fn restore_pooled(
    rt: &tokio::runtime::Runtime,
    bin: &std::path::Path,
    templates_dir: Option<&std::path::Path>,
    template: &str,
    dirty_mib: u32,
    n: usize,
) -> anyhow::Result<CreateResults> {
    // No template pooled from start-up: the only pooled image is the snapshot.
    let server = pool_server(bin, templates_dir, "")?;
    let create_opts = |template: &str| CreateOptions {
        template: Some(template.into()),
        timeout: Some(Duration::from_secs(1800)),
        connection: server.opts(),
        ..Default::default()
    };
    let (source, snapshot, want) = rt.block_on(async {
        let source = Sandbox::create(create_opts(template)).await.context("create the source")?;
        let want = fill_source(&source, dirty_mib).await?;
        let snapshot = source.create_snapshot(None).await.context("create_snapshot")?.snapshot_id;
        for _ in 0..2 {
            let c = Sandbox::create(create_opts(&snapshot)).await.context("restore")?;
            first_command(&c).await?;
            c.kill().await?;
        }
        Ok::<_, anyhow::Error>((source, snapshot, want))
    })?;
    // The source runs beside the pooled VM: two VMs when the pool is ready.
    let out = create_with(rt, &server, &snapshot, n, "restore (warm pool)", || wait_pool_ready(&server, 2), Some(&want));
    let _ = rt.block_on(source.kill());
    let _ = std::fs::copy(server.log_path(), server.data_dir.path().with_extension("restore-pool.log"));
    out
}

fn create_with(
    rt: &tokio::runtime::Runtime,
    server: &Server,
    template: &str,
    n: usize,
    label: &str,
    before_each: impl Fn() -> anyhow::Result<()>,
    want: Option<&Held>,
) -> anyhow::Result<CreateResults> {
    let mut out = CreateResults { template: template.into(), ..Default::default() };
    let run_dir = server.data_dir.path().join("store/run");
    for i in 0..n {
        before_each()?;
        let opts = CreateOptions {
            template: Some(template.into()),
            timeout: Some(Duration::from_secs(300)),
            connection: server.opts(),
            ..Default::default()
        };
        rt.block_on(async {
            let t = Instant::now();
            let sbx = Sandbox::create(opts).await.context("create")?;
            let created = t.elapsed();
            let r = sbx.commands().run("echo ok", RunOptions::default()).await.context("first command")?;
            let done = t.elapsed();
            ensure!(r.stdout == "ok\n", "first command printed {:?}", r.stdout);
            out.total_ms.push(ms(done));
            out.create_ms.push(ms(created));
            out.first_command_ms.push(ms(done - created));
            out.pss_mib.extend(pss::sandbox_pss_mib(&run_dir, sbx.sandbox_id()));
            if let Some(want) = want {
                check_state(&sbx, want).await.with_context(|| format!("clone {}", sbx.sandbox_id()))?;
            }
            sbx.kill().await?;
            crate::scenarios::log(label, format!("#{i}: {:.0} ms", ms(done)));
            Ok(())
        })?;
    }
    ensure!(out.pss_mib.len() == n, "PSS was readable for only {} of {n} sandboxes", out.pss_mib.len());
    ensure!(all_positive(&out.total_ms) && all_positive(&out.pss_mib), "a zero or negative measurement");
    Ok(out)
}
