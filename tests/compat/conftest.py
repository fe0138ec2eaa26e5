"""Fixtures: one real `sandboxd serve` per test session, driven by the official E2B SDK.

The server gets a free port and a fresh data directory; templates come from
SANDBOXD_TEMPLATES_DIR so a built `base` template is shared between runs. The SDK is pointed
at it through E2B_API_URL / E2B_SANDBOX_URL / E2B_API_KEY, exactly as a user would.
"""

import os
import shutil
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


def _templates_dir() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sandboxd" / "templates"
    return Path(os.environ.get("SANDBOXD_TEMPLATES_DIR", default))


@pytest.fixture(scope="session")
def sandboxd():
    """Starts sandboxd and exports the SDK's environment; yields its base URL."""
    binary = Path(os.environ.get("SANDBOXD_BIN", ROOT / "target" / "debug" / "sandboxd"))
    if not binary.exists():
        pytest.fail(f"sandboxd binary not found at {binary}: run `cargo build -p sandboxd` or set SANDBOXD_BIN")
    tmp = Path(tempfile.mkdtemp(prefix="sandboxd-compat-"))
    data = tmp / "data"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(tmp / "sandboxd.log", "wb")
    proc = subprocess.Popen(
        [str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data),
         "--templates-dir", str(_templates_dir())],
        stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "sandboxd=info,warn")},
    )
    deadline = time.monotonic() + START_DEADLINE_S
    while True:
        if proc.poll() is not None:
            pytest.fail(f"sandboxd exited with {proc.returncode}; log: {(tmp / 'sandboxd.log').read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("sandboxd did not become healthy in time")
        time.sleep(0.1)
    saved = {k: os.environ.get(k) for k in ("E2B_API_URL", "E2B_SANDBOX_URL", "E2B_API_KEY", "E2B_DOMAIN")}
    os.environ["E2B_API_URL"] = url
    os.environ["E2B_SANDBOX_URL"] = url
    os.environ["E2B_API_KEY"] = (data / "api_key").read_text().strip()
    os.environ["E2B_DOMAIN"] = "localhost"
    try:
        yield url
    finally:
        _kill_all_sandboxes()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        # The VMs outlive a stopped sandboxd by design; kill what this session left behind.
        for pidfile in data.rglob("qemu.pid"):
            try:
                os.kill(int(pidfile.read_text().strip()), 9)
            except (OSError, ValueError):
                pass
        # sandboxd may have loop-mounted an XFS store inside the data directory.
        store = data / "store"
        if os.path.ismount(store):
            if subprocess.run(["umount", str(store)]).returncode != 0:
                time.sleep(1)
                subprocess.run(["umount", "-l", str(store)])
        log.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        if os.environ.get("COMPAT_KEEP_DATA"):
            print(f"sandboxd data kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def _kill_all_sandboxes():
    from e2b import Sandbox

    try:
        paginator = Sandbox.list()
        while paginator.has_next:
            for info in paginator.next_items():
                Sandbox.kill(info.sandbox_id)
    except Exception as e:  # best effort: the pid files below are the fallback
        print(f"could not kill the remaining sandboxes: {e}")


@pytest.fixture(scope="session")
def base_template(sandboxd):
    """Skips (only while the VM runtime cannot run yet) when no `base` template is built."""
    if not (_templates_dir() / "base" / "meta.json").exists():
        pytest.skip(f"no built base template in {_templates_dir()}: run "
                    f"`sandboxd template build base --templates-dir {_templates_dir()}`")
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
