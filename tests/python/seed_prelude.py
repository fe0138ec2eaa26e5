"""Run one seed sample (``python seed_prelude.py seed/N_x.py``) as its own program, giving it the
free variables the documentation leaves to the reader: ``sandbox_id`` and ``sandbox`` (from
E2B_TEST_SANDBOX_ID) and ``snapshot`` (from E2B_TEST_SNAPSHOT_ID). The sample files are the
documentation's code, unchanged."""

import os
import runpy
import sys

from e2b import Sandbox, SnapshotInfo

init = {}
if os.environ.get("E2B_TEST_SANDBOX_ID"):
    init["sandbox_id"] = os.environ["E2B_TEST_SANDBOX_ID"]
    init["sandbox"] = Sandbox.connect(os.environ["E2B_TEST_SANDBOX_ID"])
if os.environ.get("E2B_TEST_SNAPSHOT_ID"):
    init["snapshot"] = SnapshotInfo(snapshot_id=os.environ["E2B_TEST_SNAPSHOT_ID"])
ns = runpy.run_path(sys.argv[1], init_globals=init, run_name="__main__")
# Report what the sample produced so the test can check it and clean up.
for key in ("snapshot", "new_sandbox", "sandbox", "snapshots"):
    v = ns.get(key)
    if key == "snapshots" and v is not None:
        print("E2B_TEST_SNAPSHOTS:", ",".join(s.snapshot_id for s in v))
    elif key in ("new_sandbox", "sandbox") and v is not None and key not in init:
        print(f"E2B_TEST_{key.upper()}:", v.sandbox_id)
    elif key == "snapshot" and v is not None and key not in init:
        print("E2B_TEST_SNAPSHOT:", v.snapshot_id)
