"""Spare QEMUs (issue 14): QEMU processes started ahead of restores, stopped before their
machine exists, finished and handed a guest by the next restore of their shape
(server/src/vm/runtime/spare.rs). Seen through /proc and the store's directories; the
sandboxes through the official SDK, on real microVMs.
"""

import json
import os
import signal
from pathlib import Path

from e2b import Sandbox

from conftest import wait_until
from store_check import GC_NOW, assert_at_rest, qemu_processes, spare_qemus
from test_pool import alive
from test_snapshots import counter, start_counter

SPARES = {"SANDBOXD_SPARE_VMS": "1", **GC_NOW}


def wait_spare(server, other_than=()) -> int:
    """The pid of a ready spare QEMU (its directory records it), not one of `other_than`."""
    def ready():
        spare = server.data / "store" / "spare"
        for pid, name in spare_qemus(server).items():
            vm = spare / name / "vm.json"
            if pid not in other_than and vm.is_file() and json.loads(vm.read_text())["pid"] == pid:
                return pid
        return None

    return wait_until(ready, 120, "a spare QEMU to be ready")


def test_a_restore_takes_the_spare_and_its_clone_continues(base_template, make_sandboxd):
    server = make_sandboxd(env=SPARES)
    src = Sandbox.create(base_template, timeout=300, **server.opts)
    start_counter(src)
    src.files.write("/home/user/note.txt", "kept")
    spare = wait_spare(server)
    snap = src.create_snapshot()
    at_snapshot = counter(src)

    clone = Sandbox.create(snap.snapshot_id, timeout=120, **server.opts)
    # The clone runs in the spare's QEMU: no new process was started for it.
    assert qemu_processes(server).get(spare) == clone.sandbox_id
    assert counter(clone) >= at_snapshot
    assert clone.files.read("/home/user/note.txt") == "kept"
    assert clone.commands.run("echo ok").stdout == "ok\n"
    # Its run directory is the sandbox's; the spare's old name links there.
    run = server.data / "store" / "run" / clone.sandbox_id
    assert (run / "mem.ram").is_file() and (run / "disk").is_symlink()
    links = [p for p in (server.data / "store" / "spare").iterdir() if p.is_symlink()]
    assert [os.path.realpath(p) for p in links] == [os.path.realpath(run)]

    # The next restore of that shape has a spare again; a snapshot of the clone restores too.
    wait_spare(server, other_than={spare})
    again = Sandbox.create(clone.create_snapshot().snapshot_id, timeout=120, **server.opts)
    assert counter(again) >= at_snapshot
    for s in (src, clone, again):
        s.kill()
    # Killing a VM that was a spare drops the link with its run directory.
    wait_until(lambda: not any(p.is_symlink() for p in (server.data / "store" / "spare").iterdir()), 30,
               "the spare links to go")
    assert_at_rest(server)


def test_a_crash_leaks_no_spare_and_keeps_the_sandboxes_started_in_one(base_template, make_sandboxd):
    server = make_sandboxd(env=SPARES)
    first = Sandbox.create(base_template, timeout=300, **server.opts)
    taken = wait_spare(server)
    second = Sandbox.create(base_template, timeout=300, **server.opts)
    assert qemu_processes(server).get(taken) == second.sandbox_id
    left = wait_spare(server, other_than={taken})
    server.kill9()
    assert alive(left), "the spare should outlive the crash until the restart reaps it"
    server.env["SANDBOXD_SPARE_VMS"] = "0"
    server.start()
    assert not alive(left), "the restart did not reap the spare QEMU"
    # The sandbox whose VM began as a spare was picked up again like any other.
    assert {s.sandbox_id for s in Sandbox.list(**server.opts).next_items()} == {first.sandbox_id, second.sandbox_id}
    assert Sandbox.connect(second.sandbox_id, **server.opts).commands.run("echo ok").stdout == "ok\n"
    assert spare_qemus(server) == {}
    assert_at_rest(server)


def test_a_clean_stop_kills_the_spares_and_no_sandbox(base_template, make_sandboxd):
    server = make_sandboxd(env=SPARES)
    sbx = Sandbox.create(base_template, timeout=300, **server.opts)
    spare = wait_spare(server)
    vm = next(pid for pid, sid in qemu_processes(server).items() if sid == sbx.sandbox_id)
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=120)
    assert not alive(spare), "a clean stop left a spare QEMU running"
    assert alive(vm), "a clean stop must not kill running sandboxes"
    assert not [p for p in (server.data / "store" / "spare").iterdir() if not p.is_symlink()]
    server.start()
    assert sbx.commands.run("echo ok").stdout == "ok\n"


def test_with_spares_off_no_qemu_waits(base_template, make_sandboxd):
    server = make_sandboxd(env={"SANDBOXD_SPARE_VMS": "0", **GC_NOW})
    for _ in range(2):
        Sandbox.create(base_template, timeout=300, **server.opts).kill()
    assert spare_qemus(server) == {}
    assert not list((server.data / "store" / "spare").iterdir())
    assert "spare" not in Path(server.log_path).read_text(errors="replace").lower()


def test_a_spare_that_cannot_be_finished_gives_way_to_a_new_qemu(base_template, make_sandboxd, tmp_path):
    """Every spare this QEMU starts already has a node named `disk0`, so the restore's
    `blockdev-add` fails on it: the restore must stop that spare and start a QEMU of its own."""
    qemu = tmp_path / "qemu"
    qemu.write_text('#!/bin/sh\ncase " $* " in *" -preconfig "*) exec qemu-system-x86_64 "$@" '
                    '-blockdev driver=null-co,node-name=disk0;; esac\nexec qemu-system-x86_64 "$@"\n')
    qemu.chmod(0o755)
    server = make_sandboxd(env={**SPARES, "SANDBOXD_QEMU": str(qemu)})
    src = Sandbox.create(base_template, timeout=300, **server.opts)
    start_counter(src)
    spare = wait_spare(server)
    snap = src.create_snapshot()
    at_snapshot = counter(src)
    clone = Sandbox.create(snap.snapshot_id, timeout=120, **server.opts)
    assert "finishing a spare VM failed; starting a new QEMU" in Path(server.log_path).read_text(errors="replace")
    assert not alive(spare), "the spare that could not be finished is still running"
    pid = next(p for p, sid in qemu_processes(server).items() if sid == clone.sandbox_id)
    assert pid != spare
    assert counter(clone) >= at_snapshot
    # Its run directory is an ordinary one: no link back to a spare, its own QMP socket.
    assert not (server.data / "store" / "run" / clone.sandbox_id / "qmp").exists()
    for s in (src, clone):
        s.kill()
    assert_at_rest(server)
