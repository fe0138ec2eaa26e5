//! `sandbox.commands()`: run processes in the sandbox through envd's `process.Process` service.
//!
//! `run` sends `Start` with `/bin/bash -l -c <cmd>` (as E2B's SDKs do); the first stream event is
//! `start{pid}`, then output chunks, then `end`. A non-zero exit becomes [`Error::CommandExit`].
//! Background commands are consumed by a spawned task (on the caller's runtime) and shared
//! through a `watch` channel, so several `wait()` calls see the same result.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

use crate::envd::connect::EnvdStream;
use crate::envd::proto::{
    self, CloseStdinRequest, ConnectRequest, DataEvent, ListRequest, ListResponse, ProcessConfig,
    ProcessEvent, ProcessEventResponse, ProcessInput, ProcessSelector, SendInputRequest,
    SendSignalRequest, Signal, StartRequest,
};
use crate::envd::{Domain, EnvdClient};
use crate::error::{Error, Result};
use crate::models::{CommandResult, ProcessInfo};

const SERVICE: &str = "process.Process";
/// Default bound of a whole command (E2B: 60 s; zero = unlimited).
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Receives each chunk of output as it arrives (lossily decoded as UTF-8).
pub type OutputCallback = Arc<dyn Fn(String) + Send + Sync>;

/// Options of `run` / `run_background` / `connect`.
#[derive(Clone, Default)]
pub struct RunOptions {
    pub envs: HashMap<String, String>,
    /// Linux user to run as (default: the template's user).
    pub user: Option<String>,
    pub cwd: Option<String>,
    /// Bound on the whole command; `None` = 60 s, `Some(ZERO)` = unlimited.
    pub timeout: Option<Duration>,
    /// Keep stdin open for `send_stdin`.
    pub stdin: Option<bool>,
    pub tag: Option<String>,
    pub on_stdout: Option<OutputCallback>,
    pub on_stderr: Option<OutputCallback>,
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("envs", &self.envs)
            .field("user", &self.user)
            .field("cwd", &self.cwd)
            .field("timeout", &self.timeout)
            .field("stdin", &self.stdin)
            .finish_non_exhaustive()
    }
}

impl RunOptions {
    fn stream_timeout(&self) -> Option<Duration> {
        match self.timeout {
            None => Some(DEFAULT_COMMAND_TIMEOUT),
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
        }
    }
}

/// Process operations of one sandbox; cheap to clone.
#[derive(Debug, Clone)]
pub struct Commands {
    envd: EnvdClient,
}

impl Commands {
    pub(crate) fn new(envd: EnvdClient) -> Self {
        Commands { envd }
    }

    async fn start(&self, cmd: &str, opts: &RunOptions) -> Result<(u32, EnvdStream)> {
        let req = StartRequest {
            process: Some(ProcessConfig {
                cmd: "/bin/bash".into(),
                args: vec!["-l".into(), "-c".into(), cmd.into()],
                envs: opts.envs.clone(),
                cwd: opts.cwd.clone(),
            }),
            pty: None,
            tag: opts.tag.clone(),
            stdin: Some(opts.stdin.unwrap_or(false)),
        };
        let mut stream = self
            .envd
            .server_stream(SERVICE, "Start", &req, opts.user.as_deref(), opts.stream_timeout(), Domain::Process)
            .await?;
        let pid = first_pid(&mut stream).await?;
        Ok((pid, stream))
    }

    /// Run `cmd` to completion. A non-zero exit code is an [`Error::CommandExit`].
    pub async fn run(&self, cmd: &str, opts: RunOptions) -> Result<CommandResult> {
        let limit = opts.stream_timeout();
        let work = async {
            let (_pid, stream) = self.start(cmd, &opts).await?;
            consume(stream, &opts).await
        };
        let result = with_timeout(limit, work).await?;
        check_exit(result)
    }

    /// Start `cmd` and return at once with a handle (`pid`, `wait`, `kill`).
    pub async fn run_background(&self, cmd: &str, opts: RunOptions) -> Result<CommandHandle> {
        let (pid, stream) = self.start(cmd, &opts).await?;
        Ok(CommandHandle::spawn(self.clone(), pid, stream, opts))
    }

    /// Attach to a running process by pid.
    pub async fn connect(&self, pid: u32, opts: RunOptions) -> Result<CommandHandle> {
        let req = ConnectRequest { process: Some(ProcessSelector { pid: Some(pid), tag: None }) };
        let mut stream = self
            .envd
            .server_stream(SERVICE, "Connect", &req, opts.user.as_deref(), opts.stream_timeout(), Domain::Process)
            .await?;
        let pid = first_pid(&mut stream).await?;
        Ok(CommandHandle::spawn(self.clone(), pid, stream, opts))
    }

    /// Running processes.
    pub async fn list(&self) -> Result<Vec<ProcessInfo>> {
        let r: ListResponse = self.envd.unary(SERVICE, "List", &ListRequest {}, None, Domain::Process).await?;
        Ok(r
            .processes
            .into_iter()
            .map(|p| ProcessInfo {
                pid: p.pid,
                tag: p.tag,
                cmd: p.config.cmd,
                args: p.config.args,
                envs: p.config.envs,
                cwd: p.config.cwd,
            })
            .collect())
    }

    /// SIGKILL `pid`; false when there is no such process.
    pub async fn kill(&self, pid: u32) -> Result<bool> {
        let req = SendSignalRequest { process: Some(selector(pid)), signal: Signal::Sigkill };
        match self.envd.unary::<_, proto::Empty>(SERVICE, "SendSignal", &req, None, Domain::Process).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Write to the process's stdin (it must have been started with `stdin: Some(true)`).
    pub async fn send_stdin(&self, pid: u32, data: impl Into<Bytes>) -> Result<()> {
        let req = SendInputRequest {
            process: Some(selector(pid)),
            input: Some(ProcessInput { stdin: Some(data.into()), pty: None }),
        };
        self.envd.unary::<_, proto::Empty>(SERVICE, "SendInput", &req, None, Domain::Process).await?;
        Ok(())
    }

    /// Close the process's stdin (EOF).
    pub async fn close_stdin(&self, pid: u32) -> Result<()> {
        let req = CloseStdinRequest { process: Some(selector(pid)) };
        self.envd.unary::<_, proto::Empty>(SERVICE, "CloseStdin", &req, None, Domain::Process).await?;
        Ok(())
    }
}

fn selector(pid: u32) -> ProcessSelector {
    ProcessSelector { pid: Some(pid), tag: None }
}

async fn first_pid(stream: &mut EnvdStream) -> Result<u32> {
    loop {
        match stream.next::<ProcessEventResponse>().await? {
            Some(ProcessEventResponse { event: ProcessEvent::Start(s) }) => return Ok(s.pid),
            Some(ProcessEventResponse { event: ProcessEvent::Keepalive(_) }) => continue,
            Some(other) => {
                return Err(Error::sandbox(format!("expected a start event first, got {:?}", other.event)));
            }
            None => return Err(Error::sandbox("process stream ended before the start event")),
        }
    }
}

async fn with_timeout<T>(limit: Option<Duration>, fut: impl Future<Output = Result<T>>) -> Result<T> {
    match limit {
        None => fut.await,
        Some(d) => tokio::time::timeout(d, fut).await.unwrap_or_else(|_| {
            Err(Error::Timeout(format!(
                "Command timed out after {} s: the 'timeout' option bounds the whole command; use 0 \
                 to disable it.",
                d.as_secs_f64()
            )))
        }),
    }
}

/// Read events until `end`, collecting output.
async fn consume(mut stream: EnvdStream, opts: &RunOptions) -> Result<CommandResult> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(ev) = stream.next::<ProcessEventResponse>().await? {
        match ev.event {
            ProcessEvent::Data(DataEvent::Stdout(b)) => {
                if let Some(cb) = &opts.on_stdout {
                    cb(String::from_utf8_lossy(&b).into_owned());
                }
                out.extend_from_slice(&b);
            }
            ProcessEvent::Data(DataEvent::Stderr(b)) => {
                if let Some(cb) = &opts.on_stderr {
                    cb(String::from_utf8_lossy(&b).into_owned());
                }
                err.extend_from_slice(&b);
            }
            ProcessEvent::Data(DataEvent::Pty(b)) => out.extend_from_slice(&b),
            ProcessEvent::End(e) => {
                return Ok(CommandResult {
                    stdout: String::from_utf8_lossy(&out).into_owned(),
                    stderr: String::from_utf8_lossy(&err).into_owned(),
                    exit_code: e.exit_code,
                    error: e.error.filter(|s| !s.is_empty()),
                });
            }
            ProcessEvent::Start(_) | ProcessEvent::Keepalive(_) => {}
        }
    }
    Err(Error::sandbox("Command ended without an end event"))
}

fn check_exit(r: CommandResult) -> Result<CommandResult> {
    if r.exit_code != 0 {
        return Err(Error::CommandExit {
            stdout: r.stdout,
            stderr: r.stderr,
            exit_code: r.exit_code,
            error: r.error,
        });
    }
    Ok(r)
}

/// A command running in the background; cheap to clone.
#[derive(Debug, Clone)]
pub struct CommandHandle(Arc<HandleInner>);

#[derive(Debug)]
struct HandleInner {
    pid: u32,
    commands: Commands,
    result: watch::Receiver<Option<Result<CommandResult>>>,
    task: tokio::task::AbortHandle,
}

impl Drop for HandleInner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CommandHandle {
    fn spawn(commands: Commands, pid: u32, stream: EnvdStream, opts: RunOptions) -> Self {
        let (tx, rx) = watch::channel(None);
        let limit = opts.stream_timeout();
        let task = tokio::spawn(async move {
            let r = with_timeout(limit, consume(stream, &opts)).await;
            let _ = tx.send(Some(r));
        });
        CommandHandle(Arc::new(HandleInner { pid, commands, result: rx, task: task.abort_handle() }))
    }

    pub fn pid(&self) -> u32 {
        self.0.pid
    }

    /// Wait for the command to finish. A non-zero exit is an [`Error::CommandExit`].
    pub async fn wait(&self) -> Result<CommandResult> {
        let mut rx = self.0.result.clone();
        let r = rx
            .wait_for(|v| v.is_some())
            .await
            .map_err(|_| Error::sandbox("the command's stream was disconnected"))?;
        let r = r.clone().expect("checked by wait_for");
        check_exit(r?)
    }

    /// SIGKILL the command; false when it had already gone.
    pub async fn kill(&self) -> Result<bool> {
        self.0.commands.kill(self.0.pid).await
    }

    /// Stop receiving output; the command keeps running.
    pub fn disconnect(&self) {
        self.0.task.abort();
    }
}
