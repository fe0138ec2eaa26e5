//! `filesystem.Filesystem` against the real binary.

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn stat_make_dir_list_move_remove() {
    let envd = Envd::start().await;
    let home = envd.home();

    // Relative paths resolve against the user's home.
    let r = envd
        .unary("filesystem.Filesystem/MakeDir", json!({"path": "a/b"}), &[])
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let entry = &r.json()["entry"];
    assert_eq!(entry["type"], "FILE_TYPE_DIRECTORY");
    assert_eq!(entry["path"], home.join("a/b").display().to_string());
    assert_eq!(entry["name"], "b");

    let r = envd
        .unary("filesystem.Filesystem/MakeDir", json!({"path": "a/b"}), &[])
        .await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (409, json!("already_exists"))
    );

    std::fs::write(home.join("a/b/f.txt"), b"12345").unwrap();
    std::os::unix::fs::symlink(home.join("a/b/f.txt"), home.join("a/link")).unwrap();

    let r = envd
        .unary(
            "filesystem.Filesystem/Stat",
            json!({"path": "a/b/f.txt"}),
            &[],
        )
        .await;
    let e = &r.json()["entry"];
    assert_eq!(e["type"], "FILE_TYPE_FILE");
    assert_eq!(e["size"], "5"); // int64 is a string in proto3 JSON
    assert_eq!(e["permissions"], "-rw-r--r--");
    assert_eq!(e["mode"], 0o644);
    assert_eq!(e["owner"], "root");
    assert!(e["modifiedTime"].as_str().unwrap().ends_with('Z'));

    let r = envd
        .unary("filesystem.Filesystem/Stat", json!({"path": "a/link"}), &[])
        .await;
    let e = &r.json()["entry"];
    assert_eq!(e["isSymlink"], true);
    assert_eq!(
        e["symlinkTarget"],
        home.join("a/b/f.txt").display().to_string()
    );

    let r = envd
        .unary(
            "filesystem.Filesystem/ListDir",
            json!({"path": "a", "depth": 1}),
            &[],
        )
        .await;
    let names: Vec<String> = r.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["b", "link"]);
    let r = envd
        .unary(
            "filesystem.Filesystem/ListDir",
            json!({"path": "a", "depth": 2}),
            &[],
        )
        .await;
    let paths: Vec<String> = r.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        paths.contains(&home.join("a/b/f.txt").display().to_string()),
        "{paths:?}"
    );

    let r = envd
        .unary(
            "filesystem.Filesystem/ListDir",
            json!({"path": "a/b/f.txt"}),
            &[],
        )
        .await;
    assert_eq!(r.json()["code"], "invalid_argument");

    let r = envd
        .unary(
            "filesystem.Filesystem/Move",
            json!({"source": "a/b/f.txt", "destination": "c/g.txt"}),
            &[],
        )
        .await;
    assert_eq!(r.json()["entry"]["name"], "g.txt");
    assert!(home.join("c/g.txt").exists());

    let r = envd
        .unary("filesystem.Filesystem/Remove", json!({"path": "a"}), &[])
        .await;
    assert_eq!(r.status, 200);
    assert!(!home.join("a").exists());
}

#[tokio::test]
async fn not_found_errors() {
    let envd = Envd::start().await;
    for (method, msg) in [
        ("Stat", json!({"path": "/no/such"})),
        ("ListDir", json!({"path": "/no/such"})),
        (
            "Move",
            json!({"source": "/no/such", "destination": "/tmp/x"}),
        ),
    ] {
        let r = envd
            .unary(&format!("filesystem.Filesystem/{method}"), msg, &[])
            .await;
        assert_eq!(r.status, 404, "{method}");
        assert_eq!(r.json()["code"], "not_found", "{method}");
    }
    // Removing what is not there succeeds, as upstream's `os.RemoveAll` does.
    let r = envd
        .unary(
            "filesystem.Filesystem/Remove",
            json!({"path": "/no/such"}),
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn make_dir_is_owned_by_the_user() {
    if !is_root() {
        eprintln!("skipping: switching users needs root");
        return;
    }
    let envd = Envd::start().await;
    let r = envd
        .unary(
            "filesystem.Filesystem/MakeDir",
            json!({"path": "x/y"}),
            &[("authorization", &basic("tester"))],
        )
        .await;
    let e: Value = r.json()["entry"].clone();
    assert_eq!(e["owner"], "tester");
    assert_eq!(e["group"], "tester");
    assert_eq!(
        e["path"],
        envd.dir.join("home/tester/x/y").display().to_string()
    );
}

#[tokio::test]
async fn watch_dir_streams_events() {
    let envd = Envd::start().await;
    let dir = envd.home().join("watched");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let mut live = envd
        .open(
            "filesystem.Filesystem/WatchDir",
            json!({"path": "watched", "recursive": true, "includeEntry": true}),
            &[],
        )
        .await;
    assert_eq!(live.next().await.unwrap().1, json!({"start": {}}));
    std::fs::write(dir.join("sub/new.txt"), "x").unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let (_, f) = live.next().await.unwrap();
        let ev = &f["filesystem"];
        seen.push((
            ev["name"].as_str().unwrap().to_owned(),
            ev["type"].as_str().unwrap().to_owned(),
        ));
        if ev["type"] == "EVENT_TYPE_CREATE" {
            assert_eq!(ev["entry"]["name"], "new.txt");
        }
    }
    assert_eq!(
        seen[0],
        ("sub/new.txt".to_owned(), "EVENT_TYPE_CREATE".to_owned())
    );
    assert_eq!(
        seen[1],
        ("sub/new.txt".to_owned(), "EVENT_TYPE_WRITE".to_owned())
    );

    let r = envd
        .unary(
            "filesystem.Filesystem/WatchDir",
            json!({"path": "nope"}),
            &[],
        )
        .await;
    assert_eq!(
        r.status, 415,
        "a stream method needs the streaming content type"
    );
    let frames = envd
        .stream(
            "filesystem.Filesystem/WatchDir",
            json!({"path": "nope"}),
            &[],
        )
        .await;
    assert_eq!(frames[0].1["error"]["code"], "not_found");
}

#[tokio::test]
async fn polling_watcher() {
    let envd = Envd::start().await;
    let r = envd
        .unary(
            "filesystem.Filesystem/CreateWatcher",
            json!({"path": "."}),
            &[],
        )
        .await;
    let id = r.json()["watcherId"].as_str().unwrap().to_owned();
    std::fs::write(envd.home().join("a.txt"), "x").unwrap();
    std::fs::remove_file(envd.home().join("a.txt")).unwrap();
    // Events arrive asynchronously: poll (snake_case field name on purpose) until all three are in.
    let mut types: Vec<String> = Vec::new();
    for _ in 0..100 {
        let r = envd
            .unary(
                "filesystem.Filesystem/GetWatcherEvents",
                json!({"watcher_id": id}),
                &[],
            )
            .await;
        types.extend(
            r.json()["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["type"].as_str().unwrap().to_owned()),
        );
        if types.len() >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    assert_eq!(
        types,
        ["EVENT_TYPE_CREATE", "EVENT_TYPE_WRITE", "EVENT_TYPE_REMOVE"]
    );
    let r = envd
        .unary(
            "filesystem.Filesystem/GetWatcherEvents",
            json!({"watcherId": id}),
            &[],
        )
        .await;
    assert_eq!(r.json()["events"], json!([]));
    assert_eq!(
        envd.unary(
            "filesystem.Filesystem/RemoveWatcher",
            json!({"watcherId": id}),
            &[]
        )
        .await
        .status,
        200
    );
    let r = envd
        .unary(
            "filesystem.Filesystem/GetWatcherEvents",
            json!({"watcherId": id}),
            &[],
        )
        .await;
    assert_eq!(r.json()["code"], "not_found");
}
