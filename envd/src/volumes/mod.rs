//! Volumes mounted into the sandbox (E2B's `volumeMounts`).
//!
//! sandboxd opens `GET /sandboxd/volumes` with the mounts the sandbox must have (header
//! `x-volume-mounts`: base64 of a JSON list of `{volumeId, path}`), envd mounts each one that
//! is not mounted yet as a FUSE file system ([`fs`]) and answers `101 Switching Protocols`;
//! the upgraded connection then carries the volume channel ([`wire`], [`hub`]) on which
//! sandboxd serves the volumes' files from the host.
//!
//! Mounts live in the guest (kernel and this process), so they survive snapshots, pauses
//! and clones; after every restore sandboxd opens the channel again and the same mounts go
//! on working. Without a channel, file operations on a volume wait (up to [`hub::WAIT`]).

mod fs;
mod hub;
mod wire;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{StatusCode, header};
use serde::Deserialize;

static HUB: LazyLock<hub::Hub> = LazyLock::new(hub::Hub::default);

struct Mounted {
    volume_id: String,
    /// Unmounts when dropped; mounts stay for the life of the sandbox.
    _session: fuser::BackgroundSession,
}

static MOUNTS: LazyLock<Mutex<BTreeMap<PathBuf, Mounted>>> = LazyLock::new(Default::default);

pub const MOUNTS_HEADER: &str = "x-volume-mounts";
pub const PROTOCOL: &str = "sandboxd-volumes";

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MountSpec {
    volume_id: String,
    path: String,
}

fn error(status: StatusCode, message: String) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"code": status.as_u16(), "message": message})),
    )
        .into_response()
}

fn parse_specs(req: &Request) -> Result<Vec<MountSpec>, String> {
    let raw = req
        .headers()
        .get(MOUNTS_HEADER)
        .ok_or(format!("missing {MOUNTS_HEADER}"))?;
    let json = base64::engine::general_purpose::STANDARD
        .decode(raw.as_bytes())
        .map_err(|e| format!("{MOUNTS_HEADER}: {e}"))?;
    serde_json::from_slice(&json).map_err(|e| format!("{MOUNTS_HEADER}: {e}"))
}

/// An absolute, normalised path other than `/`.
fn mount_point(path: &str) -> Result<PathBuf, String> {
    let plain = path
        .strip_prefix('/')
        .is_some_and(|rest| rest.split('/').all(|c| !matches!(c, "" | "." | "..")));
    if !plain {
        return Err(format!(
            "mount path {path:?} must be absolute, other than /, without . or .."
        ));
    }
    Ok(PathBuf::from(path))
}

fn mount(spec: &MountSpec) -> Result<(), String> {
    let path = mount_point(&spec.path)?;
    let mut mounts = MOUNTS.lock().unwrap_or_else(|e| e.into_inner());
    match mounts.get(&path) {
        Some(m) if m.volume_id == spec.volume_id => return Ok(()),
        Some(m) => {
            return Err(format!(
                "{} already has volume {} mounted",
                path.display(),
                m.volume_id
            ));
        }
        None => {}
    }
    if !Path::new("/dev/fuse").exists() {
        return Err("this sandbox's kernel has no FUSE device (/dev/fuse): its template was built \
                    before volume mounts were supported; rebuild it"
            .into());
    }
    std::fs::create_dir_all(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
    let mut cfg = fuser::Config::default();
    cfg.mount_options = vec![
        fuser::MountOption::FSName(format!("e2b-volume-{}", spec.volume_id)),
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
    ];
    cfg.acl = fuser::SessionACL::All;
    cfg.n_threads = Some(4);
    let fs = fs::VolumeFs::new(spec.volume_id.clone(), &HUB);
    let session = fuser::spawn_mount(fs, &path, &cfg)
        .map_err(|e| format!("mounting volume {} at {}: {e}", spec.volume_id, path.display()))?;
    tracing::info!(volume = %spec.volume_id, path = %path.display(), "volume mounted");
    mounts.insert(
        path,
        Mounted {
            volume_id: spec.volume_id.clone(),
            _session: session,
        },
    );
    Ok(())
}

/// `GET /sandboxd/volumes` (an HTTP upgrade): mounts what is missing, then serves the channel.
pub async fn attach(mut req: Request) -> Response {
    let specs = match parse_specs(&req) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(PROTOCOL.as_bytes()));
    if !upgrade {
        return error(
            StatusCode::BAD_REQUEST,
            format!("expected Upgrade: {PROTOCOL}"),
        );
    }
    let mounted = tokio::task::spawn_blocking(move || specs.iter().try_for_each(mount)).await;
    match mounted {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return error(StatusCode::BAD_REQUEST, e),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(io) => HUB.attach(hyper_util::rt::TokioIo::new(io)),
            Err(e) => tracing::warn!("volume channel upgrade failed: {e}"),
        }
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [(header::CONNECTION, "upgrade"), (header::UPGRADE, PROTOCOL)],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_plain_absolute_paths() {
        assert!(mount_point("/mnt/data").is_ok());
        for bad in ["/", "mnt", "/mnt/../etc", "/mnt/./x", "", "/mnt/", "//mnt"] {
            assert!(mount_point(bad).is_err(), "{bad:?}");
        }
    }
}
