//! E2B's volumes: named, persistent file trees managed through the REST API (`/volumes`) and
//! read and written through the volume content API (`/volumecontent/{volumeID}/…`, see
//! [`content`]) with the volume's own bearer token.
//!
//! Layout: `<data>/volumes/<id>/data` is the volume's tree, `<data>/volumes/<id>/tmp` holds
//! uploads until they are complete (same filesystem, so publishing one is a rename).
//!
//! Invariants:
//! - A volume row exists only once its directories exist; deleting drops the row first, so a
//!   crash mid-delete leaves an orphan directory (removed at the next start), never a row
//!   without files.
//! - Every content request names its volume and carries that volume's token; a token opens
//!   exactly one volume.
//! - Volumes mounted into sandboxes (`volumeMounts`) are served from the same tree: envd
//!   mounts each as a FUSE file system whose operations come back to sandboxd over the
//!   sandbox's volume channel ([`channel`], [`serve`], [`wire`]; see `manager/volumes.rs`).

pub mod at;
pub mod channel;
pub mod content;
pub mod serve;
pub mod wire;

use std::path::PathBuf;

use axum::http::{HeaderMap, StatusCode, header};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::store::{Store, VolumeRow};

const MAX_NAME_LEN: usize = 63;

/// `NewVolume`.
#[derive(Debug, Deserialize)]
pub struct NewVolume {
    pub name: Option<String>,
}

/// `VolumeAndToken` (and `Volume` = without the token, for lists).
#[derive(Debug, Serialize)]
pub struct VolumeInfo {
    #[serde(rename = "volumeID")]
    pub volume_id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

fn info(r: VolumeRow, with_token: bool) -> VolumeInfo {
    VolumeInfo { volume_id: r.id, name: r.name, token: with_token.then_some(r.token) }
}

/// A volume mounted into a sandbox: E2B's `SandboxVolumeMount` (`name`, `path`) plus the
/// volume's ID, which is what the guest's mount serves (a volume renamed or re-created under
/// the same name is not silently swapped in).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    pub name: String,
    pub path: String,
    #[serde(rename = "volumeID")]
    pub volume_id: String,
}

/// The tree a mounted volume serves: `<data>/volumes/<id>/data`.
pub fn data_dir(data: &std::path::Path, id: &str) -> PathBuf {
    root(data).join(id).join(content::DATA)
}

/// The root of all volumes.
pub fn root(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("volumes")
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("volume \"{id}\" not found"))
}

fn check_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid volume name {name:?}: 1 to {MAX_NAME_LEN} letters, digits, '-' or '_'"
        )))
    }
}

/// Volume operations over the store and `<data>/volumes`.
#[derive(Clone)]
pub struct Volumes {
    root: PathBuf,
}

impl Volumes {
    /// Prepare `<data>/volumes`, removing directories whose row is gone (an interrupted delete).
    pub fn open(data_dir: &std::path::Path, store: &Store) -> anyhow::Result<Self> {
        let root = root(data_dir);
        std::fs::create_dir_all(&root)?;
        let known: std::collections::HashSet<String> = store.list_volumes()?.into_iter().map(|v| v.id).collect();
        for entry in std::fs::read_dir(&root)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !known.contains(&name) {
                tracing::info!(dir = %entry.path().display(), "removing the files of a deleted volume");
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        Ok(Volumes { root })
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    pub fn create(&self, store: &Store, req: NewVolume) -> ApiResult<VolumeInfo> {
        let name = req.name.ok_or_else(|| ApiError::bad_request("name is required"))?;
        check_name(&name)?;
        let row = VolumeRow { id: ids::image_id(), name, token: ids::secret_hex(32), created_at: ids::now_ns() };
        let dir = self.dir(&row.id);
        std::fs::create_dir_all(dir.join(content::DATA))?;
        std::fs::create_dir_all(dir.join(content::TMP))?;
        if !store.insert_volume(&row)? {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(ApiError::conflict(format!("a volume named \"{}\" already exists", row.name)));
        }
        Ok(info(row, true))
    }

    pub fn get(&self, store: &Store, id: &str) -> ApiResult<VolumeInfo> {
        store.find_volume(id)?.map(|r| info(r, true)).ok_or_else(|| not_found(id))
    }

    pub fn list(&self, store: &Store) -> ApiResult<Vec<VolumeInfo>> {
        Ok(store.list_volumes()?.into_iter().map(|r| info(r, false)).collect())
    }

    pub async fn delete(&self, store: &Store, id: &str) -> ApiResult<()> {
        if !store.delete_volume(id)? {
            return Err(not_found(id));
        }
        let dir = self.dir(id);
        tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })?;
        Ok(())
    }

    /// The volume a content request may use: it exists and the bearer token is its own.
    pub fn authorize(&self, store: &Store, id: &str, headers: &HeaderMap) -> ApiResult<content::Tree> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(ApiError::unauthorized("missing volume token: send Authorization: Bearer <token>"));
        };
        let row = store.find_volume(id)?.ok_or_else(|| not_found(id))?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(row.token.as_bytes(), token.as_bytes())) {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid volume token"));
        }
        Ok(content::Tree::new(self.dir(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["data", "my-vol_2", &"x".repeat(63)] {
            check_name(ok).unwrap();
        }
        for bad in ["", "a b", "a/b", "..", &"x".repeat(64), "é"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
