//! `sandbox.pty`: interactive terminals (E2B's `Pty`). A terminal is a `CommandHandle`; its
//! output goes to `onData` as `Uint8Array` chunks.

use std::collections::HashMap;
use std::sync::Arc;

use napi::Status;
use napi::bindgen_prelude::{Result, Uint8Array};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode, UnknownReturnValue};
use napi_derive::napi;

use crate::commands::{CommandHandle, CommandRequestOpts, request_timeout};
use crate::config::opt_ms;
use crate::error::JsResult;

/// A JS terminal-output callback `(data: Uint8Array) => void`, callable from any thread.
type DataFn = ThreadsafeFunction<Uint8Array, UnknownReturnValue, Uint8Array, Status, false>;

fn data_callback(f: DataFn) -> e2b::PtyCallback {
    let f = Arc::new(f);
    Arc::new(move |chunk: e2b::Bytes| {
        f.call(Uint8Array::from(chunk.to_vec()), ThreadsafeFunctionCallMode::NonBlocking);
    })
}

/// Options of `pty.create`.
#[napi(object, object_to_js = false)]
pub struct PtyCreateOpts {
    /// Columns of the terminal.
    pub cols: u32,
    /// Rows of the terminal.
    pub rows: u32,
    /// Called with each chunk of terminal output.
    #[napi(ts_type = "(data: Uint8Array) => void | Promise<void>")]
    pub on_data: DataFn,
    /// Life of the terminal in **milliseconds** (default 60 000; 0 means none).
    pub timeout_ms: Option<f64>,
    /// Linux user of the shell.
    pub user: Option<String>,
    /// Environment variables (TERM, LANG and LC_ALL default to xterm-256color / C.UTF-8).
    pub envs: Option<HashMap<String, String>>,
    /// Working directory.
    pub cwd: Option<String>,
    /// Not applied to this streaming call (`timeoutMs` bounds it), as in E2B's SDK.
    pub request_timeout_ms: Option<f64>,
    /// Not supported by this SDK yet: refused with `InvalidArgumentError` (index.js).
    #[napi(ts_type = "unknown")]
    pub signal: Option<serde_json::Value>,
}

/// Options of `pty.connect`.
#[napi(object, object_to_js = false)]
#[derive(Default)]
pub struct PtyConnectOpts {
    /// Called with each chunk of terminal output.
    #[napi(ts_type = "(data: Uint8Array) => void | Promise<void>")]
    pub on_data: Option<DataFn>,
    /// Life of the connection in **milliseconds** (default 60 000; 0 means none).
    pub timeout_ms: Option<f64>,
    /// Not applied to this streaming call, as in E2B's SDK.
    pub request_timeout_ms: Option<f64>,
    /// Not supported by this SDK yet: refused with `InvalidArgumentError` (index.js).
    #[napi(ts_type = "unknown")]
    pub signal: Option<serde_json::Value>,
}

/// Size of a terminal in character cells.
#[napi(object, object_to_js = false)]
pub struct PtySizeOpts {
    pub cols: u32,
    pub rows: u32,
}

/// Interactive terminals of a sandbox (`sandbox.pty`).
#[napi]
pub struct Pty {
    pub(crate) inner: e2b::Pty,
    pub(crate) commands: e2b::Commands,
}

#[napi]
impl Pty {
    /// Start `/bin/bash -i -l` in a terminal; resolves to its handle.
    #[napi]
    pub async fn create(&self, opts: PtyCreateOpts) -> Result<CommandHandle> {
        let o = e2b::PtyOptions {
            user: opts.user,
            cwd: opts.cwd,
            envs: opts.envs.unwrap_or_default(),
            timeout: opt_ms(opts.timeout_ms),
            on_data: Some(data_callback(opts.on_data)),
        };
        let size = e2b::PtySize { cols: opts.cols, rows: opts.rows };
        let inner = self.inner.create(size, o).await.js()?;
        Ok(CommandHandle { inner, commands: self.commands.clone() })
    }

    /// Attach to a running terminal by PID.
    #[napi]
    pub async fn connect(&self, pid: u32, opts: Option<PtyConnectOpts>) -> Result<CommandHandle> {
        let o = opts.unwrap_or_default();
        let inner = self.inner.connect(pid, opt_ms(o.timeout_ms), o.on_data.map(data_callback)).await.js()?;
        Ok(CommandHandle { inner, commands: self.commands.clone() })
    }

    /// Type into the terminal.
    #[napi]
    pub async fn send_input(&self, pid: u32, data: Uint8Array, opts: Option<CommandRequestOpts>) -> Result<()> {
        self.inner.with_request_timeout(request_timeout(&opts)).send_stdin(pid, data.to_vec()).await.js()
    }

    /// Change the terminal size.
    #[napi]
    pub async fn resize(&self, pid: u32, size: PtySizeOpts, opts: Option<CommandRequestOpts>) -> Result<()> {
        let size = e2b::PtySize { cols: size.cols, rows: size.rows };
        self.inner.with_request_timeout(request_timeout(&opts)).resize(pid, size).await.js()
    }

    /// Kill the terminal's process: `true` if killed, `false` if it was not found.
    #[napi]
    pub async fn kill(&self, pid: u32, opts: Option<CommandRequestOpts>) -> Result<bool> {
        self.inner.with_request_timeout(request_timeout(&opts)).kill(pid).await.js()
    }
}
