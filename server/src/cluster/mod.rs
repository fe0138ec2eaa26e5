//! Cluster mode: several sandboxd nodes share one PostgreSQL database (state) and one
//! S3-compatible bucket (images), so a snapshot taken on one node restores on any other.
//!
//! This module holds what is specific to running as a cluster; the embedded default (SQLite +
//! the local store) never touches it.
//! - [`bucket`]: the object store (`--object-store s3://bucket/prefix`, `AWS_*` variables).
//! - [`manifest`]: how an image is laid out in the bucket.
//! - [`upload`] / [`download`]: an image directory to the bucket and back; [`delta`]: changed
//!   RAM chunks as the pages that changed.
//! - [`objects_gc`]: deletes what no wanted image's manifest names any more.
//!
//! Invariants:
//! - Objects are immutable. RAM chunks are named by the BLAKE3 hash of their plaintext, disk
//!   layers by their (unique) file name, so an object that exists is never written again and a
//!   second snapshot uploads only what changed.
//! - An image's manifest is written last: an image is in the bucket exactly when its manifest
//!   is, and everything the manifest names is there before it.

pub mod bucket;
pub mod chunk_cache;
pub mod delta;
pub mod direct;
pub mod download;
pub mod front;
pub mod manifest;
pub mod node;
pub mod objects_gc;
pub mod peer;
pub mod route;
pub mod upload;

pub use bucket::Bucket;
pub use manifest::Manifest;

/// `--node-id`, `--advertise-url`, `--object-store`: given together with a PostgreSQL
/// `--database`, they make this sandboxd a node of a cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Unique among the nodes (`SANDBOXD_NODE_ID`).
    pub node_id: String,
    /// Where the other nodes reach this one's API, `http://host:port` (`SANDBOXD_ADVERTISE_URL`).
    pub advertise_url: String,
    /// `s3://bucket/prefix` (`SANDBOXD_OBJECT_STORE`).
    pub object_store: String,
}

/// What a node holds to act as part of the cluster.
pub struct Cluster {
    pub cfg: ClusterConfig,
    pub bucket: Bucket,
    pub forwarder: route::Forwarder,
    /// See [`node::compat_key`].
    pub compat: String,
    /// Held shared by this node's uploads, exclusively by its collection of the bucket: the
    /// cluster-wide advisory lock cannot separate them, as a Postgres session never conflicts
    /// with itself and a node has one.
    pub uploads: tokio::sync::RwLock<()>,
    /// Shown to and by the other nodes on node-to-node requests (see [`peer`]).
    pub peer_key: String,
}

impl Cluster {
    pub fn new(cfg: ClusterConfig, accel: &str, peer_key: String) -> anyhow::Result<Self> {
        anyhow::ensure!(
            manifest::safe_name(&cfg.node_id),
            "--node-id {:?}: use letters, digits, '-', '_' and '.'",
            cfg.node_id
        );
        anyhow::ensure!(
            cfg.advertise_url.starts_with("http://") || cfg.advertise_url.starts_with("https://"),
            "--advertise-url {:?} must be an http:// or https:// URL",
            cfg.advertise_url
        );
        let bucket = Bucket::from_url(&cfg.object_store)?;
        let forwarder = route::Forwarder::new(&cfg.node_id);
        Ok(Self { bucket, forwarder, compat: node::compat_key(accel), cfg, uploads: Default::default(), peer_key })
    }

    pub fn node_id(&self) -> &str {
        &self.cfg.node_id
    }
}
