//! The `snapshots` table: every image sandboxd created (user snapshots, pause images, fork
//! images), all stored as `<data>/snapshots/<id>`.
//!
//! Invariants:
//! - A row is inserted only after its directory is complete on disk.
//! - Only `kind = 'snapshot' AND deleted = 0` rows are visible through the API.
//! - A name belongs to at most one row (unique index); reusing it moves it to the new row.
//! - Deleting is soft (`deleted = 1`, name released); the garbage collector removes the
//!   directory and the row once no sandbox row refers to the directory.

use std::path::{Path, PathBuf};

use super::Store;
use super::db::{DbRow, Exec, Result, Value, params};
use crate::pagination::Cursor;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// `POST /sandboxes/{id}/snapshots`: listed, usable as a template.
    Snapshot,
    /// Private memory + disk image of a paused sandbox.
    Pause,
    /// Hidden image that `fork` starts its clones from.
    Fork,
    /// Hidden image made by a template build: a cached layer or a built template
    /// (`store/templates.rs` says which rows keep it).
    Build,
}

impl ImageKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Pause => "pause",
            Self::Fork => "fork",
            Self::Build => "build",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "pause" => Self::Pause,
            "fork" => Self::Fork,
            "build" => Self::Build,
            _ => Self::Snapshot,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ImageRow {
    pub id: String,
    pub kind: ImageKind,
    pub name: Option<String>,
    pub tag: String,
    pub source_sandbox_id: Option<String>,
    pub dir: PathBuf,
    pub disk_layer: PathBuf,
    pub created_at: i64,
    pub size_bytes: u64,
    pub deleted: bool,
    /// The node that captured it (its directory is there); set by the store on insert.
    pub node_id: String,
    pub upload: Upload,
}

/// Whether an image is in the cluster's object store (`Durable`: restorable on any node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    /// Not uploaded and not meant to be (outside a cluster; fork images).
    None,
    /// Durable on its node, upload in progress.
    Pending,
    Durable,
    /// The upload failed, or its node died before finishing it.
    Failed,
}

impl Upload {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Pending => "pending",
            Self::Durable => "durable",
            Self::Failed => "failed",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "pending" => Self::Pending,
            "durable" => Self::Durable,
            "failed" => Self::Failed,
            _ => Self::None,
        }
    }
}

/// The team slug every name lives under (sandboxd has a single team).
pub const NAMESPACE: &str = "local";

impl ImageRow {
    /// E2B's snapshot ID: `local/<name>:<tag>` when named, else `<id>:<tag>`.
    pub fn snapshot_id(&self) -> String {
        match &self.name {
            Some(name) => format!("{NAMESPACE}/{name}:{}", self.tag),
            None => format!("{}:{}", self.id, self.tag),
        }
    }

    pub fn names(&self) -> Vec<String> {
        self.name.iter().map(|n| format!("{NAMESPACE}/{n}")).collect()
    }
}

const COLUMNS: &str =
    "id, kind, name, tag, source_sandbox_id, dir, disk_layer, created_at, size_bytes, deleted, node_id, upload";

fn from_row(r: &DbRow) -> Result<ImageRow> {
    Ok(ImageRow {
        id: r.get(0)?,
        kind: ImageKind::parse(&r.get::<String>(1)?),
        name: r.get(2)?,
        tag: r.get(3)?,
        source_sandbox_id: r.get(4)?,
        dir: PathBuf::from(r.get::<String>(5)?),
        disk_layer: PathBuf::from(r.get::<String>(6)?),
        created_at: r.get(7)?,
        size_bytes: r.get(8)?,
        deleted: r.get(9)?,
        node_id: r.get(10)?,
        upload: Upload::parse(&r.get::<String>(11)?),
    })
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl Store {
    /// Inserts the row; a name already in use moves to this row in the same transaction.
    pub fn insert_image(&self, img: &ImageRow) -> Result<()> {
        self.db().transaction(|tx| {
            if let Some(name) = &img.name {
                tx.execute("UPDATE snapshots SET name = NULL WHERE name = ?1", &params![name])?;
            }
            tx.execute(
                &format!("INSERT INTO snapshots ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                &params![
                    &img.id,
                    img.kind.as_str(),
                    img.name.as_deref(),
                    &img.tag,
                    img.source_sandbox_id.as_deref(),
                    path_str(&img.dir),
                    path_str(&img.disk_layer),
                    img.created_at,
                    img.size_bytes,
                    img.deleted,
                    self.node_id(),
                    img.upload.as_str()
                ],
            )?;
            Ok(())
        })
    }

    pub fn image(&self, id: &str) -> Result<Option<ImageRow>> {
        self.db()
            .query_opt(&format!("SELECT {COLUMNS} FROM snapshots WHERE id = ?1"), &params![id])?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// A visible snapshot by name (without namespace) or by raw ID.
    pub fn find_snapshot(&self, name_or_id: &str) -> Result<Option<ImageRow>> {
        // CASE, not `ORDER BY name = ?1 DESC`: a NULL name sorts last in SQLite but first in
        // Postgres, which would pick an unnamed row matched by ID over the named one.
        self.db()
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM snapshots WHERE kind = 'snapshot' AND deleted = 0 \
                     AND (name = ?1 OR id = ?1) ORDER BY CASE WHEN name = ?1 THEN 0 ELSE 1 END LIMIT 1"
                ),
                &params![name_or_id],
            )?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    pub fn all_images(&self) -> Result<Vec<ImageRow>> {
        self.db().query(&format!("SELECT {COLUMNS} FROM snapshots"), &[])?.iter().map(from_row).collect()
    }

    /// Hides the image and releases its name. False when there was no live row.
    pub fn soft_delete_image(&self, id: &str) -> Result<bool> {
        Ok(self
            .db()
            .execute("UPDATE snapshots SET deleted = 1, name = NULL WHERE id = ?1 AND deleted = 0", &params![id])?
            > 0)
    }

    /// Where the upload of image `id` to the object store stands (cluster mode).
    pub fn set_image_upload(&self, id: &str, upload: Upload) -> Result<()> {
        self.db().execute("UPDATE snapshots SET upload = ?2 WHERE id = ?1", &params![id, upload.as_str()])?;
        Ok(())
    }

    pub fn hard_delete_image(&self, id: &str) -> Result<()> {
        self.db().execute("DELETE FROM snapshots WHERE id = ?1", &params![id])?;
        Ok(())
    }

    /// One page (`limit + 1` rows) of visible snapshots, newest first.
    pub fn list_snapshots(
        &self,
        source_sandbox_id: Option<&str>,
        name_or_id: Option<&str>,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<Vec<ImageRow>> {
        let mut sql = format!("SELECT {COLUMNS} FROM snapshots WHERE kind = 'snapshot' AND deleted = 0");
        let mut args: Vec<Value> = Vec::new();
        if let Some(s) = source_sandbox_id {
            args.push(s.to_string().into());
            sql.push_str(&format!(" AND source_sandbox_id = ?{}", args.len()));
        }
        if let Some(n) = name_or_id {
            args.push(n.to_string().into());
            sql.push_str(&format!(" AND (name = ?{n} OR id = ?{n})", n = args.len()));
        }
        if let Some(c) = cursor {
            args.push(c.ts.into());
            args.push(c.id.clone().into());
            let (t, i) = (args.len() - 1, args.len());
            sql.push_str(&format!(" AND (created_at < ?{t} OR (created_at = ?{t} AND id < ?{i}))"));
        }
        args.push((limit + 1).into());
        sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT ?{}", args.len()));
        self.db().query(&sql, &args)?.iter().map(from_row).collect()
    }
}
