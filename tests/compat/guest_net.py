"""Programs the network tests upload into a guest (which has python3 and nothing else), and
a host-side HTTP helper that reaches a sandbox port through sandboxd the way `get_host`
traffic does (by Host header)."""

import http.client
import json

# An HTTP/1.1 server (python's http.server) that answers with what it saw.
ECHO_HTTP = r'''
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        body = ("path=%s host=%s xfh=%s" % (self.path, self.headers.get("Host"),
                self.headers.get("X-Forwarded-Host"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
'''

# A WebSocket echo server (RFC 6455 handshake and framing, stdlib only).
WS_ECHO = r'''
import base64, hashlib, socket, struct, sys, threading
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
def exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b
def handle(c):
    data = b""
    while b"\r\n\r\n" not in data:
        data += c.recv(4096)
    lines = data.split(b"\r\n\r\n")[0].decode().split("\r\n")[1:]
    h = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in lines if ":" in l}
    acc = base64.b64encode(hashlib.sha1((h["sec-websocket-key"] + GUID).encode()).digest()).decode()
    c.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Accept: %s\r\n\r\n" % acc).encode())
    try:
        while True:
            b1, b2 = exact(c, 2)
            op, n = b1 & 15, b2 & 127
            if n == 126:
                n = struct.unpack(">H", exact(c, 2))[0]
            elif n == 127:
                n = struct.unpack(">Q", exact(c, 8))[0]
            mask = exact(c, 4) if b2 & 128 else b"\0\0\0\0"
            payload = bytes(x ^ mask[i % 4] for i, x in enumerate(exact(c, n)))
            if op == 8:
                c.sendall(b"\x88\x00")
                break
            reply = b"echo:" + payload
            head = bytes([128 | op]) + (bytes([len(reply)]) if len(reply) < 126 else b"\x7e" + struct.pack(">H", len(reply)))
            c.sendall(head + reply)
    except EOFError:
        pass
    c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
while True:
    threading.Thread(target=handle, args=(s.accept()[0],), daemon=True).start()
'''

# A minimal prior-knowledge HTTP/2 (h2c) responder: answers every request stream with
# `:status 200`, a body and a `grpc-status: 0` trailer, like a gRPC server would.
H2C = r'''
import socket, struct, sys, threading
def exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise EOFError
        b += d
    return b
def frame(t, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([t, flags]) + struct.pack(">I", sid) + payload
def respond(c, sid):
    c.sendall(frame(1, 4, sid, b"\x88")  # HEADERS :status 200
              + frame(0, 0, sid, b"h2c ok")
              + frame(1, 5, sid, b"\x00\x0bgrpc-status\x010"))  # trailers, END_STREAM
def handle(c):
    try:
        if exact(c, 24) != b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n":
            return c.close()
        c.sendall(frame(4, 0, 0))
        while True:
            h = exact(c, 9)
            n, t, fl, sid = int.from_bytes(h[:3], "big"), h[3], h[4], int.from_bytes(h[5:], "big") & 0x7FFFFFFF
            exact(c, n)
            if t == 4 and not fl & 1:
                c.sendall(frame(4, 1, 0))
            elif t in (0, 1) and fl & 1:
                respond(c, sid)
            elif t == 7:
                break
    except (EOFError, OSError):
        pass
    c.close()
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
while True:
    threading.Thread(target=handle, args=(s.accept()[0],), daemon=True).start()
'''

# Runs many egress probes at once from the guest and prints their outcomes as JSON:
# [{"kind": "http"|"tls", "ip", "port", "host"}] -> ["OK <body>" | "ERR <error>"].
PROBE = r'''
import concurrent.futures, json, socket, ssl, sys
def http(p):
    s = socket.create_connection((p["ip"], p["port"]), timeout=4)
    if p["kind"] == "tls":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname=p["host"])
    s.sendall(("GET / HTTP/1.0\r\nHost: %s\r\n\r\n" % p["host"]).encode())
    data = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        data += d
    if not data:
        raise ConnectionError("closed without an answer")
    return data.split(b"\r\n\r\n", 1)[-1].decode()
def run(p):
    try:
        return "OK " + http(p)
    except Exception as e:
        return "ERR %s: %s" % (type(e).__name__, e)
probes = json.loads(sys.argv[1])
with concurrent.futures.ThreadPoolExecutor(len(probes)) as ex:
    print(json.dumps(list(ex.map(run, probes))))
'''


def start(sbx, name: str, source: str, port: int):
    """Uploads `source` and runs it in the background with `port` as its argument."""
    path = f"/tmp/{name}.py"
    sbx.files.write(path, source)
    sbx.commands.run(f"python3 {path} {port}", background=True)


def request(server, host: str, path: str = "/", headers=None, method: str = "GET"):
    """An HTTP/1.1 request to `server` (a URL like http://127.0.0.1:PORT) for `host`;
    returns (status, body bytes, headers)."""
    addr = server.split("://", 1)[1]
    ip, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(ip, int(port), timeout=30)
    try:
        conn.request(method, path, headers={"Host": host, **(headers or {})})
        r = conn.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        conn.close()


def probe(sbx, probes) -> list:
    out = sbx.commands.run(f"python3 /tmp/probe.py '{json.dumps(probes)}'", timeout=60).stdout
    return json.loads(out.strip().splitlines()[-1])
