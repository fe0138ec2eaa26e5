"""Load: 32 concurrent clients creating, snapshotting, listing and killing sandboxes against a
server capped at 4 sandboxes, for a bounded time. The only errors allowed are the documented
capacity errors (503/429 with an `error_code`); afterwards nothing is left: no QEMU process, no
file in the store, sandboxd's descriptors and memory back near their baseline. The capacity caps
(sandbox count, guest memory) are enforced at admission.

CI runs LOAD_SECONDS (60 s); SANDBOXD_SLOW_TESTS=1 adds a 5-minute run."""

import collections
import json
import os
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from e2b import Sandbox
from e2b.exceptions import ServiceBusyException

from conftest import wait_until
from store_check import GC_NOW, assert_at_rest, fd_count, orphans, qemu_processes, rss_mib

CLIENTS = 32
MAX_SANDBOXES = 4
LOAD_SECONDS = 60
# After the load, sandboxd may keep a few more descriptors than at the baseline: idle pooled
# upstream connections to envds that are gone are closed lazily by hyper's pool.
FD_MARGIN = 8
# glibc keeps freed memory in its per-thread arenas; 32 clients touch many tokio workers.
RSS_MARGIN_MIB = 64


class Api:
    """Plain HTTP against the REST API, so every status code and error body is seen as is."""

    def __init__(self, server):
        self.url, self.key = server.url, server.key

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, method=method, data=data,
                                     headers={"X-API-KEY": self.key, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, {"unparsed": raw.decode(errors="replace")}


EXPECTED = {"create": 201, "snapshot": 201, "list": 200, "list_snapshots": 200, "kill": 204, "delete_snapshot": 204}


def capacity_error(status, body):
    return status in (429, 503) and isinstance(body, dict) and bool(body.get("error_code")) and bool(body.get("message"))


def client(api, deadline, seed, stats, failures, lock):
    rng = random.Random(seed)
    own, snaps = None, []

    def do(op, method, path, body=None):
        status, resp = api.call(method, path, body)
        with lock:
            if status == EXPECTED[op]:
                stats[op]["ok"] += 1
            elif capacity_error(status, resp):
                stats[op][f"{status} {resp['error_code']}"] += 1
            else:
                stats[op][f"{status} unexpected"] += 1
                failures.append((op, status, resp))
        return status, resp

    while time.monotonic() < deadline:
        r = rng.random()
        if own is None and r < 0.6:
            status, resp = do("create", "POST", "/v2/sandboxes", {"templateID": "base", "timeout": 300})
            if status == 201:
                own = resp["sandboxID"]
        elif own is not None and r < 0.3 and len(snaps) < 2:
            status, resp = do("snapshot", "POST", f"/sandboxes/{own}/snapshots", {})
            if status == 201:
                snaps.append(resp["snapshotID"])
        elif own is not None and r < 0.45:
            do("kill", "DELETE", f"/sandboxes/{own}")
            own = None
        elif snaps and r < 0.6:
            do("delete_snapshot", "DELETE", "/templates/" + urllib.parse.quote(snaps.pop(0), safe=""))
        elif r < 0.8:
            do("list", "GET", "/v2/sandboxes?limit=100")
        else:
            do("list_snapshots", "GET", "/snapshots?limit=100")
    if own is not None:
        do("kill", "DELETE", f"/sandboxes/{own}")
    for s in snaps:
        do("delete_snapshot", "DELETE", "/templates/" + urllib.parse.quote(s, safe=""))


def run_load(server, seconds):
    api = Api(server)
    # Warm-up cycle, so lazily created state (pools, caches, the imported template) is in the
    # baseline.
    sbx = Sandbox.create("base", timeout=120, **server.opts)
    Sandbox.delete_snapshot(Sandbox.create_snapshot(sbx.sandbox_id, **server.opts).snapshot_id, **server.opts)
    sbx.kill()
    wait_until(lambda: not any(orphans(server).values()) and not list((server.data / "store/snapshots").iterdir()),
               60, "the warm-up's files to be freed")
    pid = server.proc.pid
    base_fds, base_rss = fd_count(pid), rss_mib(pid)

    stats = collections.defaultdict(collections.Counter)
    failures, lock = [], threading.Lock()
    peak, stop = [0], threading.Event()

    def monitor():
        while not stop.is_set():
            peak[0] = max(peak[0], len(set(qemu_processes(server).values())))
            stop.wait(0.25)

    watcher = threading.Thread(target=monitor)
    watcher.start()
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(api, deadline, i, stats, failures, lock)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    held = time.monotonic() - started
    stop.set()
    watcher.join()

    # Everything was killed and deleted: nothing may remain once the GC has run.
    wait_until(lambda: not qemu_processes(server), 60, "every QEMU process to exit")
    assert api.call("GET", "/v2/sandboxes")[1] == []
    assert api.call("GET", "/snapshots")[1] == []
    store = server.data / "store"
    wait_until(lambda: not list((store / "snapshots").iterdir()) and not list((store / "layers").iterdir())
               and not list((store / "run").iterdir()), 60, "the store to be empty")
    assert_at_rest(server)
    fds = wait_until(lambda: (n := fd_count(pid)) <= base_fds + FD_MARGIN and n, 60, "sandboxd's fds to settle")
    rss = rss_mib(pid)
    figures = {
        "clients": CLIENTS, "max_sandboxes": MAX_SANDBOXES, "seconds": round(held, 1),
        "ops": {op: dict(c) for op, c in sorted(stats.items())},
        "ops_total": sum(sum(c.values()) for c in stats.values()),
        "peak_sandboxes": peak[0], "fds": [base_fds, fds], "rss_mib": [round(base_rss, 1), round(rss, 1)],
    }
    print("\nload figures:", json.dumps(figures))
    assert not failures, failures[:10]
    assert stats["create"]["ok"] >= MAX_SANDBOXES, figures
    assert stats["snapshot"]["ok"] > 0 and stats["kill"]["ok"] > 0, figures
    assert 0 < peak[0] <= MAX_SANDBOXES, figures
    assert rss <= base_rss + RSS_MARGIN_MIB, figures
    return figures


def test_32_clients_for_a_minute_only_capacity_errors_and_no_leaks(base_template, make_sandboxd, capsys):
    server = make_sandboxd(args=["--max-sandboxes", str(MAX_SANDBOXES)], env=GC_NOW)
    figures = run_load(server, LOAD_SECONDS)
    # With 32 clients on 4 slots the cap must have been hit (and answered as documented).
    assert figures["ops"]["create"].get("503 sandbox_capacity_unavailable", 0) > 0, figures
    with capsys.disabled():
        print("\nload figures:", json.dumps(figures))


@pytest.mark.slow
def test_32_clients_for_five_minutes(base_template, make_sandboxd, capsys):
    server = make_sandboxd(args=["--max-sandboxes", str(MAX_SANDBOXES)], env=GC_NOW)
    figures = run_load(server, 300)
    with capsys.disabled():
        print("\nload figures (5 min):", json.dumps(figures))


def test_memory_cap_is_enforced_at_admission(base_template, make_sandboxd):
    # Room for two 512 MiB guests, not three; the count cap is far away.
    server = make_sandboxd(args=["--max-sandboxes", "16"], env={"SANDBOXD_MAX_MEMORY_MB": "1100"})
    opts = server.opts
    first = Sandbox.create(base_template, timeout=120, **opts)
    second = Sandbox.create(base_template, timeout=120, **opts)
    status, body = Api(server).call("POST", "/v2/sandboxes", {"templateID": base_template})
    assert status == 503, (status, body)
    assert body["error_code"] == "sandbox_capacity_unavailable" and "memory" in body["message"], body
    with pytest.raises(ServiceBusyException):
        Sandbox.create(base_template, timeout=120, retries=0, **opts)
    # A resume is admitted the same way: pause one, fill its share, the resume is refused.
    assert second.pause() is True
    third = Sandbox.create(base_template, timeout=120, **opts)
    status, body = Api(server).call("POST", f"/sandboxes/{second.sandbox_id}/connect", {"timeout": 60})
    assert status == 503 and body["error_code"] == "sandbox_capacity_unavailable", (status, body)
    third.kill()
    resumed = Sandbox.connect(second.sandbox_id, timeout=120, **opts)
    assert resumed.commands.run("echo back").stdout == "back\n"
    assert first.commands.run("echo first").stdout == "first\n"
    assert len(set(qemu_processes(server).values())) == 2
