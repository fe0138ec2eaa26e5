//! The store's cluster behaviour, on SQLite and (with `SANDBOXD_TEST_POSTGRES_URL`) Postgres:
//! two store handles on one database act as nodes `a` and `b`.

use super::testing::test_node_pairs;
use super::{NodeRow, SandboxState, Store};

fn node(id: &str, memory_mb: u64, heartbeat_at: i64) -> NodeRow {
    NodeRow {
        id: id.into(),
        advertise_url: format!("http://{id}:1"),
        compat: "k".into(),
        vcpus: 2,
        memory_mb,
        disk_mb: 1000,
        max_sandboxes: 4,
        alive: true,
        started_at: 0,
        heartbeat_at,
    }
}

fn sandbox(store: &Store, id: &str, memory_mb: u32) {
    let mut row = super::tests::sandbox(id, 1);
    row.memory_mb = memory_mb;
    store.insert_sandbox(&row).unwrap();
}

#[test]
fn each_node_recovers_and_expires_only_its_own_sandboxes_but_lists_all() {
    for (name, a, b, _dir) in test_node_pairs() {
        sandbox(&a, "sa", 512);
        sandbox(&b, "sb", 512);
        assert_eq!(a.all_sandboxes().unwrap().iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["sa"], "{name}");
        assert_eq!(b.sandbox("sa").unwrap().unwrap().node_id, "a", "{name}");
        assert_eq!(a.sandboxes_everywhere().unwrap().len(), 2, "{name}");
        assert_eq!(a.expired_sandboxes(i64::MAX).unwrap(), ["sa"], "{name}");
        assert_eq!(b.expired_sandboxes(i64::MAX).unwrap(), ["sb"], "{name}");
        let listed = a.list_sandboxes(&Default::default(), 10).unwrap();
        assert_eq!(listed.len(), 2, "{name}: the API lists the whole cluster");
        // A resume on the other node moves the sandbox there.
        let mut row = a.sandbox("sa").unwrap().unwrap();
        row.state = SandboxState::Running;
        b.set_running(&row).unwrap();
        assert_eq!(a.sandbox("sa").unwrap().unwrap().node_id, "b", "{name}");
    }
}

#[test]
fn placement_never_hands_out_the_same_memory_twice() {
    for (name, a, b, _dir) in test_node_pairs() {
        a.register_node(&node("a", 1024, 100)).unwrap();
        b.register_node(&node("b", 2048, 100)).unwrap();
        sandbox(&b, "sb", 1536);
        // b has 512 MiB free, a 1024: a 600 MiB sandbox fits only on a.
        let p1 = a.place("k", 600, None, 0, &[]).unwrap().unwrap();
        assert_eq!(p1.node.id, "a", "{name}");
        // The reservation holds a's memory: the next 600 MiB fits nowhere.
        assert!(b.place("k", 600, None, 0, &[]).unwrap().is_none(), "{name}");
        a.release_placement(&p1.reservation).unwrap();
        assert_eq!(b.place("k", 600, None, 0, &[]).unwrap().unwrap().node.id, "a", "{name}");
        // Other compatibility keys, stale heartbeats and excluded nodes are never chosen.
        assert!(a.place("other", 1, None, 0, &[]).unwrap().is_none(), "{name}");
        assert!(a.place("k", 1, None, 101, &[]).unwrap().is_none(), "{name}");
        assert_eq!(a.place("k", 100, None, 0, &["a".into()]).unwrap().unwrap().node.id, "b", "{name}");
    }
}

#[test]
fn placement_prefers_a_node_that_keeps_the_image() {
    for (name, a, b, _dir) in test_node_pairs() {
        a.register_node(&node("a", 4096, 100)).unwrap();
        b.register_node(&node("b", 1024, 100)).unwrap();
        assert_eq!(a.place("k", 10, Some("img"), 0, &[]).unwrap().unwrap().node.id, "a", "{name}: most free memory");
        b.add_node_image("img").unwrap();
        assert_eq!(a.place("k", 10, Some("img"), 0, &[]).unwrap().unwrap().node.id, "b", "{name}: keeps the image");
    }
}

#[test]
fn peers_are_the_live_other_nodes_that_keep_an_image() {
    for (name, a, b, _dir) in test_node_pairs() {
        a.register_node(&node("a", 1024, 100)).unwrap();
        b.register_node(&node("b", 1024, 100)).unwrap();
        let ids = |s: &Store, fresh: i64| -> Vec<String> {
            s.image_holders("img", "b", fresh).unwrap().into_iter().map(|n| n.id).collect()
        };
        assert!(ids(&a, 0).is_empty(), "{name}: nobody keeps it yet");
        a.add_node_image("img").unwrap();
        b.add_node_image("img").unwrap();
        // Never itself.
        assert_eq!(ids(&a, 0), ["b"], "{name}");
        assert_eq!(ids(&b, 0), ["a"], "{name}");
        // A stale heartbeat, a dead node, or one that dropped the image is no peer.
        assert!(ids(&a, 101).is_empty(), "{name}");
        b.remove_node_image("img").unwrap();
        assert!(ids(&a, 0).is_empty(), "{name}");
        b.add_node_image("img").unwrap();
        assert_eq!(a.reap_dead_nodes(101).unwrap().len(), 1, "{name}: b's heartbeat is old");
        assert!(ids(&a, 0).is_empty(), "{name}");
        assert!(a.image_holders("other", "b", 0).unwrap().is_empty(), "{name}");
    }
}

#[test]
fn every_node_of_a_database_gets_the_same_peer_key() {
    for (name, a, b, _dir) in test_node_pairs() {
        let key = a.peer_key().unwrap();
        assert_eq!(key.len(), 64, "{name}");
        assert!(key.bytes().all(|c| c.is_ascii_hexdigit()), "{name}");
        assert_eq!(b.peer_key().unwrap(), key, "{name}: made once, by whichever node asked first");
        assert_eq!(a.peer_key().unwrap(), key, "{name}");
    }
}

#[test]
fn concurrent_placements_on_postgres_never_overcommit() {
    let Some(url) = super::testing::fresh_postgres_database() else { return };
    let first = Store::connect_postgres(&url).unwrap().with_node_id("n");
    first.register_node(&node("n", 1000, 100)).unwrap();
    // 8 nodes' worth of concurrent creates, each wanting 300 MiB of n's 1000: exactly 3 fit.
    let placed: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let url = url.clone();
                s.spawn(move || {
                    let store = Store::connect_postgres(&url).unwrap();
                    store.place("k", 300, None, 0, &[]).unwrap().is_some() as usize
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(placed, 3);
}

#[test]
fn a_dead_node_takes_its_running_sandboxes_and_unfinished_uploads_with_it() {
    for (name, a, b, _dir) in test_node_pairs() {
        a.register_node(&node("a", 1024, 100)).unwrap();
        b.register_node(&node("b", 1024, 100)).unwrap();
        sandbox(&a, "sa", 512);
        sandbox(&b, "sb", 512);
        let image = |id: &str, upload| super::ImageRow {
            id: id.into(),
            kind: super::ImageKind::Snapshot,
            name: Some(id.into()),
            tag: "default".into(),
            source_sandbox_id: Some("sa".into()),
            dir: "/a/snapshots/x".into(),
            disk_layer: "/a/layers/l".into(),
            created_at: 1,
            size_bytes: 1,
            deleted: false,
            node_id: String::new(),
            upload,
        };
        a.insert_image(&image("done", super::Upload::Durable)).unwrap();
        a.insert_image(&image("half", super::Upload::Pending)).unwrap();
        // Two paused sandboxes: one whose pause image is in the object store, one whose is not.
        for (id, img) in [("kept", "done"), ("lost", "half")] {
            sandbox(&a, id, 512);
            a.set_paused(id, img).unwrap();
        }
        assert!(b.heartbeat(500).unwrap(), "{name}");
        // a's heartbeat (100) is older than the cutoff (200); b's own row is never reaped by b.
        let dead = b.reap_dead_nodes(200).unwrap();
        let (node, mut gone) = dead.into_iter().next().unwrap();
        gone.sort();
        assert_eq!((node.as_str(), gone), ("a", vec!["lost".to_string(), "sa".to_string()]), "{name}");
        assert_eq!(b.sandbox("kept").unwrap().unwrap().state, SandboxState::Paused, "{name}: resumable elsewhere");
        assert!(b.sandbox("sa").unwrap().is_none(), "{name}");
        assert!(b.sandbox("sb").unwrap().is_some(), "{name}");
        assert!(b.find_snapshot("done").unwrap().is_some(), "{name}: uploaded images stay usable");
        assert!(b.find_snapshot("half").unwrap().is_none(), "{name}: an unfinished upload is not listed");
        assert!(!a.heartbeat(600).unwrap(), "{name}: a dead node learns it was declared dead");
        assert!(b.reap_dead_nodes(200).unwrap().is_empty(), "{name}: reaped once");
    }
}

#[test]
fn requests_about_a_sandbox_are_routed_to_its_live_node_only() {
    for (name, a, b, _dir) in test_node_pairs() {
        a.register_node(&node("a", 1024, 100)).unwrap();
        b.register_node(&node("b", 1024, 100)).unwrap();
        sandbox(&b, "sb", 256);
        sandbox(&a, "sa", 256);
        assert_eq!(a.sandbox_route("sb").unwrap(), Some(("b".into(), "http://b:1".into())), "{name}");
        assert_eq!(a.sandbox_route("sa").unwrap(), None, "{name}: its own");
        assert_eq!(a.sandbox_route("nope").unwrap(), None, "{name}");
        // b's heartbeat stops: nothing is routed to it any more.
        a.reap_dead_nodes(1000).unwrap();
        assert_eq!(a.sandbox_route("sb").unwrap(), None, "{name}: a dead node is not routed to");
    }
}
