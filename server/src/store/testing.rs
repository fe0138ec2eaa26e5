//! Test helpers: the stores every store test runs against.
//!
//! SQLite always (a temporary directory); PostgreSQL too when `SANDBOXD_TEST_POSTGRES_URL`
//! names a server, each store on a database of its own ([`super::test_db`]). Without the
//! variable the Postgres half is skipped with a note on stderr.

use super::Store;
use super::test_db::POSTGRES_URL_ENV;

pub(crate) struct TestStore {
    pub name: &'static str,
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
}

/// The SQLite store, plus a Postgres one when the test server is configured.
pub(crate) fn test_stores() -> Vec<TestStore> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(&dir.path().join("db")).unwrap();
    let mut stores = vec![TestStore { name: "sqlite", store: sqlite, _dir: Some(dir) }];
    if let Some(url) = fresh_postgres_database() {
        stores.push(TestStore { name: "postgres", store: Store::connect_postgres(&url).unwrap(), _dir: None });
    }
    stores
}

/// The URL of a new, empty database on the test server; None (and a note) without one.
pub(crate) fn fresh_postgres_database() -> Option<String> {
    let url = super::test_db::fresh_database();
    if url.is_none() {
        eprintln!("{POSTGRES_URL_ENV} is not set: the PostgreSQL half of this test is skipped");
    }
    url
}

/// Two stores on one database acting as nodes `a` and `b` (the cluster tests), per backend.
pub(crate) fn test_node_pairs() -> Vec<(&'static str, Store, Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let a = Store::open(&path).unwrap().with_node_id("a");
    let b = Store::open(&path).unwrap().with_node_id("b");
    let mut pairs = vec![("sqlite", a, b, Some(dir))];
    if let Some(url) = fresh_postgres_database() {
        let a = Store::connect_postgres(&url).unwrap().with_node_id("a");
        let b = Store::connect_postgres(&url).unwrap().with_node_id("b");
        pairs.push(("postgres", a, b, None));
    }
    pairs
}
