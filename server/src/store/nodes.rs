//! The cluster's nodes, placement reservations and which images each node keeps (cluster
//! mode; see `cluster/`). Times are unix milliseconds.
//!
//! Invariants:
//! - A node is `alive` while its heartbeat is fresh; the first node to see a heartbeat older
//!   than the grace period marks it dead and, in the same transaction, deletes its running
//!   sandboxes (their VMs went with it) and its paused ones whose pause image is not in the
//!   object store, and fails the uploads it had not finished (so no listed snapshot is broken).
//!   Images it uploaded stay usable from the object store, paused sandboxes resumable anywhere.
//! - Placement locks the candidate nodes' rows (`FOR UPDATE` on Postgres; SQLite's single
//!   writer outside a cluster), so concurrent creates never count the same free memory twice:
//!   a reservation row holds the memory from the choice until the sandbox row exists.

use super::Store;
use super::db::{DbRow, Exec, Result, params};

#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    pub id: String,
    pub advertise_url: String,
    pub compat: String,
    pub vcpus: u32,
    pub memory_mb: u64,
    pub disk_mb: u64,
    pub max_sandboxes: u64,
    pub alive: bool,
    pub started_at: i64,
    pub heartbeat_at: i64,
}

const COLUMNS: &str = "id, advertise_url, compat, vcpus, memory_mb, disk_mb, max_sandboxes, alive, started_at, heartbeat_at";

fn from_row(r: &DbRow) -> Result<NodeRow> {
    Ok(NodeRow {
        id: r.get(0)?,
        advertise_url: r.get(1)?,
        compat: r.get(2)?,
        vcpus: r.get(3)?,
        memory_mb: r.get(4)?,
        disk_mb: r.get(5)?,
        max_sandboxes: r.get(6)?,
        alive: r.get(7)?,
        started_at: r.get(8)?,
        heartbeat_at: r.get(9)?,
    })
}

/// A node chosen for a new sandbox, with the reservation that holds its memory.
#[derive(Debug, Clone)]
pub struct Placement {
    pub reservation: String,
    pub node: NodeRow,
}

impl Store {
    /// Registers (or re-registers after a restart) this node as alive.
    pub fn register_node(&self, n: &NodeRow) -> Result<()> {
        self.db().execute(
            &format!(
                "INSERT INTO nodes ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?9) \
                 ON CONFLICT (id) DO UPDATE SET advertise_url = excluded.advertise_url, compat = excluded.compat, \
                 vcpus = excluded.vcpus, memory_mb = excluded.memory_mb, disk_mb = excluded.disk_mb, \
                 max_sandboxes = excluded.max_sandboxes, alive = 1, started_at = excluded.started_at, \
                 heartbeat_at = excluded.heartbeat_at"
            ),
            &params![
                &n.id,
                &n.advertise_url,
                &n.compat,
                n.vcpus,
                n.memory_mb,
                n.disk_mb,
                n.max_sandboxes,
                n.started_at,
                n.heartbeat_at
            ],
        )?;
        Ok(())
    }

    /// Refreshes this node's heartbeat. False when another node declared it dead meanwhile
    /// (it must then re-register: its sandboxes were reported gone).
    pub fn heartbeat(&self, now_ms: i64) -> Result<bool> {
        let n = self.db().execute(
            "UPDATE nodes SET heartbeat_at = ?2 WHERE id = ?1 AND alive = 1",
            &params![self.node_id(), now_ms],
        )?;
        Ok(n == 1)
    }

    pub fn nodes(&self) -> Result<Vec<NodeRow>> {
        self.db().query(&format!("SELECT {COLUMNS} FROM nodes ORDER BY id"), &[])?.iter().map(from_row).collect()
    }

    pub fn node(&self, id: &str) -> Result<Option<NodeRow>> {
        self.db()
            .query_opt(&format!("SELECT {COLUMNS} FROM nodes WHERE id = ?1"), &params![id])?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Where requests about sandbox `id` go when another live node holds it: that node's ID and
    /// URL (`None`: this node, a dead one, or no such sandbox). One query: the front door asks
    /// this for every request about a sandbox.
    pub fn sandbox_route(&self, id: &str) -> Result<Option<(String, String)>> {
        self.db()
            .query_opt(
                "SELECT n.id, n.advertise_url FROM sandboxes s JOIN nodes n ON n.id = s.node_id \
                 WHERE s.id = ?1 AND s.node_id != ?2 AND n.alive = 1",
                &params![id, self.node_id()],
            )?
            .map(|r| Ok((r.get(0)?, r.get(1)?)))
            .transpose()
    }

    /// Marks every other node whose heartbeat is older than `cutoff_ms` dead, with what dies
    /// with it (see the module invariant). Returns their IDs and their sandboxes' IDs.
    pub fn reap_dead_nodes(&self, cutoff_ms: i64) -> Result<Vec<(String, Vec<String>)>> {
        self.db().transaction(|tx| {
            let dead: Vec<String> = tx
                .query(
                    "UPDATE nodes SET alive = 0 WHERE alive = 1 AND heartbeat_at < ?1 AND id != ?2 RETURNING id",
                    &params![cutoff_ms, self.node_id()],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect::<Result<_>>()?;
            let mut out = Vec::new();
            for node in dead {
                // Running sandboxes die with their node; paused ones live on where their pause
                // image is in the object store (any node resumes them from there).
                let sandboxes: Vec<String> = tx
                    .query(
                        "DELETE FROM sandboxes WHERE node_id = ?1 AND (state != 'paused' OR paused_image IS NULL \
                         OR paused_image NOT IN (SELECT id FROM snapshots WHERE upload = 'durable')) RETURNING id",
                        &params![&node],
                    )?
                    .iter()
                    .map(|r| r.get(0))
                    .collect::<Result<_>>()?;
                tx.execute(
                    "UPDATE snapshots SET upload = 'failed', deleted = 1, name = NULL \
                     WHERE node_id = ?1 AND upload = 'pending'",
                    &params![&node],
                )?;
                tx.execute("DELETE FROM placements WHERE node_id = ?1", &params![&node])?;
                tx.execute("DELETE FROM node_images WHERE node_id = ?1", &params![&node])?;
                out.push((node, sandboxes));
            }
            Ok(out)
        })
    }

    /// Chooses a live node compatible with `compat` with room for `memory_mb` more (counting
    /// running sandboxes and open reservations), preferring nodes that keep image `image_id`
    /// and then the one with the most free memory; reserves the memory there.
    pub fn place(&self, compat: &str, memory_mb: u64, image_id: Option<&str>, fresh_after_ms: i64, exclude: &[String]) -> Result<Option<Placement>> {
        let lock = if self.db().is_postgres() { " FOR UPDATE" } else { "" };
        self.db().transaction(|tx| {
            let nodes: Vec<NodeRow> = tx
                .query(
                    &format!("SELECT {COLUMNS} FROM nodes WHERE alive = 1 AND compat = ?1 AND heartbeat_at >= ?2 ORDER BY id{lock}"),
                    &params![compat, fresh_after_ms],
                )?
                .iter()
                .map(from_row)
                .collect::<Result<_>>()?;
            let mut best: Option<(bool, u64, NodeRow)> = None;
            for node in nodes.into_iter().filter(|n| !exclude.contains(&n.id)) {
                let used = tx.query_one(
                    "SELECT CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT), COUNT(*) FROM sandboxes \
                     WHERE node_id = ?1 AND state != 'paused'",
                    &params![&node.id],
                )?;
                let reserved = tx.query_one(
                    "SELECT CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT), COUNT(*) FROM placements WHERE node_id = ?1",
                    &params![&node.id],
                )?;
                let used_mb = used.get::<u64>(0)? + reserved.get::<u64>(0)?;
                let count = used.get::<u64>(1)? + reserved.get::<u64>(1)?;
                if used_mb + memory_mb > node.memory_mb || count >= node.max_sandboxes {
                    continue;
                }
                let cached = match image_id {
                    Some(img) => tx
                        .query_opt("SELECT 1 FROM node_images WHERE node_id = ?1 AND image_id = ?2", &params![&node.id, img])?
                        .is_some(),
                    None => false,
                };
                let free = node.memory_mb - used_mb;
                if best.as_ref().is_none_or(|(c, f, _)| (cached, free) > (*c, *f)) {
                    best = Some((cached, free, node));
                }
            }
            let Some((_, _, node)) = best else { return Ok(None) };
            let reservation = crate::ids::secret_hex(12);
            tx.execute(
                "INSERT INTO placements (id, node_id, memory_mb, created_at) VALUES (?1, ?2, ?3, ?4)",
                &params![&reservation, &node.id, memory_mb, crate::ids::now_ns() / 1_000_000],
            )?;
            Ok(Some(Placement { reservation, node }))
        })
    }

    /// The reservation is over: its sandbox row exists, or its launch failed.
    pub fn release_placement(&self, reservation: &str) -> Result<()> {
        self.db().execute("DELETE FROM placements WHERE id = ?1", &params![reservation])?;
        Ok(())
    }

    /// Reservations older than `before_ms` (their creating request died with its node).
    pub fn expire_placements(&self, before_ms: i64) -> Result<u64> {
        self.db().execute("DELETE FROM placements WHERE created_at < ?1", &params![before_ms])
    }

    /// Takes cluster-wide lock `key` (a Postgres session advisory lock, `shared` or exclusive)
    /// without waiting; false when it is held the other way. Outside Postgres there is one
    /// process, so it is always granted. A lost connection drops the locks it held (logged by
    /// the connection), so holders keep their critical sections short.
    pub fn try_cluster_lock(&self, key: i64, shared: bool) -> Result<bool> {
        if !self.db().is_postgres() {
            return Ok(true);
        }
        let f = if shared { "pg_try_advisory_lock_shared" } else { "pg_try_advisory_lock" };
        self.db().query_one(&format!("SELECT {f}(?1)"), &params![key])?.get(0)
    }

    pub fn cluster_unlock(&self, key: i64, shared: bool) -> Result<()> {
        if self.db().is_postgres() {
            let f = if shared { "pg_advisory_unlock_shared" } else { "pg_advisory_unlock" };
            self.db().query_one(&format!("SELECT {f}(?1)"), &params![key])?;
        }
        Ok(())
    }

    /// Live nodes other than this one (heartbeat at or after `fresh_after_ms`) that keep a
    /// local copy of image `image_id`, its maker first.
    pub fn image_holders(&self, image_id: &str, maker: &str, fresh_after_ms: i64) -> Result<Vec<NodeRow>> {
        let cols = COLUMNS.split(", ").map(|c| format!("n.{c}")).collect::<Vec<_>>().join(", ");
        let rows = self.db().query(
            &format!(
                "SELECT {cols} FROM nodes n JOIN node_images i ON i.node_id = n.id \
                 WHERE i.image_id = ?1 AND n.alive = 1 AND n.heartbeat_at >= ?2 AND n.id != ?3"
            ),
            &params![image_id, fresh_after_ms, self.node_id()],
        )?;
        let mut nodes = rows.iter().map(from_row).collect::<Result<Vec<_>>>()?;
        nodes.sort_by_key(|n| (n.id != maker, n.id.clone()));
        Ok(nodes)
    }

    /// The secret the nodes of this database show each other (see `cluster/peer.rs`): made by
    /// the first node that asks, the same for all.
    pub fn peer_key(&self) -> Result<String> {
        let fresh: [u8; 32] = rand::random();
        self.db().execute(
            "INSERT INTO cluster_keys (id, secret) VALUES (1, ?1) ON CONFLICT DO NOTHING",
            &params![hex::encode(fresh)],
        )?;
        self.db().query_one("SELECT secret FROM cluster_keys WHERE id = 1", &[])?.get(0)
    }

    /// This node keeps a local copy of image `image_id` (placement prefers it).
    pub fn add_node_image(&self, image_id: &str) -> Result<()> {
        self.db().execute(
            "INSERT INTO node_images (node_id, image_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            &params![self.node_id(), image_id],
        )?;
        Ok(())
    }

    pub fn remove_node_image(&self, image_id: &str) -> Result<()> {
        self.db()
            .execute("DELETE FROM node_images WHERE node_id = ?1 AND image_id = ?2", &params![self.node_id(), image_id])?;
        Ok(())
    }
}
