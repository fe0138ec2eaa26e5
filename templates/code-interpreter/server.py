"""The code interpreter server of sandboxd's `code-interpreter-v1` template: the HTTP API that
E2B's `e2b-code-interpreter` packages speak on port 49999, over persistent Python processes
(`kernel.py`, one per context). Standard library only.

    POST   /execute                {code, context_id?, language?, env_vars?} -> NDJSON events
    POST   /contexts               {language?, cwd?} -> {id, language, cwd}
    GET    /contexts               -> [{id, language, cwd}]
    DELETE /contexts/{id}          -> 204
    POST   /contexts/{id}/restart  -> 204
    GET    /health                 -> 200

Each context runs one execution at a time (others wait their turn). A client that goes away
mid-execution interrupts it (SIGINT, as Jupyter's interrupt). Only Python is supported; other
languages are refused with 400.
"""

import json
import os
import select
import socket
import signal
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("E2B_CI_PORT", "49999"))
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CWD = os.path.expanduser("~") if os.path.isdir(os.path.expanduser("~")) else "/"
LANGUAGES = {"python": "python", "py": "python", "python3": "python"}


class Kernel:
    def __init__(self, language, cwd):
        self.id = str(uuid.uuid4())
        self.language = language
        self.cwd = cwd
        self.lock = threading.Lock()
        self.start()

    def start(self):
        r, w = os.pipe()
        env = dict(os.environ, E2B_CI_EVENTS_FD=str(w), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [sys.executable, "-u", os.path.join(HERE, "kernel.py")],
            stdin=subprocess.PIPE, cwd=self.cwd, env=env, pass_fds=(w,), start_new_session=True,
        )
        os.close(w)
        self.events = os.fdopen(r, "r")

    def stop(self):
        try:
            self.proc.kill()
            self.proc.wait(5)
        except Exception:
            pass
        self.events.close()

    def restart(self):
        with self.lock:
            self.stop()
            self.start()

    def info(self):
        return {"id": self.id, "language": self.language, "cwd": self.cwd}

    def execute(self, code, env, write):
        """Runs `code`, passing each event line to `write` (which returns False once the client
        is gone: the execution is then interrupted and its remaining events dropped)."""
        with self.lock:
            if self.proc.poll() is not None:
                self.stop()
                self.start()
            try:
                self.proc.stdin.write((json.dumps({"code": code, "env": env}) + "\n").encode())
                self.proc.stdin.flush()
            except OSError:
                self.stop()
                self.start()
                write(json.dumps({"type": "error", "name": "KernelError", "value": "the context's process died", "traceback": ""}))
                return
            connected = True
            while True:
                line = self.events.readline()
                if not line:
                    # The process died mid-execution (e.g. os._exit, out of memory).
                    if connected:
                        write(json.dumps({"type": "error", "name": "KernelDied",
                                          "value": "the context's process exited during the execution; it was restarted",
                                          "traceback": ""}))
                    self.stop()
                    self.start()
                    return
                if connected and not write(line.rstrip("\n")):
                    connected = False
                    try:
                        os.kill(self.proc.pid, signal.SIGINT)
                    except OSError:
                        pass
                if json.loads(line).get("type") == "end_of_execution":
                    return


class Contexts:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_id = {}
        self.default = {}

    def create(self, language, cwd):
        k = Kernel(language, cwd)
        with self.lock:
            self.by_id[k.id] = k
        return k

    def default_for(self, language):
        with self.lock:
            k = self.default.get(language)
        if k is None:
            k = self.create(language, DEFAULT_CWD)
            with self.lock:
                self.default.setdefault(language, k)
                k = self.default[language]
        return k

    def get(self, context_id):
        with self.lock:
            return self.by_id.get(context_id)

    def remove(self, context_id):
        with self.lock:
            k = self.by_id.pop(context_id, None)
            for lang, d in list(self.default.items()):
                if d is k:
                    del self.default[lang]
        if k:
            k.stop()
        return k is not None

    def all(self):
        with self.lock:
            return list(self.by_id.values())


CONTEXTS = Contexts()


def language_of(name):
    if name is None:
        return "python"
    lang = LANGUAGES.get(str(name).lower())
    if lang is None:
        raise ValueError(f"language {name!r} is not supported by this code interpreter (python only)")
    return lang


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sandboxd-code-interpreter"

    def log_message(self, *args):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw.strip():
            return {}
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("the request body must be a JSON object")
        return data

    def reply(self, status, payload=None):
        body = b"" if payload is None else (payload if isinstance(payload, bytes) else json.dumps(payload).encode())
        self.send_response(status)
        if payload is not None:
            self.send_header("Content-Type", "application/json" if not isinstance(payload, bytes) else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def fail(self, status, message):
        self.reply(status, message.encode())

    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, b"OK")
        if self.path == "/contexts":
            return self.reply(200, [k.info() for k in CONTEXTS.all()])
        self.fail(404, f"{self.path} not found")

    def do_DELETE(self):
        parts = self.path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "contexts":
            if CONTEXTS.remove(parts[1]):
                return self.reply(204)
            return self.fail(404, f"context {parts[1]} not found")
        self.fail(404, f"{self.path} not found")

    def do_POST(self):
        try:
            data = self.body()
        except ValueError as e:
            return self.fail(400, f"invalid JSON body: {e}")
        parts = self.path.strip("/").split("/")
        try:
            if parts == ["execute"]:
                return self.execute(data)
            if parts == ["contexts"]:
                cwd = data.get("cwd") or DEFAULT_CWD
                if not os.path.isdir(cwd):
                    return self.fail(400, f"cwd {cwd} is not a directory")
                return self.reply(200, CONTEXTS.create(language_of(data.get("language")), cwd).info())
            if len(parts) == 3 and parts[0] == "contexts" and parts[2] == "restart":
                k = CONTEXTS.get(parts[1])
                if k is None:
                    return self.fail(404, f"context {parts[1]} not found")
                k.restart()
                return self.reply(204)
        except ValueError as e:
            return self.fail(400, str(e))
        self.fail(404, f"{self.path} not found")

    def execute(self, data):
        code = data.get("code")
        if not isinstance(code, str):
            return self.fail(400, "code must be a string")
        env = data.get("env_vars") or {}
        if data.get("context_id"):
            k = CONTEXTS.get(data["context_id"])
            if k is None:
                return self.fail(404, f"context {data['context_id']} not found")
        else:
            k = CONTEXTS.default_for(language_of(data.get("language")))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def write(line):
            chunk = (line + "\n").encode()
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                return True
            except OSError:
                return False

        # A client that goes away while the code runs silently is noticed here, not only at the
        # next event: the execution is interrupted.
        done = threading.Event()

        def watch():
            while not done.wait(0.2):
                try:
                    readable, _, _ = select.select([self.connection], [], [], 0)
                    if readable and self.connection.recv(1, socket.MSG_PEEK) == b"":
                        os.kill(k.proc.pid, signal.SIGINT)
                        return
                except OSError:
                    return

        threading.Thread(target=watch, daemon=True).start()
        try:
            k.execute(code, env, write)
        finally:
            done.set()
        try:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:
            self.close_connection = True


def main():
    # The default Python context is started now, so the template's snapshot holds it warm.
    CONTEXTS.default_for("python")
    server = ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
