//! Node.js binding of the `e2b` core crate (napi-rs v3), loaded by `bindings-node/index.js`.
//!
//! Thin by design: every method clones a core handle, converts its arguments (milliseconds to
//! `Duration`, JS objects to core option structs), awaits core and maps the error with
//! [`error::to_js`]. Async methods run on napi's own tokio runtime; the core uses whichever
//! runtime polls it. Modules mirror the core's (`sandbox`, `snapshots`, `paginator`,
//! `commands`, `files`, `config`, `error`).

mod commands;
mod config;
mod connection;
mod error;
mod files;
mod git;
mod paginator;
mod pty;
mod sandbox;
mod secret;
mod snapshots;
mod template;
mod volume;

use napi_derive::napi;

/// Offer a sandboxd executable for the embedded default (used when no E2B setting is given and
/// no local sandboxd answers). The JS entry point registers the one the install script built;
/// not part of the public API.
#[napi(skip_typescript)]
pub fn register_sandboxd(program: String) {
    e2b::embedded::register_launcher(e2b::embedded::Launcher {
        program: program.into(),
        args: vec![],
    });
}

/// The core's `InvalidArgument` error for an option of E2B's SDK that this SDK does not
/// implement; `index.js` throws it instead of ignoring the option. Not part of the public API.
#[napi(skip_typescript)]
pub fn unsupported_option(name: String) -> napi::Error {
    error::to_js(e2b::options::unsupported(&name))
}

/// Options of `getSignature`.
#[napi(object, object_to_js = false)]
pub struct SignatureOpts {
    /// Path of the file.
    pub path: String,
    /// `read` (download) or `write` (upload).
    #[napi(ts_type = "'read' | 'write'")]
    pub operation: String,
    /// User the file is accessed as.
    pub user: Option<String>,
    /// Life of the signature in **seconds**.
    pub expiration_in_seconds: Option<f64>,
    /// The sandbox's envd access token.
    pub envd_access_token: Option<String>,
}

/// A file-URL signature and its expiration (Unix seconds).
#[napi(object, object_from_js = false)]
pub struct Signature {
    pub signature: String,
    pub expiration: Option<f64>,
}

/// E2B's v1 signature of a file URL (computed in the core).
#[napi]
pub async fn get_signature(opts: SignatureOpts) -> napi::Result<Signature> {
    let (signature, expiration) = e2b::file_urls::get_signature(
        &opts.path,
        &opts.operation,
        opts.user.as_deref(),
        opts.envd_access_token.as_deref(),
        opts.expiration_in_seconds.map(|s| s as i64),
    )
    .map_err(error::to_js)?;
    Ok(Signature { signature, expiration: expiration.map(|e| e as f64) })
}
