//! Shared server state: the settings `/init` replaces after every VM restore,
//! plus the process and watcher registries.
//!
//! The mutable part sits behind a `std::sync::RwLock`: it is read on every
//! request, written only by `/init`, and never held across an `.await`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use http::HeaderMap;

use crate::connect::RpcError;
use crate::users::{User, UserDb, basic_auth_user};

/// Settings delivered by `/init` (and the CLI for the first boot).
#[derive(Debug, Clone, Default)]
pub struct Runtime {
    /// When set, every route but `/health` and `/init` needs `X-Access-Token`.
    pub access_token: Option<String>,
    /// Merged into the environment of every process started afterwards.
    pub env_vars: BTreeMap<String, String>,
    /// User for requests without `Authorization`.
    pub default_user: String,
    /// Working directory for processes that do not ask for one (else the home).
    pub default_workdir: Option<PathBuf>,
}

pub struct AppState {
    pub users: UserDb,
    pub runtime: RwLock<Runtime>,
    pub processes: crate::process::Registry,
    pub watchers: crate::watch::Watchers,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn new(default_user: String, users: UserDb) -> Shared {
        Arc::new(AppState {
            users,
            runtime: RwLock::new(Runtime {
                default_user,
                ..Runtime::default()
            }),
            processes: Default::default(),
            watchers: Default::default(),
        })
    }

    pub fn runtime(&self) -> Runtime {
        self.runtime
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The user a request acts as: `explicit` (the `username` query of `/files`),
    /// else `Authorization: Basic`, else the default user. The default `user`
    /// falls back to root when the image has no such account (bare images).
    pub fn request_user(
        &self,
        headers: &HeaderMap,
        explicit: Option<&str>,
    ) -> Result<User, RpcError> {
        let named = match explicit.filter(|u| !u.is_empty()) {
            Some(u) => Some(u.to_string()),
            None => match headers.get(http::header::AUTHORIZATION) {
                Some(v) => {
                    let v = v
                        .to_str()
                        .map_err(|_| RpcError::unauthenticated("invalid authorization header"))?;
                    Some(basic_auth_user(v).map_err(RpcError::unauthenticated)?)
                }
                None => None,
            },
        };
        if let Some(name) = named {
            return self
                .users
                .user(&name)
                .ok_or_else(|| RpcError::unauthenticated(format!("invalid user: '{name}'")));
        }
        let default = self
            .runtime
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .default_user
            .clone();
        self.users
            .user(&default)
            .or_else(|| self.users.user("root"))
            .or_else(|| {
                // Not even root in /etc/passwd (a scratch rootfs): act as uid 0.
                Some(User {
                    name: "root".into(),
                    uid: 0,
                    gid: 0,
                    home: "/root".into(),
                    shell: "/bin/sh".into(),
                    groups: vec![0],
                })
            })
            .ok_or_else(|| RpcError::unauthenticated("no default user"))
    }
}
