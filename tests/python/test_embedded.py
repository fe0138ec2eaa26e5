"""The embedded default: with no E2B configuration the SDK starts sandboxd itself when nothing
answers at SANDBOXD_URL, exactly once even when two processes race, and reports clearly when it
cannot. Uses the sandboxd binary of conftest.py's rules (SANDBOXD_BIN or target/debug/sandboxd)
through E2B_SANDBOXD_BIN."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import E2B_VARS, REPO, _free_port, _healthy, shutdown

pytestmark = pytest.mark.sandboxd


def daemons(data_dir: str) -> List[int]:
    """Pids of processes started with ``--data-dir <data_dir>``."""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            argv = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--data-dir" in argv and data_dir.encode() in argv and b"serve" in argv:
            pids.append(int(p.name))
    return pids


def stop(data_dir: str, url: str) -> None:
    shutdown(data_dir, daemons(data_dir), url)
    if not os.path.ismount(os.path.join(data_dir, "store")):
        shutil.rmtree(data_dir, ignore_errors=True)


def embedded_env(binary: str, port: int, data_dir: str, **extra: str) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in E2B_VARS}
    env.update(
        SANDBOXD_URL=f"http://127.0.0.1:{port}",
        SANDBOXD_DATA_DIR=data_dir,
        E2B_SANDBOXD_BIN=binary,
        SANDBOXD_TEMPLATES_DIR=os.environ.get("SANDBOXD_TEMPLATES_DIR")
        or str(Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share") / "sandboxd/templates"),
    )
    env.update(extra)
    return env


@pytest.fixture
def binary() -> str:
    b = os.environ.get("SANDBOXD_BIN") or str(REPO / "target/debug/sandboxd")
    if not Path(b).is_file():
        pytest.fail(f"sandboxd binary {b} not found (set SANDBOXD_BIN)")
    return b


FIRST_USE = r"""
from e2b import Sandbox
with Sandbox.create() as s:
    print(s.commands.run("echo hi").stdout.strip(), flush=True)
"""


def test_starts_sandboxd_once_when_none_answers(binary: str) -> None:
    port, data_dir = _free_port(), tempfile.mkdtemp(prefix="e2b-embedded-")
    env = embedded_env(binary, port, data_dir)
    assert not _healthy(f"http://127.0.0.1:{port}")
    try:
        procs = [
            subprocess.Popen([sys.executable, "-c", FIRST_USE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outs = [p.communicate(timeout=300) for p in procs]
        for p, (out, err) in zip(procs, outs):
            assert p.returncode == 0 and out.strip() == "hi", (out, err)
        assert len(daemons(data_dir)) == 1, "exactly one sandboxd must have been started"
        assert Path(data_dir, "sandboxd.log").exists() and Path(data_dir, "api_key").exists()
        # The daemon outlives the processes that started it and is reused.
        r = subprocess.run([sys.executable, "-c", FIRST_USE], env=env, capture_output=True, text=True, timeout=300)
        assert r.stdout.strip() == "hi", r.stderr
        assert len(daemons(data_dir)) == 1
    finally:
        stop(data_dir, f"http://127.0.0.1:{port}")


def test_clear_error_when_sandboxd_never_answers(tmp_path: Path) -> None:
    fake = tmp_path / "sandboxd"
    fake.write_text("#!/bin/sh\nsleep 30\n")
    fake.chmod(0o755)
    data_dir = str(tmp_path / "data")
    port = _free_port()
    env = embedded_env(str(fake), port, data_dir, E2B_SANDBOXD_START_TIMEOUT="2")
    code = "import e2b\ntry:\n    e2b.Sandbox.list().next_items()\nexcept e2b.TimeoutException as e:\n    print('timeout:', e)\n"
    try:
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        assert "timeout:" in r.stdout and "did not answer" in r.stdout, r.stdout + r.stderr
    finally:
        stop(data_dir, f"http://127.0.0.1:{port}")


def test_clear_error_when_sandboxd_exits(tmp_path: Path) -> None:
    fake = tmp_path / "sandboxd"
    fake.write_text("#!/bin/sh\necho 'cannot start: no QEMU' >&2\nexit 3\n")
    fake.chmod(0o755)
    env = embedded_env(str(fake), _free_port(), str(tmp_path / "data"))
    code = "import e2b\ntry:\n    e2b.Sandbox.create()\nexcept e2b.SandboxException as e:\n    print('error:', e)\n"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert "exited" in r.stdout and "cannot start: no QEMU" in r.stdout, r.stdout + r.stderr
