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
pub use crate::command_handle::{CommandHandle, OutputChunk};

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
/// Receives each chunk of terminal output (raw bytes) of a PTY process.
pub type PtyCallback = Arc<dyn Fn(Bytes) + Send + Sync>;

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
    pub on_pty: Option<PtyCallback>,
    /// Leave stdout/stderr out of the result (E2B's `retain_output=False`); callbacks still
    /// get every chunk.
    pub discard_output: bool,
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
    pub(crate) fn stream_timeout(&self) -> Option<Duration> {
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

    /// These operations with a per-call request timeout (`None` keeps the configured one, zero
    /// disables it; for `run` it bounds the start of the command).
    pub fn with_request_timeout(&self, timeout: Option<Duration>) -> Commands {
        Commands { envd: self.envd.with_request_timeout(timeout) }
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
        self.start_with(&req, opts).await
    }

    /// Send a `Start` request (command or PTY) and read up to its `start{pid}` event.
    pub(crate) async fn start_with(&self, req: &StartRequest, opts: &RunOptions) -> Result<(u32, EnvdStream)> {
        let mut stream = self
            .envd
            .server_stream(SERVICE, "Start", req, opts.user.as_deref(), opts.stream_timeout(), Domain::Process)
            .await?;
        let pid = first_pid(&mut stream).await?;
        Ok((pid, stream))
    }

    pub(crate) fn envd(&self) -> &EnvdClient {
        &self.envd
    }

    /// Run `cmd` to completion. A non-zero exit code is an [`Error::CommandExit`].
    pub async fn run(&self, cmd: &str, opts: RunOptions) -> Result<CommandResult> {
        let limit = opts.stream_timeout();
        let work = async {
            let (_pid, stream) = self.start(cmd, &opts).await?;
            consume(stream, &opts, |_| {}).await
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

pub(crate) async fn with_timeout<T>(limit: Option<Duration>, fut: impl Future<Output = Result<T>>) -> Result<T> {
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

/// Read events until `end`, collecting output; each chunk also goes to the run's callbacks and
/// to `sink` (a background handle's buffer).
pub(crate) async fn consume(
    mut stream: EnvdStream,
    opts: &RunOptions,
    mut sink: impl FnMut(OutputChunk),
) -> Result<CommandResult> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(ev) = stream.next::<ProcessEventResponse>().await? {
        match ev.event {
            ProcessEvent::Data(DataEvent::Stdout(b)) => {
                let text = String::from_utf8_lossy(&b).into_owned();
                if let Some(cb) = &opts.on_stdout {
                    cb(text.clone());
                }
                if !opts.discard_output {
                    out.extend_from_slice(&b);
                }
                sink(OutputChunk::Stdout(text));
            }
            ProcessEvent::Data(DataEvent::Stderr(b)) => {
                let text = String::from_utf8_lossy(&b).into_owned();
                if let Some(cb) = &opts.on_stderr {
                    cb(text.clone());
                }
                if !opts.discard_output {
                    err.extend_from_slice(&b);
                }
                sink(OutputChunk::Stderr(text));
            }
            ProcessEvent::Data(DataEvent::Pty(b)) => {
                if let Some(cb) = &opts.on_pty {
                    cb(b.clone());
                }
                sink(OutputChunk::Pty(b));
            }
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

pub(crate) fn check_exit(r: CommandResult) -> Result<CommandResult> {
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
