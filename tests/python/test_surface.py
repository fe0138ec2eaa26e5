"""The E2B surface added for issue 12, against a real sandboxd (one microVM per test): command
handles (stdin, output callbacks on wait, iteration, retained output), per-call request
timeouts, file formats and write_files, and signed upload/download URLs used over plain HTTP."""

import asyncio
import io
import urllib.request
import uuid

import pytest

import e2b
from e2b import AsyncSandbox, Sandbox

from conftest import Server, wait_until

pytestmark = pytest.mark.sandboxd


def test_command_handles(sandbox: Sandbox) -> None:
    # stdin: what we send comes back through cat; wait() replays all output to the callback.
    h = sandbox.commands.run("cat", background=True, stdin=True, request_timeout=30)
    h.send_stdin("hello\n")
    h.send_stdin(b"bytes\n", request_timeout=10)
    h.close_stdin()
    seen = []
    r = h.wait(on_stdout=seen.append)
    assert r.stdout == "hello\nbytes\n" and "".join(seen) == r.stdout

    # Iteration yields (stdout, stderr, pty) chunks in order, from the start.
    h = sandbox.commands.run("echo out; echo err >&2; echo out2", background=True)
    chunks = list(h)
    assert "".join(o for o, _, _ in chunks if o) == "out\nout2\n"
    assert "".join(e for _, e, _ in chunks if e) == "err\n"
    assert all(p is None for _, _, p in chunks)
    assert h.wait().exit_code == 0

    # connect() to a running process by pid; its output from then on reaches wait's callbacks.
    bg = sandbox.commands.run("read line; echo got-$line", background=True, stdin=True)
    assert bg.pid in [p.pid for p in sandbox.commands.list(request_timeout=10)]
    other = sandbox.commands.connect(bg.pid)
    sandbox.commands.send_stdin(bg.pid, "x\n", request_timeout=10)
    out = []
    assert other.wait(on_stdout=out.append).stdout == "got-x\n"
    assert "".join(out) == "got-x\n"

    # stream_input: chunks arrive in order; a single str is refused.
    cat = sandbox.commands.run("cat", background=True, stdin=True)
    sandbox.commands.stream_input(cat.pid, (f"{i}," for i in range(50)))
    sandbox.commands.close_stdin(cat.pid)
    assert cat.wait().stdout == "".join(f"{i}," for i in range(50))
    with pytest.raises(e2b.InvalidArgumentException):
        sandbox.commands.stream_input(cat.pid, "not chunks")

    # retain_output=False: callbacks get the output, the result does not carry it.
    cb = []
    r = sandbox.commands.run("echo quiet", on_stdout=cb.append, retain_output=False)
    assert (r.stdout, r.stderr, "".join(cb)) == (None, None, "quiet\n")

    # A killed background command ends with a non-zero exit.
    h = sandbox.commands.run("sleep 60", background=True)
    assert sandbox.commands.kill(h.pid, request_timeout=10) is True
    with pytest.raises(e2b.CommandExitException):
        h.wait()


def test_files_and_signed_urls(sandbox: Sandbox) -> None:
    f = sandbox.files
    f.write("/tmp/s.txt", "text", request_timeout=20)
    f.write("/tmp/b.bin", b"\x00\x01")
    f.write("/tmp/io.txt", io.BytesIO(b"from a file object"))
    assert f.read("/tmp/s.txt", request_timeout=20) == "text"
    assert f.read("/tmp/b.bin", format="bytes") == bytearray(b"\x00\x01")
    assert b"".join(f.read("/tmp/io.txt", format="stream")) == b"from a file object"
    infos = f.write_files([{"path": "/tmp/w/1.txt", "data": "one"}, {"path": "/tmp/w/2.txt", "data": b"two"}])
    assert [i.path for i in infos] == ["/tmp/w/1.txt", "/tmp/w/2.txt"]
    assert sorted(e.name for e in f.list("/tmp/w", request_timeout=20)) == ["1.txt", "2.txt"]
    with pytest.raises(e2b.InvalidArgumentException, match="'gzip'"):
        f.write("/tmp/g.txt", "x", gzip=True)
    assert not f.exists("/tmp/g.txt")

    # Signed URLs (E2B's v1 signature, from our core) work over plain HTTP without the token.
    with urllib.request.urlopen(sandbox.download_url("/tmp/s.txt"), timeout=30) as r:
        assert r.read() == b"text"
    boundary = uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"up.txt\"\r\n"
        f"Content-Type: application/octet-stream\r\n\r\nuploaded\r\n--{boundary}--\r\n"
    ).encode()
    req = urllib.request.Request(
        sandbox.upload_url("/tmp/up.txt", use_signature_expiration=120),
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        assert 200 <= r.status < 300
    assert f.read("/tmp/up.txt") == "uploaded"
    # A tampered signature is refused.
    bad = sandbox.download_url("/tmp/s.txt").replace("signature=v1_", "signature=v1_x")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(bad, timeout=30)
    assert exc.value.code in (401, 403)


def test_pty_and_watch_dir(sandbox: Sandbox) -> None:
    # A terminal of the asked size; input typed through send_stdin; output as bytes on on_pty.
    term = sandbox.pty.create(e2b.PtySize(rows=24, cols=80))
    sandbox.pty.resize(term.pid, e2b.PtySize(rows=30, cols=100))
    sandbox.pty.send_stdin(term.pid, b"stty size; echo $TERM; exit 7\n")
    out = bytearray()
    with pytest.raises(e2b.CommandExitException) as exc:
        term.wait(on_pty=out.extend)
    assert exc.value.exit_code == 7
    assert b"30 100" in out and b"xterm-256color" in out
    term = sandbox.pty.create(e2b.PtySize(rows=10, cols=40), timeout=0)
    assert sandbox.pty.kill(term.pid) is True
    with pytest.raises(e2b.CommandExitException):
        term.wait()

    # Polling watch (the sync API): events accumulate until get_new_events().
    sandbox.files.make_dir("/tmp/watched")
    w = sandbox.files.watch_dir("/tmp/watched", recursive=True)
    sandbox.files.write("/tmp/watched/f.txt", "x")
    seen = []
    wait_until(lambda: seen.extend(w.get_new_events()) or any(e.name == "f.txt" for e in seen), 20, "f.txt event")
    assert all(isinstance(e, e2b.FilesystemEvent) for e in seen)
    assert e2b.FilesystemEventType.CREATE in {e.type for e in seen if e.name == "f.txt"}
    w.stop()
    with pytest.raises(e2b.SandboxException, match="already stopped"):
        w.get_new_events()
    with pytest.raises(e2b.FileNotFoundException):
        sandbox.files.watch_dir("/tmp/not-there")

    # Metrics: a list of SandboxMetrics (sandboxd may have no sample yet); unknown sandbox: 404.
    ms = sandbox.get_metrics()
    assert isinstance(ms, list) and all(isinstance(m, e2b.SandboxMetrics) for m in ms)
    with pytest.raises(e2b.SandboxNotFoundException):
        Sandbox.get_metrics("inotexisting00000000")


async def test_async_command_handle(sandboxd: Server) -> None:
    sbx = await AsyncSandbox.create()
    try:
        got = []

        async def collect(chunk: str) -> None:  # an async handler runs on this loop
            got.append(chunk)

        h = await sbx.commands.run("cat; echo done >&2", background=True, stdin=True, on_stdout=collect)
        await h.send_stdin("ping\n")
        await h.close_stdin()
        r = await h.wait()
        assert (r.stdout, r.stderr) == ("ping\n", "done\n")
        assert (h.stdout, h.stderr, h.exit_code, h.error) == ("ping\n", "done\n", 0, None)
        deadline = asyncio.get_running_loop().time() + 10
        while "".join(got) != "ping\n":  # the handler's coroutine runs on this loop, soon
            assert asyncio.get_running_loop().time() < deadline, got
            await asyncio.sleep(0.05)
        assert (await sbx.files.write_files([{"path": "/tmp/a", "data": "A"}]))[0].path == "/tmp/a"
        assert await sbx.files.read("/tmp/a", request_timeout=20) == "A"
        assert await sbx.commands.list(request_timeout=10) is not None

        # Streaming watch: events pushed to on_event.
        await sbx.files.make_dir("/tmp/aw")
        events = []
        handle = await sbx.files.watch_dir("/tmp/aw", on_event=events.append)
        await sbx.files.write("/tmp/aw/new.txt", "n")
        deadline = asyncio.get_running_loop().time() + 20
        while not any(e.name == "new.txt" for e in events):
            assert asyncio.get_running_loop().time() < deadline, events
            await asyncio.sleep(0.2)
        await handle.stop()

        # PTY with on_data.
        data = bytearray()
        term = await sbx.pty.create(e2b.PtySize(rows=24, cols=80), on_data=data.extend)
        async with sbx.pty.stream_input(term.pid) as typing:
            await typing.send("echo hi-")
            await typing.send(b"pty; exit\n")
        await term.wait()
        assert b"hi-pty" in data
    finally:
        await sbx.kill()


def test_metrics_and_network_updates_against_sandboxd(sandbox: Sandbox) -> None:
    """get_metrics and update_network reach sandboxd's real sampler and network rules."""
    samples = wait_until(lambda: sandbox.get_metrics(), 30, "a metrics sample from sandboxd's sampler")
    m = samples[-1]
    assert m.cpu_count >= 1 and 0 <= m.cpu_used_pct <= 100
    assert 0 < m.mem_used < m.mem_total and 0 < m.disk_used < m.disk_total

    sandbox.update_network({"allow_out": ["198.18.0.1"], "deny_out": ["0.0.0.0/0"]})
    net = sandbox.get_info().network
    assert net is not None, "sandboxd did not keep the rules"
    flat = str(net)
    assert "198.18.0.1" in flat and "0.0.0.0/0" in flat
    # A malformed rule is refused by sandboxd and changes nothing.
    with pytest.raises(e2b.SandboxException):
        sandbox.update_network({"deny_out": ["not-a-cidr/99"]})
    assert "198.18.0.1" in str(sandbox.get_info().network)
