//! Create, kill, timeouts, pause, connect/resume and expiry of sandboxes.
//!
//! Ordering that keeps restarts safe: a new VM is launched before its row is written (a
//! crash in between leaves an unlisted VM, never a listed sandbox without one); pausing
//! commits the pause image and the `paused` row before the old VM is killed, so a crash at
//! any point leaves either a running sandbox or a paused one with its image.
//!
//! A pause or snapshot keeps memory and disk ([`Keep::Full`], E2B's default) or only the disk
//! ([`Keep::Filesystem`]); a sandbox resumed from a filesystem-only image, or connected with
//! `memory: false`, cold-boots its template's kernel over the disk. Traffic never resumes a
//! filesystem-only pause: only an explicit connect/resume does (as in E2B).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use tracing::{info, warn};

use super::Manager;
use crate::config::MAX_TIMEOUT_SECS;
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::store::{ImageKind, SandboxRow, SandboxState};
use crate::vm::{GuestInit, LaunchSpec, Runtime};

/// What a new sandbox is started with (from `POST /sandboxes`, or copied by `fork`).
#[derive(Debug, Clone)]
pub struct CreateParams {
    pub template: String,
    pub timeout_secs: i64,
    pub metadata: BTreeMap<String, String>,
    pub env_vars: HashMap<String, String>,
    pub secure: bool,
    pub allow_internet: bool,
    pub auto_pause: bool,
    /// `autoPauseMemory`: false makes the auto-pause at timeout filesystem-only.
    pub auto_pause_memory: bool,
    pub auto_resume: bool,
    /// Validated `NewSandbox.network` (`None`: not given).
    pub network: Option<crate::network::NetworkConfig>,
    /// Validated `volumeMounts` (see `Manager::resolve_volume_mounts`).
    pub volume_mounts: Vec<crate::volumes::VolumeMount>,
}

/// What a pause or snapshot keeps (E2B's `memory` flag, the SDKs' `mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Memory and disk: a resume continues every process.
    Full,
    /// The disk only: a resume cold-boots (processes gone, files kept).
    Filesystem,
}

impl Keep {
    /// From the wire's optional `memory` flag (absent means a full snapshot, as in E2B).
    pub fn from_memory(memory: Option<bool>) -> Self {
        if memory == Some(false) { Self::Filesystem } else { Self::Full }
    }
}

/// E2B's create-time checks on the lifecycle fields (same messages).
fn validate_lifecycle(p: &CreateParams) -> ApiResult<()> {
    if !p.auto_pause_memory && !p.auto_pause {
        return Err(ApiError::bad_request("autoPauseMemory=false only applies when autoPause is true."));
    }
    if !p.auto_pause_memory && p.auto_resume {
        return Err(ApiError::bad_request(
            "autoPauseMemory=false (filesystem-only auto-pause) cannot be combined with autoResume: a filesystem-only \
             snapshot cannot be auto-resumed by traffic and must be resumed explicitly.",
        ));
    }
    Ok(())
}

/// Lifetime given to a sandbox woken by traffic (E2B's auto-resume default: 5 minutes).
const AUTO_RESUME_TIMEOUT_SECS: i64 = 300;

/// Lifetimes for create/connect/fork: 1 s ..= 24 h.
pub fn validate_lifetime(secs: i64) -> ApiResult<()> {
    if secs <= 0 {
        return Err(ApiError::bad_request("Timeout must be greater than 0 seconds"));
    }
    validate_timeout(secs)
}

/// `POST /timeout` also accepts 0 (expire now).
pub fn validate_timeout(secs: i64) -> ApiResult<()> {
    if secs < 0 {
        return Err(ApiError::bad_request("Timeout cannot be negative"));
    }
    if secs > MAX_TIMEOUT_SECS {
        return Err(ApiError::bad_request(format!("Timeout cannot be greater than {} hours", MAX_TIMEOUT_SECS / 3600)));
    }
    Ok(())
}

fn deadline(timeout_secs: i64) -> i64 {
    ids::now_ns().saturating_add(ids::secs_to_ns(timeout_secs))
}

impl Manager {
    pub async fn create(&self, p: CreateParams) -> ApiResult<SandboxRow> {
        validate_lifetime(p.timeout_secs)?;
        validate_lifecycle(&p)?;
        let (dir, template_id, alias) = self.resolve_template(&p.template)?;
        // An image captured on another node of the cluster is fetched here first (all but its
        // RAM, for a first restore on this node: that goes straight into the restore).
        let (dir, direct) = self.image_for_create(dir).await?;
        let read_dir = direct.as_ref().map_or(dir.as_path(), |d| d.dir.path());
        // Refused now rather than degraded to a full pause at the timeout (as E2B does).
        if !p.auto_pause_memory && !Runtime::read_meta(read_dir)?.boot.is_some_and(|b| b.usable()) {
            return Err(ApiError::bad_request(format!(
                "autoPauseMemory=false needs a template that records its boot kernel; '{}' predates that: rebuild \
                 it (sandboxd template build) or omit autoPauseMemory",
                p.template
            )));
        }
        let _gc = self.inner.gc_guard.read().await;
        self.launch_new(dir, template_id, alias, &p, true, direct).await
    }

    /// Starts a sandbox with a new ID from an image: a warm-pool VM of that image when
    /// `pooled` allows it and the create asks for default networking, else a new restore;
    /// `direct`: the image is being fetched, `image_dir` is where this node's copy will be and
    /// the restore reads the direct fetch's directory and RAM instead.
    /// Callers hold `gc_guard` for reading.
    pub(super) async fn launch_new(
        &self,
        image_dir: PathBuf,
        template_id: String,
        alias: Option<String>,
        p: &CreateParams,
        pooled: bool,
        direct: Option<crate::cluster::direct::Direct>,
    ) -> ApiResult<SandboxRow> {
        let egress = super::network::egress_spec(p.network.as_ref(), p.allow_internet)?;
        let (read_dir, ram_fill) = match direct {
            Some(d) => (Some(d.dir), Some(d.fill)),
            None => (None, None),
        };
        let source = read_dir.as_ref().map_or(image_dir.clone(), |d| d.path().to_path_buf());
        let meta = Runtime::read_meta(&source)?;
        // The image's guest may already have mounts (a snapshot of a sandbox with volumes).
        let volume_mounts = super::volumes::merge(super::volumes::image_mounts(&source)?, &p.volume_mounts)?;
        let access_token = p.secure.then(|| ids::secret_hex(32));
        let traffic_access_token = p.network.as_ref().is_some_and(|n| n.private()).then(|| ids::secret_hex(32));
        let init = GuestInit { access_token: access_token.clone(), env_vars: p.env_vars.clone() };
        let from_pool = match pooled && ram_fill.is_none() && p.network.is_none() && p.allow_internet {
            true => self.take_pooled(&image_dir, &meta, &init).await,
            false => None,
        };
        let (id, vm, slot) = match from_pool {
            // Its share was moved to the running sandboxes by the handout.
            Some(pooled) => (pooled.id, pooled.vm, None),
            None => {
                let slot = self.reserve_slot(meta.memory_mb)?;
                let id = ids::sandbox_id();
                let vm = self
                    .inner
                    .runtime
                    .launch(LaunchSpec {
                        sandbox_id: id.clone(),
                        image_dir: source,
                        allow_internet: p.allow_internet,
                        egress: super::network::identified(egress, &id, &template_id),
                        init,
                        cold_boot: false,
                        ram_fill,
                    })
                    .await?;
                // The restore has read all it needs of the private directory.
                drop(read_dir);
                (id, vm, Some(slot))
            }
        };
        crate::fault::point("create.vm_started");
        if let Err(e) = self.prepare_guest(&id, &vm, access_token.as_deref(), &volume_mounts, p.network.as_ref()).await {
            let _ = self.inner.runtime.kill(&vm).await;
            if slot.is_none() {
                self.release_slot(&id);
            }
            return Err(e);
        }
        let now = ids::now_ns();
        let row = SandboxRow {
            id: id.clone(),
            template_id,
            alias,
            image_dir,
            state: SandboxState::Running,
            started_at: now,
            end_at: now.saturating_add(ids::secs_to_ns(p.timeout_secs)),
            metadata: p.metadata.clone(),
            env_vars: p.env_vars.clone(),
            access_token,
            allow_internet: p.allow_internet,
            auto_pause: p.auto_pause,
            auto_pause_memory: p.auto_pause_memory,
            auto_resume: p.auto_resume,
            cpu_count: vm.vcpus,
            memory_mb: vm.memory_mb,
            disk_size_mb: vm.disk_size_mb,
            envd_version: meta.envd_version.clone(),
            disk_layer: Some(meta.disk_layer),
            paused_image: None,
            vm: Some(vm.clone()),
            network: p.network.clone(),
            traffic_access_token,
            node_id: self.store().node_id().to_string(),
            volume_mounts,
        };
        if let Err(e) = self.store().insert_sandbox(&row) {
            let _ = self.inner.runtime.kill(&vm).await;
            if slot.is_none() {
                self.release_slot(&id);
            }
            return Err(e.into());
        }
        match slot {
            Some(slot) => slot.commit(&id),
            // A pooled VM: its console before the handout is not this sandbox's.
            None => self.telemetry().start_console_now(&id, &vm),
        }
        self.set_route(&id, Some(vm.envd_addr));
        self.watch_vm(&id, &vm);
        self.deadlines_changed();
        info!(sandbox = %id, template = %row.template_id, "sandbox started");
        Ok(row)
    }

    /// What a new VM needs before it is handed out, beyond `/init`: its volumes mounted and,
    /// with transform rules, the egress CA trusted. The caller kills the VM on failure.
    async fn prepare_guest(
        &self,
        id: &str,
        vm: &crate::vm::VmInfo,
        token: Option<&str>,
        mounts: &[crate::volumes::VolumeMount],
        network: Option<&crate::network::NetworkConfig>,
    ) -> ApiResult<()> {
        self.attach_volumes(id, vm, token, mounts).await?;
        self.trust_egress_ca(vm, token, network).await
    }

    pub fn get(&self, id: &str) -> ApiResult<SandboxRow> {
        let id = ids::short_sandbox_id(id);
        self.store().sandbox(id)?.ok_or_else(|| ApiError::sandbox_not_found(id))
    }

    pub async fn kill(&self, id: &str) -> ApiResult<()> {
        let id = self.get(id)?.id;
        let lock = self.op_lock(&id);
        let _op = lock.lock().await;
        let row = self.get(&id)?;
        self.destroy(row).await;
        Ok(())
    }

    /// Kills the VM (if any) and forgets the sandbox. Callers hold the operation lock.
    pub(super) async fn destroy(&self, row: SandboxRow) {
        if let Some(vm) = &row.vm {
            // The console log goes with the VM's run directory: keep its last lines.
            self.inner.telemetry.collect_console(&row.id, vm, true);
            if let Err(e) = self.inner.runtime.kill(vm).await {
                warn!(sandbox = %row.id, error = %e, "killing the VM failed");
            }
        }
        crate::fault::point("kill.vm_stopped");
        self.drop_route(&row.id);
        if let Err(e) = self.store().delete_sandbox(&row.id) {
            warn!(sandbox = %row.id, error = %e, "deleting the sandbox row failed");
        }
        self.inner.telemetry.sandbox_ended(&row.id);
        if let Some(img) = &row.paused_image {
            let _ = self.store().soft_delete_image(img);
        }
        self.forget_lock(&row.id);
        info!(sandbox = %row.id, "sandbox killed");
        self.spawn_gc();
    }

    /// Removes the proxy route and frees the VM slot it stood for.
    pub(super) fn drop_route(&self, id: &str) {
        self.set_route(id, None);
        self.release_slot(id);
    }

    /// `POST /sandboxes/{id}/timeout`: the sandbox now ends `secs` from now.
    pub fn set_timeout(&self, id: &str, secs: i64) -> ApiResult<()> {
        validate_timeout(secs)?;
        let row = self.get(id)?;
        if !self.store().set_end_at(&row.id, deadline(secs))? {
            return Err(ApiError::sandbox_not_found(&row.id));
        }
        self.deadlines_changed();
        Ok(())
    }

    /// `POST /sandboxes/{id}/refreshes`: extend only, never shorten.
    pub fn refresh(&self, id: &str, secs: i64) -> ApiResult<()> {
        if !(0..=3600).contains(&secs) {
            return Err(ApiError::bad_request("duration must be between 0 and 3600 seconds"));
        }
        let row = self.get(id)?;
        self.store().set_end_at(&row.id, row.end_at.max(deadline(secs)))?;
        self.deadlines_changed();
        Ok(())
    }

    /// `POST /sandboxes/{id}/pause`. `require_healthy_guest`: refuse (503, sandbox keeps
    /// running) unless envd answers; a filesystem-only pause always needs it (it flushes the
    /// guest through envd).
    pub async fn pause(&self, id: &str, keep: Keep, require_healthy_guest: bool) -> ApiResult<()> {
        let id = self.get(id)?.id;
        let lock = self.op_lock(&id);
        let Ok(_op) = lock.try_lock() else {
            return Err(ApiError::conflict(format!("sandbox {id} is in transition and cannot be paused now")));
        };
        let row = self.get(&id)?;
        if require_healthy_guest
            && row.state == SandboxState::Running
            && let Some(vm) = &row.vm
            && !crate::vm::guest::healthy(vm.envd_addr, std::time::Duration::from_secs(5)).await
        {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                format!("sandbox {id}: the guest agent does not respond; the sandbox keeps running"),
            ));
        }
        self.pause_locked(row, keep).await
    }

    async fn pause_locked(&self, row: SandboxRow, keep: Keep) -> ApiResult<()> {
        let id = row.id.clone();
        match row.state {
            SandboxState::Running => {}
            SandboxState::Paused => return Err(ApiError::conflict(format!("sandbox {id} is already paused"))),
            other => return Err(ApiError::conflict(format!("sandbox {id} cannot be paused while {}", other.as_str()))),
        }
        let vm = row.vm.clone().ok_or_else(|| ApiError::internal("running sandbox without a VM"))?;
        let _gc = self.inner.gc_guard.read().await;
        self.store().set_state(&id, SandboxState::Pausing)?;
        if keep == Keep::Full {
            self.inner.runtime.sync_guest(&vm, row.access_token.as_deref()).await;
        }
        let img = match self.capture(&row, &vm, ImageKind::Pause, None, keep).await {
            Ok(img) => img,
            Err(e) => {
                self.store().set_state(&id, SandboxState::Running)?;
                return Err(e);
            }
        };
        self.store().set_paused(&id, &img.id)?;
        crate::fault::point("pause.committed");
        self.inner.telemetry.collect_console(&id, &vm, true);
        if let Err(e) = self.inner.runtime.kill(&vm).await {
            warn!(sandbox = %id, error = %e, "killing the paused VM failed");
        }
        self.store().clear_vm(&id)?;
        self.drop_route(&id);
        info!(sandbox = %id, size_bytes = img.size_bytes, keep = ?keep, "sandbox paused");
        drop(_gc);
        self.spawn_gc();
        Ok(())
    }

    /// `POST /sandboxes/{id}/connect`: resumes a paused sandbox (true) or extends a running
    /// one (false). `memory: false` cold-boots it from its disk even if its image has memory.
    pub async fn connect(&self, id: &str, timeout_secs: i64, memory: Option<bool>) -> ApiResult<(SandboxRow, bool)> {
        validate_lifetime(timeout_secs)?;
        let id = &self.get(id)?.id;
        let lock = self.op_lock(id);
        let _op = lock.lock().await;
        let mut row = self.get(id)?;
        if row.state != SandboxState::Paused {
            row.end_at = row.end_at.max(deadline(timeout_secs));
            self.store().set_end_at(id, row.end_at)?;
            self.deadlines_changed();
            return Ok((row, false));
        }
        Ok((self.resume_locked(row, timeout_secs, memory == Some(false)).await?, true))
    }

    /// Traffic for a paused sandbox created with `autoResume`: resume it (keeping its access
    /// token, which the client already holds) and return where envd now listens.
    pub async fn auto_resume(&self, id: &str) -> Option<std::net::SocketAddr> {
        let row = self.store().sandbox(id).ok().flatten()?;
        if row.state != SandboxState::Paused || !row.auto_resume {
            return None;
        }
        let lock = self.op_lock(id);
        let _op = lock.lock().await;
        let row = self.store().sandbox(id).ok().flatten()?;
        if row.state == SandboxState::Paused && !self.paused_with_memory(&row) {
            // A cold boot would answer this request from a guest that lost what it asked for.
            info!(sandbox = %id, "traffic for a filesystem-only pause: it must be resumed explicitly");
            return None;
        }
        if row.state == SandboxState::Paused
            && let Err(e) = self.resume_locked(row, AUTO_RESUME_TIMEOUT_SECS, false).await
        {
            warn!(sandbox = %id, error = %e, "auto-resume failed");
        }
        self.envd_addr(id)
    }

    /// True unless the paused sandbox's image is filesystem-only.
    fn paused_with_memory(&self, row: &SandboxRow) -> bool {
        let img = row.paused_image.as_ref().and_then(|i| self.store().image(i).ok().flatten());
        img.and_then(|img| Runtime::read_meta(&img.dir).ok()).is_none_or(|m| m.memory)
    }

    /// `POST /sandboxes/{id}/resume` (deprecated): 409 unless paused.
    pub async fn resume(&self, id: &str, timeout_secs: i64, memory: Option<bool>) -> ApiResult<SandboxRow> {
        validate_lifetime(timeout_secs)?;
        let id = &self.get(id)?.id;
        let lock = self.op_lock(id);
        let _op = lock.lock().await;
        let row = self.get(id)?;
        if row.state != SandboxState::Paused {
            return Err(ApiError::conflict(format!("sandbox {id} is already running")));
        }
        self.resume_locked(row, timeout_secs, memory == Some(false)).await
    }

    /// Restores a paused sandbox from its pause image, with the same ID and envd access token
    /// (E2B derives the token from the sandbox ID, so it never changes: the SDKs' instance
    /// `connect()` keeps using the one it has; the token is delivered again through `/init`);
    /// `cold_boot` boots over the image's disk instead of restoring its memory (always so for
    /// a filesystem-only image).
    async fn resume_locked(
        &self,
        mut row: SandboxRow,
        timeout_secs: i64,
        cold_boot: bool,
    ) -> ApiResult<SandboxRow> {
        let image_id = row.paused_image.clone().ok_or_else(|| ApiError::internal("paused sandbox without an image"))?;
        let mut img = self.store().image(&image_id)?.ok_or_else(|| ApiError::internal("pause image missing"))?;
        // Paused on a node that died since: its pause image comes from the object store.
        img.dir = self.local_image(img.dir).await?;
        let meta = Runtime::read_meta(&img.dir)?;
        let egress = super::network::sandbox_egress(row.network.as_ref(), row.allow_internet, &row)?;
        let slot = self.reserve_slot(meta.memory_mb)?;
        let _gc = self.inner.gc_guard.read().await;
        let access_token = row.access_token.clone();
        let vm = self
            .inner
            .runtime
            .launch(LaunchSpec {
                sandbox_id: row.id.clone(),
                image_dir: img.dir.clone(),
                allow_internet: row.allow_internet,
                egress,
                init: GuestInit { access_token: access_token.clone(), env_vars: row.env_vars.clone() },
                cold_boot,
                ram_fill: None,
            })
            .await?;
        if let Err(e) = self.prepare_guest(&row.id, &vm, access_token.as_deref(), &row.volume_mounts, row.network.as_ref()).await {
            let _ = self.inner.runtime.kill(&vm).await;
            return Err(e);
        }
        row.state = SandboxState::Running;
        row.image_dir = img.dir.clone();
        row.access_token = access_token;
        row.end_at = deadline(timeout_secs);
        row.disk_layer = Some(meta.disk_layer);
        row.paused_image = None;
        row.vm = Some(vm.clone());
        if let Err(e) = self.store().set_running(&row) {
            let _ = self.inner.runtime.kill(&vm).await;
            return Err(e.into());
        }
        // The image stays on disk while this sandbox runs from it (`image_dir`).
        self.store().soft_delete_image(&img.id)?;
        slot.commit(&row.id);
        self.set_route(&row.id, Some(vm.envd_addr));
        self.watch_vm(&row.id, &vm);
        self.deadlines_changed();
        info!(sandbox = %row.id, cold_boot = cold_boot || !meta.memory, "sandbox resumed");
        Ok(row)
    }

    /// Forgets a sandbox whose VM died on its own (the proxy calls this when envd stops
    /// answering). Returns true when the sandbox was dead.
    pub async fn reap_if_dead(&self, id: &str) -> bool {
        // Look without the operation lock first: the periodic sweep must not hold the lock of a
        // live sandbox, or a snapshot arriving at that moment would be refused as busy (409).
        let looks_dead = match self.store().sandbox(id) {
            Ok(Some(row)) => row.state != SandboxState::Paused && row.vm.as_ref().is_some_and(|vm| !self.inner.runtime.is_alive(vm)),
            _ => false,
        };
        if !looks_dead {
            return false;
        }
        let lock = self.op_lock(id);
        let _op = lock.lock().await;
        let Ok(Some(row)) = self.store().sandbox(id) else { return false };
        match &row.vm {
            Some(vm) if row.state != SandboxState::Paused && !self.inner.runtime.is_alive(vm) => {
                warn!(sandbox = %id, "the sandbox's VM exited on its own");
                self.destroy(row).await;
                true
            }
            _ => false,
        }
    }

    /// Called by the reaper: kill, or pause when the sandbox asked for `autoPause`.
    pub(super) async fn expire(&self, id: &str) {
        let lock = self.op_lock(id);
        let _op = lock.lock().await;
        let Ok(Some(row)) = self.store().sandbox(id) else { return };
        if row.state == SandboxState::Paused || row.end_at > ids::now_ns() {
            return;
        }
        if row.auto_pause {
            // A filesystem-only pause needs a responding guest; a full one is the fallback.
            let mut modes = vec![Keep::Full];
            if !row.auto_pause_memory {
                modes.insert(0, Keep::Filesystem);
            }
            for keep in modes {
                match self.pause_locked(row.clone(), keep).await {
                    Ok(()) => return,
                    Err(e) => warn!(sandbox = %id, error = %e, keep = ?keep, "auto-pause failed"),
                }
            }
            warn!(sandbox = %id, "auto-pause failed; killing instead");
        }
        info!(sandbox = %id, "sandbox reached its timeout");
        self.destroy(row).await;
    }
}
