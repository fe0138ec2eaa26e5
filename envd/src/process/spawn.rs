//! Launching a process as a user, with pipes or a PTY, and supervising it to its end.
//!
//! Why the pieces look the way they do:
//! - credentials are dropped in `pre_exec` (setgroups, setgid, setuid): std's
//!   own `uid()` runs before our hook and cannot set supplementary groups;
//! - every process gets its own session (`setsid`), so signals go to the whole
//!   process group and a killed command takes its children with it;
//! - after the process exits, output is still drained until the pipes go quiet
//!   (EOF, or 100 ms without data): a background grandchild holding stdout open
//!   must not keep the stream alive forever, yet trailing output is not lost;
//! - `Connect-Timeout-Ms` on `Start` is the command's deadline, as in upstream
//!   envd: the process group is killed when it passes.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::watch;

use super::{Input, Proc, Subscription, pty};
use crate::connect::RpcError;
use crate::proto::{DataEvent, EndEvent, StartRequest};
use crate::state::{Runtime, Shared};
use crate::users::{User, resolve_path};

/// Output is forwarded in chunks of at most this size.
const CHUNK: usize = 32 << 10;
/// After exit, output readers stop once no data arrived for this long.
const DRAIN_IDLE: Duration = Duration::from_millis(100);
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Starts the process described by `req` as `user` and registers it. The returned
/// subscription exists before any output is read, so the caller misses nothing.
pub fn start(
    state: &Shared,
    user: &User,
    req: StartRequest,
    deadline: Option<Duration>,
) -> Result<(Arc<Proc>, Subscription), RpcError> {
    let config = req.process.unwrap_or_default();
    if config.cmd.is_empty() {
        return Err(RpcError::invalid("process.cmd is required"));
    }
    let runtime = state.runtime();
    let cwd = resolve_path(
        config.cwd.as_deref().unwrap_or(""),
        user,
        runtime.default_workdir.as_deref(),
    );
    if !cwd.is_dir() {
        return Err(RpcError::invalid(format!(
            "cwd '{}' does not exist",
            cwd.display()
        )));
    }

    let mut cmd = tokio::process::Command::new(&config.cmd);
    cmd.args(&config.args)
        .current_dir(&cwd)
        .env_clear()
        .envs(environment(user, &runtime, &config.envs, req.pty.is_some()));
    cmd.kill_on_drop(false);

    let mut pty_master = None;
    if let Some(p) = &req.pty {
        let (master, slave) =
            pty::open(p.size.unwrap_or_default()).map_err(|e| RpcError::io(&e, "opening a pty"))?;
        // The terminal belongs to its user, as login(1) arranges (mesg, tty checks).
        let _ = std::os::unix::fs::fchown(&slave, Some(user.uid), None);
        let dup = |fd: &std::os::fd::OwnedFd| {
            fd.try_clone()
                .map(Stdio::from)
                .map_err(|e| RpcError::io(&e, "pty"))
        };
        cmd.stdin(dup(&slave)?)
            .stdout(dup(&slave)?)
            .stderr(Stdio::from(slave));
        pty_master = Some(Arc::new(master));
    } else {
        let stdin = if req.stdin.unwrap_or(true) {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        cmd.stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
    }

    let creds = credentials(user)?;
    let with_tty = pty_master.is_some();
    // SAFETY: the hook runs in the forked child before exec and only makes
    // async-signal-safe syscalls (setsid, ioctl, setgroups, setgid, setuid).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if with_tty && libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some((uid, gid, groups)) = &creds
                && (libc::setgroups(groups.len(), groups.as_ptr()) < 0
                    || libc::setgid(*gid) < 0
                    || libc::setuid(*uid) < 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }

    let what = format!("error starting process '{}'", config.cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| RpcError::invalid(format!("{what}: {e}")))?;
    // Drop our copies of the slave now, or the master would never see EOF.
    drop(cmd);
    let pid = child
        .id()
        .ok_or_else(|| RpcError::internal("process exited before it got a pid"))?;
    tracing::info!(pid, cmd = %config.cmd, args = ?config.args, user = %user.name, pty = pty_master.is_some(), "process started");

    let input = match &pty_master {
        Some(m) => Input::Pty(m.clone()),
        None => Input::Pipe(tokio::sync::Mutex::new(child.stdin.take())),
    };
    let proc = Arc::new(Proc::new(pid, config, req.tag, input));
    state.processes.insert(proc.clone());
    let subscription = proc.subscribe();

    let (exited_tx, exited_rx) = watch::channel(false);
    let mut readers = Vec::new();
    match pty_master {
        Some(master) => {
            let (p, rx) = (proc.clone(), exited_rx.clone());
            readers.push(tokio::spawn(async move {
                let mut buf = vec![0u8; CHUNK / 2];
                loop {
                    let n = tokio::select! {
                        biased;
                        r = master.read(&mut buf) => match r { Ok(0) | Err(_) => break, Ok(n) => n },
                        _ = idle_after_exit(rx.clone()) => break,
                    };
                    p.publish(DataEvent::Pty(bytes::Bytes::copy_from_slice(&buf[..n]))).await;
                }
            }));
        }
        None => {
            if let Some(out) = child.stdout.take() {
                readers.push(tokio::spawn(pump(
                    proc.clone(),
                    out,
                    exited_rx.clone(),
                    DataEvent::Stdout,
                )));
            }
            if let Some(err) = child.stderr.take() {
                readers.push(tokio::spawn(pump(
                    proc.clone(),
                    err,
                    exited_rx.clone(),
                    DataEvent::Stderr,
                )));
            }
        }
    }

    let state = state.clone();
    let p = proc.clone();
    tokio::spawn(async move {
        let status = match deadline {
            Some(d) => match tokio::time::timeout(d, child.wait()).await {
                Ok(s) => s,
                Err(_) => {
                    signal_group(pid, libc::SIGKILL);
                    child.wait().await
                }
            },
            None => child.wait().await,
        };
        let _ = exited_tx.send(true);
        for r in readers {
            let _ = r.await;
        }
        let end = end_event(status);
        tracing::info!(pid, status = %end.status, "process ended");
        p.finish(end).await;
        state.processes.remove(pid);
    });
    Ok((proc, subscription))
}

/// Forwards one pipe to the subscribers until EOF, or until idle after exit.
async fn pump<R: AsyncRead + Unpin>(
    p: Arc<Proc>,
    mut out: R,
    exited: watch::Receiver<bool>,
    wrap: fn(bytes::Bytes) -> DataEvent,
) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = tokio::select! {
            biased;
            r = out.read(&mut buf) => match r { Ok(0) | Err(_) => break, Ok(n) => n },
            _ = idle_after_exit(exited.clone()) => break,
        };
        p.publish(wrap(bytes::Bytes::copy_from_slice(&buf[..n])))
            .await;
    }
}

/// Completes `DRAIN_IDLE` after the process has exited (re-armed for every read).
async fn idle_after_exit(mut exited: watch::Receiver<bool>) {
    if exited.wait_for(|e| *e).await.is_err() {
        // The supervisor is gone without sending; never fire.
        std::future::pending::<()>().await;
    }
    tokio::time::sleep(DRAIN_IDLE).await;
}

/// The end event, worded like Go's `ProcessState.String()` which upstream envd sends.
fn end_event(status: std::io::Result<std::process::ExitStatus>) -> EndEvent {
    match status {
        Ok(s) => {
            let (exit_code, exited, text) = match (s.code(), s.signal()) {
                (Some(c), _) => (c, true, format!("exit status {c}")),
                (None, Some(sig)) => (-1, false, format!("signal: {}", signal_name(sig))),
                _ => (-1, false, "unknown".to_string()),
            };
            let error = (!s.success()).then(|| text.clone());
            EndEvent {
                exit_code,
                exited,
                status: text,
                error,
            }
        }
        Err(e) => EndEvent {
            exit_code: -1,
            exited: false,
            status: "unknown".into(),
            error: Some(e.to_string()),
        },
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGKILL => "killed".into(),
        libc::SIGTERM => "terminated".into(),
        libc::SIGINT => "interrupt".into(),
        libc::SIGHUP => "hangup".into(),
        libc::SIGPIPE => "broken pipe".into(),
        libc::SIGSEGV => "segmentation fault".into(),
        libc::SIGABRT => "aborted".into(),
        other => format!("signal {other}"),
    }
}

/// Sends `sig` to the process group led by `pid`, or to `pid` alone if it has none.
pub fn signal_group(pid: u32, sig: i32) -> bool {
    let pid = pid as libc::pid_t;
    // SAFETY: plain kill(2) calls; a stale pid only yields ESRCH.
    unsafe { libc::kill(-pid, sig) == 0 || libc::kill(pid, sig) == 0 }
}

/// uid, gid and groups to switch to, or `None` when already that user.
fn credentials(user: &User) -> Result<Option<(u32, u32, Vec<libc::gid_t>)>, RpcError> {
    // SAFETY: trivial getters.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if euid == user.uid && egid == user.gid {
        return Ok(None);
    }
    if euid != 0 {
        return Err(RpcError::new(
            crate::proto::Code::PermissionDenied,
            format!(
                "envd runs as uid {euid} and cannot start processes as '{}'",
                user.name
            ),
        ));
    }
    Ok(Some((user.uid, user.gid, user.groups.clone())))
}

/// The environment of a new process: login basics, then `/init` vars, then the request's.
fn environment(
    user: &User,
    runtime: &Runtime,
    request: &std::collections::HashMap<String, String>,
    pty: bool,
) -> Vec<(String, String)> {
    let path = std::env::var("PATH")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| DEFAULT_PATH.to_string());
    let mut env = vec![
        ("PATH".to_string(), path),
        ("HOME".into(), user.home.display().to_string()),
        ("USER".into(), user.name.clone()),
        ("LOGNAME".into(), user.name.clone()),
        ("SHELL".into(), user.shell.clone()),
    ];
    if pty {
        env.push(("TERM".into(), "xterm-256color".into()));
    }
    env.extend(runtime.env_vars.iter().map(|(k, v)| (k.clone(), v.clone())));
    env.extend(request.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}
