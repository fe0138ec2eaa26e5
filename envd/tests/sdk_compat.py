"""Compatibility check: the official E2B Python SDK against our envd, unchanged.

Usage (as root, from the repo root, after `cargo build -p envd`):

    /tmp/offsdk/bin/python envd/tests/sdk_compat.py [path/to/envd]

The SDK needs the control plane only to learn where envd is and which version
it runs, so a tiny stub answers `POST /v2/sandboxes/{id}/connect` with our
`envdVersion` and an access token; `sandbox_url` then sends every envd call to
the envd started here. The token is handed to envd through `/init`, exactly as
sandboxd does after a restore, so token enforcement is exercised too.
"""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

from e2b import Sandbox
from e2b.exceptions import FileNotFoundException
from e2b.sandbox.commands.command_handle import CommandExitException

ENVD = sys.argv[1] if len(sys.argv) > 1 else "target/envd/debug/envd"
TOKEN = "compat-token-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def envd_version() -> str:
    return subprocess.check_output([ENVD, "--version"], text=True).strip()


class Stub(BaseHTTPRequestHandler):
    version = "0.0.0"

    def do_POST(self):  # noqa: N802 (http.server naming)
        self.rfile.read(int(self.headers.get("content-length") or 0))
        sandbox_id = self.path.split("/")[3]
        body = json.dumps(
            {
                "templateID": "base",
                "sandboxID": sandbox_id,
                "clientID": "local",
                "envdVersion": Stub.version,
                "envdAccessToken": TOKEN,
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main() -> None:
    Stub.version = envd_version()
    api = HTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=api.serve_forever, daemon=True).start()

    # A private account database: root's home is a scratch dir, so the SDK's
    # login shells (`bash -l`) do not run the host's dotfiles.
    etc = tempfile.mkdtemp(prefix="envd-compat-etc-")
    os.makedirs(f"{etc}/root")
    with open(f"{etc}/passwd", "w") as f:
        f.write(f"root:x:0:0:root:{etc}/root:/bin/bash\n")
    with open(f"{etc}/group", "w") as f:
        f.write("root:x:0:\n")
    port = free_port()
    proc = subprocess.Popen(
        [ENVD, "--port", str(port), "--addr", "127.0.0.1", "--default-user", "root", "--log", "warn",
         "--passwd-file", f"{etc}/passwd", "--group-file", f"{etc}/group"]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/health")
                break
            except Exception:
                time.sleep(0.05)
        req = urllib.request.Request(
            url + "/init",
            data=json.dumps({"accessToken": TOKEN, "envVars": {"COMPAT_VAR": "from-init"}}).encode(),
            headers={"content-type": "application/json"},
        )
        assert urllib.request.urlopen(req).status == 204

        sbx = Sandbox.connect(
            "icompat",
            api_key="e2b_" + "0" * 40,
            api_url=f"http://127.0.0.1:{api.server_address[1]}",
            sandbox_url=url,
        )
        run_checks(sbx)
        asyncio.run(run_async_checks(f"http://127.0.0.1:{api.server_address[1]}", url))
        print(f"OK: official SDK works against envd {Stub.version}")
    finally:
        proc.terminate()
        proc.wait()
        api.shutdown()
        shutil.rmtree(etc, ignore_errors=True)


def check(name, cond):
    print(("ok   " if cond else "FAIL ") + name)
    if not cond:
        raise SystemExit(1)


def run_checks(sbx: Sandbox) -> None:
    r = sbx.commands.run("echo hi")
    check("commands.run echo", r.stdout == "hi\n" and r.exit_code == 0)

    r = sbx.commands.run("echo $COMPAT_VAR $LOCAL", envs={"LOCAL": "req"})
    check("env from /init and request", r.stdout == "from-init req\n")

    try:
        sbx.commands.run("echo oops >&2; exit 7")
        check("failing command raises", False)
    except CommandExitException as e:
        check("failing command raises", e.exit_code == 7 and e.stderr == "oops\n")

    h = sbx.commands.run("sleep 30", background=True)
    check("background pid in list", any(p.pid == h.pid for p in sbx.commands.list()))
    check("kill background", sbx.commands.kill(h.pid) is True)
    try:
        h.wait()
        check("killed command ends with error", False)
    except CommandExitException as e:
        check("killed command ends with error", e.exit_code != 0)
    check("kill unknown pid is False", sbx.commands.kill(999999) is False)

    h = sbx.commands.run("cat", background=True, stdin=True)
    sbx.commands.send_stdin(h.pid, "through stdin\n")
    sbx.commands.close_stdin(h.pid)
    check("stdin round-trip", h.wait().stdout == "through stdin\n")

    h = sbx.commands.run("sleep 0.3; echo late", background=True)
    again = sbx.commands.connect(h.pid)
    check("connect re-attaches", again.wait().stdout == "late\n")

    tmp = tempfile.mkdtemp(prefix="envd-compat-")
    path = f"{tmp}/dir/a.txt"
    info = sbx.files.write(path, "hello")
    check("files.write", info.path == path and info.name == "a.txt")
    check("files.read", sbx.files.read(path) == "hello")
    blob = bytes(range(256)) * 10
    sbx.files.write(f"{tmp}/b.bin", blob)
    check("binary round-trip", bytes(sbx.files.read(f"{tmp}/b.bin", format="bytes")) == blob)
    import io
    sbx.files.write(f"{tmp}/stream.bin", io.BytesIO(blob))  # octet-stream upload (envd >= 0.5.7)
    check("octet-stream upload", bytes(sbx.files.read(f"{tmp}/stream.bin", format="bytes")) == blob)
    sbx.files.write(f"{tmp}/gz.txt", "zipped", gzip=True)
    check("gzip upload", sbx.files.read(f"{tmp}/gz.txt") == "zipped")
    check("gzip download", bytes(sbx.files.read(f"{tmp}/b.bin", format="bytes", gzip=True)) == blob)
    sbx.files.write_files([{"path": f"{tmp}/m1", "data": "1"}, {"path": f"{tmp}/m2", "data": "2"}])
    check("write_files", sbx.files.read(f"{tmp}/m2") == "2")
    check("exists", sbx.files.exists(path) and not sbx.files.exists(f"{tmp}/nope"))
    check("make_dir", sbx.files.make_dir(f"{tmp}/new") is True)
    check("make_dir existing", sbx.files.make_dir(f"{tmp}/new") is False)
    names = sorted(e.name for e in sbx.files.list(tmp))
    check("list", names == ["b.bin", "dir", "gz.txt", "m1", "m2", "new", "stream.bin"])
    deep = [e.path for e in sbx.files.list(tmp, depth=2)]
    check("list depth 2", path in deep)
    moved = sbx.files.rename(path, f"{tmp}/moved.txt")
    check("rename", moved.name == "moved.txt" and sbx.files.read(f"{tmp}/moved.txt") == "hello")
    e = sbx.files.get_info(f"{tmp}/moved.txt")
    check("get_info", e.size == 5 and e.type.value == "file" and e.permissions.startswith("-"))
    sbx.files.remove(f"{tmp}/moved.txt")
    check("remove", not sbx.files.exists(f"{tmp}/moved.txt"))
    try:
        sbx.files.read(f"{tmp}/moved.txt")
        check("read missing raises", False)
    except FileNotFoundException:
        check("read missing raises", True)
    check("is_running", sbx.is_running())

    # Pre-signed URLs (the sandbox is secure: envd has an access token).
    sbx.files.write(f"{tmp}/signed.txt", "signed")
    with urllib.request.urlopen(sbx.download_url(f"{tmp}/signed.txt")) as r:
        check("signed download_url", r.read() == b"signed")
    boundary = "b0undary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\nvia-url\r\n--{boundary}--\r\n"
    ).encode()
    req = urllib.request.Request(
        sbx.upload_url(f"{tmp}/uploaded.txt"),
        data=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    urllib.request.urlopen(req).read()
    check("signed upload_url", sbx.files.read(f"{tmp}/uploaded.txt") == "via-url")

    # Streamed stdin (client-streaming StreamInput).
    h = sbx.commands.run("cat", background=True, stdin=True)
    sbx.commands.stream_input(h.pid, [b"one ", "two\n"])
    sbx.commands.close_stdin(h.pid)
    check("commands.stream_input", h.wait().stdout == "one two\n")

    # PTY: create, resize, type, exit.
    from e2b import PtySize
    got = bytearray()
    term = sbx.pty.create(PtySize(rows=24, cols=80))
    sbx.pty.resize(term.pid, PtySize(rows=30, cols=90))
    sbx.pty.send_stdin(term.pid, b"stty size; exit 3\n")
    try:
        term.wait(on_pty=lambda data: got.extend(data))
    except CommandExitException as e:
        check("pty exit code", e.exit_code == 3)
    check("pty output and resize", b"30 90" in got)

    # File metadata (envd >= 0.6.2): X-Metadata-* headers stored as xattrs.
    info = sbx.files.write(f"{tmp}/meta.txt", "m", metadata={"owner": "alice"})
    check("write metadata", info.metadata == {"owner": "alice"})
    check("get_info metadata", sbx.files.get_info(f"{tmp}/meta.txt").metadata == {"owner": "alice"})

    # Directory watch (the sync SDK polls CreateWatcher/GetWatcherEvents).
    w = sbx.files.watch_dir(tmp, recursive=True)
    sbx.files.write(f"{tmp}/dir/watched.txt", "w")
    events = []
    for _ in range(60):  # events arrive asynchronously
        events += w.get_new_events()
        if any(e.name == "dir/watched.txt" for e in events):
            break
        time.sleep(0.05)
    check("watch_dir (polling)", any(e.name == "dir/watched.txt" and e.type.value == "create" for e in events))
    w.stop()

    sbx.files.remove(tmp)


async def run_async_checks(api_url: str, url: str) -> None:
    from e2b import AsyncSandbox

    sbx = await AsyncSandbox.connect("icompat", api_key="e2b_" + "0" * 40, api_url=api_url, sandbox_url=url)
    r = await sbx.commands.run("echo async")
    check("async commands.run", r.stdout == "async\n")
    tmp = tempfile.mkdtemp(prefix="envd-compat-async-")
    seen = []
    # The WatchDir stream, with entries (>= 0.6.3) and the network-mount opt-in (>= 0.6.4).
    handle = await sbx.files.watch_dir(tmp, on_event=seen.append, include_entry=True, allow_network_mounts=True)
    await sbx.files.write(f"{tmp}/w.txt", "x")
    for _ in range(50):
        if any(e.name == "w.txt" for e in seen):
            break
        await asyncio.sleep(0.05)
    await handle.stop()
    created = [e for e in seen if e.name == "w.txt" and e.type.value == "create"]
    check("async watch_dir (stream)", bool(created))
    check("watch event entry", created[0].entry is not None and created[0].entry.name == "w.txt")
    check("async files.read", await sbx.files.read(f"{tmp}/w.txt") == "x")
    await sbx.files.remove(tmp)


if __name__ == "__main__":
    main()
