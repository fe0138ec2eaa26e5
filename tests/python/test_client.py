"""Client-side behaviour that needs no sandboxd: the exception hierarchy, error mapping and
pagination against tests/python/fake_e2b.py, configuration, and the native stubs (stubtest)."""

import os
import subprocess
import tempfile
import sys
from pathlib import Path

import pytest

import e2b
from e2b import AsyncSandbox, Sandbox
from fake_e2b import FakeE2B

SID = "ifake0000000000000001"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    with FakeE2B() as srv:
        for k, v in srv.env().items():
            monkeypatch.setenv(k, v)
        yield srv


def test_exception_hierarchy() -> None:
    assert issubclass(e2b.TimeoutException, e2b.SandboxException)
    assert issubclass(e2b.TimeoutException, TimeoutError)
    assert issubclass(e2b.FileNotFoundException, e2b.NotFoundException)
    assert issubclass(e2b.FileNotFoundException, FileNotFoundError)
    assert issubclass(e2b.SandboxNotFoundException, e2b.NotFoundException)
    assert issubclass(e2b.NotFoundException, e2b.SandboxException)
    for cls in (e2b.InvalidArgumentException, e2b.NotEnoughSpaceException, e2b.RateLimitException,
                e2b.TemplateException, e2b.CommandExitException):
        assert issubclass(cls, e2b.SandboxException), cls
    assert not issubclass(e2b.AuthenticationException, e2b.SandboxException)
    e = e2b.CommandExitException(stdout="o", stderr="boom", exit_code=2)
    assert (e.stdout, e.stderr, e.exit_code, e.error) == ("o", "boom", 2, None)
    assert "boom" in str(e)


def test_snapshot_info_is_a_value() -> None:
    a = e2b.SnapshotInfo(snapshot_id="x:default", names=["t/x"])
    assert a == e2b.SnapshotInfo("x:default", ["t/x"])
    assert a.snapshot_id == "x:default" and a.names == ["t/x"]
    assert e2b.SnapshotInfo("y").names == []


def test_paginator_after_last_page(fake: FakeE2B) -> None:
    p = Sandbox.list_snapshots()
    assert p.has_next and p.next_token is None
    first = p.next_items()
    assert [s.snapshot_id for s in first] == ["snap1:default"]
    assert p.has_next and p.next_token == "page2"
    second = p.next_items()
    assert [s.snapshot_id for s in second] == ["snap2:default"]
    assert not p.has_next and p.next_token is None
    with pytest.raises(Exception, match="^No more items to fetch$") as exc:
        p.next_items()
    assert type(exc.value) is Exception
    # A paginator can start from a token.
    assert [s.snapshot_id for s in Sandbox.list_snapshots(next_token="page2").next_items()] == ["snap2:default"]


def test_error_mapping(fake: FakeE2B) -> None:
    with pytest.raises(e2b.SandboxNotFoundException, match="not found"):
        Sandbox.get_info("iunknown")
    assert Sandbox.kill("iunknown") is False
    assert Sandbox.delete_snapshot("missing:default") is False
    sbx = Sandbox.connect(SID)
    assert sbx.commands.kill(1234) is False  # envd not_found → False


def test_authentication_error(fake: FakeE2B, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("E2B_API_KEY")
    # E2B_API_URL is set, so this is not the embedded default: a key is required.
    with pytest.raises(e2b.AuthenticationException) as exc:
        Sandbox.create()
    assert not isinstance(exc.value, e2b.SandboxException)


def test_dual_pattern_and_context_manager(fake: FakeE2B) -> None:
    with Sandbox.create() as sbx:
        assert sbx.create_snapshot().snapshot_id == Sandbox.create_snapshot(sbx.sandbox_id).snapshot_id
        assert sbx.get_info().sandbox_id == Sandbox.get_info(sbx.sandbox_id).sandbox_id
        assert sbx.commands.run("echo hi").stdout == "echo hi\n"
    kills = [r for r in fake.recorder.requests if r["method"] == "DELETE" and r["path"] == f"/sandboxes/{SID}"]
    assert len(kills) == 1


async def test_async_paginator_and_calls(fake: FakeE2B) -> None:
    async with await AsyncSandbox.create() as sbx:
        snap = await sbx.create_snapshot()
        assert snap.snapshot_id == "snaptpl1:default"
        p = AsyncSandbox.list_snapshots()
        items = []
        while p.has_next:
            items.extend(await p.next_items())
        assert len(items) == 2
        with pytest.raises(Exception, match="No more items to fetch"):
            await p.next_items()
        assert await AsyncSandbox.delete_snapshot("a:b") is True
        assert await AsyncSandbox.delete_snapshot("a:b") is False


def test_gil_released_and_ctrl_c_with_fake_envd(fake: FakeE2B) -> None:
    """Same checks as test_sandbox.py's, against the fake envd (no VM needed)."""
    import threading
    import time

    sbx = Sandbox.connect(SID)
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.01)

    t = threading.Thread(target=count)
    t.start()
    sbx.commands.run("sleep 2")
    stop.set()
    t.join()
    assert ticks > 50

    child = (
        "import signal, time\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from e2b import Sandbox\n"
        f"s = Sandbox.connect({SID!r})\n"
        "print('started', flush=True)\n"
        "t = time.time()\n"
        "try:\n    s.commands.run('sleep 30')\nexcept KeyboardInterrupt:\n    print('interrupted', round(time.time() - t, 2), flush=True)\n"
    )
    p = subprocess.Popen([sys.executable, "-c", child], env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "started"
    time.sleep(1)
    p.send_signal(__import__("signal").SIGINT)
    out, err = p.communicate(timeout=20)
    assert out.startswith("interrupted"), (out, err)
    assert float(out.split()[1]) < 5


def test_embedded_default_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("E2B_API_KEY", "E2B_API_URL", "E2B_DOMAIN", "E2B_SANDBOX_URL", "E2B_DEBUG", "SANDBOXD_URL"):
        monkeypatch.delenv(k, raising=False)
    opts = e2b._native.ConnectionOpts()
    assert opts.is_embedded() and opts.resolved_api_url() == "http://127.0.0.1:49982"
    monkeypatch.setenv("SANDBOXD_URL", "http://127.0.0.1:5555")
    assert e2b._native.ConnectionOpts().resolved_api_url() == "http://127.0.0.1:5555"
    monkeypatch.setenv("E2B_API_KEY", "e2b_123")
    opts = e2b._native.ConnectionOpts()
    assert not opts.is_embedded() and opts.resolved_api_url() == "https://api.e2b.app"
    assert e2b._native.ConnectionOpts(domain="example.com").resolved_api_url() == "https://api.example.com"


def test_stubs_match_the_native_module() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy.stubtest", "e2b._native"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_package_type_checks() -> None:
    # Checked as the installed package (`-p`), from a neutral directory: run from inside
    # site-packages, mypy would take every module there (typing_extensions, …) as the user's.
    with tempfile.TemporaryDirectory() as cwd:
        r = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir=/dev/null", "-p", "e2b"], capture_output=True, text=True, cwd=cwd)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_raw_rest_client_is_refused_with_its_reason() -> None:
    with pytest.raises(ImportError, match="generated REST client.*Rust core"):
        from e2b import ApiClient  # noqa: F401
    with pytest.raises(AttributeError):
        e2b.NoSuchName  # noqa: B018
