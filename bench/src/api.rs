//! `api` (ours only): the REST API with many stored snapshots.
//!
//! 1. `snapshots` real snapshots, taken through the API from a few idle sandboxes (one client
//!    per source; a snapshot is a reflink of the RAM file plus a new disk layer);
//! 2. `GET /snapshots?limit=L` page by page, each page fetched `repetitions` times with the
//!    token of the page before: with keyset pagination the last page costs what the first does;
//! 3. throughput with `clients` concurrent clients for `seconds`: list (first page), get one
//!    snapshot by ID (`GET /snapshots?name=<id>`, E2B has no single-snapshot GET) and get one
//!    sandbox (`GET /sandboxes/{id}`).
//!
//! Checked: pages hold `L` items each, every snapshot appears exactly once across pages, a
//! lookup by ID returns that snapshot, and no request fails.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use e2b::{ConnectionOpts, CreateOptions, Sandbox, SnapshotListOptions};

use crate::results::{ApiResults, PageSeries, Throughput};
use crate::server::Server;
use crate::stats::{all_positive, ms};

#[derive(Debug, Clone)]
pub struct ApiPlan {
    pub snapshots: usize,
    pub sources: usize,
    pub limit: u32,
    pub repetitions: usize,
    pub clients: usize,
    pub seconds: f64,
}

async fn page(opts: &ConnectionOpts, limit: u32, token: Option<String>) -> anyhow::Result<(Vec<String>, Option<String>)> {
    let p = Sandbox::list_snapshots(SnapshotListOptions { limit: Some(limit), next_token: token, ..Default::default() }, opts);
    let items = p.next_items().await?;
    Ok((items.into_iter().map(|i| i.snapshot_id).collect(), p.next_token()))
}

pub fn api(rt: &tokio::runtime::Runtime, server: &Server, plan: &ApiPlan) -> anyhow::Result<ApiResults> {
    let opts = server.opts();
    rt.block_on(async {
        // 1. Snapshots.
        let mut sources = Vec::new();
        for _ in 0..plan.sources {
            let o = CreateOptions {
                template: Some("base".into()),
                timeout: Some(Duration::from_secs(3600)),
                connection: opts.clone(),
                ..Default::default()
            };
            sources.push(Sandbox::create(o).await.context("create a source")?);
        }
        let t = Instant::now();
        let per = plan.snapshots.div_ceil(plan.sources);
        let tasks = sources.iter().enumerate().map(|(k, s)| async move {
            let n = per.min(plan.snapshots.saturating_sub(k * per));
            let mut busy = 0;
            for i in 0..n {
                // A 409 means another operation holds the sandbox for a moment (e.g. sandboxd's
                // store-space check): ask again, as a client would, and count it.
                loop {
                    match s.create_snapshot(None).await {
                        Ok(_) => break,
                        Err(e) if e.status() == Some(409) && busy < 100 => {
                            busy += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(e) => return Err(anyhow::Error::from(e).context(format!("snapshot {i} of source {k}"))),
                    }
                }
            }
            Ok::<_, anyhow::Error>(busy)
        });
        let mut busy = 0;
        let mut first_err = None;
        for r in futures::future::join_all(tasks).await {
            match r {
                Ok(b) => busy += b,
                Err(e) => first_err = first_err.or(Some(e)),
            }
        }
        if let Some(e) = first_err {
            for s in &sources {
                let _ = s.kill().await;
            }
            return Err(e);
        }
        let create_s = t.elapsed().as_secs_f64();
        crate::scenarios::log("api", format!("{} snapshots in {create_s:.1} s ({busy} answered 409 busy and were retried)", plan.snapshots));

        let measured = measure(&opts, plan, &sources).await;
        for s in &sources {
            s.kill().await?;
        }
        let (pages, throughput) = measured?;
        Ok(ApiResults { snapshots: plan.snapshots, sources: plan.sources, create_s, busy_retries: busy, limit: plan.limit, pages, throughput })
    })
}

/// Steps 2 and 3 (the sources stay up: `get sandbox` reads one of them).
async fn measure(opts: &ConnectionOpts, plan: &ApiPlan, sources: &[Sandbox]) -> anyhow::Result<(Vec<PageSeries>, Vec<Throughput>)> {
    let opts = opts.clone();
    {
        // 2. Pages: walk once for the tokens, then time each page.
        let mut tokens = vec![None];
        let mut seen = HashSet::new();
        loop {
            let (ids, next) = page(&opts, plan.limit, tokens.last().cloned().flatten()).await?;
            for id in ids {
                ensure!(seen.insert(id.clone()), "snapshot {id} listed twice");
            }
            match next {
                Some(tok) => tokens.push(Some(tok)),
                None => break,
            }
        }
        ensure!(seen.len() == plan.snapshots, "listed {} snapshots, created {}", seen.len(), plan.snapshots);
        let full_pages = plan.snapshots / plan.limit as usize;
        let mut pages: Vec<PageSeries> = (1..=full_pages).map(|page| PageSeries { page, ms: vec![] }).collect();
        for _ in 0..plan.repetitions {
            for p in pages.iter_mut() {
                let t = Instant::now();
                let (ids, _) = page(&opts, plan.limit, tokens[p.page - 1].clone()).await?;
                p.ms.push(ms(t.elapsed()));
                ensure!(ids.len() == plan.limit as usize, "page {} held {} items", p.page, ids.len());
            }
        }

        // 3. Throughput.
        let ids: Arc<Vec<String>> = Arc::new(seen.into_iter().collect());
        let sandbox_id = sources[0].sandbox_id().to_string();
        let mut throughput = Vec::new();
        for op in ["list (first page)", "get snapshot by ID", "get sandbox"] {
            let deadline = Instant::now() + Duration::from_secs_f64(plan.seconds);
            let t = Instant::now();
            let clients = (0..plan.clients).map(|c| {
                let (opts, ids, sandbox_id) = (opts.clone(), ids.clone(), sandbox_id.clone());
                async move {
                    let (mut lat, mut errors, mut i) = (Vec::new(), 0usize, c);
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        let ok = match op {
                            "list (first page)" => page(&opts, plan.limit, None).await.map(|(v, _)| v.len() == plan.limit as usize),
                            "get snapshot by ID" => {
                                let want = &ids[i % ids.len()];
                                let list = SnapshotListOptions { name: Some(want.clone()), ..Default::default() };
                                Sandbox::list_snapshots(list, &opts)
                                    .next_items()
                                    .await
                                    .map(|v| v.len() == 1 && &v[0].snapshot_id == want)
                                    .map_err(anyhow::Error::from)
                            }
                            _ => Sandbox::get_info_by_id(&sandbox_id, &opts)
                                .await
                                .map(|info| info.sandbox_id == sandbox_id)
                                .map_err(anyhow::Error::from),
                        };
                        lat.push(ms(t.elapsed()));
                        if !matches!(ok, Ok(true)) {
                            errors += 1;
                        }
                        i += plan.clients;
                    }
                    (lat, errors)
                }
            });
            let done = futures::future::join_all(clients).await;
            let duration_s = t.elapsed().as_secs_f64();
            let (ms, errors) = done.into_iter().fold((Vec::new(), 0), |(mut all, e), (l, x)| {
                all.extend(l);
                (all, e + x)
            });
            crate::scenarios::log("api", format!("{op}: {} requests in {duration_s:.1} s, {errors} errors", ms.len()));
            ensure!(errors == 0, "{op}: {errors} requests failed or answered wrongly");
            ensure!(all_positive(&ms), "{op}: no requests");
            throughput.push(Throughput { op: op.into(), clients: plan.clients, duration_s, requests: ms.len(), errors, ms });
        }
        Ok((pages, throughput))
    }
}
