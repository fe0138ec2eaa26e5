//! Directory watchers on inotify: the `WatchDir` stream, and the polling trio
//! `CreateWatcher` / `GetWatcherEvents` / `RemoveWatcher` (used by the sync Python SDK).
//!
//! Event mapping follows fsnotify, which upstream envd uses: create and
//! moved-to are CREATE, modify is WRITE, delete (and delete-self) is REMOVE,
//! moved-from (and move-self) is RENAME, attrib is CHMOD. Names are relative to
//! the watched directory. Recursive watchers add a watch for every directory,
//! including ones created later.

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use nix::sys::inotify::{AddWatchFlags as F, InitFlags, Inotify, InotifyEvent, WatchDescriptor};
use tokio::io::unix::AsyncFd;

use crate::connect::{Call, EventStream, Reply, RpcError, encode, unary};
use crate::proto::{
    Code, Empty, EventType, FilesystemEvent, GetWatcherEventsResponse, WatchDirEvent, WatchRequest,
    WatcherIdMessage,
};
use crate::users::{UserDb, resolve_path};

/// Events kept for a polling watcher between two `GetWatcherEvents`; older ones are dropped.
const MAX_BUFFERED: usize = 10_000;

pub fn knows(method: &str) -> bool {
    matches!(
        method,
        "WatchDir" | "CreateWatcher" | "GetWatcherEvents" | "RemoveWatcher"
    )
}

pub async fn dispatch(method: &str, call: Call) -> Reply {
    match method {
        "WatchDir" => Reply::Stream(
            watch_dir(&call),
            encode(&WatchDirEvent::Keepalive(Empty {})).ok(),
        ),
        "CreateWatcher" => unary(create(&call)),
        "GetWatcherEvents" => unary(get_events(&call)),
        "RemoveWatcher" => unary(remove(&call)),
        _ => Reply::Unary(Err(RpcError::new(Code::Unimplemented, method.to_string()))),
    }
}

/// Polling watchers by id; dropping one aborts its inotify task.
#[derive(Default)]
pub struct Watchers {
    map: Mutex<HashMap<String, Polled>>,
}

struct Polled {
    events: Arc<Mutex<Vec<FilesystemEvent>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Polled {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn watch_dir(call: &Call) -> Result<EventStream, RpcError> {
    let req: WatchRequest = call.message()?;
    let tree = Tree::open(call, &req)?;
    let users = call.state.users.clone();
    let start = futures::stream::once(async { encode(&WatchDirEvent::Start(Empty {})) });
    let events = futures::stream::unfold(Some(tree), move |tree| {
        let users = users.clone();
        async move {
            let mut tree = tree?;
            match tree.next_batch(&users).await {
                Ok(batch) => Some((Ok(batch), Some(tree))),
                Err(e) => Some((Err(RpcError::internal(format!("watcher error: {e}"))), None)),
            }
        }
    })
    .flat_map(|batch: Result<Vec<FilesystemEvent>, RpcError>| {
        let items: Vec<Result<bytes::Bytes, RpcError>> = match batch {
            Ok(events) => events
                .into_iter()
                .map(|e| encode(&WatchDirEvent::Filesystem(e)))
                .collect(),
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(items)
    });
    Ok(start.chain(events).boxed())
}

fn create(call: &Call) -> Result<WatcherIdMessage, RpcError> {
    let req: WatchRequest = call.message()?;
    let mut tree = Tree::open(call, &req)?;
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let users = call.state.users.clone();
    let task = tokio::spawn(async move {
        while let Ok(batch) = tree.next_batch(&users).await {
            let mut buf = sink.lock().unwrap_or_else(|e| e.into_inner());
            buf.extend(batch);
            let excess = buf.len().saturating_sub(MAX_BUFFERED);
            buf.drain(..excess);
        }
    });
    let id = watcher_id();
    call.state
        .watchers
        .map
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.clone(), Polled { events, task });
    Ok(WatcherIdMessage { watcher_id: id })
}

fn get_events(call: &Call) -> Result<GetWatcherEventsResponse, RpcError> {
    let req: WatcherIdMessage = call.message()?;
    let map = call
        .state
        .watchers
        .map
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let w = map
        .get(&req.watcher_id)
        .ok_or_else(|| RpcError::not_found(format!("watcher {} not found", req.watcher_id)))?;
    let events = std::mem::take(&mut *w.events.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(GetWatcherEventsResponse { events })
}

fn remove(call: &Call) -> Result<Empty, RpcError> {
    let req: WatcherIdMessage = call.message()?;
    let removed = call
        .state
        .watchers
        .map
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&req.watcher_id);
    removed
        .map(|_| Empty {})
        .ok_or_else(|| RpcError::not_found(format!("watcher {} not found", req.watcher_id)))
}

fn watcher_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("w{:x}-{}", nanos, NEXT.fetch_add(1, Ordering::Relaxed))
}

/// inotify misses changes made by other clients of a network filesystem, so such
/// paths are refused unless the caller opts in (envd 0.6.4 `allowNetworkMounts`).
fn on_network_mount(path: &Path) -> bool {
    const NFS: i64 = 0x6969;
    const SMB: i64 = 0x517B;
    const CIFS: i64 = 0xFF53_4D42;
    const SMB2: i64 = 0xFE53_4D42;
    const FUSE: i64 = 0x6573_5546;
    const NCP: i64 = 0x564C;
    const CEPH: i64 = 0x00C3_6400;
    const P9: i64 = 0x0102_1997;
    match nix::sys::statfs::statfs(path) {
        Ok(s) => {
            let t = s.filesystem_type().0;
            [NFS, SMB, CIFS, SMB2, FUSE, NCP, CEPH, P9].contains(&t)
        }
        Err(_) => false,
    }
}

/// `AsyncFd` needs `AsRawFd`, which nix's `Inotify` only offers as `AsFd`.
struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// One inotify instance watching a directory (and, if recursive, its subdirectories).
struct Tree {
    fd: AsyncFd<InotifyFd>,
    root: PathBuf,
    dirs: HashMap<WatchDescriptor, PathBuf>,
    recursive: bool,
    include_entry: bool,
}

const MASK: F = F::IN_CREATE
    .union(F::IN_MODIFY)
    .union(F::IN_DELETE)
    .union(F::IN_DELETE_SELF)
    .union(F::IN_MOVED_FROM)
    .union(F::IN_MOVED_TO)
    .union(F::IN_MOVE_SELF)
    .union(F::IN_ATTRIB);

impl Tree {
    fn open(call: &Call, req: &WatchRequest) -> Result<Tree, RpcError> {
        let root = resolve_path(&req.path, &call.user, None);
        let meta = std::fs::metadata(&root)
            .map_err(|e| RpcError::io(&e, format!("path {}", root.display())))?;
        if !meta.is_dir() {
            return Err(RpcError::invalid(format!(
                "path {} is not a directory",
                root.display()
            )));
        }
        if !req.allow_network_mounts && on_network_mount(&root) {
            return Err(RpcError::invalid(format!(
                "cannot watch path on network filesystem: {}",
                root.display()
            )));
        }
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .map_err(|e| RpcError::internal(format!("creating watcher: {e}")))?;
        // SAFETY: the inotify fd is owned by the wrapper and stays open while registered.
        let fd = unsafe { AsyncFd::register(InotifyFd(inotify)) }
            .map_err(|e| RpcError::internal(format!("registering watcher: {e}")))?;
        let mut tree = Tree {
            fd,
            root: root.clone(),
            dirs: HashMap::new(),
            recursive: req.recursive,
            include_entry: req.include_entry,
        };
        tree.add(&root)
            .map_err(|e| RpcError::internal(format!("watching {}: {e}", root.display())))?;
        Ok(tree)
    }

    /// Watches `dir`, and its subdirectories when recursive (unreadable ones are skipped).
    fn add(&mut self, dir: &Path) -> nix::Result<()> {
        let wd = self.fd.get_ref().0.add_watch(dir, MASK | F::IN_ONLYDIR)?;
        self.dirs.insert(wd, dir.to_path_buf());
        if self.recursive
            && let Ok(entries) = std::fs::read_dir(dir)
        {
            for e in entries.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    let _ = self.add(&e.path());
                }
            }
        }
        Ok(())
    }

    /// Waits for the next batch of inotify events and translates it.
    async fn next_batch(&mut self, users: &UserDb) -> std::io::Result<Vec<FilesystemEvent>> {
        let raw = loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| fd.get_ref().0.read_events().map_err(std::io::Error::from)) {
                Ok(Ok(events)) => break events,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        };
        let mut out = Vec::new();
        for ev in raw {
            self.translate(ev, users, &mut out);
        }
        Ok(out)
    }

    fn translate(&mut self, ev: InotifyEvent, users: &UserDb, out: &mut Vec<FilesystemEvent>) {
        if ev.mask.contains(F::IN_IGNORED) {
            self.dirs.remove(&ev.wd);
            return;
        }
        let Some(dir) = self.dirs.get(&ev.wd).cloned() else {
            return;
        };
        let path = match &ev.name {
            Some(name) => dir.join(name),
            None => dir.clone(),
        };
        if self.recursive
            && ev.mask.contains(F::IN_ISDIR)
            && ev.mask.intersects(F::IN_CREATE | F::IN_MOVED_TO)
        {
            let _ = self.add(&path);
        }
        // A self-event on a subdirectory is also reported by its parent: keep only the root's.
        if ev.name.is_none() && dir != self.root {
            return;
        }
        let m = ev.mask;
        let kinds = [
            (F::IN_CREATE | F::IN_MOVED_TO, EventType::Create),
            (F::IN_MOVED_FROM | F::IN_MOVE_SELF, EventType::Rename),
            (F::IN_ATTRIB, EventType::Chmod),
            (F::IN_MODIFY, EventType::Write),
            (F::IN_DELETE | F::IN_DELETE_SELF, EventType::Remove),
        ];
        let name = path
            .strip_prefix(&self.root)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let name = if name.is_empty() {
            ".".to_string()
        } else {
            name
        };
        for (mask, kind) in kinds {
            if m.intersects(mask) {
                let entry = if self.include_entry {
                    crate::filesystem::entry_info(users, &path).ok()
                } else {
                    None
                };
                out.push(FilesystemEvent {
                    name: name.clone(),
                    event_type: kind,
                    entry,
                });
            }
        }
    }
}
