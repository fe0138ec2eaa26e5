//! API keys: `X-API-KEY` on every REST route except `GET /health`.
//!
//! Invariants: only SHA-256 hashes of keys are stored; comparison is constant-time over every
//! stored hash; the first start creates a key `e2b_<40 hex>` (the form the E2B SDKs accept)
//! and writes it to `<data>/api_key` with mode 0600. A key file left from an earlier database
//! is registered again, so deleting the database never locks the owner out.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::store::Store;

pub const API_KEY_HEADER: &str = "x-api-key";

/// The stored key hashes, loaded once at start.
#[derive(Clone)]
pub struct Keys(Arc<Vec<[u8; 32]>>);

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.trim().as_bytes()).into()
}

impl Keys {
    /// Creates the first key if there is none, then loads every stored hash.
    pub fn ensure(store: &Store, key_file: &Path) -> anyhow::Result<Self> {
        if let Ok(existing) = std::fs::read_to_string(key_file)
            && !existing.trim().is_empty()
        {
            store.add_api_key_hash(&hash(&existing))?;
        }
        if store.api_key_hashes()?.is_empty() {
            let key = format!("e2b_{}", crate::ids::secret_hex(20));
            let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(key_file)?;
            f.write_all(key.as_bytes())?;
            f.sync_all()?;
            store.add_api_key_hash(&hash(&key))?;
            tracing::info!(path = %key_file.display(), "created the API key");
        }
        let hashes = store
            .api_key_hashes()?
            .into_iter()
            .filter_map(|h| <[u8; 32]>::try_from(h.as_slice()).ok())
            .collect();
        Ok(Self(Arc::new(hashes)))
    }

    pub fn check(&self, presented: &str) -> bool {
        let h = hash(presented);
        // Visit every hash so timing does not reveal which one matched.
        self.0.iter().fold(subtle::Choice::from(0), |acc, stored| acc | stored.ct_eq(&h)).into()
    }

    pub fn check_headers(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(value) = headers.get(API_KEY_HEADER) else {
            return Err(ApiError::unauthorized("missing API key: send it in the X-API-KEY header"));
        };
        match value.to_str() {
            Ok(key) if self.check(key) => Ok(()),
            _ => Err(ApiError::unauthorized("invalid API key")),
        }
    }
}

/// axum middleware guarding the authenticated routes.
pub async fn require_api_key(State(keys): State<Keys>, req: Request, next: Next) -> Response {
    match keys.check_headers(req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}
