//! The builder's envd client: runs build steps in a build VM through envd's Connect process
//! API (streaming their output into the build log), uploads files, and sets the defaults
//! (`/init`) a template's sandboxes inherit.
//!
//! Invariant: every call is on its own connection, bounded by a deadline; a command's exit
//! code comes from envd's `end` event, never guessed from the output.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use tokio::net::TcpStream;

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Bytes,
    content_type: &str,
    user: Option<&str>,
) -> Result<hyper::Response<hyper::body::Incoming>, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect to envd: {e}"))?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req =
        Request::builder().method(method).uri(path).header("host", "envd").header("content-type", content_type);
    if let Some(user) = user {
        // envd runs a process as the user named in basic auth.
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:"));
        req = req.header("authorization", format!("Basic {auth}"));
    }
    let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
    sender.send_request(req).await.map_err(|e| format!("envd request failed: {e}"))
}

/// How a build command ended.
pub struct Exit {
    pub code: i32,
    /// envd's status text (`exit status 1`, `signal: killed`, ...).
    pub status: String,
}

/// A process to run in the guest: `/bin/bash -l -c <script>` as `user` in `cwd`.
pub struct Command<'a> {
    pub script: &'a str,
    pub user: &'a str,
    pub cwd: Option<&'a str>,
    pub envs: &'a BTreeMap<String, String>,
}

fn start_body(c: &Command<'_>) -> Bytes {
    let msg = serde_json::json!({
        "process": {"cmd": "/bin/bash", "args": ["-l", "-c", c.script], "envs": c.envs, "cwd": c.cwd},
        "stdin": false,
    });
    let json = serde_json::to_vec(&msg).expect("json");
    let mut body = Vec::with_capacity(json.len() + 5);
    body.push(0u8);
    body.extend_from_slice(&(json.len() as u32).to_be_bytes());
    body.extend_from_slice(&json);
    Bytes::from(body)
}

/// Splits a Connect stream into messages: `(flags, json)`.
struct Envelopes {
    buf: BytesMut,
}

impl Envelopes {
    fn next(&mut self) -> Option<(u8, Bytes)> {
        if self.buf.len() < 5 {
            return None;
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if self.buf.len() < 5 + len {
            return None;
        }
        let flags = self.buf[0];
        self.buf.advance(5);
        Some((flags, self.buf.split_to(len).freeze()))
    }
}

/// Runs `c`, handing every output line (stdout and stderr) to `on_line`, until it exits or
/// `deadline` passes. `Err` when envd refused or the deadline passed.
pub async fn run(
    addr: SocketAddr,
    c: &Command<'_>,
    deadline: Duration,
    on_line: &mut (dyn FnMut(String) + Send),
) -> Result<Exit, String> {
    run_started(addr, c, deadline, on_line, None).await
}

/// [`run`], also signalling `started` once envd reports the process started.
pub async fn run_started(
    addr: SocketAddr,
    c: &Command<'_>,
    deadline: Duration,
    on_line: &mut (dyn FnMut(String) + Send),
    mut started: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<Exit, String> {
    let work = async {
        let resp =
            send(addr, "POST", "/process.Process/Start", start_body(c), "application/connect+json", Some(c.user))
                .await?;
        if resp.status() != 200 {
            let status = resp.status();
            let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            return Err(format!("envd refused the command ({status}): {}", String::from_utf8_lossy(&body)));
        }
        let mut body = resp.into_body();
        let mut env = Envelopes { buf: BytesMut::new() };
        let mut partial = String::new();
        let flush = |partial: &mut String, data: &[u8], end: bool, on_line: &mut (dyn FnMut(String) + Send)| {
            partial.push_str(&String::from_utf8_lossy(data));
            while let Some(i) = partial.find('\n') {
                let line: String = partial.drain(..=i).collect();
                on_line(line.trim_end_matches(['\n', '\r']).to_string());
            }
            if end && !partial.is_empty() {
                on_line(std::mem::take(partial));
            }
        };
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("envd stream broke: {e}"))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            env.buf.extend_from_slice(&data);
            while let Some((flags, msg)) = env.next() {
                let v: serde_json::Value = serde_json::from_slice(&msg).unwrap_or_default();
                if flags & 2 != 0 {
                    // End of stream: an error here means the process could not run.
                    if let Some(err) = v.get("error") {
                        let m = err.get("message").and_then(|m| m.as_str()).unwrap_or("unknown error");
                        return Err(m.to_string());
                    }
                    continue;
                }
                let event = &v["event"];
                if event.get("start").is_some()
                    && let Some(tx) = started.take()
                {
                    let _ = tx.send(());
                }
                if let Some(data) = event.get("data") {
                    for key in ["stdout", "stderr", "pty"] {
                        if let Some(b64) = data.get(key).and_then(|s| s.as_str()) {
                            let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap_or_default();
                            flush(&mut partial, &bytes, false, on_line);
                        }
                    }
                } else if let Some(end) = event.get("end") {
                    flush(&mut partial, b"", true, on_line);
                    let code = end.get("exitCode").and_then(|c| c.as_i64()).unwrap_or(0) as i32;
                    let status = end.get("status").and_then(|s| s.as_str()).unwrap_or_default().to_string();
                    let code = if code == 0 && !end.get("exited").and_then(|e| e.as_bool()).unwrap_or(true) {
                        -1
                    } else {
                        code
                    };
                    return Ok(Exit { code, status });
                }
            }
        }
        Err("envd closed the stream before the command ended".into())
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(r) => r,
        Err(_) => Err(format!("the command did not finish within {} s", deadline.as_secs())),
    }
}

/// Writes `data` to `path` in the guest (as root).
pub async fn upload(addr: SocketAddr, path: &str, data: Bytes) -> Result<(), String> {
    let q = format!(
        "/files?path={}&username=root",
        percent_encoding::utf8_percent_encode(path, percent_encoding::NON_ALPHANUMERIC)
    );
    let work = async {
        let resp = send(addr, "POST", &q, data, "application/octet-stream", None).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        if !status.is_success() {
            return Err(format!(
                "uploading {path} into the build VM failed ({status}): {}",
                String::from_utf8_lossy(&body)
            ));
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(600), work).await.map_err(|_| format!("uploading {path} timed out"))?
}

/// envd's `/init` defaults that every sandbox restored from this VM's snapshot inherits:
/// environment variables, the default user and working directory.
pub async fn set_defaults(
    addr: SocketAddr,
    envs: &BTreeMap<String, String>,
    user: &str,
    workdir: &str,
) -> Result<(), String> {
    let body = serde_json::json!({"envVars": envs, "defaultUser": user, "defaultWorkdir": workdir});
    let work = async {
        let resp = send(addr, "POST", "/init", Bytes::from(body.to_string()), "application/json", None).await?;
        if !resp.status().is_success() {
            return Err(format!("envd /init answered {}", resp.status()));
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(30), work).await.map_err(|_| "envd /init timed out".to_string())?
}
