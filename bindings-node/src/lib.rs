//! Node.js binding of the `e2b` core crate (napi-rs v3), loaded by `bindings-node/index.js`.
//!
//! Thin by design: every method clones a core handle, converts its arguments (milliseconds to
//! `Duration`, JS objects to core option structs), awaits core and maps the error with
//! [`error::to_js`]. Async methods run on napi's own tokio runtime; the core uses whichever
//! runtime polls it. Modules mirror the core's (`sandbox`, `snapshots`, `paginator`,
//! `commands`, `files`, `config`, `error`).

mod commands;
mod config;
mod error;
mod files;
mod paginator;
mod sandbox;
mod snapshots;

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
