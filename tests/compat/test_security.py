"""Issue 5, security: API keys, envd access tokens, network isolation of guests, and where
sandboxd listens. Real `sandboxd serve` processes and real microVMs; raw HTTP where the SDK
would hide the detail under test.
"""

import hashlib
import http.client
import json
import os
import socket
import sqlite3
import subprocess
import tempfile
import threading
from pathlib import Path

import pytest
import yaml
from e2b import Sandbox

from conftest import ROOT, templates_dir, wait_until

UNKNOWN = "i00000000000000000000"
OPENAPI = ROOT / "server" / "openapi.yaml"


def _routes():
    doc = yaml.safe_load(OPENAPI.read_text())
    for path, item in doc["paths"].items():
        for method in ("get", "post", "put", "delete", "patch"):
            if method in item:
                yield method.upper(), path, item[method].get("security")


def _concrete(path):
    return path.replace("{sandboxID}", UNKNOWN).replace("{templateID}", "abcdefghij%3Adefault")


def _http(port, method, path, headers=None, body=None, host="127.0.0.1", timeout=60):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


# --- API keys -------------------------------------------------------------------------------


def test_every_route_needs_this_servers_api_key(make_sandboxd):
    """No key, a wrong key, a malformed key, another server's key: 401 JSON on every documented
    route (only /health, documented with `security: []`, is open)."""
    a = make_sandboxd()
    b = make_sandboxd()
    assert a.key != b.key
    bad_keys = {
        "none": None,
        "empty": "",
        "wrong": "e2b_" + "0" * 40,
        "other server's": b.key,
        "uppercased": a.key.upper(),
        "prefix": a.key[:-1],
        "longer": a.key + "0",
        "bearer only": None,
    }
    checked = 0
    for method, path, security in _routes():
        body = b'{"templateID": "base", "timeout": 30}' if method == "POST" else None
        if security == []:
            assert (method, path) == ("GET", "/health")
            assert _http(a.port, method, path)[0] == 200
            continue
        for what, key in bad_keys.items():
            headers = {"Content-Type": "application/json"}
            if key is not None:
                headers["X-API-KEY"] = key
            if what == "bearer only":
                headers["Authorization"] = f"Bearer {a.key}"
            status, payload = _http(a.port, method, _concrete(path), headers, body)
            assert status == 401, (method, path, what, status, payload)
            err = json.loads(payload)
            assert err["code"] == 401 and err["message"], err
            checked += 1
        # The right key gets past authentication (whatever the route then answers).
        status, _ = _http(a.port, method, _concrete(path), {"X-API-KEY": a.key, "Content-Type": "application/json"},
                          b'{"templateID": "nope", "timeout": 30}' if method == "POST" else None)
        assert status != 401, (method, path)
    assert checked >= 17 * len(bad_keys)
    print(f"\n401 checked on {checked} (route, bad key) pairs")


def test_api_key_is_stored_hashed_only(make_sandboxd, base_template):
    """The key file is 0600; no other file in the data directory, the SQLite database (and its
    WAL) included, contains the key in plain text; the database holds its SHA-256."""
    server = make_sandboxd()
    key = server.key.encode()
    key_file = server.data / "api_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    # Some state worth scanning: a running VM, a snapshot, a paused sandbox.
    sbx = Sandbox.create("base", timeout=120, **server.opts)
    snap = sbx.create_snapshot()
    sbx.pause()
    db = sqlite3.connect(f"file:{server.data / 'sandboxd.db'}?mode=ro", uri=True)
    try:
        hashes = [bytes(r[0]) for r in db.execute("SELECT hash FROM api_keys")]
    finally:
        db.close()
    assert hashes == [hashlib.sha256(key).digest()]
    scanned = 0
    for path in server.data.rglob("*"):
        # store.img is the sparse XFS image mounted on store/, whose files are scanned instead.
        if path in (key_file, server.data / "store.img") or not path.is_file() or path.is_symlink():
            continue
        assert not _file_contains(path, key), f"{path} holds the API key in plain text"
        assert not _file_contains(path, key.upper()), path
        scanned += 1
    assert scanned > 3
    print(f"\nscanned {scanned} files of the data directory for the key")
    Sandbox.kill(sbx.sandbox_id, **server.opts)
    Sandbox.delete_snapshot(snap.snapshot_id, **server.opts)


def _file_contains(path: Path, needle: bytes) -> bool:
    overlap = len(needle) - 1
    tail = b""
    with open(path, "rb") as f:
        while chunk := f.read(8 << 20):
            if needle in tail + chunk:
                return True
            tail = chunk[-overlap:]
    return False


# --- envd access tokens ---------------------------------------------------------------------


def _envd_list(port, sandbox_id, token=None, direct=None):
    """`process.Process/List` through sandboxd's proxy, or straight to envd's address."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["X-Access-Token"] = token
    if direct:
        host, dport = direct.rsplit(":", 1)
        return _http(int(dport), "POST", "/process.Process/List", headers, b"{}", host=host)
    headers.update({"E2b-Sandbox-Id": sandbox_id, "E2b-Sandbox-Port": "49983"})
    return _http(port, "POST", "/process.Process/List", headers, b"{}")


def _token(server, sandbox_id):
    status, body = _http(server.port, "GET", f"/sandboxes/{sandbox_id}", {"X-API-KEY": server.key})
    assert status == 200, body
    return json.loads(body).get("envdAccessToken")


def _envd_addr(server, sandbox_id):
    db = sqlite3.connect(f"file:{server.data / 'sandboxd.db'}?mode=ro", uri=True)
    try:
        (vm,) = db.execute("SELECT vm FROM sandboxes WHERE id = ?", (sandbox_id,)).fetchone()
    finally:
        db.close()
    return json.loads(vm)["envd_addr"]


def test_envd_tokens_are_required_per_sandbox_and_new_for_every_clone(make_sandboxd, base_template):
    server = make_sandboxd(args=["--max-sandboxes", "3"])
    a = Sandbox.create("base", timeout=300, **server.opts)  # `secure` is the default
    b = Sandbox.create("base", timeout=300, **server.opts)
    try:
        ta, tb = _token(server, a.sandbox_id), _token(server, b.sandbox_id)
        assert ta and tb and ta != tb and len(ta) >= 32
        addr_a, addr_b = _envd_addr(server, a.sandbox_id), _envd_addr(server, b.sandbox_id)
        for route in (None, "direct"):
            da = addr_a if route else None
            db_ = addr_b if route else None
            # No token, a wrong one, the other sandbox's: 401 Connect `unauthenticated`.
            for sid, token, direct in ((a.sandbox_id, None, da), (a.sandbox_id, "x" * 64, da),
                                       (a.sandbox_id, tb, da), (b.sandbox_id, ta, db_), (a.sandbox_id, "", da)):
                status, body = _envd_list(server.port, sid, token, direct)
                assert status == 401, (route, sid, status, body)
                assert json.loads(body)["code"] == "unauthenticated"
            assert _envd_list(server.port, a.sandbox_id, ta, da)[0] == 200
            assert _envd_list(server.port, b.sandbox_id, tb, db_)[0] == 200
        # Files too (a download without the token or a signature).
        status, _ = _http(server.port, "GET", "/files?path=/etc/hostname",
                          {"E2b-Sandbox-Id": a.sandbox_id, "X-Access-Token": tb})
        assert status == 401

        # A clone restored from A's snapshot gets its own token; A's no longer opens it.
        snap = a.create_snapshot()
        clone = Sandbox.create(snap.snapshot_id, timeout=120, **server.opts)
        try:
            tc = _token(server, clone.sandbox_id)
            assert tc and tc not in (ta, tb)
            assert _envd_list(server.port, clone.sandbox_id, ta)[0] == 401
            assert _envd_list(server.port, clone.sandbox_id, tc)[0] == 200
            assert _envd_list(server.port, clone.sandbox_id, tc, _envd_addr(server, clone.sandbox_id))[0] == 200
            assert _envd_list(server.port, a.sandbox_id, tc)[0] == 401
            assert clone.commands.run("echo clone").stdout == "clone\n"
        finally:
            clone.kill()
            Sandbox.delete_snapshot(snap.snapshot_id, **server.opts)

        # Pause + resume keeps the sandbox's own token, as E2B does (it derives the token from
        # the sandbox ID): the SDK's instance `connect()` goes on using the token it holds.
        b.pause()
        b.connect(timeout=120)
        assert _token(server, b.sandbox_id) == tb
        assert _envd_list(server.port, b.sandbox_id, tb)[0] == 200
        assert _envd_list(server.port, b.sandbox_id, ta)[0] == 401
        assert b.commands.run("echo resumed").stdout == "resumed\n"
    finally:
        a.kill()
        Sandbox.kill(b.sandbox_id, **server.opts)


def test_insecure_sandbox_needs_no_token(make_sandboxd, base_template):
    """`secure: false` is the explicit opt-out: no token issued, envd open (control for the
    test above)."""
    server = make_sandboxd()
    status, body = _http(server.port, "POST", "/v2/sandboxes",
                         {"X-API-KEY": server.key, "Content-Type": "application/json"},
                         json.dumps({"templateID": "base", "timeout": 60, "secure": False}).encode())
    assert status == 201, body
    sid = json.loads(body)["sandboxID"]
    try:
        assert _token(server, sid) is None
        assert _envd_list(server.port, sid)[0] == 200
    finally:
        _http(server.port, "DELETE", f"/sandboxes/{sid}", {"X-API-KEY": server.key})


# --- network isolation ----------------------------------------------------------------------

PROBE = r"""
import json, socket, struct, sys, threading, time
results = {}
def probe(spec):
    kind, host, port = spec.split("|")
    t0 = time.monotonic()
    try:
        if kind == "tcp":
            s = socket.create_connection((host, int(port)), timeout=5)
            s.close()
            r = "open"
        elif kind == "dns":
            socket.getaddrinfo(host, 80)
            r = "open"
        else:  # a raw DNS query over UDP
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.settimeout(5)
            q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + b"\x07example\x03com\x00\x00\x01\x00\x01"
            s.sendto(q, (host, int(port)))
            s.recvfrom(512)
            r = "open"
    except Exception as e:
        r = f"{type(e).__name__}: {e}"
    results[spec] = [r, round(time.monotonic() - t0, 2)]
threads = [threading.Thread(target=probe, args=(spec,)) for spec in sys.argv[1:]]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(results))
"""


class Listener:
    """A TCP listener on the host that counts the connections it accepts."""

    def __init__(self, host):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            c.close()

    def close(self):
        self.sock.close()


def _host_ips():
    out = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
    return [f.split()[3].split("/")[0] for f in out.splitlines() if " lo " not in f and "sbxd" not in f]


def _probe(sbx, specs):
    sbx.files.write("/tmp/probe.py", PROBE)
    out = sbx.commands.run("python3 /tmp/probe.py " + " ".join(f"'{s}'" for s in specs), timeout=120).stdout
    return json.loads(out)


def _can_reach_from_host(host, port):
    try:
        socket.create_connection((host, port), timeout=5).close()
        return True
    except OSError:
        return False


def _isolated():
    return os.geteuid() == 0 and os.environ.get("SANDBOXD_NETNS") != "off"


@pytest.mark.skipif(not _isolated(), reason="network namespaces need root (SANDBOXD_NETNS not off)")
def test_guests_reach_neither_the_host_nor_each_other(make_sandboxd, base_template):
    server = make_sandboxd(args=["--max-sandboxes", "3"])
    anywhere = Listener("0.0.0.0")
    loopback = Listener("127.0.0.1")
    a = Sandbox.create("base", timeout=300, **server.opts)
    b = Sandbox.create("base", timeout=300, **server.opts)
    try:
        host_side_a = _envd_addr(server, a.sandbox_id).split(":")[0].rsplit(".", 1)
        veth_host = f"{host_side_a[0]}.{int(host_side_a[1]) - 1}"  # the host's end of A's /30
        envd_b = _envd_addr(server, b.sandbox_id)
        blocked = []
        for ip in ["10.0.2.2", veth_host, *_host_ips()]:
            for port in (server.port, anywhere.port, loopback.port):
                blocked.append(f"tcp|{ip}|{port}")
        blocked.append(f"tcp|{envd_b.replace(':', '|')}")          # B's envd forward
        blocked.append(f"tcp|{veth_host.rsplit('.', 1)[0]}.1|{anywhere.port}")  # slot 0's host end
        # A control the probe can reach, so "blocked" is not just a broken probe: envd itself.
        controls = ["tcp|127.0.0.1|49983"]
        internet = _can_reach_from_host("1.1.1.1", 80)
        if internet:
            controls.append("tcp|1.1.1.1|80")
        results = _probe(a, blocked + controls)
        for spec in controls:
            assert results[spec][0] == "open", (spec, results[spec])
        for spec in blocked:
            assert results[spec][0] != "open", (spec, results[spec])
        assert anywhere.accepted == 0 and loopback.accepted == 0
        # The host still reaches both sandboxes (through sandboxd) and they still work.
        assert b.commands.run("echo b").stdout == "b\n"
        print(f"\nblocked from a guest: {len(blocked)} (address, port) pairs; "
              f"slowest refusal {max(results[s][1] for s in blocked)} s; internet control: {internet}")
    finally:
        a.kill()
        b.kill()
        anywhere.close()
        loopback.close()


@pytest.mark.skipif(not _isolated(), reason="network namespaces need root (SANDBOXD_NETNS not off)")
def test_no_internet_access_blocks_all_egress(make_sandboxd, base_template):
    server = make_sandboxd()
    anywhere = Listener("0.0.0.0")
    sbx = Sandbox.create("base", timeout=300, allow_internet_access=False, **server.opts)
    try:
        assert Sandbox.get_info(sbx.sandbox_id, **server.opts).allow_internet_access is False
        specs = ["tcp|1.1.1.1|80", "tcp|8.8.8.8|53", "tcp|1.1.1.1|443", "udp|8.8.8.8|53", "udp|10.0.2.3|53",
                 "dns|example.com|0", f"tcp|10.0.2.2|{anywhere.port}", f"tcp|10.0.2.2|{server.port}"]
        specs += [f"tcp|{ip}|{anywhere.port}" for ip in _host_ips()]
        results = _probe(sbx, specs + ["tcp|127.0.0.1|49983"])
        assert results["tcp|127.0.0.1|49983"][0] == "open"
        for spec in specs:
            assert results[spec][0] != "open", (spec, results[spec])
        assert anywhere.accepted == 0
        # The host-side forward to envd is kept: the sandbox is fully usable.
        assert sbx.commands.run("echo still").stdout == "still\n"
        print(f"\negress blocked: {len(specs)} probes, slowest {max(results[s][1] for s in specs)} s")
    finally:
        sbx.kill()
        anywhere.close()


# --- where sandboxd listens -----------------------------------------------------------------


def _serve(args, data):
    binary = os.environ.get("SANDBOXD_BIN", str(ROOT / "target" / "debug" / "sandboxd"))
    return subprocess.Popen(
        [binary, "serve", "--data-dir", str(data), "--templates-dir", str(templates_dir()), *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        # A plain store: no XFS image to loop-mount (and unmount) for these short-lived servers.
        env={k: v for k, v in {**os.environ, "RUST_LOG": "sandboxd=info,warn", "SANDBOXD_STORE": "plain"}.items()
             if k != "SANDBOXD_LISTEN"},
    )


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.stdout.read()


def test_listens_on_loopback_unless_remote_is_explicitly_allowed():
    other_ips = _host_ips()
    with tempfile.TemporaryDirectory(prefix="sandboxd-listen-") as tmp:
        # Non-loopback without --allow-remote: refuses to start.
        port = _free_port()
        proc = _serve(["--listen", f"0.0.0.0:{port}"], Path(tmp) / "a")
        try:
            proc.wait(timeout=60)
        finally:
            log = _stop(proc)
        assert proc.returncode != 0 and "--allow-remote" in log, log

        # With the flag: serves on every address, and warns.
        port = _free_port()
        proc = _serve(["--listen", f"0.0.0.0:{port}", "--allow-remote"], Path(tmp) / "b")
        try:
            wait_until(lambda: _health(("127.0.0.1", port)), 60, "sandboxd --allow-remote to serve")
            for ip in other_ips:
                assert _health((ip, port)), ip
        finally:
            log = _stop(proc)
        assert "WARN" in log and "non-loopback" in log, log

        # Default: 127.0.0.1:49982 only (checked when that port is free on this machine).
        help_text = subprocess.run([os.environ.get("SANDBOXD_BIN", str(ROOT / "target/debug/sandboxd")),
                                    "serve", "--help"], capture_output=True, text=True).stdout
        assert "[default: 127.0.0.1:49982]" in help_text, help_text
        if _port_free(49982):
            proc = _serve([], Path(tmp) / "c")
            try:
                wait_until(lambda: _health(("127.0.0.1", 49982)), 60, "sandboxd on its default address")
                for ip in other_ips:
                    assert not _health((ip, 49982)), f"default listen reachable on {ip}"
            finally:
                _stop(proc)


def _port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False


def _health(addr):
    try:
        status, _ = _http(addr[1], "GET", "/health", host=addr[0], timeout=2)
        return status == 200
    except OSError:
        return False
