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
        (r["method"], r["path"], _query(r["query_items"]), tuple(r["body_keys"] or ()), r.get("idempotency_key"))
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
        if path.startswith("/volumecontent/"):
            continue  # the volume content API: its own credential, documented in docs/volumes.md
        matches = [p for rx, p in patterns if rx.match(path)]
        assert matches, f"{method} {path} is not in server/openapi.yaml"
        assert any(method in spec[p] for p in matches), f"{method} {path}: methods {[spec[p] for p in matches]}"


URLS = """
from e2b import Sandbox
s = Sandbox.create()
print(s.download_url("/home/user/a b+c.txt"))
print(s.upload_url("/x/y", user="root"))
print(s.download_url("/d", user="user"))
print(s.get_host(8080))
from e2b import get_signature
print(get_signature("/a b", "write", "root", "tok"))
print(get_signature("/x", "read", None, "tok")["signature"])
"""


def test_file_urls_match_the_official_sdk() -> None:
    """upload_url / download_url (E2B's v1 signature, computed in our core) and get_host give
    the same strings as the official SDK for the same sandbox."""
    if not Path(OFFICIAL).exists():
        pytest.fail(f"official SDK interpreter {OFFICIAL} not found (set OFFICIAL_E2B_PYTHON)")
    out = []
    for python in (sys.executable, OFFICIAL):
        with FakeE2B() as srv:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "SANDBOXD_"))}
            env.update(srv.env())
            r = subprocess.run([python, "-c", URLS], env=env, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            out.append(r.stdout.replace(srv.url, "<server>"))
    assert out[0] == out[1]
    assert "signature=v1_" in out[0]


NETWORK = """
from e2b import Sandbox
Sandbox.update_network("ifake0000000000000001", {"allow_out": ["1.1.1.1"], "deny_out": ["0.0.0.0/0"]})
s = Sandbox.connect("ifake0000000000000001")
s.update_network({"allow_internet_access": False})
s.update_network({})
print("done")
"""


def test_update_network_sends_what_the_official_sdk_sends() -> None:
    """PUT /sandboxes/{id}/network, body for body (sandboxd's route comes with the network work,
    so this is outside the OpenAPI check above)."""
    if not Path(OFFICIAL).exists():
        pytest.fail(f"official SDK interpreter {OFFICIAL} not found (set OFFICIAL_E2B_PYTHON)")
    got = []
    for python in (sys.executable, OFFICIAL):
        with FakeE2B() as srv:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "SANDBOXD_"))}
            env.update(srv.env())
            r = subprocess.run([python, "-c", NETWORK], env=env, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0 and "done" in r.stdout, r.stderr
            got.append([(q["method"], q["path"], q["body"]) for q in srv.recorder.requests if q["method"] == "PUT"])
    assert got[0] == got[1]
    assert len(got[0]) == 3


INFO = """
import dataclasses, json
from e2b import Sandbox, SandboxState
i = Sandbox.get_info("ifake0000000000000001")
assert isinstance(i.state, SandboxState) and i.state == SandboxState.RUNNING, i.state
fields = ["sandbox_id", "sandbox_domain", "template_id", "name", "metadata", "started_at", "end_at", "cpu_count",
          "memory_mb", "envd_version", "allow_internet_access", "network", "lifecycle", "volume_mounts",
          "envd_unresponsive_at_pause"]
print(json.dumps({f: getattr(i, f) for f in fields}, default=str, sort_keys=True))
"""


def test_get_info_has_every_field_as_the_official_sdk() -> None:
    """``get_info`` gives the same values as the official SDK for every field (state as the
    ``SandboxState`` enum, network, lifecycle, volume mounts, envd_unresponsive_at_pause)."""
    if not Path(OFFICIAL).exists():
        pytest.fail(f"official SDK interpreter {OFFICIAL} not found (set OFFICIAL_E2B_PYTHON)")
    out = []
    for python in (sys.executable, OFFICIAL):
        with FakeE2B() as srv:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "SANDBOXD_"))}
            env.update(srv.env())
            r = subprocess.run([python, "-c", INFO], env=env, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            out.append(r.stdout.replace(srv.url, "<server>"))
    assert out[0] == out[1]
    assert '"envd_unresponsive_at_pause": true' in out[0]


TEMPLATE = """
import os, tempfile
from e2b import Template, wait_for_port
d = tempfile.mkdtemp()
os.makedirs(os.path.join(d, "app"))
with open(os.path.join(d, "app", "a.txt"), "w") as f:
    f.write("a")
t = Template(file_context_path=d).from_template("base").copy("app", "/app").set_envs({"A": "1"}).set_start_cmd("x", wait_for_port(1))
logs = []
info = Template.build(t, "wire-tpl", tags=["v1"], cpu_count=2, memory_mb=1024, on_build_logs=logs.append)
print(info.template_id, info.build_id, info.name, sorted(info.tags))
Template.build(t, "wire-tpl")
Template.build_in_background(t, "wire-tpl:v2", skip_cache=True)
print(Template.exists("wire-tpl"), Template.exists("nope"))
print(Template.assign_tags("wire-tpl:v1", ["a", "b"]))
Template.remove_tags("wire-tpl", "a")
print([(x.tag, x.build_id, x.created_at.year) for x in Template.get_tags("tplfake1")])
print([(type(e).__name__, e.level, e.message) for e in logs if "Template created" not in e.message])
print("done")
"""


def test_template_build_sends_what_the_official_sdk_sends() -> None:
    """Template.build / build_in_background / exists / tags: the same requests, bodies included
    (steps, files hashes, force, start/ready commands), upload only when the server lacks the
    files, the same log entries to on_build_logs."""
    if not Path(OFFICIAL).exists():
        pytest.fail(f"official SDK interpreter {OFFICIAL} not found (set OFFICIAL_E2B_PYTHON)")
    got, outs = [], []
    for python in (sys.executable, OFFICIAL):
        with FakeE2B() as srv:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("E2B_", "SANDBOXD_"))}
            env.update(srv.env())
            r = subprocess.run([python, "-c", TEMPLATE], env=env, capture_output=True, text=True, timeout=120)
            assert r.returncode == 0 and "done" in r.stdout, r.stdout + r.stderr
            # The archive's bytes differ (tar headers carry mtimes): only its upload is compared.
            got.append([(q["method"], q["path"], q["query_items"], None if q["method"] == "PUT" else q["body"]) for q in srv.recorder.requests])
            outs.append(r.stdout)
    assert got[0] == got[1]
    assert outs[0] == outs[1]
    assert sum(1 for m, p, *_ in got[0] if m == "PUT" and p.startswith("/upload/")) == 1
