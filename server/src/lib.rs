//! sandboxd: a self-hostable server speaking E2B's REST API that runs every sandbox as a QEMU
//! microVM restored from a memory + disk image.
//!
//! Layout: `api/` turns HTTP requests into [`manager::Manager`] calls, `manager/` owns every
//! sandbox state transition, `store/` persists them in SQLite, `proxy` forwards envd traffic
//! to the VMs, `vm/` runs the VMs and `template` builds the images they restore from.

pub mod api;
pub mod auth;
pub mod config;
pub mod error;
pub mod fault;
pub mod ids;
pub mod manager;
pub mod models;
pub mod pagination;
pub mod proxy;
pub mod server;
pub mod shutdown;
pub mod store;
pub mod template;
pub mod vm;
