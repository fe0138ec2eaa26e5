"""Network controls through the official SDK: egress `allow_out`/`deny_out` (IPs, CIDRs,
domains by Host/SNI, ALL_TRAFFIC), live `update_network`, persistence across pause/resume,
`allow_public_traffic=False` with its traffic access token, `mask_request_host`, bad input.

Destinations are HTTP/TLS servers this test runs on the host in a network namespace of its
own, on addresses of 198.18.0.0/15 (benchmarking range: not private, so sandboxd's global
rules let sandboxes reach it); nothing ever goes to an outside address."""

import json
import os
import random
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import wait_until
from dest_net import destination
from guest_net import ECHO_HTTP, PROBE, probe, request, start
from official_js import run_js

ALL_TRAFFIC = "0.0.0.0/0"

# Answers HTTP on 80 and 8080 and TLS (self-signed) on 443 with the address it was reached
# on and the Host it was asked for.
DEST_SERVER = r'''
import http.server, ssl, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("at=%s host=%s" % (self.connection.getsockname()[0], self.headers.get("Host"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
servers = [http.server.ThreadingHTTPServer(("0.0.0.0", p), H) for p in (80, 8080, 443)]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
servers[2].socket = ctx.wrap_socket(servers[2].socket, server_side=True)
for s in servers:
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
'''


@pytest.fixture(scope="module")
def dest():
    """A namespace holding 198.18.<k>.10, .11 and 198.18.<k+1>.10, routed from the host."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    k = random.randrange(0, 250, 2)
    ips = {"a": f"198.18.{k}.10", "b": f"198.18.{k}.11", "c": f"198.18.{k + 1}.10"}
    d = Path(tempfile.mkdtemp(prefix="e2b-egress-"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=dest",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")], check=True, capture_output=True)
    (d / "server.py").write_text(DEST_SERVER)
    with destination("e2bt", k, ips.values(), f"198.18.{k}.0/23", d / "server.py", (d / "cert.pem", d / "key.pem")):
        yield ips


def http(ip, host=None, port=80):
    return {"kind": "http", "ip": ip, "port": port, "host": host or ip}


def tls(ip, sni):
    return {"kind": "tls", "ip": ip, "port": 443, "host": sni}


def ok(result, at=None, host=None):
    return result.startswith("OK ") and (at is None or f"at={at} " in result) and (host is None or f"host={host}" in result)


def refused(result):
    return result.startswith("ERR ")


def _api(server_url, key, method, path, body=None):
    req = urllib.request.Request(server_url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"X-API-Key": key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_egress_rules_live_updates_and_resume(base_template, dest):
    from e2b import Sandbox

    a, b, c = dest["a"], dest["b"], dest["c"]
    # allow wins over deny: .10 is allowed inside a denied /24.
    sbx = Sandbox.create(base_template, timeout=300, network={"allow_out": [a], "deny_out": [f"{a.rsplit('.', 1)[0]}.0/24"]})
    try:
        sbx.files.write("/tmp/probe.py", PROBE)
        r = probe(sbx, [http(a), http(b), http(c)])
        assert ok(r[0], at=a) and refused(r[1]) and ok(r[2], at=c), r
        info = Sandbox.get_info(sbx.sandbox_id)
        assert info.network["allow_out"] == [a] and info.network["deny_out"] == [f"{a.rsplit('.', 1)[0]}.0/24"]

        # Domains: deny everything, allow one name (HTTP Host on 80, TLS SNI on 443) and one
        # wildcard; only 80/443 are inspected, so 8080 stays closed even for an allowed name.
        sbx.update_network({"allow_out": ["allowed.test", "*.wild.test"], "deny_out": [ALL_TRAFFIC]})
        r = probe(sbx, [http(a, "allowed.test"), http(b, "other.test"), http(a), http(c, "x.wild.test"),
                        http(a, "allowed.test", 8080), tls(a, "allowed.test"), tls(a, "denied.test")])
        assert ok(r[0], at=a, host="allowed.test") and refused(r[1]) and refused(r[2]), r
        assert ok(r[3], at=c, host="x.wild.test") and refused(r[4]), r
        assert ok(r[5], at=a, host="allowed.test") and refused(r[6]), r

        # ALL_TRAFFIC denied with an IP allowed; the rules survive a pause and resume.
        sbx.update_network({"allow_out": [b], "deny_out": [ALL_TRAFFIC]})
        sbx.pause()
        # A paused sandbox has no network to change: 409, and its rules stay as they were.
        with pytest.raises(Exception) as e:
            Sandbox.update_network(sbx.sandbox_id, {})
        assert getattr(e.value, "status_code", None) == 409 or "409" in str(e.value), e.value
        sbx = Sandbox.connect(sbx.sandbox_id, timeout=300)
        r = probe(sbx, [http(a), http(b), http(c)])
        assert refused(r[0]) and ok(r[1], at=b) and refused(r[2]), r

        # A malformed update is a 400 and changes nothing.
        for bad in ({"allow_out": ["10.0.0.0/33"]}, {"deny_out": ["example.com"]}, {"allow_out": ["bad_domain!"]},
                    {"allow_out": ["allowed.test"]}):
            with pytest.raises(Exception) as e:
                sbx.update_network(bad)
            assert getattr(e.value, "status_code", None) == 400 or "400" in str(e.value), (bad, e.value)
        assert Sandbox.get_info(sbx.sandbox_id).network["allow_out"] == [b]

        # An empty update clears every rule.
        sbx.update_network({})
        r = probe(sbx, [http(a), http(b)])
        assert ok(r[0], at=a) and ok(r[1], at=b), r
    finally:
        sbx.kill()


def test_no_internet_access_allows_only_allowed_and_kill_gives_404(base_template, dest, sandboxd):
    from e2b import Sandbox
    from e2b.exceptions import SandboxNotFoundException

    a, b = dest["a"], dest["b"]
    sbx = Sandbox.create(base_template, timeout=300, allow_internet_access=False, network={"allow_out": [a]})
    sbx.files.write("/tmp/probe.py", PROBE)
    r = probe(sbx, [http(a), http(b)])
    assert ok(r[0], at=a) and refused(r[1]), r
    # Turned back on live.
    sbx.update_network({"allow_internet_access": True})
    r = probe(sbx, [http(b)])
    assert ok(r[0], at=b), r
    sbx.kill()
    with pytest.raises(SandboxNotFoundException):
        Sandbox.update_network(sbx.sandbox_id, {"allow_out": [a]})


def test_names_resolve_through_the_hosts_resolver(sandboxd, base_template):
    """The guest asks slirp's DNS (10.0.2.3), which asks the host's resolv.conf nameservers; on
    hosts whose resolver sits in a private range (10.255.255.53 here) the shared table used to
    drop those queries with the rest of the private ranges, so no name resolved in a sandbox."""
    from e2b import Sandbox

    resolver = next((l.split()[1] for l in open("/etc/resolv.conf") if l.startswith("nameserver")), None)
    host = "pypi.org"  # a registry this kind of machine reaches
    import socket

    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        pytest.skip(f"the host itself cannot resolve {host} (resolver {resolver})")
    sbx = Sandbox.create(base_template, timeout=120)
    try:
        r = sbx.commands.run(f"getent ahostsv4 {host} | head -1", timeout=60)
        assert r.stdout.split()[:1] and r.stdout.split()[0].count(".") == 3, (resolver, r.stdout, r.stderr)
    finally:
        sbx.kill()


def test_bad_network_requests_are_400(sandboxd, base_template):
    key = os.environ["E2B_API_KEY"]
    bad = [
        {"denyOut": ["not a cidr"]},
        {"allowOut": ["example.com"]},  # domains need ALL_TRAFFIC denied
        {"allowOut": ["1.2.3.4/40"]},
        {"allowPublicTraffic": False},  # needs secure
        {"maskRequestHost": "exämple.com"},
        {"egressProxy": {"address": "proxy.example.com:1080"}},
        {"rules": {"api.example.com": [{"transform": {"headers": {"X": "${e2b.identity.tokens.aws}"}}}]}},  # not in iam
    ]
    for network in bad:
        body = {"templateID": base_template, "network": network, "secure": "allowPublicTraffic" not in network}
        status, raw = _api(sandboxd, key, "POST", "/sandboxes", body)
        assert status == 400, (network, status, raw)
        assert json.loads(raw)["message"], raw


def test_private_traffic_token_and_masked_host(base_template, sandboxd):
    from e2b import Sandbox

    sbx = Sandbox.create(base_template, timeout=300,
                         network={"allow_public_traffic": False, "mask_request_host": "${PORT}-masked.example.com"})
    try:
        token = sbx.traffic_access_token
        assert token
        start(sbx, "echo", ECHO_HTTP, 8000)
        host = sbx.get_host(8000)
        status, body, _ = request(sandboxd, host)
        assert status == 403 and "is missing" in json.loads(body)["message"], body
        status, body, _ = request(sandboxd, host, headers={"e2b-traffic-access-token": "wrong"})
        assert status == 403 and "is invalid" in json.loads(body)["message"], body
        status, body, _ = wait_until(
            lambda: (r := request(sandboxd, host, "/m", headers={"e2b-traffic-access-token": token}))[0] == 200 and r,
            30, "guest server behind the token")
        assert body.decode() == f"path=/m host=8000-masked.example.com xfh={host}"
        # envd keeps using its own token, not the traffic token.
        assert sbx.commands.run("echo envd").stdout == "envd\n"
        info = Sandbox.get_info(sbx.sandbox_id)
        assert info.network["allow_public_traffic"] is False
        assert info.network["mask_request_host"] == "${PORT}-masked.example.com"

        # The JS SDK: connect returns the token, getHost the host, and a fetch with it passes.
        js = run_js(f"""
import {{ Sandbox }} from 'e2b'
const sbx = await Sandbox.connect({json.dumps(sbx.sandbox_id)})
const host = sbx.getHost(8000)
const url = process.env.E2B_API_URL + '/js'
const get = async (headers) => {{
  const http = await import('node:http')
  return await new Promise((resolve, reject) => {{
    const req = http.request(url, {{ headers: {{ host, ...headers }} }}, (res) => {{
      let body = ''
      res.on('data', (c) => body += c)
      res.on('end', () => resolve({{ status: res.statusCode, body }}))
    }})
    req.on('error', reject)
    req.end()
  }})
}}
const without = await get({{}})
const withToken = await get({{ 'e2b-traffic-access-token': sbx.trafficAccessToken }})
console.log(JSON.stringify({{ host, token: sbx.trafficAccessToken, without: without.status, with: withToken }}))
""")
        assert js["host"] == host and js["token"] == token
        assert js["without"] == 403
        assert js["with"]["status"] == 200 and js["with"]["body"] == f"path=/js host=8000-masked.example.com xfh={host}"
    finally:
        sbx.kill()


def test_rules_and_domain_proxy_survive_a_sandboxd_restart(make_sandboxd, base_template, dest):
    from e2b import Sandbox

    a, b = dest["a"], dest["b"]
    server = make_sandboxd()
    sbx = Sandbox.create(base_template, timeout=300, network={"allow_out": [b, "allowed.test"], "deny_out": [ALL_TRAFFIC]},
                         **server.opts)
    try:
        sbx.files.write("/tmp/probe.py", PROBE)
        server.kill9()
        server.start()
        sbx = Sandbox.connect(sbx.sandbox_id, timeout=300, **server.opts)
        r = probe(sbx, [http(a), http(b), http(a, "allowed.test")])
        assert refused(r[0]) and ok(r[1], at=b) and ok(r[2], at=a, host="allowed.test"), r
    finally:
        sbx.kill()
