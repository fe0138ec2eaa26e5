//! Tests of the handle and of behaviour where the two backends could differ: run on SQLite,
//! and on PostgreSQL when `SANDBOXD_TEST_POSTGRES_URL` is set (see `testing.rs`).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use super::db::{Error, Exec, Value, params};
use super::testing::{fresh_postgres_database, test_stores};
use super::*;

fn count(store: &Store, table: &str) -> i64 {
    store.db().query_one(&format!("SELECT COUNT(*) FROM {table}"), &[]).unwrap().get(0).unwrap()
}

#[test]
fn a_failed_or_panicking_transaction_leaves_nothing_behind() {
    for t in test_stores() {
        eprintln!("backend: {}", t.name);
        let db = t.store.db();
        let insert = "INSERT INTO volumes (id, name, token, created_at) VALUES (?1, ?2, 't', 1)";
        let failed: db::Result<()> = db.transaction(|tx| {
            tx.execute(insert, &params!["v1", "one"])?;
            Err(Error::Other("changed my mind".into()))
        });
        assert!(matches!(failed, Err(Error::Other(_))));
        assert_eq!(count(&t.store, "volumes"), 0, "{}: rolled back", t.name);

        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            db.transaction(|tx| -> db::Result<()> {
                tx.execute(insert, &params!["v2", "two"])?;
                panic!("boom")
            })
        }));
        assert!(panicked.is_err());
        assert_eq!(count(&t.store, "volumes"), 0, "{}: rolled back after a panic", t.name);

        // The handle is usable again, outside any transaction (a later failure must not
        // take this row with it).
        db.execute(insert, &params!["v3", "three"]).unwrap();
        let _ =
            db.transaction(|tx| -> db::Result<()> { Err(tx.execute(insert, &params!["v3", "three"]).unwrap_err()) });
        assert_eq!(count(&t.store, "volumes"), 1, "{}", t.name);
    }
}

#[test]
fn unique_violations_are_conflicts() {
    for t in test_stores() {
        let insert = "INSERT INTO volumes (id, name, token, created_at) VALUES (?1, ?2, 't', 1)";
        t.store.db().execute(insert, &params!["v1", "one"]).unwrap();
        let err = t.store.db().execute(insert, &params!["v2", "one"]).unwrap_err();
        assert!(matches!(err, Error::Conflict(_)), "{}: {err}", t.name);
    }
}

#[test]
fn nulls_bind_into_integer_and_text_columns_and_read_back() {
    for t in test_stores() {
        let db = t.store.db();
        db.execute(
            "INSERT INTO template_builds (id, template_id, status, reason, cpu_count, memory_mb, disk_size_mb, \
             image_id, config, tags, created_at, updated_at, finished_at) \
             VALUES (?1, 't', 'waiting', ?2, ?3, ?4, 1, ?5, ?6, '[]', 1, 1, ?7)",
            &params!["b1", None::<&str>, None::<u32>, Value::Null, Value::Null, None::<String>, None::<i64>],
        )
        .unwrap();
        let row = db
            .query_one("SELECT reason, cpu_count, memory_mb, image_id, finished_at FROM template_builds", &[])
            .unwrap();
        assert_eq!(row.0, vec![Value::Null; 5], "{}", t.name);
        assert_eq!(row.get::<Option<u32>>(1).unwrap(), None);
    }
}

#[test]
fn placeholders_may_repeat_and_come_in_any_order() {
    for t in test_stores() {
        let row = t
            .store
            .db()
            .query_one(
                "SELECT CAST(?2 AS TEXT), CAST(?1 AS BIGINT), CAST(?2 AS TEXT), CAST(?1 AS BIGINT) + ?1",
                &params![20, "x"],
            )
            .unwrap();
        assert_eq!(
            row.0,
            [Value::Text("x".into()), Value::Int(20), Value::Text("x".into()), Value::Int(40)],
            "{}",
            t.name
        );
    }
}

#[test]
fn booleans_and_counts_read_as_integers() {
    for t in test_stores() {
        let row = t
            .store
            .db()
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM volumes), COUNT(*), CAST(SUM(created_at) AS BIGINT) FROM volumes",
                &[],
            )
            .unwrap();
        assert!(!row.get::<bool>(0).unwrap(), "{}", t.name);
        assert_eq!(row.get::<i64>(0).unwrap(), 0);
        assert_eq!(row.get::<i64>(1).unwrap(), 0);
        assert_eq!(row.get::<Option<i64>>(2).unwrap(), None);
    }
}

pub(super) fn sandbox(id: &str, started_at: i64) -> SandboxRow {
    SandboxRow {
        id: id.into(),
        template_id: "base".into(),
        alias: Some("web".into()),
        image_dir: PathBuf::from("/data/images/i1"),
        state: SandboxState::Running,
        started_at,
        end_at: started_at + 100,
        metadata: BTreeMap::from([("team".into(), "a".into())]),
        env_vars: HashMap::new(),
        access_token: None,
        allow_internet: true,
        auto_pause: false,
        auto_pause_memory: true,
        auto_resume: false,
        vm: None,
        paused_image: None,
        disk_layer: None,
        cpu_count: 2,
        memory_mb: 512,
        disk_size_mb: u32::MAX,
        envd_version: "0.2.0".into(),
        network: None,
        traffic_access_token: Some("tok".into()),
        node_id: "ignored: the store writes its own".into(),
        volume_mounts: vec![crate::volumes::VolumeMount {
            name: "data".into(),
            path: "/mnt/data".into(),
            volume_id: "vol1".into(),
        }],
    }
}

#[test]
fn sandboxes_round_trip_and_page() {
    for t in test_stores() {
        let s = &t.store;
        for (id, ts) in [("a", 1), ("b", 2), ("c", 3)] {
            s.insert_sandbox(&sandbox(id, ts)).unwrap();
        }
        let got = s.sandbox("b").unwrap().unwrap();
        assert_eq!(
            (got.alias.as_deref(), got.allow_internet, got.auto_pause),
            (Some("web"), true, false),
            "{}",
            t.name
        );
        assert_eq!(
            (got.disk_size_mb, got.metadata.len(), got.traffic_access_token.as_deref()),
            (u32::MAX, 1, Some("tok"))
        );
        assert_eq!(got.volume_mounts, sandbox("b", 2).volume_mounts, "{}", t.name);
        s.set_paused("a", "img").unwrap();
        assert_eq!(s.next_deadline().unwrap(), Some(102));
        assert_eq!(s.expired_sandboxes(103).unwrap(), ["b", "c"]);
        let filter = SandboxFilter {
            running: true,
            cursor: Some(crate::pagination::Cursor { ts: 3, id: "c".into() }),
            ..Default::default()
        };
        let page: Vec<String> = s.list_sandboxes(&filter, 5).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(page, ["b"], "{}", t.name);
        let filter = SandboxFilter { metadata: vec![("team".into(), "a".into())], ..Default::default() };
        assert_eq!(s.list_sandboxes(&filter, 1).unwrap().len(), 2, "{}: limit + 1", t.name);
        assert!(s.delete_sandbox("a").unwrap() && !s.delete_sandbox("a").unwrap());
    }
}

#[test]
fn a_snapshot_name_wins_over_an_id_match() {
    for t in test_stores() {
        let image = |id: &str, name: Option<&str>| ImageRow {
            id: id.into(),
            kind: ImageKind::Snapshot,
            name: name.map(Into::into),
            tag: "default".into(),
            source_sandbox_id: None,
            dir: PathBuf::from("/d"),
            disk_layer: PathBuf::from("/d/disk"),
            created_at: 1,
            size_bytes: 10,
            deleted: false,
            node_id: String::new(),
            upload: crate::store::Upload::None,
        };
        // The unnamed row matches by ID; its NULL name must not sort it first.
        t.store.insert_image(&image("x", None)).unwrap();
        t.store.insert_image(&image("y", Some("x"))).unwrap();
        assert_eq!(t.store.find_snapshot("x").unwrap().unwrap().id, "y", "{}", t.name);
        // A reused name moves to the new row.
        t.store.insert_image(&image("z", Some("x"))).unwrap();
        assert_eq!(t.store.image("y").unwrap().unwrap().name, None, "{}", t.name);
        assert_eq!(t.store.list_snapshots(None, Some("x"), None, 10).unwrap().len(), 2);
    }
}

#[test]
fn api_key_hashes_are_kept_once() {
    for t in test_stores() {
        t.store.add_api_key_hash(b"h1").unwrap();
        t.store.add_api_key_hash(b"h1").unwrap();
        assert_eq!(t.store.api_key_hashes().unwrap(), [b"h1".to_vec()], "{}", t.name);
    }
}

#[test]
fn postgres_migrations_are_versioned_and_run_once() {
    let Some(url) = fresh_postgres_database() else { return };
    let first = Store::connect_postgres(&url).unwrap();
    let versions = first.db().query("SELECT version FROM schema_migrations ORDER BY version", &[]).unwrap();
    let versions: Vec<i64> = versions.iter().map(|r| r.get(0).unwrap()).collect();
    assert_eq!(versions, (1..=schema::PG_MIGRATIONS.len() as i64).collect::<Vec<_>>());
    let second = Store::connect_postgres(&url).unwrap();
    assert_eq!(schema::migrate_postgres(second.db()).unwrap(), 0, "nothing left to apply");
    assert_eq!(count(&second, "schema_migrations"), schema::PG_MIGRATIONS.len() as i64);
}

#[test]
fn concurrent_postgres_connects_on_an_empty_database_both_succeed() {
    let Some(url) = fresh_postgres_database() else { return };
    let barrier = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        let connects: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    Store::connect_postgres(&url)
                })
            })
            .collect();
        for c in connects {
            let store = c.join().unwrap().unwrap();
            store.add_api_key_hash(b"k").unwrap();
        }
    });
    let store = Store::connect_postgres(&url).unwrap();
    assert_eq!(count(&store, "schema_migrations"), schema::PG_MIGRATIONS.len() as i64);
    assert_eq!(count(&store, "api_keys"), 1);
}

#[test]
fn postgres_refuses_integers_out_of_range_of_the_inferred_type() {
    let Some(url) = fresh_postgres_database() else { return };
    let store = Store::connect_postgres(&url).unwrap();
    let db = store.db();
    assert_eq!(db.query_one("SELECT CAST(?1 AS INTEGER) + 1", &params![41]).unwrap().get::<i64>(0).unwrap(), 42);
    let err = db.query_one("SELECT CAST(?1 AS INTEGER) + 1", &params![1_i64 << 40]).unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    let err = db.query_one("SELECT CAST(?1 AS NUMERIC)", &params![1]).unwrap_err();
    assert!(err.to_string().contains("numeric"), "{err}");
}

#[test]
fn store_is_used_from_async_tasks_on_both_runtimes() {
    for flavor in ["current_thread", "multi_thread"] {
        let rt = match flavor {
            "current_thread" => tokio::runtime::Builder::new_current_thread().build().unwrap(),
            _ => tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap(),
        };
        rt.block_on(async {
            for t in test_stores() {
                t.store.add_api_key_hash(b"k").unwrap();
                assert_eq!(t.store.api_key_hashes().unwrap().len(), 1, "{} on {flavor}", t.name);
            }
        });
    }
}

#[test]
fn database_urls_pick_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    assert!(!Store::open_url(None, &path).unwrap().db().is_postgres());
    let err = Store::open_url(Some("mysql://user:secret@host/db"), &path).err().unwrap().to_string();
    assert!(err.contains("\"mysql\"") && !err.contains("secret"), "{err}");
    if let Some(url) = fresh_postgres_database() {
        assert!(Store::open_url(Some(&url), &path).unwrap().db().is_postgres());
        let alt = url.replacen("postgres://", "postgresql://", 1);
        assert!(Store::open_url(Some(&alt), &path).unwrap().db().is_postgres());
    }
}
