//! The `secrets` and `secret_versions` tables (E2B's secrets API, see `crate::secrets`).
//!
//! Invariants:
//! - A secret's name is unique (lower-cased before it gets here); its ID is `sec_<20 chars>`.
//! - Every value ever set is a `secret_versions` row; `current_version` names the newest, and
//!   creating or updating a secret writes the row and the version in one transaction.
//! - Values are write-only: nothing in this module returns one.
//! - Destroying a secret deletes it and all its versions at once.
//! - A taken name is [`Error::Conflict`], whether seen before inserting or refused by the
//!   unique index (another node inserted it first).

use std::collections::BTreeMap;

use super::Store;
use super::db::{DbRow, Error, Exec, Result, params};
use crate::pagination::Cursor;

#[derive(Debug, Clone, PartialEq)]
pub struct SecretRow {
    pub id: String,
    pub name: String,
    pub current_version: i64,
    pub metadata: BTreeMap<String, String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, name, current_version, metadata, created_at, updated_at";

fn from_row(r: &DbRow) -> Result<SecretRow> {
    let metadata: String = r.get(3)?;
    Ok(SecretRow {
        id: r.get(0)?,
        name: r.get(1)?,
        current_version: r.get(2)?,
        metadata: serde_json::from_str(&metadata).unwrap_or_default(),
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
    })
}

fn metadata_json(m: &BTreeMap<String, String>) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".into())
}

impl Store {
    /// Insert a new secret with `value` as version 1; [`Error::Conflict`] when the name is
    /// taken.
    pub fn insert_secret(&self, row: &SecretRow, value: &str) -> Result<()> {
        self.db().transaction(|tx| {
            if tx.query_opt("SELECT 1 FROM secrets WHERE name = ?1", &params![&row.name])?.is_some() {
                return Err(Error::Conflict(format!("secret name {:?} is taken", row.name)));
            }
            tx.execute(
                &format!("INSERT INTO secrets ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                &params![
                    &row.id,
                    &row.name,
                    row.current_version,
                    metadata_json(&row.metadata),
                    row.created_at,
                    row.updated_at
                ],
            )?;
            tx.execute(
                "INSERT INTO secret_versions (secret_id, version, value, created_at) VALUES (?1, ?2, ?3, ?4)",
                &params![&row.id, row.current_version, value, row.created_at],
            )?;
            Ok(())
        })
    }

    /// A secret by ID or (lower-cased) name.
    pub fn find_secret(&self, id_or_name: &str) -> Result<Option<SecretRow>> {
        // CASE, not `ORDER BY id = ?1 DESC`: the two dialects sort NULL differently.
        self.db()
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM secrets WHERE id = ?1 OR name = ?1 \
                     ORDER BY CASE WHEN id = ?1 THEN 0 ELSE 1 END LIMIT 1"
                ),
                &params![id_or_name],
            )?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    /// Append `value` as the next version (and replace the metadata when given); the updated
    /// row, or None when no secret has this ID.
    pub fn add_secret_version(
        &self,
        id: &str,
        value: &str,
        metadata: Option<&BTreeMap<String, String>>,
        now: i64,
    ) -> Result<Option<SecretRow>> {
        self.db().transaction(|tx| {
            let changed = tx.execute(
                "UPDATE secrets SET current_version = current_version + 1, updated_at = ?2,
                    metadata = COALESCE(?3, metadata) WHERE id = ?1",
                &params![id, now, metadata.map(metadata_json)],
            )?;
            if changed == 0 {
                return Ok(None);
            }
            let row = from_row(&tx.query_one(&format!("SELECT {COLUMNS} FROM secrets WHERE id = ?1"), &params![id])?)?;
            tx.execute(
                "INSERT INTO secret_versions (secret_id, version, value, created_at) VALUES (?1, ?2, ?3, ?4)",
                &params![id, row.current_version, value, now],
            )?;
            Ok(Some(row))
        })
    }

    /// Delete a secret and every version of it; false when there was none.
    /// The current value of the secret named `name` (for the egress proxy's placeholders).
    pub fn secret_value(&self, name: &str) -> Result<Option<String>> {
        let row = self.db().query_opt(
            "SELECT v.value FROM secrets s JOIN secret_versions v ON v.secret_id = s.id AND v.version = s.current_version
             WHERE s.name = ?1",
            &params![name],
        )?;
        row.map(|r| r.get(0)).transpose()
    }

    pub fn delete_secret(&self, id: &str) -> Result<bool> {
        self.db().transaction(|tx| {
            tx.execute("DELETE FROM secret_versions WHERE secret_id = ?1", &params![id])?;
            Ok(tx.execute("DELETE FROM secrets WHERE id = ?1", &params![id])? > 0)
        })
    }

    /// One page (`limit + 1` rows), newest first, strictly after `cursor`.
    pub fn list_secrets(&self, cursor: Option<&Cursor>, limit: usize) -> Result<Vec<SecretRow>> {
        let rows = match cursor {
            Some(c) => self.db().query(
                &format!(
                    "SELECT {COLUMNS} FROM secrets WHERE created_at < ?1 OR (created_at = ?1 AND id < ?2)
                     ORDER BY created_at DESC, id DESC LIMIT ?3"
                ),
                &params![c.ts, &c.id, limit + 1],
            )?,
            None => self.db().query(
                &format!("SELECT {COLUMNS} FROM secrets ORDER BY created_at DESC, id DESC LIMIT ?1"),
                &params![limit + 1],
            )?,
        };
        rows.iter().map(from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, name: &str, ts: i64) -> SecretRow {
        SecretRow {
            id: id.into(),
            name: name.into(),
            current_version: 1,
            metadata: BTreeMap::from([("k".into(), "v".into())]),
            created_at: ts,
            updated_at: ts,
        }
    }

    #[test]
    fn versions_names_and_pages() {
        for t in crate::store::testing::test_stores() {
            eprintln!("backend: {}", t.name);
            versions_names_and_pages_on(&t.store);
        }
    }

    fn versions_names_and_pages_on(store: &Store) {
        store.insert_secret(&row("sec_a", "one", 10), "v1").unwrap();
        assert!(matches!(store.insert_secret(&row("sec_b", "one", 11), "x"), Err(Error::Conflict(_))));
        store.insert_secret(&row("sec_b", "two", 20), "w1").unwrap();

        assert_eq!(store.find_secret("one").unwrap().unwrap().id, "sec_a");
        assert_eq!(store.find_secret("sec_b").unwrap().unwrap().name, "two");
        assert!(store.find_secret("three").unwrap().is_none());

        let updated = store.add_secret_version("sec_a", "v2", None, 30).unwrap().unwrap();
        assert_eq!((updated.current_version, updated.updated_at), (2, 30));
        assert_eq!(updated.metadata, row("", "", 0).metadata, "metadata kept when not given");
        let empty = BTreeMap::new();
        let updated = store.add_secret_version("sec_a", "v3", Some(&empty), 31).unwrap().unwrap();
        assert!(updated.metadata.is_empty());
        assert!(store.add_secret_version("sec_x", "v", None, 1).unwrap().is_none());
        assert_eq!(store.secret_value("one").unwrap().as_deref(), Some("v3"), "the newest version");
        assert_eq!(store.secret_value("two").unwrap().as_deref(), Some("w1"));
        assert_eq!(store.secret_value("sec_a").unwrap(), None, "by name only");

        let page = store.list_secrets(None, 1).unwrap();
        assert_eq!(page.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["sec_b", "sec_a"]);
        let after = Cursor { ts: 20, id: "sec_b".into() };
        assert_eq!(store.list_secrets(Some(&after), 5).unwrap().len(), 1);

        assert!(store.delete_secret("sec_a").unwrap());
        assert!(!store.delete_secret("sec_a").unwrap());
        let versions: i64 = store.db().query_one("SELECT COUNT(*) FROM secret_versions", &[]).unwrap().get(0).unwrap();
        assert_eq!(versions, 1, "only two's version is left");
    }
}
