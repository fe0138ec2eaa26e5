//! The one error type of the client, with E2B's taxonomy.
//!
//! Every variant has a stable [`ErrorKind`] that the bindings map to their own exception classes
//! (Python `SandboxException`, …; JS `SandboxError`, …). `Error` is `Clone` so a result can be
//! shared between waiters of a background command.

use std::fmt;

/// Stable classification of an [`Error`], for bindings and matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Sandbox,
    Timeout,
    InvalidArgument,
    NotEnoughSpace,
    NotFound,
    SandboxNotFound,
    FileNotFound,
    Authentication,
    RateLimit,
    ServiceBusy,
    Template,
    /// A template build failed (Python `BuildException`, JS `BuildError`).
    Build,
    /// A template build's file upload failed (`FileUploadException` / `FileUploadError`).
    FileUpload,
    CommandExit,
    /// A git command failed for want of credentials (`sandbox.git`).
    GitAuth,
    /// A git push/pull has no upstream branch to work with (`sandbox.git`).
    GitUpstream,
    /// `next_items` called after the last page (Python raises a plain `Exception`).
    NoMoreItems,
    /// A secrets API call failed (`SecretException` / `SecretError`).
    Secret,
    /// The secret does not exist (`SecretNotFoundException` / `SecretNotFoundError`).
    SecretNotFound,
    /// A volumes API call failed (`VolumeException` / `VolumeError`).
    Volume,
    /// The volume does not exist (`VolumeNotFoundException` / `VolumeNotFoundError`).
    VolumeNotFound,
    /// A path in a volume does not exist (`VolumePathNotFoundException` / `...Error`).
    VolumePathNotFound,
}

impl ErrorKind {
    /// Snake-case name, stable across releases (`"sandbox_not_found"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Sandbox => "sandbox",
            ErrorKind::Timeout => "timeout",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::NotEnoughSpace => "not_enough_space",
            ErrorKind::NotFound => "not_found",
            ErrorKind::SandboxNotFound => "sandbox_not_found",
            ErrorKind::FileNotFound => "file_not_found",
            ErrorKind::Authentication => "authentication",
            ErrorKind::RateLimit => "rate_limit",
            ErrorKind::ServiceBusy => "service_busy",
            ErrorKind::Template => "template",
            ErrorKind::Build => "build",
            ErrorKind::FileUpload => "file_upload",
            ErrorKind::CommandExit => "command_exit",
            ErrorKind::GitAuth => "git_auth",
            ErrorKind::GitUpstream => "git_upstream",
            ErrorKind::NoMoreItems => "no_more_items",
            ErrorKind::Secret => "secret",
            ErrorKind::SecretNotFound => "secret_not_found",
            ErrorKind::Volume => "volume",
            ErrorKind::VolumeNotFound => "volume_not_found",
            ErrorKind::VolumePathNotFound => "volume_path_not_found",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Message of the error raised by a paginator after its last page (E2B's wording).
pub const NO_MORE_ITEMS: &str = "No more items to fetch";

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// Generic failure; `status` is the HTTP status when an API response caused it.
    #[error("{message}")]
    Sandbox { message: String, status: Option<u16> },
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotEnoughSpace(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    SandboxNotFound(String),
    #[error("{0}")]
    FileNotFound(String),
    #[error("{0}")]
    Authentication(String),
    #[error("{0}")]
    RateLimit(String),
    #[error("{0}")]
    ServiceBusy(String),
    #[error("{0}")]
    Template(String),
    #[error("{0}")]
    Build(String),
    #[error("{0}")]
    FileUpload(String),
    /// A command finished with a non-zero exit code.
    #[error("Command exited with code {exit_code} and error:\n{stderr}")]
    CommandExit { stdout: String, stderr: String, exit_code: i32, error: Option<String> },
    #[error("{0}")]
    GitAuth(String),
    #[error("{0}")]
    GitUpstream(String),
    #[error("No more items to fetch")]
    NoMoreItems,
    #[error("{0}")]
    Secret(String),
    #[error("{0}")]
    SecretNotFound(String),
    #[error("{0}")]
    Volume(String),
    #[error("{0}")]
    VolumeNotFound(String),
    #[error("{0}")]
    VolumePathNotFound(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Sandbox { .. } => ErrorKind::Sandbox,
            Error::Timeout(_) => ErrorKind::Timeout,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::NotEnoughSpace(_) => ErrorKind::NotEnoughSpace,
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::SandboxNotFound(_) => ErrorKind::SandboxNotFound,
            Error::FileNotFound(_) => ErrorKind::FileNotFound,
            Error::Authentication(_) => ErrorKind::Authentication,
            Error::RateLimit(_) => ErrorKind::RateLimit,
            Error::ServiceBusy(_) => ErrorKind::ServiceBusy,
            Error::Template(_) => ErrorKind::Template,
            Error::Build(_) => ErrorKind::Build,
            Error::FileUpload(_) => ErrorKind::FileUpload,
            Error::CommandExit { .. } => ErrorKind::CommandExit,
            Error::GitAuth(_) => ErrorKind::GitAuth,
            Error::GitUpstream(_) => ErrorKind::GitUpstream,
            Error::NoMoreItems => ErrorKind::NoMoreItems,
            Error::Secret(_) => ErrorKind::Secret,
            Error::SecretNotFound(_) => ErrorKind::SecretNotFound,
            Error::Volume(_) => ErrorKind::Volume,
            Error::VolumeNotFound(_) => ErrorKind::VolumeNotFound,
            Error::VolumePathNotFound(_) => ErrorKind::VolumePathNotFound,
        }
    }

    pub(crate) fn sandbox(message: impl Into<String>) -> Self {
        Error::Sandbox { message: message.into(), status: None }
    }

    /// HTTP status of the API response behind this error, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Sandbox { status, .. } => *status,
            Error::RateLimit(_) => Some(429),
            Error::Authentication(_) => Some(401),
            Error::ServiceBusy(_) => Some(503),
            _ => None,
        }
    }

    /// E2B's mapping of a failed REST response (spec §2.5): 401 → authentication, 429 → rate
    /// limit, 503 → service busy, anything else → `"<status>: <message>"` (or the raw body).
    pub fn from_api_response(status: u16, body: &[u8]) -> Self {
        let message = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned));
        let with = |prefix: String| match &message {
            Some(m) => format!("{prefix} - {m}"),
            None => prefix,
        };
        match status {
            401 => Error::Authentication(with(format!(
                "{status}: Unauthorized, please check your credentials."
            ))),
            429 => Error::RateLimit(with(format!(
                "{status}: Rate limit exceeded, please try again later."
            ))),
            503 => Error::ServiceBusy(with(format!(
                "{status}: Service temporarily unavailable, please retry."
            ))),
            _ => {
                let text = match message {
                    Some(m) => m,
                    None => String::from_utf8_lossy(body).into_owned(),
                };
                Error::Sandbox { message: format!("{status}: {text}"), status: Some(status) }
            }
        }
    }

    /// Map a transport failure (connect refused, timeout, …).
    pub(crate) fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Error::Timeout(
                "Request timed out — the 'request_timeout' option can be used to increase this timeout"
                    .into(),
            )
        } else {
            Error::sandbox(format!("request failed: {}", error_chain(&e)))
        }
    }
}

/// `e` with its sources, joined by `: ` (reqwest's own Display hides the root cause).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_status_mapping() {
        let e = Error::from_api_response(401, br#"{"code":401,"message":"bad key"}"#);
        assert_eq!(e.kind(), ErrorKind::Authentication);
        assert!(e.to_string().contains("bad key"));
        assert_eq!(Error::from_api_response(429, b"").kind(), ErrorKind::RateLimit);
        assert_eq!(Error::from_api_response(503, b"").kind(), ErrorKind::ServiceBusy);
        let e = Error::from_api_response(400, br#"{"code":400,"message":"Timeout too big"}"#);
        assert_eq!(e.to_string(), "400: Timeout too big");
        assert_eq!(e.status(), Some(400));
        let e = Error::from_api_response(500, b"boom");
        assert_eq!(e.to_string(), "500: boom");
    }

    #[test]
    fn no_more_items_message() {
        assert_eq!(Error::NoMoreItems.to_string(), NO_MORE_ITEMS);
    }
}
