"""Issue 5, bad input: hostile values sent to the REST API as plain HTTP (http.client, so paths
go out byte for byte), against a private `sandboxd serve` with real VMs.

Each test checks E2B's status codes with the JSON `{code, message}` body, and then that
nothing escaped the data directory (an empty canary directory next to it stays empty, and no
file anywhere under the test's root or /tmp is named after a hostile value), that the SQLite
store passes `PRAGMA integrity_check`, and that the server still lists, snapshots and creates.
"""

import base64
import http.client
import json
import os
import re
import sqlite3
import urllib.parse
from pathlib import Path

import pytest
from e2b import Sandbox

from conftest import wait_until

MARK = "pwnedxq"  # every hostile value that could become a file name contains this
UNKNOWN = "i00000000000000000000"

# Sandbox IDs, snapshot IDs and names that try to escape a directory, truncate a C string,
# blow up a buffer or confuse a decoder.
HOSTILE = [
    f"../../canary/{MARK}",
    f"..%2F..%2Fcanary%2F{MARK}",
    f"%2e%2e%2f%2e%2e%2f{MARK}",
    f"{MARK}\x00.txt",
    f"\x00{MARK}",
    f"/etc/{MARK}",
    f"local/../../{MARK}",
    f"{MARK}:../../x",
    f"{MARK}\\..\\..\\x",
    f"{MARK}\nX-Injected: 1",
    MARK + "x" * 10240,
    f"{MARK}-é-☃-𝄞-\u202e",
    f"{MARK}' OR '1'='1",
    f"{MARK}%00",
    " ",
    ".",
    "..",
]


class Api:
    """Raw HTTP against one server: the path is sent exactly as given."""

    def __init__(self, server):
        self.server = server
        self.requests = 0

    def call(self, method, path, body=None, headers=None, key=True, raw_body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=120)
        h = {"Content-Type": "application/json"}
        if key:
            h["X-API-KEY"] = self.server.key
        h.update(headers or {})
        data = raw_body if raw_body is not None else (None if body is None else json.dumps(body).encode())
        try:
            conn.request(method, path, body=data, headers=h)
            r = conn.getresponse()
            payload = r.read()
            self.requests += 1
            return r.status, dict(r.getheaders()), payload
        finally:
            conn.close()

    def json(self, method, path, body=None, **kw):
        status, headers, payload = self.call(method, path, body, **kw)
        assert status < 500, (method, path[:200], status, payload[:500])
        return status, headers, (json.loads(payload) if payload else None)

    def error(self, method, path, body=None, expect=(400, 404), **kw):
        """Asserts an E2B error with one of the `expect`ed statuses."""
        status, _, body = self.json(method, path, body, **kw)
        assert status in expect, (method, path[:200], status, body)
        assert body["code"] == status and isinstance(body["message"], str) and body["message"], body
        return status


def q(value: str) -> str:
    """One path segment or query value, every reserved byte percent-encoded."""
    return urllib.parse.quote(value, safe="")


@pytest.fixture
def hostile_server(make_sandboxd, base_template):
    server = make_sandboxd(args=["--max-sandboxes", "3"])
    canary = server.root / "canary"
    canary.mkdir()
    before = _marked_paths(server.root)
    yield server, Api(server)
    # Nothing escaped the data directory and the store is intact.
    assert list(canary.iterdir()) == [], "a hostile value created a file next to the data directory"
    assert _marked_paths(server.root) == before
    assert _marked_paths(Path("/tmp"), depth=2) == set()
    db = sqlite3.connect(f"file:{server.data / 'sandboxd.db'}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()


def _marked_paths(root: Path, depth: int = 50) -> set:
    found = set()
    base = len(root.parts)
    for dirpath, dirnames, filenames in os.walk(root):
        if len(Path(dirpath).parts) - base >= depth:
            dirnames[:] = []
        for name in dirnames + filenames:
            if MARK in name:
                found.add(os.path.join(dirpath, name))
    return found


def test_hostile_ids_and_names_touch_nothing_and_the_store_survives(hostile_server):
    server, api = hostile_server
    sbx = Sandbox.create("base", timeout=300, **server.opts)
    try:
        sid = sbx.sandbox_id
        sbx.files.write("kept.txt", "still here")
        good = Sandbox.create_snapshot(sid, **server.opts)

        for value in HOSTILE:
            seg = q(value)
            # Sandbox IDs in every per-sandbox route: unknown (404) or unparseable (400).
            api.error("GET", f"/sandboxes/{seg}")
            api.error("DELETE", f"/sandboxes/{seg}")
            api.error("GET", f"/sandboxes/{seg}/metrics")
            api.error("POST", f"/sandboxes/{seg}/timeout", {"timeout": 30})
            api.error("POST", f"/sandboxes/{seg}/refreshes", {})
            api.error("POST", f"/sandboxes/{seg}/pause")
            api.error("POST", f"/sandboxes/{seg}/connect", {"timeout": 30})
            api.error("POST", f"/v2/sandboxes/{seg}/connect", {"timeout": 30})
            api.error("POST", f"/sandboxes/{seg}/resume", {"timeout": 30})
            api.error("POST", f"/sandboxes/{seg}/snapshots", {})
            api.error("POST", f"/sandboxes/{seg}/fork", {"count": 1})
            # Snapshot IDs: deleting one that does not exist is 404.
            api.error("DELETE", f"/templates/{seg}", expect=(404,))
            api.error("DELETE", f"/templates/{seg}%3Adefault", expect=(404,))
            api.error("DELETE", f"/templates/local%2F{seg}%3Adefault", expect=(404,))
            # ... and as a template to create from: 404 (no such template), never a file lookup.
            api.error("POST", "/v2/sandboxes", {"templateID": value}, expect=(400, 404))
            api.error("POST", "/v2/sandboxes", {"templateID": f"{value}:default"}, expect=(400, 404))
            # As a snapshot name of a real, running sandbox: 400 unless it is [a-z0-9_-]+ (the
            # 10 KB one is: a name is only a database value, so it is taken, and deleted here).
            if re.fullmatch(r"[a-z0-9_-]+", value):
                status, _, snap = api.json("POST", f"/sandboxes/{sid}/snapshots", {"name": value})
                assert status == 201 and snap["snapshotID"] == f"local/{value}:default", (status, snap)
                assert api.call("DELETE", f"/templates/{q(snap['snapshotID'])}")[0] == 204
            else:
                api.error("POST", f"/sandboxes/{sid}/snapshots", {"name": value}, expect=(400,))
            # In filters: an empty list, not an error.
            for query in (f"name={seg}", f"sandboxID={seg}"):
                status, _, items = api.json("GET", f"/snapshots?{query}")
                assert (status, items) == (200, []), (value, status, items)
            status, _, items = api.json("GET", f"/v2/sandboxes?template={seg}")
            assert (status, items) == (200, []), (value, status, items)
            status, _, _ = api.json("GET", f"/v2/sandboxes?metadata={q(q(value) + '=' + q(value))}")
            assert status == 200

        # Raw (unencoded) traversal in the path: the router sees separate segments.
        for path in (f"/sandboxes/../../{MARK}", f"/templates/../../{MARK}", f"/sandboxes/%2e%2e/{MARK}",
                     f"/templates/..%2f..%2f{MARK}", "/sandboxes/%ff%fe", "/templates/%c0%ae%c0%ae"):
            for method in ("GET", "DELETE", "POST"):
                status, _, body = api.json(method, path, {})
                assert status in (400, 404, 405), (method, path, status, body)
                assert body["code"] == status

        # The envd proxy with a hostile sandbox ID header: 502 "was not found", never a route.
        for value in [v for v in HOSTILE if "\n" not in v and "\x00" not in v and v.isascii()]:
            status, _, body = api.call("GET", "/health", headers={"E2b-Sandbox-Id": value}, key=False)
            body = json.loads(body)
            assert status == 502 and body["code"] == 502 and "was not found" in body["message"], (value, body)

        # The store still works: the real sandbox and snapshot are listed and usable.
        status, _, listed = api.json("GET", "/v2/sandboxes")
        assert status == 200 and [s["sandboxID"] for s in listed] == [sid]
        status, _, snaps = api.json("GET", "/snapshots")
        assert status == 200 and [s["snapshotID"] for s in snaps] == [good.snapshot_id]
        assert sbx.files.read("kept.txt") == "still here"
        clone = Sandbox.create(good.snapshot_id, timeout=120, **server.opts)
        try:
            assert clone.files.read("kept.txt") == "still here"
        finally:
            clone.kill()
        named = Sandbox.create_snapshot(sid, name="still-valid", **server.opts)
        assert named.snapshot_id == "local/still-valid:default"
        status, _, _ = api.call("DELETE", f"/templates/{q(named.snapshot_id)}")
        assert status == 204
    finally:
        sbx.kill()
    print(f"\nhostile values: {len(HOSTILE)} values, {api.requests} requests")


def test_bad_timeouts_are_400_and_change_nothing(hostile_server):
    server, api = hostile_server
    sbx = Sandbox.create("base", timeout=300, **server.opts)
    try:
        sid = sbx.sandbox_id
        end_at = api.json("GET", f"/sandboxes/{sid}")[2]["endAt"]
        bad = [-1, -(2**31), -(2**63), 86401, 2**31, 2**63 - 1, 2**63, 2**64, 10**30, 1.5, 1e300, "30", "", True, [],
               {"x": 1}]
        for t in bad:
            for route in ("/sandboxes", "/v2/sandboxes"):
                api.error("POST", route, {"templateID": "base", "timeout": t}, expect=(400,))
            api.error("POST", f"/sandboxes/{sid}/timeout", {"timeout": t}, expect=(400,))
            api.error("POST", f"/sandboxes/{sid}/refreshes", {"duration": t}, expect=(400,))
            api.error("POST", f"/sandboxes/{sid}/connect", {"timeout": t}, expect=(400,))
            api.error("POST", f"/sandboxes/{sid}/fork", {"count": 1, "timeout": t}, expect=(400,))
        for t in (0, -5):
            api.error("POST", "/v2/sandboxes", {"templateID": "base", "timeout": t}, expect=(400,))
            api.error("POST", f"/sandboxes/{sid}/connect", {"timeout": t}, expect=(400,))
        for count in (0, -1, 101, 2**40, 2**64, "2", 1.5):
            api.error("POST", f"/sandboxes/{sid}/fork", {"count": count}, expect=(400,))
        api.error("POST", f"/sandboxes/{sid}/refreshes", {"duration": 3601}, expect=(400,))
        # Nothing was created or changed: one sandbox, same deadline, still answering.
        status, _, listed = api.json("GET", "/v2/sandboxes")
        assert [s["sandboxID"] for s in listed] == [sid]
        assert api.json("GET", f"/sandboxes/{sid}")[2]["endAt"] == end_at
        assert api.json("GET", "/snapshots")[2] == []
        assert sbx.commands.run("echo ok").stdout == "ok\n"
    finally:
        sbx.kill()


def _token(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def test_pagination_limits_and_forged_or_cross_order_tokens(hostile_server):
    server, api = hostile_server
    a = Sandbox.create("base", timeout=300, **server.opts)
    b = Sandbox.create("base", timeout=300, **server.opts)
    try:
        for route in ("/v2/sandboxes", "/snapshots"):
            for limit in ("0", "101", "-1", "99999999999999999999", "1.5", "", "1e2", "%00", "0x10"):
                api.error("GET", f"{route}?limit={limit}", expect=(400,))
        # Real tokens for both orders.
        s, h, page = api.json("GET", "/v2/sandboxes?limit=1")
        desc = h.get("x-next-token") or h.get("X-Next-Token")
        assert s == 200 and len(page) == 1 and desc
        s, h, page_asc = api.json("GET", "/v2/sandboxes?limit=1&order=asc")
        asc = h.get("x-next-token") or h.get("X-Next-Token")
        assert s == 200 and len(page_asc) == 1 and asc
        s, h, rest = api.json("GET", f"/v2/sandboxes?limit=1&nextToken={desc}")
        assert s == 200 and {page[0]["sandboxID"], rest[0]["sandboxID"]} == {a.sandbox_id, b.sandbox_id}
        assert not (h.get("x-next-token") or h.get("X-Next-Token"))
        # A token minted for the other order: 400.
        api.error("GET", f"/v2/sandboxes?limit=1&order=asc&nextToken={desc}", expect=(400,))
        api.error("GET", f"/v2/sandboxes?limit=1&nextToken={asc}", expect=(400,))
        api.error("GET", f"/snapshots?limit=1&nextToken={asc}", expect=(400,))
        # Forged tokens: garbage, tampered, injected, huge: 400; a well-formed one for a row
        # that does not exist pages from that point (200), like any keyset cursor.
        ts = "2026-01-01T00:00:00.000000000Z"
        for forged in ("x", "====", q("!!!"), desc[:-3] + "AAA", _token("no separator"),
                       _token(f"{ts}__{MARK}' OR '1'='1"), _token(f"{ts}__../../{MARK}"),
                       _token(f"not-a-time__{UNKNOWN}"), _token(f"{ts}__"), q(_token(f"{ts}__a\x00b")),
                       "A" * 10240, q("\u2603"), "%ff%fe"):
            for route in ("/v2/sandboxes", "/snapshots"):
                status, _, body = api.json("GET", f"{route}?limit=1&nextToken={forged}")
                assert status in (200, 400), (forged, status, body)
                if status == 400:
                    assert body["code"] == 400 and body["message"]
        for route in ("/v2/sandboxes", "/snapshots"):
            s, _, items = api.json("GET", f"{route}?nextToken={_token(f'1970-01-01T00:00:00Z__{UNKNOWN}')}")
            assert s == 200 and items == []
            s, _, items = api.json("GET", f"{route}?nextToken={_token(f'2200-01-01T00:00:00Z__zzzz')}")
            assert s == 200 and len(items) == (2 if route == "/v2/sandboxes" else 0), items
            # Beyond what a timestamp can hold: 400, not an overflow.
            api.error("GET", f"{route}?nextToken={_token(f'2999-01-01T00:00:00Z__zzzz')}", expect=(400,))
        assert len(api.json("GET", "/v2/sandboxes")[2]) == 2
    finally:
        a.kill()
        b.kill()


def test_thousands_of_metadata_keys_and_oversized_bodies(hostile_server):
    server, api = hostile_server
    metadata = {f"k{i:05d}": f"v{i}" for i in range(5000)}
    metadata.update({f"../../{MARK}": "x", f"{MARK}\x00": "nul", "é☃": "𝄞", "": "empty key"})
    s, _, created = api.json("POST", "/v2/sandboxes", {"templateID": "base", "timeout": 120, "metadata": metadata})
    assert s == 201, created
    sid = created["sandboxID"]
    try:
        s, _, detail = api.json("GET", f"/sandboxes/{sid}")
        assert s == 200 and detail["metadata"] == metadata
        s, _, listed = api.json("GET", f"/v2/sandboxes?metadata={q(q('k04999') + '=' + q('v4999'))}")
        assert s == 200 and [x["sandboxID"] for x in listed] == [sid]
        s, _, listed = api.json("GET", f"/v2/sandboxes?metadata={q(q('k04999') + '=' + q('nope'))}")
        assert s == 200 and listed == []
        # Bodies over 1 MiB: 413, whether sized up front or chunked.
        huge = {"templateID": "base", "metadata": {f"k{i:07d}": "v" * 16 for i in range(60000)}}
        raw = json.dumps(huge).encode()
        assert len(raw) > 1 << 20
        status = _send_sized(api, raw)
        assert status == 413
        status = _send_chunked(server, raw)
        assert status == 413
        # Nothing extra was created by the rejected bodies.
        assert [x["sandboxID"] for x in api.json("GET", "/v2/sandboxes")[2]] == [sid]
    finally:
        api.call("DELETE", f"/sandboxes/{sid}")
    s, _, listed = api.json("GET", "/v2/sandboxes")
    assert (s, listed) == (200, [])


def _send_sized(api, raw):
    """sandboxd reads and drops the excess of an oversized body before answering 413, so a
    client that writes the whole body before reading still gets the answer (no reset)."""
    status, _, body = api.call("POST", "/v2/sandboxes", raw_body=raw)
    assert json.loads(body)["code"] == status
    return status


def _send_chunked(server, raw):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.putrequest("POST", "/v2/sandboxes")
        conn.putheader("X-API-KEY", server.key)
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for i in range(0, len(raw), 65536):
            chunk = raw[i:i + 65536]
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
        r = conn.getresponse()
        body = json.loads(r.read())
        assert body["code"] == r.status
        assert r.getheader("Connection") == "close"
        return r.status
    finally:
        conn.close()


def test_upload_larger_than_the_free_guest_disk_is_507(sandbox):
    """envd answers 507 when the guest disk is full (the SDK's NotEnoughSpaceException), and
    the same upload works once space is freed."""
    from e2b.exceptions import NotEnoughSpaceException

    home = sandbox.commands.run("echo $HOME").stdout.strip()
    # Fill the filesystem the upload goes to: fallocate most of it, then dd the rest.
    fill = (f"set -e; avail=$(df -B1 --output=avail {home} | tail -1); "
            f"fallocate -l $((avail - 1048576)) /var/tmp/filler; "
            f"dd if=/dev/zero of=/var/tmp/filler2 bs=64k 2>/dev/null || true; sync; "
            f"df -B1 --output=avail {home} | tail -1")
    left = int(sandbox.commands.run(fill, user="root", timeout=300).stdout.split()[-1])
    assert left < 1 << 20, left
    blob = os.urandom(8 << 20)
    with pytest.raises(NotEnoughSpaceException):
        sandbox.files.write("big.bin", blob)
    # Freed space: the same upload goes through, byte for byte. The refused upload's connection
    # was closed with `Connection: close`, so the very next call must work (no retry).
    assert sandbox.commands.run("rm -f /var/tmp/filler /var/tmp/filler2; sync", user="root").exit_code == 0
    sandbox.files.write("big.bin", blob)
    assert sandbox.files.read("big.bin", format="bytes") == blob
    assert sandbox.commands.run("echo ok").stdout == "ok\n"
