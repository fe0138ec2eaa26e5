//! The `volumes` table (E2B's volumes, see `crate::volumes`): one row per volume, whose files
//! live in `<data>/volumes/<id>/`.
//!
//! Invariants: names are unique; a row exists for every volume directory the API reported
//! (the row is inserted after the directory is made, and deleted before it is removed).

use rusqlite::{OptionalExtension, Row, params};

use super::Store;

#[derive(Debug, Clone, PartialEq)]
pub struct VolumeRow {
    pub id: String,
    pub name: String,
    /// Bearer token of the volume content API.
    pub token: String,
    pub created_at: i64,
}

const COLUMNS: &str = "id, name, token, created_at";

fn from_row(r: &Row<'_>) -> rusqlite::Result<VolumeRow> {
    Ok(VolumeRow { id: r.get(0)?, name: r.get(1)?, token: r.get(2)?, created_at: r.get(3)? })
}

impl Store {
    /// Insert a volume; false when the name is taken.
    pub fn insert_volume(&self, row: &VolumeRow) -> rusqlite::Result<bool> {
        let n = self.conn().execute(
            &format!("INSERT OR IGNORE INTO volumes ({COLUMNS}) VALUES (?1, ?2, ?3, ?4)"),
            params![row.id, row.name, row.token, row.created_at],
        )?;
        Ok(n == 1)
    }

    pub fn find_volume(&self, id: &str) -> rusqlite::Result<Option<VolumeRow>> {
        self.conn()
            .query_row(&format!("SELECT {COLUMNS} FROM volumes WHERE id = ?1"), [id], from_row)
            .optional()
    }

    pub fn list_volumes(&self) -> rusqlite::Result<Vec<VolumeRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM volumes ORDER BY created_at, id"))?;
        stmt.query_map([], from_row)?.collect()
    }

    pub fn delete_volume(&self, id: &str) -> rusqlite::Result<bool> {
        Ok(self.conn().execute("DELETE FROM volumes WHERE id = ?1", [id])? > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let row = VolumeRow { id: "v1".into(), name: "data".into(), token: "t".into(), created_at: 1 };
        assert!(store.insert_volume(&row).unwrap());
        assert!(!store.insert_volume(&VolumeRow { id: "v2".into(), ..row.clone() }).unwrap());
        assert_eq!(store.find_volume("v1").unwrap(), Some(row));
        assert_eq!(store.list_volumes().unwrap().len(), 1);
        assert!(store.delete_volume("v1").unwrap());
        assert!(!store.delete_volume("v1").unwrap());
    }
}
