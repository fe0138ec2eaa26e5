"""Issue 3 acceptance: snapshots of running sandboxes (memory + disk), one-to-many clones,
pause/connect and fork, through the official SDK."""

import os
import subprocess
import time

import pytest
from e2b import Sandbox
from e2b.exceptions import SandboxException

from conftest import ROOT, wait_until

# A process whose counter lives only in memory. It answers its current value on
# 127.0.0.1:7777 inside the guest, so a command can read it.
COUNTER = r"""
import socket, threading, time
n = 0
def serve():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 7777))
    s.listen(16)
    while True:
        c, _ = s.accept()
        c.sendall(str(n).encode())
        c.close()
threading.Thread(target=serve, daemon=True).start()
while True:
    n += 1
    time.sleep(0.05)
"""

READ_COUNTER = (
    "python3 -c \"import socket; s = socket.create_connection(('127.0.0.1', 7777), timeout=10); "
    "print(s.recv(64).decode())\""
)


def start_counter(sbx: Sandbox) -> None:
    sbx.files.write("counter.py", COUNTER)
    sbx.commands.run("python3 counter.py", background=True)
    wait_until(lambda: counter(sbx, check=False) is not None, 60, "the counter to start")


def counter(sbx: Sandbox, check: bool = True):
    try:
        return int(sbx.commands.run(READ_COUNTER, timeout=60).stdout.strip())
    except Exception:
        if check:
            raise
        return None


def guest_ok(sbx: Sandbox) -> bool:
    return sbx.commands.run("true").exit_code == 0


@pytest.fixture
def counting(base_template):
    sbx = Sandbox.create(base_template, timeout=600)
    try:
        start_counter(sbx)
        sbx.files.write("before.txt", "written before the snapshot")
        wait_until(lambda: counter(sbx) >= 20, 60, "the counter to reach 20")
        yield sbx
    finally:
        sbx.kill()


def test_snapshot_clones_continue_the_in_memory_counter(counting):
    at_snapshot = counter(counting)
    snap = counting.create_snapshot()
    assert snap.snapshot_id.endswith(":default")
    # The source keeps running and counting, with the same ID.
    after = counter(counting)
    assert after >= at_snapshot
    wait_until(lambda: counter(counting) > after, 30, "the source to keep counting")
    assert counting.get_info().state.value == "running"

    clones = [Sandbox.create(snap.snapshot_id, timeout=300) for _ in range(3)]
    try:
        for i, clone in enumerate(clones):
            assert clone.sandbox_id != counting.sandbox_id
            value = counter(clone)
            # Restored from the snapshot's memory: not from zero, and at least the value
            # read just before the snapshot was taken.
            assert value >= at_snapshot, (value, at_snapshot)
            assert clone.files.read("before.txt") == "written before the snapshot"
            clone.files.write(f"clone-{i}.txt", str(i))
        for i, clone in enumerate(clones):
            for j in range(3):
                assert clone.files.exists(f"clone-{j}.txt") == (i == j)
        assert not counting.files.exists("clone-0.txt")

        # Fresh entropy and a wall clock synced to the host's.
        rand = [c.commands.run("head -c 16 /dev/urandom | od -An -tx1").stdout for c in clones[:2]]
        assert rand[0] != rand[1]
        for clone in clones[:2]:
            before = time.time()
            guest = float(clone.commands.run("date +%s.%N").stdout.strip())
            after = time.time()
            assert before - 2 <= guest <= after + 2, (before, guest, after)
    finally:
        for c in clones:
            c.kill()
        Sandbox.delete_snapshot(snap.snapshot_id)


def test_list_snapshots_pages_and_delete(sandbox):
    ids = [sandbox.create_snapshot().snapshot_id for _ in range(3)]
    named = sandbox.create_snapshot(name="compat-named")
    assert named.snapshot_id == "local/compat-named:default"
    assert named.names == ["local/compat-named"]
    ids.append(named.snapshot_id)
    try:
        paginator = Sandbox.list_snapshots(sandbox_id=sandbox.sandbox_id, limit=1)
        seen = []
        while paginator.has_next:
            items = paginator.next_items()
            assert len(items) <= 1
            seen.extend(s.snapshot_id for s in items)
            assert len(seen) <= 10, "paging does not end"
        assert sorted(seen) == sorted(ids)
        assert seen[0] == named.snapshot_id  # newest first
        assert [s.snapshot_id for s in Sandbox.list_snapshots(name="compat-named").next_items()] == [named.snapshot_id]
    finally:
        for sid in ids[1:]:
            Sandbox.delete_snapshot(sid)

    assert Sandbox.delete_snapshot(ids[0]) is True
    assert Sandbox.delete_snapshot(ids[0]) is False
    assert ids[0] not in [s.snapshot_id for s in Sandbox.list_snapshots(sandbox_id=sandbox.sandbox_id).next_items()]
    with pytest.raises(SandboxException) as e:
        Sandbox.create(ids[0])
    assert "404" in str(e.value)
    assert guest_ok(sandbox)


def test_pause_then_connect_keeps_memory(counting):
    before = counter(counting)
    assert counting.pause() is True
    assert Sandbox.get_info(counting.sandbox_id).state.value == "paused"
    assert Sandbox.pause(counting.sandbox_id) is False  # already paused: 409
    resumed = Sandbox.connect(counting.sandbox_id, timeout=300)
    assert resumed.sandbox_id == counting.sandbox_id
    assert counter(resumed) >= before
    assert resumed.files.read("before.txt") == "written before the snapshot"
    assert resumed.get_info().state.value == "running"


def test_fork_three(counting):
    at_fork = counter(counting)
    forks = counting.fork(count=3, timeout=300)
    try:
        assert len(forks) == 3
        for f in forks:
            assert isinstance(f, Sandbox), f
            assert f.is_running()
            assert counter(f) >= at_fork
        assert len({f.sandbox_id for f in forks} | {counting.sandbox_id}) == 4
        assert guest_ok(counting)
    finally:
        for f in forks:
            if isinstance(f, Sandbox):
                f.kill()


def paused(sandbox_id: str) -> bool:
    return Sandbox.get_info(sandbox_id).state.value == "paused"


def test_auto_pause_at_timeout_keeps_memory(base_template):
    sbx = Sandbox.create(base_template, timeout=20, lifecycle={"on_timeout": "pause"})
    try:
        assert sbx.get_info().lifecycle["on_timeout"] == "pause"
        start_counter(sbx)
        before = counter(sbx)
        wait_until(lambda: paused(sbx.sandbox_id), 120, "the sandbox to pause at its timeout", interval_s=0.5)
        assert sbx.is_running() is False
        resumed = Sandbox.connect(sbx.sandbox_id, timeout=120)
        assert counter(resumed) >= before
    finally:
        Sandbox.kill(sbx.sandbox_id)


def test_auto_resume_on_traffic(base_template):
    sbx = Sandbox.create(base_template, timeout=20, lifecycle={"on_timeout": "pause", "auto_resume": True})
    try:
        start_counter(sbx)
        before = counter(sbx)
        wait_until(lambda: paused(sbx.sandbox_id), 120, "the sandbox to pause at its timeout", interval_s=0.5)
        # Plain envd traffic with the handle we already hold wakes it up.
        assert counter(sbx) >= before
        assert Sandbox.get_info(sbx.sandbox_id).state.value == "running"
    finally:
        Sandbox.kill(sbx.sandbox_id)


def shared_extents(path) -> int:
    """Extents of `path` that share their blocks with another file (FIEMAP, via filefrag)."""
    out = subprocess.run(["filefrag", "-v", str(path)], capture_output=True, text=True, check=True).stdout
    return sum(1 for line in out.splitlines() if "shared" in line.split(":")[-1])


@pytest.mark.parametrize("mode", ["reflink", "copy"])
def test_restore_ram_modes_both_continue_the_counter(base_template, make_sandboxd, mode):
    """SANDBOXD_RESTORE_RAM: `reflink` makes a clone's RAM file share the image's blocks (nothing
    copied), `copy` (the default) gives it blocks of its own; both restore the same memory."""
    server = make_sandboxd(env={"SANDBOXD_RESTORE_RAM": mode})
    store = server.data / "store"
    if not os.path.ismount(store):
        pytest.skip("needs sandboxd's XFS store (reflinks; running as root)")
    opts = server.opts
    source = Sandbox.create(base_template, timeout=300, **opts)
    start_counter(source)
    wait_until(lambda: counter(source) >= 20, 60, "the counter to reach 20")
    at_snapshot = counter(source)
    snap = source.create_snapshot()
    clone = Sandbox.create(snap.snapshot_id, timeout=300, **opts)
    try:
        assert counter(clone) >= at_snapshot
        wait_until(lambda: counter(clone) > at_snapshot + 5, 60, "the clone to keep counting")
        ram = store / "run" / clone.sandbox_id / "mem.ram"
        shared = shared_extents(ram)
        assert (shared > 0) == (mode == "reflink"), (mode, shared)
    finally:
        clone.kill()
        source.kill()


def test_an_unknown_restore_ram_mode_is_refused_at_start(tmp_path):
    binary = os.environ.get("SANDBOXD_BIN", str(ROOT / "target" / "debug" / "sandboxd"))
    r = subprocess.run(
        [binary, "serve", "--listen", "127.0.0.1:1", "--data-dir", str(tmp_path / "data")],
        env={**os.environ, "SANDBOXD_RESTORE_RAM": "lazy"}, capture_output=True, text=True, timeout=60,
    )
    assert r.returncode != 0
    assert "SANDBOXD_RESTORE_RAM must be `copy` or `reflink`" in r.stderr, r.stderr
    assert not (tmp_path / "data").exists(), "nothing is created before the refusal"
