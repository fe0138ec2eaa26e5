//! A minimal QMP (QEMU Machine Protocol) client over a unix socket.
//!
//! QMP is line-delimited JSON: a greeting, then `qmp_capabilities`, then one reply per
//! command, with asynchronous `{"event": ...}` messages interleaved (skipped here). One
//! client is used by one task at a time, so replies are matched by order.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use super::{Result, VmError};

pub struct Qmp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Qmp {
    /// Connects and negotiates capabilities, retrying while QEMU creates the socket.
    pub async fn connect(path: &Path, deadline: Duration) -> Result<Self> {
        let start = std::time::Instant::now();
        let stream = loop {
            match UnixStream::connect(path).await {
                Ok(s) => break s,
                Err(e) if start.elapsed() < deadline => {
                    tracing::trace!("qmp connect {}: {e}", path.display());
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err(e) => return Err(VmError::Failed(format!("qmp connect {}: {e}", path.display()))),
            }
        };
        let (r, w) = stream.into_split();
        let mut qmp = Qmp { reader: BufReader::new(r), writer: w };
        let greeting = qmp.read_message().await?;
        if greeting.get("QMP").is_none() {
            return Err(VmError::Failed(format!("unexpected QMP greeting: {greeting}")));
        }
        qmp.execute("qmp_capabilities", json!({})).await?;
        Ok(qmp)
    }

    async fn read_message(&mut self) -> Result<Value> {
        let mut line = String::new();
        let n = self.reader.read_line(&mut line).await?;
        if n == 0 {
            return Err(VmError::Failed("QMP connection closed".into()));
        }
        serde_json::from_str(&line).map_err(|e| VmError::Failed(format!("bad QMP message {line:?}: {e}")))
    }

    /// Runs one command and returns its `return` value, or its `error` as `VmError::Failed`.
    pub async fn execute(&mut self, command: &str, arguments: Value) -> Result<Value> {
        let mut msg = json!({ "execute": command });
        if arguments.as_object().is_some_and(|o| !o.is_empty()) {
            msg["arguments"] = arguments;
        }
        let mut line = serde_json::to_vec(&msg).expect("json");
        line.push(b'\n');
        self.writer.write_all(&line).await?;
        loop {
            let reply = self.read_message().await?;
            if reply.get("event").is_some() {
                continue;
            }
            if let Some(ret) = reply.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = reply.get("error") {
                let desc = err.get("desc").and_then(Value::as_str).unwrap_or("unknown error");
                return Err(VmError::Failed(format!("QMP {command}: {desc}")));
            }
            return Err(VmError::Failed(format!("unexpected QMP reply: {reply}")));
        }
    }

    /// Polls `query-migrate` until the migration completes or fails. `progress` is called
    /// with each status reply (used by background snapshots to know when RAM is flowing).
    pub async fn wait_migration(&mut self, deadline: Duration) -> Result<Value> {
        let start = std::time::Instant::now();
        loop {
            let status = self.execute("query-migrate", json!({})).await?;
            match status.get("status").and_then(Value::as_str) {
                Some("completed") => return Ok(status),
                Some("failed") | Some("cancelled") => {
                    let why = status.get("error-desc").and_then(Value::as_str).unwrap_or("migration failed");
                    return Err(VmError::Failed(why.to_string()));
                }
                _ if start.elapsed() > deadline => {
                    return Err(VmError::Failed(format!("migration did not finish in {deadline:?}: {status}")));
                }
                _ => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    }

    /// The node name at the top of the disk's block graph (changes after each snapshot).
    pub async fn disk_top_node(&mut self) -> Result<String> {
        let blocks = self.execute("query-named-block-nodes", json!({ "flat": true })).await?;
        // The device's root node is the one whose name starts with our prefix and that no
        // other node uses as backing: with our naming, the highest generation number.
        let mut best: Option<(u64, String)> = None;
        for node in blocks.as_array().into_iter().flatten() {
            let Some(name) = node.get("node-name").and_then(Value::as_str) else { continue };
            if let Some(generation) = name.strip_prefix("disk").and_then(|g| g.parse::<u64>().ok()) {
                if best.as_ref().is_none_or(|(b, _)| generation > *b) {
                    best = Some((generation, name.to_string()));
                }
            }
        }
        best.map(|(_, n)| n).ok_or_else(|| VmError::Failed("no disk node found".into()))
    }
}
