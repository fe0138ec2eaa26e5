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
from store_check import GC_NOW, assert_at_rest, db_rows, fd_count, qemu_processes


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


CHILD_RUNS_A_COMMAND = """
import sys
from e2b import Sandbox
Sandbox.connect(sys.argv[1], timeout=300).commands.run(sys.argv[2], timeout=int(sys.argv[3]))
"""


def test_client_dropped_mid_command_stream(base_template, make_sandboxd):
    """The SDK process streaming a command's output is SIGKILLed. As in E2B's envd (the command's
    context is not the request's), the command keeps running until its own timeout, then is
    killed; sandboxd's proxy closes both sides of the stream (descriptors back to baseline)."""
    import subprocess
    import sys

    server = make_sandboxd()
    opts = server.opts
    sbx = Sandbox.create(base_template, timeout=600, **opts)
    assert sbx.commands.run("echo warm").stdout == "warm\n"
    pid = server.proc.pid
    base = fd_count(pid)

    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_RUNS_A_COMMAND, sbx.sandbox_id, "touch /tmp/started; sleep 600", "20"],
        env={**os.environ, "E2B_API_URL": server.url, "E2B_SANDBOX_URL": server.url, "E2B_API_KEY": server.key},
    )
    try:
        wait_until(lambda: sbx.files.exists("/tmp/started"), 60, "the command to start")
        assert fd_count(pid) > base, "the child's stream should hold descriptors in sandboxd"
    finally:
        child.kill()
        child.wait()

    def sleeping():
        return [p for p in sbx.commands.list() if "sleep 600" in " ".join([p.cmd, *p.args])]

    assert sleeping(), "the command died with its client (E2B keeps it until its timeout)"
    wait_until(lambda: fd_count(pid) <= base, 30, f"sandboxd's descriptors to return to {base}")
    wait_until(lambda: not sleeping(), 90, "the command to be killed at its 20 s timeout")
    assert sbx.commands.run("echo alive").stdout == "alive\n"


def test_client_dropped_mid_upload(base_template, make_sandboxd):
    """An upload cut half-way (connection reset after 4 of 16 MiB): sandboxd closes both sides;
    as in E2B's envd (which writes the target in place, O_TRUNC), what was received is left under
    the target name, never more than was sent; the next complete upload replaces it."""
    import socket
    import struct

    server = make_sandboxd()
    opts = server.opts
    sbx = Sandbox.create(base_template, timeout=600, **opts)
    sbx.files.write("/tmp/warm.txt", "warm")
    pid = server.proc.pid
    base = fd_count(pid)

    sent = 4 << 20
    head = (
        "POST /files?path=/tmp/cut.bin HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\n"
        f"E2b-Sandbox-Id: {sbx.sandbox_id}\r\nE2b-Sandbox-Port: 49983\r\n"
        f"X-Access-Token: {sbx._envd_access_token}\r\n"
        "Content-Type: application/octet-stream\r\n"
        f"Content-Length: {16 << 20}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as s:
        s.sendall(head + b"x" * sent)
        assert fd_count(pid) > base
        # An abrupt close: RST, not FIN.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    wait_until(lambda: fd_count(pid) <= base, 30, f"sandboxd's descriptors to return to {base}")
    # The guest still drains what reached its network stack (slirp delivers buffered data before
    # the FIN), so envd keeps writing for a moment after sandboxd let go; a new upload to the same
    # path before that would be overwritten by the stale tail. Wait until envd closed the file.
    holders = "ls -l /proc/[0-9]*/fd 2>/dev/null | grep -c /tmp/cut.bin || true"
    wait_until(lambda: sbx.commands.run(holders, user="root").stdout.strip() == "0", 60,
               "envd to finish the abandoned upload")
    if sbx.files.exists("/tmp/cut.bin"):
        assert sbx.files.get_info("/tmp/cut.bin").size <= sent
    data = os.urandom(1 << 20)
    sbx.files.write("/tmp/cut.bin", data)
    assert sbx.files.read("/tmp/cut.bin", format="bytes") == data
    assert sbx.commands.run("echo alive").stdout == "alive\n"
