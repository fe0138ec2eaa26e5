//! Running a build: base, steps, start/ready, snapshot; and the layer cache.
//!
//! Invariants:
//! - Layer hashes chain: `h0 = H(base image identity, shape)`, `h_i = H(h_{i-1}, step_i incl.
//!   filesHash)`, `h_final = H(h_N, startCmd, readyCmd)`. A cache row maps a hash to the image
//!   holding the VM right after that step (empty: the build's start image) and the step state
//!   (env, user, workdir) there. `force` on a step (or the whole build) rebuilds it and every
//!   step after it, replacing their rows.
//! - A cache image is published before its row is written (`capture_build_image`); the cache
//!   is bounded by `SANDBOXD_TEMPLATE_CACHE_MB`, least recently used first, and an image goes
//!   only once no row and no template tag refers to it.
//! - Build VMs see the host's CA bundle, proxy settings and a resolver they can reach
//!   (build-only files and variables, removed or restored before the final snapshot), so
//!   package registries behind a TLS-intercepting proxy work as on the host.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{info, warn};

use super::envd::{self, Command};
use super::{BuildStart, Builds, Finished, Step, StepState};
use crate::manager::BuildVm;
use crate::store::{BuildRow, LayerRow};
use crate::vm::Runtime;

pub enum Base {
    Template(String),
    Image(String, Option<crate::template::oci::RegistryAuth>),
}

/// What validation settled before the build runs.
pub struct Plan {
    pub base: Base,
}

/// A failed build: why, and at which step (`base`, `1`..`N`, `finalize`: the SDK maps it to
/// the caller's stack trace).
struct Failure {
    message: String,
    step: String,
}

fn fail(step: &str, message: impl Into<String>) -> Failure {
    Failure { message: message.into(), step: step.to_string() }
}

/// Where the build CA bundle and apt's setting for it live in a build VM.
const BUILD_DIR: &str = "/etc/sandboxd-build";
const BUILD_CA: &str = "/etc/sandboxd-build/ca.crt";
const APT_CA_CONF: &str = "/etc/apt/apt.conf.d/99sandboxd-build-ca";

fn hash(v: serde_json::Value) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(v.to_string().as_bytes()))
}

fn secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(super::env_u64(name, default))
}

fn describe(step: &Step) -> String {
    match step.kind.as_str() {
        "COPY" => format!("COPY {} {}", step.args[0], step.args[1]),
        "RUN" => format!("RUN {}", step.args[0]),
        _ => format!("{} {}", step.kind, step.args.join(" ")),
    }
}

/// `path` against the working directory, as a shell `cd` would.
fn resolve(workdir: &str, path: &str) -> String {
    if path.starts_with('/') {
        return path.to_string();
    }
    let mut p = PathBuf::from(workdir);
    p.push(path);
    let mut s = p.to_string_lossy().into_owned();
    if path.ends_with('/') && !s.ends_with('/') {
        s.push('/');
    }
    s
}

const COPY_SCRIPT: &str = r#"set -e
t=$(mktemp -d); trap 'rm -rf "$t" "$SB_ARC"' EXIT
mkdir -p "$t/ctx" "$t/out"
# The SDKs upload tar.gz; busybox tar (OCI images without GNU tar) does not detect gzip itself.
if [ "$(head -c 2 "$SB_ARC" | od -An -tx1 | tr -d ' \n')" = "1f8b" ]; then
  gzip -dc "$SB_ARC" | tar -xof - -C "$t/ctx"
else
  tar -xof "$SB_ARC" -C "$t/ctx"
fi
cd "$t/ctx"
# bash's globbing; an image whose /bin/bash is sh (busybox) keeps sh's (no dotfiles for `*`).
shopt -s nullglob dotglob 2>/dev/null || true
IFS=$'\n'
src="${SB_SRC%/}"; [ -n "$src" ] || src=.
set -- $src
if [ $# -eq 0 ]; then echo "copy: '$SB_SRC' matched no files in the uploaded context" >&2; exit 1; fi
dir=0
case "$SB_DEST" in */) dir=1 ;; esac
if [ -d "$SB_DEST" ]; then dir=1; fi
if [ $# -eq 1 ] && [ -d "$1" ]; then cp -a "$1"/. "$t/out/"; dir=1
elif [ $# -gt 1 ] || [ $dir = 1 ]; then for f in "$@"; do cp -a "$f" "$t/out/"; done; dir=1
else cp -a "$1" "$t/file"; fi
if [ $dir = 1 ]; then res="$t/out"; else res="$t/file"; fi
chown -R "$SB_OWNER" "$res"
if [ -n "$SB_MODE" ]; then
  if [ $dir = 1 ]; then find "$res" -mindepth 1 -type f -exec chmod "$SB_MODE" {} +; else chmod "$SB_MODE" "$res"; fi
fi
if [ $dir = 1 ]; then
  if [ ! -d "$SB_DEST" ]; then mkdir -p "$SB_DEST"; chown "$SB_OWNER" "$SB_DEST"; fi
  cp -a "$res"/. "$SB_DEST"/
else
  mkdir -p "$(dirname "$SB_DEST")"
  cp -a "$res" "$SB_DEST"
fi
"#;

impl Builds {
    pub(super) async fn run(self, b: BuildRow, start: BuildStart, plan: Plan) {
        let started = Instant::now();
        let mut vm: Option<BuildVm> = None;
        let mut scratch: Vec<PathBuf> = Vec::new();
        let result = self.execute(&b, &start, plan, &mut vm, &mut scratch).await;
        if let Some(v) = vm.take() {
            self.mgr().kill_build_vm(&v).await;
        }
        for d in scratch {
            let _ = std::fs::remove_dir_all(d);
        }
        self.sweep_files();
        match result {
            Ok(cached) => {
                let msg =
                    format!("Template built in {:.1} s ({cached} cached layers)", started.elapsed().as_secs_f64());
                self.log(&b.id, "info", &msg, Some("finalize"));
                info!(build = %b.id, template = %b.template_id, ms = started.elapsed().as_millis() as u64, cached, "template built");
            }
            Err(f) => {
                warn!(build = %b.id, template = %b.template_id, step = %f.step, "template build failed: {}", f.message);
                self.fail(&b, &f.message, &f.step);
            }
        }
    }

    /// The build itself; returns how many layers came from the cache.
    async fn execute(
        &self,
        b: &BuildRow,
        start: &BuildStart,
        plan: Plan,
        vm: &mut Option<BuildVm>,
        scratch: &mut Vec<PathBuf>,
    ) -> Result<usize, Failure> {
        let total = start.steps.len();
        let id = b.id.as_str();
        let (base_dir, mut state, base_key) = self.prepare_base(b, &plan).await?;
        let meta = Runtime::read_meta(&base_dir).map_err(|e| fail("base", e.to_string()))?;
        let cpu = b.cpu_count.unwrap_or(meta.vcpus);
        let mem = b.memory_mb.unwrap_or(meta.memory_mb);
        let mut start_image = base_dir.clone();
        if (cpu, mem) != (meta.vcpus, meta.memory_mb) {
            start_image = self.reshaped(&meta, cpu, mem).map_err(|m| fail("base", m))?;
            scratch.push(start_image.clone());
            let msg = format!(
                "[base] {cpu} vCPU / {mem} MiB differ from the base's {} vCPU / {} MiB: the build cold-boots the base's disk",
                meta.vcpus, meta.memory_mb
            );
            self.log(id, "info", &msg, Some("base"));
        }
        let mut layer_hash = hash(serde_json::json!(["base", base_key, cpu, mem]));
        // The image a build VM starts from when one is needed, and its ID when it is a build image.
        let mut image: (PathBuf, String) = (start_image.clone(), String::new());
        let mut forced = start.force.unwrap_or(false);
        let mut cached = 0usize;
        for (i, step) in start.steps.iter().enumerate() {
            let n = (i + 1).to_string();
            forced |= step.force.unwrap_or(false);
            layer_hash = hash(serde_json::json!([layer_hash, step.kind, step.args, step.files_hash]));
            let desc = format!("[{n}/{total}] {}", describe(step));
            if !forced && let Some((hit_image, hit_state)) = self.cached(&layer_hash, &start_image) {
                self.log(id, "info", &format!("CACHED {desc}"), Some(&n));
                if image.0 != hit_image.0
                    && let Some(v) = vm.take()
                {
                    self.mgr().kill_build_vm(&v).await;
                }
                image = hit_image;
                state = hit_state;
                cached += 1;
                continue;
            }
            self.log(id, "info", &desc, Some(&n));
            match step.kind.as_str() {
                "ENV" => {
                    for kv in step.args.chunks(2) {
                        state.env.insert(kv[0].clone(), kv[1].clone());
                    }
                }
                "USER" => state.user = step.args[0].clone(),
                _ => {
                    let v = self.ensure_vm(vm, &image.0, id, &n).await?;
                    self.run_step(&v, step, &mut state, id, &n).await?;
                    let row = self.capture(&v, &n).await?;
                    image = (row.dir.clone(), row.id.clone());
                }
            }
            self.remember(&layer_hash, &image.1, &state, &n)?;
        }

        // Finalize: start command, ready command, defaults for sandboxes, the snapshot.
        let final_hash = hash(serde_json::json!([layer_hash, "finalize", start.start_cmd, start.ready_cmd]));
        let final_image = match self.cached(&final_hash, &start_image) {
            Some((hit, _)) if !forced && !hit.1.is_empty() => {
                self.log(id, "info", "CACHED [finalize] start and ready commands", Some("finalize"));
                if let Some(v) = vm.take() {
                    self.mgr().kill_build_vm(&v).await;
                }
                cached += 1;
                hit.1
            }
            _ => {
                let v = self.ensure_vm(vm, &image.0, id, "finalize").await?;
                self.finalize(&v, b, start, &state).await?;
                let row = self.capture(&v, "finalize").await?;
                self.remember(&final_hash, &row.id, &state, "finalize")?;
                row.id
            }
        };
        if let Some(v) = vm.take() {
            self.mgr().kill_build_vm(&v).await;
        }
        let finished = Finished { state, start_cmd: start.start_cmd.clone(), ready_cmd: start.ready_cmd.clone() };
        let tags: Vec<String> = serde_json::from_str(&b.tags).unwrap_or_default();
        let store = self.mgr().store();
        let before = store.build_images_of(&b.template_id).map_err(|e| fail("finalize", e.to_string()))?;
        let config = serde_json::to_string(&finished).expect("json");
        store
            .finish_build_ready(b, &final_image, &config, cpu, mem, &tags, crate::ids::now_ns())
            .map_err(|e| fail("finalize", e.to_string()))?;
        for img in before {
            let _ = self.mgr().release_build_image(&img);
        }
        self.evict();
        Ok(cached)
    }

    /// The base image, the state its processes start in, and its identity for the cache.
    async fn prepare_base(&self, b: &BuildRow, plan: &Plan) -> Result<(PathBuf, StepState, String), Failure> {
        let identity = |dir: &Path| -> Result<String, Failure> {
            let raw = std::fs::read(dir.join("meta.json"))
                .map_err(|e| fail("base", format!("base image unreadable: {e}")))?;
            Ok(hash(serde_json::json!([String::from_utf8_lossy(&raw)])))
        };
        match &plan.base {
            Base::Template(t) => {
                self.log(&b.id, "info", &format!("[base] FROM template {t}"), Some("base"));
                let (dir, template_id, _) = self
                    .mgr()
                    .resolve_template(t)
                    .map_err(|_| fail("base", format!("unknown base: template '{t}' not found")))?;
                let store = self.mgr().store();
                let parent = store.builds_of(&template_id).unwrap_or_default().into_iter().find(|pb| {
                    pb.status == "ready"
                        && pb
                            .image_id
                            .as_ref()
                            .and_then(|i| store.image(i).ok().flatten())
                            .is_some_and(|img| img.dir == dir)
                });
                let state = parent
                    .and_then(|pb| pb.config)
                    .and_then(|c| serde_json::from_str::<Finished>(&c).ok())
                    .map(|f| f.state)
                    .unwrap_or_else(StepState::base);
                let key = identity(&dir)?;
                Ok((dir, state, key))
            }
            Base::Image(reference, auth) => {
                self.log(&b.id, "info", &format!("[base] FROM image {reference}"), Some("base"));
                let me = self.clone();
                let bid = b.id.clone();
                let log = move |m: String| me.log(&bid, "info", &m, Some("base"));
                let cpu = b.cpu_count.unwrap_or(crate::template::BASE_VCPUS);
                let mem = b.memory_mb.unwrap_or(crate::template::BASE_MEMORY_MB);
                let templates_dir = self.mgr().config().templates_dir.clone();
                let img = crate::template::oci::image_base(&templates_dir, reference, auth.as_ref(), mem, cpu, &log)
                    .await
                    .map_err(|e| fail("base", format!("{e:#}")))?;
                let state = StepState {
                    env: img.env.iter().cloned().collect(),
                    user: img.user.clone().filter(|u| !u.is_empty()).unwrap_or_else(|| "root".into()),
                    workdir: img.workdir.clone().filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into()),
                };
                let key = identity(&img.dir)?;
                Ok((img.dir, state, key))
            }
        }
    }

    /// A filesystem-only image over the base's disk with another shape: the build cold-boots it.
    fn reshaped(&self, meta: &crate::vm::ImageMeta, cpu: u32, mem: u32) -> Result<PathBuf, String> {
        if !meta.boot.as_ref().is_some_and(|b| b.usable()) {
            return Err(format!(
                "cannot build with {cpu} vCPU / {mem} MiB: the base records no boot kernel (rebuild it), and its memory \
                 snapshot has {} vCPU / {} MiB",
                meta.vcpus, meta.memory_mb
            ));
        }
        let dir = self.mgr().config().snapshots_dir().join(format!(".tmp-shape-{}", crate::vm::random_id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut m = meta.clone();
        m.vcpus = cpu;
        m.memory_mb = mem;
        m.memory = false;
        m.size_bytes = 0;
        crate::vm::files::write_atomic(&dir.join("meta.json"), &serde_json::to_vec_pretty(&m).expect("json"))
            .map_err(|e| e.to_string())?;
        Ok(dir)
    }

    /// A usable cache entry: (image dir, image ID or "" for the start image) and the state.
    fn cached(&self, layer_hash: &str, start_image: &Path) -> Option<((PathBuf, String), StepState)> {
        let store = self.mgr().store();
        let row = store.layer(layer_hash).ok()??;
        let state: StepState = serde_json::from_str(&row.state).ok()?;
        let image = if row.image_id.is_empty() {
            (start_image.to_path_buf(), String::new())
        } else {
            let img = store.image(&row.image_id).ok()??;
            if img.deleted || !img.dir.join("meta.json").is_file() {
                return None;
            }
            (img.dir, img.id)
        };
        let _ = store.touch_layer(layer_hash, crate::ids::now_ns());
        Some((image, state))
    }

    fn remember(&self, layer_hash: &str, image_id: &str, state: &StepState, step: &str) -> Result<(), Failure> {
        let store = self.mgr().store();
        let size_bytes =
            if image_id.is_empty() { 0 } else { store.image(image_id).ok().flatten().map_or(0, |i| i.size_bytes) };
        let row = LayerRow {
            hash: layer_hash.to_string(),
            image_id: image_id.to_string(),
            state: serde_json::to_string(state).expect("json"),
            size_bytes,
            last_used: crate::ids::now_ns(),
        };
        let replaced = store.put_layer(&row).map_err(|e| fail(step, e.to_string()))?;
        if let Some(old) = replaced.filter(|o| !o.is_empty()) {
            let _ = self.mgr().release_build_image(&old);
        }
        Ok(())
    }

    /// Evicts least recently used cache entries beyond `SANDBOXD_TEMPLATE_CACHE_MB`.
    fn evict(&self) {
        let limit = super::env_u64("SANDBOXD_TEMPLATE_CACHE_MB", 20 * 1024) << 20;
        let store = self.mgr().store();
        let Ok(rows) = store.layers_lru() else { return };
        let mut sizes = std::collections::HashMap::new();
        for r in &rows {
            sizes.insert(r.image_id.clone(), r.size_bytes);
        }
        let mut total: u64 = sizes.values().sum();
        let mut refs: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for r in &rows {
            *refs.entry(r.image_id.clone()).or_default() += 1;
        }
        for r in rows {
            if total <= limit {
                break;
            }
            if store.delete_layer(&r.hash).is_err() {
                continue;
            }
            let left = refs.get_mut(&r.image_id).map(|c| {
                *c -= 1;
                *c
            });
            if left == Some(0) {
                total = total.saturating_sub(r.size_bytes);
                if !r.image_id.is_empty() {
                    let _ = self.mgr().release_build_image(&r.image_id);
                }
            }
            info!(layer = %r.hash, "template cache entry evicted");
        }
    }

    async fn ensure_vm(
        &self,
        vm: &mut Option<BuildVm>,
        image: &Path,
        id: &str,
        step: &str,
    ) -> Result<BuildVm, Failure> {
        if let Some(v) = vm {
            return Ok(v.clone());
        }
        let t0 = Instant::now();
        let v = self
            .mgr()
            .launch_build_vm(image.to_path_buf())
            .await
            .map_err(|e| fail(step, format!("could not start the build VM: {}", e.message)))?;
        *vm = Some(v.clone());
        self.host_access(&v).await.map_err(|m| fail(step, m))?;
        self.log(id, "debug", &format!("build VM up in {:.1} s", t0.elapsed().as_secs_f64()), Some(step));
        Ok(v)
    }

    /// The host's CA bundle for the build's TLS clients (and apt), and a resolver the guest
    /// can reach, see the module invariants.
    async fn host_access(&self, v: &BuildVm) -> Result<(), String> {
        let mut script = format!("mkdir -p {BUILD_DIR}");
        if let Some(bundle) = ca_bundle() {
            let data = std::fs::read(&bundle).map_err(|e| format!("read {}: {e}", bundle.display()))?;
            envd::upload(v.vm.envd_addr, BUILD_CA, Bytes::from(data)).await?;
            script.push_str(&format!(
                " && mkdir -p /etc/apt/apt.conf.d && echo 'Acquire::https::CAInfo \"{BUILD_CA}\";' > {APT_CA_CONF}"
            ));
        }
        let dns = build_resolvers();
        if !dns.is_empty() {
            let lines: String = dns.iter().map(|d| format!("nameserver {d}\\n")).collect();
            script.push_str(&format!(
                " && if [ ! -e {BUILD_DIR}/resolv.conf.orig ]; then cat /etc/resolv.conf > {BUILD_DIR}/resolv.conf.orig; fi \
                 && printf '{lines}' > /etc/resolv.conf"
            ));
        }
        self.root(v, &script, "setting up the build VM").await
    }

    /// Runs a short housekeeping command as root; fails with its output.
    async fn root(&self, v: &BuildVm, script: &str, what: &str) -> Result<(), String> {
        let envs = Default::default();
        let mut out = Vec::new();
        let c = Command { script, user: "root", cwd: Some("/"), envs: &envs };
        let exit = envd::run(v.vm.envd_addr, &c, Duration::from_secs(120), &mut |l| out.push(l)).await?;
        if exit.code != 0 {
            return Err(format!("{what} failed ({}): {}", exit.status, out.join("\n")));
        }
        Ok(())
    }

    async fn capture(&self, v: &BuildVm, step: &str) -> Result<crate::store::ImageRow, Failure> {
        // Page cache to disk first: a later reshaped (cold-booted) build reads only the disk.
        self.root(v, "sync", "flushing the guest").await.map_err(|m| fail(step, m))?;
        self.mgr().capture_build_image(v).await.map_err(|e| fail(step, format!("snapshot failed: {}", e.message)))
    }

    /// Environment of a build command: the step state's variables over the build-only ones.
    fn build_env(&self, state: &StepState) -> std::collections::BTreeMap<String, String> {
        let mut env = std::collections::BTreeMap::new();
        if ca_bundle().is_some() {
            for k in [
                "SSL_CERT_FILE",
                "REQUESTS_CA_BUNDLE",
                "PIP_CERT",
                "CURL_CA_BUNDLE",
                "GIT_SSL_CAINFO",
                "NODE_EXTRA_CA_CERTS",
            ] {
                env.insert(k.to_string(), BUILD_CA.to_string());
            }
            env.insert("npm_config_cafile".into(), BUILD_CA.into());
        }
        for k in ["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"] {
            if let Ok(v) = std::env::var(k) {
                env.insert(k.to_string(), v);
            }
        }
        env.extend(state.env.clone());
        env
    }

    async fn run_step(
        &self,
        v: &BuildVm,
        step: &Step,
        state: &mut StepState,
        id: &str,
        n: &str,
    ) -> Result<(), Failure> {
        let addr = v.vm.envd_addr;
        match step.kind.as_str() {
            "RUN" => {
                let user = step.args.get(1).filter(|u| !u.is_empty()).unwrap_or(&state.user).clone();
                let env = self.build_env(state);
                let c = Command { script: &step.args[0], user: &user, cwd: Some(&state.workdir), envs: &env };
                self.run_logged(addr, &c, secs("SANDBOXD_TEMPLATE_STEP_TIMEOUT_SECS", 3600), id, n, "RUN").await
            }
            "WORKDIR" => {
                let dir = resolve(&state.workdir, &step.args[0]);
                let script = format!(
                    "if [ ! -d {d} ]; then mkdir -p {d} && chown {u}: {d}; fi",
                    d = shell_quote(&dir),
                    u = shell_quote(&state.user)
                );
                self.root(v, &script, "WORKDIR").await.map_err(|m| fail(n, m))?;
                state.workdir = dir.trim_end_matches('/').to_string();
                if state.workdir.is_empty() {
                    state.workdir = "/".into();
                }
                Ok(())
            }
            "COPY" => {
                let hash = step.files_hash.as_deref().unwrap_or_default();
                let path = self.file_path(hash).map_err(|e| fail(n, e.message))?;
                let data = std::fs::read(&path)
                    .map_err(|e| fail(n, format!("the files for {:?} are gone: {e}", step.args[0])))?;
                // Used now: kept for another `SANDBOXD_TEMPLATE_FILES_TTL_HOURS` (see `sweep_files`).
                let _ = std::fs::File::open(&path).and_then(|f| f.set_modified(std::time::SystemTime::now()));
                let arc = format!("/tmp/sandboxd-copy-{}.tar", crate::vm::random_id());
                envd::upload(addr, &arc, Bytes::from(data)).await.map_err(|m| fail(n, m))?;
                let owner = step.args.get(2).filter(|u| !u.is_empty()).unwrap_or(&state.user).clone();
                let owner = if owner.contains(':') { owner } else { format!("{owner}:") };
                let mut env = std::collections::BTreeMap::new();
                env.insert("SB_ARC".to_string(), arc);
                env.insert("SB_SRC".to_string(), step.args[0].clone());
                env.insert("SB_DEST".to_string(), resolve(&state.workdir, &step.args[1]));
                env.insert("SB_OWNER".to_string(), owner);
                env.insert("SB_MODE".to_string(), step.args.get(3).cloned().unwrap_or_default());
                let c = Command { script: COPY_SCRIPT, user: "root", cwd: Some("/"), envs: &env };
                self.run_logged(addr, &c, secs("SANDBOXD_TEMPLATE_STEP_TIMEOUT_SECS", 3600), id, n, "COPY").await
            }
            other => Err(fail(n, format!("unsupported step type {other}"))),
        }
    }

    /// Runs a command, logging its output; a non-zero exit fails the step with the output's
    /// tail and the exit code.
    async fn run_logged(
        &self,
        addr: std::net::SocketAddr,
        c: &Command<'_>,
        deadline: Duration,
        id: &str,
        n: &str,
        what: &str,
    ) -> Result<(), Failure> {
        let mut tail: VecDeque<String> = VecDeque::new();
        let me = self.clone();
        let (bid, step) = (id.to_string(), n.to_string());
        let mut on_line = |line: String| {
            me.log(&bid, "info", &line, Some(&step));
            if tail.len() == 20 {
                tail.pop_front();
            }
            tail.push_back(line);
        };
        let exit = envd::run(addr, c, deadline, &mut on_line)
            .await
            .map_err(|m| fail(n, format!("step {n} ({what}) failed: {m}")))?;
        if exit.code != 0 {
            let out: Vec<String> = tail.into_iter().collect();
            return Err(fail(
                n,
                format!("step {n} ({what}) failed with exit code {} ({}):\n{}", exit.code, exit.status, out.join("\n")),
            ));
        }
        Ok(())
    }

    /// Removes the build-only files, sets the defaults sandboxes inherit, starts the start
    /// command and waits for the ready command.
    async fn finalize(&self, v: &BuildVm, b: &BuildRow, start: &BuildStart, state: &StepState) -> Result<(), Failure> {
        let id = b.id.as_str();
        let addr = v.vm.envd_addr;
        let f = |m: String| fail("finalize", m);
        let min_free: Option<i64> = b
            .config
            .as_deref()
            .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
            .and_then(|c| c["minFreeDiskMb"].as_i64())
            .filter(|m| *m > 0);
        if let Some(min) = min_free {
            let envs = Default::default();
            let mut out = String::new();
            let c = Command { script: "df -Pm / | awk 'NR==2 {print $4}'", user: "root", cwd: Some("/"), envs: &envs };
            envd::run(addr, &c, Duration::from_secs(60), &mut |l| out.push_str(&l)).await.map_err(f)?;
            let free: i64 = out.trim().parse().unwrap_or(0);
            if free < min {
                return Err(fail(
                    "finalize",
                    format!(
                        "minFreeDiskMb {min}: the template's disk has {free} MiB free and this server cannot grow it"
                    ),
                ));
            }
        }
        let cleanup = format!(
            "if [ -e {BUILD_DIR}/resolv.conf.orig ]; then cat {BUILD_DIR}/resolv.conf.orig > /etc/resolv.conf; fi; \
             rm -rf {BUILD_DIR} {APT_CA_CONF}"
        );
        self.root(v, &cleanup, "removing the build-only files").await.map_err(f)?;
        envd::set_defaults(addr, &state.env, &state.user, &state.workdir).await.map_err(f)?;
        // The start command runs on its own connection, its output going to the build log,
        // until the snapshot: dropping the connection leaves the process running (envd).
        let mut started = match &start.start_cmd {
            Some(cmd) => {
                self.log(id, "info", &format!("[finalize] start command: {cmd}"), Some("finalize"));
                let (me, bid, script) = (self.clone(), id.to_string(), cmd.clone());
                let (user, cwd, env) = (state.user.clone(), state.workdir.clone(), state.env.clone());
                let (tx, rx) = tokio::sync::oneshot::channel();
                let mut task = AbortOnDrop(tokio::spawn(async move {
                    let c = Command { script: &script, user: &user, cwd: Some(&cwd), envs: &env };
                    let mut on_line = |l: String| me.log(&bid, "info", &format!("[start] {l}"), Some("finalize"));
                    envd::run_started(addr, &c, Duration::from_secs(365 * 86400), &mut on_line, Some(tx)).await
                }));
                // Running before anything waits for it (or the snapshot is taken).
                if tokio::time::timeout(Duration::from_secs(60), rx).await.map_or(true, |r| r.is_err()) {
                    let why = match tokio::time::timeout(Duration::from_secs(1), &mut task.0).await {
                        Ok(Ok(Err(m))) => m,
                        _ => "envd did not start it".to_string(),
                    };
                    return Err(fail("finalize", format!("the start command failed to start: {why}")));
                }
                Some(task)
            }
            None => None,
        };
        if let Some(ready) = start.ready_cmd.as_deref().filter(|r| !r.trim().is_empty()) {
            self.log(id, "info", &format!("[finalize] waiting for the ready command: {ready}"), Some("finalize"));
            let timeout = secs("SANDBOXD_TEMPLATE_READY_TIMEOUT_SECS", 300);
            let t0 = Instant::now();
            let mut last;
            loop {
                let c = Command { script: ready, user: &state.user, cwd: Some(&state.workdir), envs: &state.env };
                let mut out = Vec::new();
                let left = timeout.saturating_sub(t0.elapsed()).max(Duration::from_secs(1));
                match envd::run(addr, &c, left.min(Duration::from_secs(30)), &mut |l| out.push(l)).await {
                    Ok(e) if e.code == 0 => break,
                    Ok(e) => {
                        last = format!(
                            "exit code {}{}",
                            e.code,
                            if out.is_empty() { String::new() } else { format!(": {}", out.join("\n")) }
                        )
                    }
                    Err(m) => last = m,
                }
                // A start command that failed will not become ready (one that exits 0, such
                // as a daemon forking away, may).
                if started.as_ref().is_some_and(|t| t.0.is_finished())
                    && let Some(mut task) = started.take()
                {
                    match (&mut task.0).await {
                        Ok(Ok(e)) if e.code == 0 => {}
                        Ok(Ok(e)) => {
                            return Err(fail(
                                "finalize",
                                format!("the start command exited with code {} ({}) before it was ready", e.code, e.status),
                            ));
                        }
                        Ok(Err(m)) => return Err(fail("finalize", format!("the start command failed: {m}"))),
                        Err(_) => {}
                    }
                }
                if t0.elapsed() >= timeout {
                    return Err(fail(
                        "finalize",
                        format!(
                            "the ready command `{ready}` did not succeed within {} s (SANDBOXD_TEMPLATE_READY_TIMEOUT_SECS); last attempt: {last}",
                            timeout.as_secs()
                        ),
                    ));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            self.log(id, "info", &format!("[finalize] ready after {:.1} s", t0.elapsed().as_secs_f64()), Some("finalize"));
        }
        drop(started);
        Ok(())
    }
}

/// The start command's task: aborted (its connection dropped, the process left running) on
/// every way out of the finalize phase.
struct AbortOnDrop(tokio::task::JoinHandle<Result<envd::Exit, String>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The host CA bundle build VMs get (`SANDBOXD_BUILD_CA_BUNDLE`, default Debian's bundle;
/// empty disables it).
fn ca_bundle() -> Option<PathBuf> {
    let p = std::env::var("SANDBOXD_BUILD_CA_BUNDLE").unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into());
    (!p.is_empty()).then(|| PathBuf::from(p)).filter(|p| p.is_file())
}

/// Resolvers for build VMs: `SANDBOXD_BUILD_DNS` (comma-separated), else the host's own
/// (`/etc/resolv.conf`) unless they sit in ranges sandbox networking blocks (private, loopback,
/// shared), in which case public resolvers (1.1.1.1, 8.8.8.8).
fn build_resolvers() -> Vec<String> {
    if let Ok(v) = std::env::var("SANDBOXD_BUILD_DNS") {
        return v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    }
    let conf = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let reachable: Vec<String> = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<std::net::Ipv4Addr>().ok())
        .filter(|ip| !(ip.is_private() || ip.is_loopback() || ip.is_link_local() || ip.octets()[0] == 100))
        .map(|ip| ip.to_string())
        .collect();
    if !reachable.is_empty() {
        return reachable;
    }
    vec!["1.1.1.1".into(), "8.8.8.8".into()]
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
