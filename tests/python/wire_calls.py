"""The same SDK calls, run by our SDK and by E2B's official one (each in its own interpreter)
against tests/python/fake_e2b.py, whose recording the wire test compares."""

from datetime import datetime, timezone

from e2b import Sandbox, SandboxQuery, SandboxState

SID = "ifake0000000000000001"

s = Sandbox.create()
Sandbox.create("base", timeout=120, metadata={"k": "v"}, envs={"A": "1"})
Sandbox.connect(SID)
Sandbox.get_info(SID)
Sandbox.set_timeout(SID, 60)
Sandbox.pause(SID)
Sandbox.create_snapshot(SID)
Sandbox.create_snapshot(SID, name="named")
s.create_snapshot()
p = Sandbox.list_snapshots(sandbox_id=SID, limit=5)
while p.has_next:
    p.next_items()
Sandbox.list_snapshots(name="named").next_items()
s.list_snapshots().next_items()
Sandbox.list(
    query=SandboxQuery(
        metadata={"user id": "a/b c", "k": "v"},
        state=[SandboxState.RUNNING, SandboxState.PAUSED],
        started_after=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        template="base",
    ),
    order="asc",
).next_items()
p = Sandbox.list(limit=2)
while p.has_next:
    p.next_items()
assert Sandbox.delete_snapshot("team/name:tag") is True
assert Sandbox.delete_snapshot("team/name:tag") is False
s.commands.run("echo hi")
assert Sandbox.kill(SID) is True
print("done")
