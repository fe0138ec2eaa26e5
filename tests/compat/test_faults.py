"""Faults: sandboxd killed in the middle of create, kill, pause, snapshot publication and snapshot
deletion; QEMU killed under a running sandbox. Nothing acknowledged is lost, nothing half-done
stays visible, nothing is left behind.

The crash lands at an exact point of the operation: the server is restarted with
`SANDBOXD_FAULT=<point>` and SIGKILLs itself when it gets there (server/src/fault.rs). Each test
first checks the state the crash left (proof that it landed mid-operation), then restarts
sandboxd normally and checks what recovery made of it."""

import os
import signal
import sqlite3

import pytest
from e2b import Sandbox
from e2b.exceptions import NotFoundException, SandboxException

from conftest import wait_until
from store_check import GC_NOW, assert_at_rest, db_rows, qemu_processes


def crash_at(server, point, action):
    """Restarts `server` armed with `point`, runs `action` (which makes it reach the point) and
    waits for the self-inflicted SIGKILL; returns what `action` returned or raised."""
    server.kill9()
    server.env["SANDBOXD_FAULT"] = point
    server.start()
    try:
        outcome = action()
    except Exception as e:  # the server died under the request
        outcome = e
    wait_until(lambda: server.proc.poll() is not None, 60, f"sandboxd to die at {point}")
    assert server.proc.returncode == -signal.SIGKILL, server.proc.returncode
    log = server.log_path.read_text()
    assert "SANDBOXD_FAULT" in log and point in log, log[-2000:]
    del server.env["SANDBOXD_FAULT"]
    return outcome


def restart(server):
    server.start()
    assert_at_rest(server)


def listed_ids(opts):
    return {s.sandbox_id for s in Sandbox.list(**opts).next_items()}


def test_kill9_mid_create_reaps_the_unrecorded_vm(base_template, make_sandboxd):
    server = make_sandboxd(env=GC_NOW)
    opts = server.opts
    survivor = Sandbox.create(base_template, timeout=600, **opts)
    survivor.files.write("kept.txt", "kept")

    outcome = crash_at(server, "create.vm_started", lambda: Sandbox.create(base_template, timeout=300, **opts))
    assert isinstance(outcome, Exception), "create was acknowledged although sandboxd died before recording it"
    # The crash landed between launch and record: a VM runs that the store does not know.
    vms = qemu_processes(server)
    assert len(vms) == 2 and survivor.sandbox_id in vms.values(), vms

    restart(server)
    assert listed_ids(opts) == {survivor.sandbox_id}
    assert survivor.commands.run("cat kept.txt").stdout == "kept"


def test_kill9_mid_kill_forgets_the_sandbox(base_template, make_sandboxd):
    server = make_sandboxd(env=GC_NOW)
    opts = server.opts
    doomed = Sandbox.create(base_template, timeout=600, **opts)
    survivor = Sandbox.create(base_template, timeout=600, **opts)

    crash_at(server, "kill.vm_stopped", lambda: Sandbox.kill(doomed.sandbox_id, **opts))
    # VM gone, row still there.
    assert doomed.sandbox_id not in qemu_processes(server).values()
    assert doomed.sandbox_id in {s["id"] for s in db_rows(server)[0]}

    restart(server)
    with pytest.raises(NotFoundException):
        Sandbox.get_info(doomed.sandbox_id, **opts)
    assert listed_ids(opts) == {survivor.sandbox_id}
    assert survivor.commands.run("echo ok").stdout == "ok\n"


def test_kill9_mid_pause_keeps_the_sandbox_paused_and_resumable(base_template, make_sandboxd):
    server = make_sandboxd(env=GC_NOW)
    opts = server.opts
    sbx = Sandbox.create(base_template, timeout=600, **opts)
    sbx.files.write("state.txt", "before pause")

    crash_at(server, "pause.committed", lambda: Sandbox.pause(sbx.sandbox_id, **opts))
    # The pause is committed, the old VM still runs.
    assert sbx.sandbox_id in qemu_processes(server).values()
    assert {s["id"]: s["state"] for s in db_rows(server)[0]}[sbx.sandbox_id] == "paused"

    restart(server)  # also: the old VM is gone
    assert Sandbox.get_info(sbx.sandbox_id, **opts).state.value == "paused"
    resumed = Sandbox.connect(sbx.sandbox_id, timeout=300, **opts)
    assert resumed.files.read("state.txt") == "before pause"
    assert_at_rest(server)


def test_kill9_before_a_snapshot_is_recorded_leaves_nothing(base_template, make_sandboxd):
    server = make_sandboxd(env=GC_NOW)
    opts = server.opts
    src = Sandbox.create(base_template, timeout=600, **opts)

    outcome = crash_at(server, "snapshot.image_renamed", lambda: Sandbox.create_snapshot(src.sandbox_id, **opts))
    assert isinstance(outcome, Exception)
    # A complete image directory that no row lists.
    assert len(list((server.data / "store" / "snapshots").iterdir())) == 1
    assert db_rows(server)[1] == []

    restart(server)  # removes it
    assert Sandbox.list_snapshots(**opts).next_items() == []
    assert Sandbox.get_info(src.sandbox_id, **opts).state.value == "running"
    snap = Sandbox.create_snapshot(src.sandbox_id, **opts)
    assert snap.snapshot_id in [s.snapshot_id for s in Sandbox.list_snapshots(**opts).next_items()]


def test_kill9_mid_snapshot_delete_finishes_the_delete(base_template, make_sandboxd):
    server = make_sandboxd(env=GC_NOW)
    opts = server.opts
    src = Sandbox.create(base_template, timeout=600, **opts)
    src.files.write("v.txt", "1")
    gone = Sandbox.create_snapshot(src.sandbox_id, **opts)
    src.files.write("v.txt", "2")
    kept = Sandbox.create_snapshot(src.sandbox_id, **opts)

    # The delete is acknowledged at once; the GC that follows dies after removing the files.
    outcome = crash_at(server, "gc.image_dir_removed", lambda: Sandbox.delete_snapshot(gone.snapshot_id, **opts))
    assert outcome is True
    rows = {os.path.basename(i["dir"]): i["deleted"] for i in db_rows(server)[1]}
    dirs = {p.name for p in (server.data / "store" / "snapshots").iterdir()}
    assert len(rows) == 2 and len(dirs) == 1, (rows, dirs)

    restart(server)
    assert [s.snapshot_id for s in Sandbox.list_snapshots(**opts).next_items()] == [kept.snapshot_id]
    clone = Sandbox.create(kept.snapshot_id, timeout=300, **opts)
    assert clone.files.read("v.txt") == "2"
    with pytest.raises(SandboxException):
        Sandbox.create(gone.snapshot_id, timeout=300, **opts)
    assert src.commands.run("cat v.txt").stdout == "2"


def test_qemu_killed_under_a_sandbox_is_reported_gone_and_its_clones_live_on(base_template, make_sandboxd):
    server = make_sandboxd(env=GC_NOW)
    opts = server.opts
    src = Sandbox.create(base_template, timeout=600, **opts)
    src.files.write("origin.txt", "from the source")
    snap = Sandbox.create_snapshot(src.sandbox_id, **opts)
    earlier = Sandbox.create(snap.snapshot_id, timeout=300, **opts)

    pid = next(p for p, sid in qemu_processes(server).items() if sid == src.sandbox_id)
    os.kill(pid, signal.SIGKILL)

    def gone():
        try:
            Sandbox.get_info(src.sandbox_id, **opts)
            return False
        except NotFoundException:
            return True

    wait_until(gone, 30, "GET of the dead sandbox to answer 404")
    assert src.sandbox_id not in listed_ids(opts)
    with pytest.raises(SandboxException) as e:
        src.commands.run("echo hi", timeout=30)
    assert "not found" in str(e.value).lower() or "not running" in str(e.value).lower(), str(e.value)

    assert earlier.files.read("origin.txt") == "from the source"
    later = Sandbox.create(snap.snapshot_id, timeout=300, **opts)
    assert later.files.read("origin.txt") == "from the source"
    assert_at_rest(server)
    with sqlite3.connect(server.data / "sandboxd.db") as db:
        assert db.execute("SELECT COUNT(*) FROM sandboxes WHERE id = ?", (src.sandbox_id,)).fetchone()[0] == 0
