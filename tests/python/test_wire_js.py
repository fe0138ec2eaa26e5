"""Our Node SDK sends the same REST requests as E2B's official JS SDK (npm e2b 2.51.0) for the
same calls (tests/python/wire_calls.mjs), bodies included: lifecycle, network, onResume, pause,
metrics and network updates. No sandboxd needed; the official package comes from
``$E2B_JS_SDK_DIR`` (a node_modules holding ``e2b``)."""

import os
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest

from fake_e2b import FakeE2B
from test_wire import ENVD_PREFIXES, _query

HERE = Path(__file__).parent
REPO = HERE.parents[1]


def record(module: str) -> List[Dict[str, Any]]:
    with FakeE2B() as srv:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "SANDBOXD_"))}
        env.update(srv.env(), E2B_MODULE=module)
        r = subprocess.run(["node", str(HERE / "wire_calls.mjs")], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "done" in r.stdout, f"{module}:\n{r.stdout}\n{r.stderr}"
        return [
            (q["method"], q["path"], _query(q["query_items"]), q["body"])
            for q in srv.recorder.requests
            if not q["path"].startswith(ENVD_PREFIXES)
        ]


def test_same_requests_as_the_official_js_sdk() -> None:
    sdk = os.environ.get("E2B_JS_SDK_DIR")
    if not sdk or not Path(sdk, "e2b/dist/index.mjs").exists():
        pytest.fail("official JS SDK not found (set E2B_JS_SDK_DIR to a node_modules holding e2b)")
    if not (REPO / "bindings-node/e2b.node").exists():
        pytest.fail("our Node addon is not built (npm install at the repo root)")
    theirs = record(str(Path(sdk, "e2b/dist/index.mjs")))
    ours = record(str(REPO / "bindings-node/index.mjs"))
    assert ours == theirs
