//! Custom templates through E2B's template API: the official SDKs' `Template` builder asks
//! for a build (`POST /v3/templates`), uploads the files its `copy` steps need, sends the steps
//! (`POST /v2/templates/{id}/builds/{buildID}`) and polls the build's status and logs.
//!
//! A build restores its base (`base`, any template, alias or snapshot, or an OCI image through
//! `super::oci`) as a hidden build VM, runs every step in the guest through envd, starts the
//! start command, waits for the ready command, and snapshots the running VM (memory and disk):
//! the template is that snapshot, so a sandbox created from it is a restore whose start command
//! already runs.
//!
//! Invariants:
//! - Every step's result is a cached layer keyed by the hash of the base and of every step (and
//!   uploaded files' hash) up to it (`run.rs`); a cached prefix is skipped without a VM.
//! - A template becomes visible only with a ready build; a failed or interrupted build leaves
//!   nothing listed or usable (see `store/templates.rs`).
//! - Uploaded build files are content-addressed by the SDK's files hash under
//!   `<data>/template-files/`, written to a temporary file and renamed only once complete and
//!   checked to be a tar archive with relative paths only.

mod envd;
mod run;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::manager::Manager;
use crate::store::{BuildRow, LogRow, NAMESPACE, TemplateRow};

/// The process state a step runs in, and a template hands to its sandboxes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepState {
    pub env: BTreeMap<String, String>,
    pub user: String,
    pub workdir: String,
}

impl StepState {
    /// What a sandbox of the built-in `base` template runs as (E2B's base image).
    fn base() -> Self {
        Self { env: BTreeMap::new(), user: "user".into(), workdir: "/home/user".into() }
    }
}

/// Stored with a ready build: what a template built on top of it starts from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finished {
    pub state: StepState,
    pub start_cmd: Option<String>,
    pub ready_cmd: Option<String>,
}

/// `TemplateBuildRequestV3`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildRequest {
    pub name: Option<String>,
    pub alias: Option<String>,
    pub tags: Option<Vec<String>>,
    #[serde(rename = "teamID")]
    pub team_id: Option<String>,
    pub cpu_count: Option<i64>,
    #[serde(rename = "memoryMB")]
    pub memory_mb: Option<i64>,
    pub min_free_disk_mb: Option<i64>,
}

/// `TemplateStep`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub args: Vec<String>,
    pub files_hash: Option<String>,
    #[serde(default)]
    pub force: Option<bool>,
    /// Client-side only (the SDK re-uploads files); the server has nothing to do with it.
    #[serde(default, skip_serializing)]
    pub force_upload: Option<bool>,
}

/// `TemplateBuildStartV2`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildStart {
    pub from_image: Option<String>,
    pub from_template: Option<String>,
    pub from_image_registry: Option<serde_json::Value>,
    pub force: Option<bool>,
    #[serde(default)]
    pub steps: Vec<Step>,
    pub start_cmd: Option<String>,
    pub ready_cmd: Option<String>,
}

/// What `POST /v3/templates` answers.
pub struct Requested {
    pub template_id: String,
    pub build_id: String,
    pub alias: String,
    pub tags: Vec<String>,
}

/// One template with what `GET /templates` shows of it.
pub struct TemplateView {
    pub row: TemplateRow,
    pub aliases: Vec<String>,
    pub latest: BuildRow,
    pub builds: Vec<BuildRow>,
}

/// The builder. Cheap to clone.
#[derive(Clone)]
pub struct Builds {
    inner: Arc<Inner>,
}

struct Inner {
    mgr: Manager,
    /// Signs upload URLs (a restart invalidates them; the SDK asks for a new one per build).
    upload_key: String,
}

pub const MIN_MEMORY_MB: i64 = 128;
pub const MAX_MEMORY_MB: i64 = 65536;
pub const MAX_VCPUS: i64 = 32;

fn valid_tag(t: &str) -> bool {
    !t.is_empty() && t.len() <= 128 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// `name[:tag]` of a build request (the namespace, if any, must be ours).
fn split_name(raw: &str) -> ApiResult<(String, Option<String>)> {
    let r = crate::manager::parse_ref_public(raw.trim());
    if r.0.is_some_and(|ns| ns != NAMESPACE) {
        return Err(ApiError::bad_request(format!("namespace must be '{NAMESPACE}' (the only team of this server)")));
    }
    if !ids::valid_name(r.1) {
        return Err(ApiError::bad_request(format!(
            "invalid template name {raw:?}: use lowercase letters, digits, '-' and '_'"
        )));
    }
    Ok((r.1.to_string(), r.2.map(str::to_string)))
}

/// A random UUID (version 4 form), as E2B's build IDs are.
fn uuid_v4() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

impl Builds {
    pub fn new(mgr: Manager) -> Self {
        Self { inner: Arc::new(Inner { mgr, upload_key: ids::secret_hex(32) }) }
    }

    fn mgr(&self) -> &Manager {
        &self.inner.mgr
    }

    fn files_dir(&self) -> PathBuf {
        self.mgr().config().data_dir.join("template-files")
    }

    /// The template an ID or alias names (visible or still building its first build).
    pub fn find_template(&self, reference: &str) -> ApiResult<TemplateRow> {
        let r = crate::manager::parse_ref_public(reference.trim());
        let not_found = || ApiError::not_found(format!("template '{reference}' not found"));
        if r.0.is_some_and(|ns| ns != NAMESPACE) {
            return Err(not_found());
        }
        let store = self.mgr().store();
        let id = match store.template_by_alias(r.1)? {
            Some(id) => id,
            None => r.1.to_string(),
        };
        store.template(&id)?.ok_or_else(not_found)
    }

    fn visible(&self, reference: &str) -> ApiResult<TemplateRow> {
        let t = self.find_template(reference)?;
        if !self.mgr().store().template_ready(&t.id)? {
            return Err(ApiError::not_found(format!("template '{reference}' not found")));
        }
        Ok(t)
    }

    /// `POST /v3/templates`: a template (new, or the one the name already names) and a build
    /// waiting for its steps.
    pub fn request(&self, req: BuildRequest) -> ApiResult<Requested> {
        let raw = req.name.or(req.alias).ok_or_else(|| ApiError::bad_request("name is required"))?;
        let (alias, name_tag) = split_name(&raw)?;
        if req.team_id.is_some() {
            return Err(ApiError::bad_request("teamID is not supported: this server has a single team"));
        }
        if self.mgr().config().template_dir(&alias).join("meta.json").is_file() {
            return Err(ApiError::bad_request(format!(
                "'{alias}' is a built-in template of this server: choose another name"
            )));
        }
        if self.mgr().store().find_snapshot(&alias)?.is_some() {
            return Err(ApiError::conflict(format!("the name '{alias}' is taken by a snapshot")));
        }
        let cpu = match req.cpu_count {
            Some(c) if !(1..=MAX_VCPUS).contains(&c) => {
                return Err(ApiError::bad_request(format!("cpuCount must be between 1 and {MAX_VCPUS}")));
            }
            c => c.map(|c| c as u32),
        };
        let mem = match req.memory_mb {
            Some(m) if !(MIN_MEMORY_MB..=MAX_MEMORY_MB).contains(&m) => {
                return Err(ApiError::bad_request(format!(
                    "memoryMB must be between {MIN_MEMORY_MB} and {MAX_MEMORY_MB}"
                )));
            }
            Some(m) if m % 2 != 0 => {
                return Err(ApiError::bad_request("memoryMB must be an even number"));
            }
            m => m.map(|m| m as u32),
        };
        if req.min_free_disk_mb.is_some_and(|m| m < 0) {
            return Err(ApiError::bad_request("minFreeDiskMb must not be negative"));
        }
        let mut tags: Vec<String> = name_tag.into_iter().chain(req.tags.unwrap_or_default()).collect();
        if tags.is_empty() {
            tags.push("default".into());
        }
        if let Some(bad) = tags.iter().find(|t| !valid_tag(t)) {
            return Err(ApiError::bad_request(format!("invalid tag {bad:?}: use letters, digits, '-', '_' and '.'")));
        }
        tags.dedup();
        let now = ids::now_ns();
        let template_id = self.mgr().store().ensure_template(&alias, &ids::image_id(), now)?;
        let build_id = uuid_v4();
        let config = serde_json::json!({"minFreeDiskMb": req.min_free_disk_mb}).to_string();
        self.mgr().store().insert_build(&BuildRow {
            id: build_id.clone(),
            template_id: template_id.clone(),
            status: "waiting".into(),
            reason: None,
            cpu_count: cpu,
            memory_mb: mem,
            disk_size_mb: crate::template::BASE_DISK_MB,
            image_id: None,
            config: Some(config),
            tags: serde_json::to_string(&tags).expect("json"),
            created_at: now,
            updated_at: now,
            finished_at: None,
        })?;
        info!(template = %template_id, build = %build_id, alias = %alias, "template build requested");
        Ok(Requested { template_id, build_id, alias, tags })
    }

    fn build_of(&self, template_id: &str, build_id: &str) -> ApiResult<BuildRow> {
        let t = self.find_template(template_id).ok();
        let b = self.mgr().store().build(build_id)?;
        match b {
            Some(b)
                if t.as_ref().is_none_or(|t| t.id == b.template_id)
                    && (t.is_some() || b.template_id == template_id) =>
            {
                Ok(b)
            }
            _ => Err(ApiError::not_found(format!("build '{build_id}' of template '{template_id}' not found"))),
        }
    }

    /// `POST /v2/templates/{id}/builds/{buildID}`: checks the steps and starts the build.
    pub fn trigger(&self, template_id: &str, build_id: &str, start: BuildStart) -> ApiResult<()> {
        let b = self.build_of(template_id, build_id)?;
        if b.status != "waiting" {
            return Err(ApiError::bad_request(format!("build '{build_id}' was already started (status {})", b.status)));
        }
        let plan = match self.validate(&start) {
            Ok(plan) => plan,
            Err(e) => {
                // Nothing will run: the build is over, and a template it was the first of goes.
                self.fail(&b, &e.message, "base");
                return Err(e);
            }
        };
        if !self.mgr().store().start_build(build_id, ids::now_ns())? {
            return Err(ApiError::bad_request(format!("build '{build_id}' was already started")));
        }
        let me = self.clone();
        tokio::spawn(async move { me.run(b, start, plan).await });
        Ok(())
    }

    /// Checks a build's steps before anything runs (400 with a message on bad input).
    fn validate(&self, s: &BuildStart) -> ApiResult<run::Plan> {
        let base = match (&s.from_image, &s.from_template) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request("give either fromImage or fromTemplate, not both"));
            }
            (None, None) => {
                return Err(ApiError::bad_request("fromImage or fromTemplate is required"));
            }
            (Some(img), None) if img.trim().is_empty() => {
                return Err(ApiError::bad_request("fromImage is empty"));
            }
            (None, Some(t)) if t.trim().is_empty() => {
                return Err(ApiError::bad_request("fromTemplate is empty"));
            }
            (Some(img), None) => {
                run::Base::Image(img.trim().to_string(), self.registry_auth(s.from_image_registry.as_ref())?)
            }
            (None, Some(t)) => {
                if s.from_image_registry.is_some() {
                    return Err(ApiError::bad_request("fromImageRegistry only applies to fromImage"));
                }
                run::Base::Template(t.trim().to_string())
            }
        };
        for (i, step) in s.steps.iter().enumerate() {
            let n = i + 1;
            let bad = |m: String| Err(ApiError::bad_request(format!("step {n} ({}): {m}", step.kind)));
            match step.kind.as_str() {
                "RUN" if step.args.is_empty() || step.args.len() > 2 || step.args[0].trim().is_empty() => {
                    return bad("expects a command and optionally a user".into());
                }
                "ENV" if step.args.is_empty() || step.args.len() % 2 != 0 => {
                    return bad("expects key/value pairs".into());
                }
                "ENV" if step.args.iter().step_by(2).any(|k| k.is_empty() || k.contains('=')) => {
                    return bad("invalid variable name".into());
                }
                "WORKDIR" | "USER" if step.args.len() != 1 || step.args[0].trim().is_empty() => {
                    return bad("expects one argument".into());
                }
                "COPY" => {
                    if step.args.len() < 2 || step.args.len() > 4 {
                        return bad("expects source, destination, and optionally user and mode".into());
                    }
                    let src = &step.args[0];
                    if src.starts_with('/') || src.split('/').any(|c| c == "..") {
                        return bad(format!("source {src:?} is outside the build context"));
                    }
                    if let Some(mode) = step.args.get(3).filter(|m| !m.is_empty())
                        && u32::from_str_radix(mode, 8).ok().is_none_or(|m| m > 0o7777)
                    {
                        return bad(format!("invalid mode {mode:?}: expected octal digits"));
                    }
                    let Some(hash) = &step.files_hash else {
                        return bad("filesHash is required".into());
                    };
                    if !self.file_path(hash)?.is_file() {
                        return bad(format!("the files for {src:?} (hash {hash}) were never uploaded"));
                    }
                }
                "RUN" | "ENV" | "WORKDIR" | "USER" => {}
                other => {
                    return bad(format!("unsupported step type {other:?} (supported: RUN, COPY, ENV, WORKDIR, USER)"));
                }
            }
        }
        if s.start_cmd.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err(ApiError::bad_request("startCmd is empty"));
        }
        Ok(run::Plan { base })
    }

    fn registry_auth(&self, v: Option<&serde_json::Value>) -> ApiResult<Option<crate::template::oci::RegistryAuth>> {
        let Some(v) = v else { return Ok(None) };
        match v.get("type").and_then(|t| t.as_str()) {
            Some("registry") => {
                let field = |k: &str| v.get(k).and_then(|s| s.as_str()).filter(|s| !s.is_empty()).map(str::to_string);
                match (field("username"), field("password")) {
                    (Some(username), Some(password)) => {
                        Ok(Some(crate::template::oci::RegistryAuth { username, password }))
                    }
                    _ => Err(ApiError::bad_request("fromImageRegistry needs username and password")),
                }
            }
            Some(t @ ("aws" | "gcp")) => Err(ApiError::bad_request(format!(
                "fromImageRegistry type '{t}' is not supported by this server: use type 'registry' with a username and password"
            ))),
            _ => Err(ApiError::bad_request("fromImageRegistry.type must be 'registry'")),
        }
    }

    /// Marks a build failed, logs why, and removes a template left without a ready build.
    fn fail(&self, b: &BuildRow, message: &str, step: &str) {
        self.log(&b.id, "error", message, Some(step));
        let reason = serde_json::json!({"message": message, "step": step}).to_string();
        let store = self.mgr().store();
        if let Err(e) = store.finish_build_error(&b.id, &reason, ids::now_ns()) {
            warn!(build = %b.id, error = %e, "recording a failed build failed");
        }
        if store.template_ready(&b.template_id).ok() == Some(false)
            && store.template_building(&b.template_id).ok() == Some(false)
        {
            let _ = store.delete_template(&b.template_id);
        }
    }

    fn log(&self, build_id: &str, level: &str, message: &str, step: Option<&str>) {
        let row =
            LogRow { ts: ids::now_ns(), level: level.into(), message: message.into(), step: step.map(str::to_string) };
        if let Err(e) = self.mgr().store().append_build_log(build_id, &row) {
            warn!(build = %build_id, error = %e, "writing a build log line failed");
        }
    }

    pub fn status(&self, template_id: &str, build_id: &str) -> ApiResult<BuildRow> {
        self.build_of(template_id, build_id)
    }

    pub fn logs(&self, build_id: &str, offset: i64, limit: i64) -> ApiResult<Vec<LogRow>> {
        Ok(self.mgr().store().build_logs(build_id, offset.max(0), limit.clamp(0, 1000))?)
    }

    fn file_path(&self, hash: &str) -> ApiResult<PathBuf> {
        let ok = (8..=128).contains(&hash.len())
            && hash.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(ApiError::bad_request(format!("invalid files hash {hash:?}")));
        }
        Ok(self.files_dir().join(hash))
    }

    /// The signature an upload URL for `(template, hash)` carries.
    pub fn upload_token(&self, template_id: &str, hash: &str) -> String {
        use sha2::Digest;
        let d = sha2::Sha256::digest(format!("{}:{template_id}:{hash}", self.inner.upload_key).as_bytes());
        hex::encode(&d[..16])
    }

    /// `GET /templates/{id}/files/{hash}`: whether the files are here already.
    pub fn file_present(&self, template_id: &str, hash: &str) -> ApiResult<bool> {
        self.find_template(template_id)?;
        let path = self.file_path(hash)?;
        // A build is about to rely on it: fresh again for `sweep_files`.
        let present = std::fs::File::open(&path).and_then(|f| f.set_modified(std::time::SystemTime::now())).is_ok();
        Ok(present && path.is_file())
    }

    /// Stores an uploaded build-context archive under its hash once it proved to be a tar
    /// archive (optionally gzipped) with relative paths only.
    /// Frees uploaded build files no build used for `SANDBOXD_TEMPLATE_FILES_TTL_HOURS`
    /// (default 24; the SDK uploads them again when asked) and uploads that broke off.
    fn sweep_files(&self) {
        let ttl = std::time::Duration::from_secs(env_u64("SANDBOXD_TEMPLATE_FILES_TTL_HOURS", 24) * 3600);
        let Ok(entries) = std::fs::read_dir(self.files_dir()) else { return };
        for entry in entries.flatten() {
            let tmp = entry.file_name().to_string_lossy().starts_with(".tmp-");
            let age = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
            let limit = if tmp { std::time::Duration::from_secs(3600) } else { ttl };
            if age.is_some_and(|a| a > limit) && std::fs::remove_file(entry.path()).is_ok() {
                info!(file = %entry.path().display(), "unused template build file removed");
            }
        }
    }

    pub async fn store_file(
        &self,
        template_id: &str,
        hash: &str,
        token: &str,
        body: axum::body::Body,
    ) -> ApiResult<()> {
        let expected = self.upload_token(template_id, hash);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), token.as_bytes())) {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "invalid or expired upload URL: ask for a new one",
            ));
        }
        self.find_template(template_id)?;
        let dest = self.file_path(hash)?;
        std::fs::create_dir_all(self.files_dir())?;
        let tmp = self.files_dir().join(format!(".tmp-{}", crate::vm::random_id()));
        let max = env_u64("SANDBOXD_TEMPLATE_UPLOAD_MAX_MB", 4096) << 20;
        let mut body = body;
        let written = async {
            let n = crate::api::body_cap::stream_to_file(&mut body, &tmp, max, "SANDBOXD_TEMPLATE_UPLOAD_MAX_MB", |len| {
                self.mgr().ensure_store_space(len as u64, "a template file upload")
            })
            .await?;
            check_archive(&tmp).await?;
            std::fs::rename(&tmp, &dest)?;
            Ok::<_, ApiError>(n)
        }
        .await;
        match written {
            Ok(n) => {
                info!(hash, bytes = n, "template files uploaded");
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    pub fn exists_alias(&self, alias: &str) -> ApiResult<String> {
        Ok(self.visible(alias)?.id)
    }

    fn view(&self, t: TemplateRow) -> ApiResult<Option<TemplateView>> {
        let store = self.mgr().store();
        let builds = store.builds_of(&t.id)?;
        let Some(latest) = builds.iter().find(|b| b.status == "ready").cloned() else {
            return Ok(None);
        };
        let aliases = store.aliases_of(&t.id)?;
        Ok(Some(TemplateView { row: t, aliases, latest, builds }))
    }

    pub fn list(&self) -> ApiResult<Vec<TemplateView>> {
        let mut out = Vec::new();
        for t in self.mgr().store().visible_templates()? {
            out.extend(self.view(t)?);
        }
        Ok(out)
    }

    pub fn get(&self, reference: &str) -> ApiResult<TemplateView> {
        let t = self.visible(reference)?;
        self.view(t)?.ok_or_else(|| ApiError::not_found(format!("template '{reference}' not found")))
    }

    /// `DELETE /templates/{id}` for a built template: gone at once; images nothing else needs
    /// are freed by the GC. `Ok(false)` when no built template has that name.
    pub fn delete(&self, reference: &str) -> ApiResult<bool> {
        let Ok(t) = self.find_template(reference) else {
            return Ok(false);
        };
        let store = self.mgr().store();
        if store.template_building(&t.id)? {
            return Err(ApiError::conflict(format!("template '{reference}' has a build in progress")));
        }
        let images = store.build_images_of(&t.id)?;
        store.delete_template(&t.id)?;
        for img in images {
            self.mgr().release_build_image(&img)?;
        }
        info!(template = %t.id, "template deleted");
        Ok(true)
    }

    pub fn tags(&self, reference: &str) -> ApiResult<Vec<(String, String, i64)>> {
        let t = self.visible(reference)?;
        Ok(self.mgr().store().tags_of(&t.id)?)
    }

    /// `POST /templates/tags`: `target` is `name:tag` (the build to tag).
    pub fn assign_tags(&self, target: &str, tags: &[String]) -> ApiResult<(String, Vec<String>)> {
        if tags.is_empty() {
            return Err(ApiError::bad_request("tags must not be empty"));
        }
        if let Some(bad) = tags.iter().find(|t| !valid_tag(t)) {
            return Err(ApiError::bad_request(format!("invalid tag {bad:?}")));
        }
        let r = crate::manager::parse_ref_public(target.trim());
        let t = self.visible(target.split(':').next().unwrap_or(target))?;
        let source_tag = r.2.unwrap_or("default");
        let store = self.mgr().store();
        let build_id = store
            .tag_build(&t.id, source_tag)?
            .ok_or_else(|| ApiError::not_found(format!("template '{target}' not found: no tag '{source_tag}'")))?;
        let before = store.build_images_of(&t.id)?;
        store.set_tags(&t.id, &build_id, tags, ids::now_ns())?;
        for img in before {
            self.mgr().release_build_image(&img)?;
        }
        Ok((build_id, tags.to_vec()))
    }

    /// `DELETE /templates/tags`.
    pub fn remove_tags(&self, name: &str, tags: &[String]) -> ApiResult<()> {
        if tags.is_empty() {
            return Err(ApiError::bad_request("tags must not be empty"));
        }
        let t = self.visible(name)?;
        let store = self.mgr().store();
        let known: Vec<String> = store.tags_of(&t.id)?.into_iter().map(|(tag, _, _)| tag).collect();
        if let Some(missing) = tags.iter().find(|t| !known.contains(t)) {
            return Err(ApiError::not_found(format!("template '{name}' has no tag '{missing}'")));
        }
        let before = store.build_images_of(&t.id)?;
        store.remove_tags(&t.id, tags)?;
        for img in before {
            self.mgr().release_build_image(&img)?;
        }
        Ok(())
    }
}

/// `tar -t` over the archive: it must list, and every entry must stay inside the extraction
/// directory (no absolute paths, no `..`).
async fn check_archive(path: &std::path::Path) -> ApiResult<()> {
    let out = tokio::process::Command::new("tar")
        .arg("-tf")
        .arg(path)
        .output()
        .await
        .map_err(|e| ApiError::internal(format!("tar: {e}")))?;
    if !out.status.success() {
        return Err(ApiError::bad_request(format!(
            "the upload is not a tar archive: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    for entry in String::from_utf8_lossy(&out.stdout).lines() {
        if entry.starts_with('/') || entry.split('/').any(|c| c == "..") {
            return Err(ApiError::bad_request(format!("the archive entry {entry:?} points outside the build context")));
        }
    }
    Ok(())
}
