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

use rusqlite::{OptionalExtension, Row, params};

use super::Store;

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

fn build_row(r: &Row<'_>) -> rusqlite::Result<BuildRow> {
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

fn template_row(r: &Row<'_>) -> rusqlite::Result<TemplateRow> {
    Ok(TemplateRow { id: r.get(0)?, created_at: r.get(1)?, updated_at: r.get(2)? })
}

impl Store {
    /// The template an alias names (visible or not).
    pub fn template_by_alias(&self, alias: &str) -> rusqlite::Result<Option<String>> {
        self.conn()
            .query_row("SELECT template_id FROM template_aliases WHERE alias = ?1", [alias], |r| r.get(0))
            .optional()
    }

    pub fn template(&self, id: &str) -> rusqlite::Result<Option<TemplateRow>> {
        self.conn()
            .query_row("SELECT id, created_at, updated_at FROM templates WHERE id = ?1", [id], template_row)
            .optional()
    }

    /// Creates the template (and its alias) unless the alias exists; returns its ID either way.
    pub fn ensure_template(&self, alias: &str, new_id: &str, now: i64) -> rusqlite::Result<String> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let existing: Option<String> = tx
            .query_row("SELECT template_id FROM template_aliases WHERE alias = ?1", [alias], |r| r.get(0))
            .optional()?;
        let id = match existing {
            Some(id) => id,
            None => {
                tx.execute(
                    "INSERT INTO templates (id, created_at, updated_at) VALUES (?1, ?2, ?2)",
                    params![new_id, now],
                )?;
                tx.execute(
                    "INSERT INTO template_aliases (alias, template_id) VALUES (?1, ?2)",
                    params![alias, new_id],
                )?;
                new_id.to_string()
            }
        };
        tx.commit()?;
        Ok(id)
    }

    pub fn aliases_of(&self, template_id: &str) -> rusqlite::Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT alias FROM template_aliases WHERE template_id = ?1 ORDER BY alias")?;
        stmt.query_map([template_id], |r| r.get(0))?.collect()
    }

    /// Templates with at least one ready build, newest first.
    pub fn visible_templates(&self) -> rusqlite::Result<Vec<TemplateRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, created_at, updated_at FROM templates t WHERE EXISTS \
             (SELECT 1 FROM template_builds b WHERE b.template_id = t.id AND b.status = 'ready') \
             ORDER BY created_at DESC, id DESC",
        )?;
        stmt.query_map([], template_row)?.collect()
    }

    /// Removes the template, its aliases and tags (its builds stay, for their status).
    pub fn delete_template(&self, id: &str) -> rusqlite::Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute("DELETE FROM templates WHERE id = ?1", [id])?;
        tx.execute("DELETE FROM template_aliases WHERE template_id = ?1", [id])?;
        tx.execute("DELETE FROM template_tags WHERE template_id = ?1", [id])?;
        tx.commit()?;
        Ok(n > 0)
    }

    pub fn insert_build(&self, b: &BuildRow) -> rusqlite::Result<()> {
        self.conn().execute(
            &format!("INSERT INTO template_builds ({BUILD_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"),
            params![
                b.id,
                b.template_id,
                b.status,
                b.reason,
                b.cpu_count,
                b.memory_mb,
                b.disk_size_mb,
                b.image_id,
                b.config,
                b.tags,
                b.created_at,
                b.updated_at,
                b.finished_at
            ],
        )?;
        Ok(())
    }

    pub fn build(&self, id: &str) -> rusqlite::Result<Option<BuildRow>> {
        self.conn()
            .query_row(&format!("SELECT {BUILD_COLUMNS} FROM template_builds WHERE id = ?1"), [id], build_row)
            .optional()
    }

    pub fn builds_of(&self, template_id: &str) -> rusqlite::Result<Vec<BuildRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {BUILD_COLUMNS} FROM template_builds WHERE template_id = ?1 ORDER BY created_at DESC, id DESC"
        ))?;
        stmt.query_map([template_id], build_row)?.collect()
    }

    /// `waiting` → `building`; false when the build was not waiting.
    pub fn start_build(&self, id: &str, now: i64) -> rusqlite::Result<bool> {
        Ok(self.conn().execute(
            "UPDATE template_builds SET status = 'building', updated_at = ?2 WHERE id = ?1 AND status = 'waiting'",
            params![id, now],
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
    ) -> rusqlite::Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "UPDATE template_builds SET status = 'ready', image_id = ?2, config = ?3, cpu_count = ?4, memory_mb = ?5, \
             updated_at = ?6, finished_at = ?6 WHERE id = ?1",
            params![b.id, image_id, config, cpu, mem, now],
        )?;
        for tag in tags {
            tx.execute(
                "INSERT OR REPLACE INTO template_tags (template_id, tag, build_id, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![b.template_id, tag, b.id, now],
            )?;
        }
        tx.execute("UPDATE templates SET updated_at = ?2 WHERE id = ?1", params![b.template_id, now])?;
        tx.commit()
    }

    pub fn finish_build_error(&self, id: &str, reason: &str, now: i64) -> rusqlite::Result<()> {
        self.conn().execute(
            "UPDATE template_builds SET status = 'error', reason = ?2, updated_at = ?3, finished_at = ?3 \
             WHERE id = ?1 AND status IN ('waiting', 'building')",
            params![id, reason, now],
        )?;
        Ok(())
    }

    /// After a restart: builds that were running are failed. Returns their IDs.
    pub fn fail_unfinished_builds(&self, reason: &str, now: i64) -> rusqlite::Result<Vec<String>> {
        let conn = self.conn();
        let ids: Vec<String> = conn
            .prepare("SELECT id FROM template_builds WHERE status = 'building'")?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        conn.execute(
            "UPDATE template_builds SET status = 'error', reason = ?1, updated_at = ?2, finished_at = ?2 \
             WHERE status = 'building'",
            params![reason, now],
        )?;
        Ok(ids)
    }

    /// True when the template has a ready build.
    pub fn template_ready(&self, template_id: &str) -> rusqlite::Result<bool> {
        self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM template_builds WHERE template_id = ?1 AND status = 'ready')",
            [template_id],
            |r| r.get(0),
        )
    }

    /// True while a build of the template waits or runs.
    pub fn template_building(&self, template_id: &str) -> rusqlite::Result<bool> {
        self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM template_builds WHERE template_id = ?1 AND status IN ('waiting', 'building'))",
            [template_id],
            |r| r.get(0),
        )
    }

    pub fn tags_of(&self, template_id: &str) -> rusqlite::Result<Vec<(String, String, i64)>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT tag, build_id, created_at FROM template_tags WHERE template_id = ?1 ORDER BY tag")?;
        stmt.query_map([template_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect()
    }

    pub fn tag_build(&self, template_id: &str, tag: &str) -> rusqlite::Result<Option<String>> {
        self.conn()
            .query_row(
                "SELECT build_id FROM template_tags WHERE template_id = ?1 AND tag = ?2",
                params![template_id, tag],
                |r| r.get(0),
            )
            .optional()
    }

    pub fn set_tags(&self, template_id: &str, build_id: &str, tags: &[String], now: i64) -> rusqlite::Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for tag in tags {
            tx.execute(
                "INSERT OR REPLACE INTO template_tags (template_id, tag, build_id, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![template_id, tag, build_id, now],
            )?;
        }
        tx.commit()
    }

    pub fn remove_tags(&self, template_id: &str, tags: &[String]) -> rusqlite::Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut n = 0;
        for tag in tags {
            n +=
                tx.execute("DELETE FROM template_tags WHERE template_id = ?1 AND tag = ?2", params![template_id, tag])?;
        }
        tx.commit()?;
        Ok(n)
    }

    pub fn append_build_log(&self, build_id: &str, row: &LogRow) -> rusqlite::Result<()> {
        self.conn().execute(
            "INSERT INTO template_build_logs (build_id, seq, ts, level, message, step) VALUES \
             (?1, (SELECT COALESCE(MAX(seq) + 1, 0) FROM template_build_logs WHERE build_id = ?1), ?2, ?3, ?4, ?5)",
            params![build_id, row.ts, row.level, row.message, row.step],
        )?;
        Ok(())
    }

    /// Log lines `offset..offset + limit` of a build, oldest first.
    pub fn build_logs(&self, build_id: &str, offset: i64, limit: i64) -> rusqlite::Result<Vec<LogRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT ts, level, message, step FROM template_build_logs WHERE build_id = ?1 AND seq >= ?2 \
             ORDER BY seq LIMIT ?3",
        )?;
        stmt.query_map(params![build_id, offset, limit], |r| {
            Ok(LogRow { ts: r.get(0)?, level: r.get(1)?, message: r.get(2)?, step: r.get(3)? })
        })?
        .collect()
    }

    pub fn layer(&self, hash: &str) -> rusqlite::Result<Option<LayerRow>> {
        self.conn()
            .query_row(
                "SELECT hash, image_id, state, size_bytes, last_used FROM template_layers WHERE hash = ?1",
                [hash],
                |r| {
                    Ok(LayerRow {
                        hash: r.get(0)?,
                        image_id: r.get(1)?,
                        state: r.get(2)?,
                        size_bytes: r.get::<_, i64>(3)? as u64,
                        last_used: r.get(4)?,
                    })
                },
            )
            .optional()
    }

    pub fn touch_layer(&self, hash: &str, now: i64) -> rusqlite::Result<()> {
        self.conn().execute("UPDATE template_layers SET last_used = ?2 WHERE hash = ?1", params![hash, now])?;
        Ok(())
    }

    /// Records (or replaces) a cache entry; returns the image the replaced entry pointed at.
    pub fn put_layer(&self, l: &LayerRow) -> rusqlite::Result<Option<String>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let old: Option<String> =
            tx.query_row("SELECT image_id FROM template_layers WHERE hash = ?1", [&l.hash], |r| r.get(0)).optional()?;
        tx.execute(
            "INSERT OR REPLACE INTO template_layers (hash, image_id, state, size_bytes, last_used) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![l.hash, l.image_id, l.state, l.size_bytes as i64, l.last_used],
        )?;
        tx.commit()?;
        Ok(old.filter(|o| *o != l.image_id))
    }

    pub fn delete_layer(&self, hash: &str) -> rusqlite::Result<()> {
        self.conn().execute("DELETE FROM template_layers WHERE hash = ?1", [hash])?;
        Ok(())
    }

    /// Cache entries, least recently used first.
    pub fn layers_lru(&self) -> rusqlite::Result<Vec<LayerRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT hash, image_id, state, size_bytes, last_used FROM template_layers ORDER BY last_used, hash",
        )?;
        stmt.query_map([], |r| {
            Ok(LayerRow {
                hash: r.get(0)?,
                image_id: r.get(1)?,
                state: r.get(2)?,
                size_bytes: r.get::<_, i64>(3)? as u64,
                last_used: r.get(4)?,
            })
        })?
        .collect()
    }

    /// True while a cache entry or a tag refers to the image.
    pub fn build_image_in_use(&self, image_id: &str) -> rusqlite::Result<bool> {
        Ok(self.layer_uses(image_id)? || self.image_held_by_template(image_id)?)
    }

    fn layer_uses(&self, image_id: &str) -> rusqlite::Result<bool> {
        self.conn()
            .query_row("SELECT EXISTS (SELECT 1 FROM template_layers WHERE image_id = ?1)", [image_id], |r| r.get(0))
    }

    /// True while a tag of a template points at a build made of the image.
    pub fn image_held_by_template(&self, image_id: &str) -> rusqlite::Result<bool> {
        self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM template_tags t JOIN template_builds b ON b.id = t.build_id \
             WHERE b.image_id = ?1)",
            [image_id],
            |r| r.get(0),
        )
    }

    /// Images of the template's ready builds (to release after its tags moved or it went).
    pub fn build_images_of(&self, template_id: &str) -> rusqlite::Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT DISTINCT image_id FROM template_builds WHERE template_id = ?1 AND image_id IS NOT NULL")?;
        stmt.query_map([template_id], |r| r.get(0))?.collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        (dir, store)
    }

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
        let (_d, s) = store();
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
        let (_d, s) = store();
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
