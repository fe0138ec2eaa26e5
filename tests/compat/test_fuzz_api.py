"""Issue 5, bad input: schema-driven fuzzing of the REST API from server/openapi.yaml.

schemathesis generates requests for every documented operation, valid ones and invalid ones
(wrong types, out-of-range numbers, missing required fields, odd strings), and sends them with
the API key to a real `sandboxd serve`. Every answer must be a documented status, never a 5xx,
conform to the documented schema, and every error must be E2B's JSON `{code, message}` with
`code` equal to the status. Sandboxes and snapshots a request happens to create are deleted
right after it (the server is capped at 2 running sandboxes). Afterwards the server is still
healthy and still creates a working sandbox.

CI runs FUZZ_EXAMPLES (default 15) examples per operation and generation mode; set
SANDBOXD_SLOW_TESTS=1 (or FUZZ_EXAMPLES) for a larger run. The number of requests sent is
printed at the end (`-s` or the -ra summary).
"""

import json
import os
import urllib.request
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import ROOT, Sandboxd, build_base_template

OPENAPI = ROOT / "server" / "openapi.yaml"
SLOW = os.environ.get("SANDBOXD_SLOW_TESTS") == "1"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or (200 if SLOW else 15))

SENT = {"requests": 0, "operations": set(), "created": 0, "by_status": {}}


@pytest.fixture(scope="module")
def fuzz_server():
    import shutil
    import tempfile

    build_base_template()
    server = Sandboxd(Path(tempfile.mkdtemp(prefix="sandboxd-fuzz-")), args=["--max-sandboxes", "2"])
    server.start()
    try:
        yield server
    finally:
        server.stop()
        print(f"\nfuzzed {SENT['requests']} requests over {len(SENT['operations'])} operations "
              f"({EXAMPLES} examples per operation and mode; {SENT['created']} sandboxes/snapshots "
              f"created and deleted); statuses: {dict(sorted(SENT['by_status'].items()))}")
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="module")
def api_schema(fuzz_server):
    schema = schemathesis.openapi.from_path(str(OPENAPI))
    schema.config.update(base_url=fuzz_server.url)
    schema.config.generation.update(
        modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
        max_examples=EXAMPLES,
        deterministic=not SLOW,
        database="none",
    )
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schemathesis.check
def error_body_is_e2b_json(ctx, response, case):
    """Every 4xx/5xx body is `{"code": <status>, "message": "<non-empty>"}`."""
    if response.status_code < 400:
        return None
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    assert body.get("code") == response.status_code, body
    assert isinstance(body.get("message"), str) and body["message"], body
    return None


def _cleanup(server, response):
    """Deletes what a successful fuzzed request created (sandboxes, snapshots)."""
    if response.status_code not in (200, 201):
        return
    try:
        body = response.json()
    except ValueError:
        return
    items = body if isinstance(body, list) else [body]
    for item in items:
        if not isinstance(item, dict):
            continue
        sandbox = item.get("sandbox") if "sandbox" in item else item
        if isinstance(sandbox, dict) and sandbox.get("sandboxID") and response.request.method == "POST":
            _delete(server, f"/sandboxes/{sandbox['sandboxID']}")
        if item.get("snapshotID") and response.request.method == "POST":
            _delete(server, "/templates/" + urllib.request.quote(item["snapshotID"], safe=""))


def _delete(server, path):
    SENT["created"] += 1
    req = urllib.request.Request(server.url + path, method="DELETE", headers={"X-API-KEY": server.key})
    with urllib.request.urlopen(req, timeout=60):
        pass


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_fuzz_rest_api(case, fuzz_server):
    response = case.call(headers={"X-API-KEY": fuzz_server.key}, timeout=120)
    SENT["requests"] += 1
    SENT["operations"].add(f"{case.operation.method.upper()} {case.operation.path}")
    SENT["by_status"][response.status_code] = SENT["by_status"].get(response.status_code, 0) + 1
    try:
        case.validate_response(
            response,
            checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                    response_schema_conformance, error_body_is_e2b_json],
        )
    finally:
        _cleanup(fuzz_server, response)


def test_fuzz_left_the_server_healthy_and_working(fuzz_server):
    """After the fuzzing the server answers, lists, and still creates and kills a sandbox."""
    assert SENT["requests"] > 0, "the fuzz test did not run first"
    with urllib.request.urlopen(fuzz_server.url + "/health", timeout=10) as r:
        assert r.status == 200
    from e2b import Sandbox

    sbx = Sandbox.create("base", timeout=120, **fuzz_server.opts)
    try:
        assert sbx.commands.run("echo alive").stdout == "alive\n"
    finally:
        sbx.kill()
