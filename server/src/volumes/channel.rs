//! Opening a sandbox's volume channel: `GET /sandboxd/volumes` on its envd, upgraded to the
//! channel once envd has mounted every volume the sandbox must have (see envd's `volumes`).

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;

pub const PROTOCOL: &str = "sandboxd-volumes";
const MOUNTS_HEADER: &str = "x-volume-mounts";
/// Mounting takes envd a few milliseconds; this bounds a guest that does not answer.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// One volume the guest must have mounted.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GuestMount {
    pub volume_id: String,
    pub path: String,
}

/// Why the channel could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// envd refused the mounts (e.g. a guest kernel without FUSE): its message.
    #[error("{0}")]
    Refused(String),
    #[error("volume channel to envd: {0}")]
    Io(String),
}

pub type Upgraded = TokioIo<hyper::upgrade::Upgraded>;

pub async fn open(addr: SocketAddr, token: Option<&str>, mounts: &[GuestMount]) -> Result<Upgraded, OpenError> {
    tokio::time::timeout(OPEN_TIMEOUT, open_inner(addr, token, mounts))
        .await
        .map_err(|_| OpenError::Io(format!("envd did not answer within {} s", OPEN_TIMEOUT.as_secs())))?
}

async fn open_inner(addr: SocketAddr, token: Option<&str>, mounts: &[GuestMount]) -> Result<Upgraded, OpenError> {
    let io_err = |e: &dyn std::fmt::Display| OpenError::Io(e.to_string());
    let json = serde_json::to_vec(mounts).map_err(|e| io_err(&e))?;
    let stream = TcpStream::connect(addr).await.map_err(|e| io_err(&e))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| io_err(&e))?;
    tokio::spawn(conn.with_upgrades());
    let mut req = Request::get("/sandboxd/volumes")
        .header("host", "envd")
        .header(hyper::header::CONNECTION, "upgrade")
        .header(hyper::header::UPGRADE, PROTOCOL)
        .header(MOUNTS_HEADER, base64::engine::general_purpose::STANDARD.encode(json));
    if let Some(t) = token {
        req = req.header("x-access-token", t);
    }
    let req = req.body(Empty::<Bytes>::new()).map_err(|e| io_err(&e))?;
    let resp = sender.send_request(req).await.map_err(|e| io_err(&e))?;
    let status = resp.status();
    if status != hyper::StatusCode::SWITCHING_PROTOCOLS {
        let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(match status.as_u16() {
            400 => OpenError::Refused(message),
            // An envd from before volume mounts has no such route.
            404 => OpenError::Refused(
                "this sandbox's envd cannot mount volumes: its template was built before volume mounts were \
                 supported; rebuild it"
                    .into(),
            ),
            s => OpenError::Io(format!("envd answered {s}: {message}")),
        });
    }
    let upgraded = hyper::upgrade::on(resp).await.map_err(|e| io_err(&e))?;
    Ok(TokioIo::new(upgraded))
}
