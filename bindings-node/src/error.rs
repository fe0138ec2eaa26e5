//! Core errors as JS errors the facade (`bindings-node/errors.js`) can classify.
//!
//! napi can only reject a promise with a plain `Error` built from a status and a message, so the
//! kind travels in the message: `[e2b:<ErrorKind::as_str()>] <message>`. A command that exited
//! non-zero carries its result as JSON after the prefix, so the facade can build a
//! `CommandExitError` with `stdout`, `stderr`, `exitCode` and `error`.

use napi::Status;

/// The JS error for a core error.
pub(crate) fn to_js(e: e2b::Error) -> napi::Error {
    let kind = e.kind();
    let payload = match &e {
        e2b::Error::CommandExit {
            stdout,
            stderr,
            exit_code,
            error,
        } => serde_json::json!({
            "stdout": stdout,
            "stderr": stderr,
            "exitCode": exit_code,
            "error": error,
            "message": e.to_string(),
        })
        .to_string(),
        _ => e.to_string(),
    };
    napi::Error::new(Status::GenericFailure, format!("[e2b:{kind}] {payload}"))
}

/// `.js()` on a core result: the same value, or the error mapped by [`to_js`].
pub(crate) trait JsResult<T> {
    fn js(self) -> napi::Result<T>;
}

impl<T> JsResult<T> for e2b::Result<T> {
    fn js(self) -> napi::Result<T> {
        self.map_err(to_js)
    }
}
