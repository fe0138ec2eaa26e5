//! The reaper: kills (or auto-pauses) sandboxes when their `end_at` passes.
//!
//! Invariant: it sleeps until the earliest deadline in the store (at most a minute, as a
//! safety net) and is woken early through `Inner::reaper` whenever a deadline may have moved
//! closer, so it never polls the database in a tight loop. A sandbox whose VM exits on its own
//! (crash, OOM kill, `kill -9` of QEMU) is forgotten at once: every running VM has a watcher
//! waiting on its pidfd ([`Manager::watch_vm`]); a liveness sweep about once a minute is the
//! safety net.

use std::time::Duration;

use super::Manager;
use crate::ids;

const MAX_SLEEP: Duration = Duration::from_secs(60);
const LIVENESS_EVERY: Duration = Duration::from_secs(60);

impl Manager {
    /// Forgets sandbox `id` as soon as its VM's process exits, unless that was sandboxd's doing
    /// (kill, pause: `reap_if_dead` re-checks under the operation lock).
    pub(super) fn watch_vm(&self, id: &str, vm: &crate::vm::VmInfo) {
        let (mgr, id, vm) = (self.clone(), id.to_string(), vm.clone());
        tokio::spawn(async move {
            mgr.inner.runtime.exited(&vm).await;
            mgr.reap_if_dead(&id).await;
        });
    }

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
