//! Pre-signed file URLs (`upload_url` / `download_url`) sent to sandboxd's own address.
//!
//! With `E2B_SANDBOX_URL` set (how sandboxd is used without wildcard DNS), the SDKs build a
//! signed file URL as `<sandbox URL>/files?path=…&signature=…`, which names no sandbox. The
//! signature is `"v1_" + base64(sha256("<path>:<read|write>:<user>:<token>[:<expiry>]"))` over
//! the envd access token of the sandbox it was made for, and sandboxd holds the token of every
//! secure sandbox: the one whose token reproduces the signature is the one the URL is for, and
//! the request is forwarded to it. envd then checks the signature again, its expiry included
//! (an expired URL gets envd's 401). A signature that matches no sandbox is a 401 too.
//!
//! Invariant: a request is only ever routed to the sandbox whose own token signed it, so a
//! URL cannot reach another sandbox; comparisons are constant-time.

use std::collections::HashMap;

use axum::extract::{Query, Request};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::store::Store;

/// E2B's v1 file-URL signature.
pub fn signature(path: &str, operation: &str, user: &str, token: &str, expiration: Option<&str>) -> String {
    let raw = match expiration {
        Some(exp) => format!("{path}:{operation}:{user}:{token}:{exp}"),
        None => format!("{path}:{operation}:{user}:{token}"),
    };
    format!("v1_{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(raw.as_bytes())))
}

/// For a signed `/files` request that names no sandbox: `Some(Ok(id))` of the sandbox that
/// signed it, `Some(Err(401))` when none did, `None` when it is not such a request.
pub fn route(req: &Request, store: &Store) -> Option<Result<String, Response>> {
    if req.uri().path() != "/files" || !matches!(*req.method(), Method::GET | Method::POST) {
        return None;
    }
    let Query(q) = Query::<HashMap<String, String>>::try_from_uri(req.uri()).ok()?;
    let given = q.get("signature")?;
    let operation = if req.method() == Method::GET { "read" } else { "write" };
    let path = q.get("path").map_or("", String::as_str);
    let user = q.get("username").map_or("", String::as_str);
    let expiration = q.get("signature_expiration").map(String::as_str);
    let tokens = match store.access_tokens() {
        Ok(tokens) => tokens,
        Err(e) => return Some(Err(ApiError::internal(e.to_string()).into_response())),
    };
    let found = tokens.into_iter().find(|(_, token)| {
        let expected = signature(path, operation, user, token, expiration);
        expected.len() == given.len() && bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
    });
    Some(match found {
        Some((id, _)) => Ok(id),
        None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid signature: it matches no sandbox's file URL").into_response()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_sdks() {
        // e2b 2.63 `get_signature("/home/user/a.txt", "read", None, "tok")`.
        let sig = signature("/home/user/a.txt", "read", "", "tok", None);
        let raw = Sha256::digest(b"/home/user/a.txt:read::tok");
        assert_eq!(sig, format!("v1_{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(raw)));
        assert_ne!(sig, signature("/home/user/a.txt", "write", "", "tok", None));
        assert_ne!(sig, signature("/home/user/a.txt", "read", "", "tok", Some("1")));
    }
}
