//! `sandbox.pty`: interactive terminals through envd's `process.Process` service.
//!
//! A PTY is a process started with a `pty` size: `/bin/bash -i -l` with `TERM=xterm-256color`
//! and a UTF-8 locale unless the caller sets them (as E2B's SDKs do). Its output arrives as
//! `pty` data (raw bytes) on the same [`CommandHandle`] as commands use; input goes through
//! `SendInput{pty}`, resizing through `Update{pty}`.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;

use crate::command_handle::CommandHandle;
use crate::commands::{Commands, PtyCallback, RunOptions};
use crate::envd::Domain;
use crate::envd::proto::{self, ProcessConfig, ProcessInput, ProcessSelector, SendInputRequest, StartRequest, UpdateRequest};
use crate::error::Result;

const SERVICE: &str = "process.Process";

/// Terminal size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PtySize {
    pub cols: u32,
    pub rows: u32,
}

impl From<PtySize> for proto::Pty {
    fn from(s: PtySize) -> Self {
        proto::Pty { size: Some(proto::PtySize { cols: s.cols, rows: s.rows }) }
    }
}

/// Options of [`Pty::create`].
#[derive(Clone, Default)]
pub struct PtyOptions {
    pub user: Option<String>,
    pub cwd: Option<String>,
    pub envs: HashMap<String, String>,
    /// Bound on the terminal's life; `None` = 60 s, zero = unlimited.
    pub timeout: Option<Duration>,
    /// Receives the terminal output as it arrives.
    pub on_data: Option<PtyCallback>,
}

/// PTY operations of one sandbox; cheap to clone.
#[derive(Debug, Clone)]
pub struct Pty {
    commands: Commands,
}

fn selector(pid: u32) -> Option<ProcessSelector> {
    Some(ProcessSelector { pid: Some(pid), tag: None })
}

impl Pty {
    pub(crate) fn new(commands: Commands) -> Self {
        Pty { commands }
    }

    pub(crate) fn commands(&self) -> &Commands {
        &self.commands
    }

    /// These operations with a per-call request timeout (not applied to `create`/`connect`,
    /// whose stream is bounded by `timeout`, as in E2B's SDKs).
    pub fn with_request_timeout(&self, timeout: Option<Duration>) -> Pty {
        Pty { commands: self.commands.with_request_timeout(timeout) }
    }

    /// Start an interactive login shell in a terminal of `size`.
    pub async fn create(&self, size: PtySize, opts: PtyOptions) -> Result<CommandHandle> {
        let mut envs = opts.envs.clone();
        for (k, v) in [("TERM", "xterm-256color"), ("LANG", "C.UTF-8"), ("LC_ALL", "C.UTF-8")] {
            envs.entry(k.into()).or_insert_with(|| v.into());
        }
        let req = StartRequest {
            process: Some(ProcessConfig {
                cmd: "/bin/bash".into(),
                args: vec!["-i".into(), "-l".into()],
                envs,
                cwd: opts.cwd.clone(),
            }),
            pty: Some(size.into()),
            tag: None,
            stdin: None,
        };
        let run = RunOptions { user: opts.user, timeout: opts.timeout, on_pty: opts.on_data, ..Default::default() };
        let commands = self.commands.with_request_timeout(Some(Duration::ZERO));
        let (pid, stream) = commands.start_with(&req, &run).await?;
        Ok(CommandHandle::spawn(self.commands.clone(), pid, stream, run))
    }

    /// Attach to a running terminal by pid.
    pub async fn connect(&self, pid: u32, timeout: Option<Duration>, on_data: Option<PtyCallback>) -> Result<CommandHandle> {
        let run = RunOptions { timeout, on_pty: on_data, ..Default::default() };
        self.commands.with_request_timeout(Some(Duration::ZERO)).connect(pid, run).await
    }

    /// Type into the terminal.
    pub async fn send_stdin(&self, pid: u32, data: impl Into<Bytes>) -> Result<()> {
        let req = SendInputRequest { process: selector(pid), input: Some(ProcessInput { stdin: None, pty: Some(data.into()) }) };
        self.commands.envd().unary::<_, proto::Empty>(SERVICE, "SendInput", &req, None, Domain::Process).await?;
        Ok(())
    }

    /// Change the terminal size (after the user resized the window).
    pub async fn resize(&self, pid: u32, size: PtySize) -> Result<()> {
        let req = UpdateRequest { process: selector(pid), pty: Some(size.into()) };
        self.commands.envd().unary::<_, proto::Empty>(SERVICE, "Update", &req, None, Domain::Process).await?;
        Ok(())
    }

    /// SIGKILL the terminal's process; false when it had already gone.
    pub async fn kill(&self, pid: u32) -> Result<bool> {
        self.commands.kill(pid).await
    }
}
