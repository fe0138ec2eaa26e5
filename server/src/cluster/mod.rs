//! Cluster mode: several sandboxd nodes share one PostgreSQL database (state) and one
//! S3-compatible bucket (images), so a snapshot taken on one node restores on any other.
//!
//! This module holds what is specific to running as a cluster; the embedded default (SQLite +
//! the local store) never touches it.
//! - [`bucket`]: the object store (`--object-store s3://bucket/prefix`, `AWS_*` variables).
//! - [`manifest`]: how an image is laid out in the bucket.
//! - [`upload`] / [`download`]: an image directory to the bucket and back.
//!
//! Invariants:
//! - Objects are immutable. RAM chunks are named by the BLAKE3 hash of their plaintext, disk
//!   layers by their (unique) file name, so an object that exists is never written again and a
//!   second snapshot uploads only what changed.
//! - An image's manifest is written last: an image is in the bucket exactly when its manifest
//!   is, and everything the manifest names is there before it.

pub mod bucket;
pub mod download;
pub mod manifest;
pub mod node;
pub mod route;
pub mod upload;

pub use bucket::Bucket;
pub use manifest::Manifest;
