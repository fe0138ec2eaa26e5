"""Issue 13: a sandboxd cluster, three nodes on this machine sharing one PostgreSQL database
(tests/cluster/postgres.sh) and one S3 bucket (s3s-fs, tests/cluster/s3s.sh), driven through
the official SDK as a user would: each node is an E2B API of its own.

The nodes share the templates directory (one `base` build on this machine); snapshots are
restored on nodes that never saw them, from the object store. Each node may run one sandbox
(`--max-sandboxes 1`), which makes placement observable: where a sandbox runs is checked in the
nodes' run directories (the first one goes wherever placement finds the most free memory).
"""

import concurrent.futures
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from e2b import Sandbox
from e2b.exceptions import NotFoundException, SandboxException, ServiceBusyException

from conftest import ROOT, Sandboxd, wait_until
from test_snapshots import counter, start_counter

HERE = Path(__file__).resolve().parent
CLUSTER_SCRIPTS = ROOT / "tests" / "cluster"
KEY = "e2b_" + "c1" * 20


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server; yields its admin URL."""
    root = Path(tempfile.mkdtemp(prefix="sandboxd-pg-"))
    root.chmod(0o755)  # the server runs as the unprivileged `postgres` user
    url = subprocess.run([str(CLUSTER_SCRIPTS / "postgres.sh"), "start", str(root / "pg")],
                         check=True, capture_output=True, text=True).stdout.strip()
    try:
        yield url
    finally:
        subprocess.run([str(CLUSTER_SCRIPTS / "postgres.sh"), "stop", str(root / "pg")], check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def s3():
    """A throwaway s3s-fs; yields (endpoint, its root directory)."""
    binary = subprocess.run([str(CLUSTER_SCRIPTS / "s3s.sh"), "path"], check=True, capture_output=True,
                            text=True).stdout.strip()
    root = Path(tempfile.mkdtemp(prefix="sandboxd-s3-"))
    (root / "images").mkdir()
    port = _free_port()
    proc = subprocess.Popen([binary, "--host", "127.0.0.1", "--port", str(port), "--access-key", "test",
                             "--secret-key", "testsecret", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: _listening(port), 30, "s3s-fs to listen")
    try:
        yield f"http://127.0.0.1:{port}", root
    finally:
        proc.kill()
        proc.wait()
        if not os.environ.get("COMPAT_KEEP_DATA"):
            shutil.rmtree(root, ignore_errors=True)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


class Node(Sandboxd):
    def runs(self, sandbox_id: str) -> bool:
        return (self.data / "store" / "run" / sandbox_id).is_dir()

    @property
    def node_id(self) -> str:
        return self.args[self.args.index("--node-id") + 1]

    def sql(self, query: str) -> str:
        database = self.args[self.args.index("--database") + 1]
        return subprocess.run(["psql", database, "-tAc", query], check=True, capture_output=True,
                              text=True).stdout.strip()

    def fetches(self) -> list:
        """The fields of each `image fetched from` line in this node's log."""
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in self.log_path.read_text().splitlines()]
        return [dict(re.findall(r'(\w+)="?([^" ]*)"?', line.split("image fetched from", 1)[1]))
                for line in lines if "image fetched from" in line]


@pytest.fixture
def cluster(postgres, s3, base_template, request):
    """Three nodes a, b, c on a fresh database and bucket prefix."""
    name = f"c{os.getpid()}_{int(time.monotonic() * 1000) % 10**9}"
    subprocess.run(["psql", postgres, "-q", "-c", f"CREATE DATABASE {name}"], check=True,
                   capture_output=True)
    database = postgres.rsplit("/", 1)[0] + f"/{name}"
    endpoint, _ = s3
    env = {
        "SANDBOXD_POOL_SIZE": "0",
        "SANDBOXD_HEARTBEAT_MS": "300",
        "SANDBOXD_NODE_GRACE_MS": "3000",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "testsecret",
        "AWS_REGION": "us-east-1",
        # Uploads and collections exclude each other (an advisory lock): no grace is needed.
        "SANDBOXD_OBJECTS_GC_GRACE_SECS": "0",
    }
    nodes = []
    for node_id in ("a", "b", "c"):
        node = Node(Path(tempfile.mkdtemp(prefix=f"sandboxd-node-{node_id}-")), env=env)
        node.args = ["--database", database, "--object-store", f"s3://images/{name}", "--node-id", node_id,
                     "--advertise-url", node.url, "--max-sandboxes", "1"]
        node.data.mkdir(parents=True)
        # One key for the whole cluster (it lives in the shared database).
        (node.data / "api_key").write_text(KEY)
        nodes.append(node)
    try:
        for node in nodes:
            node.start()
        yield nodes
    finally:
        for node in nodes:
            node.stop()
            if not os.environ.get("COMPAT_KEEP_DATA"):
                shutil.rmtree(node.root, ignore_errors=True)


def where(nodes, sandbox_id: str) -> list:
    return [n for n in nodes if n.runs(sandbox_id)]


def _counting_source(cluster, text: str):
    """A sandbox created through the first node, running the memory counter, with `text` in
    /home/user/state.txt, and its snapshot: (sandbox, its node, snapshot, counter read just before the snapshot)."""
    src = Sandbox.create("base", timeout=600, **cluster[0].opts)
    [node] = where(cluster, src.sandbox_id)
    start_counter(src)
    src.files.write("/home/user/state.txt", text)
    # Read before the snapshot: the snapshot's counter is at least this, a later read may not be.
    at_snapshot = counter(src)
    snap = src.create_snapshot()
    return src, node, snap, at_snapshot


def test_a_snapshot_taken_on_one_node_restores_on_the_others(cluster):
    a, b, c = cluster
    # Placement chose the node (most free memory); one sandbox per node from here on.
    src, src_node, snap, at_snapshot = _counting_source(cluster, "made on a")

    # The source's node is full: the clones land on the two others, neither of which has seen
    # the image. They are created through a and b's APIs: any node accepts a create.
    clone_b = Sandbox.create(snap.snapshot_id, timeout=600, **a.opts)
    clone_c = Sandbox.create(snap.snapshot_id, timeout=600, **b.opts)
    [node_b] = where(cluster, clone_b.sandbox_id)
    [node_c] = where(cluster, clone_c.sandbox_id)
    assert {src_node.url, node_b.url, node_c.url} == {n.url for n in cluster}
    for clone in (clone_b, clone_c):
        # Memory: the in-memory counter goes on from where the snapshot caught it.
        assert counter(clone) >= at_snapshot
        assert clone.files.read("/home/user/state.txt") == "made on a"
    # Those two restored straight from a fetch (the RAM into the clone's own RAM file), then
    # fetched the image into their own stores: each time its RAM chunks (and the first time its
    # disk layer) from the source's node, a live node holding it, nothing from the object store
    # but the manifest and device state.
    for node in (node_b, node_c):
        wait_until(lambda: len(node.fetches()) == 2, 120, "the node's own copy of the image")
        direct, copy = node.fetches()
        assert direct["direct"] == "true" and copy["direct"] == "false", (direct, copy)
        for fetch in (direct, copy):
            assert fetch["peer"] == src_node.node_id, fetch
            assert int(fetch["peer_chunks"]) > 0 and fetch["chunks"] == "0", fetch
        assert direct["peer_layers"] == direct["layers"] == "1", direct
        assert copy["layers"] == "0", copy
        fetched = [d for d in (node.data / "store" / "snapshots").iterdir() if (d / "meta.json").is_file()]
        assert [d.name for d in fetched] == [_image_id(snap.snapshot_id)], fetched
    # The source kept running.
    assert counter(src) >= at_snapshot

    # Every node answers for every sandbox: a clone through another node's API and proxy.
    elsewhere = next(n for n in cluster if n is not node_c)
    via = Sandbox.connect(clone_c.sandbox_id, **elsewhere.opts)
    assert via.commands.run("cat /home/user/state.txt").stdout == "made on a"
    listed = {s.sandbox_id for s in Sandbox.list(**c.opts).next_items()}
    assert {src.sandbox_id, clone_b.sandbox_id, clone_c.sandbox_id} <= listed
    assert Sandbox.get_info(clone_b.sandbox_id, **c.opts).sandbox_id == clone_b.sandbox_id
    # A kill through another node's API reaches the node that runs it.
    Sandbox.kill(clone_b.sandbox_id, **next(n for n in cluster if n is not node_b).opts)
    assert not node_b.runs(clone_b.sandbox_id)
    with pytest.raises(NotFoundException):
        Sandbox.get_info(clone_b.sandbox_id, **a.opts)


def test_a_peer_that_sends_wrong_bytes_leaves_the_restore_to_the_object_store(cluster):
    """The source's node holds the image but its RAM file no longer matches the manifest (here:
    zeroed after the upload); another node asks it first, checks every chunk against the
    manifest's hash, gives it up at the first mismatch and takes the rest from the bucket."""
    src, src_node, snap, at_snapshot = _counting_source(cluster, "made before the snapshot")
    image = _image_id(snap.snapshot_id)
    image_dir = src_node.data / "store" / "snapshots" / image
    assert (image_dir / "meta.json").is_file(), list((src_node.data / "store" / "snapshots").iterdir())
    wait_until(lambda: src_node.sql(f"SELECT upload FROM snapshots WHERE id = '{image}'") == "durable",
               120, "the upload")
    ram = image_dir / "mem.ram"
    size = ram.stat().st_size
    os.truncate(ram, 0)
    os.truncate(ram, size)

    clone = Sandbox.create(snap.snapshot_id, timeout=600, **src_node.opts)
    [node] = where(cluster, clone.sandbox_id)
    assert node is not src_node
    assert counter(clone) >= at_snapshot
    assert clone.files.read("/home/user/state.txt") == "made before the snapshot"
    fetch = node.fetches()[0]
    assert fetch["direct"] == "true", fetch
    assert fetch["peer"] == src_node.node_id and fetch["peer_chunks"] == "0", fetch
    assert int(fetch["chunks"]) > 0, fetch
    assert "does not match its hash" in node.log_path.read_text()


def test_two_restores_at_once_on_a_node_that_never_saw_the_image(cluster):
    """Two creates at once from a snapshot, both placed on one node that never saw it: one
    restores straight from its fetch, the other (one direct restore per image at a time)
    fetches the node's own copy and restores from it; both clones are whole, the node keeps
    one copy, and nothing private is left."""
    src_node, target, idle = cluster
    # c stops; b takes two sandboxes but has less memory than a, which gets the source.
    idle.stop()
    target.stop()
    target.args[target.args.index("--max-sandboxes") + 1] = "2"
    target.env["SANDBOXD_MAX_MEMORY_MB"] = "3072"
    target.start()
    wait_until(lambda: target.sql(f"SELECT alive FROM nodes WHERE id = '{idle.node_id}'") in ("0", "f"),
               30, "the stopped node to be marked dead")
    src, on, snap, at_snapshot = _counting_source(cluster, "made for two")
    assert on is src_node

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        clones = list(pool.map(lambda _: Sandbox.create(snap.snapshot_id, timeout=600, **src_node.opts), range(2)))
    for clone in clones:
        assert where(cluster, clone.sandbox_id) == [target]
        assert counter(clone) >= at_snapshot
        assert clone.files.read("/home/user/state.txt") == "made for two"
    wait_until(lambda: any(f["direct"] == "false" for f in target.fetches()), 120, "the node's own copy")
    fetches = target.fetches()
    assert sorted(f["direct"] for f in fetches) == ["false", "true"], fetches
    left = sorted(d.name for d in (target.data / "store" / "snapshots").iterdir())
    assert left == [_image_id(snap.snapshot_id)], left


def _image_id(snapshot_id: str) -> str:
    """`<team>/<image>:<tag>` → the image's directory name."""
    return snapshot_id.split(":")[0].rsplit("/", 1)[-1]


def _get(url: str, headers=None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_the_node_to_node_routes_want_the_cluster_key(cluster, make_sandboxd):
    a, b, c = cluster
    src = Sandbox.create("base", timeout=600, **a.opts)
    [node] = where(cluster, src.sandbox_id)
    image = _image_id(src.create_snapshot().snapshot_id)
    key = node.sql("SELECT secret FROM cluster_keys")
    assert len(key) == 64
    ram = f"{node.url}/cluster/images/{image}/ram?offset=0&len=4096"
    ok = {"x-sandboxd-peer-key": key}
    assert _get(ram, ok) == 200
    # Not even with the API key: the peer key is the only credential.
    assert _get(ram) == 401
    assert _get(ram, {"x-sandboxd-peer-key": key[:-1] + ("0" if key[-1] != "0" else "1")}) == 401
    assert _get(ram, {"X-API-Key": KEY}) == 401
    assert _get(f"{node.url}/cluster/images/nope/ram?offset=0&len=4096", ok) == 404
    assert _get(f"{node.url}/cluster/images/{image}/ram?offset=0&len={64 << 20}", ok) == 400
    assert _get(f"{node.url}/cluster/images/{image}/ram?offset={1 << 40}&len=4096", ok) == 416
    assert _get(f"{node.url}/cluster/images/..%2F..%2Fapi_key/ram?offset=0&len=1", ok) == 404
    assert _get(f"{node.url}/cluster/layers/..%2F..%2Fapi_key", ok) == 400
    assert _get(f"{node.url}/cluster/layers/.fetch-x", ok) == 404
    # Outside a cluster the routes do not exist.
    plain = make_sandboxd()
    assert _get(f"{plain.url}/cluster/images/{image}/ram?offset=0&len=4096", ok) == 404


def test_concurrent_creates_never_overcommit_a_node(cluster):
    def create(node):
        try:
            return Sandbox.create("base", timeout=300, **node.opts).sandbox_id
        except (SandboxException, ServiceBusyException) as e:
            return e

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(create, [cluster[i % 3] for i in range(6)]))
    started = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if not isinstance(r, str)]
    assert len(started) == 3, results
    assert len(refused) == 3, results
    # One sandbox per node: placement never put two on one.
    assert sorted(len(where(cluster, s)) for s in started) == [1, 1, 1]
    assert {where(cluster, s)[0].url for s in started} == {n.url for n in cluster}


def test_a_dead_node_loses_its_sandboxes_and_leaves_the_others_running(cluster):
    a, b, c = cluster
    src = Sandbox.create("base", timeout=600, **a.opts)
    [dead] = where(cluster, src.sandbox_id)
    start_counter(src)
    snap = src.create_snapshot()
    clone = Sandbox.create(snap.snapshot_id, timeout=600, **b.opts)
    [holder] = where(cluster, clone.sandbox_id)
    assert holder is not dead
    [third] = [n for n in cluster if n is not dead and n is not holder]
    dead.kill9()
    # After the grace period the others report the dead node's sandbox gone...
    wait_until(lambda: src.sandbox_id not in {s.sandbox_id for s in Sandbox.list(**holder.opts).next_items()},
               30, "the dead node's sandbox to be reported gone")
    with pytest.raises(NotFoundException):
        Sandbox.get_info(src.sandbox_id, **third.opts)
    # ... the clone keeps running (reached through a live node: the one the clone was created
    # through may be the dead one), and the snapshot (uploaded) still restores elsewhere.
    assert counter(Sandbox.connect(clone.sandbox_id, **third.opts)) > 0
    Sandbox.kill(clone.sandbox_id, **third.opts)
    again = Sandbox.create(snap.snapshot_id, timeout=600, **third.opts)
    assert counter(again) > 0


def test_a_launch_that_fails_on_one_node_is_retried_on_another(cluster, tmp_path):
    """Node a's QEMU refuses every restore (it still reports its version, so a stays a live,
    compatible node); placement tries a first (the most free memory), then another node."""
    a, b, c = cluster
    qemu = tmp_path / "qemu"
    qemu.write_text('#!/bin/sh\ncase " $* " in *" -incoming "*) echo "this QEMU refuses to restore" >&2; exit 1;; esac\n'
                    'exec qemu-system-x86_64 "$@"\n')
    qemu.chmod(0o755)
    for node, memory_mb in ((a, 6144), (b, 3072), (c, 3072)):
        node.stop()
        node.env["SANDBOXD_MAX_MEMORY_MB"] = str(memory_mb)
    a.env["SANDBOXD_QEMU"] = str(qemu)
    for node in cluster:
        node.start()

    sbx = Sandbox.create("base", timeout=300, **c.opts)
    [node] = where(cluster, sbx.sandbox_id)
    assert node is not a
    assert sbx.commands.run("echo ok").stdout == "ok\n"
    assert "this QEMU refuses to restore" in a.log_path.read_text(), "placement tried a first"
    # Nothing of the failed attempt is left: no VM or sandbox on a, one sandbox in the cluster.
    run = a.data / "store" / "run"
    assert not run.is_dir() or not any(run.iterdir())
    assert {s.sandbox_id for s in Sandbox.list(**a.opts).next_items()} == {sbx.sandbox_id}


def test_a_node_killed_mid_upload_never_leaves_a_broken_snapshot(cluster):
    a, b, c = cluster
    src = Sandbox.create("base", timeout=600, **a.opts)
    [dead] = where(cluster, src.sandbox_id)
    other = next(n for n in cluster if n is not dead)
    start_counter(src)
    # A 200 MiB in-memory file makes the upload take a while.
    src.commands.run("head -c 200M /dev/urandom > /dev/shm/big")
    snap = src.create_snapshot()
    dead.kill9()
    # Either the upload finished (the snapshot restores elsewhere) or it is reported failed
    # (gone from the list, restoring it is a clean error): never listed and broken.
    try:
        clone = Sandbox.create(snap.snapshot_id, timeout=600, **other.opts)
    except SandboxException as e:
        listed = wait_until(
            lambda: snap.snapshot_id not in {s.snapshot_id for s in Sandbox.list_snapshots(**other.opts).next_items()},
            30, "the unfinished snapshot to be unlisted")
        assert listed
        print(f"upload did not finish: {e}")
    else:
        assert counter(clone) > 0
        assert clone.commands.run("stat -c %s /dev/shm/big").stdout.strip() == str(200 << 20)


def _objects(bucket_root: Path) -> set:
    """Every object of a node-written prefix, as `dir/name` keys."""
    return {f"{p.parent.name}/{p.name}" for p in bucket_root.rglob("*")
            if p.is_file() and p.parent.name in ("chunks", "deltas", "state", "layers", "boot")}


def _referenced(manifest: dict) -> set:
    ram = manifest.get("ram") or {}
    keys = set()
    for h in filter(None, ram.get("chunks", [])):
        # A chunk stored as page deltas: a whole chunk, then the deltas applied to it.
        base, *deltas = ram.get("deltas", {}).get(h, [h])
        keys |= {f"chunks/{base}"} | {f"deltas/{d}" for d in deltas}
    if manifest.get("state"):
        keys.add(f"state/{manifest['state']['hash']}")
    keys |= {f"layers/{layer['name']}" for layer in manifest["layers"]}
    if manifest.get("boot"):
        keys |= {f"boot/{manifest['boot']['kernel']['hash']}", f"boot/{manifest['boot']['initrd']['hash']}"}
    return keys


def test_deleting_a_snapshot_frees_its_objects_and_keeps_the_shared_ones(cluster, s3):
    import json

    a, b, c = cluster
    prefix = a.args[a.args.index("--object-store") + 1].split("/", 3)[3]
    root = s3[1] / "images" / prefix
    src = Sandbox.create("base", timeout=600, **a.opts)
    start_counter(src)
    first = src.create_snapshot()
    src.commands.run("head -c 8M /dev/urandom > /dev/shm/more")
    second = src.create_snapshot()
    src.kill()
    manifests = {}

    def uploaded():
        found = {p.stem: json.loads(p.read_text()) for p in (root / "images").glob("*.json")}
        manifests.update(found)
        return len(found) == 2

    wait_until(uploaded, 120, "both snapshots to be in the object store")
    before = _objects(root)
    refs = {image_id: _referenced(m) for image_id, m in manifests.items()}
    first_id = next(i for i in refs if first.snapshot_id.startswith(i))
    second_id = next(i for i in refs if i != first_id)
    shared = refs[first_id] & refs[second_id]
    own = refs[first_id] - refs[second_id]
    assert shared and own, "the two snapshots share their base layers and most of their RAM"
    assert before == refs[first_id] | refs[second_id]

    # Deleted through another node's API: the row goes cluster-wide, the objects with it.
    Sandbox.delete_snapshot(first.snapshot_id, **b.opts)
    wait_until(lambda: not (root / "images" / f"{first_id}.json").exists(), 60, "the manifest to be deleted")
    wait_until(lambda: _objects(root) == refs[second_id], 60, "the first snapshot's own objects to be deleted")
    # What is left still restores, on a node that never saw it.
    clone = Sandbox.create(second.snapshot_id, timeout=600, **c.opts)
    assert clone.commands.run("stat -c %s /dev/shm/more").stdout.strip() == str(8 << 20)
