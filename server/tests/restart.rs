//! What survives a `kill -9` of sandboxd (no VMs needed): the API key, and the cleanup of
//! half-written or unlisted image directories on the next start.

mod common;

use common::TestServer;
use http::Method;

#[tokio::test]
async fn restart_keeps_the_key_and_removes_unfinished_images() {
    let mut s = TestServer::start().await;
    let snapshots = s.config().snapshots_dir();
    // What a crash in the middle of a snapshot leaves: a temporary directory, and a renamed
    // directory whose database row was never committed.
    for dir in [".tmp-abcdefghijklmnopqrst", "zyxwvutsrqponmlkjihg"] {
        std::fs::create_dir_all(snapshots.join(dir)).unwrap();
        std::fs::write(snapshots.join(dir).join("mem.ram"), b"partial").unwrap();
    }
    s.kill_and_restart().await;
    let left: Vec<_> = std::fs::read_dir(&snapshots).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "unfinished images were not removed: {left:?}");
    let key = std::fs::read_to_string(s.data_dir.join("api_key")).unwrap();
    assert_eq!(key.trim(), s.key, "the key changed across a restart");
    let list = s.call(Method::GET, "/snapshots", None).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.json(), serde_json::json!([]));
}
