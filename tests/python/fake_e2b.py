"""A tiny in-process stand-in for an E2B-compatible server (REST + envd), for tests that check
what the *client* sends and how it maps answers: it records every request (method, path, query,
JSON body keys) and answers with canned, spec-shaped bodies. It is not a sandbox: the tests that
need real sandboxes run against sandboxd (see conftest.py).

Commands given to process.Process/Start are not executed; ``sleep N`` makes the stream wait N
seconds before its end event, anything else echoes the command line on stdout.
"""

import json
import re
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import parse_qsl, unquote, urlsplit

METRIC = {
    "timestamp": "2026-01-02T03:04:05Z",
    "timestampUnix": 1767323045,
    "cpuCount": 2,
    "cpuUsedPct": 12.5,
    "memUsed": 100,
    "memTotal": 1000,
    "memCache": 10,
    "diskUsed": 5,
    "diskTotal": 50,
}

SANDBOX = {
    "templateID": "base",
    "sandboxID": "ifake0000000000000001",
    "clientID": "local",
    "envdVersion": "0.5.7",
    "envdAccessToken": "envd-token",
}
DETAIL = {
    **SANDBOX,
    "startedAt": "2026-01-01T00:00:00Z",
    "endAt": "2026-01-01T00:05:00Z",
    "cpuCount": 2,
    "memoryMB": 512,
    "diskSizeMB": 1024,
    "state": "running",
    "metadata": {"k": "v"},
    "allowInternetAccess": False,
    "lifecycle": {"autoResume": True, "onTimeout": "pause"},
    "network": {"allowOut": ["1.1.1.1"], "denyOut": ["0.0.0.0/0"], "allowPublicTraffic": False, "maskRequestHost": "h:${PORT}"},
    "volumeMounts": [{"name": "vol", "path": "/mnt/vol"}],
    "envdUnresponsiveAtPause": True,
}


def envelope(flags: int, obj: Any) -> bytes:
    data = json.dumps(obj).encode()
    return struct.pack(">BI", flags, len(data)) + data


class Recorder:
    def __init__(self) -> None:
        self.requests: List[Dict[str, Any]] = []
        self.deleted: set = set()
        self.uploaded: set = set()
        self.lock = threading.Lock()

    def record(self, method: str, path: str, query: List[Tuple[str, str]], body: Optional[bytes], ctype: str, idempotency_key: Optional[str] = None) -> Dict[str, Any]:
        keys: Optional[List[str]] = None
        parsed: Any = None
        if body and "json" in ctype and not ctype.startswith("application/connect"):
            try:
                parsed = json.loads(body)
                keys = sorted(parsed) if isinstance(parsed, dict) else None
            except ValueError:
                pass
        entry = {
            "method": method,
            "path": path,
            "query": sorted(k for k, _ in query),
            "query_items": sorted(query),
            "body_keys": keys,
            "body": parsed,
            "idempotency_key": idempotency_key,
        }
        with self.lock:
            self.requests.append(entry)
        return entry


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    rec: Recorder

    def log_message(self, *a: Any) -> None:
        pass

    def _send(self, status: int, body: Any = None, headers: Optional[Dict[str, str]] = None, raw: Optional[bytes] = None, ctype: str = "application/json") -> None:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if data:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            return self.rfile.read(n)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        return b""

    def do_GET(self) -> None:
        self.route("GET")

    def do_POST(self) -> None:
        self.route("POST")

    def do_DELETE(self) -> None:
        self.route("DELETE")

    def do_PUT(self) -> None:
        self.route("PUT")

    def do_PATCH(self) -> None:
        self.route("PATCH")

    def route(self, method: str) -> None:
        u = urlsplit(self.path)
        path = u.path
        query = parse_qsl(u.query, keep_blank_values=True)
        q = dict(query)
        body = self._body()
        self.rec.record(method, path, query, body, self.headers.get("Content-Type", ""), self.headers.get("Idempotency-Key"))
        sid = SANDBOX["sandboxID"]

        if path == "/health":
            return self._send(200, {"status": "ok"})
        if method == "POST" and path in ("/v2/sandboxes", "/sandboxes"):
            tpl = json.loads(body).get("templateID", "base")
            return self._send(201, {**SANDBOX, "templateID": tpl})
        m = re.fullmatch(r"/(?:v2/)?sandboxes/([^/]+)/connect", path)
        if m and method == "POST":
            if m.group(1) != sid:
                return self._send(404, {"code": 404, "message": "sandbox not found"})
            return self._send(200, SANDBOX)
        m = re.fullmatch(r"/sandboxes/([^/]+)", path)
        if m:
            if m.group(1) != sid or sid in self.rec.deleted:
                return self._send(404, {"code": 404, "message": f"sandbox {m.group(1)} not found"})
            if method == "DELETE":
                return self._send(204)
            return self._send(200, DETAIL)
        m = re.fullmatch(r"/sandboxes/([^/]+)/(timeout|pause|snapshots|fork|metrics|network)", path)
        if m:
            if m.group(1) != sid:
                return self._send(404, {"code": 404, "message": "sandbox not found"})
            if m.group(2) == "metrics":
                return self._send(200, [METRIC])
            if m.group(2) == "snapshots":
                return self._send(201, {"snapshotID": "snaptpl1:default", "names": []})
            if m.group(2) == "fork":
                return self._send(201, [{"sandbox": SANDBOX}])
            return self._send(204)
        if path == "/snapshots" and method == "GET":
            if q.get("nextToken") == "page2":
                return self._send(200, [{"snapshotID": "snap2:default", "names": []}])
            return self._send(200, [{"snapshotID": "snap1:default", "names": ["team/one"]}], {"X-Next-Token": "page2"})
        if path == "/v2/sandboxes" and method == "GET":
            if q.get("nextToken") == "page2":
                return self._send(200, [DETAIL])
            return self._send(200, [DETAIL], {"x-next-token": "page2"})
        if self.template_route(method, path, q):
            return None
        if self.secret_volume_route(method, path, q):
            return None
        m = re.fullmatch(r"/templates/(.+)", path)
        if m and method == "DELETE":
            ident = unquote(m.group(1))
            if ident in self.rec.deleted or ident.startswith("missing"):
                return self._send(404, {"code": 404, "message": "not found"})
            self.rec.deleted.add(ident)
            return self._send(204)
        if path == "/process.Process/Start":
            return self.start_process(body)
        if path == "/process.Process/List":
            return self._send(200, {"processes": []})
        if path == "/process.Process/SendSignal":
            return self._send(404, {"code": "not_found", "message": "process not found"})
        return self._send(404, {"code": 404, "message": f"no route {method} {path}"})

    def secret_volume_route(self, method: str, path: str, q: Dict[str, str]) -> bool:
        """E2B's secrets and volumes APIs (REST and volume content), canned."""
        secret = {"secretID": "sec_fake000000000000001", "name": "n", "currentVersion": 1, "metadata": {},
                  "createdAt": "2026-01-01T00:00:00Z", "updatedAt": "2026-01-01T00:00:00Z"}
        volume = {"volumeID": "volfake1", "name": "vol", "token": "voltoken"}
        stat = {"name": "a.txt", "type": "file", "path": "/a.txt", "size": 2, "mode": 420, "uid": 0, "gid": 0,
                "atime": "2026-01-01T00:00:00Z", "mtime": "2026-01-01T00:00:00Z", "ctime": "2026-01-01T00:00:00Z"}
        if path == "/secrets":
            if method == "POST":
                self._send(201, secret)
            elif q.get("nextToken") == "page2":
                self._send(200, [secret])
            else:
                self._send(200, [secret], {"X-Next-Token": "page2"})
            return True
        if re.fullmatch(r"/secrets/[^/]+", path):
            self._send(204) if method == "DELETE" else self._send(200, secret)
            return True
        if path == "/volumes":
            self._send(201, volume) if method == "POST" else self._send(200, [{"volumeID": "volfake1", "name": "vol"}])
            return True
        if re.fullmatch(r"/volumes/[^/]+", path):
            self._send(204) if method == "DELETE" else self._send(200, volume)
            return True
        m = re.fullmatch(r"/volumecontent/[^/]+/(file|dir|path)", path)
        if m:
            if m.group(1) == "file" and method == "GET":
                self._send(200, raw=b"hi", ctype="application/octet-stream")
            elif method == "DELETE":
                self._send(204)
            elif m.group(1) == "dir" and method == "GET":
                self._send(200, [stat])
            else:
                self._send(201 if method in ("POST", "PUT") else 200, stat)
            return True
        return False

    def template_route(self, method: str, path: str, q: Dict[str, str]) -> bool:
        """E2B's template build API, enough for Template.build / exists / tags."""
        tid, bid = "tplfake1", "6c387aae-aae2-40f8-a379-0e58c67dbd32"
        if path == "/v3/templates" and method == "POST":
            self._send(202, {"templateID": tid, "buildID": bid, "public": False, "aliases": ["wire-tpl"], "names": ["wire-tpl"], "tags": ["default", "v1"]})
            return True
        m = re.fullmatch(r"/templates/([^/]+)/files/([0-9a-f]+)", path)
        if m and method == "GET":
            url = f"http://{self.headers.get('Host')}/upload/{m.group(2)}"
            self._send(201, {"present": m.group(2) in self.rec.uploaded, "url": url})
            return True
        m = re.fullmatch(r"/upload/([0-9a-f]+)", path)
        if m and method == "PUT":
            self.rec.uploaded.add(m.group(1))
            self._send(200)
            return True
        if re.fullmatch(r"/v2/templates/[^/]+/builds/[^/]+", path) and method == "POST":
            self._send(202)
            return True
        if re.fullmatch(r"/templates/[^/]+/builds/[^/]+/status", path) and method == "GET":
            entries = [] if int(q.get("logsOffset", "0")) > 0 else [
                {"timestamp": "2026-01-02T03:04:05Z", "level": "info", "message": "step 1 done"}
            ]
            self._send(200, {"templateID": tid, "buildID": bid, "status": "ready", "logEntries": entries, "logs": []})
            return True
        m = re.fullmatch(r"/templates/aliases/(.+)", path)
        if m and method == "GET":
            if unquote(m.group(1)).startswith("wire-tpl"):
                self._send(200, {"templateID": tid, "public": False})
            else:
                self._send(404, {"code": 404, "message": "not found"})
            return True
        if path == "/templates/tags" and method == "POST":
            self._send(201, {"buildID": bid, "tags": ["a", "b"]})
            return True
        if path == "/templates/tags" and method == "DELETE":
            self._send(204)
            return True
        if re.fullmatch(r"/templates/[^/]+/tags", path) and method == "GET":
            self._send(200, [{"tag": "v1", "buildID": bid, "createdAt": "2026-01-02T03:04:05Z"}])
            return True
        return False

    def start_process(self, body: bytes) -> None:
        req = json.loads(body[5:])
        cmd = req["process"]["args"][-1]
        self.send_response(200)
        self.send_header("Content-Type", "application/connect+json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(b: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
            self.wfile.flush()

        try:
            chunk(envelope(0, {"event": {"start": {"pid": 42}}}))
            m = re.fullmatch(r"sleep (\d+(?:\.\d+)?)", cmd.strip())
            if m:
                deadline = time.time() + float(m.group(1))
                while time.time() < deadline:
                    time.sleep(0.1)
            else:
                import base64
                chunk(envelope(0, {"event": {"data": {"stdout": base64.b64encode(cmd.encode() + b"\n").decode()}}}))
            chunk(envelope(0, {"event": {"end": {"exited": True, "status": "exit status 0"}}}))
            chunk(envelope(2, {}))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass


class FakeE2B:
    """``with FakeE2B() as srv: srv.url; srv.recorder.requests``."""

    def __init__(self) -> None:
        self.recorder = Recorder()
        handler = type("H", (Handler,), {"rec": self.recorder})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "FakeE2B":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def env(self) -> Dict[str, str]:
        """Environment pointing an SDK (ours or E2B's) at this server."""
        return {
            "E2B_API_KEY": "e2b_" + "0" * 40,
            "E2B_API_URL": self.url,
            "E2B_SANDBOX_URL": self.url,
            "E2B_VOLUME_API_URL": self.url,
            "E2B_HTTP_VERSION": "1.1",
        }
