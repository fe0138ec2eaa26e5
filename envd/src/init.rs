//! `POST /init`: called by the host (sandboxd) after every VM boot or restore.
//!
//! Contract (all fields optional, JSON):
//! - `accessToken`: string → required as `X-Access-Token` from now on; `null` → no
//!   token required; absent → unchanged (so the host can send just a `timestamp` to
//!   resync the clock of a sandbox that was paused for a snapshot);
//! - `envVars`: merged into the environment of every process started afterwards;
//! - `timestamp` (RFC 3339): the wall clock is set to it (a restored VM wakes up
//!   with the clock of the moment it was snapshotted);
//! - `entropy` (base64): mixed into the kernel pool, so clones of one snapshot do
//!   not share their random state;
//! - `defaultUser`, `defaultWorkdir`: used when a request names no user / cwd.
//!
//! Replies 204. The work is a few syscalls, well under the 10 ms budget.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use serde::Deserialize;

use crate::state::Shared;

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct InitRequest {
    /// Outer `None`: the field was absent; `Some(None)`: it was `null`.
    #[serde(alias = "access_token", deserialize_with = "present")]
    pub access_token: Option<Option<String>>,
    #[serde(alias = "env_vars")]
    pub env_vars: Option<BTreeMap<String, String>>,
    pub timestamp: Option<String>,
    #[serde(alias = "default_user")]
    pub default_user: Option<String>,
    #[serde(alias = "default_workdir")]
    pub default_workdir: Option<String>,
    pub entropy: Option<String>,
}

/// Distinguishes a `null` field from an absent one (absent stays `None` via `default`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::<String>::deserialize(d)?))
}

pub async fn init(State(state): State<Shared>, body: Bytes) -> Response {
    let req: InitRequest = if body.iter().all(u8::is_ascii_whitespace) {
        InitRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => return bad_request(format!("invalid init body: {e}")),
        }
    };
    let timestamp = match req
        .timestamp
        .as_deref()
        .map(chrono::DateTime::parse_from_rfc3339)
    {
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => return bad_request(format!("invalid timestamp: {e}")),
        None => None,
    };
    let entropy = match req.entropy.as_deref().map(crate::proto::b64::decode) {
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => return bad_request(format!("invalid entropy: {e}")),
        None => None,
    };

    if let Some(t) = timestamp
        && let Err(e) = set_clock(t.timestamp(), t.timestamp_subsec_nanos())
    {
        tracing::warn!("setting the clock failed: {e}");
    }
    if let Some(bytes) = entropy.filter(|b| !b.is_empty())
        && let Err(e) = add_entropy(&bytes)
    {
        tracing::warn!("adding entropy failed: {e}");
    }

    let mut rt = state.runtime.write().unwrap_or_else(|e| e.into_inner());
    if let Some(token) = req.access_token {
        rt.access_token = token.filter(|t| !t.is_empty());
    }
    if let Some(vars) = req.env_vars {
        rt.env_vars.extend(vars);
    }
    if let Some(user) = req.default_user.filter(|u| !u.is_empty()) {
        rt.default_user = user;
    }
    if let Some(dir) = req.default_workdir.filter(|d| !d.is_empty()) {
        rt.default_workdir = Some(dir.into());
    }
    StatusCode::NO_CONTENT.into_response()
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({"code": 400, "message": message})),
    )
        .into_response()
}

fn set_clock(secs: i64, nanos: u32) -> std::io::Result<()> {
    let ts = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: nanos as _,
    };
    // SAFETY: clock_settime reads the timespec we pass.
    if unsafe { libc::clock_settime(libc::CLOCK_REALTIME, &ts) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Credits `bytes` to the kernel pool with RNDADDENTROPY; without CAP_SYS_ADMIN,
/// writing them to /dev/urandom still mixes them in (uncredited).
fn add_entropy(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let mut dev = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/urandom")?;
    // struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
    let mut req = Vec::with_capacity(8 + bytes.len());
    req.extend_from_slice(&((bytes.len() * 8) as i32).to_ne_bytes());
    req.extend_from_slice(&(bytes.len() as i32).to_ne_bytes());
    req.extend_from_slice(bytes);
    // RNDADDENTROPY = _IOW('R', 0x03, int[2])
    const RNDADDENTROPY: libc::c_ulong = 0x4008_5203;
    // SAFETY: the kernel reads `8 + buf_size` bytes from our buffer, which has exactly that length.
    let rc = unsafe { libc::ioctl(dev.as_raw_fd(), RNDADDENTROPY as _, req.as_ptr()) };
    if rc == 0 {
        return Ok(());
    }
    dev.write_all(bytes)
}
