//! `template` (ours only): a small custom template built through E2B's template API with our
//! SDK's `Template` builder (core), cold (every layer rebuilt) and again unchanged (every layer
//! from the cache), then `Sandbox.create(<that template>)` → first command, as for `base`.
//!
//! The template: `base`, a copied file, an env var, two `RUN` steps and a start command (an HTTP
//! server) with its ready check, so the create restores a VM whose server already answers.
//! Checked: both builds succeed, the cached one reports every layer cached, and each sandbox
//! from the template sees the copied file, the env var and the running server.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use e2b::template::build::{BuildOptions, LogCallback, build};
use e2b::{CreateOptions, RunOptions, Sandbox, Template};

use crate::results::TemplateResults;
use crate::server::Server;
use crate::stats::{all_positive, ms};

fn template(context: &std::path::Path) -> anyhow::Result<Template> {
    std::fs::write(context.join("hello.txt"), "hello from the bench template\n")?;
    let mut t = Template::new(context, vec![]);
    t.from_template("base");
    t.copy(&["hello.txt".to_string()], "/home/user/hello.txt", None, None, None, None, None)?;
    t.set_envs(&[("BENCH_TEMPLATE".to_string(), "1".to_string())]);
    t.run_cmd(&["python3 -c 'print(42)' > /home/user/answer".to_string()], None);
    t.run_cmd(&["mkdir -p /home/user/www && echo ok > /home/user/www/index.html".to_string()], None);
    t.set_start_cmd("cd /home/user/www && python3 -m http.server 8000", &e2b::template::readycmd::wait_for_port(8000));
    Ok(t)
}

pub fn template_scenario(rt: &tokio::runtime::Runtime, server: &Server, creates: usize) -> anyhow::Result<TemplateResults> {
    let context = tempfile::tempdir()?;
    let t = template(context.path())?;
    let conn = server.opts();
    let name = format!("bench-{}", std::process::id());
    let mut out = TemplateResults { name: name.clone(), ..Default::default() };
    let cached_lines = Arc::new(Mutex::new(0usize));
    let counter = cached_lines.clone();
    let on_logs: LogCallback = Arc::new(move |e| {
        if e.message.contains("CACHED") {
            *counter.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        }
    });
    rt.block_on(async {
        for (cold, label) in [(true, "cold"), (false, "cached")] {
            let opts = BuildOptions { name: name.clone(), skip_cache: cold, ..Default::default() };
            *cached_lines.lock().unwrap_or_else(|p| p.into_inner()) = 0;
            let t0 = Instant::now();
            build(&t, &opts, Some(on_logs.clone()), &conn).await.with_context(|| format!("{label} build"))?;
            let secs = t0.elapsed().as_secs_f64();
            let cached = *cached_lines.lock().unwrap_or_else(|p| p.into_inner());
            if cold {
                out.cold_build_s = secs;
            } else {
                out.cached_build_s = secs;
                out.cached_layers = cached;
                ensure!(cached > 0, "the unchanged rebuild reported no cached layer");
            }
            crate::scenarios::log("template", format!("{label} build in {secs:.1} s ({cached} cached layers)"));
        }
        for i in 0..creates {
            let opts = CreateOptions {
                template: Some(name.clone()),
                timeout: Some(Duration::from_secs(300)),
                connection: conn.clone(),
                ..Default::default()
            };
            let t0 = Instant::now();
            let sbx = Sandbox::create(opts).await.context("create from the template")?;
            let r = sbx.commands().run("echo ok", RunOptions::default()).await.context("first command")?;
            let done = t0.elapsed();
            ensure!(r.stdout == "ok\n", "first command printed {:?}", r.stdout);
            let check = "cat /home/user/hello.txt && echo $BENCH_TEMPLATE && curl -s localhost:8000/index.html";
            let r = sbx.commands().run(check, RunOptions::default()).await.context("template state")?;
            ensure!(r.stdout == "hello from the bench template\n1\nok\n", "the template's state is missing: {:?}", r.stdout);
            out.create_first_command_ms.push(ms(done));
            sbx.kill().await?;
            crate::scenarios::log("template", format!("create #{i} → first command {:.0} ms", ms(done)));
        }
        let _ = e2b::template::build::delete(&name, &conn).await;
        Ok::<_, anyhow::Error>(())
    })?;
    ensure!(all_positive(&out.create_first_command_ms), "a zero or negative measurement");
    Ok(out)
}
