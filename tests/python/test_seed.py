"""The seed document's Python samples (tests/python/seed/, the documentation's code unchanged),
each run as its own program against a real sandboxd, through the embedded default."""

import re
from pathlib import Path
from typing import Dict, List

import pytest

from conftest import Server, run_python

HERE = Path(__file__).parent
SEED_DOC = Path("/work/shared/seed/sandbox-snapshots.md")
SAMPLES = sorted((HERE / "seed").glob("*.py"))

pytestmark = pytest.mark.sandboxd


def sample(server: Server, name: str, **env: str) -> Dict[str, str]:
    r = run_python(str(HERE / "seed_prelude.py"), {**server.env(), **env}, args=(str(HERE / "seed" / name),))
    assert r.returncode == 0, f"{name} exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    out = {"stdout": r.stdout}
    for m in re.finditer(r"^E2B_TEST_(\w+): ?(.*)$", r.stdout, re.M):
        out[m.group(1)] = m.group(2)
    return out


@pytest.fixture(scope="module")
def base(sandboxd: Server):
    from e2b import Sandbox

    sbx = Sandbox.create()
    yield sbx
    sbx.kill()


def kill(*ids: str) -> None:
    from e2b import Sandbox

    for i in ids:
        if i:
            Sandbox.kill(i)


def test_samples_are_the_documentation_verbatim() -> None:
    if not SEED_DOC.exists():
        pytest.skip(f"{SEED_DOC} not present")
    blocks = re.findall(r"```python Python[^\n]*\n(.*?)```", SEED_DOC.read_text(), re.S)
    blocks = ["\n".join(line[2:] if line.startswith("  ") else line for line in b.splitlines()).strip() for b in blocks]
    assert [p.read_text().strip() for p in SAMPLES] == blocks


def test_create_snapshot(sandboxd: Server) -> None:
    out = sample(sandboxd, "1_create_snapshot.py")
    kill(out.get("SANDBOX", ""))
    assert re.search(r"^Snapshot ID: \S+$", out["stdout"], re.M), out["stdout"]


def test_create_snapshot_by_id(sandboxd: Server, base) -> None:
    from e2b import Sandbox

    out = sample(sandboxd, "2_create_snapshot_by_id.py", E2B_TEST_SANDBOX_ID=base.sandbox_id)
    snap_id = re.search(r"^Snapshot ID: (\S+)$", out["stdout"], re.M).group(1)
    ids = [s.snapshot_id for s in Sandbox.list_snapshots(sandbox_id=base.sandbox_id).next_items()]
    assert snap_id in ids


def test_create_from_snapshot(sandboxd: Server, base) -> None:
    from e2b import Sandbox

    base.files.write("/tmp/marker.txt", "from the source sandbox")
    out = sample(sandboxd, "3_create_from_snapshot.py", E2B_TEST_SANDBOX_ID=base.sandbox_id)
    new_id = out["NEW_SANDBOX"]
    try:
        copy = Sandbox.connect(new_id)
        assert copy.files.read("/tmp/marker.txt") == "from the source sandbox"
        assert copy.commands.run("echo ok").stdout == "ok\n"
    finally:
        kill(new_id)


def test_list_snapshots_loop(sandboxd: Server, base) -> None:
    snap = base.create_snapshot()
    out = sample(sandboxd, "4_list_snapshots.py")
    assert snap.snapshot_id in out["SNAPSHOTS"].split(",")


def test_list_snapshots_by_sandbox(sandboxd: Server) -> None:
    out = sample(sandboxd, "5_list_snapshots_by_sandbox.py")
    assert out["SNAPSHOTS"] == ""  # no sandbox has that ID


def test_delete_snapshot(sandboxd: Server, base) -> None:
    from e2b import Sandbox

    snap = base.create_snapshot()
    sample(sandboxd, "6_delete_snapshot.py", E2B_TEST_SNAPSHOT_ID=snap.snapshot_id)
    assert Sandbox.delete_snapshot(snap.snapshot_id) is False, "the sample should have deleted it"
