"""Issue 10: sandbox metrics and logs through the official SDKs, on real microVMs.

A private server samples every second (`SANDBOXD_METRICS_INTERVAL_SECS=1`). Metrics must follow
what the guest does (memory a process holds, bytes written to disk), and metrics and logs must
carry on across pause/resume, a sandboxd crash and restart, and a kill. Logs are envd's own
lines (process starts, failed requests) and whatever else the guest prints on its serial
console; the v2 route's cursor, limit, direction, level and search work like E2B's.
"""

import datetime
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from e2b import Sandbox
from e2b.exceptions import NotFoundException

from conftest import Sandboxd, build_base_template, wait_until
from official_js import run_js

MIB = 1 << 20
UNKNOWN = "i00000000000000000000"
MARKER = "console-marker-7f3a"


@pytest.fixture(scope="module")
def server():
    build_base_template()
    s = Sandboxd(Path(tempfile.mkdtemp(prefix="sandboxd-metrics-")), env={"SANDBOXD_METRICS_INTERVAL_SECS": "1"})
    s.start()
    try:
        yield s
    finally:
        s.stop()
        shutil.rmtree(s.root, ignore_errors=True)


def get(server, path, **query):
    """GET on the REST API; returns (status, parsed JSON body)."""
    url = f"{server.url}{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    req = urllib.request.Request(url, headers={"X-API-KEY": server.key})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def error(server, status, path, **query):
    got, body = get(server, path, **query)
    assert got == status, (path, query, body)
    assert body["code"] == status and body["message"], body
    return body["message"]


def latest(metrics):
    return max(metrics, key=lambda m: m.timestamp)


def v2_logs(server, sid, **query):
    status, body = get(server, f"/v2/sandboxes/{sid}/logs", **query)
    assert status == 200, body
    return body["logs"]


def test_metrics_follow_the_guest_and_outlive_pause_restart_and_kill(server, base_template):
    opts = server.opts
    sbx = Sandbox.create(base_template, timeout=300, **opts)
    sid = sbx.sandbox_id
    info = sbx.get_info()

    samples = wait_until(lambda: (m := sbx.get_metrics()) and len(m) >= 2 and m, 60, "two samples")
    for m in samples:
        assert m.cpu_count >= 1
        assert 0 <= m.cpu_used_pct <= 100
        assert 0.75 * info.memory_mb * MIB <= m.mem_total <= info.memory_mb * MIB
        assert 0 < m.mem_used < m.mem_total
        assert 0 < m.disk_used < m.disk_total
    stamps = [m.timestamp for m in samples]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    before = latest(samples)

    # ~100 MiB held by a process (every page touched), ~50 MiB written to the disk.
    hog = "import time; b = bytearray(100 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\ntime.sleep(3600)"
    sbx.files.write("/home/user/hog.py", hog)
    sbx.commands.run("python3 /home/user/hog.py", background=True)
    wait_until(lambda: latest(sbx.get_metrics()).mem_used >= before.mem_used + 80 * MIB, 60,
               "memory used to grow by the 100 MiB a process holds")
    sbx.commands.run("dd if=/dev/zero of=/home/user/blob bs=1M count=50 status=none && sync")
    wait_until(lambda: latest(sbx.get_metrics()).disk_used >= before.disk_used + 45 * MIB, 60,
               "disk used to grow by the 50 MiB written")

    # A busy loop shows as CPU usage (averaged over each sampling interval).
    busy_from = datetime.datetime.now(datetime.timezone.utc)
    sbx.commands.run("timeout 3 sh -c 'while :; do :; done' || true")
    wait_until(lambda: max((m.cpu_used_pct for m in sbx.get_metrics() if m.timestamp >= busy_from), default=0) >= 50,
               30, "a sample of the busy CPU")

    # The series is bounded by start/end (unix seconds, inclusive).
    all_samples = sbx.get_metrics()
    mid = all_samples[len(all_samples) // 2].timestamp
    tail = sbx.get_metrics(start=mid)
    assert tail and min(m.timestamp for m in tail) >= mid and len(tail) < len(all_samples)
    head = sbx.get_metrics(end=mid)
    assert head and max(m.timestamp for m in head) <= mid

    # Paused: samples stop, the old ones stay; they also survive a sandboxd crash. A running
    # witness shows the sampler did sample meanwhile.
    witness = Sandbox.create(base_template, timeout=120, **opts)
    assert sbx.pause() is True
    paused_at = datetime.datetime.now(datetime.timezone.utc)
    kept = Sandbox.get_metrics(sid, **opts)
    assert len(kept) >= len(all_samples)
    server.kill9()
    server.start()
    after_restart = Sandbox.get_metrics(sid, **opts)
    assert [m.timestamp for m in after_restart][: len(kept)] == [m.timestamp for m in kept]
    later = paused_at + datetime.timedelta(seconds=1)
    wait_until(lambda: len([m for m in witness.get_metrics() if m.timestamp > later]) >= 3, 60,
               "the sampler to sample the witness while the sandbox is paused")
    witness.kill()

    resumed_at = datetime.datetime.now(datetime.timezone.utc)
    sbx = Sandbox.connect(sid, timeout=300, **opts)
    fresh = wait_until(lambda: [m for m in sbx.get_metrics() if m.timestamp > resumed_at], 60,
                       "samples after the resume")
    assert latest(fresh).mem_used >= before.mem_used + 80 * MIB, "the resumed guest still holds its memory"
    # Timestamps come in whole seconds: a sample taken in the second of the resume, after it,
    # reads as earlier than `resumed_at` (CI saw one), so the window ends at that second.
    gap = [m for m in sbx.get_metrics() if later < m.timestamp < resumed_at.replace(microsecond=0)]
    assert gap == [], "no samples while paused"

    # The logs carried on too: lines from before the pause and the crash are there once, next
    # to the resumed VM's.
    sbx.commands.run("echo after-resume > /dev/console", user="root")
    logs = wait_until(lambda: (got := v2_logs(server, sid, direction="forward"))
                      and any(e["message"] == "after-resume" for e in got) and got, 60, "the resumed VM's lines")
    started = [e["fields"].get("args", "") for e in logs if e["message"] == "process started"]
    assert len([a for a in started if "hog.py" in a]) == 1
    assert len([a for a in started if "dd if=/dev/zero" in a]) == 1

    # The JS SDK's getMetrics() reads the same series.
    js = run_js(f"""
import {{ Sandbox }} from 'e2b'
const sbx = await Sandbox.connect('{sid}')
const m = await sbx.getMetrics()
console.log(JSON.stringify({{n: m.length, cpu: m[0].cpuCount, memTotal: m[0].memTotal,
  date: m[0].timestamp instanceof Date}}))
""", server)
    assert js["n"] >= len(kept) and js["cpu"] >= 1 and js["memTotal"] == kept[0].mem_total and js["date"]

    # Killed: the metrics stay readable (for the retention).
    total = len(sbx.get_metrics())
    sbx.kill()
    assert len(Sandbox.get_metrics(sid, **opts)) >= total


def test_bulk_metrics_and_bad_input(server, base_template):
    a = Sandbox.create(base_template, timeout=120, **server.opts)
    b = Sandbox.create(base_template, timeout=120, **server.opts)
    try:
        ids = f"{a.sandbox_id},{b.sandbox_id},{UNKNOWN}"
        body = wait_until(lambda: (r := get(server, "/sandboxes/metrics", sandbox_ids=ids)[1])
                          and len(r["sandboxes"]) == 2 and r, 60, "a sample of both sandboxes")
        assert set(body["sandboxes"]) == {a.sandbox_id, b.sandbox_id}
        for m in body["sandboxes"].values():
            assert m["cpuCount"] >= 1 and m["memTotal"] > 0 and m["diskTotal"] > 0
            assert datetime.datetime.fromisoformat(m["timestamp"]).timestamp() == m["timestampUnix"]

        sid = a.sandbox_id
        now = int(time.time())
        assert "start" in error(server, 400, f"/sandboxes/{sid}/metrics", start=now, end=now - 60)
        error(server, 400, f"/sandboxes/{sid}/metrics", start="yesterday")
        error(server, 400, f"/sandboxes/{sid}/metrics", end="1.5")
        error(server, 400, f"/sandboxes/{sid}/metrics", start=-1)
        assert get(server, f"/sandboxes/{sid}/metrics", start=now + 3600, end=now + 7200) == (200, [])
        assert UNKNOWN in error(server, 404, f"/sandboxes/{UNKNOWN}/metrics")
        with pytest.raises(NotFoundException):
            Sandbox.get_metrics(UNKNOWN, **server.opts)
        error(server, 400, "/sandboxes/metrics")
        error(server, 400, "/sandboxes/metrics", sandbox_ids=",".join(f"i{n:020d}" for n in range(101)))
        error(server, 400, "/sandboxes/metrics", sandbox_ids=f"{sid},{sid}")
        assert get(server, "/sandboxes/metrics", sandbox_ids=UNKNOWN) == (200, {"sandboxes": {}})
    finally:
        a.kill()
        b.kill()


def test_logs_hold_envd_and_console_lines_with_e2b_paging(server, base_template):
    sbx = Sandbox.create(base_template, timeout=120, **server.opts)
    sid = sbx.sandbox_id
    sbx.commands.run(f"echo {MARKER} > /dev/console", user="root")
    with pytest.raises(Exception):
        sbx.files.read("/no/such/file-for-logs")

    def has_all():
        logs = v2_logs(server, sid)
        started = [e for e in logs if e["message"] == "process started" and MARKER in e["fields"].get("args", "")]
        console = [e for e in logs if e["message"] == MARKER]
        failed = [e for e in logs if e["message"] == "request failed" and e["level"] == "warn"]
        return (started and console and failed) and (logs, started[0], console[0], failed[0])

    logs, started, console, failed = wait_until(has_all, 60, "the process start, console and error lines")
    assert started["level"] == "info" and started["fields"]["source"] == "envd"
    assert started["fields"]["cmd"] == "/bin/bash" and started["fields"]["user"] == "root"
    assert console["level"] == "info" and console["fields"]["source"] == "console"
    assert console["fields"]["sandboxID"] == sid
    # Default: newest first, every entry in E2B's shape.
    stamps = [e["timestamp"] for e in logs]
    assert stamps == sorted(stamps, reverse=True)
    assert all(set(e) == {"timestamp", "message", "level", "fields"} for e in logs)

    # limit, level (minimum), search (case-sensitive substring), direction and cursor.
    assert len(v2_logs(server, sid, limit=2)) == 2
    assert v2_logs(server, sid, limit=0) == []
    warned = v2_logs(server, sid, level="warn")
    assert warned and all(e["level"] in ("warn", "error") for e in warned)
    assert failed in warned
    assert [e["message"] for e in v2_logs(server, sid, search=MARKER)] == [MARKER]
    assert v2_logs(server, sid, search=MARKER.upper()) == []
    oldest_first = v2_logs(server, sid, direction="forward")
    assert oldest_first == list(reversed(logs))
    cursor = int(datetime.datetime.fromisoformat(console["timestamp"]).timestamp() * 1000)
    after = v2_logs(server, sid, direction="forward", cursor=cursor)
    assert after[0]["timestamp"] >= console["timestamp"] and console in after
    assert all(e["timestamp"] >= console["timestamp"] for e in after)
    upto = v2_logs(server, sid, cursor=cursor)
    assert console in upto and all(e["timestamp"] <= console["timestamp"] for e in upto)

    # v1: oldest first, raw lines (envd's are JSON) next to the structured entries.
    status, v1 = get(server, f"/sandboxes/{sid}/logs", start=0)
    assert status == 200 and len(v1["logs"]) == len(v1["logEntries"]) >= len(logs)
    assert [e["message"] for e in v1["logEntries"]][: len(oldest_first)] == [e["message"] for e in oldest_first]
    raw = [line["line"] for line in v1["logs"]]
    assert MARKER in raw
    assert any(json.loads(r)["fields"]["message"] == "process started" for r in raw if r.startswith("{"))
    status, v1_late = get(server, f"/sandboxes/{sid}/logs", start=cursor, limit=1)
    assert status == 200 and len(v1_late["logs"]) == 1 and v1_late["logs"][0]["timestamp"] >= console["timestamp"]

    # Bad input is a 400, an unknown sandbox a 404.
    error(server, 400, f"/v2/sandboxes/{sid}/logs", limit=1001)
    error(server, 400, f"/v2/sandboxes/{sid}/logs", limit="ten")
    error(server, 400, f"/v2/sandboxes/{sid}/logs", direction="sideways")
    error(server, 400, f"/v2/sandboxes/{sid}/logs", level="fatal")
    error(server, 400, f"/v2/sandboxes/{sid}/logs", cursor="-5")
    error(server, 400, f"/v2/sandboxes/{sid}/logs", search="x" * 257)
    error(server, 400, f"/sandboxes/{sid}/logs", start="now")
    error(server, 404, f"/v2/sandboxes/{UNKNOWN}/logs")
    error(server, 404, f"/sandboxes/{UNKNOWN}/logs")

    # Killed: the logs stay, including what the guest printed right before.
    sbx.commands.run("echo last-words-before-kill > /dev/console", user="root")
    sbx.kill()
    assert [e["message"] for e in v2_logs(server, sid, search="last-words")] == ["last-words-before-kill"]
    status, v1 = get(server, f"/sandboxes/{sid}/logs")
    assert status == 200 and MARKER in [line["line"] for line in v1["logs"]]


def test_retention_and_settings(base_template, make_sandboxd, tmp_path):
    """A killed sandbox's metrics and logs last `SANDBOXD_METRICS_RETENTION_SECS` (0: gone at
    once); a bad setting stops sandboxd at start with a clear message."""
    server = make_sandboxd(env={"SANDBOXD_METRICS_INTERVAL_SECS": "1", "SANDBOXD_METRICS_RETENTION_SECS": "0"})
    sbx = Sandbox.create(base_template, timeout=120, **server.opts)
    sid = sbx.sandbox_id
    wait_until(lambda: sbx.get_metrics(), 60, "a sample")
    sbx.kill()
    with pytest.raises(NotFoundException):
        Sandbox.get_metrics(sid, **server.opts)
    error(server, 404, f"/v2/sandboxes/{sid}/logs")

    for name, value in [("SANDBOXD_METRICS_INTERVAL_SECS", "0"), ("SANDBOXD_METRICS_RETENTION_SECS", "1h")]:
        proc = subprocess.run(
            [str(server.binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")],
            env={**os.environ, name: value}, capture_output=True, text=True, timeout=60)
        assert proc.returncode != 0 and name in proc.stderr, proc.stderr
