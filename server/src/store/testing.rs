//! Test helpers: the stores every store test runs against.
//!
//! SQLite always (a temporary directory); PostgreSQL too when `SANDBOXD_TEST_POSTGRES_URL`
//! names a server (e.g. `tests/cluster/postgres.sh start <dir>`), each store on a database of
//! its own, created for it, so tests run in parallel. Without the variable the Postgres half
//! is skipped with a note on stderr. The databases are left behind: the server is a
//! throwaway one.

use std::sync::atomic::{AtomicU32, Ordering};

use super::Store;

pub(crate) const POSTGRES_URL_ENV: &str = "SANDBOXD_TEST_POSTGRES_URL";

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
    let Ok(admin) = std::env::var(POSTGRES_URL_ENV) else {
        eprintln!("{POSTGRES_URL_ENV} is not set: the PostgreSQL half of this test is skipped");
        return None;
    };
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "sbx_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        crate::ids::now_ns() % 1_000_000_000
    );
    let url = with_database(&admin, &name);
    // The client blocks on its own runtime: not on a test's (possibly tokio) thread.
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).expect("connect to the test PostgreSQL");
        client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).expect("create a test database");
    })
    .join()
    .unwrap();
    Some(url)
}

/// `url` with its database name replaced by `name` (query parameters kept).
pub(crate) fn with_database(url: &str, name: &str) -> String {
    let (url, query) = url.split_once('?').map_or((url, None), |(u, q)| (u, Some(q)));
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let base = match url[authority_start..].find('/') {
        Some(i) => &url[..authority_start + i],
        None => url,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[test]
fn database_names_are_replaced_in_urls() {
    assert_eq!(with_database("postgres://u@h:1/postgres", "x"), "postgres://u@h:1/x");
    assert_eq!(with_database("postgres://u@h:1", "x"), "postgres://u@h:1/x");
    assert_eq!(with_database("postgresql://u@h/db?sslmode=disable", "x"), "postgresql://u@h/x?sslmode=disable");
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
