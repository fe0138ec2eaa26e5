//! Talking to envd inside a freshly started or restored guest: waiting for it to answer,
//! and `/init` (wall clock, entropy, access token, env vars) before the sandbox is handed out.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use serde::Serialize;
use tokio::net::TcpStream;

use super::{GuestInit, Result, VmError};

/// One HTTP/1.1 request to envd on a fresh connection. Returns (status, body).
async fn request(addr: SocketAddr, method: &str, path: &str, body: Option<Vec<u8>>) -> std::io::Result<(u16, Bytes)> {
    request_with(addr, method, path, body, "application/json", &[]).await
}

async fn request_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
    content_type: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, Bytes)> {
    let stream = TcpStream::connect(addr).await?;
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(std::io::Error::other)?;
    let conn = tokio::spawn(conn);
    let mut req = Request::builder().method(method).uri(path).header("host", "envd");
    if body.is_some() {
        req = req.header("content-type", content_type);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.unwrap_or_default()))).map_err(std::io::Error::other)?;
    let resp = sender.send_request(req).await.map_err(std::io::Error::other)?;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.map_err(std::io::Error::other)?.to_bytes();
    conn.abort();
    Ok((status, bytes))
}

/// Waits until envd answers `GET /health` (any 2xx), retrying connection failures.
/// User-mode networking accepts the host-side connection even before the guest listens, so
/// a reset or an empty reply just means "not yet".
pub async fn wait_healthy(addr: SocketAddr, deadline: Duration, still_running: impl Fn() -> bool) -> Result<()> {
    let start = Instant::now();
    let mut last_err = String::new();
    while start.elapsed() < deadline {
        if !still_running() {
            return Err(VmError::Failed("the VM stopped (QEMU exited or the guest kernel panicked) while waiting for envd".into()));
        }
        let attempt = tokio::time::timeout(Duration::from_secs(2), request(addr, "GET", "/health", None)).await;
        match attempt {
            Ok(Ok((status, _))) if (200..300).contains(&status) => return Ok(()),
            Ok(Ok((status, body))) => last_err = format!("status {status}: {}", String::from_utf8_lossy(&body)),
            Ok(Err(e)) => last_err = e.to_string(),
            Err(_) => last_err = "health request timed out".into(),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(VmError::Failed(format!("envd did not become healthy within {deadline:?}: {last_err}")))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InitBody<'a> {
    access_token: Option<&'a str>,
    env_vars: &'a HashMap<String, String>,
    timestamp: String,
    /// Fresh host randomness, so clones of one snapshot do not share the guest's RNG state.
    entropy: String,
}

/// Sends `/init`, retrying while the restored guest's network comes back.
pub async fn init(addr: SocketAddr, init: &GuestInit, deadline: Duration) -> Result<()> {
    use base64::Engine;
    let start = Instant::now();
    let mut last_err = String::new();
    let mut attempts = 0u32;
    while start.elapsed() < deadline {
        attempts += 1;
        let entropy: [u8; 64] = rand::random();
        let body = InitBody {
            access_token: init.access_token.as_deref(),
            env_vars: &init.env_vars,
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            entropy: base64::engine::general_purpose::STANDARD.encode(entropy),
        };
        let body = serde_json::to_vec(&body).expect("json");
        match tokio::time::timeout(Duration::from_secs(3), request(addr, "POST", "/init", Some(body))).await {
            Ok(Ok((status, _))) if (200..300).contains(&status) => {
                tracing::debug!(attempts, ms = start.elapsed().as_millis() as u64, "envd /init done");
                return Ok(());
            }
            Ok(Ok((status, body))) => {
                return Err(VmError::Failed(format!("envd /init answered {status}: {}", String::from_utf8_lossy(&body))));
            }
            Ok(Err(e)) => last_err = e.to_string(),
            Err(_) => last_err = "timed out".into(),
        }
        tracing::trace!(attempts, ms = start.elapsed().as_millis() as u64, "envd /init attempt failed: {last_err}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Err(VmError::Failed(format!("envd /init failed within {deadline:?}: {last_err}")))
}

/// Sets what every later process in the guest inherits unless it asks otherwise (envd's
/// `/init` `envVars` and `defaultWorkdir`): used on a template VM before its snapshot, so an
/// image's `Env` and `WorkingDir` hold in every sandbox restored from it.
pub async fn set_defaults(addr: SocketAddr, env_vars: &HashMap<String, String>, workdir: Option<&str>) -> Result<()> {
    let body = serde_json::json!({"envVars": env_vars, "defaultWorkdir": workdir});
    match request(addr, "POST", "/init", Some(serde_json::to_vec(&body).expect("json"))).await {
        Ok((status, _)) if (200..300).contains(&status) => Ok(()),
        Ok((status, body)) => {
            Err(VmError::Failed(format!("envd /init answered {status}: {}", String::from_utf8_lossy(&body))))
        }
        Err(e) => Err(VmError::Failed(format!("envd /init: {e}"))),
    }
}

/// Runs a shell command in the guest through envd's `process.Process/Start` (a Connect
/// server stream) and waits for it to end. Used to warm a template's page cache before it is
/// snapshotted, so the first command in every sandbox does not read binaries from disk.
pub async fn run_shell(addr: SocketAddr, cmd: &str, deadline: Duration) -> Result<()> {
    run(addr, None, "/bin/bash", &["-l", "-c", cmd], deadline).await
}

/// Runs `cmd args` as root in the guest (envd's `process.Process/Start`, authenticated with
/// the sandbox's access token if it has one) and waits for it to end. Fails unless it exited 0.
pub async fn run(addr: SocketAddr, token: Option<&str>, cmd: &str, args: &[&str], deadline: Duration) -> Result<()> {
    start(addr, token, "root", cmd, args, deadline).await
}

/// Runs `cmd args` as `user` (no access token) and waits for it to end; fails unless it
/// exited 0. A user the guest does not have is not an error (nothing to warm up).
pub async fn run_as(addr: SocketAddr, user: &str, cmd: &str, args: &[&str], deadline: Duration) -> Result<()> {
    match start(addr, None, user, cmd, args, deadline).await {
        Err(VmError::Failed(m)) if m.contains("invalid user") => Ok(()),
        r => r,
    }
}

async fn start(addr: SocketAddr, token: Option<&str>, user: &str, cmd: &str, args: &[&str], deadline: Duration) -> Result<()> {
    use base64::Engine;
    let msg = serde_json::json!({"process": {"cmd": cmd, "args": args, "envs": {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}}});
    let json = serde_json::to_vec(&msg).expect("json");
    let mut body = Vec::with_capacity(json.len() + 5);
    body.push(0u8);
    body.extend_from_slice(&(json.len() as u32).to_be_bytes());
    body.extend_from_slice(&json);
    // envd runs a process as the user named in basic auth (`<user>:`, no password).
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:")));
    let mut headers = vec![("authorization", auth.as_str())];
    headers.extend(token.map(|t| ("x-access-token", t)));
    let call = request_with(addr, "POST", "/process.Process/Start", Some(body), "application/connect+json", &headers);
    match tokio::time::timeout(deadline, call).await {
        Ok(Ok((200, stream))) => {
            // proto3 JSON leaves out a zero exit code: any `exitCode` or `error` is a failure.
            let text = String::from_utf8_lossy(&stream);
            if text.contains("\"exitCode\"") || text.contains("\"error\"") {
                return Err(VmError::Failed(format!("{cmd} in the guest failed: {}", text.trim())));
            }
            Ok(())
        }
        Ok(Ok((status, b))) => Err(VmError::Failed(format!("envd Start answered {status}: {}", String::from_utf8_lossy(&b)))),
        Ok(Err(e)) => Err(VmError::Failed(format!("envd Start: {e}"))),
        Err(_) => Err(VmError::Failed(format!("{cmd} did not finish within {deadline:?}"))),
    }
}

/// Sets the guest's wall clock to the host's (after a snapshot froze the source for a while).
/// Leaves the access token and everything else as they are.
pub async fn sync_clock(addr: SocketAddr) -> Result<()> {
    let body = serde_json::json!({"timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)});
    let call = request(addr, "POST", "/init", Some(serde_json::to_vec(&body).expect("json")));
    match tokio::time::timeout(Duration::from_secs(5), call).await {
        Ok(Ok((status, _))) if (200..300).contains(&status) => Ok(()),
        Ok(Ok((status, b))) => Err(VmError::Failed(format!("envd /init answered {status}: {}", String::from_utf8_lossy(&b)))),
        Ok(Err(e)) => Err(VmError::Failed(format!("envd /init: {e}"))),
        Err(_) => Err(VmError::Failed("envd /init timed out".into())),
    }
}

/// True when envd answers `GET /health` within `within`.
pub async fn healthy(addr: SocketAddr, within: Duration) -> bool {
    matches!(tokio::time::timeout(within, request(addr, "GET", "/health", None)).await, Ok(Ok((s, _))) if (200..300).contains(&s))
}
