//! Pre-signed `/files` URLs (`upload_url`, `download_url`): E2B's v1 signature, so a plain HTTP
//! client (a browser, curl) can read or write one file without the envd access token.
//!
//! Signature: `v1_` + unpadded base64 of SHA-256 over `path:operation:user:token[:expiration]`
//! (`user` empty for the default user; `expiration` a Unix time in seconds). Unsigned URLs are
//! made when the sandbox has no access token (not `secure`), as E2B's SDK does.

use base64::Engine;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::sandbox::Sandbox;

/// What E2B's `urlencode(query, quote_via=quote)` keeps: alphanumerics and `-_.~` (`/` is encoded).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// envd versions before this one have no default user: E2B's SDK then names `user`.
const ENVD_DEFAULT_USER: (u64, u64, u64) = (0, 4, 0);

/// `read` (download) or `write` (upload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOperation {
    Read,
    Write,
}

impl FileOperation {
    fn as_str(self) -> &'static str {
        match self {
            FileOperation::Read => "read",
            FileOperation::Write => "write",
        }
    }
}

/// E2B's v1 file signature; `expiration` is a Unix time in seconds.
pub fn signature(path: &str, op: FileOperation, user: Option<&str>, token: &str, expiration: Option<i64>) -> String {
    let user = user.unwrap_or("");
    let raw = match expiration {
        None => format!("{path}:{}:{user}:{token}", op.as_str()),
        Some(e) => format!("{path}:{}:{user}:{token}:{e}", op.as_str()),
    };
    let digest = Sha256::digest(raw.as_bytes());
    format!("v1_{}", base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest))
}

/// E2B's `get_signature`: the signature of `path` for `operation` (`"read"` or `"write"`) and its
/// expiration (Unix seconds, `expires_in_secs` from now), for a sandbox's envd access token.
pub fn get_signature(
    path: &str,
    operation: &str,
    user: Option<&str>,
    token: Option<&str>,
    expires_in_secs: Option<i64>,
) -> Result<(String, Option<i64>)> {
    let op = match operation {
        "read" => FileOperation::Read,
        "write" => FileOperation::Write,
        other => return Err(Error::InvalidArgument(format!("operation must be 'read' or 'write', got '{other}'"))),
    };
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::InvalidArgument("Access token is not set and signature cannot be generated!".into()))?;
    let expiration = expires_in_secs.map(|s| chrono::Utc::now().timestamp() + s);
    Ok((signature(path, op, user, token, expiration), expiration))
}

impl Sandbox {
    /// URL to `GET` a file from (`download_url` in E2B's SDKs). `expires_in_secs` bounds a signed
    /// URL's life (only for sandboxes with an access token).
    pub fn download_url(&self, path: &str, user: Option<&str>, expires_in_secs: Option<i64>) -> Result<String> {
        self.file_url(path, user, expires_in_secs, FileOperation::Read)
    }

    /// URL to `POST` a file to as `multipart/form-data` (`upload_url` in E2B's SDKs).
    pub fn upload_url(&self, path: &str, user: Option<&str>, expires_in_secs: Option<i64>) -> Result<String> {
        self.file_url(path, user, expires_in_secs, FileOperation::Write)
    }

    fn file_url(&self, path: &str, user: Option<&str>, expires_in_secs: Option<i64>, op: FileOperation) -> Result<String> {
        let token = self.envd_access_token();
        if token.is_none() && expires_in_secs.is_some() {
            return Err(Error::InvalidArgument(
                "Signature expiration can be used only when sandbox is created as secured.".into(),
            ));
        }
        let user = match user {
            None if crate::sandbox::version_lt(self.envd_version(), ENVD_DEFAULT_USER) => Some("user"),
            u => u,
        };
        let mut query: Vec<(&str, String)> = Vec::new();
        if !path.is_empty() {
            query.push(("path", path.to_string()));
        }
        if let Some(u) = user.filter(|u| !u.is_empty()) {
            query.push(("username", u.to_string()));
        }
        if let Some(token) = token {
            let expiration = expires_in_secs.map(|s| chrono::Utc::now().timestamp() + s);
            query.push(("signature", signature(path, op, user, token, expiration)));
            if let Some(e) = expiration {
                query.push(("signature_expiration", e.to_string()));
            }
        }
        let base = self.envd_url().trim_end_matches('/');
        let q: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY))).collect();
        Ok(format!("{base}/files?{}", q.join("&")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_e2b() {
        // Python: get_signature("/a.txt", "read", None, "tok")
        // v1_ + b64(sha256("/a.txt:read::tok")) without padding.
        let s = signature("/a.txt", FileOperation::Read, None, "tok", None);
        let expect = base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(b"/a.txt:read::tok"));
        assert_eq!(s, format!("v1_{expect}"));
        let s = signature("/a", FileOperation::Write, Some("root"), "t", Some(10));
        let expect = base64::engine::general_purpose::STANDARD_NO_PAD.encode(Sha256::digest(b"/a:write:root:t:10"));
        assert_eq!(s, format!("v1_{expect}"));
    }
}
