"""Fixtures: real `sandboxd serve` processes driven by the official E2B SDK.

Each server gets a free port and a fresh data directory; templates come from
SANDBOXD_TEMPLATES_DIR so a built `base` template is shared between runs. The session server
is exported to the SDK through E2B_API_URL / E2B_SANDBOX_URL / E2B_API_KEY, exactly as a user
would configure it.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE_S = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def templates_dir() -> Path:
    """sandboxd's own default (`<default data dir>/templates`), so `sandboxd template build
    base` run by hand is reused."""
    data_home = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return Path(os.environ.get("SANDBOXD_TEMPLATES_DIR", data_home / "sandboxd" / "templates"))


class Sandboxd:
    """One sandboxd process on a fixed port and data directory; can be killed and restarted."""

    def __init__(self, root: Path, args=(), env=None):
        self.root = root
        self.args = list(args)
        self.env = dict(env or {})
        self.data = root / "data"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.binary = Path(os.environ.get("SANDBOXD_BIN", ROOT / "target" / "debug" / "sandboxd"))
        self.proc = None
        self.log_path = root / "sandboxd.log"

    @property
    def key(self) -> str:
        return (self.data / "api_key").read_text().strip()

    @property
    def opts(self) -> dict:
        """Connection options for SDK calls aimed at this server."""
        return {"api_url": self.url, "sandbox_url": self.url, "api_key": self.key}

    def start(self):
        if not self.binary.exists():
            pytest.fail(f"sandboxd binary not found at {self.binary}: run `cargo build -p sandboxd` or set SANDBOXD_BIN")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(self.binary), "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data),
             "--templates-dir", str(templates_dir()), *self.args],
            stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "sandboxd=info,warn"), **self.env},
        )
        log.close()
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"sandboxd exited with {self.proc.returncode}; log: {self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.proc.kill()
                pytest.fail("sandboxd did not become healthy in time")
            time.sleep(0.1)

    def kill9(self):
        """What a crash looks like: the VMs survive, sandboxd does not."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        """Kills every sandbox, stops sandboxd, and unmounts what it mounted."""
        if self.proc and self.proc.poll() is None:
            _kill_all_sandboxes(self.opts)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        # VMs outlive a stopped sandboxd by design; kill what this server left behind.
        for pidfile in self.data.rglob("qemu.pid"):
            try:
                os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        # sandboxd may have loop-mounted an XFS store inside the data directory.
        store = self.data / "store"
        if os.path.ismount(store):
            if subprocess.run(["umount", str(store)]).returncode != 0:
                time.sleep(1)
                subprocess.run(["umount", "-l", str(store)])


def _kill_all_sandboxes(opts: dict):
    from e2b import Sandbox

    try:
        paginator = Sandbox.list(**opts)
        while paginator.has_next:
            for info in paginator.next_items():
                Sandbox.kill(info.sandbox_id, **opts)
    except Exception as e:  # best effort: the pid files are the fallback
        print(f"could not kill the remaining sandboxes: {e}")


@pytest.fixture
def make_sandboxd():
    """Starts extra sandboxd servers (own data directories), stopped at the end of the test."""
    servers = []

    def make(args=(), env=None) -> Sandboxd:
        # These servers check store usage, capacity and leftovers exactly: no warm pool unless
        # the test asks for one (the session server runs with sandboxd's default).
        env = {"SANDBOXD_POOL_SIZE": "0", **(env or {})}
        server = Sandboxd(Path(tempfile.mkdtemp(prefix="sandboxd-compat-")), args=args, env=env)
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.stop()
        if not os.environ.get("COMPAT_KEEP_DATA"):
            shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def volume_server(make_sandboxd, monkeypatch):
    """A sandboxd of its own that also serves the volume content API the official SDKs reach
    through `E2B_VOLUME_API_URL`."""
    server = make_sandboxd()
    monkeypatch.setenv("E2B_VOLUME_API_URL", server.url)
    return server


_template_build = {}


def build_base_template() -> subprocess.CompletedProcess:
    """`sandboxd template build base` into the shared templates dir, once per session. A no-op
    when the cached template is up to date (same envd); done before the session server starts
    so that the server does not rebuild it in the background while tests run."""
    if "result" not in _template_build:
        binary = Path(os.environ.get("SANDBOXD_BIN", ROOT / "target" / "debug" / "sandboxd"))
        _template_build["result"] = subprocess.run(
            [str(binary), "template", "build", "base", "--templates-dir", str(templates_dir())],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1800,
        )
    return _template_build["result"]


@pytest.fixture(scope="session")
def sandboxd():
    """The session's server, exported to the SDK's environment; yields its base URL."""
    build_base_template()
    server = Sandboxd(Path(tempfile.mkdtemp(prefix="sandboxd-compat-")))
    server.start()
    names = ("E2B_API_URL", "E2B_SANDBOX_URL", "E2B_API_KEY", "E2B_DOMAIN")
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(E2B_API_URL=server.url, E2B_SANDBOX_URL=server.url, E2B_API_KEY=server.key,
                      E2B_DOMAIN="localhost")
    try:
        yield server.url
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if os.environ.get("COMPAT_KEEP_DATA"):
            print(f"sandboxd data kept in {server.root}")
        else:
            shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def base_template(sandboxd):
    """The `base` template, built by `build_base_template` (a failed build fails the tests)."""
    build = build_base_template()
    if build.returncode != 0 or not (templates_dir() / "base" / "meta.json").exists():
        pytest.fail(f"`sandboxd template build base --templates-dir {templates_dir()}` failed "
                    f"({build.returncode}):\n{build.stdout[-3000:]}")
    return "base"


@pytest.fixture
def sandbox(base_template):
    """A fresh sandbox from the base template, killed afterwards."""
    from e2b import Sandbox

    sbx = Sandbox.create(base_template, timeout=300)
    try:
        yield sbx
    finally:
        sbx.kill()


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.2):
    """Polls `predicate` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what} (last: {last!r})")


def pytest_collection_modifyitems(config, items):
    """`@pytest.mark.slow` tests run only with SANDBOXD_SLOW_TESTS=1 (CI runs the quick subset)."""
    if os.environ.get("SANDBOXD_SLOW_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set SANDBOXD_SLOW_TESTS=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
