"""Runs a snippet of JavaScript against the **official** npm `e2b` SDK, for the checks whose
code path differs between E2B's Python and JS SDKs.

The SDK lives in `E2B_JS_SDK_DIR` (a `node_modules` folder; `scripts/test.sh` installs the
pinned version into `$CARGO_TARGET_DIR/official-js`). The snippet runs as an ES module placed
next to that folder, so `import { Sandbox } from 'e2b'` resolves to it. The snippet reports by
printing one JSON value as its last line of stdout; `run_js` returns it parsed.
"""

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def sdk_dir() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return Path(os.environ.get("E2B_JS_SDK_DIR", target / "official-js" / "node_modules"))


def run_js(code: str, server=None, env=None, timeout_s: float = 180):
    """Runs `code` (an ES module body; top-level await works) with the SDK configured for
    `server` (a conftest `Sandboxd`, or the session server from the environment), and returns
    the JSON value it printed last. A non-zero exit fails the test with the script's output."""
    modules = sdk_dir()
    if not (modules / "e2b" / "package.json").exists():
        if os.environ.get("CI"):
            pytest.fail(f"the official JS SDK is not installed in {modules} (scripts/test.sh installs it)")
        pytest.skip(f"no official JS SDK in {modules}: npm install --prefix {modules.parent} e2b@2.51.0")
    run_env = dict(os.environ)
    if server is not None:
        run_env.update(E2B_API_URL=server.url, E2B_SANDBOX_URL=server.url, E2B_API_KEY=server.key)
    run_env.update(env or {})
    with tempfile.NamedTemporaryFile("w", suffix=".mjs", dir=modules.parent, delete=False) as f:
        f.write(code)
        script = f.name
    try:
        proc = subprocess.run(["node", script], capture_output=True, text=True, env=run_env, timeout=timeout_s)
    finally:
        os.unlink(script)
    if proc.returncode != 0:
        pytest.fail(f"JS snippet failed ({proc.returncode}):\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if not lines:
        pytest.fail(f"JS snippet printed nothing; stderr:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])
