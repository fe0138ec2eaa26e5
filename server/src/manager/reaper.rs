//! The reaper: kills (or auto-pauses) sandboxes when their `end_at` passes.
//!
//! Invariant: it sleeps until the earliest deadline in the store (at most a minute, as a
//! safety net) and is woken early through `Inner::reaper` whenever a deadline may have moved
//! closer, so it never polls the database in a tight loop. About once a minute it also forgets
//! sandboxes whose VM exited on its own (crash, OOM kill), so they do not linger as `running`.

use std::time::Duration;

use super::Manager;
use crate::ids;

const MAX_SLEEP: Duration = Duration::from_secs(60);
const LIVENESS_EVERY: Duration = Duration::from_secs(60);

impl Manager {
    pub fn spawn_reaper(&self) -> tokio::task::JoinHandle<()> {
        let mgr = self.clone();
        tokio::spawn(async move {
            let mut last_liveness = std::time::Instant::now();
            loop {
                if last_liveness.elapsed() >= LIVENESS_EVERY {
                    last_liveness = std::time::Instant::now();
                    let ids: Vec<String> = mgr.inner.routes.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
                    for id in ids {
                        mgr.reap_if_dead(&id).await;
                    }
                }
                let now = ids::now_ns();
                let next = match mgr.store().next_deadline() {
                    Ok(next) => next,
                    Err(e) => {
                        tracing::warn!(error = %e, "reaper could not read deadlines");
                        None
                    }
                };
                if next.is_some_and(|t| t <= now) {
                    let expired = mgr.store().expired_sandboxes(now).unwrap_or_default();
                    for id in &expired {
                        mgr.expire(id).await;
                    }
                    // A row that could not be removed must not turn this into a busy loop.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
                let wait = next.map_or(MAX_SLEEP, |t| Duration::from_nanos((t - now) as u64).min(MAX_SLEEP));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = mgr.inner.reaper.notified() => {}
                }
            }
        })
    }
}
