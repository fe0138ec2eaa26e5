//! The reaper: kills (or auto-pauses) sandboxes when their `end_at` passes; plus the watchers
//! that notice a VM dying on its own and a guest stopped by a full store.
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

/// How often the store's free space is sampled for [`Manager::spawn_space_watch`].
const SPACE_EVERY: Duration = Duration::from_secs(1);

impl Manager {
    /// A guest writing to its disk while the store is full is stopped by QEMU (no data lost,
    /// no error shown to the guest). This task notices the store running (nearly) full and,
    /// once there is room again, continues every VM QEMU stopped that way. It asks the VMs
    /// only after such an episode: the check holds a sandbox's operation lock for a moment (a
    /// snapshot then would get 409), so it must not run on a healthy server.
    pub fn spawn_space_watch(&self) -> tokio::task::JoinHandle<()> {
        let mgr = self.clone();
        tokio::spawn(async move {
            let mut was_full = false;
            loop {
                tokio::time::sleep(SPACE_EVERY).await;
                if mgr.inner.runtime.store_free_bytes() < 2 * crate::vm::SPACE_MARGIN {
                    if !was_full {
                        tracing::warn!("the store is (nearly) full: guests writing to their disks are paused until there is room");
                    }
                    was_full = true;
                } else if was_full {
                    was_full = !mgr.resume_io_errors().await;
                }
            }
        })
    }

    /// Continues the VMs QEMU stopped on a full store. False if some could not be checked
    /// (busy with another operation): try again later.
    async fn resume_io_errors(&self) -> bool {
        let ids: Vec<String> = self.inner.routes.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect();
        let mut done = true;
        for id in ids {
            let lock = self.op_lock(&id);
            let Ok(_op) = lock.try_lock() else {
                done = false;
                continue;
            };
            let Ok(Some(row)) = self.store().sandbox(&id) else { continue };
            let Some(vm) = row.vm.filter(|_| row.state == crate::store::SandboxState::Running) else { continue };
            match self.inner.runtime.resume_after_io_error(&vm).await {
                Ok(true) => tracing::info!(sandbox = %id, "continued after the store had room again"),
                Ok(false) => {}
                Err(e) => {
                    tracing::debug!(sandbox = %id, error = %e, "could not check for a full-store pause");
                    done = false;
                }
            }
        }
        done
    }

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
