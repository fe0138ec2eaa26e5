"""Warm pools (issue 14): VMs restored ahead of time and handed out by `Sandbox.create`.

A pooled VM has its final sandbox ID (its run directory under `store/run/`) but is not a
sandbox until a create takes it; these tests see the pool through that directory and the
server's log, and everything else through the official SDK, on real microVMs.
"""

import json
import os
import signal
import time
from pathlib import Path

import pytest
from e2b import Sandbox

from conftest import wait_until

POOL = {"SANDBOXD_POOL_SIZE": "1", "SANDBOXD_POOL_TEMPLATES": "base", "SANDBOXD_GC_MIN_AGE_SECS": "0"}
WAIT_S = 240


def run_dirs(server) -> set:
    run = server.data / "store" / "run"
    return {p.name for p in run.iterdir()} if run.is_dir() else set()


def listed(server) -> set:
    return {s.sandbox_id for s in Sandbox.list(**server.opts).next_items()}


def ready_count(server) -> int:
    return server.log_path.read_text(errors="replace").count("pooled VM ready")


def wait_pooled(server, want: int = 1) -> set:
    """Waits until `want` pooled VMs are ready (run directories that are not sandboxes)."""
    def pooled():
        dirs = run_dirs(server) - listed(server)
        return dirs if len(dirs) == want and ready_count(server) >= want else None

    return wait_until(pooled, WAIT_S, f"{want} pooled VM(s) to be ready")


def wait_refilled(server, before: int) -> set:
    wait_until(lambda: ready_count(server) > before, WAIT_S, "the pool to refill")
    return wait_pooled(server)


def wait_for(cond, what: str):
    wait_until(cond, 30, what, interval_s=0.05)


def wait_until_logs(fetch, marker: str) -> list:
    def with_marker():
        logs = fetch()
        return logs if any(marker in e["fields"].get("args", "") for e in logs) else None

    return wait_until(with_marker, 60, f"{marker} to reach the logs")


def qemu_pid(server, sandbox_id: str) -> int:
    vm = json.loads((server.data / "store" / "run" / sandbox_id / "vm.json").read_text())
    return int(vm["pid"])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def test_handouts_are_distinct_sandboxes_with_fresh_state(base_template, make_sandboxd):
    server = make_sandboxd(env=POOL)
    (first,) = wait_pooled(server)
    assert listed(server) == set(), "a pooled VM must never be listed"

    a = Sandbox.create(base_template, secure=True, envs={"WHO": "a"}, timeout=300, **server.opts)
    assert a.sandbox_id == first, "the create did not take the pooled VM"
    (second,) = wait_refilled(server, 1)
    b = Sandbox.create(base_template, secure=True, envs={"WHO": "b"}, timeout=300, **server.opts)
    assert b.sandbox_id == second
    assert a.sandbox_id != b.sandbox_id

    # Tokens are the create's own.
    assert a._envd_access_token and b._envd_access_token
    assert a._envd_access_token != b._envd_access_token
    # Env vars given at create time reach commands.
    assert a.commands.run("echo $WHO").stdout.strip() == "a"
    assert b.commands.run("echo $WHO").stdout.strip() == "b"
    # Fresh entropy and the host's clock at handout.
    rand = "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'"
    ra, rb = a.commands.run(rand).stdout.strip(), b.commands.run(rand).stdout.strip()
    assert len(ra) == 64 and ra != rb
    for sbx in (a, b):
        guest = float(sbx.commands.run("date +%s.%N").stdout.strip())
        assert abs(guest - time.time()) < 1.0, f"guest clock off by {guest - time.time():.3f} s"
    boot_a = a.commands.run("cat /proc/sys/kernel/random/boot_id").stdout.strip()
    boot_b = b.commands.run("cat /proc/sys/kernel/random/boot_id").stdout.strip()
    assert boot_a and boot_a != boot_b
    # The sandbox's logs start at its handout: the pool's warm-up commands are not in them.
    from test_metrics_logs import v2_logs

    a.commands.run("echo pooled-logs-marker", user="root")
    logs = wait_until_logs(lambda: v2_logs(server, a.sandbox_id), "pooled-logs-marker")
    started = [e["fields"].get("args", "") for e in logs if e["message"] == "process started"]
    assert started and '["-l", "-c", "true"]' not in started, started
    # The list shows the two sandboxes, never the refilled pooled VM.
    (third,) = wait_refilled(server, 2)
    assert listed(server) == {a.sandbox_id, b.sandbox_id}
    assert third not in listed(server)
    # Network choices a pooled VM was not started with get a restore of their own.
    c = Sandbox.create(base_template, allow_internet_access=False, timeout=60, **server.opts)
    assert c.sandbox_id != third and third in run_dirs(server)
    assert c.commands.run("echo ok").stdout == "ok\n"


def test_the_first_create_after_start_gets_the_pools_first_vm(base_template, make_sandboxd):
    """A create that arrives while the pool's first VM is being restored waits for it rather
    than restoring a second VM next to it."""
    server = make_sandboxd(env=POOL)
    wait_for(lambda: "filling the warm pool" in server.log_path.read_text(errors="replace"), "no fill started")
    sbx = Sandbox.create(base_template, timeout=60, **server.opts)
    handed = [line for line in server.log_path.read_text(errors="replace").splitlines() if "handed out a pooled VM" in line]
    assert len(handed) == 1 and sbx.sandbox_id in handed[0], handed
    assert sbx.commands.run("echo ok").stdout == "ok\n"


def test_a_dead_pooled_vm_is_never_handed_out(base_template, make_sandboxd):
    server = make_sandboxd(env=POOL)
    (pooled,) = wait_pooled(server)
    os.kill(qemu_pid(server, pooled), signal.SIGKILL)
    sbx = Sandbox.create(base_template, timeout=60, **server.opts)
    assert sbx.sandbox_id != pooled
    assert sbx.commands.run("echo ok").stdout == "ok\n"
    assert pooled not in listed(server)


def test_pooled_vms_make_room_for_real_sandboxes(base_template, make_sandboxd):
    """Pooled VMs count against --max-sandboxes but are evicted when a create needs room."""
    server = make_sandboxd(args=["--max-sandboxes", "3"], env={**POOL, "SANDBOXD_POOL_SIZE": "2"})
    pooled = wait_pooled(server, 2)
    # allow_internet_access=False never takes from the pool: these need free slots.
    made = [Sandbox.create(base_template, allow_internet_access=False, timeout=120, **server.opts) for _ in range(3)]
    assert not (set(s.sandbox_id for s in made) & pooled)
    wait_for(lambda: run_dirs(server) == {s.sandbox_id for s in made}, "pooled VMs were not evicted")
    with pytest.raises(Exception) as e:
        Sandbox.create(base_template, allow_internet_access=False, timeout=60, **server.opts)
    assert "maximum of 3 sandboxes" in str(e.value), str(e.value)
    for s in made:
        assert s.commands.run("echo ok").stdout == "ok\n"


def test_a_crash_with_pooled_vms_leaks_nothing(base_template, make_sandboxd):
    server = make_sandboxd(env=POOL)
    (pooled,) = wait_pooled(server)
    pid = qemu_pid(server, pooled)
    server.kill9()
    assert alive(pid), "the pooled VM should outlive the crash until the restart reaps it"
    server.env["SANDBOXD_POOL_SIZE"] = "0"
    server.start()
    assert not alive(pid), "the restart did not reap the pooled VM"
    assert run_dirs(server) == set()
    assert listed(server) == set()


def test_a_snapshot_created_from_twice_is_pooled_and_its_memory_continues(base_template, make_sandboxd):
    from test_snapshots import counter, start_counter

    server = make_sandboxd(env={**POOL, "SANDBOXD_POOL_TEMPLATES": ""})
    src = Sandbox.create(base_template, timeout=300, **server.opts)
    start_counter(src)
    at_snapshot = counter(src)
    snap = src.create_snapshot()
    src.kill()
    first = Sandbox.create(snap.snapshot_id, timeout=120, **server.opts)
    # One create is not demand enough: nothing is pooled yet.
    assert run_dirs(server) == {first.sandbox_id}
    second = Sandbox.create(snap.snapshot_id, timeout=120, **server.opts)
    (pooled,) = wait_pooled(server)
    third = Sandbox.create(snap.snapshot_id, timeout=120, **server.opts)
    assert third.sandbox_id == pooled
    for clone in (first, second, third):
        assert counter(clone) >= at_snapshot
    assert third.files.exists("counter.py")


def qemus_of(server) -> list:
    """PIDs of QEMU processes whose command line names this server's data directory."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "qemu-system" in cmd and str(server.data) in cmd and alive(int(p.name)):
                out.append(int(p.name))
    return out


def test_a_clean_stop_during_a_fill_leaves_no_vm(base_template, make_sandboxd):
    server = make_sandboxd(env=POOL)
    # Stop as soon as the first fill's QEMU runs: usually before it is warmed up and ready.
    wait_until(lambda: qemus_of(server), WAIT_S, "the first fill's QEMU to start", interval_s=0.02)
    mid_fill = ready_count(server) == 0
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=120)
    log = server.log_path.read_text(errors="replace")
    # The fill in flight finished before the stop drained the pool: nothing of it runs on.
    assert qemus_of(server) == [], log[-3000:]
    if mid_fill:
        assert "pooled VM ready" in log, "the stop did not wait for the fill in flight"
