//! `create` (ours only): template → first command, sequentially, and the PSS of each sandbox.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use e2b::{CreateOptions, RunOptions, Sandbox};

use crate::pss;
use crate::results::CreateResults;
use crate::server::Server;
use crate::stats::{all_positive, ms};

pub fn create(rt: &tokio::runtime::Runtime, server: &Server, template: &str, n: usize) -> anyhow::Result<CreateResults> {
    let mut out = CreateResults { template: template.into(), ..Default::default() };
    let run_dir = server.data_dir.path().join("store/run");
    for i in 0..n {
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
            crate::scenarios::log("create", format!("#{i}: {:.0} ms", ms(done)));
            Ok(())
        })?;
    }
    ensure!(out.pss_mib.len() == n, "PSS was readable for only {} of {n} sandboxes", out.pss_mib.len());
    ensure!(all_positive(&out.total_ms) && all_positive(&out.pss_mib), "a zero or negative measurement");
    Ok(out)
}
