//! `TemplateCore`: the core's `Template` (steps, Dockerfile parsing, hashing) and the template
//! build API, for the JS facade `bindings-node/template.js` (E2B's `Template()`), which holds
//! one per template and chains. Not public: no TypeScript of its own (index.d.ts types the
//! facade).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use napi::Status;
use napi::bindgen_prelude::Result;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue};
use napi_derive::napi;

use crate::config::{ConnectionOpts, connection};
use crate::error::JsResult;

#[napi]
pub struct TemplateCore {
    inner: e2b::Template,
}

/// A build log entry; `kind` is `entry`, `start` or `end`.
#[napi(object, object_from_js = false)]
pub struct NativeLogEntry {
    pub kind: String,
    pub timestamp: DateTime<Utc>,
    pub level: String,
    pub message: String,
}

fn log_entry(e: e2b::template::LogEntry) -> NativeLogEntry {
    let kind = match e.kind {
        e2b::template::LogEntryKind::Entry => "entry",
        e2b::template::LogEntryKind::Start => "start",
        e2b::template::LogEntryKind::End => "end",
    };
    NativeLogEntry { kind: kind.into(), timestamp: e.timestamp, level: e.level.as_str().into(), message: e.message }
}

type LogFn = ThreadsafeFunction<NativeLogEntry, UnknownReturnValue, NativeLogEntry, Status, false>;

#[napi(object, object_to_js = false)]
pub struct NativeBuildOpts {
    pub name: String,
    pub tags: Option<Vec<String>>,
    pub cpu_count: Option<u32>,
    #[napi(js_name = "memoryMB")]
    pub memory_mb: Option<u32>,
    pub min_free_disk_mb: Option<u32>,
    pub skip_cache: Option<bool>,
    pub wait: bool,
}

#[napi(object, object_from_js = false)]
pub struct NativeBuildInfo {
    pub template_id: String,
    pub build_id: String,
    pub name: String,
    pub alias: String,
    pub tags: Vec<String>,
}

#[napi(object, object_from_js = false)]
pub struct NativeBuildStatusReason {
    pub message: String,
    pub step: Option<String>,
    pub log_entries: Vec<NativeLogEntry>,
}

#[napi(object, object_from_js = false)]
pub struct NativeBuildStatus {
    #[napi(js_name = "buildID")]
    pub build_id: String,
    #[napi(js_name = "templateID")]
    pub template_id: String,
    pub status: String,
    pub log_entries: Vec<NativeLogEntry>,
    pub logs: Vec<String>,
    pub reason: Option<NativeBuildStatusReason>,
}

#[napi(object, object_from_js = false)]
pub struct NativeTagInfo {
    pub build_id: String,
    pub tags: Vec<String>,
}

#[napi(object, object_from_js = false)]
pub struct NativeTag {
    pub tag: String,
    pub build_id: String,
    pub created_at: DateTime<Utc>,
}

#[napi]
#[allow(clippy::wrong_self_convention)]
impl TemplateCore {
    #[napi(constructor)]
    pub fn new(file_context_path: String, file_ignore_patterns: Option<Vec<String>>) -> Self {
        TemplateCore { inner: e2b::Template::new(file_context_path, file_ignore_patterns.unwrap_or_default()) }
    }

    #[napi]
    pub fn skip_cache(&mut self) {
        self.inner.skip_cache();
    }

    #[napi]
    pub fn from_image(&mut self, image: String, username: Option<String>, password: Option<String>) -> Result<()> {
        self.inner.from_image(&image, username.as_deref(), password.as_deref()).js()
    }

    #[napi]
    pub fn from_template(&mut self, template: String) {
        self.inner.from_template(&template);
    }

    #[napi]
    pub fn from_dockerfile(&mut self, content_or_path: String) -> Result<()> {
        self.inner.from_dockerfile(&content_or_path).js()
    }

    #[napi(js_name = "fromAWSRegistry")]
    pub fn from_aws_registry(&mut self, image: String, access_key_id: String, secret_access_key: String, region: String) {
        self.inner.from_aws_registry(&image, &access_key_id, &secret_access_key, &region);
    }

    #[napi(js_name = "fromGCPRegistry")]
    pub fn from_gcp_registry(&mut self, image: String, service_account_json: serde_json::Value) -> Result<()> {
        self.inner.from_gcp_registry(&image, &service_account_json).js()
    }

    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn copy(
        &mut self,
        srcs: Vec<String>,
        dest: String,
        force_upload: Option<bool>,
        user: Option<String>,
        mode: Option<u32>,
        resolve_symlinks: Option<bool>,
        gzip: Option<bool>,
    ) -> Result<()> {
        self.inner.copy(&srcs, &dest, force_upload, user.as_deref(), mode, resolve_symlinks, gzip).js()
    }

    #[napi]
    pub fn run_cmd(&mut self, commands: Vec<String>, user: Option<String>) {
        self.inner.run_cmd(&commands, user.as_deref());
    }

    #[napi]
    pub fn remove(&mut self, paths: Vec<String>, force: bool, recursive: bool, user: Option<String>) {
        self.inner.remove(&paths, force, recursive, user.as_deref());
    }

    #[napi]
    pub fn rename(&mut self, src: String, dest: String, force: bool, user: Option<String>) {
        self.inner.rename(&src, &dest, force, user.as_deref());
    }

    #[napi]
    pub fn make_dir(&mut self, paths: Vec<String>, mode: Option<u32>, user: Option<String>) {
        self.inner.make_dir(&paths, mode, user.as_deref());
    }

    #[napi]
    pub fn make_symlink(&mut self, src: String, dest: String, user: Option<String>, force: bool) {
        self.inner.make_symlink(&src, &dest, user.as_deref(), force);
    }

    #[napi]
    pub fn set_workdir(&mut self, workdir: String) {
        self.inner.set_workdir(&workdir);
    }

    #[napi]
    pub fn set_user(&mut self, user: String) {
        self.inner.set_user(&user);
    }

    #[napi]
    pub fn pip_install(&mut self, packages: Option<Vec<String>>, g: bool) {
        self.inner.pip_install(packages.as_deref(), g);
    }

    #[napi]
    pub fn npm_install(&mut self, packages: Option<Vec<String>>, g: bool, dev: bool) {
        self.inner.npm_install(packages.as_deref(), g, dev);
    }

    #[napi]
    pub fn bun_install(&mut self, packages: Option<Vec<String>>, g: bool, dev: bool) {
        self.inner.bun_install(packages.as_deref(), g, dev);
    }

    #[napi]
    pub fn apt_install(&mut self, packages: Vec<String>, no_install_recommends: bool, fix_missing: bool) {
        self.inner.apt_install(&packages, no_install_recommends, fix_missing);
    }

    #[napi]
    pub fn add_mcp_server(&mut self, servers: Vec<String>) -> Result<()> {
        self.inner.add_mcp_server(&servers).js()
    }

    #[napi]
    pub fn git_clone(&mut self, url: String, path: Option<String>, branch: Option<String>, depth: Option<u32>, user: Option<String>) {
        self.inner.git_clone(&url, path.as_deref(), branch.as_deref(), depth, user.as_deref());
    }

    #[napi]
    pub fn beta_dev_container_prebuild(&mut self, dir: String) -> Result<()> {
        self.inner.beta_dev_container_prebuild(&dir).js()
    }

    #[napi]
    pub fn beta_set_dev_container_start(&mut self, dir: String) -> Result<()> {
        self.inner.beta_set_dev_container_start(&dir).js()
    }

    #[napi]
    pub fn set_envs(&mut self, envs: Vec<Vec<String>>) {
        let pairs: Vec<(String, String)> = envs
            .into_iter()
            .map(|kv| (kv.first().cloned().unwrap_or_default(), kv.get(1).cloned().unwrap_or_default()))
            .collect();
        self.inner.set_envs(&pairs);
    }

    #[napi]
    pub fn set_start_cmd(&mut self, start_cmd: String, ready_cmd: String) {
        self.inner.set_start_cmd(&start_cmd, &ready_cmd);
    }

    #[napi]
    pub fn set_ready_cmd(&mut self, ready_cmd: String) {
        self.inner.set_ready_cmd(&ready_cmd);
    }

    #[napi]
    pub fn base_template(&self) -> Option<String> {
        self.inner.base_template().map(str::to_owned)
    }

    /// The build request; with `compute_hashes` false, COPY steps carry no files hash.
    #[napi(js_name = "toJSON")]
    pub fn to_json(&self, compute_hashes: bool) -> Result<String> {
        if compute_hashes {
            return self.inner.to_json().js();
        }
        let steps = self
            .inner
            .instructions()
            .iter()
            .map(|i| e2b::template::Step {
                kind: i.kind,
                args: i.args.clone(),
                force: i.force,
                files_hash: None,
                force_upload: i.force_upload,
            })
            .collect();
        Ok(serde_json::to_string_pretty(&self.inner.serialize(steps)).unwrap_or_default())
    }

    #[napi]
    pub fn to_dockerfile(&self) -> Result<String> {
        self.inner.to_dockerfile().js()
    }

    /// Build (`wait`) or start building; `onLogs` gets every log entry.
    #[napi]
    pub async fn build(&self, opts: NativeBuildOpts, on_logs: Option<LogFn>, conn: Option<ConnectionOpts>) -> Result<NativeBuildInfo> {
        let t = self.inner.clone();
        let b = e2b::template::BuildOptions {
            name: opts.name,
            tags: opts.tags.unwrap_or_default(),
            cpu_count: opts.cpu_count,
            memory_mb: opts.memory_mb,
            min_free_disk_mb: opts.min_free_disk_mb,
            skip_cache: opts.skip_cache.unwrap_or(false),
        };
        let cb: Option<e2b::template::LogCallback> = on_logs.map(|f| {
            let f = Arc::new(f);
            Arc::new(move |e: e2b::template::LogEntry| {
                f.call(log_entry(e), ThreadsafeFunctionCallMode::Blocking);
            }) as e2b::template::LogCallback
        });
        let c = connection(&conn);
        let info = if opts.wait {
            e2b::template::build::build(&t, &b, cb, &c).await
        } else {
            e2b::template::build::build_in_background(&t, &b, cb, &c).await
        }
        .js()?;
        Ok(NativeBuildInfo {
            template_id: info.template_id,
            build_id: info.build_id,
            name: info.name,
            alias: info.alias,
            tags: info.tags,
        })
    }
}

#[napi(skip_typescript)]
pub async fn template_get_build_status(
    template_id: String,
    build_id: String,
    logs_offset: Option<u32>,
    conn: Option<ConnectionOpts>,
) -> Result<NativeBuildStatus> {
    let s = e2b::template::build::get_build_status(&template_id, &build_id, logs_offset.map(u64::from), &connection(&conn))
        .await
        .js()?;
    Ok(NativeBuildStatus {
        build_id: s.build_id,
        template_id: s.template_id,
        status: s.status.as_str().into(),
        log_entries: s.log_entries.into_iter().map(log_entry).collect(),
        logs: s.logs,
        reason: s.reason.map(|r| NativeBuildStatusReason {
            message: r.message,
            step: r.step,
            log_entries: r.log_entries.into_iter().map(log_entry).collect(),
        }),
    })
}

#[napi(skip_typescript)]
pub async fn template_exists(name: String, conn: Option<ConnectionOpts>) -> Result<bool> {
    e2b::template::build::exists(&name, &connection(&conn)).await.js()
}

#[napi(skip_typescript)]
pub async fn template_assign_tags(target_name: String, tags: Vec<String>, conn: Option<ConnectionOpts>) -> Result<NativeTagInfo> {
    let t = e2b::template::build::assign_tags(&target_name, &tags, &connection(&conn)).await.js()?;
    Ok(NativeTagInfo { build_id: t.build_id, tags: t.tags })
}

#[napi(skip_typescript)]
pub async fn template_remove_tags(name: String, tags: Vec<String>, conn: Option<ConnectionOpts>) -> Result<()> {
    e2b::template::build::remove_tags(&name, &tags, &connection(&conn)).await.js()
}

#[napi(skip_typescript)]
pub async fn template_get_tags(template_id: String, conn: Option<ConnectionOpts>) -> Result<Vec<NativeTag>> {
    let tags = e2b::template::build::get_tags(&template_id, &connection(&conn)).await.js()?;
    Ok(tags.into_iter().map(|t| NativeTag { tag: t.tag, build_id: t.build_id, created_at: t.created_at }).collect())
}

#[napi(skip_typescript)]
pub fn template_ready_cmd(kind: String, arg: String, status_code: Option<u32>) -> Result<String> {
    use e2b::template::readycmd as r;
    Ok(match kind.as_str() {
        "port" => r::wait_for_port(arg.parse().map_err(|_| napi::Error::from_reason(format!("invalid port {arg}")))?),
        "url" => r::wait_for_url(&arg, status_code.unwrap_or(200)),
        "process" => r::wait_for_process(&arg),
        "file" => r::wait_for_file(&arg),
        "timeout" => r::wait_for_timeout(arg.parse::<f64>().map(|v| v.max(0.0) as u64).unwrap_or(0)),
        _ => return Err(napi::Error::from_reason(format!("unknown ready command {kind}"))),
    })
}

#[napi(skip_typescript)]
pub fn template_strip_ansi(text: String) -> String {
    e2b::template::build::strip_ansi(&text)
}
