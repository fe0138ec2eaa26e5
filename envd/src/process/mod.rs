//! Running processes: the registry (by pid and tag), and the fan-out of each
//! process's output to every attached stream.
//!
//! Invariants:
//! - a process stays in the registry until its end event has been published,
//!   so `Connect` either attaches or sees the end, never a half-gone process;
//! - output is delivered to subscribers through bounded channels and the readers
//!   wait for room (back-pressure, no silent loss); a subscriber whose stream
//!   went away is dropped on the next send, and the process keeps running;
//! - every subscriber receives the end event, then its channel closes.

pub mod pty;
pub mod service;
pub mod spawn;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::proto::{DataEvent, EndEvent, ProcessConfig, ProcessEvent};

/// Events buffered per subscriber before the output readers wait.
const SUBSCRIBER_BUFFER: usize = 64;

/// How input reaches the process.
pub enum Input {
    /// A pipe, `None` once closed (or when started with `stdin: false`).
    Pipe(tokio::sync::Mutex<Option<tokio::process::ChildStdin>>),
    /// The pseudo-terminal master (input and resize).
    Pty(Arc<pty::Master>),
}

pub struct Proc {
    pub pid: u32,
    pub config: ProcessConfig,
    pub tag: Option<String>,
    pub input: Input,
    hub: Mutex<Hub>,
}

#[derive(Default)]
struct Hub {
    subscribers: Vec<mpsc::Sender<ProcessEvent>>,
    end: Option<EndEvent>,
}

/// A subscription: either live events or, for a process that already ended, its end event.
pub enum Subscription {
    Live(mpsc::Receiver<ProcessEvent>),
    Ended(EndEvent),
}

impl Proc {
    pub fn new(pid: u32, config: ProcessConfig, tag: Option<String>, input: Input) -> Self {
        Proc {
            pid,
            config,
            tag,
            input,
            hub: Mutex::new(Hub::default()),
        }
    }

    pub fn subscribe(&self) -> Subscription {
        let mut hub = self.hub.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(end) = &hub.end {
            return Subscription::Ended(end.clone());
        }
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER);
        hub.subscribers.push(tx);
        Subscription::Live(rx)
    }

    fn subscribers(&self) -> Vec<mpsc::Sender<ProcessEvent>> {
        let mut hub = self.hub.lock().unwrap_or_else(|e| e.into_inner());
        hub.subscribers.retain(|s| !s.is_closed());
        hub.subscribers.clone()
    }

    /// Delivers one output chunk to every subscriber, waiting for room.
    pub async fn publish(&self, data: DataEvent) {
        for sub in self.subscribers() {
            // A closed receiver means that stream went away; it is pruned next time.
            let _ = sub.send(ProcessEvent::Data(data.clone())).await;
        }
    }

    /// Publishes the end event and closes every subscription.
    pub async fn finish(&self, end: EndEvent) {
        let subs = {
            let mut hub = self.hub.lock().unwrap_or_else(|e| e.into_inner());
            hub.end = Some(end.clone());
            std::mem::take(&mut hub.subscribers)
        };
        for sub in subs {
            let _ = sub.send(ProcessEvent::End(end.clone())).await;
        }
    }
}

/// All processes started by this envd that have not ended yet.
#[derive(Default)]
pub struct Registry {
    procs: Mutex<HashMap<u32, Arc<Proc>>>,
}

impl Registry {
    pub fn insert(&self, p: Arc<Proc>) {
        self.procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(p.pid, p);
    }

    pub fn remove(&self, pid: u32) {
        self.procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&pid);
    }

    pub fn by_pid(&self, pid: u32) -> Option<Arc<Proc>> {
        self.procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&pid)
            .cloned()
    }

    pub fn by_tag(&self, tag: &str) -> Option<Arc<Proc>> {
        let procs = self.procs.lock().unwrap_or_else(|e| e.into_inner());
        procs
            .values()
            .find(|p| p.tag.as_deref() == Some(tag))
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<Proc>> {
        let mut v: Vec<_> = self
            .procs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        v.sort_by_key(|p| p.pid);
        v
    }
}
