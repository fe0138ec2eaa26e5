//! Directory watching (`files.watch_dir`) through envd's `filesystem.Filesystem` service.
//!
//! Two shapes, as in E2B's SDKs:
//! - [`Files::watch_dir`]: the `WatchDir` server stream, read by a task that hands each event to
//!   a callback (Python `AsyncFilesystem.watch_dir(on_event=)`, JS `watchDir(path, onEvent)`);
//!   `stop()` ends it, and `on_exit` gets the error the stream ended with, if any.
//! - [`Files::create_watcher`]: the polling trio `CreateWatcher` / `GetWatcherEvents` /
//!   `RemoveWatcher` (Python's sync `WatchHandle.get_new_events()`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::envd::proto::{self, GetWatcherEventsResponse, WatchDirEvent, WatchRequest, WatcherIdMessage};
use crate::envd::Domain;
use crate::error::{Error, Result};
use crate::files::{Files, entry};
use crate::models::EntryInfo;

const SERVICE: &str = "filesystem.Filesystem";

/// Kind of a filesystem event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilesystemEventType {
    Chmod,
    Create,
    Remove,
    Rename,
    Write,
}

impl FilesystemEventType {
    /// E2B's lowercase name (`"create"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            FilesystemEventType::Chmod => "chmod",
            FilesystemEventType::Create => "create",
            FilesystemEventType::Remove => "remove",
            FilesystemEventType::Rename => "rename",
            FilesystemEventType::Write => "write",
        }
    }
}

/// One change in a watched directory.
#[derive(Debug, Clone, PartialEq)]
pub struct FilesystemEvent {
    /// Path relative to the watched directory.
    pub name: String,
    pub r#type: FilesystemEventType,
    /// The entry, when watched with `include_entry` (absent once it is gone).
    pub entry: Option<EntryInfo>,
}

/// Receives each event of a streaming watch.
pub type EventCallback = Arc<dyn Fn(FilesystemEvent) + Send + Sync>;
/// Called once when a streaming watch ends by itself: `None` for a clean end, else the error.
pub type ExitCallback = Arc<dyn Fn(Option<Error>) + Send + Sync>;

/// Options of `watch_dir` / `create_watcher`.
#[derive(Clone, Default)]
pub struct WatchOptions {
    pub user: Option<String>,
    /// Watch subdirectories too.
    pub recursive: bool,
    /// Attach the entry's info to each event.
    pub include_entry: bool,
    /// Allow watching directories on network mounts.
    pub allow_network_mounts: bool,
    /// Bound on a streaming watch; `None` = 60 s, zero = unlimited.
    pub timeout: Option<Duration>,
}

fn event(e: proto::FilesystemEvent) -> Option<FilesystemEvent> {
    let r#type = match e.event_type {
        proto::EventType::Chmod => FilesystemEventType::Chmod,
        proto::EventType::Create => FilesystemEventType::Create,
        proto::EventType::Remove => FilesystemEventType::Remove,
        proto::EventType::Rename => FilesystemEventType::Rename,
        proto::EventType::Write => FilesystemEventType::Write,
        proto::EventType::Unspecified => return None,
    };
    Some(FilesystemEvent { name: e.name, r#type, entry: e.entry.map(entry) })
}

fn request(path: &str, o: &WatchOptions) -> WatchRequest {
    WatchRequest {
        path: path.into(),
        recursive: o.recursive,
        include_entry: o.include_entry,
        allow_network_mounts: o.allow_network_mounts,
    }
}

/// A streaming watch; `stop()` (or dropping every clone) ends it.
#[derive(Debug, Clone)]
pub struct WatchHandle(Arc<WatchInner>);

#[derive(Debug)]
struct WatchInner {
    task: tokio::task::AbortHandle,
}

impl Drop for WatchInner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WatchHandle {
    /// Stop watching; no callback runs after this returns.
    pub fn stop(&self) {
        self.0.task.abort();
    }
}

/// A polling watcher: events accumulate in envd until `get_new_events`.
#[derive(Debug, Clone)]
pub struct PollingWatcher {
    files: Files,
    watcher_id: String,
    user: Option<String>,
    stopped: Arc<Mutex<bool>>,
}

impl PollingWatcher {
    /// Events since the last call (or since the watch began).
    pub async fn get_new_events(&self) -> Result<Vec<FilesystemEvent>> {
        if *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) {
            return Err(Error::sandbox("The watcher is already stopped"));
        }
        let req = WatcherIdMessage { watcher_id: self.watcher_id.clone() };
        let r: GetWatcherEventsResponse =
            self.files.envd().unary(SERVICE, "GetWatcherEvents", &req, self.user.as_deref(), Domain::Filesystem).await?;
        Ok(r.events.into_iter().filter_map(event).collect())
    }

    /// Remove the watcher in envd.
    pub async fn stop(&self) -> Result<()> {
        let req = WatcherIdMessage { watcher_id: self.watcher_id.clone() };
        self.files
            .envd()
            .unary::<_, proto::Empty>(SERVICE, "RemoveWatcher", &req, self.user.as_deref(), Domain::Filesystem)
            .await?;
        *self.stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        Ok(())
    }

    /// These calls with a per-call request timeout.
    pub fn with_request_timeout(&self, timeout: Option<Duration>) -> PollingWatcher {
        PollingWatcher { files: self.files.with_request_timeout(timeout), ..self.clone() }
    }
}

impl Files {
    /// Watch `path`, handing each event to `on_event`; returns once envd has started watching
    /// (a missing directory fails here).
    pub async fn watch_dir(
        &self,
        path: &str,
        opts: WatchOptions,
        on_event: EventCallback,
        on_exit: Option<ExitCallback>,
    ) -> Result<WatchHandle> {
        let timeout = match opts.timeout {
            None => Some(Duration::from_secs(60)),
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
        };
        let mut stream = self
            .envd()
            .server_stream(SERVICE, "WatchDir", &request(path, &opts), opts.user.as_deref(), timeout, Domain::Filesystem)
            .await?;
        // The first message is `start`: the watch is in place once it arrives.
        loop {
            match stream.next::<WatchDirEvent>().await? {
                Some(WatchDirEvent::Start(_)) => break,
                Some(WatchDirEvent::Keepalive(_)) => continue,
                Some(WatchDirEvent::Filesystem(e)) => {
                    if let Some(e) = event(e) {
                        on_event(e);
                    }
                    break;
                }
                None => return Err(Error::sandbox("the watch stream ended before it started")),
            }
        }
        let task = tokio::spawn(async move {
            let end = loop {
                match stream.next::<WatchDirEvent>().await {
                    Ok(Some(WatchDirEvent::Filesystem(e))) => {
                        if let Some(e) = event(e) {
                            on_event(e);
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            if let Some(cb) = on_exit {
                cb(end);
            }
        });
        Ok(WatchHandle(Arc::new(WatchInner { task: task.abort_handle() })))
    }

    /// Start a polling watcher on `path` (E2B's sync `watch_dir`).
    pub async fn create_watcher(&self, path: &str, opts: WatchOptions) -> Result<PollingWatcher> {
        let r: WatcherIdMessage = self
            .envd()
            .unary(SERVICE, "CreateWatcher", &request(path, &opts), opts.user.as_deref(), Domain::Filesystem)
            .await?;
        Ok(PollingWatcher {
            files: self.clone(),
            watcher_id: r.watcher_id,
            user: opts.user,
            stopped: Arc::new(Mutex::new(false)),
        })
    }
}
