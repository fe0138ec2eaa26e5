from e2b import Sandbox

Sandbox.delete_snapshot(snapshot.snapshot_id)
