//! The one error type of the HTTP layer, rendered as E2B's `Error` schema:
//! `{"code": <status>, "message": "...", "error_code"?: "..."}`.
//!
//! Invariant: every non-2xx response sandboxd produces itself (REST, auth, proxy, axum
//! rejections) goes through [`ApiError`], so clients always get JSON with a `message`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::vm::VmError;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub error_code: Option<&'static str>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), error_code: None }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self { error_code: Some("internal_server_error"), ..Self::new(StatusCode::INTERNAL_SERVER_ERROR, message) }
    }
    pub fn capacity(max: usize) -> Self {
        Self {
            error_code: Some("sandbox_capacity_unavailable"),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the server already runs its maximum of {max} sandboxes; kill or pause one and retry"),
            )
        }
    }
    /// Admission refused because the guest memory of running sandboxes would exceed the cap.
    pub fn memory_capacity(limit_mb: u64, used_mb: u64, needed_mb: u64) -> Self {
        Self {
            error_code: Some("sandbox_capacity_unavailable"),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "not enough memory for another sandbox: it needs {needed_mb} MiB, running sandboxes use {used_mb} of the server's {limit_mb} MiB; kill or pause one and retry"
                ),
            )
        }
    }
    pub fn sandbox_not_found(id: &str) -> Self {
        Self::not_found(format!("sandbox \"{id}\" not found"))
    }

    pub fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "code": self.status.as_u16(), "message": self.message });
        if let Some(code) = self.error_code {
            body["error_code"] = code.into();
        }
        body
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status.as_u16(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), message = %self.message, "request failed");
        }
        (self.status, Json(self.body())).into_response()
    }
}

impl From<VmError> for ApiError {
    fn from(e: VmError) -> Self {
        match e {
            VmError::NoSpace(m) => Self::new(StatusCode::INSUFFICIENT_STORAGE, format!("not enough disk space: {m}")),
            VmError::Io(io) if io.raw_os_error() == Some(libc::ENOSPC) => {
                Self::new(StatusCode::INSUFFICIENT_STORAGE, format!("not enough disk space: {io}"))
            }
            // QEMU reports a full disk as text (e.g. a failed migration to file).
            VmError::Failed(m) if m.contains("No space left") => {
                Self::new(StatusCode::INSUFFICIENT_STORAGE, format!("not enough disk space: {m}"))
            }
            VmError::Unresponsive(m) => Self::new(StatusCode::SERVICE_UNAVAILABLE, format!("guest agent not responding: {m}")),
            // 400 like E2B's "filesystem-only ... not enabled"; a 409 would read as "already
            // paused" to the SDKs' pause.
            VmError::Unsupported(m) => {
                Self { error_code: Some("filesystem_only_unsupported"), ..Self::bad_request(m) }
            }
            other => Self {
                error_code: Some("sandbox_create_failed"),
                ..Self::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string())
            },
        }
    }
}

impl From<crate::store::Error> for ApiError {
    fn from(e: crate::store::Error) -> Self {
        Self::internal(format!("database error: {e}"))
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        if e.raw_os_error() == Some(libc::ENOSPC) {
            return Self::new(StatusCode::INSUFFICIENT_STORAGE, format!("not enough disk space: {e}"));
        }
        Self::internal(format!("i/o error: {e}"))
    }
}
