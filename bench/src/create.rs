//! `create` (ours only): template → first command, sequentially, and the PSS of each sandbox.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use e2b::{CreateOptions, RunOptions, Sandbox};

use crate::pss;
use crate::results::CreateResults;
use crate::server::Server;
use crate::stats::{all_positive, ms};

pub fn create(rt: &tokio::runtime::Runtime, server: &Server, template: &str, n: usize) -> anyhow::Result<CreateResults> {
    create_with(rt, server, template, n, "create", || Ok(()))
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
    let server = Server::start_with_env(
        bin,
        templates_dir,
        &[("SANDBOXD_POOL_SIZE", "1"), ("SANDBOXD_POOL_TEMPLATES", template)],
    )?;
    let run_dir = server.data_dir.path().join("store/run");
    let pool_ready = || -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let dirs = std::fs::read_dir(&run_dir).map(|d| d.count()).unwrap_or(0);
            let log = std::fs::read_to_string(server.log_path())?;
            if dirs == 1 && log.matches("pooled VM ready").count() > log.matches("handed out a pooled VM").count() {
                return Ok(());
            }
            ensure!(Instant::now() < deadline, "the warm pool did not refill within 180 s (see {})", server.log_path().display());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let out = create_with(rt, &server, template, n, "create (warm pool)", pool_ready);
    let _ = std::fs::copy(server.log_path(), server.data_dir.path().with_extension("pool.log"));
    out
}

fn create_with(
    rt: &tokio::runtime::Runtime,
    server: &Server,
    template: &str,
    n: usize,
    label: &str,
    before_each: impl Fn() -> anyhow::Result<()>,
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
            sbx.kill().await?;
            crate::scenarios::log(label, format!("#{i}: {:.0} ms", ms(done)));
            Ok(())
        })?;
    }
    ensure!(out.pss_mib.len() == n, "PSS was readable for only {} of {n} sandboxes", out.pss_mib.len());
    ensure!(all_positive(&out.total_ms) && all_positive(&out.pss_mib), "a zero or negative measurement");
    Ok(out)
}
