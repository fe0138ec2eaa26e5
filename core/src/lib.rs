//! `e2b`: a client for E2B-compatible sandbox servers (E2B's cloud or a local `sandboxd`).
//!
//! Async on tokio and runtime-agnostic: nothing here builds a runtime except [`runtime()`],
//! which blocking bindings (Python's sync API) use to drive futures from a plain thread.
//!
//! ```no_run
//! # async fn demo() -> e2b::Result<()> {
//! use e2b::{CreateOptions, Sandbox};
//! let sbx = Sandbox::create(CreateOptions::default()).await?;
//! let snap = sbx.create_snapshot(None).await?;
//! let copy = Sandbox::create(CreateOptions { template: Some(snap.snapshot_id.clone()), ..Default::default() }).await?;
//! println!("{}", copy.commands().run("echo hi", Default::default()).await?.stdout);
//! # Ok(()) }
//! ```

pub mod api;
pub mod command_handle;
pub mod commands;
pub mod config;
pub mod embedded;
pub mod envd;
pub mod error;
pub mod file_urls;
pub mod files;
pub mod git;
pub mod input_stream;
pub mod mcp;
pub mod metrics_network;
pub mod models;
pub mod options;
pub mod paginator;
pub mod pty;
pub mod sandbox;
pub mod secret;
pub mod snapshots;
pub mod template;
pub mod volume;
pub mod watch;

use std::sync::OnceLock;

/// Byte buffers of PTY output and file content (re-exported so bindings need no `bytes` dependency).
pub use bytes::Bytes;

pub use commands::{CommandHandle, Commands, OutputCallback, OutputChunk, PtyCallback, RunOptions};
pub use config::{ConnectionConfig, ConnectionOpts};
pub use error::{Error, ErrorKind, Result};
pub use files::Files;
pub use git::{Git, GitBranches, GitFileStatus, GitStatus};
pub use models::{
    CommandResult, EntryInfo, FileType, FromJsonError, ProcessInfo, SandboxInfo, SandboxQuery, SnapshotInfo, WriteInfo,
};
pub use paginator::{SandboxListOptions, SandboxPaginator, SnapshotListOptions, SnapshotPaginator};
pub use metrics_network::{NetworkUpdateBody, SandboxMetrics};
pub use input_stream::InputStream;
pub use pty::{Pty, PtyOptions, PtySize};
pub use watch::{FilesystemEvent, FilesystemEventType, PollingWatcher, WatchHandle, WatchOptions};
pub use template::Template;
pub use secret::{SecretInfo, SecretListOptions, SecretPaginator};
pub use volume::{Volume, VolumeAndToken, VolumeApiOpts, VolumeEntryStat, VolumeInfo, VolumeMetadata};
pub use sandbox::{ConnectOptions, CreateOptions, ForkOptions, PauseOptions, Sandbox};

/// A process-wide multi-threaded tokio runtime for callers that must block (e.g. Python's sync
/// API). Async callers should use their own runtime instead; never `block_on` this from inside
/// a runtime thread.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("e2b-runtime")
            .enable_all()
            .build()
            .expect("building the e2b tokio runtime")
    })
}
