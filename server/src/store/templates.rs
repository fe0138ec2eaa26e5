//! Custom templates built through E2B's template API (`template::build`): templates, their
//! aliases, builds, build logs, tags, and the layer cache.
//!
//! Invariants:
//! - A template is visible (listed, resolvable, `GET /templates/aliases/{alias}`) only while
//!   it has at least one `ready` build: a template whose builds all failed is never handed out.
//! - Every image a build made is a `snapshots` row of kind `build` (hidden from the snapshot
//!   API); a ready build's `image_id` and a cache row's `image_id` keep that image alive.
//! - An alias names at most one template (primary key); a tag of a template names one build.
//! - Build log lines are append-only and numbered from 0 per build (`seq`): `logsOffset` counts
//!   them.

use super::Store;
use super::db::{DbRow, Exec, Result, params};

#[derive(Debug, Clone)]
pub struct TemplateRow {
    pub id: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct BuildRow {
    pub id: String,
    pub template_id: String,
    /// `waiting`, `building`, `ready` or `error`.
    pub status: String,
    /// JSON `{message, step}` of a failed build.
    pub reason: Option<String>,
    pub cpu_count: Option<u32>,
    pub memory_mb: Option<u32>,
    pub disk_size_mb: u32,
    pub image_id: Option<String>,
    /// JSON [`crate::template::build::Finished`] of a ready build.
    pub config: Option<String>,
    /// Tags the build gets when it becomes ready (JSON list).
    pub tags: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct LogRow {
    pub ts: i64,
    pub level: String,
    pub message: String,
    pub step: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LayerRow {
    pub hash: String,
    pub image_id: String,
    pub state: String,
    pub size_bytes: u64,
    pub last_used: i64,
}

const BUILD_COLUMNS: &str = "id, template_id, status, reason, cpu_count, memory_mb, disk_size_mb, image_id, config, tags, \
                             created_at, updated_at, finished_at";

fn build_row(r: &DbRow) -> Result<BuildRow> {
    Ok(BuildRow {
        id: r.get(0)?,
        template_id: r.get(1)?,
        status: r.get(2)?,
        reason: r.get(3)?,
        cpu_count: r.get(4)?,
        memory_mb: r.get(5)?,
        disk_size_mb: r.get(6)?,
        image_id: r.get(7)?,
        config: r.get(8)?,
        tags: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
        finished_at: r.get(12)?,
    })
}

fn template_row(r: &DbRow) -> Result<TemplateRow> {
    Ok(TemplateRow { id: r.get(0)?, created_at: r.get(1)?, updated_at: r.get(2)? })
}

fn layer_row(r: &DbRow) -> Result<LayerRow> {
    Ok(LayerRow { hash: r.get(0)?, image_id: r.get(1)?, state: r.get(2)?, size_bytes: r.get(3)?, last_used: r.get(4)? })
}

/// Column 0 of every row.
fn first_column<T: super::db::FromValue>(rows: Vec<DbRow>) -> Result<Vec<T>> {
    rows.iter().map(|r| r.get(0)).collect()
}

/// Column 0 of the row, if there is one.
fn opt_first<T: super::db::FromValue>(row: Option<DbRow>) -> Result<Option<T>> {
    row.map(|r| r.get(0)).transpose()
}

/// Moves (or creates) the tag; the one statement both backends run as an upsert.
const UPSERT_TAG: &str = "INSERT INTO template_tags (template_id, tag, build_id, created_at) VALUES (?1, ?2, ?3, ?4) \
     ON CONFLICT (template_id, tag) DO UPDATE SET build_id = excluded.build_id, created_at = excluded.created_at";

impl Store {
    /// The template an alias names (visible or not).
    pub fn template_by_alias(&self, alias: &str) -> Result<Option<String>> {
        opt_first(self.db().query_opt("SELECT template_id FROM template_aliases WHERE alias = ?1", &params![alias])?)
    }

    pub fn template(&self, id: &str) -> Result<Option<TemplateRow>> {
        self.db()
            .query_opt("SELECT id, created_at, updated_at FROM templates WHERE id = ?1", &params![id])?
            .as_ref()
            .map(template_row)
            .transpose()
    }

    /// Creates the template (and its alias) unless the alias exists; returns its ID either way.
    pub fn ensure_template(&self, alias: &str, new_id: &str, now: i64) -> Result<String> {
        self.db().transaction(|tx| {
            let existing: Option<String> =
                opt_first(tx.query_opt("SELECT template_id FROM template_aliases WHERE alias = ?1", &params![alias])?)?;
            if let Some(id) = existing {
                return Ok(id);
            }
            tx.execute(
                "INSERT INTO templates (id, created_at, updated_at) VALUES (?1, ?2, ?2)",
                &params![new_id, now],
            )?;
            tx.execute("INSERT INTO template_aliases (alias, template_id) VALUES (?1, ?2)", &params![alias, new_id])?;
            Ok(new_id.to_string())
        })
    }

    pub fn aliases_of(&self, template_id: &str) -> Result<Vec<String>> {
        first_column(
            self.db().query(
                "SELECT alias FROM template_aliases WHERE template_id = ?1 ORDER BY alias",
                &params![template_id],
            )?,
        )
    }

    /// Templates with at least one ready build, newest first.
    pub fn visible_templates(&self) -> Result<Vec<TemplateRow>> {
        let rows = self.db().query(
            "SELECT id, created_at, updated_at FROM templates t WHERE EXISTS \
             (SELECT 1 FROM template_builds b WHERE b.template_id = t.id AND b.status = 'ready') \
             ORDER BY created_at DESC, id DESC",
            &[],
        )?;
        rows.iter().map(template_row).collect()
    }

    /// Removes the template, its aliases and tags (its builds stay, for their status).
    pub fn delete_template(&self, id: &str) -> Result<bool> {
        self.db().transaction(|tx| {
            let n = tx.execute("DELETE FROM templates WHERE id = ?1", &params![id])?;
            tx.execute("DELETE FROM template_aliases WHERE template_id = ?1", &params![id])?;
            tx.execute("DELETE FROM template_tags WHERE template_id = ?1", &params![id])?;
            Ok(n > 0)
        })
    }

    pub fn insert_build(&self, b: &BuildRow) -> Result<()> {
        self.db().execute(
            &format!(
                "INSERT INTO template_builds ({BUILD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            ),
            &params![
                &b.id,
                &b.template_id,
                &b.status,
                b.reason.as_deref(),
                b.cpu_count,
                b.memory_mb,
                b.disk_size_mb,
                b.image_id.as_deref(),
                b.config.as_deref(),
                &b.tags,
                b.created_at,
                b.updated_at,
                b.finished_at
            ],
        )?;
        Ok(())
    }

    pub fn build(&self, id: &str) -> Result<Option<BuildRow>> {
        self.db()
            .query_opt(&format!("SELECT {BUILD_COLUMNS} FROM template_builds WHERE id = ?1"), &params![id])?
            .as_ref()
            .map(build_row)
            .transpose()
    }

    pub fn builds_of(&self, template_id: &str) -> Result<Vec<BuildRow>> {
        let rows = self.db().query(
            &format!(
                "SELECT {BUILD_COLUMNS} FROM template_builds WHERE template_id = ?1 ORDER BY created_at DESC, id DESC"
            ),
            &params![template_id],
        )?;
        rows.iter().map(build_row).collect()
    }

    /// `waiting` → `building`; false when the build was not waiting.
    pub fn start_build(&self, id: &str, now: i64) -> Result<bool> {
        Ok(self.db().execute(
            "UPDATE template_builds SET status = 'building', updated_at = ?2 WHERE id = ?1 AND status = 'waiting'",
            &params![id, now],
        )? > 0)
    }

    /// A ready build: its image and config recorded, its tags pointed at it, in one transaction.
    #[allow(clippy::too_many_arguments)]
    pub fn finish_build_ready(
        &self,
        b: &BuildRow,
        image_id: &str,
        config: &str,
        cpu: u32,
        mem: u32,
        tags: &[String],
        now: i64,
    ) -> Result<()> {
        self.db().transaction(|tx| {
            tx.execute(
                "UPDATE template_builds SET status = 'ready', image_id = ?2, config = ?3, cpu_count = ?4, \
                 memory_mb = ?5, updated_at = ?6, finished_at = ?6 WHERE id = ?1",
                &params![&b.id, image_id, config, cpu, mem, now],
            )?;
            for tag in tags {
                tx.execute(UPSERT_TAG, &params![&b.template_id, tag, &b.id, now])?;
            }
            tx.execute("UPDATE templates SET updated_at = ?2 WHERE id = ?1", &params![&b.template_id, now])?;
            Ok(())
        })
    }

    pub fn finish_build_error(&self, id: &str, reason: &str, now: i64) -> Result<()> {
        self.db().execute(
            "UPDATE template_builds SET status = 'error', reason = ?2, updated_at = ?3, finished_at = ?3 \
             WHERE id = ?1 AND status IN ('waiting', 'building')",
            &params![id, reason, now],
        )?;
        Ok(())
    }

    /// After a restart: builds that were running are failed. Returns their IDs.
    pub fn fail_unfinished_builds(&self, reason: &str, now: i64) -> Result<Vec<String>> {
        // One statement that reports what it changed: no build slips in between a read and
        // the update.
        first_column(self.db().query(
            "UPDATE template_builds SET status = 'error', reason = ?1, updated_at = ?2, finished_at = ?2 \
             WHERE status = 'building' RETURNING id",
            &params![reason, now],
        )?)
    }

    /// True when the template has a ready build.
    pub fn template_ready(&self, template_id: &str) -> Result<bool> {
        self.db()
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM template_builds WHERE template_id = ?1 AND status = 'ready')",
                &params![template_id],
            )?
            .get(0)
    }

    /// True while a build of the template waits or runs.
    pub fn template_building(&self, template_id: &str) -> Result<bool> {
        self.db()
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM template_builds WHERE template_id = ?1 AND status IN ('waiting', 'building'))",
                &params![template_id],
            )?
            .get(0)
    }

    pub fn tags_of(&self, template_id: &str) -> Result<Vec<(String, String, i64)>> {
        let rows = self.db().query(
            "SELECT tag, build_id, created_at FROM template_tags WHERE template_id = ?1 ORDER BY tag",
            &params![template_id],
        )?;
        rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).collect()
    }

    pub fn tag_build(&self, template_id: &str, tag: &str) -> Result<Option<String>> {
        opt_first(self.db().query_opt(
            "SELECT build_id FROM template_tags WHERE template_id = ?1 AND tag = ?2",
            &params![template_id, tag],
        )?)
    }

    pub fn set_tags(&self, template_id: &str, build_id: &str, tags: &[String], now: i64) -> Result<()> {
        self.db().transaction(|tx| {
            for tag in tags {
                tx.execute(UPSERT_TAG, &params![template_id, tag, build_id, now])?;
            }
            Ok(())
        })
    }

    pub fn remove_tags(&self, template_id: &str, tags: &[String]) -> Result<usize> {
        self.db().transaction(|tx| {
            let mut n = 0;
            for tag in tags {
                n += tx.execute(
                    "DELETE FROM template_tags WHERE template_id = ?1 AND tag = ?2",
                    &params![template_id, tag],
                )?;
            }
            Ok(n as usize)
        })
    }

    pub fn append_build_log(&self, build_id: &str, row: &LogRow) -> Result<()> {
        self.db().execute(
            "INSERT INTO template_build_logs (build_id, seq, ts, level, message, step) VALUES \
             (?1, (SELECT COALESCE(MAX(seq) + 1, 0) FROM template_build_logs WHERE build_id = ?1), ?2, ?3, ?4, ?5)",
            &params![build_id, row.ts, &row.level, &row.message, row.step.as_deref()],
        )?;
        Ok(())
    }

    /// Log lines `offset..offset + limit` of a build, oldest first.
    pub fn build_logs(&self, build_id: &str, offset: i64, limit: i64) -> Result<Vec<LogRow>> {
        let rows = self.db().query(
            "SELECT ts, level, message, step FROM template_build_logs WHERE build_id = ?1 AND seq >= ?2 \
             ORDER BY seq LIMIT ?3",
            &params![build_id, offset, limit],
        )?;
        rows.iter()
            .map(|r| Ok(LogRow { ts: r.get(0)?, level: r.get(1)?, message: r.get(2)?, step: r.get(3)? }))
            .collect()
    }

    pub fn layer(&self, hash: &str) -> Result<Option<LayerRow>> {
        self.db()
            .query_opt(
                "SELECT hash, image_id, state, size_bytes, last_used FROM template_layers WHERE hash = ?1",
                &params![hash],
            )?
            .as_ref()
            .map(layer_row)
            .transpose()
    }

    pub fn touch_layer(&self, hash: &str, now: i64) -> Result<()> {
        self.db().execute("UPDATE template_layers SET last_used = ?2 WHERE hash = ?1", &params![hash, now])?;
        Ok(())
    }

    /// Records (or replaces) a cache entry; returns the image the replaced entry pointed at.
    pub fn put_layer(&self, l: &LayerRow) -> Result<Option<String>> {
        self.db().transaction(|tx| {
            let old: Option<String> =
                opt_first(tx.query_opt("SELECT image_id FROM template_layers WHERE hash = ?1", &params![&l.hash])?)?;
            tx.execute(
                "INSERT INTO template_layers (hash, image_id, state, size_bytes, last_used) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (hash) DO UPDATE SET image_id = excluded.image_id, state = excluded.state, \
                 size_bytes = excluded.size_bytes, last_used = excluded.last_used",
                &params![&l.hash, &l.image_id, &l.state, l.size_bytes, l.last_used],
            )?;
            Ok(old.filter(|o| *o != l.image_id))
        })
    }

    pub fn delete_layer(&self, hash: &str) -> Result<()> {
        self.db().execute("DELETE FROM template_layers WHERE hash = ?1", &params![hash])?;
        Ok(())
    }

    /// Cache entries, least recently used first.
    pub fn layers_lru(&self) -> Result<Vec<LayerRow>> {
        let rows = self.db().query(
            "SELECT hash, image_id, state, size_bytes, last_used FROM template_layers ORDER BY last_used, hash",
            &[],
        )?;
        rows.iter().map(layer_row).collect()
    }

    /// True while a cache entry or a tag refers to the image.
    pub fn build_image_in_use(&self, image_id: &str) -> Result<bool> {
        Ok(self.layer_uses(image_id)? || self.image_held_by_template(image_id)?)
    }

    fn layer_uses(&self, image_id: &str) -> Result<bool> {
        self.db()
            .query_one("SELECT EXISTS (SELECT 1 FROM template_layers WHERE image_id = ?1)", &params![image_id])?
            .get(0)
    }

    /// True while a tag of a template points at a build made of the image.
    pub fn image_held_by_template(&self, image_id: &str) -> Result<bool> {
        self.db()
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM template_tags t JOIN template_builds b ON b.id = t.build_id \
                 WHERE b.image_id = ?1)",
                &params![image_id],
            )?
            .get(0)
    }

    /// Images of the template's ready builds (to release after its tags moved or it went).
    pub fn build_images_of(&self, template_id: &str) -> Result<Vec<String>> {
        first_column(self.db().query(
            "SELECT DISTINCT image_id FROM template_builds WHERE template_id = ?1 AND image_id IS NOT NULL",
            &params![template_id],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(id: &str, template_id: &str) -> BuildRow {
        BuildRow {
            id: id.into(),
            template_id: template_id.into(),
            status: "waiting".into(),
            reason: None,
            cpu_count: None,
            memory_mb: None,
            disk_size_mb: 2048,
            image_id: None,
            config: None,
            tags: "[]".into(),
            created_at: 1,
            updated_at: 1,
            finished_at: None,
        }
    }

    #[test]
    fn a_template_is_visible_only_with_a_ready_build_and_tags_hold_its_image() {
        for t in crate::store::testing::test_stores() {
            eprintln!("backend: {}", t.name);
            visible_with_a_ready_build_on(&t.store);
        }
    }

    fn visible_with_a_ready_build_on(s: &Store) {
        let id = s.ensure_template("web", "t1", 1).unwrap();
        assert_eq!(s.ensure_template("web", "t2", 2).unwrap(), id, "an alias names one template");
        s.insert_build(&build("b1", &id)).unwrap();
        assert!(s.visible_templates().unwrap().is_empty());
        assert!(s.start_build("b1", 3).unwrap() && !s.start_build("b1", 3).unwrap());
        assert!(s.template_building(&id).unwrap());
        s.finish_build_ready(&build("b1", &id), "img1", "{}", 1, 512, &["default".into()], 4).unwrap();
        assert_eq!(s.visible_templates().unwrap().len(), 1);
        assert_eq!(s.tag_build(&id, "default").unwrap().as_deref(), Some("b1"));
        assert!(s.image_held_by_template("img1").unwrap());
        s.remove_tags(&id, &["default".into()]).unwrap();
        assert!(!s.build_image_in_use("img1").unwrap());
        assert!(s.delete_template(&id).unwrap());
        assert!(s.template_by_alias("web").unwrap().is_none());
        assert_eq!(s.build("b1").unwrap().unwrap().status, "ready", "builds outlive their template");
    }

    #[test]
    fn interrupted_builds_fail_and_layers_replace_and_report_lru() {
        for t in crate::store::testing::test_stores() {
            eprintln!("backend: {}", t.name);
            interrupted_builds_and_layers_on(&t.store);
        }
    }

    fn interrupted_builds_and_layers_on(s: &Store) {
        let id = s.ensure_template("web", "t1", 1).unwrap();
        s.insert_build(&build("b1", &id)).unwrap();
        s.start_build("b1", 2).unwrap();
        assert_eq!(s.fail_unfinished_builds("{}", 3).unwrap(), vec!["b1".to_string()]);
        assert_eq!(s.build("b1").unwrap().unwrap().status, "error");
        let layer = |hash: &str, image: &str, used: i64| LayerRow {
            hash: hash.into(),
            image_id: image.into(),
            state: "{}".into(),
            size_bytes: 10,
            last_used: used,
        };
        assert_eq!(s.put_layer(&layer("h1", "i1", 5)).unwrap(), None);
        assert_eq!(s.put_layer(&layer("h2", "i2", 1)).unwrap(), None);
        assert_eq!(
            s.put_layer(&layer("h1", "i3", 6)).unwrap().as_deref(),
            Some("i1"),
            "the replaced image is returned"
        );
        assert!(s.build_image_in_use("i3").unwrap() && !s.build_image_in_use("i1").unwrap());
        let lru: Vec<String> = s.layers_lru().unwrap().into_iter().map(|l| l.hash).collect();
        assert_eq!(lru, ["h2", "h1"]);
        for i in 0..3 {
            let row = LogRow { ts: i, level: "info".into(), message: format!("m{i}"), step: None };
            s.append_build_log("b1", &row).unwrap();
        }
        let page: Vec<String> = s.build_logs("b1", 1, 10).unwrap().into_iter().map(|l| l.message).collect();
        assert_eq!(page, ["m1", "m2"]);
    }
}
