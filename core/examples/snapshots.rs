//! The seed's snapshot flow (`cargo run --example snapshots -p e2b`): create a sandbox, snapshot
//! it (instance and by ID), start a sandbox from the snapshot, list snapshots with the paginator
//! loop and the sandbox filter, then delete.
//!
//! With no E2B configuration it uses (and if needed starts) a local sandboxd.

use e2b::{CreateOptions, ConnectionOpts, RunOptions, Sandbox, SnapshotListOptions};

#[tokio::main]
async fn main() -> e2b::Result<()> {
    let conn = ConnectionOpts::default();

    let sandbox = Sandbox::create(CreateOptions::default()).await?;
    println!("Sandbox ID: {}", sandbox.sandbox_id());
    sandbox.files().write("/tmp/state.txt", "before snapshot", None).await?;

    // Create a snapshot from a running sandbox.
    let snapshot = sandbox.create_snapshot(None).await?;
    println!("Snapshot ID: {}", snapshot.snapshot_id);

    // Create a snapshot by sandbox ID.
    let snapshot2 = Sandbox::create_snapshot_by_id(sandbox.sandbox_id(), None, &conn).await?;
    println!("Snapshot ID: {}", snapshot2.snapshot_id);

    // Create a new sandbox from the snapshot.
    let new_sandbox = Sandbox::create(CreateOptions {
        template: Some(snapshot.snapshot_id.clone()),
        ..Default::default()
    })
    .await?;
    let state = new_sandbox.files().read_text("/tmp/state.txt", None).await?;
    println!("New sandbox {} sees: {state}", new_sandbox.sandbox_id());
    let out = new_sandbox.commands().run("echo hello from the snapshot", RunOptions::default()).await?;
    print!("{}", out.stdout);

    // List snapshots.
    let paginator = Sandbox::list_snapshots(SnapshotListOptions::default(), &conn);
    let mut snapshots = Vec::new();
    while paginator.has_next() {
        snapshots.extend(paginator.next_items().await?);
    }
    println!("{} snapshot(s) in total", snapshots.len());

    // Filter by sandbox.
    let paginator = Sandbox::list_snapshots(
        SnapshotListOptions { sandbox_id: Some(sandbox.sandbox_id().into()), ..Default::default() },
        &conn,
    );
    let mine = paginator.next_items().await?;
    println!("{} snapshot(s) of {}", mine.len(), sandbox.sandbox_id());

    // Delete: true when deleted, false when not found.
    for s in [&snapshot, &snapshot2] {
        let deleted = Sandbox::delete_snapshot(&s.snapshot_id, &conn).await?;
        println!("deleted {}: {deleted}", s.snapshot_id);
    }
    new_sandbox.kill().await?;
    sandbox.kill().await?;
    Ok(())
}
