"""Restarting sandboxd loses nothing it acknowledged: running sandboxes are picked up again,
paused ones stay paused, snapshots stay listed and usable."""

from e2b import Sandbox


def test_kill9_and_restart_keeps_sandboxes_and_snapshots(base_template, make_sandboxd):
    server = make_sandboxd()
    opts = server.opts
    running = Sandbox.create(base_template, timeout=300, **opts)
    running.files.write("keep.txt", "kept")
    snap = running.create_snapshot(**opts)
    paused = Sandbox.create(base_template, timeout=300, **opts)
    paused.files.write("paused.txt", "still here")
    assert paused.pause() is True

    server.kill9()
    server.start()

    assert Sandbox.get_info(running.sandbox_id, **opts).state.value == "running"
    assert running.commands.run("cat keep.txt").stdout == "kept"
    assert Sandbox.get_info(paused.sandbox_id, **opts).state.value == "paused"
    listed = [s.snapshot_id for s in Sandbox.list_snapshots(**opts).next_items()]
    assert snap.snapshot_id in listed

    clone = Sandbox.create(snap.snapshot_id, timeout=300, **opts)
    assert clone.files.read("keep.txt") == "kept"
    resumed = Sandbox.connect(paused.sandbox_id, timeout=300, **opts)
    assert resumed.files.read("paused.txt") == "still here"
