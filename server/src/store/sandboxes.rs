//! The `sandboxes` table.
//!
//! Invariants: a row exists from the moment a sandbox was handed out until it is killed (or
//! found dead after a restart); `vm` is set exactly while a VM process may exist for it
//! (states `running`, `snapshotting`, `pausing`, and briefly `paused` until the old VM is
//! killed); `paused_image` is set exactly in state `paused`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use super::Store;
use super::db::{DbRow, Exec, Result, Value, params};
use crate::pagination::Cursor;
use crate::vm::VmInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxState {
    Running,
    Snapshotting,
    Pausing,
    Paused,
}

impl SandboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Snapshotting => "snapshotting",
            Self::Pausing => "pausing",
            Self::Paused => "paused",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "snapshotting" => Self::Snapshotting,
            "pausing" => Self::Pausing,
            "paused" => Self::Paused,
            _ => Self::Running,
        }
    }

    /// What the API shows: E2B's `SandboxState` only has `running` and `paused`, and the
    /// transient states keep the VM up.
    pub fn public(self) -> &'static str {
        if self == Self::Paused { "paused" } else { "running" }
    }
}

#[derive(Debug, Clone)]
pub struct SandboxRow {
    pub id: String,
    pub template_id: String,
    pub alias: Option<String>,
    /// Image the current (or last) VM was restored from.
    pub image_dir: PathBuf,
    pub state: SandboxState,
    pub started_at: i64,
    pub end_at: i64,
    pub metadata: BTreeMap<String, String>,
    pub env_vars: HashMap<String, String>,
    pub access_token: Option<String>,
    pub allow_internet: bool,
    pub auto_pause: bool,
    /// False: the auto-pause at timeout keeps only the filesystem (`autoPauseMemory: false`).
    pub auto_pause_memory: bool,
    pub auto_resume: bool,
    pub vm: Option<VmInfo>,
    pub paused_image: Option<String>,
    /// The newest frozen disk layer the running VM's overlay sits on (a GC root).
    pub disk_layer: Option<PathBuf>,
    pub cpu_count: u32,
    pub memory_mb: u32,
    pub disk_size_mb: u32,
    pub envd_version: String,
    /// `NewSandbox.network` as validated (egress replaced by `PUT .../network`).
    pub network: Option<crate::network::NetworkConfig>,
    /// Required on non-envd ports when `network.allowPublicTraffic` is false.
    pub traffic_access_token: Option<String>,
    /// The node whose VM this is (or whose store holds its pause image); set by the store on
    /// insert and resume to its own node (`local` outside a cluster).
    pub node_id: String,
    /// Volumes mounted into the sandbox (`volumeMounts`), kept across pause, resume and
    /// snapshots (a clone inherits its image's mounts).
    pub volume_mounts: Vec<crate::volumes::VolumeMount>,
}

/// `GET /v2/sandboxes` filters (metadata is applied in Rust, see [`Store::list_sandboxes`]).
#[derive(Debug, Default)]
pub struct SandboxFilter {
    pub running: bool,
    pub paused: bool,
    pub ascending: bool,
    pub started_after: Option<i64>,
    pub template: Option<String>,
    pub metadata: Vec<(String, String)>,
    pub cursor: Option<Cursor>,
}

const COLUMNS: &str = "id, template_id, alias, image_dir, state, started_at, end_at, metadata, env_vars, \
    access_token, allow_internet, auto_pause, auto_resume, vm, paused_image, disk_layer, cpu_count, memory_mb, \
    disk_size_mb, envd_version, network, traffic_access_token, auto_pause_memory, node_id, volume_mounts";

fn json_col<T: serde::de::DeserializeOwned + Default>(s: Option<String>) -> T {
    s.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default()
}

fn from_row(r: &DbRow) -> Result<SandboxRow> {
    let vm: Option<String> = r.get(13)?;
    Ok(SandboxRow {
        id: r.get(0)?,
        template_id: r.get(1)?,
        alias: r.get(2)?,
        image_dir: PathBuf::from(r.get::<String>(3)?),
        state: SandboxState::parse(&r.get::<String>(4)?),
        started_at: r.get(5)?,
        end_at: r.get(6)?,
        metadata: json_col(r.get(7)?),
        env_vars: json_col(r.get(8)?),
        access_token: r.get(9)?,
        allow_internet: r.get(10)?,
        auto_pause: r.get(11)?,
        auto_resume: r.get(12)?,
        vm: vm.and_then(|s| serde_json::from_str(&s).ok()),
        paused_image: r.get(14)?,
        disk_layer: r.get::<Option<String>>(15)?.map(PathBuf::from),
        cpu_count: r.get(16)?,
        memory_mb: r.get(17)?,
        disk_size_mb: r.get(18)?,
        envd_version: r.get(19)?,
        network: r.get::<Option<String>>(20)?.and_then(|s| serde_json::from_str(&s).ok()),
        traffic_access_token: r.get(21)?,
        auto_pause_memory: r.get(22)?,
        node_id: r.get(23)?,
        volume_mounts: json_col(r.get(24)?),
    })
}

fn path_str(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

fn network_json(n: &Option<crate::network::NetworkConfig>) -> Option<String> {
    n.as_ref().map(|n| serde_json::to_string(n).unwrap_or_default())
}

fn vm_json(vm: &Option<VmInfo>) -> Option<String> {
    vm.as_ref().map(|vm| serde_json::to_string(vm).unwrap_or_default())
}

impl Store {
    pub fn insert_sandbox(&self, s: &SandboxRow) -> Result<()> {
        self.db().execute(
            &format!("INSERT INTO sandboxes ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)"),
            &params![
                &s.id,
                &s.template_id,
                s.alias.as_deref(),
                path_str(&s.image_dir),
                s.state.as_str(),
                s.started_at,
                s.end_at,
                serde_json::to_string(&s.metadata).unwrap_or_default(),
                serde_json::to_string(&s.env_vars).unwrap_or_default(),
                s.access_token.as_deref(),
                s.allow_internet,
                s.auto_pause,
                s.auto_resume,
                vm_json(&s.vm),
                s.paused_image.as_deref(),
                s.disk_layer.as_deref().map(path_str),
                s.cpu_count,
                s.memory_mb,
                s.disk_size_mb,
                &s.envd_version,
                network_json(&s.network),
                s.traffic_access_token.as_deref(),
                s.auto_pause_memory,
                self.node_id(),
                (!s.volume_mounts.is_empty()).then(|| serde_json::to_string(&s.volume_mounts).unwrap_or_default()),
            ],
        )?;
        Ok(())
    }

    /// `PUT /sandboxes/{id}/network`: the new configuration and internet flag.
    pub fn set_network(
        &self,
        id: &str,
        network: &Option<crate::network::NetworkConfig>,
        allow_internet: bool,
    ) -> Result<bool> {
        let n = self.db().execute(
            "UPDATE sandboxes SET network = ?2, allow_internet = ?3 WHERE id = ?1",
            &params![id, network_json(network), allow_internet],
        )?;
        Ok(n == 1)
    }

    pub fn sandbox(&self, id: &str) -> Result<Option<SandboxRow>> {
        self.db()
            .query_opt(&format!("SELECT {COLUMNS} FROM sandboxes WHERE id = ?1"), &params![id])?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// This node's sandboxes (every sandbox outside a cluster).
    pub fn all_sandboxes(&self) -> Result<Vec<SandboxRow>> {
        self.db()
            .query(&format!("SELECT {COLUMNS} FROM sandboxes WHERE node_id = ?1"), &params![self.node_id()])?
            .iter()
            .map(from_row)
            .collect()
    }

    /// Every node's sandboxes (what images and layers are still in use, cluster-wide).
    pub fn sandboxes_everywhere(&self) -> Result<Vec<SandboxRow>> {
        self.db().query(&format!("SELECT {COLUMNS} FROM sandboxes"), &[])?.iter().map(from_row).collect()
    }

    /// `(id, envd access token)` of every sandbox that has one (created with `secure`).
    pub fn access_tokens(&self) -> Result<Vec<(String, String)>> {
        let rows = self.db().query("SELECT id, access_token FROM sandboxes WHERE access_token IS NOT NULL", &[])?;
        rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?))).collect()
    }

    pub fn delete_sandbox(&self, id: &str) -> Result<bool> {
        Ok(self.db().execute("DELETE FROM sandboxes WHERE id = ?1", &params![id])? > 0)
    }

    pub fn set_state(&self, id: &str, state: SandboxState) -> Result<()> {
        self.db().execute("UPDATE sandboxes SET state = ?2 WHERE id = ?1", &params![id, state.as_str()])?;
        Ok(())
    }

    pub fn set_end_at(&self, id: &str, end_at: i64) -> Result<bool> {
        Ok(self.db().execute("UPDATE sandboxes SET end_at = ?2 WHERE id = ?1", &params![id, end_at])? > 0)
    }

    /// Back to `running` after a snapshot, on top of the layer that snapshot froze.
    pub fn finish_snapshot(&self, id: &str, disk_layer: Option<&std::path::Path>) -> Result<()> {
        self.db().execute(
            "UPDATE sandboxes SET state = 'running', disk_layer = COALESCE(?2, disk_layer) WHERE id = ?1",
            &params![id, disk_layer.map(path_str)],
        )?;
        Ok(())
    }

    /// Paused into `image`; the old VM is still recorded until [`Store::clear_vm`].
    pub fn set_paused(&self, id: &str, image: &str) -> Result<()> {
        self.db()
            .execute("UPDATE sandboxes SET state = 'paused', paused_image = ?2 WHERE id = ?1", &params![id, image])?;
        Ok(())
    }

    pub fn clear_vm(&self, id: &str) -> Result<()> {
        self.db().execute("UPDATE sandboxes SET vm = NULL, disk_layer = NULL WHERE id = ?1", &params![id])?;
        Ok(())
    }

    /// Resumed (or recovered) into a new VM.
    pub fn set_running(&self, s: &SandboxRow) -> Result<()> {
        self.db().execute(
            "UPDATE sandboxes SET state = 'running', vm = ?2, image_dir = ?3, access_token = ?4, end_at = ?5, \
             disk_layer = ?6, paused_image = NULL, node_id = ?7 WHERE id = ?1",
            &params![
                &s.id,
                vm_json(&s.vm),
                path_str(&s.image_dir),
                s.access_token.as_deref(),
                s.end_at,
                s.disk_layer.as_deref().map(path_str),
                self.node_id()
            ],
        )?;
        Ok(())
    }

    /// Earliest expiry among this node's sandboxes that have a VM.
    pub fn next_deadline(&self) -> Result<Option<i64>> {
        self.db()
            .query_one("SELECT MIN(end_at) FROM sandboxes WHERE state != 'paused' AND node_id = ?1", &params![self.node_id()])?
            .get(0)
    }

    /// This node's sandboxes past their end (each node expires the VMs it runs).
    pub fn expired_sandboxes(&self, now: i64) -> Result<Vec<String>> {
        let rows = self.db().query(
            "SELECT id FROM sandboxes WHERE state != 'paused' AND end_at <= ?1 AND node_id = ?2 ORDER BY end_at",
            &params![now, self.node_id()],
        )?;
        rows.iter().map(|r| r.get(0)).collect()
    }

    /// One page (`limit + 1` rows) in `(started_at, id)` order after the cursor.
    pub fn list_sandboxes(&self, f: &SandboxFilter, limit: usize) -> Result<Vec<SandboxRow>> {
        let (cmp, order) = if f.ascending { (">", "ASC") } else { ("<", "DESC") };
        let mut sql = format!("SELECT {COLUMNS} FROM sandboxes WHERE 1 = 1");
        let mut args: Vec<Value> = Vec::new();
        match (f.running, f.paused) {
            (true, false) => sql.push_str(" AND state != 'paused'"),
            (false, true) => sql.push_str(" AND state = 'paused'"),
            _ => {}
        }
        if let Some(after) = f.started_after {
            args.push(after.into());
            sql.push_str(&format!(" AND started_at >= ?{}", args.len()));
        }
        if let Some(t) = &f.template {
            args.push(t.clone().into());
            sql.push_str(&format!(" AND (template_id = ?{n} OR alias = ?{n})", n = args.len()));
        }
        if let Some(c) = &f.cursor {
            args.push(c.ts.into());
            args.push(c.id.clone().into());
            let (t, i) = (args.len() - 1, args.len());
            sql.push_str(&format!(" AND (started_at {cmp} ?{t} OR (started_at = ?{t} AND id {cmp} ?{i}))"));
        }
        sql.push_str(&format!(" ORDER BY started_at {order}, id {order}"));
        // The metadata filter is applied here (JSON column), so with one the page is cut
        // here too.
        if f.metadata.is_empty() {
            args.push((limit + 1).into());
            sql.push_str(&format!(" LIMIT ?{}", args.len()));
        }
        let mut out = Vec::new();
        for r in self.db().query(&sql, &args)? {
            let row = from_row(&r)?;
            if f.metadata.iter().all(|(k, v)| row.metadata.get(k) == Some(v)) {
                out.push(row);
                if out.len() > limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}
