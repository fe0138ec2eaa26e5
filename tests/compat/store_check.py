"""What a sandboxd data directory must look like at rest, read straight from the disk, /proc and
the SQLite store (not through the API under test): used by the fault and load tests."""

import json
import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path

RUN_ID = re.compile(r"/store/run/([^/,]+)/mem\.ram")
# A VM started as a spare QEMU (server/src/vm/runtime/spare.rs) names its spare directory;
# once a restore took it, that directory is a link to the sandbox's run directory.
SPARE_ID = re.compile(r"/store/spare/([^/,]+)/mem\.ram")

# Servers started with this collect unreferenced disk layers at once (the GC's youth guard
# protects layers of operations in flight; at rest there are none).
GC_NOW = {"SANDBOXD_GC_MIN_AGE_SECS": "0"}


def all_qemus(server) -> dict:
    """Every QEMU process of this server: {pid: sandbox ID of its run directory, or
    "spare:<id>" for a spare QEMU no restore has taken yet}."""
    found = {}
    needle = str(server.data).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"qemu-system" in cmdline and needle in cmdline and state != "Z":
            line = cmdline.replace(b"\0", b" ").decode(errors="replace")
            if m := RUN_ID.search(line):
                found[int(entry.name)] = m.group(1)
            elif m := SPARE_ID.search(line):
                spare = server.data / "store" / "spare" / m.group(1)
                taken = spare.is_symlink()
                found[int(entry.name)] = os.path.basename(os.readlink(spare)) if taken else f"spare:{m.group(1)}"
            else:
                found[int(entry.name)] = "?"
    return found


def qemu_processes(server) -> dict:
    """QEMU processes running a VM of this server: {pid: sandbox ID of its run directory}
    (spare QEMUs not taken yet left out: they run no guest)."""
    return {pid: sid for pid, sid in all_qemus(server).items() if not sid.startswith("spare:")}


def spare_qemus(server) -> dict:
    """Spare QEMUs no restore has taken yet: {pid: spare directory name}."""
    return {pid: sid.split(":", 1)[1] for pid, sid in all_qemus(server).items() if sid.startswith("spare:")}


def db_rows(server):
    """(sandbox rows, image rows) as dicts, read from the database file."""
    with sqlite3.connect(server.data / "sandboxd.db") as db:
        db.row_factory = sqlite3.Row
        sandboxes = [dict(r) for r in db.execute("SELECT id, state, vm, disk_layer, image_dir FROM sandboxes")]
        images = [dict(r) for r in db.execute("SELECT id, kind, dir, disk_layer, deleted FROM snapshots")]
    return sandboxes, images


def backing_chain(layer: str) -> set:
    """Every file of a qcow2 chain (the layer and its backing files)."""
    out = subprocess.run(["qemu-img", "info", "-U", "--backing-chain", "--output=json", layer],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return {layer}
    return {os.path.realpath(i["filename"]) for i in json.loads(out.stdout)}


def orphans(server) -> dict:
    """Files in the store that nothing refers to: image directories without a row, run
    directories without a running sandbox, disk layers outside every live chain."""
    store = server.data / "store"
    sandboxes, images = db_rows(server)
    running = {s["id"] for s in sandboxes if s["vm"]}
    image_dirs = {os.path.basename(i["dir"]) for i in images}
    snapshots = {p.name for p in (store / "snapshots").iterdir()}
    runs = {p.name for p in (store / "run").iterdir()}
    roots = [i["disk_layer"] for i in images] + [s["disk_layer"] for s in sandboxes if s["disk_layer"]]
    roots += [os.readlink(store / "run" / r / "disk") for r in runs if (store / "run" / r / "disk").is_symlink()]
    live = set()
    for root in roots:
        live |= backing_chain(root)
    layers = {str(p) for p in (store / "layers").iterdir()}
    return {
        "image_dirs": sorted(snapshots - image_dirs),
        "missing_image_dirs": sorted(image_dirs - snapshots),
        "run_dirs": sorted(runs - running),
        "layers": sorted(layers - live),
    }


def assert_at_rest(server):
    """The data directory matches the store exactly: every VM process belongs to a listed
    running sandbox and vice versa, every file is referenced, nothing half-written remains."""
    sandboxes, _ = db_rows(server)
    running = {s["id"] for s in sandboxes if s["vm"]}
    vms = qemu_processes(server)
    assert sorted(vms.values()) == sorted(running), f"QEMU processes {vms} vs running sandboxes {running}"
    # Spare QEMUs are sandboxd's own: each one is in its directory's vm.json, and nothing else
    # is in spare/ but those directories and links to live run directories. A spare being
    # started (by the refill after the last restore) gets there within seconds.
    deadline = time.monotonic() + 30
    while (problem := spares_settled(server, running)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert problem is None, problem
    left = orphans(server)
    assert left == {"image_dirs": [], "missing_image_dirs": [], "run_dirs": [], "layers": []}, left


def spares_settled(server, running) -> str | None:
    """None when every spare QEMU is recorded in its directory's vm.json, every spare
    directory has its QEMU and every spare link leads to a running sandbox; else what is not."""
    spare = server.data / "store" / "spare"
    spares = spare_qemus(server)
    for pid, name in spares.items():
        vm = spare / name / "vm.json"
        if not vm.is_file() or json.loads(vm.read_text())["pid"] != pid:
            return f"spare QEMU {pid} is not recorded in {vm}"
    for p in spare.iterdir() if spare.is_dir() else []:
        if p.is_symlink():
            if not p.exists() or os.path.basename(os.readlink(p)) not in running:
                return f"stale spare link {p}"
        elif p.name not in spares.values():
            return f"spare directory {p.name} has no QEMU"
    return None


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
