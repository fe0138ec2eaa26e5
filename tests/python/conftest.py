"""Fixtures for the Python SDK tests.

Tests marked ``sandboxd`` need a real sandboxd; the ``sandboxd`` fixture provides it, from
(first match):
1. ``SANDBOXD_URL`` + ``SANDBOXD_DATA_DIR``: a running server (its API key is read from the data dir);
2. ``SANDBOXD_BIN`` (default ``<repo>/target/debug/sandboxd`` when it exists): started here with
   ``serve --listen 127.0.0.1:<free port> --data-dir <tmp> --templates-dir <T>``, where ``T`` is
   ``$SANDBOXD_TEMPLATES_DIR`` or sandboxd's default ``~/.local/share/sandboxd/templates``.
Without either the fixture **fails** (it never skips), so a missing server cannot pass silently.

The SDK reaches that server through its embedded default (``SANDBOXD_URL`` and
``SANDBOXD_DATA_DIR`` with every ``E2B_*`` variable removed): exactly what a user with no E2B
configuration gets.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Dict, Iterator

import pytest

REPO = Path(__file__).resolve().parents[2]
E2B_VARS = ("E2B_API_KEY", "E2B_API_URL", "E2B_DOMAIN", "E2B_SANDBOX_URL", "E2B_DEBUG", "E2B_ACCESS_TOKEN")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sandboxd: needs a real sandboxd (see conftest.py)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
            return 200 <= r.status < 300
    except OSError:
        return False


class Server:
    def __init__(self, url: str, data_dir: str, proc: "subprocess.Popen[bytes] | None") -> None:
        self.url = url
        self.data_dir = data_dir
        self.proc = proc

    @property
    def api_key(self) -> str:
        return Path(self.data_dir, "api_key").read_text().strip()

    def env(self) -> Dict[str, str]:
        """Environment for a child process using the SDK's embedded default on this server."""
        env = {k: v for k, v in os.environ.items() if k not in E2B_VARS}
        env.update(SANDBOXD_URL=self.url, SANDBOXD_DATA_DIR=self.data_dir)
        return env

    def e2b_env(self) -> Dict[str, str]:
        """Environment using the E2B_* variables instead (as for the official SDK)."""
        env = self.env()
        env.update(E2B_API_URL=self.url, E2B_SANDBOX_URL=self.url, E2B_API_KEY=self.api_key)
        return env


def shutdown(data_dir: str, pids: "list[int]", url: str) -> None:
    """Stop a sandboxd this suite started: kill its sandboxes, SIGTERM it (SIGKILL after 20 s),
    kill VMs it left behind (they outlive sandboxd by design) and unmount its XFS store."""
    import signal

    key = Path(data_dir, "api_key")
    if key.exists() and _healthy(url):
        from e2b import Sandbox

        try:
            opts = dict(api_url=url, sandbox_url=url, api_key=key.read_text().strip())
            p = Sandbox.list(**opts)
            while p.has_next:
                for info in p.next_items():
                    Sandbox.kill(info.sandbox_id, **opts)
        except Exception as e:  # best effort: the qemu pid files are the fallback
            print(f"could not kill the remaining sandboxes: {e}")
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + 20
    while time.time() < deadline and any(Path(f"/proc/{p}").exists() and "Z" not in _state(p) for p in pids):
        time.sleep(0.2)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pidfile in Path(data_dir).rglob("qemu.pid"):
        try:
            os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    store = Path(data_dir, "store")
    if os.path.ismount(store):
        if subprocess.run(["umount", str(store)]).returncode != 0:
            time.sleep(1)
            subprocess.run(["umount", "-l", str(store)])


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1]
    except (OSError, IndexError):
        return "Z"


@pytest.fixture(scope="session")
def sandboxd() -> Iterator[Server]:
    url, data_dir = os.environ.get("SANDBOXD_URL"), os.environ.get("SANDBOXD_DATA_DIR")
    proc = None
    if url and data_dir:
        if not _healthy(url):
            pytest.fail(f"SANDBOXD_URL={url} does not answer /health")
        server = Server(url.rstrip("/"), data_dir, None)
    else:
        binary = os.environ.get("SANDBOXD_BIN") or str(REPO / "target/debug/sandboxd")
        if not Path(binary).is_file():
            pytest.fail(
                "no sandboxd: set SANDBOXD_URL + SANDBOXD_DATA_DIR, or SANDBOXD_BIN "
                f"(default {binary} does not exist; build it with `cargo build -p sandboxd`)"
            )
        data_dir = tempfile.mkdtemp(prefix="e2b-py-test-")
        templates = os.environ.get("SANDBOXD_TEMPLATES_DIR") or str(
            Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local/share") / "sandboxd/templates"
        )
        url = f"http://127.0.0.1:{_free_port()}"
        log = open(Path(data_dir, "sandboxd.log"), "ab")
        proc = subprocess.Popen(
            [binary, "serve", "--listen", url[len("http://"):], "--data-dir", data_dir, "--templates-dir", templates],
            stdout=log,
            stderr=log,
        )
        deadline = time.time() + 120
        while not _healthy(url):
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail(f"sandboxd did not come up; log:\n{Path(data_dir, 'sandboxd.log').read_text()}")
            time.sleep(0.2)
        server = Server(url, data_dir, proc)

    saved = {k: os.environ.get(k) for k in (*E2B_VARS, "SANDBOXD_URL", "SANDBOXD_DATA_DIR")}
    for k in E2B_VARS:
        os.environ.pop(k, None)
    os.environ["SANDBOXD_URL"], os.environ["SANDBOXD_DATA_DIR"] = server.url, server.data_dir
    try:
        yield server
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if proc is not None:
            shutdown(data_dir, [proc.pid], server.url)
            proc.wait(timeout=10)
            shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def sandbox(sandboxd: Server) -> Iterator["object"]:
    from e2b import Sandbox

    sbx = Sandbox.create()
    try:
        yield sbx
    finally:
        sbx.kill()


def run_python(code_or_path: str, env: Dict[str, str], timeout: float = 300, args: tuple = ()) -> subprocess.CompletedProcess:
    """Run a Python file (or ``-c`` code) with this interpreter and the given environment."""
    cmd = [sys.executable, code_or_path, *args] if code_or_path.endswith(".py") else [sys.executable, "-c", code_or_path, *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.2):
    """Poll ``predicate`` until it returns a truthy value (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")
