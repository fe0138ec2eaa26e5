from e2b import Sandbox

snapshot = sandbox.create_snapshot()

# Create a new sandbox from the snapshot
new_sandbox = Sandbox.create(snapshot.snapshot_id)
