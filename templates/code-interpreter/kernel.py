"""One execution context of the code interpreter: a persistent Python namespace.

Protocol with server.py: requests arrive on stdin as JSON lines (`{"code", "env"}`); events go
out as JSON lines on the file descriptor named by `E2B_CI_EVENTS_FD`, in the order they happen:
`number_of_executions`, `stdout` / `stderr` (everything the code writes, its subprocesses
included: fds 1 and 2 are pipes this process drains), `result` (the value of a trailing
expression, and `display()` calls), `error`, and `end_of_execution` once all output of the
execution has been sent. SIGINT interrupts the running execution (KeyboardInterrupt).
"""

import ast
import base64
import codecs
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import traceback

EVENTS = os.fdopen(int(os.environ.pop("E2B_CI_EVENTS_FD")), "w", buffering=1)
LOCK = threading.Lock()
SENTINEL = b"\x00\x01e2b-drain\x01\x00"


def emit(event):
    with LOCK:
        EVENTS.write(json.dumps(event) + "\n")
        EVENTS.flush()


class Pump(threading.Thread):
    """Forwards what is written to one of fds 1 / 2 as events; `drain()` returns once every
    byte written before it was forwarded."""

    def __init__(self, fd, kind):
        super().__init__(daemon=True)
        self.kind = kind
        r, w = os.pipe()
        os.dup2(w, fd)
        os.close(w)
        self.fd, self.r = fd, r
        self.drained = threading.Event()
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def send(self, data):
        text = self.decoder.decode(data)
        if text:
            emit({"type": self.kind, "text": text, "timestamp": time.time_ns()})

    def run(self):
        buf = b""
        while True:
            chunk = os.read(self.r, 65536)
            if not chunk:
                return
            buf += chunk
            while True:
                i = buf.find(SENTINEL)
                if i < 0:
                    break
                self.send(buf[:i])
                buf = buf[i + len(SENTINEL):]
                self.drained.set()
            # Send all but a tail that may be the start of a sentinel split across reads.
            keep = next((k for k in range(min(len(buf), len(SENTINEL) - 1), 0, -1) if buf.endswith(SENTINEL[:k])), 0)
            self.send(buf[: len(buf) - keep])
            buf = buf[len(buf) - keep:]

    def drain(self):
        self.drained.clear()
        os.write(self.fd, SENTINEL)
        self.drained.wait(30)


def mime_bundle(value):
    out = {"text": repr(value)}
    for attr, key in (("_repr_html_", "html"), ("_repr_markdown_", "markdown"), ("_repr_latex_", "latex"),
                      ("_repr_svg_", "svg"), ("_repr_json_", "json")):
        fn = getattr(value, attr, None)
        if callable(fn):
            try:
                r = fn()
                if r is not None:
                    out[key] = r
            except Exception:
                pass
    fn = getattr(value, "_repr_png_", None)
    if callable(fn):
        try:
            png = fn()
            if png:
                out["png"] = base64.b64encode(png).decode() if isinstance(png, bytes) else png
        except Exception:
            pass
    return out


def display(*objs):
    """Jupyter's `display()`: each object becomes a (non-main) result."""
    for o in objs:
        emit({"type": "result", "is_main_result": False, **mime_bundle(o)})


def sh(cmd):
    """`!cmd` lines: run through the shell, output to this context's stdout / stderr."""
    subprocess.run(cmd, shell=True, check=False)


SHELL_LINE = re.compile(r"^(\s*)[!](.*)$")
PIP_LINE = re.compile(r"^(\s*)%pip\s+(.*)$")


def transform(code):
    lines = []
    for line in code.split("\n"):
        m = SHELL_LINE.match(line)
        if m:
            line = f"{m.group(1)}__e2b_sh__({m.group(2)!r})"
        else:
            m = PIP_LINE.match(line)
            if m:
                line = f"{m.group(1)}__e2b_sh__({(sys.executable + ' -m pip ' + m.group(2))!r})"
        lines.append(line)
    return "\n".join(lines)


def user_traceback(e):
    """The traceback from the first frame of the user's code on (the kernel's own frames
    are not the user's business)."""
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != "<cell>":
        tb = tb.tb_next
    if tb is None:
        return "".join(traceback.format_exception_only(type(e), e))
    return "".join(traceback.format_exception(type(e), e, tb))


def main():
    # Started from a background job, SIGINT may arrive ignored: interrupts must raise.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    requests = os.fdopen(os.dup(0), "r")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    pumps = [Pump(1, "stdout"), Pump(2, "stderr")]
    for p in pumps:
        p.start()
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    ns = {"__name__": "__main__", "__builtins__": __builtins__, "display": display, "__e2b_sh__": sh}
    count = 0
    while True:
        try:
            line = requests.readline()
        except KeyboardInterrupt:
            continue
        if not line:
            return
        req = json.loads(line)
        count += 1
        emit({"type": "number_of_executions", "execution_count": count})
        env = req.get("env") or {}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update({k: str(v) for k, v in env.items()})
        def settle():
            # Output written so far goes out before what comes next (a result, an error).
            try:
                sys.stdout.flush()
                sys.stderr.flush()
                for p in pumps:
                    p.drain()
            except KeyboardInterrupt:
                pass

        try:
            tree = ast.parse(transform(req.get("code", "")), "<cell>", "exec")
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            exec(compile(tree, "<cell>", "exec"), ns)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), ns)
                if value is not None:
                    ns["_"] = value
                    settle()
                    emit({"type": "result", "is_main_result": True, **mime_bundle(value)})
        except BaseException as e:  # noqa: BLE001 - the user's code may raise anything, SystemExit too
            settle()
            emit({"type": "error", "name": type(e).__name__, "value": str(e), "traceback": user_traceback(e)})
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            settle()
            emit({"type": "end_of_execution"})


if __name__ == "__main__":
    main()
