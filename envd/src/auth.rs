//! Access-token enforcement and pre-signed `/files` URLs.
//!
//! Once `/init` set a token, every route but `/health` and `/init` needs
//! `X-Access-Token` equal to it; `/files` also accepts a v1 signature
//! (`uploadUrl`/`downloadUrl` of the SDKs) instead of the header.
//! Comparisons are constant-time so the token cannot be guessed byte by byte.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http::{Method, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::state::Shared;

pub const ACCESS_TOKEN_HEADER: &str = "x-access-token";

fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub async fn require_token(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == "/health" || path == "/init" {
        return next.run(req).await;
    }
    let Some(token) = state.runtime().access_token else {
        return next.run(req).await;
    };
    let header_ok = req
        .headers()
        .get(ACCESS_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| ct_eq(v, &token));
    if header_ok || (path == "/files" && signature_ok(&req, &token)) {
        return next.run(req).await;
    }
    unauthorized(path)
}

fn unauthorized(path: &str) -> Response {
    // Connect clients expect a Connect error body; plain HTTP routes get envd's `{code, message}`.
    let body = if path.starts_with("/process.") || path.starts_with("/filesystem.") {
        serde_json::json!({"code": "unauthenticated", "message": "invalid or missing access token"})
    } else {
        serde_json::json!({"code": 401, "message": "invalid or missing access token"})
    };
    // The request's body is left unread, so this connection cannot carry another request:
    // say so, or a client that pools connections (sandboxd's proxy) may send the next request
    // into a connection envd is closing, and that request fails.
    (StatusCode::UNAUTHORIZED, [(http::header::CONNECTION, "close")], axum::Json(body)).into_response()
}

/// Checks `signature` (and `signature_expiration`) of a `/files` request:
/// `"v1_" + base64(sha256("<path>:<read|write>:<user>:<token>[:<exp>]"))`, unpadded.
fn signature_ok(req: &Request, token: &str) -> bool {
    let query = req.uri().query().unwrap_or("");
    let param = |name: &str| url_pairs(query).find(|(k, _)| k == name).map(|(_, v)| v);
    let Some(signature) = param("signature") else {
        return false;
    };
    let path = param("path").unwrap_or_default();
    let user = param("username").unwrap_or_default();
    let operation = if req.method() == Method::GET {
        "read"
    } else {
        "write"
    };
    let expiration = param("signature_expiration");
    if let Some(exp) = &expiration {
        let Ok(exp) = exp.parse::<i64>() else {
            return false;
        };
        if exp < chrono::Utc::now().timestamp() {
            return false;
        }
    }
    let raw = match &expiration {
        Some(exp) => format!("{path}:{operation}:{user}:{token}:{exp}"),
        None => format!("{path}:{operation}:{user}:{token}"),
    };
    let expected = format!(
        "v1_{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(raw.as_bytes()))
    );
    ct_eq(&signature, &expected)
}

/// Decoded `key=value` pairs of a query string.
pub fn url_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let dec = |s: &str| {
            percent_encoding::percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        (dec(k), dec(v))
    })
}
