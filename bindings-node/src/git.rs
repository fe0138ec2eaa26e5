//! `sandbox.git`: E2B's git helpers. Each method forwards its arguments, as JSON, to the
//! core's `Git::call`, which builds, runs and parses the git commands (and classifies failures
//! as `GitAuthError` / `GitUpstreamError`); this file only declares the JS types.

use std::collections::HashMap;

use napi::Either;
use napi::bindgen_prelude::Result;
use napi_derive::napi;
use serde_json::{Value, json};

use crate::commands::CommandResult;
use crate::error::JsResult;

/// Declare a git options struct with E2B's `GitRequestOpts` fields appended. Docs as
/// `#[doc = "..."]` and literal `Option<..>` fields, as `with_connection_opts!` explains.
macro_rules! git_opts {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : Option<$ty:ty>,)* }) => {
        $(#[$meta])*
        #[napi_derive::napi(object, object_to_js = false)]
        #[derive(Default, serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            $($(#[$fmeta])* #[serde(skip_serializing_if = "Option::is_none")] pub $field: Option<$ty>,)*
            #[doc = " Environment variables of the git command."]
            #[serde(skip_serializing_if = "Option::is_none")]
            pub envs: Option<HashMap<String, String>>,
            #[doc = " Linux user to run git as."]
            #[serde(skip_serializing_if = "Option::is_none")]
            pub user: Option<String>,
            #[doc = " Working directory of the git command."]
            #[serde(skip_serializing_if = "Option::is_none")]
            pub cwd: Option<String>,
            #[doc = " Bound on the git command in **milliseconds** (default 60 000; 0 means none)."]
            #[serde(skip_serializing_if = "Option::is_none")]
            pub timeout_ms: Option<f64>,
            #[doc = " Timeout of each request to the sandbox in **milliseconds**."]
            #[serde(skip_serializing_if = "Option::is_none")]
            pub request_timeout_ms: Option<f64>,
        }
    };
}

git_opts! {
    #[doc = " Options of every git call."]
    pub struct GitRequestOpts {}
}
git_opts! {
    #[doc = " Options of `git.clone`."]
    pub struct GitCloneOpts {
        #[doc = " Destination path."]
        pub path: Option<String>,
        #[doc = " Branch to check out (single-branch clone)."]
        pub branch: Option<String>,
        #[doc = " Shallow clone depth."]
        pub depth: Option<u32>,
        #[doc = " Username for HTTP(S) authentication."]
        pub username: Option<String>,
        #[doc = " Password or token for HTTP(S) authentication."]
        pub password: Option<String>,
        #[doc = " Keep the credentials in the cloned repository's remote URL."]
        pub dangerously_store_credentials: Option<bool>,
    }
}
git_opts! {
    #[doc = " Options of `git.init`."]
    pub struct GitInitOpts {
        #[doc = " Create a bare repository."]
        pub bare: Option<bool>,
        #[doc = " Name of the initial branch."]
        pub initial_branch: Option<String>,
    }
}
git_opts! {
    #[doc = " Options of `git.remoteAdd`."]
    pub struct GitRemoteAddOpts {
        #[doc = " Fetch the remote after adding it."]
        pub fetch: Option<bool>,
        #[doc = " Set the URL when the remote exists already."]
        pub overwrite: Option<bool>,
    }
}
git_opts! {
    #[doc = " Options of `git.commit`."]
    pub struct GitCommitOpts {
        #[doc = " Author name of this commit."]
        pub author_name: Option<String>,
        #[doc = " Author email of this commit."]
        pub author_email: Option<String>,
        #[doc = " Allow a commit with no changes."]
        pub allow_empty: Option<bool>,
    }
}
git_opts! {
    #[doc = " Options of `git.add`."]
    pub struct GitAddOpts {
        #[doc = " Files to stage (default: everything)."]
        pub files: Option<Vec<String>>,
        #[doc = " With no files: `git add -A` (default true) or `git add .`."]
        pub all: Option<bool>,
    }
}
git_opts! {
    #[doc = " Options of `git.reset`."]
    pub struct GitResetOpts {
        #[doc = " Reset mode."]
        #[napi(ts_type = "'soft' | 'mixed' | 'hard' | 'merge' | 'keep'")]
        pub mode: Option<String>,
        #[doc = " Commit, branch or ref to reset to."]
        pub target: Option<String>,
        #[doc = " Paths to reset."]
        pub paths: Option<Vec<String>>,
    }
}
git_opts! {
    #[doc = " Options of `git.restore`."]
    pub struct GitRestoreOpts {
        #[doc = " Paths to restore (required)."]
        pub paths: Option<Vec<String>>,
        #[doc = " Restore the index."]
        pub staged: Option<bool>,
        #[doc = " Restore the working tree."]
        pub worktree: Option<bool>,
        #[doc = " Commit or ref to restore from."]
        pub source: Option<String>,
    }
}
git_opts! {
    #[doc = " Options of `git.deleteBranch`."]
    pub struct GitDeleteBranchOpts {
        #[doc = " Delete even when not merged (`-D`)."]
        pub force: Option<bool>,
    }
}
git_opts! {
    #[doc = " Options of `git.push`."]
    pub struct GitPushOpts {
        #[doc = " Remote to push to."]
        pub remote: Option<String>,
        #[doc = " Branch to push."]
        pub branch: Option<String>,
        #[doc = " Set the upstream when a remote is known (default true)."]
        pub set_upstream: Option<bool>,
        #[doc = " Username for HTTP(S) authentication."]
        pub username: Option<String>,
        #[doc = " Password or token for HTTP(S) authentication."]
        pub password: Option<String>,
    }
}
git_opts! {
    #[doc = " Options of `git.pull`."]
    pub struct GitPullOpts {
        #[doc = " Remote to pull from."]
        pub remote: Option<String>,
        #[doc = " Branch to pull."]
        pub branch: Option<String>,
        #[doc = " Username for HTTP(S) authentication."]
        pub username: Option<String>,
        #[doc = " Password or token for HTTP(S) authentication."]
        pub password: Option<String>,
    }
}
git_opts! {
    #[doc = " Options of `git.setConfig`, `getConfig` and `configureUser`."]
    pub struct GitConfigOpts {
        #[doc = " Config scope (default `global`; `local` needs `path`)."]
        #[napi(ts_type = "'global' | 'local' | 'system'")]
        pub scope: Option<String>,
        #[doc = " Repository path for the local scope."]
        pub path: Option<String>,
    }
}
git_opts! {
    #[doc = " Options of `git.dangerouslyAuthenticate`."]
    pub struct GitDangerouslyAuthenticateOpts {
        #[doc = " Username (required)."]
        pub username: Option<String>,
        #[doc = " Password or token (required)."]
        pub password: Option<String>,
        #[doc = " Host of the credentials (default `github.com`)."]
        pub host: Option<String>,
        #[doc = " Protocol of the credentials (default `https`)."]
        pub protocol: Option<String>,
    }
}

/// One changed path of a git status.
#[napi(object, object_from_js = false)]
pub struct GitFileStatus {
    /// Path relative to the repository root.
    pub name: String,
    /// Normalized status.
    #[napi(ts_type = "'conflict' | 'renamed' | 'copied' | 'deleted' | 'added' | 'modified' | 'typechange' | 'untracked' | 'unknown'")]
    pub status: String,
    /// Index status character of the porcelain output.
    pub index_status: String,
    /// Working tree status character of the porcelain output.
    pub working_tree_status: String,
    /// Whether the change is staged.
    pub staged: bool,
    /// Original path of a renamed file.
    pub renamed_from: Option<String>,
}

/// Parsed git status of a repository.
#[napi(object, object_from_js = false)]
pub struct GitStatus {
    pub current_branch: Option<String>,
    pub upstream: Option<String>,
    pub ahead: u32,
    pub behind: u32,
    pub detached: bool,
    pub file_status: Vec<GitFileStatus>,
    pub is_clean: bool,
    pub has_changes: bool,
    pub has_staged: bool,
    pub has_untracked: bool,
    pub has_conflicts: bool,
    pub total_count: u32,
    pub staged_count: u32,
    pub unstaged_count: u32,
    pub untracked_count: u32,
    pub conflict_count: u32,
}

impl From<e2b::GitStatus> for GitStatus {
    fn from(s: e2b::GitStatus) -> Self {
        let n = |x: usize| x as u32;
        let staged = s.file_status.iter().filter(|f| f.staged).count();
        GitStatus {
            is_clean: s.is_clean(),
            has_changes: !s.is_clean(),
            has_staged: staged > 0,
            has_untracked: s.count("untracked") > 0,
            has_conflicts: s.count("conflict") > 0,
            total_count: n(s.file_status.len()),
            staged_count: n(staged),
            unstaged_count: n(s.file_status.len() - staged),
            untracked_count: n(s.count("untracked")),
            conflict_count: n(s.count("conflict")),
            current_branch: s.current_branch,
            upstream: s.upstream,
            ahead: s.ahead,
            behind: s.behind,
            detached: s.detached,
            file_status: s
                .file_status
                .into_iter()
                .map(|f| GitFileStatus {
                    name: f.name,
                    status: f.status,
                    index_status: f.index_status,
                    working_tree_status: f.working_tree_status,
                    staged: f.staged,
                    renamed_from: f.renamed_from,
                })
                .collect(),
        }
    }
}

/// Parsed branch list of a repository.
#[napi(object, object_from_js = false)]
pub struct GitBranches {
    pub branches: Vec<String>,
    pub current_branch: Option<String>,
}

/// Git operations in the sandbox (`sandbox.git`). Deprecated upstream in favour of
/// `sandbox.commands.run('git …')`, kept for code written against E2B's SDK.
#[napi]
pub struct Git {
    pub(crate) inner: e2b::Git,
}

fn opts<T: serde::Serialize>(o: Option<T>) -> Value {
    o.map(|o| serde_json::to_value(o).expect("json")).unwrap_or(Value::Null)
}

impl Git {
    async fn command(&self, method: &str, args: Value) -> Result<CommandResult> {
        match self.inner.call(method, args).await.js()? {
            e2b::git::GitValue::Command(r) => Ok(r.into()),
            other => unreachable!("git {method} returned {other:?}"),
        }
    }

    /// A string, or `undefined` (as E2B's SDK; napi would give `null` for `None`).
    async fn text(&self, method: &str, args: Value) -> Result<Either<String, ()>> {
        match self.inner.call(method, args).await.js()? {
            e2b::git::GitValue::Text(t) => Ok(t.map_or(Either::B(()), Either::A)),
            other => unreachable!("git {method} returned {other:?}"),
        }
    }
}

#[napi]
impl Git {
    /// Clone a repository.
    #[napi]
    pub async fn clone(&self, url: String, opts: Option<GitCloneOpts>) -> Result<CommandResult> {
        self.command("clone", json!({"url": url, "opts": self::opts(opts)})).await
    }

    /// Initialize a repository.
    #[napi]
    pub async fn init(&self, path: String, opts: Option<GitInitOpts>) -> Result<CommandResult> {
        self.command("init", json!({"path": path, "opts": self::opts(opts)})).await
    }

    /// Add (or with `overwrite`, update) a remote.
    #[napi]
    pub async fn remote_add(&self, path: String, name: String, url: String, opts: Option<GitRemoteAddOpts>) -> Result<CommandResult> {
        self.command("remote_add", json!({"path": path, "name": name, "url": url, "opts": self::opts(opts)})).await
    }

    /// The URL of a remote, `undefined` when there is no such remote.
    #[napi]
    pub async fn remote_get(&self, path: String, name: String, opts: Option<GitRequestOpts>) -> Result<Either<String, ()>> {
        self.text("remote_get", json!({"path": path, "name": name, "opts": self::opts(opts)})).await
    }

    /// Status of a repository.
    #[napi]
    pub async fn status(&self, path: String, opts: Option<GitRequestOpts>) -> Result<GitStatus> {
        match self.inner.call("status", json!({"path": path, "opts": self::opts(opts)})).await.js()? {
            e2b::git::GitValue::Status(s) => Ok(s.into()),
            other => unreachable!("git status returned {other:?}"),
        }
    }

    /// Branches of a repository.
    #[napi]
    pub async fn branches(&self, path: String, opts: Option<GitRequestOpts>) -> Result<GitBranches> {
        match self.inner.call("branches", json!({"path": path, "opts": self::opts(opts)})).await.js()? {
            e2b::git::GitValue::Branches(b) => Ok(GitBranches { branches: b.branches, current_branch: b.current_branch }),
            other => unreachable!("git branches returned {other:?}"),
        }
    }

    /// Create a branch and check it out.
    #[napi]
    pub async fn create_branch(&self, path: String, branch: String, opts: Option<GitRequestOpts>) -> Result<CommandResult> {
        self.command("create_branch", json!({"path": path, "branch": branch, "opts": self::opts(opts)})).await
    }

    /// Check out a branch.
    #[napi]
    pub async fn checkout_branch(&self, path: String, branch: String, opts: Option<GitRequestOpts>) -> Result<CommandResult> {
        self.command("checkout_branch", json!({"path": path, "branch": branch, "opts": self::opts(opts)})).await
    }

    /// Delete a branch.
    #[napi]
    pub async fn delete_branch(&self, path: String, branch: String, opts: Option<GitDeleteBranchOpts>) -> Result<CommandResult> {
        self.command("delete_branch", json!({"path": path, "branch": branch, "opts": self::opts(opts)})).await
    }

    /// Stage files.
    #[napi]
    pub async fn add(&self, path: String, opts: Option<GitAddOpts>) -> Result<CommandResult> {
        self.command("add", json!({"path": path, "opts": self::opts(opts)})).await
    }

    /// Create a commit.
    #[napi]
    pub async fn commit(&self, path: String, message: String, opts: Option<GitCommitOpts>) -> Result<CommandResult> {
        self.command("commit", json!({"path": path, "message": message, "opts": self::opts(opts)})).await
    }

    /// Reset the current HEAD.
    #[napi]
    pub async fn reset(&self, path: String, opts: Option<GitResetOpts>) -> Result<CommandResult> {
        self.command("reset", json!({"path": path, "opts": self::opts(opts)})).await
    }

    /// Restore working tree files or the index.
    #[napi]
    pub async fn restore(&self, path: String, opts: GitRestoreOpts) -> Result<CommandResult> {
        self.command("restore", json!({"path": path, "opts": self::opts(Some(opts))})).await
    }

    /// Push commits.
    #[napi]
    pub async fn push(&self, path: String, opts: Option<GitPushOpts>) -> Result<CommandResult> {
        self.command("push", json!({"path": path, "opts": self::opts(opts)})).await
    }

    /// Pull changes.
    #[napi]
    pub async fn pull(&self, path: String, opts: Option<GitPullOpts>) -> Result<CommandResult> {
        self.command("pull", json!({"path": path, "opts": self::opts(opts)})).await
    }

    /// Set a git config value.
    #[napi]
    pub async fn set_config(&self, key: String, value: String, opts: Option<GitConfigOpts>) -> Result<CommandResult> {
        self.command("set_config", json!({"key": key, "value": value, "opts": self::opts(opts)})).await
    }

    /// A git config value, `undefined` when it is not set.
    #[napi]
    pub async fn get_config(&self, key: String, opts: Option<GitConfigOpts>) -> Result<Either<String, ()>> {
        self.text("get_config", json!({"key": key, "opts": self::opts(opts)})).await
    }

    /// Store credentials with git's credential helper, globally.
    #[napi]
    pub async fn dangerously_authenticate(&self, opts: GitDangerouslyAuthenticateOpts) -> Result<CommandResult> {
        self.command("dangerously_authenticate", json!({"opts": self::opts(Some(opts))})).await
    }

    /// Set `user.name` and `user.email`.
    #[napi]
    pub async fn configure_user(&self, name: String, email: String, opts: Option<GitConfigOpts>) -> Result<CommandResult> {
        self.command("configure_user", json!({"name": name, "email": email, "opts": self::opts(opts)})).await
    }
}
