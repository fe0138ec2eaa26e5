"""Language-free checks of what our SDK sends: the same calls made with E2B's official Python
SDK and with ours produce the same REST requests (method, path, query keys, JSON body keys), and
every REST route we use exists in sandboxd's OpenAPI document. No sandboxd needed.

The official SDK runs from its own virtualenv (it would collide with ours): ``$OFFICIAL_E2B_PYTHON``
or /tmp/offsdk/bin/python (``python -m venv /tmp/offsdk && /tmp/offsdk/bin/pip install e2b``).
"""

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

import pytest

from fake_e2b import FakeE2B

HERE = Path(__file__).parent
REPO = HERE.parents[1]
OFFICIAL = os.environ.get("OFFICIAL_E2B_PYTHON", "/tmp/offsdk/bin/python")
ENVD_PREFIXES = ("/process.", "/filesystem.", "/files", "/health", "/envs")


def record(python: str) -> List[Dict[str, Any]]:
    with FakeE2B() as srv:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "SANDBOXD_"))}
        env.update(srv.env())
        r = subprocess.run([python, str(HERE / "wire_calls.py")], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "done" in r.stdout, f"{python}:\n{r.stdout}\n{r.stderr}"
        return list(srv.recorder.requests)


def _query(items: List[tuple]) -> tuple:
    # The metadata filter is a map: compare its pairs whatever their order.
    return tuple((k, "&".join(sorted(v.split("&"))) if k == "metadata" else v) for k, v in items)


def rest(reqs: List[Dict[str, Any]]) -> List[tuple]:
    return [
        (r["method"], r["path"], _query(r["query_items"]), tuple(r["body_keys"] or ()))
        for r in reqs
        if not r["path"].startswith(ENVD_PREFIXES)
    ]


def envd(reqs: List[Dict[str, Any]]) -> set:
    return {(r["method"], r["path"]) for r in reqs if r["path"].startswith(("/process.", "/filesystem.", "/files"))}


@pytest.fixture(scope="module")
def ours() -> List[Dict[str, Any]]:
    return record(sys.executable)


def test_same_requests_as_the_official_sdk(ours: List[Dict[str, Any]]) -> None:
    if not Path(OFFICIAL).exists():
        pytest.fail(f"official SDK interpreter {OFFICIAL} not found (set OFFICIAL_E2B_PYTHON)")
    theirs = record(OFFICIAL)
    assert rest(ours) == rest(theirs)
    assert envd(ours) == envd(theirs)
    # Same JSON bodies for the REST calls, values included (defaults such as timeout=300).
    body = lambda reqs: [r["body"] for r in reqs if not r["path"].startswith(ENVD_PREFIXES)]
    assert body(ours) == body(theirs)


def test_snapshot_ids_are_one_path_segment(ours: List[Dict[str, Any]]) -> None:
    deletes = [r["path"] for r in ours if r["method"] == "DELETE" and r["path"].startswith("/templates/")]
    assert deletes == ["/templates/team%2Fname%3Atag"] * 2


def openapi_paths() -> Dict[str, set]:
    text = (REPO / "server/openapi.yaml").read_text()
    paths: Dict[str, set] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^  (/\S*):\s*$", line)
        if m:
            current = m.group(1)
            paths[current] = set()
            continue
        m = re.match(r"^    (get|post|put|delete|patch):", line)
        if m and current:
            paths[current].add(m.group(1).upper())
        elif re.match(r"^\S", line):
            current = None
    return paths


def test_rest_routes_exist_in_sandboxd_openapi(ours: List[Dict[str, Any]]) -> None:
    if not (REPO / "server/openapi.yaml").exists():
        pytest.fail("server/openapi.yaml missing")
    spec = openapi_paths()
    patterns = [(re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p)) + "$"), p) for p in spec]
    for method, path, *_ in rest(ours):
        matches = [p for rx, p in patterns if rx.match(path)]
        assert matches, f"{method} {path} is not in server/openapi.yaml"
        assert any(method in spec[p] for p in matches), f"{method} {path}: methods {[spec[p] for p in matches]}"
