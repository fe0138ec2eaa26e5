//! Ordered input to a running command or PTY (E2B's `stream_input` / `AsyncCommandInputHandle`).
//!
//! A task owns the sending: `send` only queues (so callers never reorder chunks by racing), the
//! task delivers each chunk with envd's `SendInput` in queue order, and `close` waits until every
//! queued chunk was delivered. The first failure stops the stream; `send` and `close` report it.
//! The whole stream is bounded by `timeout` (zero = unlimited), as E2B's client stream is.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::commands::Commands;
use crate::error::{Error, Result};

/// Which input of the process the chunks go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Stdin,
    Pty,
}

/// Default bound of an input stream (E2B's `STREAM_INPUT_TIMEOUT`).
pub const DEFAULT_STREAM_INPUT_TIMEOUT: Duration = Duration::from_secs(60);

/// An open input stream; cheap to clone.
#[derive(Debug, Clone)]
pub struct InputStream(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    tx: Mutex<Option<mpsc::UnboundedSender<Bytes>>>,
    done: tokio::sync::watch::Receiver<Option<Result<()>>>,
}

impl InputStream {
    pub(crate) fn open(commands: Commands, pid: u32, kind: InputKind, timeout: Option<Duration>) -> InputStream {
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
        let (done_tx, done_rx) = tokio::sync::watch::channel(None);
        let limit = match timeout {
            None => Some(DEFAULT_STREAM_INPUT_TIMEOUT),
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
        };
        tokio::spawn(async move {
            let work = async {
                while let Some(chunk) = rx.recv().await {
                    match kind {
                        InputKind::Stdin => commands.send_stdin(pid, chunk).await?,
                        InputKind::Pty => crate::pty::Pty::new(commands.clone()).send_stdin(pid, chunk).await?,
                    }
                }
                Ok(())
            };
            let r = match limit {
                None => work.await,
                Some(d) => tokio::time::timeout(d, work).await.unwrap_or_else(|_| {
                    Err(Error::Timeout(format!("The input stream timed out after {} s ('timeout').", d.as_secs_f64())))
                }),
            };
            let _ = done_tx.send(Some(r));
        });
        InputStream(Arc::new(Inner { tx: Mutex::new(Some(tx)), done: done_rx }))
    }

    fn failure(&self) -> Option<Error> {
        match &*self.0.done.borrow() {
            Some(Err(e)) => Some(e.clone()),
            _ => None,
        }
    }

    /// Queue `data` (delivered in order after what was queued before).
    pub fn send(&self, data: impl Into<Bytes>) -> Result<()> {
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let guard = self.0.tx.lock().unwrap_or_else(|p| p.into_inner());
        let closed = || {
            Error::sandbox(
                "Cannot send input after the input handle is closed. Open a new one with \
                 `sandbox.commands.stream_input(pid)` or `sandbox.pty.stream_input(pid)`.",
            )
        };
        let tx = guard.as_ref().ok_or_else(closed)?;
        tx.send(data.into()).map_err(|_| self.failure().unwrap_or_else(closed))
    }

    /// End the stream and wait until every queued chunk was delivered.
    pub async fn close(&self) -> Result<()> {
        self.0.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut rx = self.0.done.clone();
        let r = rx
            .wait_for(|v| v.is_some())
            .await
            .map_err(|_| Error::sandbox("the input stream task ended unexpectedly"))?;
        r.clone().expect("checked by wait_for")
    }
}

impl Commands {
    /// Open an ordered input stream to `pid`'s stdin.
    pub fn stream_input(&self, pid: u32, timeout: Option<Duration>) -> InputStream {
        InputStream::open(self.clone(), pid, InputKind::Stdin, timeout)
    }
}

impl crate::pty::Pty {
    /// Open an ordered input stream to the terminal `pid`.
    pub fn stream_input(&self, pid: u32, timeout: Option<Duration>) -> InputStream {
        InputStream::open(self.commands().clone(), pid, InputKind::Pty, timeout)
    }
}
