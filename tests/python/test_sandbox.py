"""Our SDK against a real sandboxd: the snapshot flow in-process (sync and async), error cases,
commands and files, GIL release and Ctrl-C."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import e2b
from e2b import AsyncSandbox, Sandbox

from conftest import Server

pytestmark = pytest.mark.sandboxd


def test_snapshot_flow(sandbox: Sandbox) -> None:
    sandbox.files.write("/tmp/state", "1")
    snap = sandbox.create_snapshot()
    assert isinstance(snap, e2b.SnapshotInfo) and snap.snapshot_id
    snap2 = Sandbox.create_snapshot(sandbox.sandbox_id)
    assert snap2.snapshot_id != snap.snapshot_id

    with Sandbox.create(snap.snapshot_id) as copy:
        assert copy.sandbox_id != sandbox.sandbox_id
        assert copy.files.read("/tmp/state") == "1"

    mine = []
    p = sandbox.list_snapshots(limit=1)
    while p.has_next:
        page = p.next_items()
        assert len(page) <= 1
        mine.extend(s.snapshot_id for s in page)
    assert {snap.snapshot_id, snap2.snapshot_id} <= set(mine)
    assert p.next_token is None
    with pytest.raises(Exception, match="No more items to fetch") as exc:
        p.next_items()
    assert type(exc.value) is Exception

    by_static = [s.snapshot_id for s in Sandbox.list_snapshots(sandbox_id=sandbox.sandbox_id).next_items()]
    assert set(by_static) == set(mine)

    assert Sandbox.delete_snapshot(snap.snapshot_id) is True
    assert Sandbox.delete_snapshot(snap.snapshot_id) is False
    assert Sandbox.delete_snapshot(snap2.snapshot_id) is True


def test_unknown_sandbox_errors(sandboxd: Server) -> None:
    with pytest.raises(e2b.SandboxNotFoundException):
        Sandbox.get_info("inotexisting00000000")
    with pytest.raises(e2b.NotFoundException):
        Sandbox.connect("inotexisting00000000")
    with pytest.raises(e2b.SandboxNotFoundException):
        Sandbox.create_snapshot("inotexisting00000000")
    assert Sandbox.kill("inotexisting00000000") is False


def test_lifecycle_and_dual_pattern(sandboxd: Server) -> None:
    sbx = Sandbox.create(timeout=120, metadata={"suite": "py", "odd key": "a/b c&d=e"})
    info = sbx.get_info()
    assert info.sandbox_id == sbx.sandbox_id and info.state == "running"
    assert info.metadata.get("suite") == "py"
    assert Sandbox.get_info(sbx.sandbox_id).sandbox_id == sbx.sandbox_id
    sbx.set_timeout(200)
    Sandbox.set_timeout(sbx.sandbox_id, 150)
    assert sbx.is_running()
    again = Sandbox.connect(sbx.sandbox_id)
    assert again.commands.run("echo again").stdout == "again\n"
    listed = []
    p = Sandbox.list(query=e2b.SandboxQuery(metadata={"suite": "py", "odd key": "a/b c&d=e"}))
    while p.has_next:
        listed.extend(i.sandbox_id for i in p.next_items())
    assert sbx.sandbox_id in listed
    assert not Sandbox.list(query=e2b.SandboxQuery(metadata={"odd key": "other"})).next_items()
    assert sbx.kill() is True
    assert Sandbox.kill(sbx.sandbox_id) is False


def test_commands_and_files(sandbox: Sandbox) -> None:
    r = sandbox.commands.run("echo hi; echo err >&2")
    assert (r.stdout, r.stderr, r.exit_code) == ("hi\n", "err\n", 0)
    with pytest.raises(e2b.CommandExitException) as exc:
        sandbox.commands.run("echo out; exit 3")
    assert exc.value.exit_code == 3 and exc.value.stdout == "out\n"
    assert isinstance(exc.value, e2b.SandboxException)

    chunks = []
    sandbox.commands.run("echo streamed", on_stdout=chunks.append)
    assert "".join(chunks) == "streamed\n"

    h = sandbox.commands.run("sleep 30", background=True)
    assert h.pid > 0
    assert h.pid in [p.pid for p in sandbox.commands.list()]
    assert sandbox.commands.kill(h.pid) is True
    with pytest.raises(e2b.CommandExitException):
        h.wait()

    info = sandbox.files.write("/tmp/dir/a.txt", "hello")
    assert info.path == "/tmp/dir/a.txt"
    assert sandbox.files.read("/tmp/dir/a.txt") == "hello"
    assert sandbox.files.read("/tmp/dir/a.txt", format="bytes") == bytearray(b"hello")
    assert sandbox.files.exists("/tmp/dir/a.txt")
    assert [e.name for e in sandbox.files.list("/tmp/dir")] == ["a.txt"]
    assert sandbox.files.get_info("/tmp/dir/a.txt").type == e2b.FileType.FILE
    assert sandbox.files.make_dir("/tmp/dir/sub") is True
    assert sandbox.files.make_dir("/tmp/dir/sub") is False
    sandbox.files.rename("/tmp/dir/a.txt", "/tmp/dir/b.txt")
    sandbox.files.remove("/tmp/dir/b.txt")
    assert not sandbox.files.exists("/tmp/dir/b.txt")
    with pytest.raises(e2b.FileNotFoundException) as fexc:
        sandbox.files.read("/tmp/nope")
    assert isinstance(fexc.value, FileNotFoundError)


def test_gil_is_released(sandbox: Sandbox) -> None:
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.01)

    t = threading.Thread(target=count)
    t.start()
    start = time.time()
    sandbox.commands.run("sleep 3")
    elapsed = time.time() - start
    stop.set()
    t.join()
    # The counter thread ran throughout the blocking call.
    assert ticks > 50 * elapsed * 0.5, (ticks, elapsed)


CTRL_C_CHILD = r"""
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # background jobs may inherit SIG_IGN
from e2b import Sandbox
sbx = Sandbox.connect(sys.argv[1])
print("started", flush=True)
t = time.time()
try:
    sbx.commands.run("sleep 60", timeout=120)
    print("finished", flush=True)
except KeyboardInterrupt:
    print(f"interrupted {time.time() - t:.2f}", flush=True)
"""


def test_ctrl_c_interrupts_a_long_command(sandboxd: Server, sandbox: Sandbox) -> None:
    p = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_CHILD, sandbox.sandbox_id],
        env=sandboxd.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "started"
    time.sleep(2)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert out.startswith("interrupted"), (out, err)
    assert float(out.split()[1]) < 10


async def test_async_sandbox(sandboxd: Server) -> None:
    async with await AsyncSandbox.create() as sbx:
        r = await sbx.commands.run("echo async")
        assert r.stdout == "async\n"
        snap = await sbx.create_snapshot()
        snap2 = await AsyncSandbox.create_snapshot(sbx.sandbox_id)
        p = AsyncSandbox.list_snapshots(sandbox_id=sbx.sandbox_id)
        ids = []
        while p.has_next:
            ids.extend(s.snapshot_id for s in await p.next_items())
        assert {snap.snapshot_id, snap2.snapshot_id} <= set(ids)
        with pytest.raises(Exception, match="No more items to fetch"):
            await p.next_items()
        results = await asyncio.gather(*(sbx.commands.run(f"echo {i}") for i in range(5)))
        assert [r.stdout for r in results] == [f"{i}\n" for i in range(5)]
        assert await AsyncSandbox.delete_snapshot(snap.snapshot_id) is True
        assert await AsyncSandbox.delete_snapshot(snap.snapshot_id) is False
        assert await AsyncSandbox.delete_snapshot(snap2.snapshot_id) is True
    with pytest.raises(e2b.SandboxNotFoundException):
        await AsyncSandbox.get_info(sbx.sandbox_id)
