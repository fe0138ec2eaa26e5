#!/usr/bin/env bash
# Runs every code block of the seed document (shared/seed/sandbox-snapshots.md, copied verbatim
# into tests/python/seed and tests/node/seed) in order, Python then JavaScript, against the
# embedded default: no E2B_* variable is set, so the SDK starts (or reuses) a local sandboxd.
# The documentation leaves `sandbox`, `sandboxId` and `snapshot` to the reader; the preludes
# provide them from the previous blocks' output.
#   scripts/run-seed.sh PYTHON [NODE_DIR]
# PYTHON has our `e2b` installed. Node resolves `e2b` from the repo, or, with NODE_DIR (a folder
# where `npm install` put the package), from there: the samples are copied into it and run there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${1:?usage: run-seed.sh PYTHON [NODE_DIR]}"
JS_DIR="$ROOT"
if [ -n "${2:-}" ]; then
  JS_DIR="$2"
  mkdir -p "$JS_DIR/tests/node"
  cp -r "$ROOT/tests/node/seed" "$ROOT/tests/node/seed-prelude.mjs" "$JS_DIR/tests/node/"
fi
unset E2B_API_KEY E2B_API_URL E2B_SANDBOX_URL E2B_DOMAIN E2B_DEBUG

field() { sed -n "s/^$1[: ]*//p" | tail -n1; }

echo "--- Python samples"
py() { E2B_TEST_SANDBOX_ID="${SBX:-}" E2B_TEST_SNAPSHOT_ID="${SNAP:-}" "$PY" "$ROOT/tests/python/seed_prelude.py" "$ROOT/tests/python/seed/$1"; }
out=$(py 1_create_snapshot.py); echo "$out" | grep -v '^E2B_TEST'
SBX=$(echo "$out" | field E2B_TEST_SANDBOX); SNAP=$(echo "$out" | field E2B_TEST_SNAPSHOT)
py 2_create_snapshot_by_id.py | grep -v '^E2B_TEST'
out=$(py 3_create_from_snapshot.py); NEW=$(echo "$out" | field E2B_TEST_NEW_SANDBOX)
echo "new sandbox from snapshot: $NEW"
out=$(py 4_list_snapshots.py); echo "listed snapshots: $(echo "$out" | field E2B_TEST_SNAPSHOTS)"
py 5_list_snapshots_by_sandbox.py >/dev/null && echo "listed snapshots filtered by sandbox"
py 6_delete_snapshot.py >/dev/null && echo "deleted snapshot $SNAP"
"$PY" -c "from e2b import Sandbox; [Sandbox.kill(i) for i in '$SBX $NEW'.split()]"

echo "--- JavaScript samples"
js() { (cd "$JS_DIR" && E2B_TEST_SANDBOX_ID="${SBX:-}" E2B_TEST_SNAPSHOT_ID="${SNAP:-}" node --import ./tests/node/seed-prelude.mjs "tests/node/seed/$1"); }
SBX=$("$PY" -c "from e2b import Sandbox; print(Sandbox.create().sandbox_id)")
js 1-create-snapshot.mjs
out=$(js 2-create-snapshot-by-id.mjs); echo "$out"; SNAP=$(echo "$out" | field "Snapshot ID")
js 3-create-from-snapshot.mjs && echo "created a sandbox from a snapshot"
js 4-list-snapshots.mjs && echo "listed snapshots"
js 5-list-snapshots-by-sandbox.mjs && echo "listed snapshots by sandbox"
js 6-delete-snapshot.mjs && echo "deleted snapshot $SNAP"
"$PY" - <<PYEOF
from e2b import Sandbox
p = Sandbox.list()
while p.has_next:
    for s in p.next_items():
        Sandbox.kill(s.sandbox_id)
PYEOF
echo "--- all seed samples ran"
