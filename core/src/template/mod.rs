//! E2B's `Template` builder: a template definition built step by step (`from_*`, `copy`,
//! `run_cmd`, …), serialized to the build request E2B's API takes, and built through it
//! ([`build`]).
//!
//! Invariants:
//! - Every helper produces the exact instruction the official SDK (Python 2.63 / JS 2.51)
//!   produces, so `to_json` and the request body are byte-for-byte comparable and layer caches
//!   (keyed by step and file hashes) are shared with templates built by the official SDKs.
//! - A `Template` is plain data; hashing and file access happen only in `instructions_with_hashes`
//!   / the build (a `copy` only validates its path when called, as the official SDK does).
//! - Nothing is dropped: options the server cannot honour are sent and refused by it.

pub mod build;
pub mod dockerfile;
pub mod dockerignore;
pub mod files;

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};

pub use build::{
    BuildInfo, BuildOptions, BuildStatusReason, LogCallback, LogEntry, LogEntryKind, LogLevel, TemplateBuildStatus,
    TemplateBuildStatusResponse, TemplateTag, TemplateTagInfo,
};

/// Default for `copy(resolve_symlinks=…)`.
pub const RESOLVE_SYMLINKS: bool = false;
/// Default for `copy(gzip=…)`.
pub const GZIP: bool = true;
/// `from_base_image()` and a fresh template's base.
pub const DEFAULT_BASE_IMAGE: &str = "e2bdev/base";

/// Kind of one build step (`InstructionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum InstructionType {
    #[serde(rename = "COPY")]
    Copy,
    #[serde(rename = "ENV")]
    Env,
    #[serde(rename = "RUN")]
    Run,
    #[serde(rename = "WORKDIR")]
    Workdir,
    #[serde(rename = "USER")]
    User,
}

impl InstructionType {
    pub fn as_str(self) -> &'static str {
        match self {
            InstructionType::Copy => "COPY",
            InstructionType::Env => "ENV",
            InstructionType::Run => "RUN",
            InstructionType::Workdir => "WORKDIR",
            InstructionType::User => "USER",
        }
    }
}

/// One step as the builder records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Instruction {
    pub kind: InstructionType,
    pub args: Vec<String>,
    pub force: bool,
    pub force_upload: Option<bool>,
    pub resolve_symlinks: Option<bool>,
    pub gzip: Option<bool>,
}

/// One step of the build request (`TemplateStep`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Step {
    #[serde(rename = "type")]
    pub kind: InstructionType,
    pub args: Vec<String>,
    pub force: bool,
    #[serde(rename = "filesHash", skip_serializing_if = "Option::is_none")]
    pub files_hash: Option<String>,
    #[serde(rename = "forceUpload", skip_serializing_if = "Option::is_none")]
    pub force_upload: Option<bool>,
}

/// The body of `POST /v2/templates/{id}/builds/{buildID}` (`TemplateBuildStartV2`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TemplateBuildRequest {
    pub steps: Vec<Step>,
    pub force: bool,
    #[serde(rename = "fromImage", skip_serializing_if = "Option::is_none")]
    pub from_image: Option<String>,
    #[serde(rename = "fromTemplate", skip_serializing_if = "Option::is_none")]
    pub from_template: Option<String>,
    #[serde(rename = "fromImageRegistry", skip_serializing_if = "Option::is_none")]
    pub from_image_registry: Option<Value>,
    #[serde(rename = "startCmd", skip_serializing_if = "Option::is_none")]
    pub start_cmd: Option<String>,
    #[serde(rename = "readyCmd", skip_serializing_if = "Option::is_none")]
    pub ready_cmd: Option<String>,
}

/// A template definition (the official `TemplateBase` state).
#[derive(Debug, Clone)]
pub struct Template {
    base_image: Option<String>,
    base_template: Option<String>,
    registry_config: Option<Value>,
    start_cmd: Option<String>,
    ready_cmd: Option<String>,
    /// Rebuild every layer.
    force: bool,
    /// Rebuild this and every later layer.
    force_next_layer: bool,
    instructions: Vec<Instruction>,
    file_context_path: PathBuf,
    file_ignore_patterns: Vec<String>,
}

/// Python's `shlex.quote`.
pub fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c);
    if s.chars().all(safe) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

/// `0o755` → `"0755"`.
pub fn pad_octal(mode: u32) -> String {
    format!("{mode:04o}")
}

/// Ready commands (`wait_for_*`), the same shell snippets the official SDK sends.
pub mod readycmd {
    use super::shell_quote;

    pub fn wait_for_port(port: u32) -> String {
        format!("[ -n \"$(ss -Htuln sport = :{port})\" ]")
    }
    pub fn wait_for_url(url: &str, status_code: u32) -> String {
        format!("curl -s -o /dev/null -w \"%{{http_code}}\" {} | grep -q \"{status_code}\"", shell_quote(url))
    }
    pub fn wait_for_process(name: &str) -> String {
        format!("pgrep {} > /dev/null", shell_quote(name))
    }
    pub fn wait_for_file(filename: &str) -> String {
        format!("[ -f {} ]", shell_quote(filename))
    }
    /// `timeout_ms` in milliseconds, at least one second.
    pub fn wait_for_timeout(timeout_ms: u64) -> String {
        format!("sleep {}", (timeout_ms / 1000).max(1))
    }
}

impl Template {
    /// A template based on `e2bdev/base`; `copy` sources resolve against `file_context_path`.
    pub fn new(file_context_path: impl Into<PathBuf>, file_ignore_patterns: Vec<String>) -> Self {
        Template {
            base_image: Some(DEFAULT_BASE_IMAGE.into()),
            base_template: None,
            registry_config: None,
            start_cmd: None,
            ready_cmd: None,
            force: false,
            force_next_layer: false,
            instructions: Vec::new(),
            file_context_path: file_context_path.into(),
            file_ignore_patterns,
        }
    }

    pub fn file_context_path(&self) -> &std::path::Path {
        &self.file_context_path
    }
    pub fn instructions(&self) -> &[Instruction] {
        &self.instructions
    }
    pub fn base_image(&self) -> Option<&str> {
        self.base_image.as_deref()
    }
    pub fn base_template(&self) -> Option<&str> {
        self.base_template.as_deref()
    }
    pub fn start_cmd(&self) -> Option<&str> {
        self.start_cmd.as_deref()
    }
    pub fn ready_cmd(&self) -> Option<&str> {
        self.ready_cmd.as_deref()
    }
    /// `skip_cache=True` of a build: rebuild every layer.
    pub fn set_force(&mut self, force: bool) {
        self.force = force;
    }

    /// Skip the cache for every following layer (a `from_*` after this rebuilds all).
    pub fn skip_cache(&mut self) {
        self.force_next_layer = true;
    }

    fn on_from(&mut self) {
        if self.force_next_layer {
            self.force = true;
        }
    }

    pub fn from_image(&mut self, image: &str, username: Option<&str>, password: Option<&str>) -> Result<()> {
        if username.is_some() || password.is_some() {
            match (username, password) {
                (Some(u), Some(p)) if !u.is_empty() && !p.is_empty() => {
                    self.registry_config =
                        Some(serde_json::json!({"type": "registry", "username": u, "password": p}));
                }
                _ => {
                    return Err(Error::InvalidArgument(
                        "Both username and password are required when providing registry credentials".into(),
                    ));
                }
            }
        }
        self.base_image = Some(image.into());
        self.base_template = None;
        self.on_from();
        Ok(())
    }

    pub fn from_debian_image(&mut self, variant: Option<&str>) -> Result<()> {
        self.from_image(&format!("debian:{}", variant.unwrap_or("stable")), None, None)
    }
    pub fn from_ubuntu_image(&mut self, variant: Option<&str>) -> Result<()> {
        self.from_image(&format!("ubuntu:{}", variant.unwrap_or("latest")), None, None)
    }
    pub fn from_fedora_image(&mut self, variant: Option<&str>) -> Result<()> {
        self.from_image(&format!("fedora:{}", variant.unwrap_or("44")), None, None)
    }
    pub fn from_alpine_image(&mut self, variant: Option<&str>) -> Result<()> {
        self.from_image(&format!("alpine:{}", variant.unwrap_or("3.24")), None, None)
    }
    pub fn from_arch_image(&mut self, variant: Option<&str>) -> Result<()> {
        self.from_image(&format!("archlinux:{}", variant.unwrap_or("latest")), None, None)
    }
    pub fn from_python_image(&mut self, version: Option<&str>) -> Result<()> {
        self.from_image(&format!("python:{}", version.unwrap_or("3")), None, None)
    }
    pub fn from_node_image(&mut self, variant: Option<&str>) -> Result<()> {
        self.from_image(&format!("node:{}", variant.unwrap_or("lts")), None, None)
    }
    pub fn from_bun_image(&mut self, variant: Option<&str>) -> Result<()> {
        self.from_image(&format!("oven/bun:{}", variant.unwrap_or("latest")), None, None)
    }
    pub fn from_base_image(&mut self) -> Result<()> {
        self.from_image(DEFAULT_BASE_IMAGE, None, None)
    }

    pub fn from_template(&mut self, template: &str) {
        self.base_template = Some(template.into());
        self.base_image = None;
        self.on_from();
    }

    pub fn from_aws_registry(&mut self, image: &str, access_key_id: &str, secret_access_key: &str, region: &str) {
        self.base_image = Some(image.into());
        self.base_template = None;
        self.registry_config = Some(serde_json::json!({
            "type": "aws", "awsAccessKeyId": access_key_id,
            "awsSecretAccessKey": secret_access_key, "awsRegion": region,
        }));
        self.on_from();
    }

    /// `service_account_json`: a path relative to the context (a JSON string) or the JSON object.
    pub fn from_gcp_registry(&mut self, image: &str, service_account_json: &Value) -> Result<()> {
        let json = match service_account_json {
            Value::String(path) => std::fs::read_to_string(self.file_context_path.join(path))
                .map_err(|e| Error::Template(format!("cannot read {path}: {e}")))?,
            v => serde_json::to_string(v).unwrap_or_default(),
        };
        self.base_image = Some(image.into());
        self.base_template = None;
        self.registry_config = Some(serde_json::json!({"type": "gcp", "serviceAccountJson": json}));
        self.on_from();
        Ok(())
    }

    /// Parse a Dockerfile (content or a path to one) into this template's base and steps.
    pub fn from_dockerfile(&mut self, content_or_path: &str) -> Result<()> {
        let base = dockerfile::parse_dockerfile(content_or_path, self)?;
        self.base_image = Some(base);
        self.base_template = None;
        self.on_from();
        Ok(())
    }

    fn push(&mut self, kind: InstructionType, args: Vec<String>) {
        self.instructions.push(Instruction {
            kind,
            args,
            force: self.force_next_layer,
            force_upload: None,
            resolve_symlinks: None,
            gzip: None,
        });
    }

    /// One `COPY` per source; each source must stay inside the context.
    #[allow(clippy::too_many_arguments)]
    pub fn copy(
        &mut self,
        srcs: &[String],
        dest: &str,
        force_upload: Option<bool>,
        user: Option<&str>,
        mode: Option<u32>,
        resolve_symlinks: Option<bool>,
        gzip: Option<bool>,
    ) -> Result<()> {
        if force_upload == Some(false) {
            return Err(Error::InvalidArgument("force_upload must be True or None".into()));
        }
        for src in srcs {
            files::validate_relative_path(src)?;
        }
        for src in srcs {
            self.instructions.push(Instruction {
                kind: InstructionType::Copy,
                args: vec![src.clone(), dest.into(), user.unwrap_or("").into(), mode.map(pad_octal).unwrap_or_default()],
                force: force_upload.unwrap_or(false) || self.force_next_layer,
                force_upload,
                resolve_symlinks,
                gzip,
            });
        }
        Ok(())
    }

    /// `commands` joined with ` && `, run as `user` (the current one when unset).
    pub fn run_cmd(&mut self, commands: &[String], user: Option<&str>) {
        let mut args = vec![commands.join(" && ")];
        if let Some(u) = user.filter(|u| !u.is_empty()) {
            args.push(u.into());
        }
        self.push(InstructionType::Run, args);
    }

    fn run1(&mut self, cmd: String, user: Option<&str>) {
        self.run_cmd(&[cmd], user);
    }

    pub fn remove(&mut self, paths: &[String], force: bool, recursive: bool, user: Option<&str>) {
        let mut a = vec!["rm".to_string()];
        if recursive {
            a.push("-r".into());
        }
        if force {
            a.push("-f".into());
        }
        a.extend(paths.iter().map(|p| shell_quote(p)));
        self.run1(a.join(" "), user);
    }

    pub fn rename(&mut self, src: &str, dest: &str, force: bool, user: Option<&str>) {
        let mut a = vec!["mv".to_string(), shell_quote(src), shell_quote(dest)];
        if force {
            a.push("-f".into());
        }
        self.run1(a.join(" "), user);
    }

    pub fn make_dir(&mut self, paths: &[String], mode: Option<u32>, user: Option<&str>) {
        let mut a = vec!["mkdir".to_string(), "-p".into()];
        if let Some(m) = mode {
            a.push(format!("-m {}", pad_octal(m)));
        }
        a.extend(paths.iter().map(|p| shell_quote(p)));
        self.run1(a.join(" "), user);
    }

    pub fn make_symlink(&mut self, src: &str, dest: &str, user: Option<&str>, force: bool) {
        let mut a = vec!["ln".to_string(), "-s".into()];
        if force {
            a.push("-f".into());
        }
        a.push(shell_quote(src));
        a.push(shell_quote(dest));
        self.run1(a.join(" "), user);
    }

    pub fn set_workdir(&mut self, workdir: &str) {
        self.push(InstructionType::Workdir, vec![workdir.into()]);
    }

    pub fn set_user(&mut self, user: &str) {
        self.push(InstructionType::User, vec![user.into()]);
    }

    /// `g` (global, the default) installs as root; otherwise `--user`. No packages: `pip install .`.
    pub fn pip_install(&mut self, packages: Option<&[String]>, g: bool) {
        let mut a = vec!["pip".to_string(), "install".into()];
        if !g {
            a.push("--user".into());
        }
        match packages {
            Some(p) if !p.is_empty() => a.extend(p.iter().cloned()),
            _ => a.push(".".into()),
        }
        self.run1(a.join(" "), if g { Some("root") } else { None });
    }

    fn js_install(&mut self, tool: &str, dev_flag: &str, packages: Option<&[String]>, g: bool, dev: bool) {
        let mut a = vec![tool.to_string(), "install".into()];
        if g {
            a.push("-g".into());
        }
        if dev {
            a.push(dev_flag.into());
        }
        if let Some(p) = packages {
            a.extend(p.iter().cloned());
        }
        self.run1(a.join(" "), if g { Some("root") } else { None });
    }

    pub fn npm_install(&mut self, packages: Option<&[String]>, g: bool, dev: bool) {
        self.js_install("npm", "--save-dev", packages, g, dev);
    }

    pub fn bun_install(&mut self, packages: Option<&[String]>, g: bool, dev: bool) {
        self.js_install("bun", "--dev", packages, g, dev);
    }

    pub fn apt_install(&mut self, packages: &[String], no_install_recommends: bool, fix_missing: bool) {
        let install = format!(
            "DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes apt-get install -y {}{}{}",
            if no_install_recommends { "--no-install-recommends " } else { "" },
            if fix_missing { "--fix-missing " } else { "" },
            packages.join(" ")
        );
        self.run_cmd(&["apt-get update".into(), install], Some("root"));
    }

    pub fn add_mcp_server(&mut self, servers: &[String]) -> Result<()> {
        if self.base_template.as_deref() != Some("mcp-gateway") {
            return Err(Error::Build("MCP servers can only be added to mcp-gateway template".into()));
        }
        self.run1(format!("mcp-gateway pull {}", servers.join(" ")), Some("root"));
        Ok(())
    }

    pub fn git_clone(
        &mut self,
        url: &str,
        path: Option<&str>,
        branch: Option<&str>,
        depth: Option<u32>,
        user: Option<&str>,
    ) {
        let mut a = vec!["git".to_string(), "clone".into(), shell_quote(url)];
        if let Some(b) = branch.filter(|b| !b.is_empty()) {
            a.push(format!("--branch {}", shell_quote(b)));
            a.push("--single-branch".into());
        }
        if let Some(d) = depth.filter(|d| *d != 0) {
            a.push(format!("--depth {d}"));
        }
        if let Some(p) = path.filter(|p| !p.is_empty()) {
            a.push(shell_quote(p));
        }
        self.run1(a.join(" "), user);
    }

    fn devcontainer_only(&self) -> Result<()> {
        if self.base_template.as_deref() != Some("devcontainer") {
            return Err(Error::Build("Devcontainers can only used in the devcontainer template".into()));
        }
        Ok(())
    }

    pub fn beta_dev_container_prebuild(&mut self, dir: &str) -> Result<()> {
        self.devcontainer_only()?;
        self.run1(format!("devcontainer build --workspace-folder {}", shell_quote(dir)), Some("root"));
        Ok(())
    }

    pub fn beta_set_dev_container_start(&mut self, dir: &str) -> Result<()> {
        self.devcontainer_only()?;
        let d = shell_quote(dir);
        self.set_start_cmd(
            &format!(
                "sudo devcontainer up --workspace-folder {d} && sudo /prepare-exec.sh {d} | sudo tee /devcontainer.sh > /dev/null && sudo chmod +x /devcontainer.sh && sudo touch /devcontainer.up"
            ),
            &readycmd::wait_for_file("/devcontainer.up"),
        );
        Ok(())
    }

    /// Envs in the caller's order; an empty set adds no step.
    pub fn set_envs(&mut self, envs: &[(String, String)]) {
        if envs.is_empty() {
            return;
        }
        self.push(InstructionType::Env, envs.iter().flat_map(|(k, v)| [k.clone(), v.clone()]).collect());
    }

    pub fn set_start_cmd(&mut self, start_cmd: &str, ready_cmd: &str) {
        self.start_cmd = Some(start_cmd.into());
        self.ready_cmd = Some(ready_cmd.into());
    }

    pub fn set_ready_cmd(&mut self, ready_cmd: &str) {
        self.ready_cmd = Some(ready_cmd.into());
    }

    /// Ignore patterns in effect: the context's `.dockerignore`, then the template's own.
    pub fn ignore_patterns(&self) -> Vec<String> {
        let mut v = files::read_dockerignore(&self.file_context_path);
        v.extend(self.file_ignore_patterns.iter().cloned());
        v
    }

    /// The steps with each `COPY`'s files hash (reads the files).
    pub fn instructions_with_hashes(&self) -> Result<Vec<Step>> {
        let ignore = self.ignore_patterns();
        self.instructions
            .iter()
            .map(|i| {
                let files_hash = if i.kind == InstructionType::Copy {
                    let (src, dest) = match (i.args.first(), i.args.get(1)) {
                        (Some(s), Some(d)) => (s, d),
                        _ => return Err(Error::Template("Source path and destination path are required".into())),
                    };
                    Some(files::calculate_files_hash(
                        src,
                        dest,
                        &self.file_context_path,
                        &ignore,
                        i.resolve_symlinks.unwrap_or(RESOLVE_SYMLINKS),
                    )?)
                } else {
                    None
                };
                Ok(Step { kind: i.kind, args: i.args.clone(), force: i.force, files_hash, force_upload: i.force_upload })
            })
            .collect()
    }

    /// The build request for `steps`.
    pub fn serialize(&self, steps: Vec<Step>) -> TemplateBuildRequest {
        TemplateBuildRequest {
            steps,
            force: self.force,
            from_image: self.base_image.clone(),
            from_template: self.base_template.clone(),
            from_image_registry: self.registry_config.clone(),
            start_cmd: self.start_cmd.clone(),
            ready_cmd: self.ready_cmd.clone(),
        }
    }

    /// `Template.to_json`: the build request, hashes included, indented by two spaces.
    pub fn to_json(&self) -> Result<String> {
        let req = self.serialize(self.instructions_with_hashes()?);
        Ok(serde_json::to_string_pretty(&req).expect("a build request serializes"))
    }

    /// `Template.to_dockerfile`; a template based on another template has none.
    pub fn to_dockerfile(&self) -> Result<String> {
        if self.base_template.is_some() {
            return Err(Error::InvalidArgument(
                "Cannot convert template built from another template to Dockerfile. Templates based on other templates can only be built using the E2B API.".into(),
            ));
        }
        let Some(base) = &self.base_image else {
            return Err(Error::InvalidArgument("No base image specified for template".into()));
        };
        let mut out = format!("FROM {base}\n");
        for i in &self.instructions {
            match i.kind {
                InstructionType::Run => out.push_str(&format!("RUN {}\n", i.args[0])),
                InstructionType::Copy => out.push_str(&format!("COPY {} {}\n", i.args[0], i.args[1])),
                InstructionType::Env => {
                    let v: Vec<String> = i.args.chunks(2).map(|c| format!("{}={}", c[0], c.get(1).map_or("", |s| s))).collect();
                    out.push_str(&format!("ENV {}\n", v.join(" ")));
                }
                k => out.push_str(&format!("{} {}\n", k.as_str(), i.args.join(" "))),
            }
        }
        if let Some(s) = &self.start_cmd {
            out.push_str(&format!("ENTRYPOINT {s}\n"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_like_python() {
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("/usr/bin/x"), "/usr/bin/x");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\"'\"'s'");
    }

    #[test]
    fn ready_cmds() {
        assert_eq!(readycmd::wait_for_port(8000), "[ -n \"$(ss -Htuln sport = :8000)\" ]");
        assert_eq!(readycmd::wait_for_timeout(500), "sleep 1");
        assert_eq!(readycmd::wait_for_timeout(20_000), "sleep 20");
    }

    #[test]
    fn copy_outside_context_is_refused() {
        let mut t = Template::new("/tmp", vec![]);
        assert_eq!(t.copy(&["../x".into()], "/x", None, None, None, None, None).unwrap_err().kind(), crate::ErrorKind::Template);
        assert!(t.instructions().is_empty());
    }
}
