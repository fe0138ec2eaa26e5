//! `CommandHandle`: a command running in the background (from `run_background` or `connect`).
//!
//! A task (on the caller's runtime) reads the process stream and appends every output chunk to
//! a buffer shared by all clones of the handle, then stores the result. So output is never lost
//! to a late reader: `wait_with(callbacks)`, iteration (`next_output`) and the accumulated
//! `stdout()`/`stderr()` all see every chunk from the start, in order, as E2B's SDKs do.
//! The buffer lock is a `std::sync::Mutex` never held across an `.await`.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::watch;

use crate::commands::{Commands, OutputCallback, PtyCallback, RunOptions, check_exit, consume, with_timeout};
use crate::envd::connect::EnvdStream;
use crate::error::{Error, Result};
use crate::models::CommandResult;

/// One chunk of a command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputChunk {
    Stdout(String),
    Stderr(String),
    /// Terminal output of a PTY process (raw bytes).
    Pty(Bytes),
}

#[derive(Debug, Default)]
struct Output {
    chunks: Vec<OutputChunk>,
    result: Option<Result<CommandResult>>,
}

/// A command running in the background; cheap to clone.
#[derive(Debug, Clone)]
pub struct CommandHandle(Arc<HandleInner>);

#[derive(Debug)]
struct HandleInner {
    pid: u32,
    commands: Commands,
    output: Arc<Mutex<Output>>,
    /// Bumped after every change of `output`.
    changed: watch::Receiver<u64>,
    task: tokio::task::AbortHandle,
}

impl Drop for HandleInner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(m: &Mutex<Output>) -> std::sync::MutexGuard<'_, Output> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl CommandHandle {
    pub(crate) fn spawn(commands: Commands, pid: u32, stream: EnvdStream, opts: RunOptions) -> Self {
        let (tx, rx) = watch::channel(0u64);
        let output = Arc::new(Mutex::new(Output::default()));
        let sink = output.clone();
        let limit = opts.stream_timeout();
        let task = tokio::spawn(async move {
            let push = |c: OutputChunk| {
                lock(&sink).chunks.push(c);
                tx.send_modify(|n| *n += 1);
            };
            let r = with_timeout(limit, consume(stream, &opts, push)).await;
            lock(&sink).result = Some(r);
            tx.send_modify(|n| *n += 1);
        });
        CommandHandle(Arc::new(HandleInner { pid, commands, output, changed: rx, task: task.abort_handle() }))
    }

    pub fn pid(&self) -> u32 {
        self.0.pid
    }

    /// The output chunk at `cursor` (0-based), waiting for it; `None` once the command has ended
    /// and every chunk was read.
    pub async fn next_output(&self, cursor: usize) -> Result<Option<OutputChunk>> {
        let mut rx = self.0.changed.clone();
        loop {
            rx.borrow_and_update();
            {
                let o = lock(&self.0.output);
                if let Some(c) = o.chunks.get(cursor) {
                    return Ok(Some(c.clone()));
                }
                if o.result.is_some() {
                    return Ok(None);
                }
            }
            if rx.changed().await.is_err() {
                // The reader task was aborted (`disconnect`) before the end.
                return Ok(None);
            }
        }
    }

    /// Wait for the command to finish. A non-zero exit is an [`Error::CommandExit`].
    pub async fn wait(&self) -> Result<CommandResult> {
        let mut rx = self.0.changed.clone();
        loop {
            rx.borrow_and_update();
            if let Some(r) = &lock(&self.0.output).result {
                return check_exit(r.clone()?);
            }
            if rx.changed().await.is_err() {
                return Err(Error::sandbox("the command's stream was disconnected"));
            }
        }
    }

    /// [`CommandHandle::wait`], first handing every output chunk (from the start) to the given
    /// callbacks, in order.
    pub async fn wait_with(
        &self,
        on_stdout: Option<OutputCallback>,
        on_stderr: Option<OutputCallback>,
        on_pty: Option<PtyCallback>,
    ) -> Result<CommandResult> {
        let mut cursor = 0;
        while let Some(chunk) = self.next_output(cursor).await? {
            cursor += 1;
            match chunk {
                OutputChunk::Stdout(s) => on_stdout.as_ref().map(|cb| cb(s)),
                OutputChunk::Stderr(s) => on_stderr.as_ref().map(|cb| cb(s)),
                OutputChunk::Pty(b) => on_pty.as_ref().map(|cb| cb(b)),
            };
        }
        self.wait().await
    }

    fn collect(&self, pick: impl Fn(&OutputChunk) -> Option<&str>) -> String {
        lock(&self.0.output).chunks.iter().filter_map(pick).collect()
    }

    /// Standard output received so far.
    pub fn stdout(&self) -> String {
        self.collect(|c| if let OutputChunk::Stdout(s) = c { Some(s) } else { None })
    }

    /// Standard error received so far.
    pub fn stderr(&self) -> String {
        self.collect(|c| if let OutputChunk::Stderr(s) = c { Some(s) } else { None })
    }

    /// The exit code, once the command has ended.
    pub fn exit_code(&self) -> Option<i32> {
        match &lock(&self.0.output).result {
            Some(Ok(r)) => Some(r.exit_code),
            _ => None,
        }
    }

    /// The error message envd reported for the command, once it has ended.
    pub fn error(&self) -> Option<String> {
        match &lock(&self.0.output).result {
            Some(Ok(r)) => r.error.clone(),
            _ => None,
        }
    }

    /// The process operations of this handle's sandbox (e.g. with a request timeout).
    pub fn commands(&self) -> &Commands {
        &self.0.commands
    }

    /// SIGKILL the command; false when it had already gone.
    pub async fn kill(&self) -> Result<bool> {
        self.0.commands.kill(self.0.pid).await
    }

    /// Write to the command's stdin (it must have been started with `stdin: Some(true)`).
    pub async fn send_stdin(&self, data: impl Into<Bytes>) -> Result<()> {
        self.0.commands.send_stdin(self.0.pid, data).await
    }

    /// Close the command's stdin (EOF).
    pub async fn close_stdin(&self) -> Result<()> {
        self.0.commands.close_stdin(self.0.pid).await
    }

    /// Stop receiving output; the command keeps running.
    pub fn disconnect(&self) {
        self.0.task.abort();
    }
}
