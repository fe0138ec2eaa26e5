"""Transform rules (`network.rules`) with secrets through the official SDKs: the egress proxy
sets a rule's headers on every HTTP and HTTPS request to its host, resolving
`${e2b.secrets.<name>}` from the secrets store at that moment, so the value never enters the
sandbox. HTTPS to such a host is terminated by sandboxd with a certificate from its egress CA,
which the sandbox trusts (curl verifies it, no `-k`), and continues to the real server, whose
certificate sandboxd verifies.

The destination is a server this test runs in a network namespace of its own on an address of
198.18.0.0/15 (not private, so sandboxes may reach it), with a certificate from a test CA that
sandboxd is told to trust (`SSL_CERT_FILE`); it answers with the headers it received."""

import json
import os
import random
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from dest_net import destination

ECHO_HEADERS = r'''
import http.server, json, ssl, sys, threading
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = json.dumps({"tls": isinstance(self.connection, ssl.SSLSocket), "path": self.path,
                           "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
servers = [http.server.ThreadingHTTPServer(("0.0.0.0", p), H) for p in (80, 443)]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
servers[1].socket = ctx.wrap_socket(servers[1].socket, server_side=True)
for s in servers:
    threading.Thread(target=s.serve_forever, daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
'''


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=cwd)


@pytest.fixture(scope="module")
def echo():
    """(address, directory with `ca.pem` and `bundle.pem`) of the header-echo server."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces)")
    k = random.randrange(0, 250, 2)
    addr = f"198.18.{k}.20"
    d = Path(tempfile.mkdtemp(prefix="e2b-rules-"))
    # A test CA and a certificate for both names the tests use.
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=e2b rules test CA",
             "-keyout", "ca.key", "-out", "ca.pem", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=DNS:echo.test,DNS:other.test\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=echo.test", "-keyout", "key.pem",
             "-out", "req.csr", cwd=d)
    _openssl("x509", "-req", "-in", "req.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
             "-days", "2", "-extfile", "ext.cnf", "-out", "cert.pem", cwd=d)
    system = Path("/etc/ssl/certs/ca-certificates.crt")
    (d / "bundle.pem").write_text((system.read_text() if system.exists() else "") + (d / "ca.pem").read_text())
    (d / "server.py").write_text(ECHO_HEADERS)
    with destination("e2br", k, [addr], f"{addr}/32", d / "server.py", (d / "cert.pem", d / "key.pem")):
        yield addr, d


@pytest.fixture(scope="module")
def srv(echo):
    """A sandboxd that trusts the test CA for upstream connections (module-scoped: one CA)."""
    import conftest

    server = conftest.Sandboxd(Path(tempfile.mkdtemp(prefix="sandboxd-compat-")),
                               env={"SANDBOXD_POOL_SIZE": "0", "SSL_CERT_FILE": str(echo[1] / "bundle.pem")})
    server.start()
    yield server
    server.stop()


def api(server, method, path, body=None):
    req = urllib.request.Request(server.url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"X-API-Key": server.key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def run(sbx, cmd):
    from e2b.sandbox.commands.command_handle import CommandExitException

    try:
        r = sbx.commands.run(cmd, user="user", timeout=60)
        return r.exit_code, r.stdout + r.stderr
    except CommandExitException as e:
        return e.exit_code, e.stdout + e.stderr


RULES = {"echo.test": [{"transform": {"headers": {"Authorization": "Bearer ${e2b.secrets.echo-token}",
                                                   "X-Team": "research"}}}]}


def test_rules_add_secret_headers_the_sandbox_never_sees(srv, echo, base_template):
    from e2b import Sandbox, Secret

    addr, _ = echo
    assert Secret.fill("echo-token") == "${e2b.secrets.echo-token}"
    # As in E2B the secret may come later: it is resolved per request.
    sbx = Sandbox.create(base_template, timeout=300, network={
        "allow_out": ["echo.test"], "deny_out": ["0.0.0.0/0"], "rules": RULES}, **srv.opts)
    code, body = run(sbx, f"curl -sS --max-time 20 -w ' %{{http_code}}' --resolve echo.test:443:{addr} https://echo.test/x")
    assert body.endswith(" 502") and 'secret "echo-token" not found' in body, body
    Secret.create("echo-token", "s3cr3t-one", **srv.opts)

    # HTTPS: sandboxd's certificate is trusted in the guest (no -k), the header replaces the
    # sandbox's own, and the request reaches the real server over TLS.
    code, body = run(sbx, f"curl -sS --max-time 20 --resolve echo.test:443:{addr} "
                          "-H 'Authorization: Bearer from-the-guest' https://echo.test/one")
    assert code == 0, body
    seen = json.loads(body)
    assert seen["tls"] is True and seen["path"] == "/one"
    assert seen["headers"]["authorization"] == "Bearer s3cr3t-one"
    assert seen["headers"]["x-team"] == "research"
    # Plain HTTP gets the headers too.
    code, body = run(sbx, f"curl -sS --max-time 20 --resolve echo.test:80:{addr} http://echo.test/plain")
    assert code == 0 and json.loads(body)["headers"]["authorization"] == "Bearer s3cr3t-one", body

    # The value is resolved per request: an update applies to the next one.
    Secret.update("echo-token", "s3cr3t-two", **srv.opts)
    code, body = run(sbx, f"curl -sS --max-time 20 --resolve echo.test:443:{addr} https://echo.test/two")
    assert json.loads(body)["headers"]["authorization"] == "Bearer s3cr3t-two", body

    # The sandbox never holds the value: not in its environment, files or sandbox info.
    code, out = run(sbx, "env; sudo grep -rIl 's3cr3t' /etc /home /root /tmp /usr/local 2>/dev/null; true")
    assert "s3cr3t" not in out
    status, info = api(srv, "GET", f"/sandboxes/{sbx.sandbox_id}")
    assert info["network"]["rules"] == RULES and "s3cr3t" not in json.dumps(info)

    # Hosts the lists do not allow stay closed, rules or not.
    code, out = run(sbx, f"curl -sS --max-time 20 --resolve other.test:443:{addr} -k https://other.test/")
    assert code != 0, out

    # A deleted secret: the proxy answers 502 itself rather than send the request without it.
    assert Secret.destroy("echo-token", **srv.opts)
    code, body = run(sbx, f"curl -sS --max-time 20 -w ' %{{http_code}}' --resolve echo.test:443:{addr} https://echo.test/x")
    assert body.endswith(" 502") and 'secret "echo-token" not found' in body, body
    sbx.kill()


def test_other_hosts_pass_untouched_and_rules_can_be_added_live(srv, echo, base_template):
    from e2b import Sandbox, Secret

    addr, _ = echo
    Secret.create("live-token", "v-live", **srv.opts)
    sbx = Sandbox.create(base_template, timeout=300, **srv.opts)
    # No rules yet: straight through, the guest sees the real server's certificate (from the
    # test CA, which it does not trust: -k) and no header is added.
    code, body = run(sbx, f"curl -sS -k --max-time 20 --resolve echo.test:443:{addr} https://echo.test/a")
    assert code == 0 and "authorization" not in json.loads(body)["headers"], body

    rules = {"echo.test": [{"transform": {"headers": {"X-Api-Key": "${e2b.secrets.live-token}"}}}]}
    sbx.update_network({"rules": rules})
    code, body = run(sbx, f"curl -sS --max-time 20 --resolve echo.test:443:{addr} https://echo.test/b")
    assert code == 0 and json.loads(body)["headers"]["x-api-key"] == "v-live", body
    # other.test shares the address but has no rule: passed through as it was.
    code, body = run(sbx, f"curl -sS -k --max-time 20 --resolve other.test:443:{addr} https://other.test/c")
    assert code == 0 and "x-api-key" not in json.loads(body)["headers"], body
    sbx.kill()


def test_bad_rules_are_refused(srv, base_template):
    before = api(srv, "GET", "/sandboxes")[1]
    for rules, message in [
        ({"echo.test": [{"transform": {"headers": {"X": "${e2b.secrets.nope"}}}]}, "unterminated"),
        ({"bad host!": []}, "invalid host"),
        ({"echo.test": [{"transform": {"headers": {"Bad Name": "x"}}}]}, "invalid header name"),
        ({"echo.test": [{"transform": {"headers": {"X": "${e2b.identity.tokens.aws}"}}}]}, "not registered"),
        ({"echo.test": "not a list"}, "network.rules"),
    ]:
        status, body = api(srv, "POST", "/sandboxes", {"templateID": base_template, "network": {"rules": rules}})
        assert status == 400 and message in body["message"], (rules, body)
    assert api(srv, "GET", "/sandboxes")[1] == before


def _der_signature(raw: bytes) -> bytes:
    """JWS's r||s as the DER SEQUENCE of two INTEGERs OpenSSL verifies."""
    def integer(b: bytes) -> bytes:
        b = b.lstrip(b"\0") or b"\0"
        if b[0] & 0x80:
            b = b"\0" + b
        return b"\x02" + bytes([len(b)]) + b
    body = integer(raw[:32]) + integer(raw[32:])
    return b"\x30" + bytes([len(body)]) + body


def _b64url(s: str) -> bytes:
    import base64
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def test_workload_identity_tokens_are_minted_per_request_and_verify(srv, echo, base_template, tmp_path):
    from e2b import Sandbox, Secret

    addr, _ = echo
    sbx = Sandbox.create(
        base_template, timeout=300,
        iam={"tokens": {"aws": Secret.iam_token(audience="sts.amazonaws.com", token_type="JWT-SVID")}},
        network={"rules": {"echo.test": [{"transform": lambda ctx: {
            "headers": {"Authorization": f"Bearer {ctx.iam.tokens['aws']}"}}}]}},
        **srv.opts)
    tokens = []
    for i in range(2):
        code, body = run(sbx, f"curl -sS --max-time 20 --resolve echo.test:443:{addr} https://echo.test/t{i}")
        assert code == 0, body
        auth = json.loads(body)["headers"]["authorization"]
        assert auth.startswith("Bearer ey"), auth
        tokens.append(auth.split(" ", 1)[1])
    assert tokens[0] != tokens[1], "a new token for every request"

    discovery = json.loads(urllib.request.urlopen(f"{srv.url}/.well-known/openid-configuration", timeout=10).read())
    assert discovery["issuer"] == srv.url and discovery["jwks_uri"] == f"{srv.url}/.well-known/jwks.json"
    jwk = json.loads(urllib.request.urlopen(discovery["jwks_uri"], timeout=10).read())["keys"][0]
    for token in tokens:
        head, claims, sig = token.split(".")
        header, claims = json.loads(_b64url(head)), json.loads(_b64url(claims))
        assert header["alg"] == "ES256" and header["kid"] == jwk["kid"]
        assert claims["aud"] == ["sts.amazonaws.com"] and claims["iss"] == srv.url
        assert claims["sub"] == f"spiffe://127.0.0.1/sandbox/{sbx.sandbox_id}"
        assert claims["sandbox_id"] == sbx.sandbox_id and claims["exp"] - claims["iat"] == 300
        # Verified by OpenSSL with the published key (P-256 SubjectPublicKeyInfo around x, y).
        spki = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200") + b"\x04" + \
            _b64url(jwk["x"]) + _b64url(jwk["y"])
        (tmp_path / "pub.der").write_bytes(spki)
        (tmp_path / "input").write_bytes(f"{head}.{token.split('.')[1]}".encode())
        (tmp_path / "sig").write_bytes(_der_signature(_b64url(sig)))
        subprocess.run(["openssl", "pkey", "-pubin", "-inform", "DER", "-in", str(tmp_path / "pub.der"),
                        "-out", str(tmp_path / "pub.pem")], check=True, capture_output=True)
        verified = subprocess.run(["openssl", "dgst", "-sha256", "-verify", str(tmp_path / "pub.pem"), "-signature",
                                   str(tmp_path / "sig"), str(tmp_path / "input")], capture_output=True, text=True)
        assert verified.returncode == 0 and "Verified OK" in verified.stdout, verified
    sbx.kill()

    status, body = api(srv, "POST", "/sandboxes", {"templateID": base_template,
                                                   "iam": {"tokens": {"x": {"audience": "a", "tokenType": "OTHER"}}}})
    assert status == 400 and "JWT-SVID is the only supported type" in body["message"], body
