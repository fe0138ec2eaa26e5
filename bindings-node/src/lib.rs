//! Node.js binding of the `e2b` core crate (napi-rs v3).
#![deny(clippy::all)]

use napi_derive::napi;

/// Version of the native addon (the workspace version).
#[napi]
pub fn native_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
