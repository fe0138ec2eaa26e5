"""Issue 10: filesystem-only pause and snapshots, and the timeout lifecycle (auto-pause,
auto-resume), through the official SDKs against real microVMs.

A filesystem-only image keeps the disk alone: resuming it (or creating a sandbox from it)
cold-boots the template's kernel over that disk, so processes are gone and files are kept.
Cold boots are slow under TCG (~8-15 s each), so the tests here keep their number small.
"""

import json
import urllib.error
import urllib.request

import pytest
from e2b import Sandbox
from e2b.exceptions import InvalidArgumentException, SandboxException, SandboxNotFoundException

from conftest import wait_until
from official_js import run_js
from store_check import GC_NOW, assert_at_rest, db_rows, orphans, qemu_processes
from test_faults import crash_at, restart

# Counts in memory and publishes the count to a file every 0.2 s (atomically, so a reader
# never sees a half-written file). After a memory restore it continues from where it was;
# after a cold boot it is gone and the file holds the last count flushed before the pause.
TICKER = r"""
import os, time
n = 0
while True:
    n += 1
    with open("/home/user/count.tmp", "w") as f:
        f.write(str(n))
    os.replace("/home/user/count.tmp", "/home/user/count.txt")
    time.sleep(0.2)
"""
KEPT = "written before the pause\n"


def start_ticker(sbx: Sandbox) -> int:
    sbx.files.write("/home/user/ticker.py", TICKER)
    sbx.files.write("/home/user/kept.txt", KEPT)
    sbx.commands.run("python3 /home/user/ticker.py", background=True)
    return wait_until(lambda: count(sbx), 60, "the ticker to count")


def count(sbx: Sandbox) -> int:
    out = sbx.commands.run("cat /home/user/count.txt 2>/dev/null || true").stdout.strip()
    return int(out) if out else 0


def ticker_running(sbx: Sandbox) -> bool:
    return "ticker.py" in sbx.commands.run("ps -eo args").stdout


def state(sandbox_id: str) -> str:
    return Sandbox.get_info(sandbox_id).state.value


def assert_rebooted(sbx: Sandbox, flushed: int):
    """Processes gone, files kept (the count as flushed before the pause), commands work."""
    assert not ticker_running(sbx)
    assert sbx.files.read("/home/user/kept.txt") == KEPT
    assert count(sbx) >= flushed
    assert sbx.commands.run("echo alive").stdout.strip() == "alive"
    assert state(sbx.sandbox_id) == "running"


def api(server: str, method: str, path: str, body=None):
    """A raw REST call (for what the SDKs refuse before sending). Returns (status, json)."""
    import os

    req = urllib.request.Request(
        server + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"X-API-Key": os.environ["E2B_API_KEY"], "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def test_filesystem_pause_reboots_with_files_kept(base_template, sandboxd):
    sbx = Sandbox.create(base_template, timeout=300)
    sid = sbx.sandbox_id
    try:
        start_ticker(sbx)
        assert ticker_running(sbx)
        old_token = sbx._envd_access_token
        flushed = count(sbx)

        assert sbx.pause(keep_memory=False) is True
        assert state(sid) == "paused"
        assert Sandbox.pause(sid, keep_memory=False) is False  # already paused: 409
        # The instance form, as after a pause on E2B: the sandbox keeps its token (E2B derives
        # it from the ID), which the rebooted envd is given again.
        resumed = sbx.connect(timeout=300)
        assert resumed._envd_access_token == old_token
        assert Sandbox.connect(sid, timeout=300)._envd_access_token == old_token
        assert_rebooted(resumed, flushed)

        # The same through `mode="filesystem"`, then the JS SDK resumes it, checks it and
        # pauses it again with its own option (`keepMemory: false`).
        start_ticker(resumed)
        flushed = count(resumed)
        assert resumed.pause(mode="filesystem") is True
        js = run_js(f"""
            import {{ Sandbox }} from 'e2b'
            const s = await Sandbox.connect('{sid}')
            const ps = (await s.commands.run('ps -eo args')).stdout
            const kept = await s.files.read('/home/user/kept.txt')
            const n = Number((await s.commands.run('cat /home/user/count.txt')).stdout.trim())
            await s.files.write('/home/user/from-js.txt', 'js was here')
            const paused = await s.pause({{ keepMemory: false }})
            const info = await Sandbox.getInfo('{sid}')
            console.log(JSON.stringify({{ ticker: ps.includes('ticker.py'), kept, n, paused, state: info.state }}))
        """)
        assert js == {"ticker": False, "kept": KEPT, "n": js["n"], "paused": True, "state": "paused"}
        assert js["n"] >= flushed
        again = Sandbox.connect(sid, timeout=300)
        assert again.files.read("/home/user/from-js.txt") == "js was here"
        assert_rebooted(again, js["n"])
    finally:
        Sandbox.kill(sid)


def test_filesystem_snapshot_is_small_and_boots(base_template, sandboxd, sandbox):
    start_ticker(sandbox)
    full = sandbox.create_snapshot()
    flushed = count(sandbox)
    fs = sandbox.create_snapshot(mode="filesystem")
    try:
        assert ticker_running(sandbox)  # the source keeps running, writers thawed
        wait_until(lambda: count(sandbox) > flushed, 30, "the ticker to go on")
        status, listed = api(sandboxd, "GET", f"/snapshots?sandboxID={sandbox.sandbox_id}")
        assert status == 200
        sizes = {s["snapshotID"]: s["sizeBytes"] for s in listed}
        assert 0 < sizes[fs.snapshot_id] < 32 << 20  # the disk delta alone
        assert sizes[fs.snapshot_id] * 4 < sizes[full.snapshot_id]  # no RAM file

        clone = Sandbox.create(fs.snapshot_id, timeout=120)
        try:
            assert_rebooted(clone, flushed)
            assert clone.sandbox_id != sandbox.sandbox_id
        finally:
            clone.kill()
    finally:
        Sandbox.delete_snapshot(full.snapshot_id)
        Sandbox.delete_snapshot(fs.snapshot_id)


def _get(req):
    try:
        return urllib.request.urlopen(req, timeout=10).read().decode()
    except OSError:  # HTTPError (502 while the server starts) included
        return None


def test_timeout_pause_with_auto_resume(base_template, sandboxd):
    sbx = Sandbox.create(base_template, timeout=12, lifecycle={"on_timeout": "pause", "auto_resume": True})
    sid = sbx.sandbox_id
    try:
        assert sbx.get_info().lifecycle == {"on_timeout": "pause", "auto_resume": True}
        start_ticker(sbx)
        wait_until(lambda: state(sid) == "paused", 120, "the auto-pause at the timeout", interval_s=0.5)
        # A command on the handle we already hold resumes it, and the in-memory counter goes on
        # from where it was (a restarted ticker would count from 1 again).
        at_pause = count(sbx)
        assert state(sid) == "running"
        wait_until(lambda: count(sbx) > at_pause, 30, "the ticker to go on")
        assert ticker_running(sbx)

        # Traffic to any port (`get_host`) wakes it as well, and is answered by the guest's
        # server, which the full-memory pause kept running.
        sbx.files.write("/home/user/www/hello.txt", "served after auto-resume")
        sbx.commands.run("cd /home/user/www && python3 -m http.server 8080", background=True, timeout=0)
        host = sbx.get_host(8080)
        req = urllib.request.Request(sandboxd + "/hello.txt", headers={"Host": host})
        wait_until(lambda: _get(req) == "served after auto-resume", 30, "the guest's server")
        sbx.set_timeout(2)
        wait_until(lambda: state(sid) == "paused", 120, "the second auto-pause", interval_s=0.5)
        assert urllib.request.urlopen(req, timeout=60).read().decode() == "served after auto-resume"
        assert state(sid) == "running"
        assert ticker_running(sbx)

        # A filesystem-only pause is never resumed by traffic, only by an explicit connect.
        assert sbx.pause(keep_memory=False) is True
        assert sbx.is_running() is False
        assert state(sid) == "paused"
    finally:
        Sandbox.kill(sid)


def test_timeout_filesystem_pause_then_connect(base_template, sandboxd):
    sbx = Sandbox.create(base_template, timeout=12, lifecycle={"on_timeout": {"action": "pause", "mode": "filesystem"}})
    sid = sbx.sandbox_id
    try:
        assert sbx.get_info().lifecycle == {"on_timeout": "pause", "auto_resume": False}
        start_ticker(sbx)
        flushed = count(sbx)
        wait_until(lambda: state(sid) == "paused", 120, "the auto-pause at the timeout", interval_s=0.5)
        assert sbx.is_running() is False  # no auto-resume
        resumed = Sandbox.connect(sid, timeout=120)
        assert_rebooted(resumed, flushed)
    finally:
        Sandbox.kill(sid)


def test_reboot_a_full_memory_pause_from_js(base_template, sandboxd):
    """`onResume: 'reboot'` (wire `memory: false`) cold-boots even a full-memory pause."""
    sbx = Sandbox.create(base_template, timeout=300)
    sid = sbx.sandbox_id
    try:
        start_ticker(sbx)
        assert sbx.pause(strict=True) is True  # `requireHealthyGuest`: envd answers, so it pauses
        js = run_js(f"""
            import {{ Sandbox }} from 'e2b'
            const s = await Sandbox.connect('{sid}', {{ onResume: 'reboot' }})
            const ps = (await s.commands.run('ps -eo args')).stdout
            console.log(JSON.stringify({{ ticker: ps.includes('ticker.py'), kept: await s.files.read('/home/user/kept.txt') }}))
        """)
        assert js == {"ticker": False, "kept": KEPT}
    finally:
        Sandbox.kill(sid)


def test_kill9_mid_filesystem_pause_keeps_it_paused_and_bootable(base_template, make_sandboxd):
    """Crash between committing a filesystem-only pause and killing the old VM: after the
    restart it is paused, cold-boots with its files, and once killed nothing is left."""
    server = make_sandboxd(env=GC_NOW)
    opts = server.opts
    sbx = Sandbox.create(base_template, timeout=600, **opts)
    sid = sbx.sandbox_id
    sbx.files.write("/home/user/kept.txt", KEPT)

    crash_at(server, "pause.committed", lambda: Sandbox.pause(sid, keep_memory=False, **opts))
    assert sid in qemu_processes(server).values()  # the old VM still runs
    assert {s["id"]: s["state"] for s in db_rows(server)[0]}[sid] == "paused"

    restart(server)  # the old VM is gone, the image and its layer are referenced
    assert Sandbox.get_info(sid, **opts).state.value == "paused"
    resumed = Sandbox.connect(sid, timeout=120, **opts)
    assert resumed.files.read("/home/user/kept.txt") == KEPT
    assert_at_rest(server)
    Sandbox.kill(sid, **opts)
    empty = {"image_dirs": [], "missing_image_dirs": [], "run_dirs": [], "layers": []}
    wait_until(lambda: db_rows(server)[1] == [] and orphans(server) == empty, 30, "the GC to free the image")
    assert_at_rest(server)


def test_template_without_boot_assets_refuses_filesystem_modes(base_template, make_sandboxd, tmp_path, monkeypatch):
    """A template built before boot assets were kept: every filesystem-only request is a clear
    400 that changes nothing; full pause and restore keep working."""
    import shutil

    from conftest import templates_dir

    old = tmp_path / "templates"
    shutil.copytree(templates_dir() / base_template, old / base_template)
    meta = json.loads((old / base_template / "meta.json").read_text())
    del meta["boot"]
    (old / base_template / "meta.json").write_text(json.dumps(meta))
    monkeypatch.setenv("SANDBOXD_TEMPLATES_DIR", str(old))
    server = make_sandboxd()
    opts = server.opts

    with pytest.raises(SandboxException) as e:
        Sandbox.create(base_template, lifecycle={"on_timeout": {"action": "pause", "mode": "filesystem"}}, **opts)
    assert "rebuild" in str(e.value)
    sbx = Sandbox.create(base_template, timeout=120, **opts)
    sid = sbx.sandbox_id
    sbx.files.write("/home/user/kept.txt", KEPT)
    for refused in (lambda: sbx.pause(keep_memory=False), lambda: sbx.create_snapshot(mode="filesystem")):
        with pytest.raises(SandboxException) as e:
            refused()
        assert "rebuild the template" in str(e.value)
        assert Sandbox.get_info(sid, **opts).state.value == "running"
        assert sbx.files.read("/home/user/kept.txt") == KEPT
    assert Sandbox.list_snapshots(**opts).next_items() == []

    assert sbx.pause() is True
    with pytest.raises(SandboxException) as e:
        Sandbox.connect(sid, on_resume="reboot", **opts)
    assert "rebuild the template" in str(e.value)
    assert Sandbox.get_info(sid, **opts).state.value == "paused"
    resumed = Sandbox.connect(sid, **opts)
    assert resumed.files.read("/home/user/kept.txt") == KEPT
    assert_at_rest(server)


def test_lifecycle_bad_input(base_template, sandboxd, sandbox):
    def listed():
        return sorted(s.sandbox_id for s in Sandbox.list().next_items())

    before = listed()
    status, body = api(sandboxd, "POST", "/v2/sandboxes",
                       {"templateID": base_template, "autoPause": True, "autoPauseMemory": False,
                        "autoResume": {"enabled": True}})
    assert status == 400, body
    assert "cannot be combined with autoResume" in body["message"]
    status, body = api(sandboxd, "POST", "/v2/sandboxes", {"templateID": base_template, "autoPauseMemory": False})
    assert status == 400, body
    assert body["message"] == "autoPauseMemory=false only applies when autoPause is true."
    status, body = api(sandboxd, "POST", "/v2/sandboxes", {"templateID": base_template, "autoPauseMemory": "no"})
    assert status == 400, body
    # The SDK refuses the combination itself, before any request.
    with pytest.raises(InvalidArgumentException):
        Sandbox.create(base_template, lifecycle={"on_timeout": {"action": "pause", "mode": "filesystem"}, "auto_resume": True})
    assert listed() == before

    # A malformed pause body changes nothing.
    status, body = api(sandboxd, "POST", f"/sandboxes/{sandbox.sandbox_id}/pause", {"memory": "no"})
    assert status == 400, body
    assert state(sandbox.sandbox_id) == "running"
    assert sandbox.commands.run("true").exit_code == 0

    with pytest.raises(SandboxNotFoundException):
        Sandbox.pause("ithisdoesnotexist0000", keep_memory=False)
    status, body = api(sandboxd, "POST", "/sandboxes/ithisdoesnotexist0000/pause", {"memory": False})
    assert status == 404, body
    status, body = api(sandboxd, "POST", "/sandboxes/ithisdoesnotexist0000/snapshots", {"memory": False})
    assert status == 404, body
    status, body = api(sandboxd, "POST", "/sandboxes/ithisdoesnotexist0000/connect", {"timeout": 10, "memory": False})
    assert status == 404, body
    with pytest.raises(SandboxException):
        Sandbox.connect("ithisdoesnotexist0000", on_resume="reboot")
    assert listed() == before
