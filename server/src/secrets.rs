//! E2B's secrets API: named, versioned, write-only values (`POST/GET /secrets`,
//! `GET/POST/DELETE /secrets/{secretID}`).
//!
//! Invariants:
//! - Every request is validated in full before anything is stored: a name is lower-cased, has
//!   no `{`, `}` or control characters (it is interpolated into `${e2b.secrets.<name>}`) and
//!   does not start with the reserved `sec_`; metadata stays within E2B's limits.
//! - No response carries a value. Values never leave the store through this API.
//! - A secret is addressed by its ID (`sec_…`) or its name; an ID wins if both match.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::pagination::Cursor;
use crate::store::{self, SecretRow, Store};

/// Prefix of secret IDs; names may not start with it.
pub const ID_PREFIX: &str = "sec_";
const MAX_NAME_BYTES: usize = 255;
const MAX_VALUE_BYTES: usize = 64 * 1024;
const MAX_METADATA_ENTRIES: usize = 32;
const MAX_METADATA_KEY_BYTES: usize = 128;
const MAX_METADATA_VALUE_BYTES: usize = 1024;
const MAX_METADATA_BYTES: usize = 8192;

/// `NewSecret`.
#[derive(Debug, Deserialize)]
pub struct NewSecret {
    pub name: Option<String>,
    pub value: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

/// `SecretUpdate`.
#[derive(Debug, Deserialize)]
pub struct SecretUpdate {
    pub value: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

/// `Secret`: metadata only, never the value.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretInfo {
    #[serde(rename = "secretID")]
    pub secret_id: String,
    pub name: String,
    pub current_version: i64,
    pub metadata: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<SecretRow> for SecretInfo {
    fn from(r: SecretRow) -> Self {
        SecretInfo {
            secret_id: r.id,
            name: r.name,
            current_version: r.current_version,
            metadata: r.metadata,
            created_at: ids::ns_to_datetime(r.created_at),
            updated_at: ids::ns_to_datetime(r.updated_at),
        }
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(format!("secret \"{id}\" not found"))
}

/// The canonical (lower-cased) form of a valid name.
pub fn canonical_name(name: &str) -> ApiResult<String> {
    let bad = |why: &str| ApiError::bad_request(format!("invalid secret name {name:?}: {why}"));
    if name.is_empty() {
        return Err(bad("it must not be empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(bad(&format!("it is longer than {MAX_NAME_BYTES} bytes")));
    }
    if name.chars().any(|c| c == '{' || c == '}' || c.is_control()) {
        return Err(bad("it cannot contain '{', '}' or control characters"));
    }
    let name = name.to_lowercase();
    if name.starts_with(ID_PREFIX) {
        return Err(bad("the sec_ prefix is reserved for secret identifiers"));
    }
    Ok(name)
}

fn check_value(value: Option<String>) -> ApiResult<String> {
    match value {
        None => Err(ApiError::bad_request("value is required")),
        Some(v) if v.is_empty() => Err(ApiError::bad_request("value must not be empty")),
        Some(v) if v.len() > MAX_VALUE_BYTES => {
            Err(ApiError::bad_request(format!("value is longer than {MAX_VALUE_BYTES} bytes")))
        }
        Some(v) => Ok(v),
    }
}

fn check_metadata(m: &BTreeMap<String, String>) -> ApiResult<()> {
    let bad = |why: String| Err(ApiError::bad_request(format!("invalid secret metadata: {why}")));
    if m.len() > MAX_METADATA_ENTRIES {
        return bad(format!("{} entries, at most {MAX_METADATA_ENTRIES} are allowed", m.len()));
    }
    let mut total = 0;
    for (k, v) in m {
        if k.is_empty() {
            return bad("keys must not be empty".into());
        }
        if k.len() > MAX_METADATA_KEY_BYTES {
            return bad(format!("key {k:?} is longer than {MAX_METADATA_KEY_BYTES} bytes"));
        }
        if v.len() > MAX_METADATA_VALUE_BYTES {
            return bad(format!("the value of {k:?} is longer than {MAX_METADATA_VALUE_BYTES} bytes"));
        }
        total += k.len() + v.len();
    }
    if total > MAX_METADATA_BYTES {
        return bad(format!("{total} bytes in total, at most {MAX_METADATA_BYTES} are allowed"));
    }
    Ok(())
}

pub fn create(store: &Store, req: NewSecret) -> ApiResult<SecretInfo> {
    let name = canonical_name(req.name.as_deref().ok_or_else(|| ApiError::bad_request("name is required"))?)?;
    let value = check_value(req.value)?;
    let metadata = req.metadata.unwrap_or_default();
    check_metadata(&metadata)?;
    let now = ids::now_ns();
    let row = SecretRow {
        id: format!("{ID_PREFIX}{}", ids::image_id()),
        name,
        current_version: 1,
        metadata,
        created_at: now,
        updated_at: now,
    };
    match store.insert_secret(&row, &value) {
        Ok(()) => Ok(row.into()),
        Err(store::Error::Conflict(_)) => {
            Err(ApiError::conflict(format!("a secret named \"{}\" already exists", row.name)))
        }
        Err(e) => Err(e.into()),
    }
}

/// The secret `id_or_name` refers to (a name is matched in its canonical form).
fn find(store: &Store, id_or_name: &str) -> ApiResult<SecretRow> {
    let key = if id_or_name.starts_with(ID_PREFIX) { id_or_name.to_string() } else { id_or_name.to_lowercase() };
    store.find_secret(&key)?.ok_or_else(|| not_found(id_or_name))
}

pub fn get(store: &Store, id_or_name: &str) -> ApiResult<SecretInfo> {
    find(store, id_or_name).map(SecretInfo::from)
}

pub fn update(store: &Store, id_or_name: &str, req: SecretUpdate) -> ApiResult<SecretInfo> {
    let value = check_value(req.value)?;
    if let Some(m) = &req.metadata {
        check_metadata(m)?;
    }
    let row = find(store, id_or_name)?;
    store
        .add_secret_version(&row.id, &value, req.metadata.as_ref(), ids::now_ns())?
        .map(SecretInfo::from)
        .ok_or_else(|| not_found(id_or_name))
}

pub fn destroy(store: &Store, id_or_name: &str) -> ApiResult<()> {
    let row = find(store, id_or_name)?;
    if store.delete_secret(&row.id)? { Ok(()) } else { Err(not_found(id_or_name)) }
}

/// One page plus the extra row that tells whether there is another.
pub fn list(store: &Store, cursor: Option<&Cursor>, limit: usize) -> ApiResult<Vec<SecretRow>> {
    Ok(store.list_secrets(cursor, limit)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(canonical_name("OpenAI-Key").unwrap(), "openai-key");
        assert_eq!(canonical_name("a.b_c d").unwrap(), "a.b_c d");
        for bad in ["", "a{b", "a}b", "a\nb", "a\u{7f}", "sec_x", "SEC_x"] {
            let e = canonical_name(bad).unwrap_err();
            assert_eq!(e.status, 400, "{bad:?}");
            assert!(e.message.contains("invalid secret name"), "{}", e.message);
        }
        assert!(canonical_name(&"x".repeat(256)).is_err());
    }

    #[test]
    fn metadata_limits() {
        let ok: BTreeMap<_, _> = (0..32).map(|i| (format!("k{i}"), "v".repeat(200))).collect();
        check_metadata(&ok).unwrap();
        let too_many: BTreeMap<_, _> = (0..33).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(check_metadata(&too_many).unwrap_err().message.contains("33 entries"));
        let long_key = BTreeMap::from([("k".repeat(129), String::new())]);
        assert!(check_metadata(&long_key).is_err());
        let long_value = BTreeMap::from([("k".into(), "v".repeat(1025))]);
        assert!(check_metadata(&long_value).is_err());
        let too_big: BTreeMap<_, _> = (0..9).map(|i| (format!("k{i}"), "v".repeat(1000))).collect();
        assert!(check_metadata(&too_big).unwrap_err().message.contains("in total"));
    }

    #[test]
    fn values() {
        assert!(check_value(None).is_err());
        assert!(check_value(Some(String::new())).is_err());
        assert!(check_value(Some("x".repeat(MAX_VALUE_BYTES + 1))).is_err());
        assert_eq!(check_value(Some("s3cr3t".into())).unwrap(), "s3cr3t");
    }
}
