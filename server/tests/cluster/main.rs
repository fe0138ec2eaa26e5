//! Cluster mode's object storage, against a real S3 server (s3s-fs on a loopback port;
//! `tests/cluster/s3s.sh path` builds it) and real qcow2 chains, with synthetic images so
//! every byte can be checked. One test binary (one release link) for both parts.

mod common;
mod deltas;
mod gc;
mod images;
