//! The `volumes` table (E2B's volumes, see `crate::volumes`): one row per volume, whose files
//! live in `<data>/volumes/<id>/`.
//!
//! Invariants: names are unique; a row exists for every volume directory the API reported
//! (the row is inserted after the directory is made, and deleted before it is removed).

use super::Store;
use super::db::{DbRow, Exec, Result, params};

#[derive(Debug, Clone, PartialEq)]
pub struct VolumeRow {
    pub id: String,
    pub name: String,
    /// Bearer token of the volume content API.
    pub token: String,
    pub created_at: i64,
}

const COLUMNS: &str = "id, name, token, created_at";

fn from_row(r: &DbRow) -> Result<VolumeRow> {
    Ok(VolumeRow { id: r.get(0)?, name: r.get(1)?, token: r.get(2)?, created_at: r.get(3)? })
}

impl Store {
    /// Insert a volume; false when the name is taken.
    pub fn insert_volume(&self, row: &VolumeRow) -> Result<bool> {
        let n = self.db().execute(
            &format!("INSERT INTO volumes ({COLUMNS}) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING"),
            &params![&row.id, &row.name, &row.token, row.created_at],
        )?;
        Ok(n == 1)
    }

    pub fn find_volume(&self, id: &str) -> Result<Option<VolumeRow>> {
        self.db()
            .query_opt(&format!("SELECT {COLUMNS} FROM volumes WHERE id = ?1"), &params![id])?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    pub fn find_volume_by_name(&self, name: &str) -> Result<Option<VolumeRow>> {
        self.db()
            .query_opt(&format!("SELECT {COLUMNS} FROM volumes WHERE name = ?1"), &params![name])?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    pub fn list_volumes(&self) -> Result<Vec<VolumeRow>> {
        self.db()
            .query(&format!("SELECT {COLUMNS} FROM volumes ORDER BY created_at, id"), &[])?
            .iter()
            .map(from_row)
            .collect()
    }

    pub fn delete_volume(&self, id: &str) -> Result<bool> {
        Ok(self.db().execute("DELETE FROM volumes WHERE id = ?1", &params![id])? > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names() {
        for t in crate::store::testing::test_stores() {
            eprintln!("backend: {}", t.name);
            unique_names_on(&t.store);
        }
    }

    fn unique_names_on(store: &Store) {
        let row = VolumeRow { id: "v1".into(), name: "data".into(), token: "t".into(), created_at: 1 };
        assert!(store.insert_volume(&row).unwrap());
        assert!(!store.insert_volume(&VolumeRow { id: "v2".into(), ..row.clone() }).unwrap());
        assert_eq!(store.find_volume("v1").unwrap(), Some(row));
        assert_eq!(store.list_volumes().unwrap().len(), 1);
        assert!(store.delete_volume("v1").unwrap());
        assert!(!store.delete_volume("v1").unwrap());
    }
}
