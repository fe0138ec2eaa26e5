//! `sandbox.commands`: run commands (foreground or background), list, kill, and write to stdin.
//!
//! A foreground `run` resolves to the `CommandResult`; a non-zero exit rejects with the core's
//! command-exit error, which the JS facade turns into `CommandExitError`. With
//! `background: true`, `run` resolves to a `CommandHandle` (`pid`, `wait`, `kill`, ...).
//! `onStdout`/`onStderr` become core output callbacks through thread-safe functions.

use std::collections::HashMap;
use std::sync::Arc;

use napi::Either;
use napi::Status;
use napi::bindgen_prelude::{Result, Uint8Array};
use napi::threadsafe_function::{
    ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue,
};
use napi_derive::napi;

use crate::config::opt_ms;
use crate::error::JsResult;

/// A JS output callback `(data: string) => void`, callable from any thread.
type OutputFn = ThreadsafeFunction<String, UnknownReturnValue, String, Status, false>;

fn output_callback(f: OutputFn) -> e2b::OutputCallback {
    let f = Arc::new(f);
    Arc::new(move |chunk: String| {
        f.call(chunk, ThreadsafeFunctionCallMode::NonBlocking);
    })
}

/// Options of `commands.run`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct CommandStartOpts {
    /// Return a `CommandHandle` at once instead of waiting for the command to finish.
    pub background: Option<bool>,
    /// Working directory of the command.
    pub cwd: Option<String>,
    /// Linux user to run the command as.
    pub user: Option<String>,
    /// Environment variables of the command.
    pub envs: Option<HashMap<String, String>>,
    /// Called with each chunk of standard output.
    #[napi(ts_type = "(data: string) => void | Promise<void>")]
    pub on_stdout: Option<OutputFn>,
    /// Called with each chunk of standard error.
    #[napi(ts_type = "(data: string) => void | Promise<void>")]
    pub on_stderr: Option<OutputFn>,
    /// Keep stdin open for `sendStdin` (default false).
    pub stdin: Option<bool>,
    /// Bound on the whole command in **milliseconds** (default 60 000; 0 means none).
    pub timeout_ms: Option<f64>,
    /// Tag of the process, usable to find it in `list`.
    pub tag: Option<String>,
    /// Timeout of the request starting the command, in **milliseconds** (0 disables it).
    pub request_timeout_ms: Option<f64>,
    /// Not supported by this SDK yet: refused with `InvalidArgumentError` (index.js).
    #[napi(ts_type = "unknown")]
    pub signal: Option<serde_json::Value>,
}

impl CommandStartOpts {
    fn into_core(self) -> (bool, Option<std::time::Duration>, e2b::RunOptions) {
        let run = e2b::RunOptions {
            envs: self.envs.unwrap_or_default(),
            user: self.user,
            cwd: self.cwd,
            timeout: opt_ms(self.timeout_ms),
            stdin: self.stdin,
            tag: self.tag,
            on_stdout: self.on_stdout.map(output_callback),
            on_stderr: self.on_stderr.map(output_callback),
            ..Default::default()
        };
        (self.background.unwrap_or(false), opt_ms(self.request_timeout_ms), run)
    }
}

/// Options of the short process calls (`list`, `kill`, `sendStdin`, `closeStdin`).
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct CommandRequestOpts {
    /// Timeout of the request in **milliseconds** (0 disables it).
    pub request_timeout_ms: Option<f64>,
    /// Not supported by this SDK yet: refused with `InvalidArgumentError` (index.js).
    #[napi(ts_type = "unknown")]
    pub signal: Option<serde_json::Value>,
}

pub(crate) fn request_timeout(opts: &Option<CommandRequestOpts>) -> Option<std::time::Duration> {
    opts.as_ref().and_then(|o| opt_ms(o.request_timeout_ms))
}

/// Result of a finished command.
#[napi(object, object_from_js = false)]
pub struct CommandResult {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit code; 0 on success.
    pub exit_code: i32,
    /// Error message of the command execution, if it failed.
    pub error: Option<String>,
}

impl From<e2b::CommandResult> for CommandResult {
    fn from(r: e2b::CommandResult) -> Self {
        CommandResult {
            stdout: r.stdout,
            stderr: r.stderr,
            exit_code: r.exit_code,
            error: r.error,
        }
    }
}

/// A process running in the sandbox.
#[napi(object, object_from_js = false)]
pub struct ProcessInfo {
    /// Process ID.
    pub pid: u32,
    /// Tag given at start.
    pub tag: Option<String>,
    /// Command (executable).
    pub cmd: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Environment variables given at start.
    pub envs: HashMap<String, String>,
    /// Working directory.
    pub cwd: Option<String>,
}

impl From<e2b::ProcessInfo> for ProcessInfo {
    fn from(p: e2b::ProcessInfo) -> Self {
        ProcessInfo {
            pid: p.pid,
            tag: p.tag,
            cmd: p.cmd,
            args: p.args,
            envs: p.envs,
            cwd: p.cwd,
        }
    }
}

fn stdin_bytes(data: Either<String, Uint8Array>) -> Vec<u8> {
    match data {
        Either::A(s) => s.into_bytes(),
        Either::B(b) => b.to_vec(),
    }
}

/// Commands of a sandbox (`sandbox.commands`).
#[napi]
pub struct Commands {
    inner: e2b::Commands,
}

impl From<e2b::Commands> for Commands {
    fn from(inner: e2b::Commands) -> Self {
        Commands { inner }
    }
}

#[napi]
impl Commands {
    /// Whether `closeStdin` is available (always, with this SDK's envd).
    #[napi(getter)]
    pub fn supports_stdin_close(&self) -> bool {
        true
    }

    /// Run `cmd` with `/bin/bash -l -c`. Resolves to the result once it exits (a non-zero exit
    /// rejects with `CommandExitError`), or at once to a `CommandHandle` with `background: true`.
    #[napi(ts_return_type = "Promise<CommandResult | CommandHandle>")]
    pub async fn run(
        &self,
        cmd: String,
        opts: Option<CommandStartOpts>,
    ) -> Result<Either<CommandResult, CommandHandle>> {
        let (background, request_timeout, run) = opts.unwrap_or_default().into_core();
        let commands = self.inner.with_request_timeout(request_timeout);
        if background {
            let handle = commands.run_background(&cmd, run).await.js()?;
            Ok(Either::B(CommandHandle {
                inner: handle,
                commands: self.inner.clone(),
            }))
        } else {
            commands
                .run(&cmd, run)
                .await
                .js()
                .map(|r| Either::A(r.into()))
        }
    }

    /// Attach to a running process by PID.
    #[napi]
    pub async fn connect(&self, pid: u32, opts: Option<CommandStartOpts>) -> Result<CommandHandle> {
        let (_, request_timeout, run) = opts.unwrap_or_default().into_core();
        let handle = self.inner.with_request_timeout(request_timeout).connect(pid, run).await.js()?;
        Ok(CommandHandle {
            inner: handle,
            commands: self.inner.clone(),
        })
    }

    /// Processes running in the sandbox.
    #[napi]
    pub async fn list(&self, opts: Option<CommandRequestOpts>) -> Result<Vec<ProcessInfo>> {
        Ok(self
            .inner
            .with_request_timeout(request_timeout(&opts))
            .list()
            .await
            .js()?
            .into_iter()
            .map(ProcessInfo::from)
            .collect())
    }

    /// Kill a process with SIGKILL: `true` if killed, `false` if it was not found.
    #[napi]
    pub async fn kill(&self, pid: u32, opts: Option<CommandRequestOpts>) -> Result<bool> {
        self.inner.with_request_timeout(request_timeout(&opts)).kill(pid).await.js()
    }

    /// Write to the stdin of a process started with `stdin: true`.
    #[napi]
    pub async fn send_stdin(&self, pid: u32, data: Either<String, Uint8Array>, opts: Option<CommandRequestOpts>) -> Result<()> {
        let c = self.inner.with_request_timeout(request_timeout(&opts));
        c.send_stdin(pid, stdin_bytes(data)).await.js()
    }

    /// Close the stdin of a process (EOF).
    #[napi]
    pub async fn close_stdin(&self, pid: u32, opts: Option<CommandRequestOpts>) -> Result<()> {
        self.inner.with_request_timeout(request_timeout(&opts)).close_stdin(pid).await.js()
    }
}

/// A command running in the background (from `run(cmd, { background: true })` or `connect`).
#[napi]
pub struct CommandHandle {
    pub(crate) inner: e2b::CommandHandle,
    pub(crate) commands: e2b::Commands,
}

#[napi]
impl CommandHandle {
    /// Process ID of the command.
    #[napi(getter)]
    pub fn pid(&self) -> u32 {
        self.inner.pid()
    }

    /// Standard output received so far.
    #[napi(getter)]
    pub fn stdout(&self) -> String {
        self.inner.stdout()
    }

    /// Standard error received so far.
    #[napi(getter)]
    pub fn stderr(&self) -> String {
        self.inner.stderr()
    }

    /// Exit code once the command has ended.
    #[napi(getter)]
    pub fn exit_code(&self) -> Option<i32> {
        self.inner.exit_code()
    }

    /// Error message of the command once it has ended, if any.
    #[napi(getter)]
    pub fn error(&self) -> Option<String> {
        self.inner.error()
    }

    /// Wait for the command to finish; a non-zero exit rejects with `CommandExitError`.
    #[napi]
    pub async fn wait(&self) -> Result<CommandResult> {
        self.inner.wait().await.js().map(CommandResult::from)
    }

    /// Kill the command (SIGKILL): `true` if killed, `false` if it had already gone.
    #[napi]
    pub async fn kill(&self) -> Result<bool> {
        self.inner.kill().await.js()
    }

    /// Stop receiving the command's output; the command keeps running.
    #[napi]
    pub async fn disconnect(&self) -> Result<()> {
        self.inner.disconnect();
        Ok(())
    }

    /// Write to the command's stdin (started with `stdin: true`).
    #[napi]
    pub async fn send_stdin(&self, data: Either<String, Uint8Array>, opts: Option<CommandRequestOpts>) -> Result<()> {
        self.commands
            .with_request_timeout(request_timeout(&opts))
            .send_stdin(self.inner.pid(), stdin_bytes(data))
            .await
            .js()
    }

    /// Close the command's stdin (EOF).
    #[napi]
    pub async fn close_stdin(&self, opts: Option<CommandRequestOpts>) -> Result<()> {
        self.commands.with_request_timeout(request_timeout(&opts)).close_stdin(self.inner.pid()).await.js()
    }
}
