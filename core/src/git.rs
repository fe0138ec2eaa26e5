//! `sandbox.git`: E2B's git helpers, run as `git` commands in the sandbox through
//! [`Commands`], with E2B's argument building, output parsing and error classification.
//!
//! Invariants (as E2B's SDKs): every argument is shell-quoted; `GIT_TERMINAL_PROMPT=0` is set so
//! a missing credential fails instead of hanging; credentials given to `clone` are stripped
//! from the stored remote URL unless `dangerously_store_credentials`, and credentials given to
//! `push`/`pull` are put on the remote for that one call and removed again, even when it fails.
//! A failed command whose output says authentication failed is an [`Error::GitAuth`]; one that
//! says the branch has no upstream is an [`Error::GitUpstream`].
//!
//! Option structs deserialize from the bindings' camelCase objects (`timeoutMs`,
//! `requestTimeoutMs`, …), so each binding passes its caller's options through unchanged.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use crate::commands::{Commands, RunOptions};
use crate::error::{Error, Result};
use crate::models::CommandResult;

/// Options every git call takes (E2B's `GitRequestOpts`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GitRequestOpts {
    pub envs: HashMap<String, String>,
    pub user: Option<String>,
    pub cwd: Option<String>,
    /// Bound on the git command, ms (default: the command default, 60 s; 0 = none).
    pub timeout_ms: Option<f64>,
    /// Bound on each request to envd, ms.
    pub request_timeout_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GitCloneOpts {
    pub path: Option<String>,
    pub branch: Option<String>,
    pub depth: Option<u32>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub dangerously_store_credentials: bool,
    #[serde(flatten)]
    pub request: GitRequestOpts,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GitInitOpts {
    pub bare: bool,
    pub initial_branch: Option<String>,
    #[serde(flatten)]
    pub request: GitRequestOpts,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GitRemoteAddOpts {
    pub fetch: bool,
    pub overwrite: bool,
    #[serde(flatten)]
    pub request: GitRequestOpts,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GitAddOpts {
    pub files: Option<Vec<String>>,
    /// With no `files`: `git add -A` when true (the default), `git add .` otherwise.
    pub all: bool,
    #[serde(flatten)]
    pub request: GitRequestOpts,
}

impl Default for GitAddOpts {
    fn default() -> Self {
        Self { files: None, all: true, request: GitRequestOpts::default() }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GitCommitOpts {
    pub author_name: Option<String>,
    pub author_email: Option<String>,
    pub allow_empty: bool,
    #[serde(flatten)]
    pub request: GitRequestOpts,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GitResetOpts {
    /// `soft`, `mixed`, `hard`, `merge` or `keep`.
    pub mode: Option<String>,
    pub target: Option<String>,
    pub paths: Option<Vec<String>>,
    #[serde(flatten)]
    pub request: GitRequestOpts,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GitRestoreOpts {
    pub paths: Vec<String>,
    pub staged: Option<bool>,
    pub worktree: Option<bool>,
    pub source: Option<String>,
    #[serde(flatten)]
    pub request: GitRequestOpts,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GitDeleteBranchOpts {
    pub force: bool,
    #[serde(flatten)]
    pub request: GitRequestOpts,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GitPushOpts {
    pub remote: Option<String>,
    pub branch: Option<String>,
    /// `--set-upstream` when a remote is known (default true).
    pub set_upstream: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    #[serde(flatten)]
    pub request: GitRequestOpts,
}

impl Default for GitPushOpts {
    fn default() -> Self {
        Self { remote: None, branch: None, set_upstream: true, username: None, password: None, request: GitRequestOpts::default() }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GitPullOpts {
    pub remote: Option<String>,
    pub branch: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    #[serde(flatten)]
    pub request: GitRequestOpts,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GitConfigOpts {
    /// `global` (default), `local` (needs `path`) or `system`.
    pub scope: Option<String>,
    pub path: Option<String>,
    #[serde(flatten)]
    pub request: GitRequestOpts,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GitAuthenticateOpts {
    pub username: String,
    pub password: String,
    /// Default `github.com`.
    pub host: Option<String>,
    /// Default `https`.
    pub protocol: Option<String>,
    #[serde(flatten)]
    pub request: GitRequestOpts,
}

/// One changed path of `git status` (E2B's `GitFileStatus`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GitFileStatus {
    pub name: String,
    /// `conflict`, `renamed`, `copied`, `deleted`, `added`, `modified`, `typechange`,
    /// `untracked` or `unknown`.
    pub status: String,
    pub index_status: String,
    pub working_tree_status: String,
    pub staged: bool,
    pub renamed_from: Option<String>,
}

/// Parsed `git status --porcelain=1 -b` (E2B's `GitStatus`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GitStatus {
    pub current_branch: Option<String>,
    pub upstream: Option<String>,
    pub ahead: u32,
    pub behind: u32,
    pub detached: bool,
    pub file_status: Vec<GitFileStatus>,
}

impl GitStatus {
    pub fn is_clean(&self) -> bool {
        self.file_status.is_empty()
    }
    pub fn has_staged(&self) -> bool {
        self.file_status.iter().any(|f| f.staged)
    }
    pub fn count(&self, status: &str) -> usize {
        self.file_status.iter().filter(|f| f.status == status).count()
    }
}

/// Parsed branch list (E2B's `GitBranches`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GitBranches {
    pub branches: Vec<String>,
    pub current_branch: Option<String>,
}

const AUTH_SNIPPETS: &[&str] = &[
    "authentication failed",
    "terminal prompts disabled",
    "could not read username",
    "invalid username or password",
    "access denied",
    "permission denied",
    "not authorized",
];

const UPSTREAM_SNIPPETS: &[&str] = &[
    "has no upstream branch",
    "no upstream branch",
    "no upstream configured",
    "no tracking information for the current branch",
    "no tracking information",
    "set the remote as upstream",
    "set the upstream branch",
    "please specify which branch you want to merge with",
];

/// Git operations of one sandbox; cheap to clone.
#[derive(Debug, Clone)]
pub struct Git {
    commands: Commands,
}

fn invalid(msg: &str) -> Error {
    Error::InvalidArgument(msg.to_string())
}

fn ms(v: Option<f64>) -> Option<Duration> {
    v.filter(|x| x.is_finite() && *x >= 0.0).map(|x| Duration::from_secs_f64(x / 1000.0))
}

impl Git {
    pub fn new(commands: Commands) -> Self {
        Self { commands }
    }

    async fn shell(&self, cmd: &str, o: &GitRequestOpts) -> Result<CommandResult> {
        let mut envs = HashMap::from([("GIT_TERMINAL_PROMPT".to_string(), "0".to_string())]);
        envs.extend(o.envs.clone());
        let opts = RunOptions { envs, user: o.user.clone(), cwd: o.cwd.clone(), timeout: ms(o.timeout_ms), ..Default::default() };
        let commands = match ms(o.request_timeout_ms) {
            Some(t) => self.commands.with_request_timeout(Some(t)),
            None => self.commands.clone(),
        };
        commands.run(cmd, opts).await
    }

    async fn git(&self, args: &[String], repo: Option<&str>, o: &GitRequestOpts) -> Result<CommandResult> {
        self.shell(&git_command(args, repo), o).await
    }

    /// `git clone`; credentials go into the clone URL and, unless
    /// `dangerously_store_credentials`, are removed from `origin` afterwards.
    pub async fn clone(&self, url: &str, o: &GitCloneOpts) -> Result<CommandResult> {
        if o.password.is_some() && o.username.is_none() {
            return Err(invalid("Username is required when using a password or token for git clone."));
        }
        let clone_url = match (&o.username, &o.password) {
            (Some(u), Some(p)) => with_credentials(url, Some(u), Some(p))?,
            _ => url.to_string(),
        };
        let sanitized = strip_credentials(&clone_url);
        let strip = !o.dangerously_store_credentials && sanitized != clone_url;
        let repo_path = if strip { o.path.clone().or_else(|| repo_dir_from_url(url)) } else { o.path.clone() };
        if strip && repo_path.is_none() {
            return Err(invalid("A destination path is required when using credentials without storing them."));
        }
        let mut args = vec!["clone".to_string(), clone_url];
        if let Some(b) = &o.branch {
            args.extend(["--branch".into(), b.clone(), "--single-branch".into()]);
        }
        if let Some(d) = o.depth.filter(|d| *d > 0) {
            args.extend(["--depth".into(), d.to_string()]);
        }
        args.extend(o.path.clone());
        let result = self.git(&args, None, &o.request).await.map_err(|e| classify(e, "clone", o.username.is_some() && o.password.is_none()))?;
        if strip {
            let set = strs(&["remote", "set-url", "origin", &sanitized]);
            self.git(&set, repo_path.as_deref(), &o.request).await?;
        }
        Ok(result)
    }

    pub async fn init(&self, path: &str, o: &GitInitOpts) -> Result<CommandResult> {
        let mut args = strs(&["init"]);
        if let Some(b) = &o.initial_branch {
            args.extend(["--initial-branch".into(), b.clone()]);
        }
        if o.bare {
            args.push("--bare".into());
        }
        args.push(path.into());
        self.git(&args, None, &o.request).await
    }

    /// Adds a remote; with `overwrite`, an existing one gets the new URL.
    pub async fn remote_add(&self, path: &str, name: &str, url: &str, o: &GitRemoteAddOpts) -> Result<CommandResult> {
        if name.is_empty() || url.is_empty() {
            return Err(invalid("Both remote name and URL are required to add a git remote."));
        }
        let mut args = strs(&["remote", "add"]);
        if o.fetch {
            args.push("-f".into());
        }
        args.extend([name.to_string(), url.to_string()]);
        if !o.overwrite {
            return self.git(&args, Some(path), &o.request).await;
        }
        let add = git_command(&args, Some(path));
        let set = git_command(&strs(&["remote", "set-url", name, url]), Some(path));
        let mut cmd = format!("{add} || {set}");
        if o.fetch {
            cmd = format!("({cmd}) && {}", git_command(&strs(&["fetch", name]), Some(path)));
        }
        self.shell(&cmd, &o.request).await
    }

    /// The URL of remote `name`, `None` when there is no such remote.
    pub async fn remote_get(&self, path: &str, name: &str, o: &GitRequestOpts) -> Result<Option<String>> {
        if name.is_empty() {
            return Err(invalid("Remote name is required."));
        }
        let cmd = format!("{} || true", git_command(&strs(&["remote", "get-url", name]), Some(path)));
        let out = self.shell(&cmd, o).await?.stdout.trim().to_string();
        Ok((!out.is_empty()).then_some(out))
    }

    pub async fn status(&self, path: &str, o: &GitRequestOpts) -> Result<GitStatus> {
        let r = self.git(&strs(&["status", "--porcelain=1", "-b"]), Some(path), o).await?;
        Ok(parse_status(&r.stdout))
    }

    pub async fn branches(&self, path: &str, o: &GitRequestOpts) -> Result<GitBranches> {
        let r = self.git(&strs(&["branch", "--format=%(refname:short)\t%(HEAD)"]), Some(path), o).await?;
        Ok(parse_branches(&r.stdout))
    }

    pub async fn create_branch(&self, path: &str, branch: &str, o: &GitRequestOpts) -> Result<CommandResult> {
        self.git(&strs(&["checkout", "-b", branch]), Some(path), o).await
    }

    pub async fn checkout_branch(&self, path: &str, branch: &str, o: &GitRequestOpts) -> Result<CommandResult> {
        self.git(&strs(&["checkout", branch]), Some(path), o).await
    }

    pub async fn delete_branch(&self, path: &str, branch: &str, o: &GitDeleteBranchOpts) -> Result<CommandResult> {
        self.git(&strs(&["branch", if o.force { "-D" } else { "-d" }, branch]), Some(path), &o.request).await
    }

    pub async fn add(&self, path: &str, o: &GitAddOpts) -> Result<CommandResult> {
        let mut args = strs(&["add"]);
        match o.files.as_deref() {
            Some(files) if !files.is_empty() => {
                args.push("--".into());
                args.extend(files.iter().cloned());
            }
            _ => args.push(if o.all { "-A" } else { "." }.into()),
        }
        self.git(&args, Some(path), &o.request).await
    }

    pub async fn commit(&self, path: &str, message: &str, o: &GitCommitOpts) -> Result<CommandResult> {
        let mut args = Vec::new();
        if let Some(n) = o.author_name.as_deref().filter(|s| !s.is_empty()) {
            args.extend(["-c".into(), format!("user.name={n}")]);
        }
        if let Some(e) = o.author_email.as_deref().filter(|s| !s.is_empty()) {
            args.extend(["-c".into(), format!("user.email={e}")]);
        }
        args.extend(strs(&["commit", "-m", message]));
        if o.allow_empty {
            args.push("--allow-empty".into());
        }
        self.git(&args, Some(path), &o.request).await
    }

    pub async fn reset(&self, path: &str, o: &GitResetOpts) -> Result<CommandResult> {
        const MODES: [&str; 5] = ["soft", "mixed", "hard", "merge", "keep"];
        let mut args = strs(&["reset"]);
        if let Some(m) = o.mode.as_deref().filter(|m| !m.is_empty()) {
            if !MODES.contains(&m) {
                return Err(invalid(&format!("Reset mode must be one of {}.", MODES.join(", "))));
            }
            args.push(format!("--{m}"));
        }
        args.extend(o.target.clone());
        if let Some(paths) = o.paths.as_deref().filter(|p| !p.is_empty()) {
            args.push("--".into());
            args.extend(paths.iter().cloned());
        }
        self.git(&args, Some(path), &o.request).await
    }

    pub async fn restore(&self, path: &str, o: &GitRestoreOpts) -> Result<CommandResult> {
        if o.paths.is_empty() {
            return Err(invalid("At least one path is required."));
        }
        let (staged, worktree) = match (o.staged, o.worktree) {
            (None, None) => (None, Some(true)),
            (Some(true), None) => (Some(true), Some(false)),
            (None, Some(w)) => (Some(false), Some(w)),
            (s, w) => (s, w),
        };
        if staged == Some(false) && worktree == Some(false) {
            return Err(invalid("At least one of staged or worktree must be true."));
        }
        let mut args = strs(&["restore"]);
        if worktree == Some(true) {
            args.push("--worktree".into());
        }
        if staged == Some(true) {
            args.push("--staged".into());
        }
        if let Some(s) = &o.source {
            args.extend(["--source".into(), s.clone()]);
        }
        args.push("--".into());
        args.extend(o.paths.iter().cloned());
        self.git(&args, Some(path), &o.request).await
    }

    pub async fn push(&self, path: &str, o: &GitPushOpts) -> Result<CommandResult> {
        if o.password.is_some() && o.username.is_none() {
            return Err(invalid("Username is required when using a password or token for git push."));
        }
        let push_args = |remote_name: Option<&str>| {
            let mut args = strs(&["push"]);
            let target = remote_name.or(o.remote.as_deref());
            if o.set_upstream && target.is_some() {
                args.push("--set-upstream".into());
            }
            args.extend(target.map(str::to_string));
            args.extend(o.branch.clone());
            args
        };
        if let (Some(u), Some(p)) = (&o.username, &o.password) {
            let remote = self.resolve_remote(path, o.remote.as_deref(), &o.request).await?;
            let args = push_args(Some(&remote));
            return self.with_remote_credentials(path, &remote, u, p, &o.request, self.git(&args, Some(path), &o.request)).await;
        }
        let missing_password = o.username.is_some() && o.password.is_none();
        self.git(&push_args(None), Some(path), &o.request).await.map_err(|e| classify(e, "push", missing_password))
    }

    pub async fn pull(&self, path: &str, o: &GitPullOpts) -> Result<CommandResult> {
        if o.password.is_some() && o.username.is_none() {
            return Err(invalid("Username is required when using a password or token for git pull."));
        }
        if o.remote.is_none() && o.branch.is_none() && !self.has_upstream(path, &o.request).await {
            return Err(Error::GitUpstream(upstream_message("pull")));
        }
        let pull_args = |remote_name: Option<&str>| {
            let mut args = strs(&["pull"]);
            args.extend(remote_name.or(o.remote.as_deref()).map(str::to_string));
            args.extend(o.branch.clone());
            args
        };
        if let (Some(u), Some(p)) = (&o.username, &o.password) {
            let remote = self.resolve_remote(path, o.remote.as_deref(), &o.request).await?;
            let args = pull_args(Some(&remote));
            return self.with_remote_credentials(path, &remote, u, p, &o.request, self.git(&args, Some(path), &o.request)).await;
        }
        let missing_password = o.username.is_some() && o.password.is_none();
        self.git(&pull_args(None), Some(path), &o.request).await.map_err(|e| classify(e, "pull", missing_password))
    }

    pub async fn set_config(&self, key: &str, value: &str, o: &GitConfigOpts) -> Result<CommandResult> {
        if key.is_empty() {
            return Err(invalid("Git config key is required."));
        }
        let (flag, repo) = config_scope(o.scope.as_deref(), o.path.as_deref())?;
        self.git(&strs(&["config", flag, key, value]), repo, &o.request).await
    }

    /// The value of `key`, `None` when it is not set in that scope.
    pub async fn get_config(&self, key: &str, o: &GitConfigOpts) -> Result<Option<String>> {
        if key.is_empty() {
            return Err(invalid("Git config key is required."));
        }
        let (flag, repo) = config_scope(o.scope.as_deref(), o.path.as_deref())?;
        let cmd = format!("{} || true", git_command(&strs(&["config", flag, "--get", key]), repo));
        let out = self.shell(&cmd, &o.request).await?.stdout.trim().to_string();
        Ok((!out.is_empty()).then_some(out))
    }

    /// Stores the credentials with git's `store` helper for every later command (globally).
    pub async fn dangerously_authenticate(&self, o: &GitAuthenticateOpts) -> Result<CommandResult> {
        if o.username.is_empty() || o.password.is_empty() {
            return Err(invalid("Both username and password are required to authenticate git."));
        }
        let global = GitConfigOpts { scope: Some("global".into()), path: None, request: o.request.clone() };
        self.set_config("credential.helper", "store", &global).await?;
        let host = o.host.as_deref().map(str::trim).filter(|h| !h.is_empty()).unwrap_or("github.com");
        let protocol = o.protocol.as_deref().map(str::trim).filter(|p| !p.is_empty()).unwrap_or("https");
        let input = format!("protocol={protocol}\nhost={host}\nusername={}\npassword={}\n\n", o.username, o.password);
        let cmd = format!("printf %s {} | {}", shell_escape(&input), git_command(&strs(&["credential", "approve"]), None));
        self.shell(&cmd, &o.request).await
    }

    pub async fn configure_user(&self, name: &str, email: &str, o: &GitConfigOpts) -> Result<CommandResult> {
        if name.is_empty() || email.is_empty() {
            return Err(invalid("Both name and email are required."));
        }
        self.set_config("user.name", name, o).await?;
        self.set_config("user.email", email, o).await
    }

    async fn has_upstream(&self, path: &str, o: &GitRequestOpts) -> bool {
        let args = strs(&["rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{u}"]);
        self.git(&args, Some(path), o).await.is_ok_and(|r| !r.stdout.trim().is_empty())
    }

    async fn resolve_remote(&self, path: &str, remote: Option<&str>, o: &GitRequestOpts) -> Result<String> {
        if let Some(r) = remote.filter(|r| !r.is_empty()) {
            return Ok(r.to_string());
        }
        let out = self.git(&strs(&["remote"]), Some(path), o).await?.stdout;
        let remotes: Vec<&str> = out.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        match remotes[..] {
            [one] => Ok(one.to_string()),
            _ => Err(invalid("Remote is required when using username/password and the repository has multiple remotes.")),
        }
    }

    /// Runs `op` with the credentials on `remote`'s URL, then restores the URL whatever `op`
    /// did (its error first, then the restore's).
    async fn with_remote_credentials(
        &self,
        path: &str,
        remote: &str,
        username: &str,
        password: &str,
        o: &GitRequestOpts,
        op: impl std::future::Future<Output = Result<CommandResult>>,
    ) -> Result<CommandResult> {
        let out = self.git(&strs(&["remote", "get-url", remote]), Some(path), o).await?.stdout.trim().to_string();
        if out.is_empty() {
            return Err(invalid(&format!("Remote \"{remote}\" URL not found in repository.")));
        }
        let with = with_credentials(&out, Some(username), Some(password))?;
        self.git(&strs(&["remote", "set-url", remote, &with]), Some(path), o).await?;
        let result = op.await;
        let restored = self.git(&strs(&["remote", "set-url", remote, &out]), Some(path), o).await;
        let result = result?;
        restored?;
        Ok(result)
    }
}

/// What a git call returns, for the bindings' [`Git::call`].
#[derive(Debug, Clone)]
pub enum GitValue {
    Command(CommandResult),
    Status(GitStatus),
    Branches(GitBranches),
    Text(Option<String>),
}

/// The arguments of one [`Git::call`]: the method's positional parameters by name, and its
/// options object (camelCase, as the JS SDK names them) under `opts`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CallArgs {
    url: String,
    path: String,
    name: String,
    branch: String,
    message: String,
    key: String,
    value: String,
    email: String,
    opts: serde_json::Value,
}

impl Git {
    /// One git method by its E2B (snake_case) name, for the bindings: they pass the caller's
    /// arguments as JSON instead of wrapping every method and option type twice.
    pub async fn call(&self, method: &str, args: serde_json::Value) -> Result<GitValue> {
        fn opts<T: serde::de::DeserializeOwned + Default>(v: serde_json::Value) -> Result<T> {
            if v.is_null() {
                return Ok(T::default());
            }
            serde_json::from_value(v).map_err(|e| Error::InvalidArgument(format!("invalid git options: {e}")))
        }
        let a: CallArgs = serde_json::from_value(args).map_err(|e| Error::InvalidArgument(format!("invalid git arguments: {e}")))?;
        let c = GitValue::Command;
        Ok(match method {
            "clone" => c(self.clone(&a.url, &opts(a.opts)?).await?),
            "init" => c(self.init(&a.path, &opts(a.opts)?).await?),
            "remote_add" => c(self.remote_add(&a.path, &a.name, &a.url, &opts(a.opts)?).await?),
            "remote_get" => GitValue::Text(self.remote_get(&a.path, &a.name, &opts(a.opts)?).await?),
            "status" => GitValue::Status(self.status(&a.path, &opts(a.opts)?).await?),
            "branches" => GitValue::Branches(self.branches(&a.path, &opts(a.opts)?).await?),
            "create_branch" => c(self.create_branch(&a.path, &a.branch, &opts(a.opts)?).await?),
            "checkout_branch" => c(self.checkout_branch(&a.path, &a.branch, &opts(a.opts)?).await?),
            "delete_branch" => c(self.delete_branch(&a.path, &a.branch, &opts(a.opts)?).await?),
            "add" => c(self.add(&a.path, &opts(a.opts)?).await?),
            "commit" => c(self.commit(&a.path, &a.message, &opts(a.opts)?).await?),
            "reset" => c(self.reset(&a.path, &opts(a.opts)?).await?),
            "restore" => c(self.restore(&a.path, &opts(a.opts)?).await?),
            "push" => c(self.push(&a.path, &opts(a.opts)?).await?),
            "pull" => c(self.pull(&a.path, &opts(a.opts)?).await?),
            "set_config" => c(self.set_config(&a.key, &a.value, &opts(a.opts)?).await?),
            "get_config" => GitValue::Text(self.get_config(&a.key, &opts(a.opts)?).await?),
            "dangerously_authenticate" => c(self.dangerously_authenticate(&opts(a.opts)?).await?),
            "configure_user" => c(self.configure_user(&a.name, &a.email, &opts(a.opts)?).await?),
            other => return Err(Error::InvalidArgument(format!("unknown git method {other:?}"))),
        })
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn classify(e: Error, action: &str, missing_password: bool) -> Error {
    let Error::CommandExit { stdout, stderr, .. } = &e else { return e };
    let text = format!("{stderr}\n{stdout}").to_lowercase();
    if AUTH_SNIPPETS.iter().any(|s| text.contains(s)) {
        let what = if missing_password { "a password/token" } else { "credentials" };
        return Error::GitAuth(format!("Git {action} requires {what} for private repositories."));
    }
    if action != "clone" && UPSTREAM_SNIPPETS.iter().any(|s| text.contains(s)) {
        return Error::GitUpstream(upstream_message(action));
    }
    e
}

fn upstream_message(action: &str) -> String {
    if action == "push" {
        "Git push failed because no upstream branch is configured. Set upstream once with set_upstream=True \
         (and optional remote/branch), or pass remote and branch explicitly."
            .into()
    } else {
        "Git pull failed because no upstream branch is configured. Pass remote and branch explicitly, or set \
         upstream once (push with set_upstream=True or run: git branch --set-upstream-to=origin/<branch> <branch>)."
            .into()
    }
}

fn config_scope<'a>(scope: Option<&str>, path: Option<&'a str>) -> Result<(&'static str, Option<&'a str>)> {
    match scope.unwrap_or("global").trim().to_lowercase().as_str() {
        "global" => Ok(("--global", None)),
        "system" => Ok(("--system", None)),
        "local" => match path.filter(|p| !p.is_empty()) {
            Some(p) => Ok(("--local", Some(p))),
            None => Err(invalid("Repository path is required when scope is local.")),
        },
        _ => Err(invalid("Git config scope must be one of: global, local, system.")),
    }
}

/// `'…'` quoting for `bash -c`.
pub fn shell_escape(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

fn git_command(args: &[String], repo: Option<&str>) -> String {
    let mut parts = vec!["git".to_string()];
    if let Some(r) = repo.filter(|r| !r.is_empty()) {
        parts.extend(["-C".into(), r.to_string()]);
    }
    parts.extend(args.iter().cloned());
    parts.iter().map(|p| shell_escape(p)).collect::<Vec<_>>().join(" ")
}

/// `scheme://netloc/path…` split as Python's `urlparse` does (scheme lowercased).
fn split_url(url: &str) -> Option<(String, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    Some((scheme.to_ascii_lowercase(), &rest[..end], &rest[end..]))
}

fn is_http(scheme: &str) -> bool {
    scheme == "http" || scheme == "https"
}

fn with_credentials(url: &str, username: Option<&str>, password: Option<&str>) -> Result<String> {
    let (u, p) = match (username.filter(|s| !s.is_empty()), password.filter(|s| !s.is_empty())) {
        (None, None) => return Ok(url.to_string()),
        (Some(u), Some(p)) => (u, p),
        _ => return Err(invalid("Both username and password are required when using Git credentials.")),
    };
    match split_url(url) {
        Some((scheme, netloc, rest)) if is_http(&scheme) => {
            let original_scheme = &url[..url.find("://").unwrap_or(0)];
            Ok(format!("{original_scheme}://{u}:{p}@{netloc}{rest}"))
        }
        _ => Err(invalid("Only http(s) Git URLs support username/password credentials.")),
    }
}

fn strip_credentials(url: &str) -> String {
    match split_url(url) {
        Some((scheme, netloc, rest)) if is_http(&scheme) && netloc.contains('@') => {
            let host = netloc.rsplit_once('@').map_or(netloc, |(_, h)| h).to_lowercase();
            let original_scheme = &url[..url.find("://").unwrap_or(0)];
            format!("{original_scheme}://{host}{rest}")
        }
        _ => url.to_string(),
    }
}

fn repo_dir_from_url(url: &str) -> Option<String> {
    let (scheme, _, rest) = split_url(url)?;
    if !is_http(&scheme) {
        return None;
    }
    let path = rest.split(['?', '#']).next().unwrap_or("").trim_end_matches('/');
    let last = path.rsplit('/').next().filter(|s| !s.is_empty())?;
    Some(last.strip_suffix(".git").unwrap_or(last).to_string())
}

fn status_label(index: char, work: char) -> &'static str {
    let has = |c| index == c || work == c;
    [('U', "conflict"), ('R', "renamed"), ('C', "copied"), ('D', "deleted"), ('A', "added"), ('M', "modified"), ('T', "typechange"), ('?', "untracked")]
        .into_iter()
        .find(|(c, _)| has(*c))
        .map_or("unknown", |(_, l)| l)
}

fn ahead_behind(segment: &str) -> (u32, u32) {
    let num = |key: &str| {
        segment
            .split_once(key)
            .and_then(|(_, rest)| rest.split(',').next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    };
    (num("ahead"), num("behind"))
}

/// Parses `git status --porcelain=1 -b`.
pub fn parse_status(output: &str) -> GitStatus {
    let lines: Vec<&str> = output.split('\n').map(str::trim_end).filter(|l| !l.trim().is_empty()).collect();
    let mut st = GitStatus::default();
    let Some(first) = lines.first() else { return st };
    if let Some(info) = first.strip_prefix("## ") {
        let (branch_part, ahead_part) = match info.find(" [") {
            Some(i) => (&info[..i], Some(info[i + 2..].trim_end_matches(']'))),
            None => (info, None),
        };
        let normalized = match branch_part.strip_prefix("HEAD (detached at ") {
            Some(rest) => rest.trim_end_matches(')').to_string(),
            None => branch_part
                .replace("HEAD (no branch)", "HEAD")
                .replace("No commits yet on ", "")
                .replace("Initial commit on ", ""),
        };
        if branch_part.starts_with("HEAD (detached at ") || branch_part.contains("detached") || normalized.starts_with("HEAD") {
            st.detached = true;
        } else if let Some((b, up)) = normalized.split_once("...") {
            st.current_branch = (!b.is_empty()).then(|| b.to_string());
            st.upstream = (!up.is_empty()).then(|| up.to_string());
        } else {
            st.current_branch = (!normalized.is_empty()).then_some(normalized);
        }
        (st.ahead, st.behind) = ahead_part.map_or((0, 0), ahead_behind);
    }
    for line in &lines[1..] {
        if let Some(name) = line.strip_prefix("?? ") {
            st.file_status.push(GitFileStatus {
                name: name.to_string(),
                status: "untracked".into(),
                index_status: "?".into(),
                working_tree_status: "?".into(),
                staged: false,
                renamed_from: None,
            });
            continue;
        }
        let mut chars = line.chars();
        let (Some(index), Some(work)) = (chars.next(), chars.next()) else { continue };
        let Some(path) = line.get(3..).filter(|_| line.len() >= 3) else { continue };
        let (renamed_from, name) = match path.split_once(" -> ") {
            Some((from, to)) => (Some(from.to_string()), to.to_string()),
            None => (None, path.to_string()),
        };
        st.file_status.push(GitFileStatus {
            name,
            status: status_label(index, work).into(),
            index_status: index.to_string(),
            working_tree_status: work.to_string(),
            staged: index != ' ' && index != '?',
            renamed_from,
        });
    }
    st
}

/// Parses `git branch --format=%(refname:short)\t%(HEAD)`.
pub fn parse_branches(output: &str) -> GitBranches {
    let mut out = GitBranches::default();
    for line in output.split('\n').map(str::trim).filter(|l| !l.is_empty()) {
        let mut parts = line.split('\t');
        let name = parts.next().unwrap_or_default().to_string();
        if parts.next() == Some("*") {
            out.current_branch = Some(name.clone());
        }
        out.branches.push(name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_with_upstream_rename_and_untracked() {
        let out = "## main...origin/main [ahead 2, behind 1]\nR  old.txt -> new.txt\n M changed.txt\nUU both.txt\n?? fresh.txt\n";
        let s = parse_status(out);
        assert_eq!(s.current_branch.as_deref(), Some("main"));
        assert_eq!(s.upstream.as_deref(), Some("origin/main"));
        assert_eq!((s.ahead, s.behind, s.detached), (2, 1, false));
        let names: Vec<_> = s.file_status.iter().map(|f| (f.name.as_str(), f.status.as_str(), f.staged)).collect();
        assert_eq!(
            names,
            [("new.txt", "renamed", true), ("changed.txt", "modified", false), ("both.txt", "conflict", true), ("fresh.txt", "untracked", false)]
        );
        assert_eq!(s.file_status[0].renamed_from.as_deref(), Some("old.txt"));
        assert_eq!(s.count("untracked"), 1);
        assert!(s.has_staged() && !s.is_clean());
    }

    #[test]
    fn status_of_new_and_detached_repos() {
        let s = parse_status("## No commits yet on main\n");
        assert_eq!(s.current_branch.as_deref(), Some("main"));
        assert!(s.is_clean());
        let s = parse_status("## HEAD (no branch)\n");
        assert!(s.detached && s.current_branch.is_none());
        assert_eq!(parse_status(""), GitStatus::default());
    }

    #[test]
    fn branches_mark_the_current_one() {
        let b = parse_branches("feature\t \nmain\t*\n");
        assert_eq!(b.branches, ["feature", "main"]);
        assert_eq!(b.current_branch.as_deref(), Some("main"));
    }

    #[test]
    fn credentials_in_and_out_of_urls() {
        assert_eq!(with_credentials("https://github.com/o/r.git", Some("u"), Some("t")).unwrap(), "https://u:t@github.com/o/r.git");
        assert!(with_credentials("git@github.com:o/r.git", Some("u"), Some("t")).is_err());
        assert!(with_credentials("https://x/r", Some("u"), None).is_err());
        assert_eq!(strip_credentials("https://u:t@GitHub.com:8443/o/r.git"), "https://github.com:8443/o/r.git");
        assert_eq!(strip_credentials("https://github.com/o/r.git"), "https://github.com/o/r.git");
        assert_eq!(repo_dir_from_url("https://github.com/o/repo.git/"), Some("repo".into()));
        assert_eq!(repo_dir_from_url("file:///srv/repo.git"), None);
    }

    #[test]
    fn commands_are_quoted() {
        let c = git_command(&strs(&["commit", "-m", "it's done"]), Some("/a b"));
        assert_eq!(c, r#"'git' '-C' '/a b' 'commit' '-m' 'it'"'"'s done'"#);
    }

    #[test]
    fn failures_are_classified() {
        let exit = |stderr: &str| Error::CommandExit { stdout: String::new(), stderr: stderr.into(), exit_code: 128, error: None };
        let e = classify(exit("fatal: could not read Username for 'https://x': terminal prompts disabled"), "clone", false);
        assert!(matches!(e, Error::GitAuth(ref m) if m == "Git clone requires credentials for private repositories."), "{e:?}");
        let e = classify(exit("fatal: The current branch b has no upstream branch."), "push", false);
        assert!(matches!(e, Error::GitUpstream(_)));
        assert!(matches!(classify(exit("fatal: boom"), "push", false), Error::CommandExit { .. }));
    }

    #[test]
    fn options_take_the_bindings_camel_case() {
        let o: GitPushOpts = serde_json::from_str(r#"{"remote":"origin","timeoutMs":5000,"envs":{"A":"1"}}"#).unwrap();
        assert!(o.set_upstream, "setUpstream defaults to true");
        assert_eq!(o.request.timeout_ms, Some(5000.0));
        let a: GitAddOpts = serde_json::from_str("{}").unwrap();
        assert!(a.all);
    }
}
