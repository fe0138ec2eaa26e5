"""Guest ports through `get_host(port)`: HTTP/1.1, WebSocket, h2c, a closed port's 502, and
`E2B_DOMAIN` behind a real TLS terminator (nginx) with a wildcard certificate the SDK process
trusts through `SSL_CERT_FILE`."""

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import wait_until
from guest_net import ECHO_HTTP, H2C, WS_ECHO, request, start


def _sandboxd_addr():
    url = os.environ["E2B_API_URL"]
    ip, port = url.split("://", 1)[1].rsplit(":", 1)
    return ip, int(port)


def _ws_frame(payload: bytes) -> bytes:
    mask = os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def _read_ws_frame(s: socket.socket) -> bytes:
    def exact(n):
        b = b""
        while len(b) < n:
            d = s.recv(n - len(b))
            assert d, "websocket closed"
            b += d
        return b

    b1, b2 = exact(2)
    n = b2 & 127
    if n == 126:
        n = struct.unpack(">H", exact(2))[0]
    return exact(n)


def test_guest_ports_http_websocket_h2c_and_closed(sandbox):
    server = os.environ["E2B_API_URL"]
    start(sandbox, "echo", ECHO_HTTP, 8000)
    start(sandbox, "ws", WS_ECHO, 8001)
    start(sandbox, "h2c", H2C, 8002)
    host = sandbox.get_host(8000)
    assert host == f"8000-{sandbox.sandbox_id}.localhost"

    # HTTP/1.1: the first request adds QEMU's forward; poll until the guest server listens.
    t0 = time.monotonic()
    status, body, _ = wait_until(lambda: (r := request(server, host, "/hello"))[0] == 200 and r, 30, "guest http server")
    first = time.monotonic() - t0
    t1 = time.monotonic()
    status, body, _ = request(server, host, "/again")
    again = time.monotonic() - t1
    assert status == 200 and body.decode() == f"path=/again host={host} xfh=None"
    print(f"\nport 8000: first answer after {first * 1000:.0f} ms (incl. server start), next {again * 1000:.1f} ms")

    # The header form the SDKs use with E2B_SANDBOX_URL reaches the same port.
    status, body, _ = request(server, "localhost", "/hdr",
                              headers={"E2b-Sandbox-Id": sandbox.sandbox_id, "E2b-Sandbox-Port": "8000"})
    assert status == 200 and body.decode().startswith("path=/hdr")

    # A port nothing listens on: E2B's 502 and message (the SDKs look for "port is not open").
    status, body, _ = request(server, sandbox.get_host(8999))
    assert status == 502, body
    err = json.loads(body)
    assert err["message"] == "The sandbox is running but port is not open"
    assert err["sandboxId"] == sandbox.sandbox_id and err["port"] == 8999 and err["code"] == 502

    # WebSocket: the Upgrade passes through and frames round-trip.
    ip, port = _sandboxd_addr()

    def ws_connect():
        s = socket.create_connection((ip, port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall((f"GET /ws HTTP/1.1\r\nHost: {sandbox.get_host(8001)}\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            d = s.recv(1)
            if not d:
                break
            head += d
        if not head.startswith(b"HTTP/1.1 101"):
            s.close()
            return None
        return s

    ws = wait_until(ws_connect, 30, "websocket handshake")
    try:
        for msg in (b"hello", b"x" * 300):
            ws.sendall(_ws_frame(msg) if len(msg) < 126 else
                       bytes([0x81, 0x80 | 126]) + struct.pack(">H", len(msg)) + b"\0\0\0\0" + msg)
            assert _read_ws_frame(ws) == b"echo:" + msg
    finally:
        ws.close()

    # h2c: prior-knowledge HTTP/2 from the client reaches the guest as HTTP/2, trailers included.
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is needed for the h2c check")

    def h2c():
        p = subprocess.run([curl, "-sv", "--http2-prior-knowledge", "-m", "10", "-H", f"Host: {sandbox.get_host(8002)}",
                            f"http://{ip}:{port}/grpc.Service/Method"], capture_output=True, text=True)
        return p if p.stdout == "h2c ok" else None

    p = wait_until(h2c, 30, "h2c answer")
    assert "< HTTP/2 200" in p.stderr and "grpc-status: 0" in p.stderr, p.stderr


def _make_cert(d: Path, domain: str):
    """A throwaway CA (what the SDK trusts) and a wildcard server certificate it signed:
    rustls refuses a self-signed CA certificate used as the server's own."""
    def openssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ca, ca_key, key, csr, cert = (d / n for n in ("ca.pem", "ca-key.pem", "key.pem", "req.pem", "cert.pem"))
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(ca_key), "-out", str(ca),
            "-subj", "/CN=sandboxd test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={domain}")
    (d / "ext.cnf").write_text(f"subjectAltName=DNS:{domain},DNS:*.{domain}\nbasicConstraints=CA:FALSE\n"
                               "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-days", "1",
            "-out", str(cert), "-extfile", str(d / "ext.cnf"))
    return ca, cert, key


NGINX_CONF = """
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{}}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
  server {{
    listen 127.0.0.1:{port} ssl;
    server_name api.{domain} *.{domain};
    ssl_certificate {cert};
    ssl_certificate_key {key};
    client_max_body_size 0;
    location / {{
      proxy_pass http://127.0.0.1:{upstream};
      proxy_http_version 1.1;
      proxy_set_header Host $host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
    }}
  }}
}}
"""


class ConnectTunnel:
    """An HTTP CONNECT proxy that sends every `*.<domain>:443` tunnel to the local TLS
    terminator, so the SDK resolves the test domain to 127.0.0.1 without DNS or /etc/hosts.
    (The SDK's HTTP stack is Rust's reqwest with its own resolver: patching Python's
    `socket.getaddrinfo` would not reach it; `HTTPS_PROXY` does.)"""

    def __init__(self, domain: str, tls_port: int):
        self.domain, self.tls_port = domain, tls_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client):
        head = b""
        while b"\r\n\r\n" not in head:
            d = client.recv(4096)
            if not d:
                return client.close()
            head += d
        target = head.split(b" ")[1].decode()
        host = target.rsplit(":", 1)[0]
        if not (host == self.domain or host.endswith("." + self.domain)):
            client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
            return client.close()
        upstream = socket.create_connection(("127.0.0.1", self.tls_port))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")

        def pipe(a, b):
            try:
                while d := a.recv(65536):
                    b.sendall(d)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
        pipe(client, upstream)

    def close(self):
        self.sock.close()


SDK_SCRIPT = """
import json, time, httpx
from e2b import Sandbox
sbx = Sandbox.create("base", timeout=120)
out = {"domain": sbx.sandbox_domain, "host": sbx.get_host(8000)}
try:
    out["echo"] = sbx.commands.run("echo over-tls").stdout
    sbx.files.write("/tmp/echo.py", ECHO)
    sbx.commands.run("python3 /tmp/echo.py 8000", background=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            r = httpx.get("https://" + sbx.get_host(8000) + "/tls", timeout=10)
            if r.status_code == 200:
                out["port"] = r.text
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "no answer from the guest port over TLS"
        time.sleep(0.3)
finally:
    sbx.kill()
print(json.dumps(out))
"""


def test_e2b_domain_behind_tls_terminator(make_sandboxd, base_template):
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        pytest.fail("nginx is missing: scripts/install-deps.sh installs nginx-light")
    domain = "sbx.test"
    server = make_sandboxd(args=["--domain", domain])
    d = Path(tempfile.mkdtemp(prefix="sandboxd-tls-"))
    proc = None
    try:
        ca, cert, key = _make_cert(d, domain)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            tls_port = s.getsockname()[1]
        (d / "nginx.conf").write_text(NGINX_CONF.format(d=d, port=tls_port, domain=domain, cert=cert, key=key,
                                                        upstream=server.port))
        proc = subprocess.Popen([nginx, "-c", str(d / "nginx.conf"), "-p", str(d)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

        def listening():
            try:
                socket.create_connection(("127.0.0.1", tls_port), timeout=1).close()
                return True
            except OSError:
                assert proc.poll() is None, (d / "error.log").read_text()
                return False

        wait_until(listening, 20, "nginx")
        tunnel = ConnectTunnel(domain, tls_port)
        drop = ("E2B_API_URL", "E2B_SANDBOX_URL", "NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        env.update(E2B_DOMAIN=domain, E2B_API_KEY=server.key, SSL_CERT_FILE=str(ca),
                   HTTPS_PROXY=f"http://127.0.0.1:{tunnel.port}")
        script = "ECHO = " + repr(ECHO_HTTP) + "\n" + SDK_SCRIPT
        try:
            p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=240)
        finally:
            tunnel.close()
        assert p.returncode == 0, p.stderr[-3000:]
        out = json.loads(p.stdout.strip().splitlines()[-1])
        assert out["domain"] == domain
        assert out["host"].startswith("8000-") and out["host"].endswith("." + domain)
        assert out["echo"] == "over-tls\n"
        # The guest saw the public host name nginx forwarded.
        assert out["port"] == f"path=/tls host={out['host']} xfh=None"
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)
