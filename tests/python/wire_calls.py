"""The same SDK calls, run by our SDK and by E2B's official one (each in its own interpreter)
against tests/python/fake_e2b.py, whose recording the wire test compares."""

from datetime import datetime, timezone

from e2b import Sandbox, SandboxQuery, SandboxState, Secret, Volume

SID = "ifake0000000000000001"

s = Sandbox.create()
Sandbox.create("base", timeout=120, metadata={"k": "v"}, envs={"A": "1"})
Sandbox.connect(SID)
# Volume mounts go to the server as E2B sends them (names, by mount path).
Sandbox.create("base", volume_mounts={"/mnt/data": "vol-a", "/mnt/b": Volume("vid", "vol-b", token="t")})
# Workload identity and network rules: callables run in the SDK, placeholders go on the wire.
Sandbox.create(
    "base",
    iam={"tokens": {"aws": Secret.iam_token(audience="sts.amazonaws.com", token_type="JWT-SVID")}},
    network={
        "allow_out": lambda ctx: [*ctx.rules.keys()],
        "deny_out": lambda ctx: [ctx.all_traffic],
        "rules": {
            "api.example.com": [{"transform": lambda ctx: {"headers": {"Authorization": f"Bearer {ctx.iam.tokens['aws']}"}}}],
            "static.example.com": [{"transform": {"headers": {"X-Key": Secret.fill("key")}}}],
        },
    },
)
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
# Options that must reach the server exactly as E2B sends them (issue 12: nothing dropped).
Sandbox.create(
    "base",
    allow_internet_access=False,
    lifecycle={"on_timeout": "pause", "auto_resume": True},
    network={"allow_out": ["1.1.1.1"], "deny_out": ["0.0.0.0/0"], "allow_public_traffic": False, "mask_request_host": "localhost:${PORT}"},
    idempotency_key="wire-test-1",
)
Sandbox.create(lifecycle={"on_timeout": {"action": "pause", "mode": "filesystem"}, "auto_resume": False})
Sandbox.create(lifecycle={"on_timeout": "kill"}, network={})
Sandbox.connect(SID, on_resume="reboot")
Sandbox.connect(SID, timeout=30, on_resume="restore")
Sandbox.pause(SID, mode="filesystem")
Sandbox.pause(SID, strict=True)
Sandbox.pause(SID, keep_memory=True)
s.pause(keep_memory=False)
s.beta_pause(mode="full")
s.connect(on_resume="reboot")
Sandbox.create_snapshot(SID, mode="filesystem")
s.create_snapshot(name="n2", mode="full")
m = Sandbox.get_metrics(SID, start=datetime(2026, 1, 2, tzinfo=timezone.utc), end=datetime(2026, 1, 3, tzinfo=timezone.utc))
assert (m[0].cpu_count, m[0].mem_cache, m[0].timestamp.year) == (2, 10, 2026), m
s.get_metrics()
s.commands.run("echo hi")
assert Sandbox.kill(SID) is True
# Secrets and volumes (REST, and the volume content API at E2B_VOLUME_API_URL).
info = Secret.create("n", "v", metadata={"a": "b"})
assert (info.secret_id, info.version) == ("sec_fake000000000000001", 1), info
Secret.update("n", "v2")
Secret.update("n", "v3", metadata={})
Secret.get_info("n")
assert Secret.exists("n") is True
p = Secret.list(limit=1)
while p.has_next:
    p.next_items()
assert Secret.destroy("n") is True
vol = Volume.create("vol")
assert (vol.volume_id, vol.token) == ("volfake1", "voltoken")
assert [v.name for v in Volume.list()] == ["vol"]
assert Volume.get_info("volfake1").token == "voltoken"
vol = Volume.connect("volfake1")
vol.write_file("/a.txt", "hi", mode=0o644)
vol.write_file("/deep/a.txt", b"hi", force=True)
assert vol.read_file("/a.txt") == "hi"
assert [e.path for e in vol.list("/", depth=2)] == ["/a.txt"]
vol.make_dir("/d", force=True, uid=1000)
vol.get_info("/a.txt")
vol.update_metadata("/a.txt", mode=0o600)
vol.remove("/a.txt")
assert Volume.destroy("volfake1") is True
print("done")
