//! Throwaway PostgreSQL databases for tests (unit tests of the store and the integration tests
//! that start sandboxd on PostgreSQL): `SANDBOXD_TEST_POSTGRES_URL` names a server (e.g. from
//! `tests/cluster/postgres.sh start <dir>`), and each call creates a new, empty database on it
//! so tests run in parallel. The databases are left behind: the server is a throwaway one.
//! Not used by sandboxd itself.

use std::sync::atomic::{AtomicU32, Ordering};

pub const POSTGRES_URL_ENV: &str = "SANDBOXD_TEST_POSTGRES_URL";

/// The URL of a new, empty database on the test server; `None` when none is configured.
pub fn fresh_database() -> Option<String> {
    let admin = std::env::var(POSTGRES_URL_ENV).ok()?;
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
pub fn with_database(url: &str, name: &str) -> String {
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
