//! The guest's end of the volume channel: at most one connection from sandboxd at a time,
//! shared by every mounted volume.
//!
//! A new connection replaces the old one (after a restore the old one leads nowhere): the
//! old one is closed and its unanswered requests fail over. File system threads that find
//! no connection wait for one up to [`WAIT`], so a sandbox whose sandboxd restarts sees its
//! volumes stall, not fail. A request lost with its connection is sent again on the next
//! one when repeating it is harmless (reads, writes at an offset, attribute changes); other
//! operations report `EIO`, since the host may already have done them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use super::wire::{self, Request, Response};

/// How long a file system operation waits for sandboxd (connection and answer).
pub const WAIT: Duration = Duration::from_secs(60);

/// `None`: the connection was lost before the answer came.
type Reply = SyncSender<Option<(Response, Vec<u8>)>>;

struct Conn {
    tx: mpsc::UnboundedSender<(Vec<u8>, Vec<u8>)>,
    /// `None` once the connection is closed: nothing waits on it any more.
    pending: Mutex<Option<HashMap<u64, Reply>>>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Conn {
    fn close(&self) {
        for t in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            t.abort();
        }
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        for (_, reply) in pending.into_iter().flatten() {
            let _ = reply.try_send(None);
        }
    }

    fn answer(&self, resp: Response, data: Vec<u8>) {
        let reply = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .and_then(|p| p.remove(&resp.id));
        if let Some(reply) = reply {
            let _ = reply.try_send(Some((resp, data)));
        }
    }
}

#[derive(Default)]
pub struct Hub {
    conn: Mutex<Option<Arc<Conn>>>,
    changed: Condvar,
    next_id: AtomicU64,
}

fn idempotent(op: &str) -> bool {
    matches!(
        op,
        "stat" | "readdir" | "read" | "write" | "readlink" | "setattr" | "statfs" | "fsync"
    )
}

impl Hub {
    /// Serves the volume channel on `io` from now on, replacing the previous connection.
    pub fn attach<IO>(&'static self, io: IO)
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut rd, mut wr) = tokio::io::split(io);
        let (tx, mut rx) = mpsc::unbounded_channel::<(Vec<u8>, Vec<u8>)>();
        let conn = Arc::new(Conn {
            tx,
            pending: Mutex::new(Some(HashMap::new())),
            tasks: Mutex::new(Vec::new()),
        });
        let writer = tokio::spawn(async move {
            while let Some((header, data)) = rx.recv().await {
                if wire::write_frame(&mut wr, &header, &data).await.is_err() {
                    break;
                }
            }
        });
        let reader_conn = conn.clone();
        let reader = tokio::spawn(async move {
            loop {
                match wire::read_frame(&mut rd).await {
                    Ok(Some((header, data))) => match serde_json::from_slice::<Response>(&header) {
                        Ok(resp) => reader_conn.answer(resp, data),
                        Err(e) => {
                            tracing::warn!("volume channel: bad response: {e}");
                            break;
                        }
                    },
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!("volume channel: {e}");
                        break;
                    }
                }
            }
            self.detach(&reader_conn);
        });
        conn.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend([writer.abort_handle(), reader.abort_handle()]);
        let old = self
            .conn
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(conn);
        self.changed.notify_all();
        if let Some(old) = old {
            old.close();
        }
    }

    fn detach(&self, conn: &Arc<Conn>) {
        let mut cur = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if cur.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
            *cur = None;
        }
        drop(cur);
        conn.close();
    }

    fn wait_conn(&self, deadline: Instant) -> Option<Arc<Conn>> {
        let mut cur = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(c) = cur.as_ref() {
                return Some(c.clone());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            cur = self
                .changed
                .wait_timeout(cur, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Sends `req` (with `data`) and waits for its answer; `Err(errno)` on failure.
    pub fn call(&self, mut req: Request, data: &[u8]) -> Result<(Response, Vec<u8>), i32> {
        let deadline = Instant::now() + WAIT;
        loop {
            let conn = self.wait_conn(deadline).ok_or(libc::EIO)?;
            req.id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let header = serde_json::to_vec(&req).map_err(|_| libc::EIO)?;
            let (reply, answer) = sync_channel(1);
            {
                let mut pending = conn.pending.lock().unwrap_or_else(|e| e.into_inner());
                let Some(p) = pending.as_mut() else {
                    continue;
                };
                p.insert(req.id, reply);
            }
            if conn.tx.send((header, data.to_vec())).is_err() {
                self.detach(&conn);
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match answer.recv_timeout(left) {
                Ok(Some((resp, data))) if resp.errno == 0 => return Ok((resp, data)),
                Ok(Some((resp, _))) => return Err(resp.errno),
                Ok(None) | Err(RecvTimeoutError::Disconnected) if idempotent(&req.op) => continue,
                Ok(None) | Err(RecvTimeoutError::Disconnected) => return Err(libc::EIO),
                Err(RecvTimeoutError::Timeout) => {
                    if let Some(p) = conn
                        .pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .as_mut()
                    {
                        p.remove(&req.id);
                    }
                    return Err(libc::EIO);
                }
            }
        }
    }
}
