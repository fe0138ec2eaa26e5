//! Connection options shared by every call (E2B's `ConnectionOpts`) and millisecond helpers.
//!
//! napi objects cannot extend one another, so [`with_connection_opts!`] appends the connection
//! fields to each options object and gives it a `connection()` conversion to the core's
//! [`e2b::ConnectionOpts`]. Unset fields fall back to the environment in the core.

use std::time::Duration;

/// `Duration` for a JS millisecond count (fractions round up; negative counts as zero).
pub(crate) fn ms(value: f64) -> Duration {
    Duration::from_millis(value.max(0.0).ceil() as u64)
}

pub(crate) fn opt_ms(value: Option<f64>) -> Option<Duration> {
    value.map(ms)
}

/// Declare a `#[napi(object)]` options struct with E2B's connection options appended.
///
/// Write the docs of the struct and its fields as `#[doc = "..."]`: a `///` comment captured by
/// `macro_rules!` reaches napi as a raw string (`r"..."`), which leaks into `native.d.ts`.
/// Fields must be `Option<..>` written out: napi only sees that a field is optional when the
/// `Option` is literal, not hidden inside a captured `$ty`.
macro_rules! with_connection_opts {
    ($(#[$meta:meta])* pub struct $name:ident { $($(#[$fmeta:meta])* pub $field:ident : Option<$ty:ty>,)* }) => {
        $(#[$meta])*
        #[napi_derive::napi(object, object_to_js = false)]
        #[derive(Default)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: Option<$ty>,)*
            /// E2B API key (env `E2B_API_KEY`).
            pub api_key: Option<String>,
            /// Domain of the E2B API and sandboxes (env `E2B_DOMAIN`, default `e2b.app`).
            pub domain: Option<String>,
            /// REST API base URL (env `E2B_API_URL`).
            pub api_url: Option<String>,
            /// envd base URL for every sandbox (env `E2B_SANDBOX_URL`).
            pub sandbox_url: Option<String>,
            /// Debug mode: local API and envd (env `E2B_DEBUG`).
            pub debug: Option<bool>,
            /// Timeout of each HTTP request in **milliseconds** (default 60 000; 0 disables it).
            pub request_timeout_ms: Option<f64>,
            /// Extra HTTP headers sent with every request.
            pub headers: Option<std::collections::HashMap<String, String>>,
            /// Deprecated in E2B's SDK, where it has no effect any more; none here either.
            pub validate_api_key: Option<bool>,
            /// Not supported by this SDK yet: refused with `InvalidArgumentError` (index.js).
            #[napi(ts_type = "number")]
            pub retries: Option<serde_json::Value>,
            /// Not supported by this SDK yet: refused with `InvalidArgumentError` (index.js).
            #[napi(ts_type = "Record<string, string>")]
            pub api_headers: Option<serde_json::Value>,
            /// Not supported by this SDK yet: refused with `InvalidArgumentError` (index.js).
            #[napi(ts_type = "unknown")]
            pub signal: Option<serde_json::Value>,
            /// Not supported by this SDK yet: refused with `InvalidArgumentError` (index.js).
            #[napi(ts_type = "unknown")]
            pub logger: Option<serde_json::Value>,
            /// Not supported by this SDK yet: refused with `InvalidArgumentError` (index.js).
            #[napi(ts_type = "unknown")]
            pub proxy: Option<serde_json::Value>,
        }

        impl $name {
            #[allow(dead_code)]
            pub(crate) fn connection(&self) -> e2b::ConnectionOpts {
                e2b::ConnectionOpts {
                    api_key: self.api_key.clone(),
                    domain: self.domain.clone(),
                    api_url: self.api_url.clone(),
                    sandbox_url: self.sandbox_url.clone(),
                    debug: self.debug,
                    request_timeout: $crate::config::opt_ms(self.request_timeout_ms),
                    headers: self.headers.clone().unwrap_or_default(),
                }
            }
        }
    };
}
pub(crate) use with_connection_opts;

with_connection_opts! {
    #[doc = " Options of calls that take nothing but connection options."]
    pub struct ConnectionOpts {}
}

/// The core connection options of an optional options object.
pub(crate) fn connection(opts: &Option<ConnectionOpts>) -> e2b::ConnectionOpts {
    opts.as_ref()
        .map(ConnectionOpts::connection)
        .unwrap_or_default()
}
