//! Directory watchers (`WatchDir`, `CreateWatcher`, `GetWatcherEvents`, `RemoveWatcher`).
//! Not implemented yet: the methods answer `unimplemented`.

use crate::connect::{Call, Reply, RpcError};
use crate::proto::Code;

#[derive(Default)]
pub struct Watchers {}

pub fn knows(_method: &str) -> bool {
    false
}

pub async fn dispatch(method: &str, _call: Call) -> Reply {
    Reply::Unary(Err(RpcError::new(Code::Unimplemented, format!("filesystem.Filesystem/{method} is not implemented"))))
}
