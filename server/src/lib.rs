//! sandboxd: a self-hostable server speaking E2B's REST API that runs every sandbox as a QEMU
//! microVM restored from a memory + disk image.
//!
//! Layout: `api/` turns HTTP requests into [`manager::Manager`] calls, `manager/` owns every
//! sandbox state transition, `store/` persists them in SQLite, `proxy` forwards envd traffic
//! to the VMs (envd and any guest port), `network/` holds a sandbox's network rules, `telemetry`
//! keeps their metrics and logs, `vm/` runs the VMs and `template` builds the images they restore
//! from.

pub mod api;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod error;
pub mod fault;
pub mod ids;
pub mod manager;
pub mod models;
pub mod network;
pub mod pagination;
pub mod proxy;
pub mod secrets;
pub mod server;
pub mod shutdown;
pub mod signed_url;
pub mod store;
pub mod telemetry;
pub mod template;
pub mod vm;
pub mod volumes;
